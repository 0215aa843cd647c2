package bus

import (
	"fmt"
	"sort"
	"strings"
)

// UnattributedTenant is the tenant under which services record audit
// events that belong to no verified tenant (an unknown credential, a
// request naming an invalid tenant). Policy refuses operator commands for
// it, so no real tenant can hold this name.
const UnattributedTenant = "unattributed"

// Service names one mcpgw service; it is also its NATS user name, its signer
// name and its queue group.
type Service string

// The six services.
const (
	Edge     Service = "edge"
	Importer Service = "importer"
	Policy   Service = "policy"
	Broker   Service = "credential-broker"
	Adapter  Service = "adapter"
	Audit    Service = "audit"
)

// Services lists every service, in a fixed order.
var Services = []Service{Edge, Importer, Policy, Broker, Adapter, Audit}

// Valid reports whether s is one of the six services.
func (s Service) Valid() bool {
	for _, x := range Services {
		if x == s {
			return true
		}
	}
	return false
}

// rpcToken is the service's token in rpc.<token>.<verb> subjects.
func (s Service) rpcToken() string {
	if s == Broker {
		return "broker"
	}
	return string(s)
}

// InboxPrefix is the service's reply-subject prefix (_INBOX.<service>); its
// NATS user may subscribe to nothing else but its own RPC subjects.
func (s Service) InboxPrefix() string { return "_INBOX." + s.rpcToken() }

// Aggregate names a CONTROL aggregate type.
type Aggregate string

// CONTROL aggregates and their owners.
const (
	AggSource       Aggregate = "source"       // importer
	AggSourcePolicy Aggregate = "sourcepolicy" // policy: approvals, selection, allowlist
	AggGrant        Aggregate = "grant"        // policy
	AggAgent        Aggregate = "agent"        // policy: agents and keys
	AggBinding      Aggregate = "binding"      // credential broker
	AggSecret       Aggregate = "secret"       // credential broker
)

// aggregateOwners is the one table of who may append to which aggregate.
var aggregateOwners = map[Aggregate]Service{
	AggSource:       Importer,
	AggSourcePolicy: Policy,
	AggGrant:        Policy,
	AggAgent:        Policy,
	AggBinding:      Broker,
	AggSecret:       Broker,
}

// AggregateOwner returns the service that owns an aggregate.
func AggregateOwner(a Aggregate) (Service, bool) {
	s, ok := aggregateOwners[a]
	return s, ok
}

// AuditKind names an audit event kind; it is the last token of its subject.
type AuditKind string

// AuditKindInfo describes an audit kind: its owner, the protobuf message type
// carried, and its stable code.
type AuditKindInfo struct {
	Kind  AuditKind
	Owner Service
	// Type is the protobuf full name of the event message.
	Type string
	// Code is the stable audit code (never reused).
	Code string
}

// Audit kinds.
const (
	KindEdgeRefused          AuditKind = "edge_refused"
	KindInvocationRefused    AuditKind = "invocation_refused"
	KindCredentialUsed       AuditKind = "credential_used"
	KindInvocationCompleted  AuditKind = "invocation_completed"
	KindCredentialResolved   AuditKind = "credential_resolved"
	KindCredentialDenied     AuditKind = "credential_denied"
	KindAuthenticationFailed AuditKind = "authentication_failed"
	KindCommandDenied        AuditKind = "command_denied"
)

var auditKinds = []AuditKindInfo{
	{KindEdgeRefused, Edge, "mcpgw.audit.v1.EdgeRefused", "EDG001"},
	{KindInvocationRefused, Adapter, "mcpgw.audit.v1.InvocationRefused", "ADP001"},
	{KindCredentialUsed, Adapter, "mcpgw.audit.v1.CredentialUsed", "ADP002"},
	{KindInvocationCompleted, Adapter, "mcpgw.audit.v1.InvocationCompleted", "ADP003"},
	{KindCredentialResolved, Broker, "mcpgw.audit.v1.CredentialResolved", "BRK001"},
	{KindCredentialDenied, Broker, "mcpgw.audit.v1.CredentialDenied", "BRK002"},
	{KindAuthenticationFailed, Policy, "mcpgw.audit.v1.AuthenticationFailed", "POL001"},
	{KindCommandDenied, Policy, "mcpgw.audit.v1.CommandDenied", "POL002"},
}

// AuditKinds returns every audit kind, in a fixed order.
func AuditKinds() []AuditKindInfo { return append([]AuditKindInfo(nil), auditKinds...) }

// LookupAuditKind returns the registry entry of a kind.
func LookupAuditKind(k AuditKind) (AuditKindInfo, bool) {
	for _, i := range auditKinds {
		if i.Kind == k {
			return i, true
		}
	}
	return AuditKindInfo{}, false
}

