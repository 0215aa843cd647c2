// Package proctest holds test helpers for packages that start child
// processes through package proc: checks of how Start fails and of Stop, and
// a reader of /proc that tells which TCP addresses a process listens on, so a
// test can check that a server opened no listener beyond the one it asked
// for.
package proctest

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Stoppable is a started process: a *proc.Process or a package's wrapper
// around one.
type Stoppable interface {
	Stop() error
	Done() <-chan struct{}
}

// StopTwice stops p and fails the test unless Stop returns nil, Done is
// closed once it has returned, and a second Stop returns nil as well.
func StopTwice(t testing.TB, p Stoppable) {
	t.Helper()
	if err := p.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

// StartFailed checks the result of a Start that should have failed: it
// stops p and fails the test when err is nil, and fails it when want is not
// nil and err does not match it (errors.Is).
func StartFailed(t testing.TB, p Stoppable, err, want error) {
	t.Helper()
	if err == nil {
		_ = p.Stop()
		t.Fatal("Start succeeded, want an error")
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("error %v, want %v", err, want)
	}
}

// ListeningSockets returns the TCP addresses ("127.0.0.1:8080", "[::1]:80")
// that the process pid listens on, read from /proc; it needs Linux. It fails
// the test when /proc cannot be read.
func ListeningSockets(t testing.TB, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("read fds: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var addrs []string
	for _, table := range []string{"tcp", "tcp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			t.Fatalf("open %s table: %v", table, err)
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// Field 3 is the state; 0A is LISTEN.
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			addrs = append(addrs, decodeAddr(t, fields[1]))
		}
		_ = f.Close()
	}
	return addrs
}

// decodeAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080".
func decodeAddr(t testing.TB, s string) string {
	t.Helper()
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		t.Fatalf("bad address %q", s)
	}
	raw, err := hex.DecodeString(host)
	if err != nil {
		t.Fatalf("bad address %q: %v", s, err)
	}
	// Each 32-bit word is in host (little-endian) order.
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		t.Fatalf("bad port %q: %v", s, err)
	}
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(p, 10))
}
