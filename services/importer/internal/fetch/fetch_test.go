package fetch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/egress"
	"github.com/mcpgw/mcpgw/services/importer/internal/fetch"
)

// secret stands for a token in a URL's query string; no error may repeat it.
const secret = "s3cr3t-query-token"

const doc = `{"openapi":"3.0.3","info":{"title":"T","version":"1"},"paths":{}}`

// resolver resolves the names it was given to loopback addresses and fails
// every other name, so no test connects off loopback.
type resolver map[string]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[strings.ToLower(host)]; ok {
		return []netip.Addr{a}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var loopback = netip.MustParseAddr("127.0.0.1")

// server is an httptest server on 127.0.0.1 that counts its requests.
type server struct {
	*httptest.Server
	hits atomic.Int32
	port string
}

func newServer(t *testing.T, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	_, s.port, _ = net.SplitHostPort(s.Listener.Addr().String())
	return s
}

// url is the server's URL under host, with path and the secret query.
func (s *server) url(host, path string) string {
	return fmt.Sprintf("http://%s:%s%s?token=%s", host, s.port, path, secret)
}

func serve(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}
}

func newFetcher(t *testing.T, cfg fetch.Config) *fetch.Fetcher {
	t.Helper()
	if cfg.Resolver == nil {
		cfg.Resolver = resolver{}
	}
	f, err := fetch.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

var allowLoopback = []string{"127.0.0.1/32"}

func wantCode(t *testing.T, err error, code fetch.Code) *fetch.Error {
	t.Helper()
	var fe *fetch.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *fetch.Error with code %s", err, err, code)
	}
	if fe.Code != code {
		t.Fatalf("code %s (%v), want %s", fe.Code, err, code)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(fmt.Sprintf("%+v", err), secret) {
		t.Fatalf("error repeats the query string: %v", err)
	}
	for e := errors.Unwrap(err); e != nil; e = errors.Unwrap(e) {
		if strings.Contains(e.Error(), secret) {
			t.Fatalf("wrapped error repeats the query string: %v", e)
		}
	}
	return fe
}

func TestFetch(t *testing.T) {
	var gotQuery atomic.Value
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotQuery.Store(r.URL.RawQuery)
		serve(doc)(w, r)
	})
	f := newFetcher(t, fetch.Config{})
	got, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("127.0.0.1", "/openapi.json") + "#frag",
		AllowedHosts: []string{"127.0.0.1"}, AllowedPrefixes: allowLoopback})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(doc))
	if string(got.Body) != doc || got.SHA256 != hex.EncodeToString(sum[:]) || got.Host != "127.0.0.1" || got.Redirects != 0 {
		t.Fatalf("got %q sha %s host %s redirects %d", got.Body, got.SHA256, got.Host, got.Redirects)
	}
	if q, _ := gotQuery.Load().(string); q != "token="+secret {
		t.Fatalf("server saw query %q", q)
	}
}

func TestFetchByName(t *testing.T) {
	srv := newServer(t, serve(doc))
	res := resolver{"specs.test": loopback}
	url := srv.url("specs.test", "/openapi.json")
	t.Run("loopback refused without a prefix", func(t *testing.T) {
		f := newFetcher(t, fetch.Config{Resolver: res})
		_, err := f.Fetch(t.Context(), fetch.Request{URL: url, AllowedHosts: []string{"specs.test"}})
		wantCode(t, err, fetch.CodeNotAllowed)
		if n := srv.hits.Load(); n != 0 {
			t.Fatalf("server got %d requests", n)
		}
	})
	t.Run("allowed with the prefix", func(t *testing.T) {
		f := newFetcher(t, fetch.Config{Resolver: res})
		got, err := f.Fetch(t.Context(), fetch.Request{URL: url, AllowedHosts: []string{"*.test"}, AllowedPrefixes: allowLoopback})
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Body) != doc || got.Host != "specs.test" {
			t.Fatalf("got %q from %s", got.Body, got.Host)
		}
	})
}

