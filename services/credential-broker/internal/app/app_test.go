package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/app"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/local"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/storetest"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/apikey"
)

// publisher is a hand-written Publisher whose next errors are scripted.
type publisher struct {
	mu          sync.Mutex
	controlErrs []error
	auditErrs   []error
	control     []bus.Message
	audit       []bus.Message
	seq         uint64
}

func (p *publisher) AppendControl(_ context.Context, _ bus.Aggregate, _ string, ev bus.Message, expect bus.Expect) (bus.Appended, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.controlErrs) > 0 {
		err := p.controlErrs[0]
		p.controlErrs = p.controlErrs[1:]
		if err != nil {
			return bus.Appended{}, err
		}
	}
	p.seq++
	p.control = append(p.control, ev)
	return bus.Appended{Seq: p.seq, Version: expect.Version + 1}, nil
}

func (p *publisher) PublishAudit(_ context.Context, _ bus.AuditKind, ev bus.Message) (bus.Appended, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.auditErrs) > 0 {
		err := p.auditErrs[0]
		p.auditErrs = p.auditErrs[1:]
		if err != nil {
			return bus.Appended{}, err
		}
	}
	p.seq++
	p.audit = append(p.audit, ev)
	return bus.Appended{Seq: p.seq}, nil
}

// projection is a hand-written Projection that has always caught up.
type projection struct {
	mu      sync.Mutex
	expects int
}

func (p *projection) Expect(string, bus.Aggregate, string) bus.Expect {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expects++
	return bus.Expect{}
}

func (p *projection) WaitFor(context.Context, uint64) error { return nil }

// bindings is a hand-written Bindings; pending bindings appear when the
// control head is read (as if another instance had just written them).
type bindings struct {
	mu      sync.Mutex
	known   map[string]catalog.Binding
	pending map[string]catalog.Binding
}

func (b *bindings) Binding(tenant, id string) (catalog.Binding, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	x, ok := b.known[tenant+"/"+id]
	return x, ok
}

func (b *bindings) head(context.Context) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, v := range b.pending {
		b.known[k] = v
	}
	return 1, nil
}

