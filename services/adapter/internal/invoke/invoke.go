// Package invoke runs one tool call end to end: the gates, then — only when
// every gate passed — credential resolution through the broker (sealed to a
// key made for this call), the credential.used audit record (acknowledged
// before anything is sent), the upstream call, the mapping of its response,
// and the invocation's audit record. It also answers explain with the same
// gates and nothing else.
//
// Fail closed: a broker that does not answer, material that does not open
// or names other hosts, or a credential.used record that was not persisted
// stops the call before it leaves the gateway. Credentials live for one call
// only and are wiped when it ends; nothing here logs an argument, a header,
// a URL or a body.
package invoke

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/egress"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/services/adapter/internal/gate"
	"github.com/mcpgw/mcpgw/services/adapter/internal/inject"
	"github.com/mcpgw/mcpgw/services/adapter/internal/respmap"
	"github.com/mcpgw/mcpgw/services/adapter/internal/upstream"
)

// UniformMessage is the one answer to every refusal up to and including the
// policy gate.
const UniformMessage = "unknown or not permitted tool"

// Gates recorded in audit beyond the gate package's own.
const (
	GateBroker   gate.Name = "broker"
	GateAudit    gate.Name = "audit"
	GateUpstream gate.Name = "upstream"
)

// Credential statuses recorded after the gates.
const (
	CredentialResolved    = "resolved"
	CredentialDenied      = "denied"
	CredentialError       = "error"
	CredentialNotRequired = "not_required"
)

// Adapter outcomes.
const (
	OutcomeOK            = "ok"
	OutcomeRefused       = "refused"
	OutcomeUpstreamError = "upstream_error"
	OutcomeError         = "error"
)

// maxRecorded bounds caller-controlled text recorded in audit.
const maxRecorded = 128

// Resolver asks the broker for sealed material (rpc.broker.resolve). An
// error means the broker could not be asked or did not answer.
type Resolver interface {
	Resolve(ctx context.Context, req *rpcv1.ResolveRequest) (*rpcv1.ResolveReply, error)
}

// Auditor appends an audit event and returns only once it is persisted
// (acknowledged by JetStream); *bus.Publisher implements it.
type Auditor interface {
	PublishAudit(ctx context.Context, kind bus.AuditKind, ev bus.Message) (bus.Appended, error)
}

// Sender sends a built request upstream; *upstream.Client implements it.
type Sender interface {
	Send(ctx context.Context, call upstream.Call) (*upstream.Reply, error)
}

// Config configures a Service.
type Config struct {
	Gates    *gate.Pipeline
	Resolver Resolver
	Auditor  Auditor
	Sender   Sender
	Logger   *slog.Logger
	// MaxResultBytes caps the encoded result (default
	// respmap.DefaultMaxResultBytes).
	MaxResultBytes int
	// Now defaults to time.Now.
	Now func() time.Time
}

// Service runs calls. It is safe for concurrent use and keeps no state
// between calls.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Gates == nil || cfg.Resolver == nil || cfg.Auditor == nil || cfg.Sender == nil {
		return nil, errors.New("invoke: service needs Gates, Resolver, Auditor and Sender")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxResultBytes <= 0 {
		cfg.MaxResultBytes = respmap.DefaultMaxResultBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "invoke")}, nil
}

// Call is one tools/call.
type Call struct {
	Context   *commonv1.SignedContext
	Tool      string
	Arguments []byte
	RequestID string
	// Meta is the routing metadata of the edge's request (untrusted; used for
	// the trace and, when the context cannot be verified, the tenant a
	// refusal is recorded under).
	Meta bus.Meta
}

// Outcome is what the edge gets back: the uniform refusal, or a
// CallToolResult (possibly isError).
type Outcome struct {
	Uniform bool
	Result  []byte
}

// Explanation is the answer to explain.
type Explanation struct {
	Gate    gate.Name
	Reason  string
	Allowed bool
}

// Explain runs the gates only: no resolution, no upstream call, no audit.
func (s *Service) Explain(ctx context.Context, c Call) Explanation {
	d := s.cfg.Gates.Evaluate(ctx, gate.Input{Context: c.Context, Tool: c.Tool, Arguments: c.Arguments})
	if d.Allowed {
		return Explanation{Allowed: true, Reason: "every gate passed"}
	}
	return Explanation{Gate: d.Gate, Reason: d.Reason}
}

