package bus

import (
	"fmt"
	"github.com/mcpgw/mcpgw/libs/errcode"
	"regexp"
	"strings"
)

// Stream and bucket names. Streams and buckets are created by the launcher's
// admin user (or deploy/ in production); services only look them up.
const (
	// StreamControl holds CONTROL events, subjects ctl.<tenant>.<aggregate>.<id>.<Event>.
	StreamControl = "CONTROL"
	// StreamAudit holds AUDIT events, subjects audit.<tenant>.<kind>.
	StreamAudit = "AUDIT"
	// BucketUploads is the Object Store bucket the edge streams uploaded
	// descriptions into and the importer reads.
	BucketUploads = "uploads"
	// BucketSources is the importer's Object Store bucket of stored descriptions.
	BucketSources = "sources"
	// BucketPolicyState is policy's KV bucket (projection cursor).
	BucketPolicyState = "policy_state"

	// ControlPrefix is the first token of every CONTROL subject.
	ControlPrefix = "ctl"
	// AuditPrefix is the first token of every AUDIT subject.
	AuditPrefix = "audit"
	// RPCPrefix is the first token of every request subject.
	RPCPrefix = "rpc"
)

// NonceBucket is the KV bucket in which service records the RPC nonces it has
// accepted; only that service writes it.
func NonceBucket(service Service) string {
	return "nonces_" + strings.ReplaceAll(string(service), "-", "_")
}

var tokenRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ValidToken reports whether s may be used as a tenant or object ID inside a
// subject: it matches ^[a-z0-9][a-z0-9_-]{0,63}$ (no '.', '*', '>').
func ValidToken(s string) bool { return tokenRE.MatchString(s) }

// CheckToken returns an *errcode.Error with code errcode.InvalidID when s is not a valid
// subject token. what names the field for the message.
func CheckToken(what, s string) error {
	if !ValidToken(s) {
		return errcode.Errorf(errcode.InvalidID, "invalid %s: must match ^[a-z0-9][a-z0-9_-]{0,63}$", what)
	}
	return nil
}

var eventRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,63}$`)

// ControlSubject returns ctl.<tenant>.<aggregate>.<id>.<event> after
// validating every token.
func ControlSubject(tenant, aggregate, id, event string) (string, error) {
	if err := CheckToken("tenant", tenant); err != nil {
		return "", err
	}
	if err := CheckToken("aggregate", aggregate); err != nil {
		return "", err
	}
	if err := CheckToken("id", id); err != nil {
		return "", err
	}
	if !eventRE.MatchString(event) {
		return "", errcode.Errorf(errcode.InvalidID, "invalid event name %q", event)
	}
	return fmt.Sprintf("%s.%s.%s.%s.%s", ControlPrefix, tenant, aggregate, id, event), nil
}

// AggregateFilter returns ctl.<tenant>.<aggregate>.<id>.*, the subject filter
// optimistic concurrency counts messages on.
func AggregateFilter(tenant, aggregate, id string) (string, error) {
	if err := CheckToken("tenant", tenant); err != nil {
		return "", err
	}
	if err := CheckToken("aggregate", aggregate); err != nil {
		return "", err
	}
	if err := CheckToken("id", id); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s.%s.%s.%s.*", ControlPrefix, tenant, aggregate, id), nil
}

// AuditSubject returns audit.<tenant>.<kind>.
func AuditSubject(tenant string, kind AuditKind) (string, error) {
	if err := CheckToken("tenant", tenant); err != nil {
		return "", err
	}
	if err := CheckToken("audit kind", string(kind)); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s.%s.%s", AuditPrefix, tenant, kind), nil
}

// ControlTokens is a parsed CONTROL subject.
type ControlTokens struct {
	Tenant, Aggregate, ID, Event string
}

// ParseControlSubject splits a CONTROL subject and validates its tokens.
func ParseControlSubject(subject string) (ControlTokens, error) {
	p := strings.Split(subject, ".")
	if len(p) != 5 || p[0] != ControlPrefix || !ValidToken(p[1]) || !ValidToken(p[2]) || !ValidToken(p[3]) || !eventRE.MatchString(p[4]) {
		return ControlTokens{}, errcode.Errorf(errcode.InvalidID, "not a control subject")
	}
	return ControlTokens{Tenant: p[1], Aggregate: p[2], ID: p[3], Event: p[4]}, nil
}

// AuditTokens is a parsed AUDIT subject.
type AuditTokens struct {
	Tenant string
	Kind   AuditKind
}

// ParseAuditSubject splits an AUDIT subject and validates its tokens.
func ParseAuditSubject(subject string) (AuditTokens, error) {
	p := strings.Split(subject, ".")
	if len(p) != 3 || p[0] != AuditPrefix || !ValidToken(p[1]) || !ValidToken(p[2]) {
		return AuditTokens{}, errcode.Errorf(errcode.InvalidID, "not an audit subject")
	}
	return AuditTokens{Tenant: p[1], Kind: AuditKind(p[2])}, nil
}
