package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/libs/testenv"
)

type fixture struct {
	n    *testenv.NATSServer
	keys *testenv.Keys
	ver  *bus.Verifier
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{n: testenv.NATS(t), keys: testenv.NewKeys(t)}
	v, err := bus.NewVerifier(f.keys.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	f.ver = v
	return f
}

func (f *fixture) js(t *testing.T, s bus.Service) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(f.n.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (f *fixture) publisher(t *testing.T, s bus.Service) *bus.Publisher {
	t.Helper()
	p, err := bus.NewPublisher(bus.PublisherConfig{JetStream: f.js(t, s), Identity: f.keys.ID[s]})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func binding(id string) *controlv1.BindingCreated {
	return &controlv1.BindingCreated{
		Meta:      &commonv1.EventMeta{Tenant: "demo", RequestId: "req_1", Actor: &commonv1.Actor{Kind: "operator", Id: "admin"}},
		BindingId: id, Name: "demo key", Strategy: "api_key", Hosts: []string{"api.example.com"},
	}
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func lastControl(t *testing.T, f *fixture) *jetstream.RawStreamMsg {
	t.Helper()
	s, err := f.n.JS.Stream(ctx(t), bus.StreamControl)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(ctx(t), info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAppendAndVerify(t *testing.T) {
	f := newFixture(t)
	p := f.publisher(t, bus.Broker)
	got, err := p.AppendControl(ctx(t), bus.AggBinding, "bnd_1", binding("bnd_1"), bus.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Seq == 0 {
		t.Fatalf("appended %+v", got)
	}
	m := lastControl(t, f)
	ev, err := f.ver.VerifyControl(m.Subject, m.Header, m.Data)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if ev.Signer != bus.Broker || ev.Name() != "BindingCreated" || ev.Meta.GetAggregateVersion() != 1 {
		t.Fatalf("event %+v", ev)
	}
	// Tampering with the payload breaks the signature.
	bad := append([]byte(nil), m.Data...)
	bad[len(bad)-1] ^= 1
	if _, err := f.ver.VerifyControl(m.Subject, m.Header, bad); err == nil {
		t.Fatal("tampered payload verified")
	}
	// The same bytes on another aggregate's subject are refused.
	if _, err := f.ver.VerifyControl("ctl.other.binding.bnd_1.BindingCreated", m.Header, m.Data); err == nil {
		t.Fatal("event verified on another tenant's subject")
	}
}

func TestOnlyOwnerMayAppend(t *testing.T) {
	f := newFixture(t)
	// The publisher refuses locally...
	if _, err := f.publisher(t, bus.Importer).AppendControl(ctx(t), bus.AggBinding, "bnd_1", binding("bnd_1"), bus.Expect{}); err == nil {
		t.Fatal("importer appended a binding event")
	}
	// ...and an event the importer signs for an aggregate it does not own,
	// put on the stream by another path, does not verify.
	ev := &controlv1.SourceVersionApproved{Meta: &commonv1.EventMeta{Tenant: "demo", Id: bus.NewID("evt_"), Type: "mcpgw.control.v1.SourceVersionApproved",
		Aggregate: "sourcepolicy", AggregateId: "src_1", AggregateVersion: 1}, SourceId: "src_1", Version: 1}
	msg := testenv.SignEvent(t, f.keys.ID[bus.Importer], "ctl.demo.sourcepolicy.src_1.SourceVersionApproved", ev)
	if _, err := f.n.JS.PublishMsg(ctx(t), msg); err != nil {
		t.Fatal(err)
	}
	m := lastControl(t, f)
	if _, err := f.ver.VerifyControl(m.Subject, m.Header, m.Data); !errors.Is(err, &errcode.Error{Code: errcode.BadSignature}) {
		t.Fatalf("approval signed by importer: %v", err)
	}
}

func TestOptimisticConcurrencyRace(t *testing.T) {
	f := newFixture(t)
	p := f.publisher(t, bus.Broker)
	first, err := p.AppendControl(ctx(t), bus.AggBinding, "bnd_1", binding("bnd_1"), bus.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	const writers = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := &controlv1.BindingDisabled{Meta: &commonv1.EventMeta{Tenant: "demo"}, BindingId: "bnd_1"}
			_, err := p.AppendControl(ctx(t), bus.AggBinding, "bnd_1", ev, bus.Expect{LastSeq: first.Seq, Version: first.Version})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, &errcode.Error{Code: errcode.Conflict}):
				conflicts++
			default:
				t.Errorf("append: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != writers-1 {
		t.Fatalf("wins=%d conflicts=%d", wins, conflicts)
	}
	// Another aggregate is not affected by this one's sequence.
	if _, err := p.AppendControl(ctx(t), bus.AggBinding, "bnd_2", binding("bnd_2"), bus.Expect{}); err != nil {
		t.Fatalf("other aggregate: %v", err)
	}
}

func TestJunkDoesNotBlockWrites(t *testing.T) {
	f := newFixture(t)
	p := f.publisher(t, bus.Broker)
	if _, err := p.AppendControl(ctx(t), bus.AggBinding, "bnd_1", binding("bnd_1"), bus.Expect{}); err != nil {
		t.Fatal(err)
	}
	// Junk lands on the aggregate's subjects (as a JetStream relay could put it there).
	if _, err := f.n.JS.Publish(ctx(t), "ctl.demo.binding.bnd_1.BindingDisabled", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	proj := startProjection(t, f, bus.Broker, nil)
	waitReady(t, proj)
	exp := proj.Expect("demo", bus.AggBinding, "bnd_1")
	if exp.Version != 1 || exp.LastSeq != 2 {
		t.Fatalf("expect %+v", exp)
	}
	ev := &controlv1.BindingDisabled{Meta: &commonv1.EventMeta{Tenant: "demo"}, BindingId: "bnd_1"}
	if _, err := p.AppendControl(ctx(t), bus.AggBinding, "bnd_1", ev, exp); err != nil {
		t.Fatalf("write after junk: %v", err)
	}
}

func TestDuplicateIDTakenIsDetected(t *testing.T) {
	f := newFixture(t)
	p := f.publisher(t, bus.Adapter)
	id := bus.NewID("evt_")
	// An attacker publishes a message with the ID first.
	m := nats.NewMsg("audit.demo.credential_used")
	m.Header.Set(nats.MsgIdHdr, id)
	m.Data = []byte("forged")
	if _, err := f.n.JS.PublishMsg(ctx(t), m); err != nil {
		t.Fatal(err)
	}
	ev := &auditv1.CredentialUsed{Meta: &commonv1.EventMeta{Tenant: "demo", Id: id}}
	_, err := p.PublishAudit(ctx(t), bus.KindCredentialUsed, ev)
	if !errors.Is(err, &errcode.Error{Code: errcode.IDTaken}) {
		t.Fatalf("publish with taken ID: %v", err)
	}
	// Our own retry of the same event is a harmless duplicate.
	ev2 := &auditv1.CredentialUsed{Meta: &commonv1.EventMeta{Tenant: "demo"}}
	if _, err := p.PublishAudit(ctx(t), bus.KindCredentialUsed, ev2); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PublishAudit(ctx(t), bus.KindCredentialUsed, ev2); err != nil {
		t.Fatalf("own retry: %v", err)
	}
}

func startProjection(t *testing.T, f *fixture, s bus.Service, apply bus.Applier) *bus.Projection {
	t.Helper()
	proj, err := bus.NewProjection(bus.ProjectionConfig{JetStream: f.js(t, s), Verifier: f.ver})
	if err != nil {
		t.Fatal(err)
	}
	if apply == nil {
		apply = func(context.Context, *bus.Event) error { return nil }
	}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = proj.Run(c, apply) }()
	t.Cleanup(func() { cancel(); <-done })
	return proj
}

func waitReady(t *testing.T, p *bus.Projection) {
	t.Helper()
	select {
	case <-p.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("projection not ready")
	}
}

func TestProjectionDropsReplaysAndGaps(t *testing.T) {
	f := newFixture(t)
	p := f.publisher(t, bus.Policy)
	grant := &controlv1.GrantAdded{Meta: &commonv1.EventMeta{Tenant: "demo"}, GrantId: "g1", Tool: "send_message", SubjectType: "agent", SubjectId: "a1"}
	a1, err := p.AppendControl(ctx(t), bus.AggGrant, "g1", grant, bus.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	revoke := &controlv1.GrantRevoked{Meta: &commonv1.EventMeta{Tenant: "demo"}, GrantId: "g1"}
	if _, err := p.AppendControl(ctx(t), bus.AggGrant, "g1", revoke, bus.Expect{LastSeq: a1.Seq, Version: a1.Version}); err != nil {
		t.Fatal(err)
	}
	// An old, validly signed "granted" (version 1) replayed after "revoked".
	old := &controlv1.GrantAdded{Meta: &commonv1.EventMeta{Tenant: "demo", Id: bus.NewID("evt_"), Type: "mcpgw.control.v1.GrantAdded",
		Aggregate: "grant", AggregateId: "g1", AggregateVersion: 1}, GrantId: "g1", Tool: "send_message", SubjectType: "agent", SubjectId: "a1"}
	if _, err := f.n.JS.PublishMsg(ctx(t), testenv.SignEvent(t, f.keys.ID[bus.Policy], "ctl.demo.grant.g1.GrantAdded", old)); err != nil {
		t.Fatal(err)
	}
	// A signed event that skips a version (a gap).
	gap := &controlv1.GrantAdded{Meta: &commonv1.EventMeta{Tenant: "demo", Id: bus.NewID("evt_"), Type: "mcpgw.control.v1.GrantAdded",
		Aggregate: "grant", AggregateId: "g1", AggregateVersion: 7}, GrantId: "g1"}
	if _, err := f.n.JS.PublishMsg(ctx(t), testenv.SignEvent(t, f.keys.ID[bus.Policy], "ctl.demo.grant.g1.GrantAdded", gap)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var applied []string
	proj := startProjection(t, f, bus.Policy, func(_ context.Context, ev *bus.Event) error {
		mu.Lock()
		defer mu.Unlock()
		applied = append(applied, ev.Name())
		return nil
	})
	waitReady(t, proj)
	mu.Lock()
	defer mu.Unlock()
	if len(applied) != 2 || applied[0] != "GrantAdded" || applied[1] != "GrantRevoked" {
		t.Fatalf("applied %v", applied)
	}
	if st := proj.Expect("demo", bus.AggGrant, "g1"); st.Version != 2 || st.LastSeq != 4 {
		t.Fatalf("state %+v", st)
	}
}
