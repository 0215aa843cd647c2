// Package app holds policy's use cases: authenticate a sealed credential,
// authorize an operator command, run the operator commands (append CONTROL
// events and wait until the read model holds them), check a tool call and
// compute a context's visible tools. Transport lives in ports; the pure
// rules in identity, decide and command; the outside systems behind small
// interfaces declared here.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/services/policy/internal/cache"
	"github.com/mcpgw/mcpgw/services/policy/internal/command"
	"github.com/mcpgw/mcpgw/services/policy/internal/decide"
	"github.com/mcpgw/mcpgw/services/policy/internal/identity"
	"github.com/mcpgw/mcpgw/services/policy/internal/spicedb"
)

// AuthorizationTTL is the lifetime of an operator-command authorization.
const AuthorizationTTL = 30 * time.Second

// DefaultDecisionTTL is how long check decisions and visible sets are cached
// unless configured.
const DefaultDecisionTTL = 2 * time.Second

// PlatformTenant is the tenant under which policy records audit events that
// belong to no known tenant (an unknown credential, a command naming an
// invalid tenant): the bus's reserved unattributed tenant.
const PlatformTenant = bus.UnattributedTenant

// Via names policy on the actors of the events it appends.
const Via = "policy"

// Publisher appends signed events; *bus.Publisher implements it.
type Publisher interface {
	AppendControl(ctx context.Context, agg bus.Aggregate, id string, ev bus.Message, expect bus.Expect) (bus.Appended, error)
	PublishAudit(ctx context.Context, kind bus.AuditKind, ev bus.Message) (bus.Appended, error)
}

// Projection is the CONTROL read model's progress; *bus.Projection
// implements it.
type Projection interface {
	Expect(tenant string, agg bus.Aggregate, id string) bus.Expect
	WaitFor(ctx context.Context, seq uint64) error
}

// Authorizer answers permission questions; *spicedb.Client implements it.
type Authorizer interface {
	Check(ctx context.Context, tenant, tool string, subject spicedb.Subject) (decide.Permissionship, error)
	Lookup(ctx context.Context, tenant string, subject spicedb.Subject) ([]string, error)
}