// Invoke runs one call. It never returns an error: every failure becomes
// the uniform refusal or an isError result, and is audited.
func (s *Service) Invoke(ctx context.Context, c Call) Outcome {
	start := s.cfg.Now()
	c.RequestID = requestID(c)
	d := s.cfg.Gates.Evaluate(ctx, gate.Input{Context: c.Context, Tool: c.Tool, Arguments: c.Arguments})
	rec := s.record(c, d)
	if !d.Allowed {
		rec.call.Gate, rec.call.Reason = string(d.Gate), trim(d.Reason, 512)
		rec.call.AdapterOutcome = OutcomeRefused
		s.audit(ctx, rec, bus.KindInvocationRefused)
		if d.Uniform {
			return Outcome{Uniform: true}
		}
		return Outcome{Result: respmap.ErrorResult(d.Message)}
	}
	rec.call.PolicyOutcome = gate.PolicyAllowed
	out := s.run(ctx, c, d, rec)
	rec.call.LatencyUs = uint64(max(s.cfg.Now().Sub(start), 0) / time.Microsecond)
	s.audit(ctx, rec, bus.KindInvocationCompleted)
	return out
}

// run resolves, records credential use, calls the upstream and maps the
// response; it fills rec with the outcome.
func (s *Service) run(ctx context.Context, c Call, d *gate.Decision, rec *record) Outcome {
	fail := func(g gate.Name, status, reason, msg string) Outcome {
		rec.call.Gate, rec.call.Reason, rec.call.AdapterOutcome = string(g), reason, OutcomeError
		if status != "" {
			rec.call.CredentialStatus = status
		}
		return Outcome{Result: respmap.ErrorResult(msg)}
	}
	host, _ := d.Request.Host()
	var creds []inject.Credential
	rec.call.CredentialStatus = CredentialNotRequired
	if len(d.Bindings) > 0 {
		var f *failure
		creds, f = s.resolve(ctx, c, d)
		if f != nil {
			return fail(GateBroker, f.status, f.reason, f.message)
		}
		defer inject.Wipe(creds)
		rec.call.CredentialStatus = CredentialResolved
		// The credential is used only once its use is on record.
		if err := s.publish(ctx, rec, bus.KindCredentialUsed); err != nil {
			s.log.Error("credential use not recorded; upstream call withheld", "request_id", c.RequestID, "tool", d.Tool.Spec.GetName(), "err", err)
			return fail(GateAudit, "", "credential use could not be recorded", "the call was not made: its audit record could not be written")
		}
	}
	forms := inject.Forms(creds)
	defer func() {
		for _, f := range forms {
			clear(f)
		}
	}()
	reply, err := s.cfg.Sender.Send(ctx, upstream.Call{
		Request: d.Request, Rules: d.Rules, Credentials: creds, PoolKey: poolKey(d), Scrub: forms,
	})
	if err != nil {
		code := errCode(err)
		rec.call.Gate, rec.call.Reason, rec.call.AdapterOutcome = string(GateUpstream), "upstream call failed: "+code, OutcomeUpstreamError
		s.log.Warn("upstream call failed", "request_id", c.RequestID, "tool", d.Tool.Spec.GetName(), "host", host, "code", code)
		return Outcome{Result: respmap.ErrorResult(upstreamMessage(code))}
	}
	resp := reply.Response
	rec.call.UpstreamStatus = uint32(resp.StatusCode)
	m := respmap.Response(resp.StatusCode, resp.Body, forms, s.cfg.MaxResultBytes)
	clear(resp.Body)
	switch {
	case m.TooLarge:
		rec.call.Gate, rec.call.Reason, rec.call.AdapterOutcome = string(GateUpstream), "result too large", OutcomeError
	case m.IsError:
		rec.call.Reason, rec.call.AdapterOutcome = fmt.Sprintf("upstream answered HTTP %d", resp.StatusCode), OutcomeUpstreamError
	default:
		rec.call.AdapterOutcome = OutcomeOK
	}
	if m.Scrubbed {
		s.log.Warn("upstream echoed a credential; scrubbed", "request_id", c.RequestID, "tool", d.Tool.Spec.GetName(), "host", host)
		if rec.call.Reason == "" {
			rec.call.Reason = "credential echo scrubbed from the response"
		}
	}
	return Outcome{Result: m.JSON}
}

