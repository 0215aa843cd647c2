// Command bench starts the whole stack in a temporary state directory (or
// uses a running one with -mcp-url), drives tools/call through the edge with
// many MCP sessions, calls the same upstream directly in the same run, and
// prints the figures as JSON.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/tools/bench"
	"github.com/mcpgw/mcpgw/tools/devstack"
)

func main() {
	sessions := flag.Int("sessions", 16, "concurrent MCP sessions (and direct callers)")
	calls := flag.Int("calls", 200, "measured calls per session")
	warmup := flag.Int("warmup", 10, "unmeasured calls per session")
	legacy := flag.Bool("legacy", false, "use the session-based 2025-11-25 protocol instead of the sessionless 2026-07-28 one")
	both := flag.Bool("both-protocols", true, "measure both protocols (overrides -legacy)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wd, _ := os.Getwd()
	root, err := testenv.FindRoot(wd)
	if err != nil {
		fail(err)
	}
	dir, err := os.MkdirTemp("", "mcpgw-bench-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	// The edge's per-credential rate limit is off: every session uses the
	// demo agent's key, and the bench measures the hot path, not the limiter.
	s, err := devstack.Start(sctx, devstack.Config{Root: root, StateDir: dir, EdgeAddr: "127.0.0.1:0",
		ExtraEnv: []string{"MCPGW_RATE=-1"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fail(err)
	}
	defer s.Stop()
	base := bench.Config{
		MCPURL: s.MCPURL(), AgentKey: s.AgentKey, Tool: devstack.DemoTool,
		Arguments:   map[string]any{"to": "bench@example.com", "body": "benchmark message"},
		UpstreamURL: s.DemoURL + "/v1/messages", UpstreamKey: s.Secrets["demo api key"],
		UpstreamBody: []byte(`{"to":"bench@example.com","body":"benchmark message"}`),
		Sessions:     *sessions, Calls: *calls, Warmup: *warmup, Legacy: *legacy,
	}
	var reports []*bench.Report
	modes := []bool{*legacy}
	if *both {
		modes = []bool{false, true}
	}
	for _, l := range modes {
		cfg := base
		cfg.Legacy = l
		r, err := bench.Run(ctx, cfg)
		if err != nil {
			fail(err)
		}
		reports = append(reports, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(map[string]any{"reports": reports})
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
