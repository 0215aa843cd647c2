// Package gate is the one place where the adapter decides whether a tool
// call may go ahead, and in which order it checks: the signed context, then
// approval, selection, host allowlist, policy, schema, binding and size.
//
// Pipeline.Evaluate runs the gates over small interfaces (the catalog, the
// context verifier, a host checker, policy) and returns a Decision; it never
// resolves a credential and never sends anything upstream, so the invoke
// path and rpc.adapter.explain run exactly the same code. Refusals up to and
// including the policy gate are marked Uniform: the caller gets the same
// "unknown or not permitted tool" answer for every one of them, while the
// Decision's gate and reason go to audit and explain. Reasons never carry an
// argument value or a secret.
package gate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/egress"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	"github.com/mcpgw/mcpgw/services/adapter/internal/upstream"
)

// Name names a gate. The values are recorded in audit (Call.gate) and
// returned by explain.
type Name string

// The gates, in the order they run.
const (
	Context   Name = "context"
	Approval  Name = "approval"
	Selection Name = "selection"
	Host      Name = "host"
	Policy    Name = "policy"
	Schema    Name = "schema"
	Binding   Name = "binding"
	Size      Name = "size"
)

// Policy outcomes as audit records them.
const (
	PolicyAllowed      = "allowed"
	PolicyDenied       = "denied"
	PolicyUnavailable  = "unavailable"
	PolicyConditional  = "conditional"
	PolicyNotEvaluated = "not_evaluated"
)

// Credential statuses a gate decision can carry.
const (
	CredentialNotResolved = "not_resolved"
	CredentialMissing     = "missing"
)

// Default limits.
const (
	DefaultMaxArgumentBytes = 256 << 10
	DefaultMaxRequestBytes  = 512 << 10
	DefaultSchemaCacheSize  = 4096
)

// Catalog is the read model the gates consult.
type Catalog interface {
	Tool(tenant, name string) (catalog.Tool, bool)
	BindingsFor(tenant, sourceID, scheme, environment string) []catalog.Binding
}

// ContextVerifier verifies policy's signature on a context; *reqctx.Verifier
// implements it.
type ContextVerifier interface {
	Verify(sc *commonv1.SignedContext) (*commonv1.Context, error)
}

// HostChecker resolves a URL's host and checks it and every address it
// resolves to against rules, without connecting; *egress.Client implements
// it.
type HostChecker interface {
	Check(ctx context.Context, u *url.URL, rules egress.Rules) error
}

// PolicyChecker asks policy whether a context may invoke a tool. An error
// means policy could not decide (unreachable, timed out).
type PolicyChecker interface {
	Check(ctx context.Context, sc *commonv1.SignedContext, tool string) (outcome, reason string, err error)
}

// Config configures a Pipeline.
type Config struct {
	Catalog  Catalog
	Verifier ContextVerifier
	Hosts    HostChecker
	Policy   PolicyChecker
	// MaxArgumentBytes caps the arguments (default DefaultMaxArgumentBytes).
	MaxArgumentBytes int
	// MaxRequestBytes caps the built upstream request (default
	// DefaultMaxRequestBytes).
	MaxRequestBytes int
	// SchemaCacheSize bounds the compiled schemas kept (default
	// DefaultSchemaCacheSize).
	SchemaCacheSize int
}

// Pipeline runs the gates. It is safe for concurrent use.
type Pipeline struct {
	cfg     Config
	schemas *schemas
}

// New returns a Pipeline.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Catalog == nil || cfg.Verifier == nil || cfg.Hosts == nil || cfg.Policy == nil {
		return nil, errors.New("gate: pipeline needs Catalog, Verifier, Hosts and Policy")
	}
	if cfg.MaxArgumentBytes <= 0 {
		cfg.MaxArgumentBytes = DefaultMaxArgumentBytes
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.SchemaCacheSize <= 0 {
		cfg.SchemaCacheSize = DefaultSchemaCacheSize
	}
	return &Pipeline{cfg: cfg, schemas: newSchemas(cfg.SchemaCacheSize)}, nil
}

// Input is one call as the edge forwarded it.
type Input struct {
	Context   *commonv1.SignedContext
	Tool      string
	Arguments []byte
}

// Decision is the outcome of the gates for one call.
type Decision struct {
	// Allowed: every gate passed.
	Allowed bool
	// Gate is the gate that refused (empty when allowed).
	Gate Name
	// Reason says why, for audit and explain: no argument value, no secret.
	Reason string
	// Message is what the caller is told after the policy gate (a tool
	// error result); empty for Uniform refusals.
	Message string
	// Uniform: answer with the uniform "unknown or not permitted tool".
	Uniform bool
	// Context is the verified context (nil when the context gate refused);
	// ClaimedTenant is the tenant the unverified context names, for
	// recording a refusal of the context gate only.
	Context       *commonv1.Context
	ClaimedTenant string
	// Tool is the catalog's tool (zero until the approval gate found one).
	Tool    catalog.Tool
	HasTool bool
	// PolicyOutcome and CredentialStatus as audit records them.
	PolicyOutcome    string
	CredentialStatus string
	// Rules are the tool's allowlist (set from the host gate on).
	Rules egress.Rules
	// Request is the built upstream request (set from the schema gate on).
	Request *upstream.Request
	// Bindings are the bindings of the chosen auth alternative, one per
	// scheme (empty when the tool needs no credential).
	Bindings []catalog.Binding
}

