package gate_test

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/egress"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/adapter/internal/gate"
)

// The fakes below stand in for the catalog, policy's signature check, DNS
// and policy's decision; the service tests run the same pipeline against
// the real ones.

type fakeCatalog struct {
	tools    map[string]catalog.Tool
	bindings []catalog.Binding
}

func (c *fakeCatalog) Tool(tenant, name string) (catalog.Tool, bool) {
	t, ok := c.tools[tenant+"/"+name]
	return t, ok
}

func (c *fakeCatalog) BindingsFor(tenant, sourceID, scheme, env string) []catalog.Binding {
	var out []catalog.Binding
	for _, b := range c.bindings {
		if b.SourceID == sourceID && b.Scheme == scheme && (b.Environment == "" || b.Environment == env) && !b.Disabled {
			out = append(out, b)
		}
	}
	return out
}

type fakeVerifier struct{ err error }

func (v fakeVerifier) Verify(*commonv1.SignedContext) (*commonv1.Context, error) {
	if v.err != nil {
		return nil, v.err
	}
	return &commonv1.Context{Tenant: "demo", Environment: "dev"}, nil
}

type fakeHosts struct {
	calls int
	err   error
}

func (h *fakeHosts) Check(context.Context, *url.URL, egress.Rules) error {
	h.calls++
	return h.err
}

type fakePolicy struct {
	calls   int
	outcome string
	err     error
}

func (p *fakePolicy) Check(context.Context, *commonv1.SignedContext, string) (string, string, error) {
	p.calls++
	return p.outcome, "", p.err
}

func scheme(name string) *controlv1.AuthScheme {
	return &controlv1.AuthScheme{Name: name, Kind: "apiKey"}
}

func tool(auth ...*controlv1.AuthAlternative) catalog.Tool {
	return catalog.Tool{Tenant: "demo", SourceID: "src", Version: 1, Approved: true, Selected: true,
		AllowHosts: []string{"api.example.com"},
		Spec: &controlv1.ToolSpec{Name: "t", InputSchema: []byte(`{"type":"object","properties":{"n":{"type":"integer","maximum":5}}}`),
			Operation: &controlv1.OperationSpec{Method: "GET", Path: "/x", Servers: []string{"https://api.example.com"}}, Auth: auth}}
}

func binding(id, sch string, hosts ...string) catalog.Binding {
	return catalog.Binding{ID: id, SourceID: "src", Scheme: sch, Hosts: hosts}
}

