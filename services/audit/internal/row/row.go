// Package row is the audit service's domain: the row of the audit_events
// table (deploy/clickhouse/001_audit.sql) and the mapping of verified AUDIT
// and CONTROL events onto it. It does no I/O.
//
// A row is built only from the signed fields of an event that bus.Verifier
// verified, plus the stream position the event was read at. Each mapping
// copies an explicit list of fields; everything else an event carries (secret
// references, key hashes, schemas, document locations) never reaches a row.
// Strings that a caller, an operator or a description controls are trimmed
// to a budget.
package row

import (
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
)

// Row is one audit_events row. Field order follows Columns.
type Row struct {
	Time             time.Time
	EventID          string
	Tenant           string
	Kind             string
	Code             string
	Service          string
	Subject          string
	StreamSeq        uint64
	RequestID        string
	Actor            string
	Surface          string
	ReportedSurface  string
	AgentID          string
	UserID           string
	Environment      string
	Tool             string
	SourceID         string
	OperationID      string
	BindingID        string
	Gate             string
	Reason           string
	CredentialStatus string
	PolicyOutcome    string
	AdapterOutcome   string
	UpstreamStatus   uint16
	LatencyUS        uint64
	// Detail is a JSON object of string values: the family-specific fields
	// that have no column of their own.
	Detail string
}

// Columns are the audit_events columns a Row fills, in the order of Values.
var Columns = []string{
	"event_date", "time", "event_id", "tenant", "kind", "code", "service", "subject", "stream_seq",
	"request_id", "actor", "surface", "reported_surface", "agent_id", "user_id", "environment",
	"tool", "source_id", "operation_id", "binding_id", "gate", "reason", "credential_status",
	"policy_outcome", "adapter_outcome", "upstream_status", "latency_us", "detail",
}

// Values returns the row's column values in the order of Columns, with
// event_date derived from Time (UTC) and times truncated to seconds.
func (r Row) Values() []any {
	t := r.Time.UTC().Truncate(time.Second)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return []any{
		day, t, r.EventID, r.Tenant, r.Kind, r.Code, r.Service, r.Subject, r.StreamSeq,
		r.RequestID, r.Actor, r.Surface, r.ReportedSurface, r.AgentID, r.UserID, r.Environment,
		r.Tool, r.SourceID, r.OperationID, r.BindingID, r.Gate, r.Reason, r.CredentialStatus,
		r.PolicyOutcome, r.AdapterOutcome, r.UpstreamStatus, r.LatencyUS, r.Detail,
	}
}

// Budgets, in bytes, of the strings a row records.
const (
	// TextBudget bounds one recorded string: an ID, a name, a reason.
	TextBudget = 256
	// ListBudget bounds a list recorded as one comma-separated string.
	ListBudget = 1024
)

// trimMark ends a string that was cut to its budget.
const trimMark = "…"

// Trim returns s as valid UTF-8 of at most budget bytes; a string that had to
// be cut ends with "…".
func Trim(s string, budget int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= budget {
		return s
	}
	cut := budget - len(trimMark)
	if cut <= 0 {
		return ""
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + trimMark
}

// text trims a single recorded string.
func text(s string) string { return Trim(s, TextBudget) }

// list joins a list, each item trimmed, into one string within ListBudget.
func list(items []string) string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, text(it))
	}
	return Trim(strings.Join(out, ","), ListBudget)
}

// detail collects the family-specific fields of a row; empty values are
// left out.
type detail map[string]string

func (d detail) set(key, value string) {
	if value != "" {
		d[key] = text(value)
	}
}

func (d detail) setList(key string, items []string) {
	if len(items) > 0 {
		d[key] = list(items)
	}
}

// encode returns the detail as a JSON object with sorted keys ("{}" when
// empty).
func (d detail) encode() string {
	if len(d) == 0 {
		return "{}"
	}
	b, err := json.Marshal(map[string]string(d))
	if err != nil { // a map of strings always encodes
		return "{}"
	}
	return string(b)
}
