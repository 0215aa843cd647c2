package egress_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/egress"
)

// fakeResolver answers from a table: host → successive answers (the last one
// repeats). A host missing from the table is "no such host"; "hang.test"
// blocks until the context ends.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][][]netip.Addr
	calls   map[string]int
}

func newResolver() *fakeResolver {
	return &fakeResolver{answers: map[string][][]netip.Addr{}, calls: map[string]int{}}
}

// set makes host resolve to addrs on every call.
func (r *fakeResolver) set(host string, addrs ...string) {
	r.sequence(host, addrs)
}

// sequence makes host resolve to answers[0] first, answers[1] next, and so on.
func (r *fakeResolver) sequence(host string, answers ...[]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := make([][]netip.Addr, 0, len(answers))
	for _, ans := range answers {
		var as []netip.Addr
		for _, a := range ans {
			as = append(as, netip.MustParseAddr(a))
		}
		seq = append(seq, as)
	}
	r.answers[host] = seq
}

func (r *fakeResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	if host == "hang.test" {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.calls[host]
	r.calls[host] = n + 1
	seq, ok := r.answers[host]
	if !ok || len(seq) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if n >= len(seq) {
		n = len(seq) - 1
	}
	return append([]netip.Addr(nil), seq[n]...), nil
}

// loopbackDialer is the only way tests open connections. It records every
// address it is asked for, connects only to loopback addresses or to
// addresses routed to a loopback listener, and refuses anything else without
// touching the network. An address in hang blocks until the context ends.
type loopbackDialer struct {
	mu     sync.Mutex
	asked  []string
	routes map[string]string // asked address → loopback address
	hang   map[string]bool
	d      net.Dialer
}

func newDialer() *loopbackDialer {
	return &loopbackDialer{routes: map[string]string{}, hang: map[string]bool{}}
}

func (d *loopbackDialer) route(from, to string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.routes[from] = to
}

func (d *loopbackDialer) addresses() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.asked...)
}

func (d *loopbackDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.asked = append(d.asked, address)
	to, routed := d.routes[address]
	hang := d.hang[address]
	d.mu.Unlock()
	if hang {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	if routed {
		address = to
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, errors.New("test dialer: not an ip:port address")
	}
	if !ap.Addr().IsLoopback() {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("test dialer: refusing a non-loopback address")}
	}
	return d.d.DialContext(ctx, network, address)
}

// server is an httptest server on 127.0.0.1 that counts connections and
// requests.
type server struct {
	*httptest.Server
	newConns    atomic.Int64
	closedConns atomic.Int64
	requests    atomic.Int64
	port        string
	addr        netip.AddrPort
}

func startServer(t testing.TB, h http.Handler) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			s.newConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			s.closedConns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	s.addr = netip.MustParseAddrPort(s.Listener.Addr().String())
	s.port = s.URL[len("http://"+s.addr.Addr().String()+":"):]
	return s
}

// url returns a URL on host with the server's port.
func (s *server) url(host, path string) string {
	return "http://" + net.JoinHostPort(host, s.port) + path
}

func okHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	})
}

func loopbackOnly() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

func mustRules(t testing.TB, hosts []string, allow []netip.Prefix) egress.Rules {
	t.Helper()
	r, err := egress.NewRules(hosts, allow)
	if err != nil {
		t.Fatalf("NewRules(%v, %v): %v", hosts, allow, err)
	}
	return r
}

func newClient(t testing.TB, cfg egress.Config) *egress.Client {
	t.Helper()
	c, err := egress.New(cfg)
	if err != nil {
		t.Fatalf("egress.New: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func get(t testing.TB, rawURL string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	return req
}

func codeOf(err error) egress.ErrorCode {
	var e *egress.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logBuffer is a concurrency-safe sink for a JSON slog handler.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// mustURL parses a URL in a test.
func mustURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("url.Parse: %v", err)
	}
	return u
}
