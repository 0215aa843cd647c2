package egress_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/mcpgw/mcpgw/libs/egress"
)

const benchBody = `{"id":"item_123","name":"widget","price":1999,"tags":["a","b","c"]}`

// BenchmarkDo measures a guarded call to a loopback upstream through the real
// net.Dialer. Compare with BenchmarkDirect in the same run:
//
//	go test -run '^$' -bench 'Do|Direct' -benchmem ./egress/
func BenchmarkDo(b *testing.B) {
	srv := startServer(b, okHandler(benchBody))
	resolver := newResolver()
	resolver.set("api.test", srv.addr.Addr().String())
	c := newClient(b, egress.Config{Resolver: resolver})
	rules := mustRules(b, []string{"api.test"}, loopbackOnly())
	url := srv.url("api.test", "/v1/items/123?api_key=k")
	req := get(b, url)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := c.Do(ctx, req, rules, egress.WithPoolKey("bnd_bench"))
		if err != nil || len(resp.Body) != len(benchBody) {
			b.Fatalf("Do: %v", err)
		}
	}
	b.StopTimer()
	if n := srv.newConns.Load(); n != 1 {
		b.Fatalf("opened %d connections, want 1", n)
	}
}

// BenchmarkDirect is the baseline: a plain http.Client with its own
// keep-alive transport calling the same kind of loopback upstream.
func BenchmarkDirect(b *testing.B) {
	srv := startServer(b, okHandler(benchBody))
	t := http.DefaultTransport.(*http.Transport).Clone()
	b.Cleanup(t.CloseIdleConnections)
	client := &http.Client{Transport: t}
	url := srv.url(srv.addr.Addr().String(), "/v1/items/123?api_key=k")
	req := get(b, url)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil || len(body) != len(benchBody) {
			b.Fatalf("read: %v", err)
		}
	}
	b.StopTimer()
	if n := srv.newConns.Load(); n != 1 {
		b.Fatalf("opened %d connections, want 1", n)
	}
}
