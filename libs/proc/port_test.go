package proc_test

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"testing"

	"github.com/mcpgw/mcpgw/libs/proc"
)

func TestFreePort(t *testing.T) {
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on the free port %d: %v", port, err)
	}
	_ = l.Close()
}

func TestTryPorts(t *testing.T) {
	inUse := func(port int) error {
		return fmt.Errorf("wrapped: %w", &proc.PortInUseError{Err: fmt.Errorf("port %d in use", port)})
	}
	other := errors.New("other failure")
	tests := []struct {
		name string
		port int
		// fail returns the error for the n-th attempt (from 1), nil for success.
		fail         func(n, port int) error
		wantAttempts int
		wantErr      bool
	}{
		{name: "fixed port free", port: 4242, fail: func(int, int) error { return nil }, wantAttempts: 1},
		{name: "fixed port taken is not retried", port: 4242, fail: func(_, p int) error { return inUse(p) }, wantAttempts: 1, wantErr: true},
		{name: "picked port taken then free", fail: func(n, p int) error {
			if n < 3 {
				return inUse(p)
			}
			return nil
		}, wantAttempts: 3},
		{name: "picked ports always taken", fail: func(_, p int) error { return inUse(p) }, wantAttempts: proc.MaxPortAttempts, wantErr: true},
		{name: "other error is not retried", fail: func(int, int) error { return other }, wantAttempts: 1, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tried, retried []int
			got, err := proc.TryPorts(tt.port, func(port int) (string, error) {
				tried = append(tried, port)
				if err := tt.fail(len(tried), port); err != nil {
					return "", err
				}
				return "ok:" + strconv.Itoa(port), nil
			}, func(port int) { retried = append(retried, port) })
			if len(tried) != tt.wantAttempts {
				t.Fatalf("%d attempts (%v), want %d", len(tried), tried, tt.wantAttempts)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %t", err, tt.wantErr)
			}
			last := tried[len(tried)-1]
			if err == nil && got != "ok:"+strconv.Itoa(last) {
				t.Errorf("result %q from port %d", got, last)
			}
			for _, p := range tried {
				if p <= 0 || (tt.port != 0 && p != tt.port) {
					t.Errorf("tried port %d", p)
				}
			}
			// Every attempt but the last is announced.
			if want := tried[:len(tried)-1]; fmt.Sprint(retried) != fmt.Sprint(want) {
				t.Errorf("retrying called with %v, want %v", retried, want)
			}
		})
	}
}
