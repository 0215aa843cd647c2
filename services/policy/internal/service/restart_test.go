package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authzed/authzed-go/v1"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/spicedbproc"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/policy/internal/projection"
	"github.com/mcpgw/mcpgw/services/policy/internal/spicedb"
)

const keyRestart = "mgw_restart-canary-3f2e1d0c"

// seed imports, approves and selects one tool, grants it to agent a1 and
// issues a key; it returns the grant ID.
func (e *env) seed(t *testing.T) string {
	t.Helper()
	e.importSource(t, "acme", "src_a", 1, nil, toolSpec("list_channels", "List channels"))
	e.mustCommand(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_a", Version: 1})
	e.mustCommand(t, bus.PolicySelect, "acme", &rpcv1.SelectOperations{Tenant: "acme", SourceId: "src_a", Tools: []string{"list_channels"}})
	g := e.mustCommand(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "list_channels", SubjectType: "agent", SubjectId: "a1"})
	e.issueKey(t, "acme", "a1", "alice", "dev", "ci", keyRestart)
	return g.GetId()
}

func cursorSeq(t *testing.T, e *env) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := e.n.JS.KeyValue(ctx, bus.BucketPolicyState)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, projection.CursorKey)
	if err != nil {
		return 0
	}
	var c struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(entry.Value(), &c); err != nil {
		t.Fatalf("cursor: %v", err)
	}
	return c.Seq
}

func TestRestartRebuildsSpiceDB(t *testing.T) {
	e := newEnv(t)
	sdb := testenv.SpiceDB(t)
	p1 := e.startPolicy(t, sdb.Client, 2*time.Second)
	grant := e.seed(t)
	sc := e.contextFor(t, keyRestart)
	if r := e.check(t, sc, "list_channels"); r.GetOutcome() != "allowed" {
		t.Fatalf("check before restart = %s", r.GetOutcome())
	}
	eventually(t, "cursor stored", func() bool { return cursorSeq(t, e) > 0 })
	p1.stop()

	// serve-testing gives every preshared key its own empty datastore: a
	// fresh SpiceDB, as after a restart of the memory datastore.
	fresh := dial(t, sdb.Addr, "fresh-datastore-key")
	e.startPolicy(t, fresh, 2*time.Second).stop() // rebuilds, then stops
	if !strings.Contains(e.logs.String(), "rebuilding from control") {
		t.Fatal("empty spicedb did not trigger a rebuild")
	}
	p3 := e.startPolicy(t, fresh, 2*time.Second)
	if !strings.Contains(e.logs.String(), "resuming spicedb projection") {
		t.Fatal("a populated spicedb was not resumed from the cursor")
	}
	if r := e.check(t, sc, "list_channels"); r.GetOutcome() != "allowed" {
		t.Fatalf("check after rebuild = %s (%s)", r.GetOutcome(), r.GetReason())
	}
	if got := e.visibleNames(t, sc); got != "list_channels" {
		t.Fatalf("visible after rebuild = %q", got)
	}
	// Writes after a resume still reach SpiceDB.
	e.mustCommand(t, bus.PolicyRevokeGrant, "acme", &rpcv1.RevokeGrant{Tenant: "acme", GrantId: grant})
	if r := e.check(t, sc, "list_channels"); r.GetOutcome() != "denied" {
		t.Fatalf("check after revoke = %s", r.GetOutcome())
	}
	p3.stop()
	e.assertNoCanary(t, adminToken, keyRestart)
}

func dial(t *testing.T, addr, key string) *authzed.Client {
	t.Helper()
	c, err := spicedb.Dial(addr, secret.New([]byte(key)), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSpiceDBDownFailsClosed(t *testing.T) {
	e := newEnv(t)
	// testenv.SpiceDB cannot be stopped before the test ends, so this test
	// starts the pinned binary itself through the same package.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	key := "down-test-key"
	proc, err := spicedbproc.Start(ctx, spicedbproc.Config{Binary: testenv.Bin(t, "spicedb"), Dir: t.TempDir(),
		Mode: spicedbproc.Testing, PresharedKey: secret.New([]byte(key))})
	if err != nil {
		t.Fatalf("start spicedb: %v", err)
	}
	t.Cleanup(func() { _ = proc.Stop() })
	e.startPolicy(t, dial(t, proc.Addr(), key), -1) // no caching: every request asks SpiceDB
	e.seed(t)
	sc := e.contextFor(t, keyRestart)
	if r := e.check(t, sc, "list_channels"); r.GetOutcome() != "allowed" {
		t.Fatalf("check while up = %s", r.GetOutcome())
	}
	if got := e.visibleNames(t, sc); got != "list_channels" {
		t.Fatalf("visible while up = %q", got)
	}
	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	r := e.check(t, sc, "list_channels")
	if r.GetOutcome() != "unavailable" || r.GetError() != nil {
		t.Fatalf("check while down = %s %v, want unavailable", r.GetOutcome(), r.GetError())
	}
	wantCode(t, "visible while down", e.visible(t, sc).GetError(), errcode.Unavailable)
	// Authentication does not depend on SpiceDB.
	if r := e.authenticate(t, keyRestart); r.GetError() != nil {
		t.Fatalf("authenticate while spicedb is down: %v", r.GetError())
	}
}
