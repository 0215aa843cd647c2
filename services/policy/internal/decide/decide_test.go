package decide_test

import (
	"errors"
	"testing"

	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/policy/internal/decide"
)

func TestCommand(t *testing.T) {
	denied := &errcode.Error{Code: errcode.PermissionDenied}
	tests := []struct {
		name  string
		actor *commonv1.Context
		ok    bool
	}{
		{"platform admin", &commonv1.Context{PlatformAdmin: true, User: "admin"}, true},
		{"agent of the tenant", &commonv1.Context{Tenant: "demo", Agent: "a1", User: "alice"}, false},
		{"no actor", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decide.Command(tt.actor, "demo", "mcpgw.rpc.v1.AddGrant")
			if tt.ok != (err == nil) {
				t.Fatalf("Command = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, denied) {
				t.Fatalf("refusal code = %v, want permission_denied", err)
			}
		})
	}
}

func TestCombine(t *testing.T) {
	tests := []struct {
		name    string
		answers []decide.Permissionship
		want    decide.Outcome
	}{
		{"agent granted", []decide.Permissionship{decide.HasPermission}, decide.Allowed},
		{"user granted", []decide.Permissionship{decide.NoPermission, decide.HasPermission}, decide.Allowed},
		{"no grant", []decide.Permissionship{decide.NoPermission, decide.NoPermission}, decide.Denied},
		{"caveat lacked context", []decide.Permissionship{decide.ConditionalPermission}, decide.Conditional},
		{"conditional then granted", []decide.Permissionship{decide.ConditionalPermission, decide.HasPermission}, decide.Allowed},
		{"no subject", nil, decide.Denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := decide.Combine(tt.answers...)
			if got != tt.want || reason == "" {
				t.Fatalf("Combine = %s (%q), want %s", got, reason, tt.want)
			}
			if got == decide.Conditional && reason != decide.ReasonMissingContext {
				t.Fatalf("conditional reason = %q", reason)
			}
		})
	}
}

func scheme(name, kind string) *controlv1.AuthScheme {
	return &controlv1.AuthScheme{Name: name, Kind: kind}
}

func alt(s ...*controlv1.AuthScheme) *controlv1.AuthAlternative {
	return &controlv1.AuthAlternative{Schemes: s}
}

func TestServable(t *testing.T) {
	bound := map[string]bool{"key": true, "basic": true, "token": true}
	has := func(s string) bool { return bound[s] }
	tests := []struct {
		name string
		auth []*controlv1.AuthAlternative
		want bool
	}{
		{"no requirement", nil, true},
		{"empty alternative", []*controlv1.AuthAlternative{alt(scheme("nokey", "apiKey")), alt()}, true},
		{"bound api key", []*controlv1.AuthAlternative{alt(scheme("key", "apiKey"))}, true},
		{"unbound api key", []*controlv1.AuthAlternative{alt(scheme("nokey", "apiKey"))}, false},
		{"AND with one unbound", []*controlv1.AuthAlternative{alt(scheme("key", "apiKey"), scheme("nokey", "http-basic"))}, false},
		{"AND all bound", []*controlv1.AuthAlternative{alt(scheme("key", "apiKey"), scheme("basic", "http-basic"))}, true},
		{"OR second bound", []*controlv1.AuthAlternative{alt(scheme("nokey", "apiKey")), alt(scheme("token", "http-bearer"))}, true},
		{"kind without strategy", []*controlv1.AuthAlternative{alt(scheme("key", "oauth2"))}, false},
		{"unknown blocks even with another alternative", []*controlv1.AuthAlternative{alt(scheme("key", "apiKey")), alt(scheme("x", "unknown"))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := decide.Servable(&controlv1.ToolSpec{Name: "t", Auth: tt.auth}, has)
			if got != tt.want {
				t.Fatalf("Servable = %v (%q), want %v", got, reason, tt.want)
			}
			if !got && reason == "" {
				t.Fatal("no reason for an unservable tool")
			}
		})
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]bool{
		"send_message": true, "Get-Pet": true, "": false, "a.b": false, "a b": false, "x@y": false,
		string(make([]byte, 129)): false,
	} {
		if got := decide.ValidToolName(name); got != want {
			t.Errorf("ValidToolName(%q) = %v", name, got)
		}
	}
	for name, want := range map[string]bool{
		"mcpgw.rpc.v1.AddGrant": true, "importer.import": true, "": false, "a/b": false, ".x": false, "x.": false,
	} {
		if got := decide.ValidCommandName(name); got != want {
			t.Errorf("ValidCommandName(%q) = %v", name, got)
		}
	}
}