func TestEvaluate(t *testing.T) {
	alt := func(names ...string) *controlv1.AuthAlternative {
		a := &controlv1.AuthAlternative{}
		for _, n := range names {
			a.Schemes = append(a.Schemes, scheme(n))
		}
		return a
	}
	notApproved := tool()
	notApproved.Approved, notApproved.ApprovalReason = false, "tool does not match its approved digest"
	notSelected := tool()
	notSelected.Selected = false
	tests := []struct {
		name        string
		tool        *catalog.Tool
		bindings    []catalog.Binding
		verifyErr   error
		hostErr     error
		outcome     string
		policyErr   error
		args        string
		gate        gate.Name
		uniform     bool
		hostCalls   int
		policyCalls int
		chosen      []string
	}{
		{name: "no auth needs no binding", tool: ptr(tool()), outcome: "allowed", hostCalls: 1, policyCalls: 1},
		{name: "first alternative that is fully bound", tool: ptr(tool(alt("A", "B"), alt("C"))),
			bindings: []catalog.Binding{binding("bnd_a", "A", "api.example.com"), binding("bnd_c", "C", "api.example.com")},
			outcome:  "allowed", hostCalls: 1, policyCalls: 1, chosen: []string{"bnd_c"}},
		{name: "AND alternative takes one binding per scheme", tool: ptr(tool(alt("A", "B"), alt("C"))),
			bindings: []catalog.Binding{binding("bnd_a", "A", "api.example.com"), binding("bnd_b", "B", "*.example.com")},
			outcome:  "allowed", hostCalls: 1, policyCalls: 1, chosen: []string{"bnd_a", "bnd_b"}},
		{name: "a binding for other hosts is skipped", tool: ptr(tool(alt("A"))),
			bindings: []catalog.Binding{binding("bnd_x", "A", "api.example.com:8443"), binding("bnd_y", "A", "api.example.com")},
			outcome:  "allowed", hostCalls: 1, policyCalls: 1, chosen: []string{"bnd_y"}},
		{name: "an empty alternative needs none", tool: ptr(tool(alt("A"), alt())), outcome: "allowed", hostCalls: 1, policyCalls: 1},
		{name: "no binding", tool: ptr(tool(alt("A"))), bindings: []catalog.Binding{binding("bnd_x", "A", "other.example.com")},
			outcome: "allowed", gate: gate.Binding, hostCalls: 1, policyCalls: 1},
		{name: "context", tool: ptr(tool()), verifyErr: errcode.New(errcode.Unauthenticated, "assertion expired"), gate: gate.Context, uniform: true},
		{name: "unknown tool", gate: gate.Approval, uniform: true},
		{name: "not approved", tool: &notApproved, gate: gate.Approval, uniform: true},
		{name: "not selected", tool: &notSelected, gate: gate.Selection, uniform: true},
		{name: "host check fails before policy", tool: ptr(tool()), hostErr: &egress.Error{Code: egress.CodeAddressBlocked}, gate: gate.Host, uniform: true, hostCalls: 1},
		{name: "policy error is unavailable", tool: ptr(tool()), policyErr: errors.New("timeout"), gate: gate.Policy, uniform: true, hostCalls: 1, policyCalls: 1},
		{name: "unknown policy outcome denies", tool: ptr(tool()), outcome: "maybe", gate: gate.Policy, uniform: true, hostCalls: 1, policyCalls: 1},
		{name: "schema after policy", tool: ptr(tool()), outcome: "allowed", args: `{"n":9}`, gate: gate.Schema, hostCalls: 1, policyCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cat := &fakeCatalog{tools: map[string]catalog.Tool{}, bindings: tt.bindings}
			if tt.tool != nil {
				cat.tools["demo/t"] = *tt.tool
			}
			hosts, pol := &fakeHosts{err: tt.hostErr}, &fakePolicy{outcome: tt.outcome, err: tt.policyErr}
			p, err := gate.New(gate.Config{Catalog: cat, Verifier: fakeVerifier{err: tt.verifyErr}, Hosts: hosts, Policy: pol})
			if err != nil {
				t.Fatal(err)
			}
			args := tt.args
			if args == "" {
				args = `{}`
			}
			d := p.Evaluate(context.Background(), gate.Input{Tool: "t", Arguments: []byte(args)})
			if d.Gate != tt.gate || d.Allowed != (tt.gate == "") || d.Uniform != tt.uniform {
				t.Fatalf("decision gate %q allowed %v uniform %v reason %q", d.Gate, d.Allowed, d.Uniform, d.Reason)
			}
			if !d.Allowed && d.Reason == "" {
				t.Fatal("refusal without a reason")
			}
			if hosts.calls != tt.hostCalls || pol.calls != tt.policyCalls {
				t.Fatalf("host checks %d, policy checks %d; want %d and %d", hosts.calls, pol.calls, tt.hostCalls, tt.policyCalls)
			}
			if got := d.BindingIDs(); len(got) != len(tt.chosen) || (len(got) > 0 && got[0] != tt.chosen[0]) {
				t.Fatalf("chosen bindings %v, want %v", got, tt.chosen)
			}
			if tt.gate == gate.Binding && d.CredentialStatus != gate.CredentialMissing {
				t.Fatalf("credential status %q", d.CredentialStatus)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSizeLimits(t *testing.T) {
	cat := &fakeCatalog{tools: map[string]catalog.Tool{"demo/t": tool()}}
	p, err := gate.New(gate.Config{Catalog: cat, Verifier: fakeVerifier{}, Hosts: &fakeHosts{}, Policy: &fakePolicy{outcome: "allowed"}, MaxArgumentBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Evaluate(context.Background(), gate.Input{Tool: "t", Arguments: []byte(`{"n": 1            }`)})
	if d.Gate != gate.Size || d.Uniform || d.Message == "" {
		t.Fatalf("decision %+v", d)
	}
}