type fixture struct {
	app   *app.App
	cat   *catalog.Catalog
	pub   *publisher
	proj  *projection
	binds *bindings
	store store.Store
	key   *seal.PrivateKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := local.New(local.Config{Dir: filepath.Join(dir, "secrets"), MasterKeyFile: filepath.Join(dir, "keys", "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	set, err := strategy.NewSet(apikey.New())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{pub: &publisher{}, proj: &projection{}, binds: &bindings{known: map[string]catalog.Binding{}, pending: map[string]catalog.Binding{}}, store: st, key: key, cat: catalog.New()}
	f.app, err = app.New(app.Config{Store: st, Secrets: st, Strategies: set, SealKey: key, Publisher: f.pub,
		Projection: f.proj, Bindings: f.binds, Sources: f.cat, ControlHead: f.binds.head, RefreshTimeout: time.Second, AuditTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) putSecret(t *testing.T, name string) *rpcv1.PutSecret {
	t.Helper()
	sealed, err := seal.Seal(f.key.Public(), []byte(seal.InfoSecret), seal.SecretAAD("acme", name), []byte(storetest.Canary))
	if err != nil {
		t.Fatal(err)
	}
	return &rpcv1.PutSecret{Tenant: "acme", Name: name, SealedValue: sealed}
}

var operator = &commonv1.Authorization{Actor: &commonv1.Context{User: "alice", Surface: "cli"}, RequestId: "req_1"}

func TestPutSecretRetriesOnceOnConflict(t *testing.T) {
	f := newFixture(t)
	f.pub.controlErrs = []error{errcode.New(errcode.Conflict, "aggregate changed concurrently")}
	res, err := f.app.PutSecret(t.Context(), f.putSecret(t, "token"), operator)
	if err != nil {
		t.Fatal(err)
	}
	if f.proj.expects != 2 || len(f.pub.control) != 1 {
		t.Fatalf("expects = %d, events = %d; want 2 and 1", f.proj.expects, len(f.pub.control))
	}
	sw := f.pub.control[0].(*controlv1.SecretWritten)
	if sw.GetSecretRef() != res.ID || sw.GetMeta().GetActor().GetId() != "alice" || sw.GetMeta().GetRequestId() != "req_1" {
		t.Fatalf("SecretWritten = %v", sw)
	}
}

func TestPutSecretForgetsUnrecordedVersion(t *testing.T) {
	f := newFixture(t)
	f.pub.controlErrs = []error{errcode.New(errcode.Unavailable, "append control event")}
	_, err := f.app.PutSecret(t.Context(), f.putSecret(t, "token"), operator)
	if errcode.CodeOf(err) != errcode.Unavailable {
		t.Fatalf("PutSecret error = %v, want unavailable", err)
	}
	ref, err := store.NewRef(local.Backend, "acme", "token", "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Get(t.Context(), "acme", ref); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unrecorded version still stored: %v", err)
	}
}

func (f *fixture) binding(t *testing.T) catalog.Binding {
	t.Helper()
	ref, err := f.store.Put(t.Context(), "acme", "token", secret.New([]byte(storetest.Canary)))
	if err != nil {
		t.Fatal(err)
	}
	return catalog.Binding{ID: "bnd_1", Strategy: "api_key", Placement: &controlv1.Placement{In: "query", Name: "key"},
		SecretRef: ref.String(), Hosts: []string{"api.example.com"}, SourceID: "src_1"}
}

func context1(t *testing.T) *commonv1.Context {
	t.Helper()
	now := time.Now()
	return &commonv1.Context{Tenant: "acme", User: "bob", Environment: "prod",
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute))}
}

func resolveRequest(t *testing.T) (*rpcv1.ResolveRequest, *seal.PrivateKey) {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &rpcv1.ResolveRequest{Tool: "t", SourceId: "src_1", BindingIds: []string{"bnd_1"}, RecipientKey: k.Public().Bytes(),
		RequestId: "req_9", Host: "api.example.com"}, k
}

func TestResolveFindsBindingAfterRefresh(t *testing.T) {
	f := newFixture(t)
	f.binds.pending["acme/bnd_1"] = f.binding(t)
	req, k := resolveRequest(t)
	sealed, err := f.app.Resolve(t.Context(), context1(t), req)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := seal.Open(k, []byte(seal.InfoResolve), []byte("req_9"), sealed)
	if err != nil {
		t.Fatal(err)
	}
	var m rpcv1.ResolvedMaterial
	if err := proto.Unmarshal(pt, &m); err != nil {
		t.Fatal(err)
	}
	if string(m.GetMaterials()[0].GetValue()) != storetest.Canary || m.GetMaterials()[0].GetPlacement().GetIn() != "query" {
		t.Fatal("resolved material differs")
	}
	if len(f.pub.audit) != 1 || f.pub.audit[0].(*auditv1.CredentialResolved).GetCall().GetCredentialStatus() != app.StatusResolved {
		t.Fatalf("audit = %v", f.pub.audit)
	}
}

func TestResolveFailsClosedWhenAuditFails(t *testing.T) {
	f := newFixture(t)
	f.binds.known["acme/bnd_1"] = f.binding(t)
	f.pub.auditErrs = []error{errcode.New(errcode.Unavailable, "append audit event")}
	req, _ := resolveRequest(t)
	sealed, err := f.app.Resolve(t.Context(), context1(t), req)
	if errcode.CodeOf(err) != errcode.Unavailable || sealed != nil {
		t.Fatalf("Resolve = %d bytes, %v; want nothing and unavailable", len(sealed), err)
	}
}

func TestResolveRefusesContextWithoutTenant(t *testing.T) {
	f := newFixture(t)
	c := context1(t)
	c.Tenant, c.PlatformAdmin = "", true
	req, _ := resolveRequest(t)
	if _, err := f.app.Resolve(t.Context(), c, req); errcode.CodeOf(err) != errcode.PermissionDenied {
		t.Fatalf("Resolve = %v, want permission_denied", err)
	}
	if len(f.pub.audit) != 0 {
		t.Fatal("a context without tenant was audited")
	}
}
