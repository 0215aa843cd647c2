package catalog_test

import (
	"testing"

	"github.com/mcpgw/mcpgw/libs/catalog"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

func TestSlotsOf(t *testing.T) {
	key := &controlv1.AuthScheme{Name: "ApiKeyAuth", Kind: "apiKey", In: "header", Param: "X-API-Key"}
	oauth := &controlv1.AuthScheme{Name: "OAuth", Kind: "oauth2"}
	odd := &controlv1.AuthScheme{Name: "inferred:header:X-Sig", Kind: "unknown", In: "header", Param: "X-Sig", Inferred: true}
	tool := func(name string, alts ...[]*controlv1.AuthScheme) *controlv1.ToolSpec {
		s := &controlv1.ToolSpec{Name: name}
		for _, a := range alts {
			s.Auth = append(s.Auth, &controlv1.AuthAlternative{Schemes: a})
		}
		return s
	}
	tools := []*controlv1.ToolSpec{
		tool("send", []*controlv1.AuthScheme{key}),
		tool("read", []*controlv1.AuthScheme{key, oauth}, []*controlv1.AuthScheme{key}),
		tool("sign", []*controlv1.AuthScheme{odd}),
		tool("health"),
	}
	bound := map[string][]catalog.Binding{"ApiKeyAuth": {{ID: "bnd_1"}}}
	slots := catalog.SlotsOf(tools, func(s string) []catalog.Binding { return bound[s] })
	if len(slots) != 3 || slots[0].Scheme != "ApiKeyAuth" || slots[1].Scheme != "OAuth" || slots[2].Scheme != "inferred:header:X-Sig" {
		t.Fatalf("slots %+v", slots)
	}
	if k := slots[0]; k.Strategy != "api_key" || k.BlockedReason != "" || len(k.Tools) != 2 || k.Tools[0] != "read" || len(k.Bindings) != 1 {
		t.Fatalf("api key slot %+v", k)
	}
	if o := slots[1]; o.Strategy != "" || o.BlockedReason == "" || len(o.Bindings) != 0 {
		t.Fatalf("oauth slot %+v", o)
	}
	if u := slots[2]; !u.Inferred || u.BlockedReason == "" {
		t.Fatalf("unknown slot %+v", u)
	}
	if len(catalog.SlotsOf(nil, nil)) != 0 {
		t.Fatal("slots of no tools")
	}
}
