package egress_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/mcpgw/mcpgw/libs/egress"
)

func TestDialerWithTheDefaultNetDialer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())

	resolver := newResolver()
	resolver.set("api.test", "::ffff:127.0.0.1")
	d, err := egress.NewDialer(egress.DialerConfig{
		Rules:    mustRules(t, []string{"api.test"}, loopbackOnly()),
		Resolver: resolver,
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := d.DialContext(context.Background(), "tcp", net.JoinHostPort("api.test", port))
	if err != nil {
		t.Fatalf("DialContext: %v", err)
	}
	_ = conn.Close()
	if got := conn.RemoteAddr().String(); got != l.Addr().String() {
		t.Fatalf("connected to %s, want %s", got, l.Addr())
	}
}

func TestDialerChecks(t *testing.T) {
	resolver := newResolver()
	resolver.set("v4.test", "93.184.215.14", "8.8.8.8")
	resolver.set("v6.test", "2606:4700:4700::1111")
	resolver.set("mapped.test", "::ffff:8.8.4.4")
	resolver.set("internal.test", "8.8.8.8", "192.168.1.10")
	resolver.set("empty.test")
	rules := mustRules(t, []string{"v4.test", "v6.test", "mapped.test", "internal.test", "empty.test", "missing.test", "10.0.0.1"}, nil)
	dialer := newDialer()
	d, err := egress.NewDialer(egress.DialerConfig{Rules: rules, Resolver: resolver, Dialer: dialer})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		network, host string
		want          []string
		code          egress.ErrorCode
	}{
		{network: "tcp", host: "v4.test", want: []string{"93.184.215.14", "8.8.8.8"}},
		{network: "tcp4", host: "v4.test", want: []string{"93.184.215.14", "8.8.8.8"}},
		{network: "tcp6", host: "v4.test", code: egress.CodeDNS},
		{network: "tcp6", host: "v6.test", want: []string{"2606:4700:4700::1111"}},
		{network: "tcp", host: "MAPPED.test.", want: []string{"8.8.4.4"}},
		{network: "tcp", host: "internal.test", code: egress.CodeAddressBlocked},
		{network: "tcp", host: "10.0.0.1", code: egress.CodeAddressBlocked},
		{network: "tcp", host: "empty.test", code: egress.CodeDNS},
		{network: "tcp", host: "missing.test", code: egress.CodeDNS},
		{network: "tcp", host: "other.test", code: egress.CodeHostNotAllowed},
		{network: "udp", host: "v4.test", code: egress.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.host, func(t *testing.T) {
			addrs, err := d.Resolve(context.Background(), tt.network, tt.host, "443")
			if codeOf(err) != tt.code {
				t.Fatalf("Resolve err = %v, want %q", err, tt.code)
			}
			var got []string
			for _, a := range addrs {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Resolve = %v, want %v", got, tt.want)
			}
		})
	}
	if got := dialer.addresses(); len(got) != 0 {
		t.Fatalf("Resolve dialed %v", got)
	}

	// A dial tries the checked addresses in order, each as an IP literal, and
	// never leaves loopback in this test (the test dialer refuses).
	_, err = d.DialContext(context.Background(), "tcp", "v4.test:443")
	if codeOf(err) != egress.CodeConnect {
		t.Fatalf("DialContext err = %v, want %s", err, egress.CodeConnect)
	}
	if got, want := dialer.addresses(), []string{"93.184.215.14:443", "8.8.8.8:443"}; !slices.Equal(got, want) {
		t.Fatalf("dialed %v, want %v", got, want)
	}
	if _, err := d.DialContext(context.Background(), "tcp", "v4.test"); codeOf(err) != egress.CodeInvalidRequest {
		t.Fatalf("address without port: err = %v", err)
	}
	var e *egress.Error
	if _, err := d.DialContext(context.Background(), "tcp", "internal.test:443"); !errors.As(err, &e) || e.Host != "internal.test" {
		t.Fatalf("blocked dial error = %v, want host internal.test", err)
	}
}
