// Package bench measures the gateway's hot path: tools/call through the
// edge with many MCP sessions against a local upstream, and the same
// upstream called directly, in one run. It reports latency percentiles and
// throughput for both, and their ratio, as JSON.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// Config sizes a run.
type Config struct {
	// MCPURL is the gateway's MCP endpoint; AgentKey authenticates to it.
	MCPURL   string
	AgentKey secret.Value
	// Tool and Arguments are called on every iteration.
	Tool      string
	Arguments map[string]any
	// UpstreamURL, UpstreamKey and UpstreamBody describe the direct call
	// that is the baseline (POST with X-API-Key).
	UpstreamURL  string
	UpstreamKey  secret.Value
	UpstreamBody []byte
	// Sessions is the number of concurrent MCP sessions (and of concurrent
	// direct callers); Calls the number of calls each makes; Warmup calls
	// per session are not measured.
	Sessions, Calls, Warmup int
	// Legacy selects the session-based 2025-11-25 protocol instead of the
	// sessionless 2026-07-28 one.
	Legacy bool
}

// Stats summarises one series of calls.
type Stats struct {
	Calls       int     `json:"calls"`
	Errors      int     `json:"errors"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	CallsPerSec float64 `json:"calls_per_sec"`
	WallSeconds float64 `json:"wall_seconds"`
}

// Report is the JSON the bench prints.
type Report struct {
	Protocol string `json:"protocol"`
	Sessions int    `json:"sessions"`
	Gateway  Stats  `json:"gateway"`
	Direct   Stats  `json:"direct"`
	// Ratios of the gateway to the direct baseline measured in this run.
	P50Ratio        float64 `json:"p50_ratio"`
	P99Ratio        float64 `json:"p99_ratio"`
	ThroughputRatio float64 `json:"throughput_ratio"`
}

// Run measures the direct baseline, then the gateway, and reports both.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Sessions <= 0 || cfg.Calls <= 0 {
		return nil, errors.New("bench: sessions and calls must be positive")
	}
	direct, err := runDirect(ctx, cfg)
	if err != nil {
		return nil, err
	}
	gw, err := runGateway(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r := &Report{Protocol: mcp.ProtocolVersion20260728, Sessions: cfg.Sessions, Gateway: gw, Direct: direct}
	if cfg.Legacy {
		r.Protocol = mcp.ProtocolVersion20251125
	}
	if direct.P50Ms > 0 {
		r.P50Ratio = gw.P50Ms / direct.P50Ms
	}
	if direct.P99Ms > 0 {
		r.P99Ratio = gw.P99Ms / direct.P99Ms
	}
	if gw.CallsPerSec > 0 {
		r.ThroughputRatio = direct.CallsPerSec / gw.CallsPerSec
	}
	return r, nil
}

// series runs sessions workers, each making calls timed calls after warmup
// untimed ones.
func series(ctx context.Context, cfg Config, newWorker func(context.Context) (func(context.Context) error, func(), error)) (Stats, error) {
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	workers := make([]func(context.Context) error, cfg.Sessions)
	for i := range workers {
		w, closeFn, err := newWorker(ctx)
		if err != nil {
			return Stats{}, err
		}
		defer closeFn()
		workers[i] = w
	}
	var wg sync.WaitGroup
	start := time.Now()
	for _, w := range workers {
		wg.Add(1)
		go func(w func(context.Context) error) {
			defer wg.Done()
			for i := 0; i < cfg.Warmup+cfg.Calls; i++ {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := w(ctx)
				d := time.Since(t0)
				if i < cfg.Warmup {
					continue
				}
				mu.Lock()
				if err != nil {
					errs++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	wall := time.Since(start)
	return summarise(lat, errs, wall), ctx.Err()
}

func summarise(lat []time.Duration, errs int, wall time.Duration) Stats {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)-1))
		return float64(lat[i].Microseconds()) / 1000
	}
	s := Stats{Calls: len(lat), Errors: errs, P50Ms: pct(0.50), P90Ms: pct(0.90), P99Ms: pct(0.99), MaxMs: pct(1), WallSeconds: wall.Seconds()}
	if wall > 0 {
		s.CallsPerSec = float64(len(lat)) / wall.Seconds()
	}
	return s
}

func runDirect(ctx context.Context, cfg Config) (Stats, error) {
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Sessions}}
	return series(ctx, cfg, func(context.Context) (func(context.Context) error, func(), error) {
		return func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.UpstreamURL, bytes.NewReader(cfg.UpstreamBody))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Key", string(cfg.UpstreamKey.Reveal()))
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode >= 300 {
				return fmt.Errorf("upstream status %d", resp.StatusCode)
			}
			return nil
		}, hc.CloseIdleConnections, nil
	})
}

func runGateway(ctx context.Context, cfg Config) (Stats, error) {
	return series(ctx, cfg, func(ctx context.Context) (func(context.Context) error, func(), error) {
		tr, err := transport.NewStreamableHTTP(cfg.MCPURL, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + string(cfg.AgentKey.Reveal())}))
		if err != nil {
			return nil, nil, err
		}
		version := mcp.ProtocolVersion20260728
		var opts []mcpclient.ClientOption
		if cfg.Legacy {
			version = mcp.ProtocolVersion20251125
			opts = append(opts, mcpclient.WithProtocolVersion(version))
		}
		c := mcpclient.NewClient(tr, opts...)
		if err := c.Start(ctx); err != nil {
			return nil, nil, fmt.Errorf("start mcp client: %w", err)
		}
		init := mcp.InitializeRequest{}
		init.Params.ProtocolVersion = version
		init.Params.ClientInfo = mcp.Implementation{Name: "mcpgw-bench", Version: "1"}
		if _, err := c.Initialize(ctx, init); err != nil {
			_ = c.Close()
			return nil, nil, fmt.Errorf("initialize: %w", err)
		}
		return func(ctx context.Context) error {
			req := mcp.CallToolRequest{}
			req.Params.Name = cfg.Tool
			req.Params.Arguments = cfg.Arguments
			res, err := c.CallTool(ctx, req)
			if err != nil {
				return err
			}
			if res.IsError {
				return errors.New("tool result is an error")
			}
			return nil
		}, func() { _ = c.Close() }, nil
	})
}
