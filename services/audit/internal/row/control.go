package row

import (
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mcpgw/mcpgw/libs/bus"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// ControlCodeInfo is the stable audit code of one CONTROL event type.
type ControlCodeInfo struct {
	// Event is the event's short name, e.g. "BindingCreated".
	Event string
	// Code is never reused; new events get the next number.
	Code string
}

// controlCodes is the one table of CONTROL event codes.
var controlCodes = []ControlCodeInfo{
	{"SourceVersionStarted", "CTL001"},
	{"ToolProposed", "CTL002"},
	{"SourceVersionCommitted", "CTL003"},
	{"SourceVersionApproved", "CTL004"},
	{"OperationsSelected", "CTL005"},
	{"HostAllowlistSet", "CTL006"},
	{"GrantAdded", "CTL007"},
	{"GrantRevoked", "CTL008"},
	{"AgentKeyIssued", "CTL009"},
	{"AgentKeyRevoked", "CTL010"},
	{"BindingCreated", "CTL011"},
	{"BindingDisabled", "CTL012"},
	{"SecretWritten", "CTL013"},
}

// ControlCodes returns the code table of CONTROL events, in code order.
func ControlCodes() []ControlCodeInfo { return append([]ControlCodeInfo(nil), controlCodes...) }

// ControlCode returns the stable code of a CONTROL event by short name.
func ControlCode(event string) (string, bool) {
	for _, c := range controlCodes {
		if c.Event == event {
			return c.Code, true
		}
	}
	return "", false
}

// FromControl maps a verified CONTROL event to a row: kind is the event name
// snake_cased ("binding_created"), code comes from the code table, actor and
// surface from the signed metadata's actor, and binding_id, source_id, tool,
// agent_id, user_id and environment are filled where the event has them.
// Aggregate, aggregate ID and version go to detail. An event type the
// mapping does not know still yields a row with the common columns and
// detail {"unmapped":"true"}.
func FromControl(ev *bus.Event) Row {
	r, d := base(ev)
	name := ev.Name()
	r.Kind = SnakeCase(name)
	r.Code, _ = ControlCode(name)
	r.Surface = text(ev.Meta.GetActor().GetSurface())
	d.set("aggregate", ev.Meta.GetAggregate())
	d.set("aggregate_id", ev.Meta.GetAggregateId())
	if v := ev.Meta.GetAggregateVersion(); v != 0 {
		d["aggregate_version"] = strconv.FormatUint(v, 10)
	}
	switch m := ev.Msg.(type) {
	case *controlv1.SourceVersionStarted:
		r.SourceID = text(m.GetSourceId())
		version(d, m.GetVersion())
		d.set("name", m.GetName())
		d.set("format", m.GetFormat())
	case *controlv1.ToolProposed:
		r.SourceID = text(m.GetSourceId())
		r.Tool = text(m.GetTool().GetName())
		version(d, m.GetVersion())
	case *controlv1.SourceVersionCommitted:
		r.SourceID = text(m.GetSourceId())
		version(d, m.GetVersion())
		d["tool_count"] = strconv.FormatUint(uint64(m.GetToolCount()), 10)
	case *controlv1.SourceVersionApproved:
		r.SourceID = text(m.GetSourceId())
		version(d, m.GetVersion())
		d["tool_count"] = strconv.Itoa(len(m.GetTools()))
		d.setList("hosts", m.GetAllowedHosts())
	case *controlv1.OperationsSelected:
		r.SourceID = text(m.GetSourceId())
		d.setList("tools", m.GetTools())
	case *controlv1.HostAllowlistSet:
		r.SourceID = text(m.GetSourceId())
		d.setList("hosts", m.GetHosts())
		d.setList("allowed_prefixes", m.GetAllowedPrefixes())
	case *controlv1.GrantAdded:
		r.Tool = text(m.GetTool())
		d.set("grant_id", m.GetGrantId())
		d.set("subject_type", m.GetSubjectType())
		d.set("subject_id", m.GetSubjectId())
	case *controlv1.GrantRevoked:
		d.set("grant_id", m.GetGrantId())
	case *controlv1.AgentKeyIssued:
		r.AgentID = text(m.GetAgentId())
		r.UserID = text(m.GetUser())
		r.Environment = text(m.GetEnvironment())
		d.set("key_id", m.GetKeyId())
		d.set("key_surface", m.GetSurface())
		d.set("workload", m.GetWorkload())
		if m.GetExpiresAt() != nil {
			d["expires_at"] = m.GetExpiresAt().AsTime().UTC().Format(time.RFC3339)
		}
	case *controlv1.AgentKeyRevoked:
		r.AgentID = text(m.GetAgentId())
		d.set("key_id", m.GetKeyId())
	case *controlv1.BindingCreated:
		r.BindingID = text(m.GetBindingId())
		r.SourceID = text(m.GetSourceId())
		r.Environment = text(m.GetEnvironment())
		d.set("name", m.GetName())
		d.set("strategy", m.GetStrategy())
		d.set("scheme", m.GetScheme())
		d.setList("hosts", m.GetHosts())
	case *controlv1.BindingDisabled:
		r.BindingID = text(m.GetBindingId())
	case *controlv1.SecretWritten:
		d.set("name", m.GetName())
	default:
		d["unmapped"] = "true"
	}
	r.Detail = d.encode()
	return r
}

func version(d detail, v uint32) {
	if v != 0 {
		d["version"] = strconv.FormatUint(uint64(v), 10)
	}
}

// base fills the columns every event has from its signed metadata and the
// stream position it was read at. Time is zero when the event carries none.
func base(ev *bus.Event) (Row, detail) {
	m := ev.Meta
	r := Row{
		EventID:   text(m.GetId()),
		Tenant:    text(m.GetTenant()),
		Service:   string(ev.Signer),
		Subject:   text(ev.Subject),
		StreamSeq: ev.Seq,
		RequestID: text(m.GetRequestId()),
		Actor:     actor(m.GetActor().GetKind(), m.GetActor().GetId()),
	}
	if m.GetTime() != nil {
		r.Time = m.GetTime().AsTime().UTC()
	}
	d := detail{}
	d.set("actor_via", m.GetActor().GetVia())
	return r, d
}

// actor renders an actor as "kind:id" ("operator:admin"), or whichever part
// is set.
func actor(kind, id string) string {
	switch {
	case kind == "":
		return text(id)
	case id == "":
		return text(kind)
	default:
		return text(kind + ":" + id)
	}
}

// SnakeCase turns an event name into its kind: "BindingCreated" →
// "binding_created".
func SnakeCase(name string) string {
	var b strings.Builder
	for i, c := range name {
		if unicode.IsUpper(c) {
			if i > 0 {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}
