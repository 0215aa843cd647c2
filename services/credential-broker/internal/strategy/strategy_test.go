package strategy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/apikey"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/basic"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/bearer"
)

const canary = "strategy-canary-9d2e41"

func set(t *testing.T) *strategy.Set {
	t.Helper()
	s, err := strategy.NewSet(apikey.New(), bearer.New(), basic.New())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSet(t *testing.T) {
	s := set(t)
	if got := strings.Join(s.Names(), ","); got != "api_key,basic,bearer" {
		t.Fatalf("Names = %s", got)
	}
	for _, name := range []string{"api_key", "bearer", "basic"} {
		st, err := s.Lookup(name)
		if err != nil || st.Name() != name {
			t.Fatalf("Lookup(%s) = %v, %v", name, st, err)
		}
	}
	for _, name := range []string{"", "oauth2cc", "API_KEY"} {
		_, err := s.Lookup(name)
		if errcode.CodeOf(err) != errcode.InvalidArgument || !strings.Contains(err.Error(), "api_key, basic, bearer") {
			t.Fatalf("Lookup(%q) error = %v, want invalid_argument listing the strategies", name, err)
		}
	}
	if _, err := strategy.NewSet(apikey.New(), apikey.New()); err == nil {
		t.Fatal("NewSet accepted a strategy twice")
	}
}

func TestPlacement(t *testing.T) {
	tests := []struct {
		strategy string
		in       *controlv1.Placement
		want     *controlv1.Placement // nil: refused
	}{
		{"api_key", &controlv1.Placement{In: "header", Name: "X-API-Key"}, &controlv1.Placement{In: "header", Name: "X-API-Key"}},
		{"api_key", &controlv1.Placement{In: "query", Name: "api_key"}, &controlv1.Placement{In: "query", Name: "api_key"}},
		{"api_key", &controlv1.Placement{In: "header", Name: "Authorization", Prefix: "Token "}, &controlv1.Placement{In: "header", Name: "Authorization", Prefix: "Token "}},
		{"api_key", nil, nil},
		{"api_key", &controlv1.Placement{In: "header"}, nil},
		{"api_key", &controlv1.Placement{In: "cookie", Name: "k"}, nil},
		{"api_key", &controlv1.Placement{In: "body", Name: "k"}, nil},
		{"api_key", &controlv1.Placement{In: "header", Name: "X API Key"}, nil},
		{"api_key", &controlv1.Placement{In: "header", Name: "X-Key\r\nEvil: 1"}, nil},
		{"api_key", &controlv1.Placement{In: "query", Name: "a&b"}, nil},
		{"api_key", &controlv1.Placement{In: "header", Name: "K", Prefix: "x\n"}, nil},
		{"api_key", &controlv1.Placement{In: "header", Name: strings.Repeat("k", 129)}, nil},
		{"bearer", nil, &controlv1.Placement{In: "header", Name: "Authorization", Prefix: "Bearer "}},
		{"bearer", &controlv1.Placement{Name: "X-Auth"}, &controlv1.Placement{In: "header", Name: "X-Auth", Prefix: "Bearer "}},
		{"bearer", &controlv1.Placement{In: "query", Name: "access_token"}, nil},
		{"basic", nil, &controlv1.Placement{In: "header", Name: "Authorization", Prefix: "Basic "}},
		{"basic", &controlv1.Placement{In: "header", Name: "authorization"}, &controlv1.Placement{In: "header", Name: "Authorization", Prefix: "Basic "}},
		{"basic", &controlv1.Placement{In: "header", Name: "X-Basic"}, nil},
		{"basic", &controlv1.Placement{In: "query"}, nil},
		{"basic", &controlv1.Placement{Prefix: "Bearer "}, nil},
	}
	s := set(t)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %v", tt.strategy, tt.in), func(t *testing.T) {
			st, err := s.Lookup(tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Placement(tt.in)
			if tt.want == nil {
				if errcode.CodeOf(err) != errcode.InvalidArgument || got != nil {
					t.Fatalf("Placement = %v, %v; want invalid_argument", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.GetIn() != tt.want.GetIn() || got.GetName() != tt.want.GetName() || got.GetPrefix() != tt.want.GetPrefix() {
				t.Fatalf("Placement = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMaterial(t *testing.T) {
	tests := []struct {
		strategy string
		secret   string
		value    string
		username string
		ok       bool
	}{
		{"api_key", canary, canary, "", true},
		{"api_key", canary + " with inner space", canary + " with inner space", "", true},
		{"api_key", canary + "\r\nX-Evil: 1", "", "", false},
		{"api_key", " " + canary, "", "", false},
		{"api_key", canary + "\x00", "", "", false},
		{"bearer", canary, canary, "", true},
		{"bearer", canary + "\n", "", "", false},
		{"basic", "svc:" + canary, canary, "svc", true},
		{"basic", "svc:" + canary + ":with:colons", canary + ":with:colons", "svc", true},
		{"basic", "svc:", "", "svc", true},
		{"basic", canary, "", "", false},
		{"basic", ":" + canary, "", "", false},
		{"basic", "svc:" + canary + "\r\n", "", "", false},
		{"basic", "s\x01vc:" + canary, "", "", false},
	}
	s := set(t)
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.strategy, i), func(t *testing.T) {
			st, err := s.Lookup(tt.strategy)
			if err != nil {
				t.Fatal(err)
			}
			m, err := st.Material(secret.New([]byte(tt.secret)))
			if !tt.ok {
				if errcode.CodeOf(err) != errcode.InvalidArgument || m != nil {
					t.Fatalf("Material = %v; want invalid_argument", err)
				}
				if strings.Contains(err.Error(), canary) || strings.Contains(err.Error(), "svc") {
					t.Fatalf("error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(m.GetValue()) != tt.value || m.GetUsername() != tt.username {
				t.Fatal("Material returned other value or username than expected")
			}
		})
	}
}
