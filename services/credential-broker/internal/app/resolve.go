package app

import (
	"context"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/binding"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
)

// Limits of a resolve request.
const (
	// MaxResolveBindings bounds the bindings of one requirement alternative.
	MaxResolveBindings = 16
	// MaxRequestIDLen bounds the request ID (the sealing's associated data).
	MaxRequestIDLen = 128
	// auditBudget bounds caller-supplied text recorded in audit events.
	auditBudget = 256
)

// Credential statuses recorded in audit (audit.v1.Call.credential_status).
const (
	StatusResolved = "resolved"
	StatusDenied   = "denied"
	StatusMissing  = "missing"
	StatusError    = "error"
)

// Resolve releases the material of the bindings a request names, sealed to
// the request's recipient key (info seal.InfoResolve, associated data the
// request ID), for a caller whose context c policy signed (the port
// verified it). Every binding must exist in c's tenant, be active, serve
// c's environment and the request's source, and confirm the request's
// host; its secret is read through the cache. The material is released only
// after CredentialResolved is stored in AUDIT. Any refusal records
// CredentialDenied with its reason and returns an error (permission_denied,
// not_found, invalid_argument; unavailable when the secret store or the
// audit stream fails); no material is returned with an error.
func (a *App) Resolve(ctx context.Context, c *commonv1.Context, req *rpcv1.ResolveRequest) ([]byte, error) {
	if err := bus.CheckToken("tenant", c.GetTenant()); err != nil {
		return nil, errcode.New(errcode.PermissionDenied, "context names no tenant")
	}
	sealed, err := a.resolve(ctx, c, req)
	if err != nil {
		a.deny(ctx, c, req, err)
		return nil, err
	}
	ev := &auditv1.CredentialResolved{
		Meta: a.auditMeta(ctx, c, req), Principal: principal(c),
		Call: a.call(req, StatusResolved, ""),
	}
	if err := a.publishAudit(ctx, bus.KindCredentialResolved, ev); err != nil {
		a.log.Error("credential not released: audit not stored", "tenant", c.GetTenant(), "binding_ids", req.GetBindingIds(), "err", err)
		return nil, errcode.Wrap(errcode.Unavailable, "audit unavailable; credential not released", err)
	}
	a.log.Info("credential resolved", "tenant", c.GetTenant(), "binding_ids", req.GetBindingIds(),
		"source_id", req.GetSourceId(), "request_id", req.GetRequestId())
	return sealed, nil
}

// resolve checks the request and builds the sealed material.
func (a *App) resolve(ctx context.Context, c *commonv1.Context, req *rpcv1.ResolveRequest) ([]byte, error) {
	tenant := c.GetTenant()
	if err := checkResolveRequest(req); err != nil {
		return nil, err
	}
	host, err := binding.ParseRequestHost(req.GetHost())
	if err != nil {
		return nil, err
	}
	recipient, err := seal.ParsePublicKeyBytes(req.GetRecipientKey())
	if err != nil {
		return nil, errcode.Wrap(errcode.InvalidArgument, "recipient_key is not an HPKE X25519 public key", err)
	}
	want := binding.Request{Tenant: tenant, Environment: c.GetEnvironment(), SourceID: req.GetSourceId(), Host: host}

	bindings := make([]catalog.Binding, 0, len(req.GetBindingIds()))
	refreshed := false
	for _, id := range req.GetBindingIds() {
		b, ok := a.cfg.Bindings.Binding(tenant, id)
		if !ok && !refreshed {
			// Another instance may have just created it: catch up once.
			refreshed = true
			if err := a.refresh(ctx); err != nil {
				return nil, err
			}
			b, ok = a.cfg.Bindings.Binding(tenant, id)
		}
		if !ok {
			return nil, errcode.Errorf(errcode.NotFound, "binding %s not found", id)
		}
		if err := binding.Check(b, want); err != nil {
			return nil, err
		}
		bindings = append(bindings, b)
	}

	out := &rpcv1.ResolvedMaterial{}
	defer func() {
		for _, m := range out.GetMaterials() {
			clear(m.GetValue())
		}
	}()
	for _, b := range bindings {
		m, err := a.material(ctx, tenant, b)
		if err != nil {
			return nil, err
		}
		out.Materials = append(out.Materials, m)
	}
	plaintext, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
	if err != nil {
		return nil, errcode.Wrap(errcode.Internal, "encode material", err)
	}
	defer clear(plaintext)
	sealed, err := seal.Seal(recipient, []byte(seal.InfoResolve), []byte(req.GetRequestId()), plaintext)
	if err != nil {
		return nil, errcode.Wrap(errcode.Internal, "seal material", err)
	}
	return sealed, nil
}

// material reads a binding's secret and turns it into its material.
func (a *App) material(ctx context.Context, tenant string, b catalog.Binding) (*rpcv1.Material, error) {
	st, err := a.cfg.Strategies.Lookup(b.Strategy)
	if err != nil {
		return nil, errcode.Errorf(errcode.Internal, "binding %s uses strategy %q, which this broker does not support", b.ID, b.Strategy)
	}
	ref, err := store.ParseRef(b.SecretRef)
	if err != nil || ref.Tenant() != tenant {
		return nil, errcode.Errorf(errcode.PermissionDenied, "binding %s has no secret reference of tenant %q", b.ID, tenant)
	}
	v, err := a.cfg.Secrets.Get(ctx, tenant, ref)
	if err != nil {
		return nil, storeError(err, "secret of binding "+b.ID)
	}
	m, err := st.Material(v)
	v.Wipe()
	if err != nil {
		return nil, errcode.Wrap(errcode.Internal, fmt.Sprintf("secret of binding %s does not fit strategy %s", b.ID, b.Strategy), err)
	}
	m.BindingId, m.Strategy, m.Hosts = b.ID, b.Strategy, append([]string(nil), b.Hosts...)
	m.Placement = proto.CloneOf(b.Placement)
	return m, nil
}

