package bus_test

import (
	"testing"

	"github.com/mcpgw/mcpgw/libs/bus"
)

func TestValidToken(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"demo", true}, {"bnd_0a1b", true}, {"a-b_c", true}, {"0", true},
		{"", false}, {"Demo", false}, {"a.b", false}, {"*", false}, {">", false},
		{"a b", false}, {"_x", false}, {"-x", false},
		{string(make([]byte, 65)), false},
	} {
		if got := bus.ValidToken(tc.in); got != tc.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestControlSubject(t *testing.T) {
	s, err := bus.ControlSubject("demo", "binding", "bnd_1", "BindingCreated")
	if err != nil || s != "ctl.demo.binding.bnd_1.BindingCreated" {
		t.Fatalf("got %q, %v", s, err)
	}
	for _, bad := range [][4]string{
		{"de.mo", "binding", "x", "E"}, {"demo", "bind*", "x", "E"}, {"demo", "binding", ">", "E"}, {"demo", "binding", "x", "e.x"},
	} {
		if _, err := bus.ControlSubject(bad[0], bad[1], bad[2], bad[3]); err == nil {
			t.Errorf("ControlSubject%v accepted", bad)
		}
	}
	tok, err := bus.ParseControlSubject("ctl.demo.grant.g1.GrantAdded")
	if err != nil || tok.Tenant != "demo" || tok.Aggregate != "grant" || tok.ID != "g1" || tok.Event != "GrantAdded" {
		t.Fatalf("parse: %+v %v", tok, err)
	}
	if _, err := bus.ParseControlSubject("ctl.demo.grant.g1"); err == nil {
		t.Fatal("short subject parsed")
	}
}

func TestAuditKindsHaveCodesAndOwners(t *testing.T) {
	codes := map[string]bool{}
	for _, k := range bus.AuditKinds() {
		if k.Code == "" || codes[k.Code] {
			t.Errorf("kind %s: missing or duplicate code %q", k.Kind, k.Code)
		}
		codes[k.Code] = true
		if !k.Owner.Valid() || !bus.ValidToken(string(k.Kind)) {
			t.Errorf("kind %s: bad owner or token", k.Kind)
		}
	}
}

func TestPermissionsFollowRegistry(t *testing.T) {
	edge := bus.PermissionsFor(bus.Edge)
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	if has(edge.PublishAllow, bus.BrokerResolve.Subject()) {
		t.Error("edge may request rpc.broker.resolve")
	}
	if !has(edge.PublishAllow, bus.AdapterInvoke.Subject()) {
		t.Error("edge may not request rpc.adapter.invoke")
	}
	if has(edge.SubscribeAllow, "_INBOX.>") || !has(edge.SubscribeAllow, "_INBOX.edge.>") {
		t.Errorf("edge inbox permissions wrong: %v", edge.SubscribeAllow)
	}
	adapter := bus.PermissionsFor(bus.Adapter)
	if !has(adapter.PublishAllow, bus.BrokerResolve.Subject()) || has(adapter.PublishAllow, bus.AdapterInvoke.Subject()) {
		t.Error("adapter permissions wrong")
	}
	for _, s := range bus.Services {
		p := bus.PermissionsFor(s)
		if !has(p.PublishDeny, "$JS.API.STREAM.CREATE.>") || !has(p.PublishDeny, "$JS.API.STREAM.MSG.DELETE.>") {
			t.Errorf("%s may administer streams", s)
		}
	}
}
