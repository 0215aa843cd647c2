package row

import (
	"math"
	"strconv"

	"github.com/mcpgw/mcpgw/libs/bus"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
)

// FromAudit maps a verified AUDIT event to a row. Kind and code come from
// the bus registry entry of the event's type; the shared Principal and Call
// blocks fill most columns, and each event family adds its own fields. An
// event type the mapping does not know still yields a row with the common
// columns and detail {"unmapped":"true"}, so that nothing verified is lost.
func FromAudit(ev *bus.Event) Row {
	r, d := base(ev)
	for _, k := range bus.AuditKinds() {
		if k.Type == ev.Meta.GetType() {
			r.Kind, r.Code = string(k.Kind), k.Code
		}
	}
	switch m := ev.Msg.(type) {
	case *auditv1.EdgeRefused:
		edgeRefused(&r, d, m)
	case *auditv1.InvocationRefused:
		toolCall(&r, d, m)
	case *auditv1.InvocationCompleted:
		toolCall(&r, d, m)
	case *auditv1.CredentialUsed:
		toolCall(&r, d, m)
	case *auditv1.CredentialResolved:
		toolCall(&r, d, m)
	case *auditv1.CredentialDenied:
		toolCall(&r, d, m)
	case *auditv1.AuthenticationFailed:
		authenticationFailed(&r, d, m)
	case *auditv1.CommandDenied:
		commandDenied(&r, d, m)
	default:
		d["unmapped"] = "true"
	}
	r.Detail = d.encode()
	return r
}

// callEvent is every audit event about one tool call.
type callEvent interface {
	GetPrincipal() *auditv1.Principal
	GetCall() *auditv1.Call
}

// toolCall maps the events that carry only the shared blocks: invocation
// refused or completed, credential used, resolved or denied.
func toolCall(r *Row, d detail, m callEvent) {
	principal(r, d, m.GetPrincipal())
	call(r, d, m.GetCall())
}

func edgeRefused(r *Row, d detail, m *auditv1.EdgeRefused) {
	toolCall(r, d, m)
	if r.Reason == "" {
		r.Reason = text(m.GetReasonCode())
	}
	d.set("reason_code", m.GetReasonCode())
	d.set("remote_addr", m.GetRemoteAddr())
	d.set("method", m.GetMethod())
}

func authenticationFailed(r *Row, d detail, m *auditv1.AuthenticationFailed) {
	principal(r, d, m.GetPrincipal())
	r.Reason = text(m.GetReasonCode())
	d.set("credential_kind", m.GetCredentialKind())
}

func commandDenied(r *Row, d detail, m *auditv1.CommandDenied) {
	principal(r, d, m.GetPrincipal())
	r.Reason = text(m.GetReason())
	d.set("command", m.GetCommand())
}

// principal copies the verified context's attributes.
func principal(r *Row, d detail, p *auditv1.Principal) {
	r.UserID = text(p.GetUser())
	r.AgentID = text(p.GetAgent())
	r.Surface = text(p.GetSurface())
	r.ReportedSurface = text(p.GetReportedSurface())
	r.Environment = text(p.GetEnvironment())
	d.set("workload", p.GetWorkload())
	d.set("credential_fingerprint", p.GetCredentialFingerprint())
}

// call copies the shared block of a tool call. Binding IDs that are not
// valid subject tokens are left out, so the comma-separated column stays
// unambiguous for queries by binding.
func call(r *Row, d detail, c *auditv1.Call) {
	r.Tool = text(c.GetTool())
	r.SourceID = text(c.GetSourceId())
	r.OperationID = text(c.GetOperationId())
	var ids []string
	for _, id := range c.GetBindingIds() {
		if bus.ValidToken(id) {
			ids = append(ids, id)
		}
	}
	r.BindingID = list(ids)
	if n := len(c.GetBindingIds()) - len(ids); n > 0 {
		d["invalid_binding_ids"] = strconv.Itoa(n)
	}
	r.Gate = text(c.GetGate())
	r.Reason = text(c.GetReason())
	r.CredentialStatus = text(c.GetCredentialStatus())
	r.PolicyOutcome = text(c.GetPolicyOutcome())
	r.AdapterOutcome = text(c.GetAdapterOutcome())
	r.UpstreamStatus = uint16(min(c.GetUpstreamStatus(), math.MaxUint16))
	r.LatencyUS = c.GetLatencyUs()
	if v := c.GetSourceVersion(); v != 0 {
		d["source_version"] = strconv.FormatUint(uint64(v), 10)
	}
	d.set("upstream_host", c.GetUpstreamHost())
}