// Verb is one request/reply endpoint: rpc.<server>.<name>.
type Verb struct {
	Server  Service
	Name    string
	Callers []Service
}

// Subject returns rpc.<server>.<name>.
func (v Verb) Subject() string { return RPCPrefix + "." + v.Server.rpcToken() + "." + v.Name }

// MayCall reports whether caller may send this request.
func (v Verb) MayCall(caller Service) bool {
	for _, c := range v.Callers {
		if c == caller {
			return true
		}
	}
	return false
}

// The RPC verbs and who may call each. The NATS permissions of every service
// are derived from this table.
var (
	PolicyAuthenticate = Verb{Policy, "authenticate", []Service{Edge}}
	PolicyAuthorize    = Verb{Policy, "authorize", []Service{Edge}}
	PolicyVisible      = Verb{Policy, "visible", []Service{Edge}}
	PolicyCheck        = Verb{Policy, "check", []Service{Adapter}}
	PolicyApprove      = Verb{Policy, "approve", []Service{Edge}}
	PolicySelect       = Verb{Policy, "select", []Service{Edge}}
	PolicyGrant        = Verb{Policy, "grant", []Service{Edge}}
	PolicyRevokeGrant  = Verb{Policy, "revoke_grant", []Service{Edge}}
	PolicyIssueKey     = Verb{Policy, "issue_key", []Service{Edge}}
	PolicyRevokeKey    = Verb{Policy, "revoke_key", []Service{Edge}}
	AdapterInvoke      = Verb{Adapter, "invoke", []Service{Edge}}
	AdapterExplain     = Verb{Adapter, "explain", []Service{Edge}}
	BrokerResolve      = Verb{Broker, "resolve", []Service{Adapter}}
	BrokerPutSecret    = Verb{Broker, "put_secret", []Service{Edge}}
	BrokerCreate       = Verb{Broker, "create_binding", []Service{Edge}}
	BrokerSlots        = Verb{Broker, "slots", []Service{Edge}}
	ImporterImport     = Verb{Importer, "import", []Service{Edge}}
	ImporterMapAuth    = Verb{Importer, "map_auth", []Service{Edge}}
	AuditQuery         = Verb{Audit, "query", []Service{Edge}}
)

// Verbs lists every verb.
func Verbs() []Verb {
	return []Verb{
		PolicyAuthenticate, PolicyAuthorize, PolicyVisible, PolicyCheck, PolicyApprove,
		PolicySelect, PolicyGrant, PolicyRevokeGrant, PolicyIssueKey, PolicyRevokeKey,
		AdapterInvoke, AdapterExplain, BrokerResolve, BrokerPutSecret, BrokerCreate, BrokerSlots,
		ImporterImport, ImporterMapAuth, AuditQuery,
	}
}

// LookupVerb finds a verb by subject.
func LookupVerb(subject string) (Verb, bool) {
	for _, v := range Verbs() {
		if v.Subject() == subject {
			return v, true
		}
	}
	return Verb{}, false
}

// Permissions are a NATS user's publish and subscribe rules, independent of
// the server package so that services need not import it.
type Permissions struct {
	PublishAllow, PublishDeny     []string
	SubscribeAllow, SubscribeDeny []string
}

// jsAdminDeny is denied to every service: no service creates, updates,
// deletes or purges a stream, nor deletes a message.
var jsAdminDeny = []string{
	"$JS.API.STREAM.CREATE.>",
	"$JS.API.STREAM.UPDATE.>",
	"$JS.API.STREAM.DELETE.>",
	"$JS.API.STREAM.PURGE.>",
	"$JS.API.STREAM.MSG.DELETE.>",
	"$JS.API.STREAM.RESTORE.>",
	"$JS.API.STREAM.SNAPSHOT.>",
	"$JS.API.CONSUMER.DELETE.>",
	"$JS.API.ACCOUNT.PURGE.>",
}

// readsControl lists the services that replay CONTROL.
var readsControl = map[Service]bool{Edge: false, Importer: true, Policy: true, Broker: true, Adapter: true, Audit: true}

// kvBuckets lists the KV buckets each service writes (besides its nonce bucket).
var kvBuckets = map[Service][]string{Policy: {BucketPolicyState}}

// objectBuckets lists Object Store buckets a service writes and reads.
var objectWrites = map[Service][]string{Edge: {BucketUploads}, Importer: {BucketSources}}
var objectReads = map[Service][]string{Importer: {BucketUploads, BucketSources}}