// checkResolveRequest checks the request's own fields.
func checkResolveRequest(req *rpcv1.ResolveRequest) error {
	id := req.GetRequestId()
	if id == "" {
		return errcode.New(errcode.InvalidArgument, "request_id is required")
	}
	if len(id) > MaxRequestIDLen {
		return errcode.Errorf(errcode.InvalidArgument, "request_id longer than %d bytes", MaxRequestIDLen)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f {
			return errcode.New(errcode.InvalidArgument, "request_id must be visible ASCII")
		}
	}
	ids := req.GetBindingIds()
	if len(ids) == 0 {
		return errcode.New(errcode.InvalidArgument, "binding_ids is empty")
	}
	if len(ids) > MaxResolveBindings {
		return errcode.Errorf(errcode.InvalidArgument, "at most %d binding_ids", MaxResolveBindings)
	}
	seen := map[string]bool{}
	for _, b := range ids {
		if err := bus.CheckToken("binding_id", b); err != nil {
			return err
		}
		if seen[b] {
			return errcode.Errorf(errcode.InvalidArgument, "binding %s named twice", b)
		}
		seen[b] = true
	}
	if req.GetSourceId() == "" {
		return errcode.New(errcode.InvalidArgument, "source_id is required")
	}
	if err := bus.CheckToken("source_id", req.GetSourceId()); err != nil {
		return err
	}
	if req.GetHost() == "" {
		return errcode.New(errcode.InvalidArgument, "host is required")
	}
	return nil
}

// deny records CredentialDenied for a refused request. A failure to record
// it is logged; the refusal stands either way.
func (a *App) deny(ctx context.Context, c *commonv1.Context, req *rpcv1.ResolveRequest, cause error) {
	code, reason := errcode.Public(cause)
	status := StatusDenied
	switch code {
	case errcode.NotFound:
		status = StatusMissing
	case errcode.Unavailable, errcode.Internal:
		status = StatusError
	}
	a.log.Warn("credential denied", "tenant", c.GetTenant(), "binding_ids", validIDs(req.GetBindingIds()),
		"request_id", trim(req.GetRequestId()), "code", code, "reason", reason, "err", cause)
	ev := &auditv1.CredentialDenied{
		Meta: a.auditMeta(ctx, c, req), Principal: principal(c),
		Call: a.call(req, status, reason),
	}
	if err := a.publishAudit(ctx, bus.KindCredentialDenied, ev); err != nil {
		a.log.Error("credential denial not recorded in audit", "tenant", c.GetTenant(), "err", err)
	}
}

// auditMeta is the metadata block of the broker's audit events about one
// resolve request.
func (a *App) auditMeta(ctx context.Context, c *commonv1.Context, req *rpcv1.ResolveRequest) *commonv1.EventMeta {
	actorID, kind := c.GetAgent(), "agent"
	if actorID == "" {
		actorID, kind = c.GetUser(), "user"
	}
	return &commonv1.EventMeta{
		Tenant:      c.GetTenant(),
		Actor:       &commonv1.Actor{Kind: kind, Id: trim(actorID), Surface: c.GetSurface(), Via: Service},
		RequestId:   trim(req.GetRequestId()),
		TraceParent: trim(bus.MetaFrom(ctx).TraceParent),
	}
}

// call is the audit Call block of a resolve request. The gate is "broker"
// only when the broker refused.
func (a *App) call(req *rpcv1.ResolveRequest, status, reason string) *auditv1.Call {
	gate := "broker"
	if status == StatusResolved {
		gate = ""
	}
	return &auditv1.Call{
		Tool: trim(req.GetTool()), SourceId: trim(req.GetSourceId()), BindingIds: validIDs(req.GetBindingIds()),
		Gate: gate, Reason: trim(reason), CredentialStatus: status, UpstreamHost: trim(req.GetHost()),
	}
}

// principal is the part of a verified context an audit event records.
func principal(c *commonv1.Context) *auditv1.Principal {
	return &auditv1.Principal{
		User: c.GetUser(), Agent: c.GetAgent(), Workload: c.GetWorkload(), Surface: c.GetSurface(),
		ReportedSurface: trim(c.GetReportedSurface()), Environment: c.GetEnvironment(),
		CredentialFingerprint: c.GetCredentialFingerprint(),
	}
}

// validIDs returns the well-formed IDs among ids, at most
// MaxResolveBindings of them.
func validIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if bus.ValidToken(id) && len(out) < MaxResolveBindings {
			out = append(out, id)
		}
	}
	return out
}

// trim cuts caller-supplied text to the audit budget at a rune boundary and
// drops invalid UTF-8.
func trim(s string) string {
	if !utf8.ValidString(s) {
		s = string([]rune(s))
	}
	if len(s) <= auditBudget {
		return s
	}
	cut := auditBudget
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