type failure struct{ status, reason, message string }

// resolve asks the broker for the chosen bindings' material, sealed to a
// key made for this call, opens it and checks that it is exactly what was
// asked for and may go to host.
func (s *Service) resolve(ctx context.Context, c Call, d *gate.Decision) ([]inject.Credential, *failure) {
	priv, err := seal.GenerateKey()
	if err != nil {
		return nil, &failure{CredentialError, "ephemeral key could not be generated", "the credential for this tool could not be resolved"}
	}
	ids := d.BindingIDs()
	hostWithPort := d.Request.URL.Host
	reply, err := s.cfg.Resolver.Resolve(ctx, &rpcv1.ResolveRequest{
		Context: c.Context, Tool: d.Tool.Spec.GetName(), SourceId: d.Tool.SourceID, BindingIds: ids,
		RecipientKey: priv.Public().Bytes(), RequestId: c.RequestID, Host: hostWithPort,
	})
	if err != nil {
		s.log.Warn("credential broker unavailable", "request_id", c.RequestID, "code", errcode.CodeOf(err))
		return nil, &failure{CredentialError, "credential broker unavailable", "the credential for this tool could not be resolved: the credential broker is unavailable"}
	}
	if e := reply.GetError(); e != nil {
		return nil, &failure{CredentialDenied, "credential broker refused: " + trim(e.GetCode(), 64), "the credential for this tool could not be resolved"}
	}
	plain, err := seal.Open(priv, []byte(seal.InfoResolve), []byte(c.RequestID), reply.GetSealed())
	if err != nil {
		return nil, &failure{CredentialError, "sealed material does not open", "the credential for this tool could not be resolved"}
	}
	var m rpcv1.ResolvedMaterial
	err = proto.Unmarshal(plain, &m)
	clear(plain)
	if err != nil {
		return nil, &failure{CredentialError, "sealed material undecodable", "the credential for this tool could not be resolved"}
	}
	creds := inject.FromMaterial(&m)
	rhost, rport := d.Request.Host()
	var got []string
	for _, cr := range creds {
		if !slices.Contains(ids, cr.BindingID) || slices.Contains(got, cr.BindingID) {
			inject.Wipe(creds)
			return nil, &failure{CredentialError, "broker returned material for another binding", "the credential for this tool could not be resolved"}
		}
		got = append(got, cr.BindingID)
		if !gate.HostsInclude(cr.Hosts, rhost, rport) {
			inject.Wipe(creds)
			return nil, &failure{CredentialError, "material not confirmed for the request's host", "the credential for this tool may not be sent to this host"}
		}
	}
	if len(got) != len(ids) {
		inject.Wipe(creds)
		return nil, &failure{CredentialError, "broker returned incomplete material", "the credential for this tool could not be resolved"}
	}
	return creds, nil
}

// record is the audit record of one call, filled as it goes.
type record struct {
	tenant    string
	meta      bus.Meta
	requestID string
	principal *auditv1.Principal
	actor     *commonv1.Actor
	call      *auditv1.Call
}