// PermissionsFor derives a service's NATS permissions from the registry:
// request only the verbs it may call, serve only its own rpc.<service>.>,
// reply on inboxes, subscribe only to its own inbox prefix, publish only its
// own CONTROL aggregates and audit kinds, use only the JetStream API calls it
// needs, write only its own buckets. A subscribe deny of _INBOX.> would
// override the service's own inbox allow, so inboxes are closed by the allow
// list instead.
func PermissionsFor(s Service) Permissions {
	var p Permissions
	add := func(dst *[]string, v ...string) { *dst = append(*dst, v...) }
	// RPC.
	for _, v := range Verbs() {
		if v.MayCall(s) {
			add(&p.PublishAllow, v.Subject())
		}
	}
	add(&p.SubscribeAllow, RPCPrefix+"."+s.rpcToken()+".>", s.InboxPrefix()+".>")
	// Replies go to other services' inboxes.
	add(&p.PublishAllow, "_INBOX.>")
	// CONTROL and AUDIT publishing.
	for a, owner := range aggregateOwners {
		if owner == s {
			add(&p.PublishAllow, fmt.Sprintf("%s.*.%s.*.*", ControlPrefix, a))
		}
	}
	for _, k := range auditKinds {
		if k.Owner == s {
			add(&p.PublishAllow, fmt.Sprintf("%s.*.%s", AuditPrefix, k.Kind))
		}
	}
	// JetStream API: look up streams, read messages (duplicate checks), and
	// consume where the service reads.
	add(&p.PublishAllow,
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO."+StreamControl,
		"$JS.API.STREAM.INFO."+StreamAudit,
	)
	// A publisher reads back the stored message of a "duplicate"
	// acknowledgement, on the streams it appends to.
	if publishesControl(s) {
		add(&p.PublishAllow, "$JS.API.STREAM.MSG.GET."+StreamControl)
	}
	if publishesAudit(s) {
		add(&p.PublishAllow, "$JS.API.STREAM.MSG.GET."+StreamAudit)
	}
	if readsControl[s] {
		add(&p.PublishAllow,
			"$JS.API.CONSUMER.CREATE."+StreamControl+".>",
			"$JS.API.CONSUMER.INFO."+StreamControl+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+StreamControl+".>",
			"$JS.ACK."+StreamControl+".>",
		)
	}
	if s == Audit {
		add(&p.PublishAllow,
			"$JS.API.CONSUMER.INFO."+StreamAudit+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+StreamAudit+".>",
			"$JS.ACK."+StreamAudit+".>",
			"$JS.API.CONSUMER.INFO."+StreamControl+".>",
		)
	}
	// KV: the nonce bucket and the service's own buckets.
	for _, b := range append([]string{NonceBucket(s)}, kvBuckets[s]...) {
		add(&p.PublishAllow, "$KV."+b+".>",
			"$JS.API.STREAM.INFO.KV_"+b,
			"$JS.API.CONSUMER.CREATE.KV_"+b+".>",
			"$JS.API.DIRECT.GET.KV_"+b+".>", "$JS.API.DIRECT.GET.KV_"+b,
			"$JS.API.STREAM.MSG.GET.KV_"+b)
	}
	// Object stores.
	for _, b := range objectWrites[s] {
		add(&p.PublishAllow, "$O."+b+".>")
	}
	for _, b := range objectReads[s] {
		// Flow-control replies of the push consumer an object read uses.
		add(&p.PublishAllow, "$JS.FC.OBJ_"+b+".>")
	}
	for _, b := range append(append([]string(nil), objectWrites[s]...), objectReads[s]...) {
		add(&p.PublishAllow,
			"$JS.API.STREAM.INFO.OBJ_"+b,
			"$JS.API.CONSUMER.CREATE.OBJ_"+b+".>",
			"$JS.API.STREAM.MSG.GET.OBJ_"+b,
			"$JS.API.DIRECT.GET.OBJ_"+b+".>", "$JS.API.DIRECT.GET.OBJ_"+b)
	}
	p.PublishDeny = append(p.PublishDeny, jsAdminDeny...)
	sort.Strings(p.PublishAllow)
	p.PublishAllow = dedupe(p.PublishAllow)
	return p
}

func publishesControl(s Service) bool {
	for _, owner := range aggregateOwners {
		if owner == s {
			return true
		}
	}
	return false
}

func publishesAudit(s Service) bool {
	for _, k := range auditKinds {
		if k.Owner == s {
			return true
		}
	}
	return false
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// String renders permissions for diagnostics (they hold no secret).
func (p Permissions) String() string {
	return fmt.Sprintf("pub allow [%s] deny [%s]; sub allow [%s] deny [%s]",
		strings.Join(p.PublishAllow, " "), strings.Join(p.PublishDeny, " "),
		strings.Join(p.SubscribeAllow, " "), strings.Join(p.SubscribeDeny, " "))
}
