package binding_test

import (
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/binding"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/apikey"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/basic"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/bearer"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		in         string
		name, port string
		wantErr    string
	}{
		{"api.example.com", "api.example.com", "", ""},
		{"api.example.com:8443", "api.example.com", "8443", ""},
		{"localhost", "localhost", "", ""},
		{"x-1.example.io:1", "x-1.example.io", "1", ""},
		{"10.0.0.1", "10.0.0.1", "", ""},
		{"10.0.0.1:65535", "10.0.0.1", "65535", ""},
		{"[2001:db8::1]", "2001:db8::1", "", ""},
		{"[2001:db8::1]:443", "2001:db8::1", "443", ""},
		{"", "", "", "empty"},
		{"https://api.example.com", "", "", "scheme"},
		{"api.example.com/v1", "", "", "path"},
		{"api.example.com?x=1", "", "", "path"},
		{"user@api.example.com", "", "", "user info"},
		{"*.example.com", "", "", "wildcard"},
		{"API.example.com", "", "", "lowercase"},
		{"api.example.com.", "", "", "trailing dot"},
		{"api..example.com", "", "", "empty label"},
		{"-api.example.com", "", "", "'-'"},
		{"api_x.example.com", "", "", "a-z"},
		{"api.example.com:", "", "", "empty port"},
		{"api.example.com:0", "", "", "port"},
		{"api.example.com:65536", "", "", "port"},
		{"api.example.com:080", "", "", "port"},
		{"api.example.com:x", "", "", "port"},
		{"2001:db8::1", "", "", "brackets"},
		{"[2001:0db8::1]", "", "", "canonical"},
		{"[10.0.0.1]", "", "", "IPv6"},
		{"[fe80::1%25eth0]", "", "", "zones"},
		{"[2001:db8::1]x", "", "", "after ']'"},
		{"010.0.0.1", "", "", "numeric"},
		{"1.2.3", "", "", "numeric"},
		{"256.1.1.1", "", "", "numeric"},
		{"example.123", "", "", "numeric"},
		{"ex ample.com", "", "", "a-z"},
		{strings.Repeat("a", 64) + ".com", "", "", "63"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			h, err := binding.ParseHost(tt.in)
			if tt.wantErr != "" {
				if errcode.CodeOf(err) != errcode.InvalidArgument || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseHost error = %v, want invalid_argument mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Name != tt.name || h.Port != tt.port || h.String() != tt.in {
				t.Fatalf("ParseHost = %+v (%s)", h, h)
			}
		})
	}
}

func TestCovered(t *testing.T) {
	confirmed := []string{"api.example.com", "uploads.example.com:8443", "[2001:db8::1]:443"}
	tests := []struct {
		request string
		want    bool
	}{
		{"api.example.com", true},
		{"api.example.com:443", true},
		{"API.Example.com", true},
		{"uploads.example.com:8443", true},
		{"uploads.example.com", false},
		{"uploads.example.com:443", false},
		{"[2001:db8::1]:443", true},
		{"[2001:db8::1]", false},
		{"example.com", false},
		{"api.example.com.evil.net", false},
		{"evilapi.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.request, func(t *testing.T) {
			r, err := binding.ParseRequestHost(tt.request)
			if err != nil {
				t.Fatal(err)
			}
			if got := binding.Covered(confirmed, r); got != tt.want {
				t.Fatalf("Covered(%s) = %v, want %v", tt.request, got, tt.want)
			}
		})
	}
	if binding.Covered([]string{"*.example.com", "bad host"}, binding.Host{Name: "a.example.com"}) {
		t.Fatal("an unparsable confirmed host covered a request")
	}
}