// BindingIDs lists the IDs of the chosen bindings.
func (d *Decision) BindingIDs() []string {
	out := make([]string, 0, len(d.Bindings))
	for _, b := range d.Bindings {
		out = append(out, b.ID)
	}
	return out
}

// Tenant is the tenant the call is recorded under: the verified one, or
// the claimed one when the context gate refused.
func (d *Decision) Tenant() string {
	if d.Context != nil {
		return d.Context.GetTenant()
	}
	return d.ClaimedTenant
}

func (d *Decision) refuse(g Name, reason string) *Decision {
	d.Gate, d.Reason, d.Uniform = g, reason, true
	return d
}

func (d *Decision) refuseClearly(g Name, reason, message string) *Decision {
	d.Gate, d.Reason, d.Message = g, reason, message
	return d
}

// Evaluate runs every gate in order and stops at the first refusal. It
// never resolves a credential and never contacts the upstream (the host
// gate resolves the host name only).
func (p *Pipeline) Evaluate(ctx context.Context, in Input) *Decision {
	d := &Decision{PolicyOutcome: PolicyNotEvaluated, CredentialStatus: CredentialNotResolved}

	// Context: policy's signature, expiry, revocation, a tenant.
	c, err := p.cfg.Verifier.Verify(in.Context)
	if err != nil {
		d.ClaimedTenant = claimedTenant(in.Context)
		_, msg := errcode.Public(err)
		return d.refuse(Context, msg)
	}
	if bus.CheckToken("tenant", c.GetTenant()) != nil {
		return d.refuse(Context, "context names no valid tenant")
	}
	d.Context = c
	tenant := c.GetTenant()

	// Approval: the tool exists and its spec is the approved digest.
	tl, ok := p.cfg.Catalog.Tool(tenant, in.Tool)
	if !ok {
		return d.refuse(Approval, "unknown tool")
	}
	d.Tool, d.HasTool = tl, true
	if !tl.Approved {
		return d.refuse(Approval, tl.ApprovalReason)
	}

	// Selection.
	if !tl.Selected {
		return d.refuse(Selection, "tool not selected")
	}

	// Host allowlist: the server's host, and every address it resolves to.
	base, err := upstream.ServerURL(tl.Spec.GetOperation())
	if err != nil {
		return d.refuse(Host, err.Error())
	}
	prefixes := make([]netip.Prefix, 0, len(tl.AllowPrefixes))
	for _, s := range tl.AllowPrefixes {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return d.refuse(Host, "allowlist has an invalid prefix")
		}
		prefixes = append(prefixes, pf)
	}
	rules, err := egress.NewRules(tl.AllowHosts, prefixes)
	if err != nil {
		return d.refuse(Host, "allowlist is invalid")
	}
	d.Rules = rules
	host, port := upstream.HostPort(base)
	if !rules.AllowsHost(host, port) {
		return d.refuse(Host, "host not in the source's allowlist")
	}
	if err := p.cfg.Hosts.Check(ctx, base, rules); err != nil {
		return d.refuse(Host, hostReason(err))
	}

	// Policy: only "allowed" passes; an error is "unavailable".
	outcome, reason, err := p.cfg.Policy.Check(ctx, in.Context, tl.Spec.GetName())
	switch {
	case err != nil:
		d.PolicyOutcome = PolicyUnavailable
		return d.refuse(Policy, "policy unavailable")
	case outcome == PolicyAllowed:
		d.PolicyOutcome = PolicyAllowed
	default:
		d.PolicyOutcome = outcome
		switch outcome {
		case PolicyDenied, PolicyConditional, PolicyUnavailable:
		default:
			d.PolicyOutcome = PolicyDenied
		}
		if reason == "" {
			reason = "policy " + d.PolicyOutcome
		}
		return d.refuse(Policy, trim(reason, 256))
	}

	// Schema: the arguments against the input schema, then onto the
	// operation's request.
	args, refusal := p.arguments(tenant, tl, in.Arguments)
	if refusal != nil {
		return d.refuseClearly(Schema, refusal.reason, refusal.message)
	}
	req, err := upstream.Build(tl.Spec.GetOperation(), args)
	if err != nil {
		var ae *upstream.ArgumentError
		if errors.As(err, &ae) {
			return d.refuseClearly(Schema, "arguments cannot be mapped onto the request", ae.Message)
		}
		return d.refuseClearly(Schema, err.Error(), "the tool cannot be called: "+err.Error())
	}
	d.Request = req

	// Binding: the first alternative whose every scheme has an active
	// binding for this environment whose hosts include the request's host.
	bindings, ok := p.chooseBindings(tenant, tl, c.GetEnvironment(), req)
	if !ok {
		d.CredentialStatus = CredentialMissing
		msg := fmt.Sprintf("no credential binding for this tool in environment %q", c.GetEnvironment())
		return d.refuseClearly(Binding, msg, msg)
	}
	d.Bindings = bindings

	// Size: the arguments and the built request.
	if n := len(in.Arguments); n > p.cfg.MaxArgumentBytes {
		msg := fmt.Sprintf("arguments are %d bytes, over the %d-byte limit", n, p.cfg.MaxArgumentBytes)
		return d.refuseClearly(Size, msg, msg)
	}
	if n := req.Size(); n > p.cfg.MaxRequestBytes {
		msg := fmt.Sprintf("the upstream request would be %d bytes, over the %d-byte limit", n, p.cfg.MaxRequestBytes)
		return d.refuseClearly(Size, msg, msg)
	}

	d.Allowed = true
	return d
}

