package catalog_test

import (
	"context"
	"testing"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

func ev(tenant string, m bus.Message) *bus.Event {
	meta := m.GetMeta()
	meta.Tenant = tenant
	return &bus.Event{Meta: meta, Msg: m}
}

func meta() *commonv1.EventMeta { return &commonv1.EventMeta{} }

func spec(name, server string) *controlv1.ToolSpec {
	return &controlv1.ToolSpec{Name: name, InputSchema: []byte(`{"type":"object"}`),
		Operation: &controlv1.OperationSpec{Method: "POST", Path: "/v1/messages", Servers: []string{server}},
		Auth:      []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{{Name: "ApiKeyAuth", Kind: "apiKey", In: "header", Param: "X-API-Key"}}}}}
}

func apply(t *testing.T, c *catalog.Catalog, events ...*bus.Event) {
	t.Helper()
	for _, e := range events {
		if err := c.Apply(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

func importVersion(tenant, src string, v uint32, tools ...*controlv1.ToolSpec) []*bus.Event {
	out := []*bus.Event{ev(tenant, &controlv1.SourceVersionStarted{Meta: meta(), SourceId: src, Version: v, Name: "Demo", Slug: "demo"})}
	for _, s := range tools {
		out = append(out, ev(tenant, &controlv1.ToolProposed{Meta: meta(), SourceId: src, Version: v, Tool: s}))
	}
	return append(out, ev(tenant, &controlv1.SourceVersionCommitted{Meta: meta(), SourceId: src, Version: v, ToolCount: uint32(len(tools))}))
}

func approve(t *testing.T, tenant, src string, v uint32, tools ...*controlv1.ToolSpec) *bus.Event {
	t.Helper()
	a := &controlv1.SourceVersionApproved{Meta: meta(), SourceId: src, Version: v}
	for _, s := range tools {
		d, err := catalog.ToolDigest(s)
		if err != nil {
			t.Fatal(err)
		}
		a.Tools = append(a.Tools, &controlv1.ApprovedTool{Name: s.Name, Digest: d})
	}
	return ev(tenant, a)
}

func TestToolLifecycle(t *testing.T) {
	c := catalog.New()
	v1 := spec("send_message", "http://127.0.0.1:8090")
	apply(t, c, importVersion("demo", "src_1", 1, v1)...)
	tl, ok := c.Tool("demo", "send_message")
	if !ok || tl.Approved || tl.ApprovalReason != "source version not approved" {
		t.Fatalf("unapproved tool: %+v %v", tl, ok)
	}
	apply(t, c, approve(t, "demo", "src_1", 1, v1),
		ev("demo", &controlv1.OperationsSelected{Meta: meta(), SourceId: "src_1", Tools: []string{"send_message"}}))
	tl, _ = c.Tool("demo", "send_message")
	if !tl.Approved || !tl.Selected || tl.Version != 1 {
		t.Fatalf("approved tool: %+v", tl)
	}
	// A new proposal with another server does not replace the approved spec.
	v2 := spec("send_message", "http://evil.example")
	apply(t, c, importVersion("demo", "src_1", 2, v2)...)
	tl, _ = c.Tool("demo", "send_message")
	if tl.Version != 1 || tl.Spec.Operation.Servers[0] != "http://127.0.0.1:8090" {
		t.Fatalf("proposal replaced approved spec: %+v", tl)
	}
	// Another tenant sees nothing.
	if _, ok := c.Tool("other", "send_message"); ok {
		t.Fatal("tool visible in another tenant")
	}
	if got := c.ApprovedTools("demo"); len(got) != 1 || got[0].Spec.Name != "send_message" {
		t.Fatalf("approved tools %+v", got)
	}
}

func TestUncommittedVersionIsInvisible(t *testing.T) {
	c := catalog.New()
	events := importVersion("demo", "src_1", 1, spec("a", "http://x"))
	apply(t, c, events[:len(events)-1]...) // no commit
	if _, ok := c.Tool("demo", "a"); ok {
		t.Fatal("uncommitted tool visible")
	}
}

func TestDigestMismatchIsNotApproved(t *testing.T) {
	c := catalog.New()
	s := spec("a", "http://x")
	apply(t, c, importVersion("demo", "src_1", 1, s)...)
	other := spec("a", "http://y")
	apply(t, c, approve(t, "demo", "src_1", 1, other))
	tl, _ := c.Tool("demo", "a")
	if tl.Approved || tl.ApprovalReason != "tool does not match its approved digest" {
		t.Fatalf("%+v", tl)
	}
}

func TestBindingsGrantsKeys(t *testing.T) {
	c := catalog.New()
	apply(t, c,
		ev("demo", &controlv1.BindingCreated{Meta: meta(), BindingId: "bnd_1", SourceId: "src_1", Scheme: "ApiKeyAuth", Environment: "dev", Hosts: []string{"h"}}),
		ev("demo", &controlv1.BindingCreated{Meta: meta(), BindingId: "bnd_2", SourceId: "src_1", Scheme: "ApiKeyAuth", Hosts: []string{"h"}}),
		ev("demo", &controlv1.BindingDisabled{Meta: meta(), BindingId: "bnd_2"}),
		ev("demo", &controlv1.GrantAdded{Meta: meta(), GrantId: "g1", Tool: "a", SubjectType: "agent", SubjectId: "x"}),
		ev("demo", &controlv1.GrantAdded{Meta: meta(), GrantId: "g2", Tool: "a", SubjectType: "agent", SubjectId: "y"}),
		ev("demo", &controlv1.GrantRevoked{Meta: meta(), GrantId: "g2"}),
		ev("demo", &controlv1.AgentKeyIssued{Meta: meta(), AgentId: "x", KeyId: "key_1", KeyHash: []byte("0123456789abcdef0123456789abcdef")}),
	)
	if b := c.BindingsFor("demo", "src_1", "ApiKeyAuth", "dev"); len(b) != 1 || b[0].ID != "bnd_1" {
		t.Fatalf("bindings dev: %+v", b)
	}
	if b := c.BindingsFor("demo", "src_1", "ApiKeyAuth", "prod"); len(b) != 0 {
		t.Fatalf("bindings prod: %+v", b)
	}
	if b := c.BindingsOf("demo", "src_1", "ApiKeyAuth"); len(b) != 1 || b[0].ID != "bnd_1" {
		t.Fatalf("bindings of the scheme in every environment: %+v", b)
	}
	if g := c.Grants("demo"); len(g) != 1 || g[0].ID != "g1" {
		t.Fatalf("grants %+v", g)
	}
	tenant, k, ok := c.KeyByHash([]byte("0123456789abcdef0123456789abcdef"))
	if !ok || tenant != "demo" || k.AgentID != "x" || c.Revoked("demo", "key_1") {
		t.Fatalf("key %v %+v", ok, k)
	}
	apply(t, c, ev("demo", &controlv1.AgentKeyRevoked{Meta: meta(), AgentId: "x", KeyId: "key_1"}))
	if !c.Revoked("demo", "key_1") || c.Revoked("other", "key_1") {
		t.Fatal("revocation not tenant-scoped")
	}
}