func TestCheckHosts(t *testing.T) {
	got, err := binding.CheckHosts([]string{"a.example.com", "b.example.com:1", "a.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a.example.com,b.example.com:1" {
		t.Fatalf("CheckHosts = %v", got)
	}
	if _, err := binding.CheckHosts(nil); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("CheckHosts(nil) = %v", err)
	}
	many := make([]string, binding.MaxHosts+1)
	for i := range many {
		many[i] = "h.example.com"
	}
	if _, err := binding.CheckHosts(many); errcode.CodeOf(err) != errcode.InvalidArgument {
		t.Fatalf("CheckHosts(too many) = %v", err)
	}
}

func strategies(t *testing.T) *strategy.Set {
	t.Helper()
	s, err := strategy.NewSet(apikey.New(), bearer.New(), basic.New())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validCommand() *rpcv1.CreateBinding {
	return &rpcv1.CreateBinding{
		Tenant: "acme", Name: "GitHub (prod)", Strategy: "bearer", SecretRef: "local://acme/github-token#2",
		Hosts: []string{"api.github.com"}, Environment: "prod", SourceId: "src_1", Scheme: "bearerAuth",
	}
}

func TestValidate(t *testing.T) {
	spec, err := binding.Validate(validCommand(), strategies(t))
	if err != nil {
		t.Fatal(err)
	}
	ev := spec.Event("bnd_1")
	if ev.GetBindingId() != "bnd_1" || ev.GetStrategy() != "bearer" || ev.GetPlacement().GetPrefix() != "Bearer " ||
		ev.GetSecretRef() != "local://acme/github-token#2" || ev.GetSourceId() != "src_1" || ev.GetEnvironment() != "prod" {
		t.Fatalf("Event = %v", ev)
	}

	tests := []struct {
		name   string
		mutate func(*rpcv1.CreateBinding)
		code   errcode.Code
	}{
		{"invalid tenant", func(c *rpcv1.CreateBinding) { c.Tenant = "a.b" }, errcode.InvalidID},
		{"name with newline", func(c *rpcv1.CreateBinding) { c.Name = "a\nb" }, errcode.InvalidArgument},
		{"long name", func(c *rpcv1.CreateBinding) { c.Name = strings.Repeat("n", 129) }, errcode.InvalidArgument},
		{"unknown strategy", func(c *rpcv1.CreateBinding) { c.Strategy = "sigv4" }, errcode.InvalidArgument},
		{"bad placement", func(c *rpcv1.CreateBinding) { c.Placement = &controlv1.Placement{In: "cookie"} }, errcode.InvalidArgument},
		{"no secret", func(c *rpcv1.CreateBinding) { c.SecretRef = "" }, errcode.InvalidArgument},
		{"bad secret ref", func(c *rpcv1.CreateBinding) { c.SecretRef = "local://acme/x" }, errcode.InvalidArgument},
		{"secret of another tenant", func(c *rpcv1.CreateBinding) { c.SecretRef = "local://globex/github-token#2" }, errcode.PermissionDenied},
		{"no hosts", func(c *rpcv1.CreateBinding) { c.Hosts = nil }, errcode.InvalidArgument},
		{"bad host", func(c *rpcv1.CreateBinding) { c.Hosts = []string{"http://x"} }, errcode.InvalidArgument},
		{"bad environment", func(c *rpcv1.CreateBinding) { c.Environment = "Prod" }, errcode.InvalidID},
		{"no source", func(c *rpcv1.CreateBinding) { c.SourceId = "" }, errcode.InvalidArgument},
		{"bad source", func(c *rpcv1.CreateBinding) { c.SourceId = "src.>" }, errcode.InvalidID},
		{"no scheme", func(c *rpcv1.CreateBinding) { c.Scheme = "" }, errcode.InvalidArgument},
		{"scheme with control", func(c *rpcv1.CreateBinding) { c.Scheme = "a\x00" }, errcode.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := validCommand()
			tt.mutate(cmd)
			if _, err := binding.Validate(cmd, strategies(t)); errcode.CodeOf(err) != tt.code {
				t.Fatalf("Validate error = %v, want %s", err, tt.code)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	b := catalog.Binding{ID: "bnd_1", Strategy: "bearer", SecretRef: "local://acme/t#1",
		Hosts: []string{"api.example.com"}, Environment: "prod", SourceID: "src_1"}
	ok := binding.Request{Tenant: "acme", Environment: "prod", SourceID: "src_1", Host: binding.Host{Name: "api.example.com", Port: "443"}}
	if err := binding.Check(b, ok); err != nil {
		t.Fatalf("Check = %v", err)
	}
	anyEnv := b
	anyEnv.Environment = ""
	if err := binding.Check(anyEnv, binding.Request{Tenant: "acme", Environment: "dev", SourceID: "src_1", Host: ok.Host}); err != nil {
		t.Fatalf("binding without environment: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*catalog.Binding, *binding.Request)
	}{
		{"disabled", func(b *catalog.Binding, _ *binding.Request) { b.Disabled = true }},
		{"environment", func(_ *catalog.Binding, r *binding.Request) { r.Environment = "dev" }},
		{"no environment in context", func(_ *catalog.Binding, r *binding.Request) { r.Environment = "" }},
		{"source", func(_ *catalog.Binding, r *binding.Request) { r.SourceID = "src_2" }},
		{"host", func(_ *catalog.Binding, r *binding.Request) { r.Host = binding.Host{Name: "evil.example.net"} }},
		{"secret of another tenant", func(b *catalog.Binding, _ *binding.Request) { b.SecretRef = "local://globex/t#1" }},
		{"bad secret ref", func(b *catalog.Binding, _ *binding.Request) { b.SecretRef = "junk" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb, r := b, ok
			tt.mutate(&bb, &r)
			if err := binding.Check(bb, r); errcode.CodeOf(err) != errcode.PermissionDenied {
				t.Fatalf("Check error = %v, want permission_denied", err)
			}
		})
	}
}
