package writer_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/libs/testenv"

	"github.com/mcpgw/mcpgw/services/audit/internal/query"
	"github.com/mcpgw/mcpgw/services/audit/internal/row"
	"github.com/mcpgw/mcpgw/services/audit/internal/store"
	"github.com/mcpgw/mcpgw/services/audit/internal/writer"
)

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// sink wraps the real store to inject failures: failBefore makes the next
// n inserts fail without writing; failAfter makes the next n inserts write
// and then report failure (a lost acknowledgement).
type sink struct {
	inner *store.Store
	mu    sync.Mutex
	fails struct{ before, after int }
	seen  map[string]int // event ID → inserts that carried it
	calls int
}

func (s *sink) Insert(ctx context.Context, rows []row.Row) error {
	s.mu.Lock()
	s.calls++
	for _, r := range rows {
		s.seen[r.EventID]++
	}
	before, after := s.fails.before > 0, s.fails.after > 0
	if before {
		s.fails.before--
	} else if after {
		s.fails.after--
	}
	s.mu.Unlock()
	if before {
		return fmt.Errorf("injected failure before insert")
	}
	if err := s.inner.Insert(ctx, rows); err != nil {
		return err
	}
	if after {
		return fmt.Errorf("injected failure after insert")
	}
	return nil
}

