package service_test

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// BenchmarkInvoke measures one tools/call through the adapter (edge → NATS
// → gates → policy → broker → credential.used ack → upstream → result →
// invocation.completed ack) against the same upstream call made directly,
// in the same run, and reports the ratio.
func BenchmarkInvoke(b *testing.B) {
	e := newEnv(b)
	e.demo()
	direct := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + e.api.srv.Listener.Addr().String() + "/v1/messages/m1"
	call := func() {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			b.Fatal(err)
		}
		req.Host = e.api.host()
		req.Header.Set("X-API-Key", string(e.secret))
		resp, err := direct.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	call() // warm the connection
	start := time.Now()
	for range b.N {
		call()
	}
	baseline := time.Since(start)

	ctx := e.context(tenant, "dev")
	args := map[string]any{"id": "m1"}
	if reply, _ := e.invoke(ctx, "get_message", args); decodeResult(b, reply).IsError {
		b.Fatal("warm-up call failed")
	}
	b.ResetTimer()
	for range b.N {
		reply, _ := e.invoke(ctx, "get_message", args)
		if reply.GetError() != nil {
			b.Fatal(reply.GetError())
		}
	}
	b.StopTimer()
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	baseOp := float64(baseline.Nanoseconds()) / float64(b.N)
	b.ReportMetric(baseOp, "direct-ns/op")
	b.ReportMetric(perOp/baseOp, "x-direct")
}