type refusal struct{ reason, message string }

// arguments decodes and validates the arguments against the tool's input
// schema (compiled once per tenant, tool and digest).
func (p *Pipeline) arguments(tenant string, tl catalog.Tool, raw []byte) (map[string]any, *refusal) {
	digest, err := catalog.ToolDigest(tl.Spec)
	if err != nil {
		return nil, &refusal{"tool spec cannot be encoded", "the tool cannot be called: its specification is invalid"}
	}
	sch, err := p.schemas.get(tenant, tl.Spec.GetName(), digest, tl.Spec.GetInputSchema())
	if err != nil {
		return nil, &refusal{"input schema cannot be compiled", "the tool cannot be called: its input schema is invalid"}
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte("{}")
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &refusal{"arguments are not valid JSON", "arguments are not valid JSON"}
	}
	args, ok := v.(map[string]any)
	if !ok {
		return nil, &refusal{"arguments are not a JSON object", "arguments must be a JSON object"}
	}
	if err := sch.Validate(v); err != nil {
		msg, first := p.schemas.problems(err)
		reason := "arguments do not match the input schema"
		if first != "" {
			reason += " at " + trim(first, 64)
		}
		return nil, &refusal{reason, msg}
	}
	return args, nil
}

// chooseBindings picks the first auth alternative whose every scheme has an
// active binding whose confirmed hosts include the request's host. An empty
// alternative, or a tool without auth, needs no binding.
func (p *Pipeline) chooseBindings(tenant string, tl catalog.Tool, env string, req *upstream.Request) ([]catalog.Binding, bool) {
	alts := tl.Spec.GetAuth()
	if len(alts) == 0 {
		return nil, true
	}
	host, port := req.Host()
	for _, alt := range alts {
		var chosen []catalog.Binding
		ok := true
		for _, sc := range alt.GetSchemes() {
			b, found := p.bindingFor(tenant, tl.SourceID, sc.GetName(), env, host, port)
			if !found {
				ok = false
				break
			}
			chosen = append(chosen, b)
		}
		if ok {
			return chosen, true
		}
	}
	return nil, false
}

func (p *Pipeline) bindingFor(tenant, sourceID, scheme, env, host, port string) (catalog.Binding, bool) {
	for _, b := range p.cfg.Catalog.BindingsFor(tenant, sourceID, scheme, env) {
		if HostsInclude(b.Hosts, host, port) {
			return b, true
		}
	}
	return catalog.Binding{}, false
}

// HostsInclude reports whether a binding's confirmed hosts (host or
// host:port patterns, as in an allowlist) include host on port.
func HostsInclude(hosts []string, host, port string) bool {
	r, err := egress.NewRules(hosts, nil)
	return err == nil && r.AllowsHost(host, port)
}

// hostReason is an egress refusal as a reason: its code, never a URL.
func hostReason(err error) string {
	var ee *egress.Error
	if errors.As(err, &ee) {
		switch ee.Code {
		case egress.CodeAddressBlocked:
			return "host resolves to a blocked address"
		case egress.CodeHostNotAllowed:
			return "host not in the source's allowlist"
		case egress.CodeDNS:
			return "host name cannot be resolved"
		}
		return "host check failed: " + string(ee.Code)
	}
	return "host check failed"
}

// claimedTenant is the tenant an unverified context names, when it is a
// valid token; it is used only to record the refusal.
func claimedTenant(sc *commonv1.SignedContext) string {
	var c commonv1.Context
	if sc == nil || proto.Unmarshal(sc.GetContext(), &c) != nil || !bus.ValidToken(c.GetTenant()) {
		return ""
	}
	return c.GetTenant()
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