func (s *Service) record(c Call, d *gate.Decision) *record {
	r := &record{meta: c.Meta, requestID: c.RequestID, call: &auditv1.Call{
		Tool: trim(c.Tool, maxRecorded), PolicyOutcome: d.PolicyOutcome, CredentialStatus: d.CredentialStatus,
	}}
	r.tenant = d.Tenant()
	if r.tenant == "" && bus.ValidToken(c.Meta.Tenant) {
		r.tenant = c.Meta.Tenant
	}
	if ctx := d.Context; ctx != nil {
		r.principal = &auditv1.Principal{
			User: ctx.GetUser(), Agent: ctx.GetAgent(), Workload: ctx.GetWorkload(), Surface: ctx.GetSurface(),
			ReportedSurface: trim(ctx.GetReportedSurface(), maxRecorded), Environment: ctx.GetEnvironment(),
			CredentialFingerprint: ctx.GetCredentialFingerprint(),
		}
		id := ctx.GetAgent()
		if id == "" {
			id = ctx.GetUser()
		}
		r.actor = &commonv1.Actor{Kind: "agent", Id: id, Surface: "mcp", Via: string(bus.Adapter)}
	} else {
		r.principal = &auditv1.Principal{}
		r.actor = &commonv1.Actor{Kind: "agent", Surface: "mcp", Via: string(bus.Adapter)}
	}
	if d.HasTool {
		t := d.Tool
		r.call.SourceId, r.call.SourceVersion, r.call.OperationId = t.SourceID, t.Version, t.Spec.GetOperation().GetOperationId()
	}
	if d.Request != nil {
		r.call.UpstreamHost = d.Request.URL.Host
	}
	r.call.BindingIds = d.BindingIDs()
	return r
}

func (r *record) eventMeta() *commonv1.EventMeta {
	return &commonv1.EventMeta{Tenant: r.tenant, Actor: proto.Clone(r.actor).(*commonv1.Actor), RequestId: r.requestID, TraceParent: trim(r.meta.TraceParent, maxRecorded)}
}

// publish appends one audit event of the record and waits for its ack.
func (s *Service) publish(ctx context.Context, r *record, kind bus.AuditKind) error {
	if !bus.ValidToken(r.tenant) {
		return fmt.Errorf("audit %s: no tenant to record under", kind)
	}
	p := proto.Clone(r.principal).(*auditv1.Principal)
	call := proto.Clone(r.call).(*auditv1.Call)
	var ev bus.Message
	switch kind {
	case bus.KindInvocationRefused:
		ev = &auditv1.InvocationRefused{Meta: r.eventMeta(), Principal: p, Call: call}
	case bus.KindCredentialUsed:
		ev = &auditv1.CredentialUsed{Meta: r.eventMeta(), Principal: p, Call: call}
	case bus.KindInvocationCompleted:
		ev = &auditv1.InvocationCompleted{Meta: r.eventMeta(), Principal: p, Call: call}
	default:
		return fmt.Errorf("audit: kind %s is not the adapter's", kind)
	}
	_, err := s.cfg.Auditor.PublishAudit(ctx, kind, ev)
	return err
}

// audit publishes a record whose failure cannot change the outcome any
// more; the failure is logged.
func (s *Service) audit(ctx context.Context, r *record, kind bus.AuditKind) {
	if err := s.publish(ctx, r, kind); err != nil {
		s.log.Error("audit event not recorded", "kind", kind, "request_id", r.requestID, "err", err)
	}
}

// requestID is the call's request ID: the edge's, bounded, else a new one.
func requestID(c Call) string {
	for _, id := range []string{c.RequestID, c.Meta.RequestID} {
		if id != "" && len(id) <= maxRecorded && utf8.ValidString(id) && !strings.ContainsAny(id, "\r\n\x00") {
			return id
		}
	}
	return bus.NewID("req_")
}

// poolKey keeps the connections of one set of bindings apart from every
// other set.
func poolKey(d *gate.Decision) string {
	ids := d.BindingIDs()
	if len(ids) == 0 {
		return ""
	}
	return strings.Join(ids, ",")
}

func errCode(err error) string {
	var ee *egress.Error
	if errors.As(err, &ee) {
		return string(ee.Code)
	}
	var ue *upstream.Error
	if errors.As(err, &ue) {
		return ue.Code
	}
	return "error"
}

func upstreamMessage(code string) string {
	switch code {
	case string(egress.CodeTimeout):
		return "the upstream API did not answer in time"
	case string(egress.CodeResponseTooLarge):
		return "the upstream response is too large"
	case string(egress.CodeHostNotAllowed), string(egress.CodeAddressBlocked):
		return "the upstream API redirected to a host that is not allowed"
	case upstream.CodeTooManyRedirects:
		return "the upstream API redirected too many times"
	case upstream.CodeBadRedirect:
		return "the upstream API answered with a redirect that cannot be followed"
	}
	return "the upstream API could not be reached"
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
