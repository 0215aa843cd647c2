package app_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

func applyAll(t *testing.T, cat *catalog.Catalog, tenant string, msgs ...bus.Message) {
	t.Helper()
	for _, m := range msgs {
		m.GetMeta().Tenant = tenant
		if err := cat.Apply(context.Background(), &bus.Event{Meta: m.GetMeta(), Msg: m}); err != nil {
			t.Fatal(err)
		}
	}
}

func toolWith(name string, schemes ...*controlv1.AuthScheme) *controlv1.ToolSpec {
	return &controlv1.ToolSpec{Name: name, Auth: []*controlv1.AuthAlternative{{Schemes: schemes}}}
}

func TestSlots(t *testing.T) {
	f := newFixture(t)
	key := &controlv1.AuthScheme{Name: "ApiKeyAuth", Kind: "apiKey", In: "header", Param: "X-API-Key"}
	oauth := &controlv1.AuthScheme{Name: "OAuth", Kind: "oauth2", In: "header", Param: "Authorization"}
	odd := &controlv1.AuthScheme{Name: "inferred:header:X-Sig", Kind: "unknown", In: "header", Param: "X-Sig", Inferred: true}
	m := func() *commonv1.EventMeta { return &commonv1.EventMeta{} }
	applyAll(t, f.cat, "acme",
		&controlv1.SourceVersionStarted{Meta: m(), SourceId: "src_1", Version: 1, Name: "API", Slug: "api"},
		&controlv1.ToolProposed{Meta: m(), SourceId: "src_1", Version: 1, Tool: toolWith("send", key)},
		&controlv1.ToolProposed{Meta: m(), SourceId: "src_1", Version: 1, Tool: toolWith("read", key, oauth)},
		&controlv1.ToolProposed{Meta: m(), SourceId: "src_1", Version: 1, Tool: toolWith("sign", odd)},
		&controlv1.SourceVersionCommitted{Meta: m(), SourceId: "src_1", Version: 1, ToolCount: 3},
		&controlv1.BindingCreated{Meta: m(), BindingId: "bnd_1", Name: "k", SourceId: "src_1", Scheme: "ApiKeyAuth", Environment: "dev", Hosts: []string{"api.example.com"}},
		&controlv1.BindingCreated{Meta: m(), BindingId: "bnd_2", Name: "gone", SourceId: "src_1", Scheme: "ApiKeyAuth"},
		&controlv1.BindingDisabled{Meta: m(), BindingId: "bnd_2"},
	)
	out, err := f.app.Slots(context.Background(), "acme", "src_1")
	if err != nil {
		t.Fatal(err)
	}
	if out.GetVersion() != 1 || out.GetApproved() || len(out.GetSlots()) != 3 {
		t.Fatalf("slots %v", out)
	}
	byName := map[string]int{}
	for i, s := range out.GetSlots() {
		byName[s.GetScheme()] = i
	}
	k := out.GetSlots()[byName["ApiKeyAuth"]]
	if k.GetStrategy() != "api_key" || k.GetBlockedReason() != "" || len(k.GetTools()) != 2 || len(k.GetBindings()) != 1 || k.GetBindings()[0].GetBindingId() != "bnd_1" {
		t.Fatalf("api key slot %v", k)
	}
	if o := out.GetSlots()[byName["OAuth"]]; o.GetStrategy() != "" || o.GetBlockedReason() == "" || len(o.GetBindings()) != 0 {
		t.Fatalf("oauth slot %v", o)
	}
	if u := out.GetSlots()[byName["inferred:header:X-Sig"]]; !u.GetInferred() || u.GetBlockedReason() == "" {
		t.Fatalf("unknown slot %v", u)
	}
	// Another tenant, an unknown source and a bad ID are refused.
	for _, tc := range []struct{ tenant, src string }{{"other", "src_1"}, {"acme", "src_9"}, {"acme", "SRC.1"}} {
		if _, err := f.app.Slots(context.Background(), tc.tenant, tc.src); !errors.Is(err, &errcode.Error{Code: errcode.NotFound}) && !errors.Is(err, &errcode.Error{Code: errcode.InvalidID}) {
			t.Fatalf("%v: %v", tc, err)
		}
	}
}
