package ingress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/limit"
)

// UnattributedTenant is the tenant token of refusals that cannot be tied to
// a tenant (no valid credential, no tenant in the path). It is a valid
// subject token, so such refusals land on audit.unattributed.edge_refused.
const UnattributedTenant = bus.UnattributedTenant

// Refusal reasons recorded in EdgeRefused.reason_code.
const (
	ReasonUnauthenticated = "unauthenticated"
	ReasonRateLimited     = "rate_limited"
	ReasonTooLarge        = "too_large"
	ReasonBadRequest      = "bad_request"
)

// Auditor publishes audit events; *bus.Publisher satisfies it.
type Auditor interface {
	PublishAudit(ctx context.Context, kind bus.AuditKind, ev bus.Message) (bus.Appended, error)
}

// GateConfig configures a Gate.
type GateConfig struct {
	Authenticator *authn.Authenticator
	Limiter       *limit.Limiter
	Auditor       Auditor
	// ResourceMetadataURL is advertised in WWW-Authenticate on 401
	// (RFC 9728), e.g. https://gw.example/.well-known/oauth-protected-resource.
	ResourceMetadataURL string
	// AuditRate bounds refusal audit events per second across the process
	// (default 200), so a flood of refused requests cannot flood AUDIT;
	// refusals over the budget are counted and logged.
	AuditRate float64
	Logger    *slog.Logger
}

// Gate admits HTTP requests: it assigns request IDs, applies body and rate
// limits, authenticates through policy, and answers and audits refusals. It
// is safe for concurrent use.
type Gate struct {
	auth        *authn.Authenticator
	limiter     *limit.Limiter
	audit       Auditor
	wwwAuth     string
	auditBudget *rate.Limiter
	dropped     atomic.Int64
	log         *slog.Logger
}

// NewGate returns a Gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Authenticator == nil || cfg.Limiter == nil || cfg.Auditor == nil || cfg.ResourceMetadataURL == "" {
		return nil, errors.New("ingress: gate needs Authenticator, Limiter, Auditor and ResourceMetadataURL")
	}
	if cfg.AuditRate <= 0 {
		cfg.AuditRate = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Gate{
		auth: cfg.Authenticator, limiter: cfg.Limiter, audit: cfg.Auditor,
		wwwAuth:     fmt.Sprintf(`Bearer realm="mcpgw", resource_metadata=%q`, cfg.ResourceMetadataURL),
		auditBudget: rate.NewLimiter(rate.Limit(cfg.AuditRate), int(2*cfg.AuditRate)),
		log:         cfg.Logger.With("component", "ingress"),
	}, nil
}

// Authenticator returns the gate's authenticator.
func (g *Gate) Authenticator() *authn.Authenticator { return g.auth }

// Begin starts a request: it generates its ID (returned in X-Request-Id)
// and keeps the client's traceparent when it is valid.
func (g *Gate) Begin(w http.ResponseWriter, r *http.Request, surface string) *Request {
	req := &Request{ID: bus.NewID("req_"), RemoteAddr: Trim(r.RemoteAddr, 64), Surface: surface}
	if tp := r.Header.Get("Traceparent"); ValidTraceParent(tp) {
		req.TraceParent = tp
	}
	w.Header().Set(HeaderRequestID, req.ID)
	return req
}

// ReadBody reads the whole request body up to limit bytes. Over the limit it
// answers 413, audits a too_large refusal and returns false.
func (g *Gate) ReadBody(w http.ResponseWriter, r *http.Request, req *Request, limit int64, tenantHint string) ([]byte, bool) {
	if r.ContentLength > limit {
		g.Refuse(w, r, req, tenantHint, ReasonTooLarge, errcode.Errorf(errcode.TooLarge, "request body exceeds %d bytes", limit))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			g.Refuse(w, r, req, tenantHint, ReasonTooLarge, errcode.Errorf(errcode.TooLarge, "request body exceeds %d bytes", limit))
			return nil, false
		}
		WriteError(w, errcode.Wrap(errcode.InvalidArgument, "unreadable request body", err))
		return nil, false
	}
	return body, true
}