func TestFetchRefusals(t *testing.T) {
	srv := newServer(t, serve(doc))
	tests := []struct {
		name     string
		url      string
		hosts    []string
		prefixes []string
		code     fetch.Code
	}{
		{"loopback literal without the prefix", srv.url("127.0.0.1", "/x"), []string{"127.0.0.1"}, nil, fetch.CodeNotAllowed},
		{"host not in the allowlist", srv.url("127.0.0.1", "/x"), []string{"specs.test"}, allowLoopback, fetch.CodeNotAllowed},
		{"empty allowlist", srv.url("127.0.0.1", "/x"), nil, allowLoopback, fetch.CodeNotAllowed},
		{"port not allowed", srv.url("127.0.0.1", "/x"), []string{"127.0.0.1:1"}, allowLoopback, fetch.CodeNotAllowed},
		{"credentials in the URL", strings.Replace(srv.url("127.0.0.1", "/x"), "http://", "http://user:"+secret+"@", 1), []string{"127.0.0.1"}, allowLoopback, fetch.CodeInvalidURL},
		{"not http", "ftp://127.0.0.1/x?token=" + secret, []string{"127.0.0.1"}, allowLoopback, fetch.CodeInvalidURL},
		{"file URL", "file:///etc/passwd?token=" + secret, []string{"127.0.0.1"}, allowLoopback, fetch.CodeInvalidURL},
		{"no host", "http:///x?token=" + secret, []string{"127.0.0.1"}, allowLoopback, fetch.CodeInvalidURL},
		{"unparsable", "http://127.0.0.1:%zz/x?token=" + secret, []string{"127.0.0.1"}, allowLoopback, fetch.CodeInvalidURL},
		{"too long", srv.url("127.0.0.1", "/"+strings.Repeat("a", fetch.MaxURLBytes)), []string{"127.0.0.1"}, allowLoopback, fetch.CodeInvalidURL},
		{"empty", "", []string{"127.0.0.1"}, allowLoopback, fetch.CodeInvalidURL},
		{"bad host pattern", srv.url("127.0.0.1", "/x"), []string{"*"}, allowLoopback, fetch.CodeInvalidRules},
		{"bad prefix", srv.url("127.0.0.1", "/x"), []string{"127.0.0.1"}, []string{"127.0.0.1"}, fetch.CodeInvalidRules},
		{"unresolvable name", srv.url("nowhere.test", "/x"), []string{"nowhere.test"}, allowLoopback, fetch.CodeUnreachable},
	}
	f := newFetcher(t, fetch.Config{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.Fetch(t.Context(), fetch.Request{URL: tc.url, AllowedHosts: tc.hosts, AllowedPrefixes: tc.prefixes})
			wantCode(t, err, tc.code)
		})
	}
	if n := srv.hits.Load(); n != 0 {
		t.Fatalf("server got %d requests", n)
	}
}

func TestFetchTooLarge(t *testing.T) {
	big := strings.Repeat("x", 2048)
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"declared length", serve(big)},
		{"chunked", func(w http.ResponseWriter, _ *http.Request) {
			for range 4 {
				_, _ = w.Write([]byte(big[:512]))
				w.(http.Flusher).Flush()
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.h)
			f := newFetcher(t, fetch.Config{MaxBytes: 1024})
			_, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("127.0.0.1", "/big"), AllowedHosts: []string{"127.0.0.1"}, AllowedPrefixes: allowLoopback})
			wantCode(t, err, fetch.CodeTooLarge)
		})
	}
	t.Run("at the limit", func(t *testing.T) {
		srv := newServer(t, serve(big[:1024]))
		f := newFetcher(t, fetch.Config{MaxBytes: 1024})
		got, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("127.0.0.1", "/big"), AllowedHosts: []string{"127.0.0.1"}, AllowedPrefixes: allowLoopback})
		if err != nil || len(got.Body) != 1024 {
			t.Fatalf("got %v, %v", got, err)
		}
	})
}

func TestFetchTimeout(t *testing.T) {
	// Each handler waits until the client gives up and closes the
	// connection.
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"no headers", func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}},
		{"slow body", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("{"))
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.h)
			f := newFetcher(t, fetch.Config{Timeout: 200 * time.Millisecond})
			_, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("127.0.0.1", "/slow"), AllowedHosts: []string{"127.0.0.1"}, AllowedPrefixes: allowLoopback})
			wantCode(t, err, fetch.CodeTimeout)
		})
	}
	t.Run("canceled by the caller", func(t *testing.T) {
		srv := newServer(t, func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		f := newFetcher(t, fetch.Config{})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := f.Fetch(ctx, fetch.Request{URL: srv.url("127.0.0.1", "/slow"), AllowedHosts: []string{"127.0.0.1"}, AllowedPrefixes: allowLoopback})
		wantCode(t, err, fetch.CodeCanceled)
	})
}