// Config configures an App. Every field but Logger, Now and DecisionTTL is
// required.
type Config struct {
	// Signer is policy's signing identity (contexts, authorizations).
	Signer        *bus.Identity
	Authenticator *identity.Authenticator
	Verifier      *reqctx.Verifier
	Catalog       *catalog.Catalog
	Keys          command.KeyIndex
	Publisher     Publisher
	Projection    Projection
	// Head returns the last sequence of the CONTROL stream (to refresh the
	// read model after a concurrent write).
	Head       func(ctx context.Context) (uint64, error)
	Authorizer Authorizer
	// DecisionTTL bounds cached decisions and visible sets (default 2s;
	// negative disables caching).
	DecisionTTL time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

type checkKey struct{ agent, user, tool string }
type visibleKey struct{ agent, user, environment string }

type checkResult struct {
	outcome decide.Outcome
	reason  string
}

// App is policy's application layer. It is safe for concurrent use.
type App struct {
	cfg     Config
	log     *slog.Logger
	checks  *cache.Cache[checkKey, checkResult]
	visible *cache.Cache[visibleKey, []*rpcv1.VisibleTool]
}

// New returns an App.
func New(cfg Config) (*App, error) {
	if cfg.Signer == nil || cfg.Authenticator == nil || cfg.Verifier == nil || cfg.Catalog == nil || cfg.Keys == nil ||
		cfg.Publisher == nil || cfg.Projection == nil || cfg.Head == nil || cfg.Authorizer == nil {
		return nil, errors.New("app: missing dependency")
	}
	if cfg.Signer.Service != bus.Policy {
		return nil, errors.New("app: signer must be policy")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DecisionTTL == 0 {
		cfg.DecisionTTL = DefaultDecisionTTL
	}
	cc := cache.Config{TTL: cfg.DecisionTTL, Now: cfg.Now}
	return &App{cfg: cfg, log: cfg.Logger.With("component", "app"),
		checks: cache.New[checkKey, checkResult](cc), visible: cache.New[visibleKey, []*rpcv1.VisibleTool](cc)}, nil
}

// Invalidate drops the cached decisions and visible sets of tenant; the
// projection calls it after applying any event of the tenant.
func (a *App) Invalidate(tenant string) {
	a.checks.Invalidate(tenant)
	a.visible.Invalidate(tenant)
}

func requestMeta(ctx context.Context) (requestID, trace string) {
	m := bus.MetaFrom(ctx)
	return identity.Trim(m.RequestID, 128), identity.Trim(m.TraceParent, 128)
}

// Authenticate verifies a sealed credential and returns policy's signed
// context. A refusal is errcode.Unauthenticated (the same message whatever
// the reason) and an AuthenticationFailed audit event with the reason code
// and the credential's fingerprint.
func (a *App) Authenticate(ctx context.Context, req *rpcv1.AuthenticateRequest) (*commonv1.SignedContext, error) {
	c, err := a.cfg.Authenticator.Authenticate(req.GetSealedCredential(), req.GetReportedSurface())
	var f *identity.Failure
	if errors.As(err, &f) {
		a.auditAuthFailure(ctx, f, req.GetReportedSurface())
		return nil, errcode.New(errcode.Unauthenticated, "credential not accepted")
	}
	if err != nil {
		return nil, err
	}
	sc, err := reqctx.Sign(a.cfg.Signer, c)
	if err != nil {
		return nil, fmt.Errorf("sign context: %w", err)
	}
	return sc, nil
}

func (a *App) auditAuthFailure(ctx context.Context, f *identity.Failure, reported string) {
	rid, trace := requestMeta(ctx)
	tenant := f.Tenant
	if tenant == "" {
		tenant = PlatformTenant
	}
	p := &auditv1.Principal{ReportedSurface: identity.Trim(reported, 128), CredentialFingerprint: f.Fingerprint}
	if k := f.Key; k != nil {
		p.Agent, p.User, p.Workload, p.Surface, p.Environment = k.AgentID, k.User, k.Workload, k.Surface, k.Environment
	}
	ev := &auditv1.AuthenticationFailed{
		Meta:      &commonv1.EventMeta{Tenant: tenant, RequestId: rid, TraceParent: trace},
		Principal: p, ReasonCode: f.Reason, CredentialKind: f.Kind,
	}
	if _, err := a.cfg.Publisher.PublishAudit(ctx, bus.KindAuthenticationFailed, ev); err != nil {
		a.log.Error("recording authentication failure failed", "reason", f.Reason, "fingerprint", f.Fingerprint, "err", err)
	}
	a.log.Info("authentication refused", "reason", f.Reason, "fingerprint", f.Fingerprint, "tenant", tenant)
}

// Authorize verifies the actor's context and, when decide.Command allows it,
// returns policy's signed authorization of that command (name and digest)
// in tenant, live for AuthorizationTTL at most and never past the actor's
// context. Every refusal is recorded as a
// CommandDenied audit event.
func (a *App) Authorize(ctx context.Context, req *rpcv1.AuthorizeRequest) (*commonv1.SignedAuthorization, error) {
	actor, err := a.cfg.Verifier.Verify(req.GetActor())
	if err != nil {
		a.auditDenied(ctx, nil, req.GetTenant(), req.GetCommand(), "actor context not accepted")
		return nil, errcode.New(errcode.Unauthenticated, "actor context not accepted")
	}
	if err := bus.CheckToken("tenant", req.GetTenant()); err != nil {
		a.auditDenied(ctx, actor, req.GetTenant(), req.GetCommand(), "invalid tenant")
		return nil, err
	}
	if !decide.ValidCommandName(req.GetCommand()) {
		a.auditDenied(ctx, actor, req.GetTenant(), req.GetCommand(), "invalid command name")
		return nil, errcode.New(errcode.InvalidArgument, "invalid command name")
	}
	if len(req.GetCommandDigest()) != 32 {
		a.auditDenied(ctx, actor, req.GetTenant(), req.GetCommand(), "invalid command digest")
		return nil, errcode.New(errcode.InvalidArgument, "command_digest must be a SHA-256 (32 bytes)")
	}
	if err := decide.Command(actor, req.GetTenant(), req.GetCommand()); err != nil {
		_, msg := errcode.Public(err)
		a.auditDenied(ctx, actor, req.GetTenant(), req.GetCommand(), msg)
		return nil, err
	}
	rid, _ := requestMeta(ctx)
	now := a.cfg.Now()
	// An authorization never outlives the actor's context.
	expires := now.Add(AuthorizationTTL)
	if e := actor.GetExpiresAt().AsTime(); e.Before(expires) {
		expires = e
	}
	sa, err := reqctx.SignAuthorization(a.cfg.Signer, &commonv1.Authorization{
		Actor: actor, Tenant: req.GetTenant(), Command: req.GetCommand(), CommandDigest: req.GetCommandDigest(),
		RequestId: rid, IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(expires),
		AuthorizationId: bus.NewID("authz_"),
	})
	if err != nil {
		return nil, fmt.Errorf("sign authorization: %w", err)
	}
	return sa, nil
}

func principalOf(c *commonv1.Context) *auditv1.Principal {
	if c == nil {
		return nil
	}
	return &auditv1.Principal{User: c.GetUser(), Agent: c.GetAgent(), Workload: c.GetWorkload(), Surface: c.GetSurface(),
		ReportedSurface: c.GetReportedSurface(), Environment: c.GetEnvironment(), CredentialFingerprint: c.GetCredentialFingerprint()}
}

// ActorOf is the actor recorded on events an operator caused.
func ActorOf(c *commonv1.Context) *commonv1.Actor {
	id := c.GetUser()
	if id == "" {
		id = identity.AdminUser
	}
	return &commonv1.Actor{Kind: "operator", Id: id, Surface: c.GetSurface(), Via: Via}
}

func (a *App) auditDenied(ctx context.Context, actor *commonv1.Context, tenant, cmd, reason string) {
	if !bus.ValidToken(tenant) {
		tenant = PlatformTenant
	}
	rid, trace := requestMeta(ctx)
	meta := &commonv1.EventMeta{Tenant: tenant, RequestId: rid, TraceParent: trace}
	if actor != nil {
		meta.Actor = ActorOf(actor)
	}
	ev := &auditv1.CommandDenied{Meta: meta, Principal: principalOf(actor), Command: identity.Trim(cmd, 128), Reason: reason}
	if _, err := a.cfg.Publisher.PublishAudit(ctx, bus.KindCommandDenied, ev); err != nil {
		a.log.Error("recording command refusal failed", "tenant", tenant, "err", err)
	}
	a.log.Info("command refused", "tenant", tenant, "command", identity.Trim(cmd, 128), "reason", reason)
}

// Command is an operator command message: it names its tenant and carries
// policy's authorization.
type Command interface {
	proto.Message
	GetTenant() string
}

// VerifyCommand checks the authorization an operator command carries (see
// reqctx.Verifier.VerifyCommand) and decides again that its actor may run
// it. A refusal is errcode.PermissionDenied and a CommandDenied event.
func (a *App) VerifyCommand(ctx context.Context, cmd Command) (*commonv1.Authorization, error) {
	auth, err := a.cfg.Verifier.VerifyCommand(cmd, cmd.GetTenant())
	if err == nil {
		err = decide.Command(auth.GetActor(), cmd.GetTenant(), reqctx.CommandName(cmd))
	}
	if err != nil {
		_, msg := errcode.Public(err)
		a.auditDenied(ctx, auth.GetActor(), cmd.GetTenant(), reqctx.CommandName(cmd), msg)
		if errcode.CodeOf(err) != errcode.PermissionDenied {
			return nil, errcode.Wrap(errcode.PermissionDenied, "command not authorized", err)
		}
		return nil, err
	}
	return auth, nil
}

// Result is what a command reply names.
type Result struct {
	ID      string
	Version uint64
}

// Execute runs a planned command for an authorized actor: it appends the
// plan's events with optimistic concurrency, waits until the read model holds
// them, and returns the object's ID and aggregate version. It plans against
// the read model caught up with the CONTROL stream's head; on a concurrent
// change it catches up again, plans again and retries once.
func (a *App) Execute(ctx context.Context, auth *commonv1.Authorization, plan func() (command.Plan, error)) (Result, error) {
	// Plan against everything appended so far (a source the importer just
	// committed, a binding the broker just created).
	if err := a.refresh(ctx); err != nil {
		return Result{}, err
	}
	for attempt := 0; ; attempt++ {
		p, err := plan()
		if err != nil {
			return Result{}, err
		}
		res, err := a.append(ctx, auth, p)
		if errcode.CodeOf(err) == errcode.Conflict && attempt == 0 {
			if err := a.refresh(ctx); err != nil {
				return Result{}, err
			}
			continue
		}
		return res, err
	}
}

func (a *App) refresh(ctx context.Context) error {
	head, err := a.cfg.Head(ctx)
	if err != nil {
		return errcode.Wrap(errcode.Unavailable, "read control stream", err)
	}
	if err := a.cfg.Projection.WaitFor(ctx, head); err != nil {
		return errcode.Wrap(errcode.Unavailable, "catch up with control stream", err)
	}
	return nil
}

func (a *App) append(ctx context.Context, auth *commonv1.Authorization, p command.Plan) (Result, error) {
	tenant := auth.GetTenant()
	expect := a.cfg.Projection.Expect(tenant, p.Aggregate, p.AggregateID)
	if len(p.Events) == 0 {
		return Result{ID: p.ReplyID, Version: expect.Version}, nil
	}
	rid, trace := requestMeta(ctx)
	if r := auth.GetRequestId(); r != "" {
		rid = r
	}
	var last bus.Appended
	for _, ev := range p.Events {
		m := ev.GetMeta()
		if m == nil {
			return Result{}, errors.New("planned event without metadata")
		}
		m.Tenant, m.Actor, m.RequestId, m.TraceParent = tenant, ActorOf(auth.GetActor()), rid, trace
		ap, err := a.cfg.Publisher.AppendControl(ctx, p.Aggregate, p.AggregateID, ev, expect)
		if err != nil {
			return Result{}, err
		}
		last, expect = ap, bus.Expect{LastSeq: ap.Seq, Version: ap.Version}
	}
	if err := a.cfg.Projection.WaitFor(ctx, last.Seq); err != nil {
		return Result{}, errcode.Wrap(errcode.Unavailable, "wait for read model", err)
	}
	return Result{ID: p.ReplyID, Version: last.Version}, nil
}

// VerifyContext verifies a signed context (policy's signature, lifetime,
// revocation) and that it names a tenant.
func (a *App) VerifyContext(sc *commonv1.SignedContext) (*commonv1.Context, error) {
	c, err := a.cfg.Verifier.Verify(sc)
	if err != nil {
		return nil, err
	}
	if !bus.ValidToken(c.GetTenant()) {
		return nil, errcode.New(errcode.PermissionDenied, decide.ReasonNoTenant)
	}
	return c, nil
}

func subjects(c *commonv1.Context) []spicedb.Subject {
	var out []spicedb.Subject
	if bus.ValidToken(c.GetAgent()) {
		out = append(out, spicedb.Subject{Type: spicedb.TypeAgent, ID: c.GetAgent()})
	}
	if bus.ValidToken(c.GetUser()) {
		out = append(out, spicedb.Subject{Type: spicedb.TypeUser, ID: c.GetUser()})
	}
	return out
}

// Check decides whether a verified context may invoke tool: the agent's
// grant, else the user's. Only HAS_PERMISSION allows; a caveat that lacked
// context is Conditional; a SpiceDB failure is Unavailable (never cached).
// Other answers are cached per (tenant, agent, user, tool) for the decision
// TTL and dropped on any event of the tenant.
func (a *App) Check(ctx context.Context, c *commonv1.Context, tool string) (decide.Outcome, string) {
	tenant := c.GetTenant()
	if !decide.ValidToolName(tool) {
		return decide.Denied, decide.ReasonUnknownTool
	}
	key := checkKey{agent: c.GetAgent(), user: c.GetUser(), tool: tool}
	if r, ok := a.checks.Get(tenant, key); ok {
		return r.outcome, r.reason
	}
	gen := a.checks.Generation(tenant)
	var answers []decide.Permissionship
	for _, s := range subjects(c) {
		p, err := a.cfg.Authorizer.Check(ctx, tenant, tool, s)
		if err != nil {
			a.log.Warn("permission check failed", "tenant", tenant, "tool", tool, "err", err)
			return decide.Unavailable, decide.ReasonUnavailable
		}
		answers = append(answers, p)
		if p == decide.HasPermission {
			break
		}
	}
	out, reason := decide.Combine(answers...)
	a.checks.Put(tenant, key, gen, checkResult{outcome: out, reason: reason})
	return out, reason
}

// Visible returns the tools a verified context may see, sorted by name:
// granted to its agent or user (SpiceDB LookupResources), approved (digest
// matches), selected, and servable in the context's environment. Any
// SpiceDB failure is errcode.Unavailable: callers fail closed. Sets are
// cached per (tenant, agent, user, environment) like decisions; callers
// must not modify the returned tools.
func (a *App) Visible(ctx context.Context, c *commonv1.Context) ([]*rpcv1.VisibleTool, error) {
	tenant, env := c.GetTenant(), c.GetEnvironment()
	key := visibleKey{agent: c.GetAgent(), user: c.GetUser(), environment: env}
	if v, ok := a.visible.Get(tenant, key); ok {
		return v, nil
	}
	gen := a.visible.Generation(tenant)
	granted := map[string]bool{}
	for _, s := range subjects(c) {
		names, err := a.cfg.Authorizer.Lookup(ctx, tenant, s)
		if err != nil {
			a.log.Warn("visible tools lookup failed", "tenant", tenant, "err", err)
			return nil, errcode.Wrap(errcode.Unavailable, "authorizer unavailable", err)
		}
		for _, n := range names {
			granted[n] = true
		}
	}
	names := make([]string, 0, len(granted))
	for n := range granted {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*rpcv1.VisibleTool, 0, len(names))
	for _, n := range names {
		tl, ok := a.cfg.Catalog.Tool(tenant, n)
		if !ok || !tl.Approved || !tl.Selected {
			continue
		}
		servable, _ := decide.Servable(tl.Spec, func(scheme string) bool {
			return len(a.cfg.Catalog.BindingsFor(tenant, tl.SourceID, scheme, env)) > 0
		})
		if !servable {
			continue
		}
		s := tl.Spec
		out = append(out, &rpcv1.VisibleTool{Name: s.GetName(), Description: s.GetDescription(),
			InputSchema: s.GetInputSchema(), OutputSchema: s.GetOutputSchema(), Annotations: s.GetAnnotations()})
	}
	a.visible.Put(tenant, key, gen, out)
	return out, nil
}