func (s *sink) seenCount(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

type env struct {
	n       *testenv.NATSServer
	keys    *testenv.Keys
	store   *store.Store
	sink    *sink
	logs    *logBuffer
	adapter *bus.Runtime
}

// start runs writers for AUDIT and CONTROL as the audit service would, on
// a fresh NATS server and a fresh database of ch.
func start(t *testing.T, ch *testenv.ClickHouseServer, db string, configure func(*sink)) *env {
	t.Helper()
	n := testenv.NATS(t)
	keys := testenv.NewKeys(t)
	rt := n.Runtime(t, keys, bus.Audit)
	st, err := store.Open(store.Config{Addr: ch.Addr, Password: ch.Password, Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.ApplyDDL(ctx); err != nil {
		t.Fatalf("ddl: %v", err)
	}
	e := &env{n: n, keys: keys, store: st, sink: &sink{inner: st, seen: map[string]int{}}, logs: &logBuffer{}, adapter: n.Runtime(t, keys, bus.Adapter)}
	if configure != nil {
		configure(e.sink)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	for _, src := range []struct {
		stream, durable string
		verify          writer.Verify
		mapRow          writer.Map
	}{
		{bus.StreamAudit, bus.DurableAuditEvents, rt.Verifier.VerifyAudit, row.FromAudit},
		{bus.StreamControl, bus.DurableAuditControl, rt.Verifier.VerifyControl, row.FromControl},
	} {
		cons, err := rt.JetStream.Consumer(ctx, src.stream, src.durable)
		if err != nil {
			t.Fatalf("bind %s: %v", src.durable, err)
		}
		w, err := writer.New(writer.Config{Stream: src.stream, Consumer: cons, Verify: src.verify, Map: src.mapRow, Sink: e.sink,
			BatchSize: 50, BatchWait: 200 * time.Millisecond, RetryMin: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = w.Run(runCtx) })
	}
	return e
}

func (e *env) ackFloor(t *testing.T, stream, durable string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.n.JS.Consumer(ctx, stream, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatalf("consumer info %s: %v", durable, err)
	}
	return info.AckFloor.Stream
}

func (e *env) rows(t *testing.T, tenant, requestID string) []row.Row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := e.store.Select(ctx, query.Filter{Tenant: tenant, RequestID: requestID, Limit: 100})
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	return rows
}

func credentialUsed(tenant, requestID string) *auditv1.CredentialUsed {
	return &auditv1.CredentialUsed{
		Meta:      &commonv1.EventMeta{Tenant: tenant, RequestId: requestID},
		Principal: &auditv1.Principal{User: "u1", Agent: "agent_1", Surface: "mcp", Environment: "dev"},
		Call:      &auditv1.Call{Tool: "list_pets", SourceId: "src_1", BindingIds: []string{"bnd_1"}, CredentialStatus: "resolved"},
	}
}

func (e *env) publish(t *testing.T, requestID string) bus.Appended {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := e.adapter.Publisher.PublishAudit(ctx, bus.KindCredentialUsed, credentialUsed("t1", requestID))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return a
}

func TestWriter(t *testing.T) {
	ch := testenv.ClickHouse(t)

	t.Run("writes verified events and acknowledges after insert", func(t *testing.T) {
		e := start(t, ch, "w_ok", nil)
		a := e.publish(t, "req_ok")
		policy := e.n.Runtime(t, e.keys, bus.Policy)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctl, err := policy.Publisher.AppendControl(ctx, bus.AggGrant, "grt_1", &controlv1.GrantAdded{
			Meta:    &commonv1.EventMeta{Tenant: "t1", RequestId: "req_ok", Actor: &commonv1.Actor{Kind: "operator", Id: "admin", Surface: "cli", Via: "policy"}},
			GrantId: "grt_1", Tool: "list_pets", SubjectType: "agent", SubjectId: "agent_1",
		}, bus.Expect{})
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		eventually(t, "two rows", func() bool { return len(e.rows(t, "t1", "req_ok")) == 2 })
		rows := e.rows(t, "t1", "req_ok")
		byKind := map[string]row.Row{}
		for _, r := range rows {
			byKind[r.Kind] = r
		}
		cu, ga := byKind["credential_used"], byKind["grant_added"]
		if cu.EventID != a.ID || cu.StreamSeq != a.Seq || cu.Service != "adapter" || cu.Code != "ADP002" ||
			cu.AgentID != "agent_1" || cu.BindingID != "bnd_1" || cu.Subject != "audit.t1.credential_used" {
			t.Errorf("credential_used row = %+v", cu)
		}
		if ga.EventID != ctl.ID || ga.StreamSeq != ctl.Seq || ga.Service != "policy" || ga.Code != "CTL007" ||
			ga.Actor != "operator:admin" || ga.Surface != "cli" || ga.Tool != "list_pets" {
			t.Errorf("grant_added row = %+v", ga)
		}
		eventually(t, "acknowledgements", func() bool {
			return e.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents) >= a.Seq &&
				e.ackFloor(t, bus.StreamControl, bus.DurableAuditControl) >= ctl.Seq
		})
	})

	t.Run("unverified messages are acknowledged and dropped", func(t *testing.T) {
		e := start(t, ch, "w_forged", nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		forge := func(id *bus.Identity, subject string, ev bus.Message) *nats.Msg {
			meta := ev.GetMeta()
			meta.Id, meta.Type, meta.Time = bus.NewID("evt_"), string(ev.ProtoReflect().Descriptor().FullName()), nil
			return testenv.SignEvent(t, id, subject, ev)
		}
		edgeSigned := forge(e.keys.ID[bus.Edge], "audit.t1.credential_used", credentialUsed("t1", "req_forged"))
		tampered := forge(e.keys.ID[bus.Adapter], "audit.t1.credential_used", credentialUsed("t1", "req_forged"))
		tampered.Data = append(tampered.Data, 0x0a, 0x00)
		junk := nats.NewMsg("audit.t1.credential_used")
		junk.Data = []byte("req_forged junk")
		ctlEv := &controlv1.BindingDisabled{Meta: &commonv1.EventMeta{Tenant: "t1", RequestId: "req_forged", Aggregate: "binding", AggregateId: "bnd_1", AggregateVersion: 1}, BindingId: "bnd_1"}
		ctlForged := forge(e.keys.ID[bus.Edge], "ctl.t1.binding.bnd_1.BindingDisabled", ctlEv)

		var last struct{ audit, control uint64 }
		for _, m := range []*nats.Msg{edgeSigned, tampered, junk, ctlForged} {
			// The admin relays them: the edge's own user may not publish there.
			ack, err := e.n.JS.PublishMsg(ctx, m)
			if err != nil {
				t.Fatalf("publish %s: %v", m.Subject, err)
			}
			if ack.Stream == bus.StreamAudit {
				last.audit = ack.Sequence
			} else {
				last.control = ack.Sequence
			}
		}
		eventually(t, "forged messages acknowledged", func() bool {
			return e.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents) >= last.audit &&
				e.ackFloor(t, bus.StreamControl, bus.DurableAuditControl) >= last.control
		})
		if rows := e.rows(t, "t1", "req_forged"); len(rows) != 0 {
			t.Errorf("forged events written: %+v", rows)
		}
		e.sink.mu.Lock()
		calls := e.sink.calls
		e.sink.mu.Unlock()
		if calls != 0 {
			t.Errorf("sink called %d times for unverified messages", calls)
		}
		logs := e.logs.String()
		for _, want := range []string{
			fmt.Sprintf("subject=audit.t1.credential_used seq=%d", last.audit),
			fmt.Sprintf("subject=ctl.t1.binding.bnd_1.BindingDisabled seq=%d", last.control),
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("no warning with %q in logs:\n%s", want, logs)
			}
		}
		if n := strings.Count(logs, "unverified message dropped"); n != 4 {
			t.Errorf("%d drop warnings, want 4", n)
		}
		// A valid event after the forged ones is still written.
		e.publish(t, "req_after")
		eventually(t, "valid event after forged ones", func() bool { return len(e.rows(t, "t1", "req_after")) == 1 })
	})

	t.Run("failed insert leaves the batch unacknowledged and retries", func(t *testing.T) {
		e := start(t, ch, "w_retry", func(s *sink) { s.fails.before = 3 })
		a := e.publish(t, "req_retry")
		eventually(t, "a failed insert", func() bool { return e.sink.seenCount(a.ID) >= 1 })
		if floor := e.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents); floor >= a.Seq {
			t.Errorf("event acknowledged (ack floor %d) although its insert failed", floor)
		}
		eventually(t, "row after retries", func() bool { return len(e.rows(t, "t1", "req_retry")) == 1 })
		if n := e.sink.seenCount(a.ID); n != 4 {
			t.Errorf("event inserted %d times, want 4 (3 failures, 1 success)", n)
		}
		eventually(t, "acknowledgement", func() bool { return e.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents) >= a.Seq })
		if !strings.Contains(e.logs.String(), "audit insert failed") {
			t.Error("no warning about the failed insert")
		}
	})

	t.Run("duplicate delivery yields one row", func(t *testing.T) {
		e := start(t, ch, "w_dup", func(s *sink) { s.fails.after = 1 })
		a := e.publish(t, "req_dup")
		eventually(t, "redelivery", func() bool { return e.sink.seenCount(a.ID) >= 2 })
		eventually(t, "acknowledgement", func() bool { return e.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents) >= a.Seq })
		if rows := e.rows(t, "t1", "req_dup"); len(rows) != 1 {
			t.Errorf("%d rows after a duplicate delivery, want 1", len(rows))
		}
	})
}

func TestNewRequiresDependencies(t *testing.T) {
	if _, err := writer.New(writer.Config{Stream: bus.StreamAudit}); err == nil {
		t.Error("New without consumer, verifier, mapping and sink succeeded")
	}
	var _ writer.Fetcher = jetstream.Consumer(nil)
}
