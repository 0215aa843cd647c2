package egress_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/egress"
)

// env is a loopback upstream reachable as api.test through a fake resolver
// and a dialer that never leaves loopback.
type env struct {
	srv      *server
	resolver *fakeResolver
	dialer   *loopbackDialer
	client   *egress.Client
	rules    egress.Rules // api.test, 127.0.0.1/32 allowed
}

func newEnv(t *testing.T, h http.Handler, cfg egress.Config) *env {
	t.Helper()
	e := &env{srv: startServer(t, h), resolver: newResolver(), dialer: newDialer()}
	e.resolver.set("api.test", e.srv.addr.Addr().String())
	cfg.Resolver = e.resolver
	cfg.Dialer = e.dialer
	e.client = newClient(t, cfg)
	e.rules = mustRules(t, []string{"api.test"}, []netip.Prefix{netip.PrefixFrom(e.srv.addr.Addr(), e.srv.addr.Addr().BitLen())})
	return e
}

func (e *env) do(t *testing.T, rawURL string, rules egress.Rules, opts ...egress.CallOption) (*egress.Response, error) {
	t.Helper()
	return e.client.Do(context.Background(), get(t, rawURL), rules, opts...)
}

func TestDoReachesLoopbackOnlyThroughAnAllowedPrefix(t *testing.T) {
	e := newEnv(t, okHandler(`{"ok":true}`), egress.Config{})

	resp, err := e.do(t, e.srv.url("api.test", "/v1/items"), e.rules)
	if err != nil {
		t.Fatalf("Do with 127.0.0.1/32 allowed: %v", err)
	}
	if resp.StatusCode != http.StatusOK || string(resp.Body) != `{"ok":true}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("response = %v %q %v", resp, resp.Body, resp.Header)
	}

	before := e.srv.newConns.Load()
	dialsBefore := len(e.dialer.addresses())
	noPrefix := mustRules(t, []string{"api.test"}, nil)
	_, err = e.do(t, e.srv.url("api.test", "/v1/items"), noPrefix)
	if codeOf(err) != egress.CodeAddressBlocked {
		t.Fatalf("Do without an allowed prefix: err = %v, want %s", err, egress.CodeAddressBlocked)
	}
	if got := len(e.dialer.addresses()); got != dialsBefore {
		t.Fatalf("a refused request dialed %d times", got-dialsBefore)
	}
	if e.srv.newConns.Load() != before {
		t.Fatal("the upstream saw a connection for a refused request")
	}
}

func TestDoRefusesBlockedAddressesWithoutDialing(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{})
	type tc struct {
		name    string
		url     string
		hosts   []string
		resolve []string
	}
	var tests []tc
	for _, a := range blockedAddrs {
		tests = append(tests, tc{name: "resolved " + a, url: "http://target.test/", hosts: []string{"target.test"}, resolve: []string{a}})
		if !strings.Contains(a, "%") {
			lit := a
			if strings.Contains(a, ":") {
				lit = "[" + a + "]"
			}
			tests = append(tests, tc{name: "literal " + a, url: "http://" + lit + "/", hosts: []string{a}})
		}
	}
	tests = append(tests,
		tc{name: "one bad answer among good ones", url: "https://target.test/", hosts: []string{"target.test"},
			resolve: []string{"93.184.215.14", "10.0.0.1", "8.8.8.8"}},
		tc{name: "wildcard to metadata", url: "http://meta.cloud.test/latest/meta-data/", hosts: []string{"*.cloud.test"},
			resolve: []string{"169.254.169.254"}},
		tc{name: "loopback on an allowed port", url: "http://target.test:8443/", hosts: []string{"target.test:8443"},
			resolve: []string{"127.0.0.1"}},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.resolve != nil {
				host := mustURL(t, tt.url).Hostname()
				e.resolver.set(host, tt.resolve...)
			}
			before := len(e.dialer.addresses())
			_, err := e.do(t, tt.url, mustRules(t, tt.hosts, nil))
			if codeOf(err) != egress.CodeAddressBlocked {
				t.Fatalf("err = %v, want %s", err, egress.CodeAddressBlocked)
			}
			if got := e.dialer.addresses()[before:]; len(got) != 0 {
				t.Fatalf("dialed %v for a blocked address", got)
			}
		})
	}
	if n := e.srv.newConns.Load(); n != 0 {
		t.Fatalf("upstream saw %d connections", n)
	}
}

func TestDoRefusesHostsOutsideTheRules(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{})
	e.resolver.set("other.test", "127.0.0.1")
	e.resolver.set("a.wild.test", "127.0.0.1")
	rules := mustRules(t, []string{"api.test:" + e.srv.port, "*.wild.test"}, loopbackOnly())
	tests := []struct {
		name  string
		req   func() *http.Request
		want  egress.ErrorCode
		allow bool
	}{
		{name: "allowed", req: func() *http.Request { return get(t, e.srv.url("api.test", "/")) }, allow: true},
		{name: "other host", req: func() *http.Request { return get(t, e.srv.url("other.test", "/")) }, want: egress.CodeHostNotAllowed},
		{name: "other port", req: func() *http.Request { return get(t, "http://api.test:1/") }, want: egress.CodeHostNotAllowed},
		{name: "default port", req: func() *http.Request { return get(t, "http://api.test/") }, want: egress.CodeHostNotAllowed},
		{name: "wildcard apex", req: func() *http.Request { return get(t, e.srv.url("wild.test", "/")) }, want: egress.CodeHostNotAllowed},
		{name: "wildcard label", req: func() *http.Request { return get(t, e.srv.url("a.wild.test", "/")) }, allow: true},
		{name: "ip literal not listed", req: func() *http.Request { return get(t, e.srv.url("127.0.0.1", "/")) }, want: egress.CodeHostNotAllowed},
		{name: "decimal ip", req: func() *http.Request { return get(t, e.srv.url("2130706433", "/")) }, want: egress.CodeHostNotAllowed},
		{name: "scheme", req: func() *http.Request { return get(t, "ftp://api.test/") }, want: egress.CodeInvalidRequest},
		{name: "user info", req: func() *http.Request { return get(t, "http://u:p@"+net.JoinHostPort("api.test", e.srv.port)+"/") }, want: egress.CodeInvalidRequest},
		{name: "host header", req: func() *http.Request {
			r := get(t, e.srv.url("api.test", "/"))
			r.Host = "other.test"
			return r
		}, want: egress.CodeHostNotAllowed},
		{name: "nil request", req: func() *http.Request { return nil }, want: egress.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.srv.requests.Load()
			_, err := e.client.Do(context.Background(), tt.req(), rules)
			if tt.allow {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				return
			}
			if codeOf(err) != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if e.srv.requests.Load() != before {
				t.Fatal("the upstream saw a refused request")
			}
		})
	}
	if n := e.resolver.count("other.test"); n != 0 {
		t.Fatalf("a refused host was resolved %d times", n)
	}
}

func TestDoClosesTheBodyOfARefusedRequest(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{})
	body := &closeTracker{Reader: strings.NewReader("payload")}
	req, err := http.NewRequest(http.MethodPost, "http://nowhere.test/", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Do(context.Background(), req, e.rules); codeOf(err) != egress.CodeHostNotAllowed {
		t.Fatalf("err = %v", err)
	}
	if !body.closed {
		t.Fatal("request body left open")
	}
}

type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestDNSRebindingNeverReachesLoopback(t *testing.T) {
	e := newEnv(t, okHandler("public"), egress.Config{})
	// The name first resolves to a public address (routed by the test
	// dialer to the loopback server, standing in for a public upstream),
	// then to loopback.
	e.resolver.sequence("rebind.test", []string{"93.184.215.14"}, []string{"127.0.0.1"})
	public := net.JoinHostPort("93.184.215.14", e.srv.port)
	e.dialer.route(public, e.srv.addr.String())
	rules := mustRules(t, []string{"rebind.test"}, nil)

	resp, err := e.do(t, e.srv.url("rebind.test", "/"), rules)
	if err != nil || string(resp.Body) != "public" {
		t.Fatalf("first call: %v %v", resp, err)
	}
	e.client.CloseIdleConnections()
	_, err = e.do(t, e.srv.url("rebind.test", "/"), rules)
	if codeOf(err) != egress.CodeAddressBlocked {
		t.Fatalf("second call after rebinding: err = %v, want %s", err, egress.CodeAddressBlocked)
	}
	asked := e.dialer.addresses()
	if len(asked) != 1 || asked[0] != public {
		t.Fatalf("dialer asked for %v, want only the checked public address %s", asked, public)
	}
	if n := e.resolver.count("rebind.test"); n != 2 {
		t.Fatalf("resolver called %d times for 2 dials, want exactly one resolution per dial", n)
	}
}

func TestDialerDialsTheCheckedAddress(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{})
	for i := range 3 {
		e.client.CloseIdleConnections()
		if _, err := e.do(t, e.srv.url("api.test", "/"), e.rules); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for _, a := range e.dialer.addresses() {
		if _, err := netip.ParseAddrPort(a); err != nil {
			t.Fatalf("dialer was handed %q, not a checked ip:port", a)
		}
	}
}

func TestDoDoesNotFollowRedirects(t *testing.T) {
	elsewhere := startServer(t, okHandler("followed"))
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/abs":
			http.Redirect(w, r, elsewhere.url("elsewhere.test", "/landing?x=1"), http.StatusFound)
		case "/dir/rel":
			w.Header().Set("Location", "next?y=2")
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/bare":
			w.WriteHeader(http.StatusMovedPermanently)
		case "/script":
			w.Header().Set("Location", "javascript:alert(1)")
			w.WriteHeader(http.StatusSeeOther)
		default:
			_, _ = io.WriteString(w, "plain")
		}
	}), egress.Config{})
	e.resolver.set("elsewhere.test", "127.0.0.1")
	rules := mustRules(t, []string{"api.test", "elsewhere.test"}, loopbackOnly())

	tests := []struct {
		path       string
		wantStatus int
		wantTarget string
		wantErr    bool
	}{
		{path: "/abs", wantStatus: http.StatusFound, wantTarget: elsewhere.url("elsewhere.test", "/landing?x=1")},
		{path: "/dir/rel", wantStatus: http.StatusTemporaryRedirect, wantTarget: e.srv.url("api.test", "/dir/next?y=2")},
		{path: "/bare", wantStatus: http.StatusMovedPermanently, wantErr: true},
		{path: "/script", wantStatus: http.StatusSeeOther, wantErr: true},
		{path: "/plain", wantStatus: http.StatusOK, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := e.do(t, e.srv.url("api.test", tt.path), rules)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			target, err := egress.RedirectTarget(resp)
			if tt.wantErr {
				if codeOf(err) != egress.CodeNotRedirect {
					t.Fatalf("RedirectTarget err = %v, want %s", err, egress.CodeNotRedirect)
				}
				return
			}
			if err != nil || target.String() != tt.wantTarget {
				t.Fatalf("RedirectTarget = %v, %v; want %s", target, err, tt.wantTarget)
			}
		})
	}
	if n := elsewhere.requests.Load(); n != 0 {
		t.Fatalf("redirect target received %d requests", n)
	}
	if _, err := egress.RedirectTarget(nil); codeOf(err) != egress.CodeNotRedirect {
		t.Fatalf("RedirectTarget(nil) err = %v", err)
	}
}

func TestDoReusesOneConnection(t *testing.T) {
	tests := []struct {
		name    string
		handler http.Handler
	}{
		{name: "content-length", handler: okHandler(`{"n":1}`)},
		{name: "chunked", handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "part one,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
		})},
		{name: "empty", handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.handler, egress.Config{})
			const n = 25
			for i := range n {
				if _, err := e.do(t, e.srv.url("api.test", "/"), e.rules); err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
			}
			if got := e.srv.newConns.Load(); got != 1 {
				t.Fatalf("%d sequential calls opened %d connections, want 1", n, got)
			}
			if got := e.srv.requests.Load(); got != n {
				t.Fatalf("upstream saw %d requests, want %d", got, n)
			}
		})
	}
}

func TestTransportsAreSeparatedByRulesAndPoolKey(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{})
	other := mustRules(t, []string{"api.test", "second.test"}, loopbackOnly())
	calls := []struct {
		rules egress.Rules
		opts  []egress.CallOption
	}{
		{rules: e.rules},
		{rules: other},
		{rules: e.rules, opts: []egress.CallOption{egress.WithPoolKey("bnd_a")}},
		{rules: e.rules, opts: []egress.CallOption{egress.WithPoolKey("bnd_b")}},
		{rules: other, opts: []egress.CallOption{egress.WithPoolKey("bnd_a")}},
	}
	for round := range 3 {
		for i, c := range calls {
			if _, err := e.do(t, e.srv.url("api.test", "/"), c.rules, c.opts...); err != nil {
				t.Fatalf("round %d call %d: %v", round, i, err)
			}
		}
	}
	if got, want := e.srv.newConns.Load(), int64(len(calls)); got != want {
		t.Fatalf("opened %d connections, want %d (one per rules key and pool key)", got, want)
	}
	// Rules written differently but equal share a transport.
	same := mustRules(t, []string{"API.test."}, loopbackOnly())
	if _, err := e.do(t, e.srv.url("api.test", "/"), same); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.newConns.Load(); got != int64(len(calls)) {
		t.Fatalf("equal rules opened a new connection (%d)", got)
	}
}

func TestMaxTransportsEvictsTheLeastRecentlyUsed(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{MaxTransports: 2})
	keys := []string{"a", "b", "a", "b", "c", "a"}
	// a, b: new; a, b: reused; c: new, evicts a; a: new, evicts b.
	for _, k := range keys {
		if _, err := e.do(t, e.srv.url("api.test", "/"), e.rules, egress.WithPoolKey(k)); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.srv.newConns.Load(); got != 4 {
		t.Fatalf("opened %d connections, want 4", got)
	}
	waitFor(t, "evicted transports to close their idle connections", func() bool {
		return e.srv.closedConns.Load() >= 2
	})
}

func TestResponseBodyCap(t *testing.T) {
	const limit = 1024
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n int
		_, _ = fmt.Sscanf(r.URL.Query().Get("n"), "%d", &n)
		body := strings.Repeat("a", n)
		if r.URL.Query().Get("chunked") == "1" {
			half := n / 2
			_, _ = io.WriteString(w, body[:half])
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, body[half:])
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(n))
		_, _ = io.WriteString(w, body)
	}), egress.Config{MaxResponseBytes: limit})
	tests := []struct {
		name    string
		query   string
		wantLen int
		wantErr bool
	}{
		{name: "at limit", query: "n=1024", wantLen: limit},
		{name: "over limit", query: "n=1025", wantErr: true},
		{name: "far over limit", query: "n=1000000", wantErr: true},
		{name: "chunked at limit", query: "n=1024&chunked=1", wantLen: limit},
		{name: "chunked over limit", query: "n=1025&chunked=1", wantErr: true},
		{name: "chunked far over limit", query: "n=1000000&chunked=1", wantErr: true},
		{name: "empty", query: "n=0", wantLen: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.do(t, e.srv.url("api.test", "/?"+tt.query), e.rules)
			if tt.wantErr {
				if codeOf(err) != egress.CodeResponseTooLarge {
					t.Fatalf("err = %v, want %s", err, egress.CodeResponseTooLarge)
				}
				return
			}
			if err != nil || len(resp.Body) != tt.wantLen {
				t.Fatalf("Do = %v, %v; want %d bytes", resp, err, tt.wantLen)
			}
		})
	}
}

func TestTimeoutsAndCancellation(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	wait := func(r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/no-headers":
			wait(r)
		case "/slow-body":
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
			wait(r)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	}), egress.Config{Timeout: 300 * time.Millisecond, DialTimeout: 200 * time.Millisecond})
	e.resolver.set("blackhole.test", "93.184.215.14")
	e.dialer.hang[net.JoinHostPort("93.184.215.14", e.srv.port)] = true
	rules := mustRules(t, []string{"api.test", "blackhole.test", "hang.test"}, loopbackOnly())

	headerClient := newClient(t, egress.Config{
		Resolver: e.resolver, Dialer: e.dialer, ResponseHeaderTimeout: 100 * time.Millisecond, Timeout: time.Minute,
	})

	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name   string
		client *egress.Client
		ctx    context.Context
		url    string
		want   egress.ErrorCode
	}{
		{name: "no response headers", client: e.client, url: e.srv.url("api.test", "/no-headers"), want: egress.CodeTimeout},
		{name: "slow body", client: e.client, url: e.srv.url("api.test", "/slow-body"), want: egress.CodeTimeout},
		{name: "response header timeout", client: headerClient, url: e.srv.url("api.test", "/no-headers"), want: egress.CodeTimeout},
		{name: "dial timeout", client: e.client, url: e.srv.url("blackhole.test", "/"), want: egress.CodeTimeout},
		{name: "resolver timeout", client: e.client, url: e.srv.url("hang.test", "/"), want: egress.CodeTimeout},
		{name: "canceled", client: e.client, ctx: canceled, url: e.srv.url("api.test", "/"), want: egress.CodeCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := tt.client.Do(ctx, get(t, tt.url), rules)
			if codeOf(err) != tt.want {
				t.Fatalf("err = %v, want %s", err, tt.want)
			}
			if !errors.Is(err, &egress.Error{Code: tt.want}) {
				t.Fatalf("errors.Is(%v, code %s) = false", err, tt.want)
			}
		})
	}
}

func TestConcurrentCalls(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{MaxIdleConnsPerHost: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			_, err := e.do(t, e.srv.url("api.test", "/"), e.rules, egress.WithPoolKey(fmt.Sprint(i%4)))
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestProxyFromEnvironmentIsIgnored(t *testing.T) {
	proxy := startServer(t, okHandler("via proxy"))
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	e := newEnv(t, okHandler("direct"), egress.Config{})
	resp, err := e.do(t, e.srv.url("api.test", "/"), e.rules)
	if err != nil || string(resp.Body) != "direct" {
		t.Fatalf("Do = %v, %v", resp, err)
	}
	if proxy.requests.Load() != 0 {
		t.Fatal("request went through the environment's proxy")
	}
}

func TestTLSAndHTTP2(t *testing.T) {
	newTLS := func(t *testing.T, cfg func(*httptest.Server)) *httptest.Server {
		s := httptest.NewUnstartedServer(okHandler("secure"))
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		cfg(s)
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	h2 := newTLS(t, func(s *httptest.Server) { s.EnableHTTP2 = true })
	old := newTLS(t, func(s *httptest.Server) {
		s.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	})
	roots := x509.NewCertPool()
	roots.AddCert(h2.Certificate())
	roots.AddCert(old.Certificate())

	// The test certificate is issued for example.com and 127.0.0.1.
	resolver := newResolver()
	resolver.set("example.com", "127.0.0.1")
	rules := mustRules(t, []string{"example.com"}, loopbackOnly())
	urlOf := func(s *httptest.Server) string {
		return "https://" + net.JoinHostPort("example.com", mustURL(t, s.URL).Port()) + "/"
	}

	trusted := newClient(t, egress.Config{Resolver: resolver, TLSConfig: &tls.Config{RootCAs: roots}})
	for i := range 3 {
		resp, err := trusted.Do(context.Background(), get(t, urlOf(h2)), rules)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if resp.Proto != "HTTP/2.0" || string(resp.Body) != "secure" {
			t.Fatalf("response = %v", resp)
		}
	}

	if _, err := trusted.Do(context.Background(), get(t, urlOf(old)), rules); codeOf(err) != egress.CodeTLS {
		t.Fatalf("TLS 1.1 server: err = %v, want %s", err, egress.CodeTLS)
	}
	untrusted := newClient(t, egress.Config{Resolver: resolver, TLSConfig: &tls.Config{RootCAs: x509.NewCertPool()}})
	if _, err := untrusted.Do(context.Background(), get(t, urlOf(h2)), rules); codeOf(err) != egress.CodeTLS {
		t.Fatalf("untrusted certificate: err = %v, want %s", err, egress.CodeTLS)
	}
	if _, err := egress.New(egress.Config{TLSConfig: &tls.Config{InsecureSkipVerify: true}}); err == nil {
		t.Fatal("New accepted a TLS config that skips verification")
	}
}

func TestCheckResolvesWithoutConnecting(t *testing.T) {
	e := newEnv(t, okHandler("x"), egress.Config{})
	e.resolver.set("internal.test", "10.1.2.3")
	rules := mustRules(t, []string{"api.test", "internal.test"}, loopbackOnly())
	tests := []struct {
		url  string
		want egress.ErrorCode
	}{
		{url: "https://api.test/x"},
		{url: "https://internal.test/x", want: egress.CodeAddressBlocked},
		{url: "https://unknown.test/x", want: egress.CodeHostNotAllowed},
		{url: "gopher://api.test/x", want: egress.CodeInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := e.client.Check(context.Background(), mustURL(t, tt.url), rules)
			if codeOf(err) != tt.want {
				t.Fatalf("Check = %v, want %q", err, tt.want)
			}
		})
	}
	if got := e.dialer.addresses(); len(got) != 0 {
		t.Fatalf("Check dialed %v", got)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  egress.Config
	}{
		{name: "negative timeout", cfg: egress.Config{Timeout: -1}},
		{name: "negative dial timeout", cfg: egress.Config{DialTimeout: -1}},
		{name: "negative body cap", cfg: egress.Config{MaxResponseBytes: -1}},
		{name: "negative transports", cfg: egress.Config{MaxTransports: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := egress.New(tt.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}