// Admit rate-limits and authenticates the request's bearer credential. On
// success it records the principal on req and returns it. Otherwise it has
// answered (401 with WWW-Authenticate, 429, or 503 when policy is
// unreachable — fail closed) and audited the refusal.
func (g *Gate) Admit(w http.ResponseWriter, r *http.Request, req *Request, tenantHint, reportedSurface string) (*authn.Principal, bool) {
	cred := BearerCredential(r.Header)
	defer clear(cred)
	if cred == nil {
		g.Refuse(w, r, req, tenantHint, ReasonUnauthenticated, errcode.New(errcode.Unauthenticated, "missing bearer credential"))
		return nil, false
	}
	key := authn.CredentialKey(cred)
	if !g.limiter.Allow(key) {
		g.refuse(w, r, req, tenantHint, ReasonRateLimited, nil, fingerprintOf(cred), nil)
		return nil, false
	}
	p, err := g.auth.Authenticate(req.Context(r.Context(), tenantHint), cred, reportedSurface, req.RemoteAddr)
	if err != nil {
		if errcode.CodeOf(err) == errcode.Unauthenticated {
			g.refuse(w, r, req, tenantHint, ReasonUnauthenticated, nil, fingerprintOf(cred), err)
			return nil, false
		}
		g.log.Warn("authentication unavailable", "request_id", req.ID, "code", errcode.CodeOf(err))
		WriteError(w, errcode.New(errcode.Unavailable, "authentication unavailable"))
		return nil, false
	}
	req.Principal = p
	return p, true
}

// Refuse answers a refusal with err and audits it (reason code, the
// principal if the request was admitted, never a credential).
func (g *Gate) Refuse(w http.ResponseWriter, r *http.Request, req *Request, tenantHint, reason string, err error) {
	fp := ""
	if req.Principal != nil {
		fp = req.Principal.Fingerprint
	} else if cred := BearerCredential(r.Header); cred != nil {
		fp = fingerprintOf(cred)
		clear(cred)
	}
	g.refuse(w, r, req, tenantHint, reason, req.Principal, fp, err)
}

func (g *Gate) refuse(w http.ResponseWriter, r *http.Request, req *Request, tenantHint, reason string, p *authn.Principal, fingerprint string, err error) {
	g.Record(r.Context(), req, tenantHint, reason, p, fingerprint, r.Method+" "+routeOf(r))
	switch reason {
	case ReasonUnauthenticated:
		w.Header().Set("WWW-Authenticate", g.wwwAuth)
		WriteError(w, errcode.New(errcode.Unauthenticated, "authentication required"))
	case ReasonRateLimited:
		w.Header().Set("Retry-After", "1")
		WriteJSON(w, http.StatusTooManyRequests, ErrorBody{Error: ErrorDetail{Code: ReasonRateLimited, Message: "rate limit exceeded"}})
	default:
		WriteError(w, err)
	}
}

// Record publishes an EdgeRefused audit event and waits for its
// acknowledgement (bounded by a short timeout). Refusals over the process's
// audit budget are counted and logged instead.
func (g *Gate) Record(ctx context.Context, req *Request, tenantHint, reason string, p *authn.Principal, fingerprint, method string) {
	if !g.auditBudget.Allow() {
		if n := g.dropped.Add(1); n == 1 || n%1000 == 0 {
			g.log.Warn("refusal audit budget exhausted; refusals counted, not recorded", "dropped", n, "reason", reason)
		}
		return
	}
	tenant := UnattributedTenant
	principal := &auditv1.Principal{CredentialFingerprint: fingerprint}
	switch {
	case bus.ValidToken(tenantHint):
		tenant = tenantHint
	case p != nil && bus.ValidToken(p.Tenant()):
		tenant = p.Tenant()
	}
	if p != nil {
		c := p.Context
		principal = &auditv1.Principal{
			User: c.GetUser(), Agent: c.GetAgent(), Workload: c.GetWorkload(), Surface: c.GetSurface(),
			ReportedSurface: c.GetReportedSurface(), Environment: c.GetEnvironment(), CredentialFingerprint: p.Fingerprint,
		}
	}
	ev := &auditv1.EdgeRefused{
		Meta: &commonv1.EventMeta{
			Tenant: tenant, RequestId: req.ID, TraceParent: req.TraceParent,
			Actor: &commonv1.Actor{Kind: "service", Id: string(bus.Edge), Surface: req.Surface, Via: string(bus.Edge)},
		},
		Principal:  principal,
		ReasonCode: reason,
		RemoteAddr: req.RemoteAddr,
		Method:     Trim(method, 96),
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if _, err := g.audit.PublishAudit(actx, bus.KindEdgeRefused, ev); err != nil {
		g.log.Error("record refusal", "request_id", req.ID, "reason", reason, "err", err)
	}
}

func fingerprintOf(cred []byte) string {
	if len(cred) == 0 {
		return ""
	}
	return reqctx.Fingerprint(cred)
}

// routeOf names the route of r without its variable parts when the mux
// matched a pattern.
func routeOf(r *http.Request) string {
	if r.Pattern == "" {
		return r.URL.Path
	}
	if _, path, ok := strings.Cut(r.Pattern, " "); ok {
		return path
	}
	return r.Pattern
}