func TestFetchRedirects(t *testing.T) {
	other := newServer(t, serve(doc))
	res := resolver{"specs.test": loopback, "other.test": loopback}
	// hops redirects n times on the same host, then serves doc.
	hops := func(n int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var i int
			_, _ = fmt.Sscanf(r.URL.Path, "/hop/%d", &i)
			if i < n {
				http.Redirect(w, r, fmt.Sprintf("/hop/%d?token=%s", i+1, secret), http.StatusFound)
				return
			}
			serve(doc)(w, r)
		}
	}
	allHosts := []string{"specs.test", "other.test"}

	t.Run("same host followed", func(t *testing.T) {
		srv := newServer(t, hops(3))
		f := newFetcher(t, fetch.Config{Resolver: res})
		got, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("specs.test", "/hop/0"), AllowedHosts: allHosts, AllowedPrefixes: allowLoopback})
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Body) != doc || got.Redirects != 3 || srv.hits.Load() != 4 {
			t.Fatalf("got %q after %d redirects, %d requests", got.Body, got.Redirects, srv.hits.Load())
		}
	})
	t.Run("too many", func(t *testing.T) {
		srv := newServer(t, hops(4))
		f := newFetcher(t, fetch.Config{Resolver: res})
		_, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("specs.test", "/hop/0"), AllowedHosts: allHosts, AllowedPrefixes: allowLoopback})
		wantCode(t, err, fetch.CodeRedirect)
		if n := srv.hits.Load(); n != 4 {
			t.Fatalf("%d requests, want 4", n)
		}
	})
	t.Run("none followed when disabled", func(t *testing.T) {
		srv := newServer(t, hops(1))
		f := newFetcher(t, fetch.Config{Resolver: res, MaxRedirects: -1})
		_, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("specs.test", "/hop/0"), AllowedHosts: allHosts, AllowedPrefixes: allowLoopback})
		wantCode(t, err, fetch.CodeRedirect)
	})

	crossHost := func(target string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target, http.StatusMovedPermanently) }
	}
	tests := []struct {
		name   string
		target string
	}{
		{"to another allowed host", other.url("other.test", "/openapi.json")},
		{"to the same server under another name", other.url("127.0.0.1", "/openapi.json")},
		{"with credentials", strings.Replace(other.url("specs.test", "/x"), "http://", "http://u:"+secret+"@", 1)},
		{"to a non-http scheme", "ftp://specs.test/x?token=" + secret},
	}
	for _, tc := range tests {
		t.Run("refused "+tc.name, func(t *testing.T) {
			srv := newServer(t, crossHost(tc.target))
			f := newFetcher(t, fetch.Config{Resolver: res})
			_, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("specs.test", "/openapi.json"),
				AllowedHosts: append(allHosts, "127.0.0.1"), AllowedPrefixes: allowLoopback})
			wantCode(t, err, fetch.CodeRedirect)
		})
	}
	if n := other.hits.Load(); n != 0 {
		t.Fatalf("the other host got %d requests", n)
	}
}

func TestFetchStatus(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no such spec: token="+secret, http.StatusNotFound)
	})
	f := newFetcher(t, fetch.Config{})
	_, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("127.0.0.1", "/missing"), AllowedHosts: []string{"127.0.0.1"}, AllowedPrefixes: allowLoopback})
	if fe := wantCode(t, err, fetch.CodeStatus); fe.Status != http.StatusNotFound || !strings.Contains(err.Error(), "404") {
		t.Fatalf("status %d, message %q", fe.Status, err)
	}
}

func TestNew(t *testing.T) {
	for _, cfg := range []fetch.Config{{MaxBytes: -1}, {Timeout: -time.Second}} {
		if _, err := fetch.New(cfg); err == nil {
			t.Fatalf("New(%+v) accepted", cfg)
		}
	}
	f := newFetcher(t, fetch.Config{})
	if f.MaxBytes() != fetch.DefaultMaxBytes {
		t.Fatalf("MaxBytes %d", f.MaxBytes())
	}
}

// The egress error a refusal wraps is reachable for callers that match it.
func TestUnwrapEgress(t *testing.T) {
	srv := newServer(t, serve(doc))
	f := newFetcher(t, fetch.Config{})
	_, err := f.Fetch(t.Context(), fetch.Request{URL: srv.url("127.0.0.1", "/x"), AllowedHosts: []string{"127.0.0.1"}})
	if !errors.Is(err, &egress.Error{Code: egress.CodeAddressBlocked}) {
		t.Fatalf("%v does not wrap an address_blocked egress error", err)
	}
}
