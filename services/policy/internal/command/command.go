// Package command validates policy's operator commands against the read
// model and plans the CONTROL events each one appends: approvals (with a
// digest per tool), operation selection, host allowlists, grants and agent
// keys. It does no I/O; the caller sets event metadata and appends.
package command

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/policy/internal/decide"
)

// Limits on command input.
const (
	MaxHosts      = 256
	MaxPrefixes   = 256
	MaxTools      = 10_000
	MaxPrefixLen  = 16
	MaxWorkload   = 128
	hostMaxLength = 253
)

// Catalog is the part of the read model commands consult; *catalog.Catalog
// implements it.
type Catalog interface {
	Version(tenant, sourceID string, n uint32) (*catalog.Version, bool)
	Source(tenant, id string) (catalog.Source, bool)
	SourceIDs(tenant string) []string
	Tool(tenant, name string) (catalog.Tool, bool)
	Grant(tenant, id string) (catalog.Grant, bool)
	Grants(tenant string) []catalog.Grant
	KeyByHash(hash []byte) (tenant string, k catalog.AgentKey, ok bool)
}

// KeyIndex finds a tenant's agent key by ID.
type KeyIndex interface {
	Key(tenant, keyID string) (agentID string, revoked bool, ok bool)
}

// Plan is what a command appends: events in order on one aggregate. A plan
// with no events changes nothing (the command was already in effect); the
// reply then names ID and the aggregate's current version.
type Plan struct {
	Aggregate bus.Aggregate
	// AggregateID is the aggregate's ID (source, grant or agent ID).
	AggregateID string
	Events      []bus.Message
	// ReplyID is the ID the reply names (a source, grant or key ID).
	ReplyID string
}

// newMeta returns the empty metadata block of a planned event; the caller
// fills tenant, actor and request.
func newMeta() *commonv1.EventMeta { return &commonv1.EventMeta{} }

func checkTenant(t string) error { return bus.CheckToken("tenant", t) }

// Approve plans the approval of a committed source version: a
// SourceVersionApproved with the digest of every tool and the allowed hosts
// (default: the version's proposed hosts), then a HostAllowlistSet. It
// refuses a version that is not committed, invalid hosts or prefixes, tool
// names that cannot be granted, and tool names that another source of the
// tenant already has approved (errcode.Conflict naming them).
func Approve(cat Catalog, cmd *rpcv1.ApproveSourceVersion) (Plan, error) {
	tenant, src := cmd.GetTenant(), cmd.GetSourceId()
	if err := checkTenant(tenant); err != nil {
		return Plan{}, err
	}
	if err := bus.CheckToken("source_id", src); err != nil {
		return Plan{}, err
	}
	if cmd.GetVersion() == 0 {
		return Plan{}, errcode.New(errcode.InvalidArgument, "version is required")
	}
	v, ok := cat.Version(tenant, src, cmd.GetVersion())
	if !ok {
		return Plan{}, errcode.New(errcode.NotFound, "no committed version of that source")
	}
	hosts := cmd.GetAllowedHosts()
	what := "allowed_hosts"
	if len(hosts) == 0 {
		hosts, what = v.ProposedHosts, "proposed host"
	}
	hosts, err := Hosts(what, hosts)
	if err != nil {
		return Plan{}, err
	}
	prefixes, err := Prefixes(cmd.GetAllowedPrefixes())
	if err != nil {
		return Plan{}, err
	}
	names := make([]string, 0, len(v.Tools))
	for n := range v.Tools {
		names = append(names, n)
	}
	sort.Strings(names)
	var bad []string
	for _, n := range names {
		if !decide.ValidToolName(n) {
			bad = append(bad, n)
		}
	}
	if len(bad) > 0 {
		return Plan{}, errcode.Errorf(errcode.InvalidArgument, "tool names must match ^[A-Za-z0-9_-]{1,128}$: %s", list(bad))
	}
	if clash := collisions(cat, tenant, src, names); len(clash) > 0 {
		return Plan{}, errcode.Errorf(errcode.Conflict, "tool names already approved in another source of this tenant: %s", list(clash))
	}
	approved := &controlv1.SourceVersionApproved{Meta: newMeta(), SourceId: src, Version: v.Number, AllowedHosts: hosts}
	for _, n := range names {
		d, err := catalog.ToolDigest(v.Tools[n])
		if err != nil {
			return Plan{}, fmt.Errorf("digest of tool: %w", err)
		}
		approved.Tools = append(approved.Tools, &controlv1.ApprovedTool{Name: n, Digest: d})
	}
	allow := &controlv1.HostAllowlistSet{Meta: newMeta(), SourceId: src, Hosts: hosts, AllowedPrefixes: prefixes}
	return Plan{Aggregate: bus.AggSourcePolicy, AggregateID: src, ReplyID: src, Events: []bus.Message{approved, allow}}, nil
}

// collisions returns the names that another source of the tenant has
// approved.
func collisions(cat Catalog, tenant, src string, names []string) []string {
	taken := map[string]bool{}
	for _, id := range cat.SourceIDs(tenant) {
		if id == src {
			continue
		}
		s, ok := cat.Source(tenant, id)
		if !ok || s.Approval == nil {
			continue
		}
		for n := range s.Approval.Digests {
			taken[n] = true
		}
	}
	var out []string
	for _, n := range names {
		if taken[n] {
			out = append(out, n)
		}
	}
	return out
}

// list renders names for an error message, bounded.
func list(names []string) string {
	const max = 20
	if len(names) > max {
		return strings.Join(names[:max], ", ") + fmt.Sprintf(" and %d more", len(names)-max)
	}
	return strings.Join(names, ", ")
}

// Hosts validates allowlist entries: a lowercase host name or IP address,
// optionally with a port (host:port, [v6]:port). It returns them sorted
// without duplicates. what names the field in errors.
func Hosts(what string, hosts []string) ([]string, error) {
	if len(hosts) > MaxHosts {
		return nil, errcode.Errorf(errcode.TooLarge, "at most %d hosts", MaxHosts)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(hosts))
	for i, h := range hosts {
		if !validHostEntry(h) {
			return nil, errcode.Errorf(errcode.InvalidArgument, "%s[%d]: must be a lowercase host or host:port", what, i)
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out, nil
}

func validHostEntry(h string) bool {
	if h == "" || len(h) > hostMaxLength+6 || h != strings.ToLower(h) {
		return false
	}
	host := h
	if strings.HasPrefix(h, "[") || strings.Count(h, ":") == 1 {
		hh, port, err := net.SplitHostPort(h)
		if err != nil {
			return false
		}
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return false
		}
		host = hh
		if strings.Contains(host, ":") {
			a, err := netip.ParseAddr(host)
			return err == nil && a.Is6() && a.Zone() == ""
		}
	} else if strings.Contains(h, ":") {
		a, err := netip.ParseAddr(h)
		return err == nil && a.Is6() && a.Zone() == ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return validHostName(host)
}

// validHostName accepts a DNS name of lowercase letters, digits and hyphens
// in labels of 1–63 characters, not starting or ending with a hyphen.
func validHostName(h string) bool {
	if len(h) > hostMaxLength {
		return false
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Prefixes validates allowed IP prefixes (netip.ParsePrefix) and returns
// them in canonical form, sorted without duplicates.
func Prefixes(prefixes []string) ([]string, error) {
	if len(prefixes) > MaxPrefixes {
		return nil, errcode.Errorf(errcode.TooLarge, "at most %d prefixes", MaxPrefixes)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(prefixes))
	for i, s := range prefixes {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, errcode.Errorf(errcode.InvalidArgument, "allowed_prefixes[%d]: not an IP prefix", i)
		}
		c := p.Masked().String()
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Select plans an OperationsSelected: every named tool must be a tool of
// the source's approved version.
func Select(cat Catalog, cmd *rpcv1.SelectOperations) (Plan, error) {
	tenant, src := cmd.GetTenant(), cmd.GetSourceId()
	if err := checkTenant(tenant); err != nil {
		return Plan{}, err
	}
	if err := bus.CheckToken("source_id", src); err != nil {
		return Plan{}, err
	}
	if len(cmd.GetTools()) > MaxTools {
		return Plan{}, errcode.Errorf(errcode.TooLarge, "at most %d tools", MaxTools)
	}
	s, ok := cat.Source(tenant, src)
	if !ok || s.Approval == nil {
		return Plan{}, errcode.New(errcode.NotFound, "source has no approved version")
	}
	seen := map[string]bool{}
	var tools, unknown []string
	for _, n := range cmd.GetTools() {
		if _, ok := s.Approval.Digests[n]; !ok {
			unknown = append(unknown, identityTrim(n))
			continue
		}
		if !seen[n] {
			seen[n] = true
			tools = append(tools, n)
		}
	}
	if len(unknown) > 0 {
		return Plan{}, errcode.Errorf(errcode.NotFound, "not tools of the approved version: %s", list(unknown))
	}
	sort.Strings(tools)
	ev := &controlv1.OperationsSelected{Meta: newMeta(), SourceId: src, Tools: tools}
	return Plan{Aggregate: bus.AggSourcePolicy, AggregateID: src, ReplyID: src, Events: []bus.Message{ev}}, nil
}

// identityTrim bounds a caller-supplied name echoed in an error.
func identityTrim(s string) string {
	if decide.ValidToolName(s) {
		return s
	}
	return strconv.Quote(truncate(s, 64))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Subject types of a grant.
const (
	SubjectAgent = "agent"
	SubjectUser  = "user"
)

// Grant plans a GrantAdded under a new grant ID from newID: the tool must be
// an approved tool of the tenant, the subject an agent or user ID. When an
// active grant of the same tool to the same subject exists, the plan is
// empty and names that grant.
func Grant(cat Catalog, cmd *rpcv1.AddGrant, newID func() string) (Plan, error) {
	tenant, tool := cmd.GetTenant(), cmd.GetTool()
	if err := checkTenant(tenant); err != nil {
		return Plan{}, err
	}
	st := cmd.GetSubjectType()
	if st != SubjectAgent && st != SubjectUser {
		return Plan{}, errcode.New(errcode.InvalidArgument, "subject_type must be agent or user")
	}
	if err := bus.CheckToken("subject_id", cmd.GetSubjectId()); err != nil {
		return Plan{}, err
	}
	if !decide.ValidToolName(tool) {
		return Plan{}, errcode.New(errcode.InvalidArgument, "invalid tool name")
	}
	if tl, ok := cat.Tool(tenant, tool); !ok || !tl.Approved {
		return Plan{}, errcode.New(errcode.NotFound, "no approved tool of that name")
	}
	for _, g := range cat.Grants(tenant) {
		if g.Tool == tool && g.SubjectType == st && g.SubjectID == cmd.GetSubjectId() {
			return Plan{Aggregate: bus.AggGrant, AggregateID: g.ID, ReplyID: g.ID}, nil
		}
	}
	id := newID()
	ev := &controlv1.GrantAdded{Meta: newMeta(), GrantId: id, Tool: tool, SubjectType: st, SubjectId: cmd.GetSubjectId()}
	return Plan{Aggregate: bus.AggGrant, AggregateID: id, ReplyID: id, Events: []bus.Message{ev}}, nil
}

// RevokeGrant plans a GrantRevoked; revoking a revoked grant changes nothing.
func RevokeGrant(cat Catalog, cmd *rpcv1.RevokeGrant) (Plan, error) {
	tenant, id := cmd.GetTenant(), cmd.GetGrantId()
	if err := checkTenant(tenant); err != nil {
		return Plan{}, err
	}
	if err := bus.CheckToken("grant_id", id); err != nil {
		return Plan{}, err
	}
	g, ok := cat.Grant(tenant, id)
	if !ok {
		return Plan{}, errcode.New(errcode.NotFound, "no such grant")
	}
	p := Plan{Aggregate: bus.AggGrant, AggregateID: id, ReplyID: id}
	if !g.Revoked {
		p.Events = []bus.Message{&controlv1.GrantRevoked{Meta: newMeta(), GrantId: id}}
	}
	return p, nil
}

// IssueKey plans an AgentKeyIssued under a new key ID from newID: the hash
// must be a SHA-256 not registered yet, the prefix short and printable, the
// attributes valid IDs, the expiry (optional) in the future.
func IssueKey(cat Catalog, cmd *rpcv1.IssueAgentKey, now time.Time, newID func() string) (Plan, error) {
	tenant, agent := cmd.GetTenant(), cmd.GetAgentId()
	if err := checkTenant(tenant); err != nil {
		return Plan{}, err
	}
	if err := bus.CheckToken("agent_id", agent); err != nil {
		return Plan{}, err
	}
	for _, f := range []struct{ name, v string }{{"user", cmd.GetUser()}, {"environment", cmd.GetEnvironment()}, {"surface", cmd.GetSurface()}} {
		if f.v != "" {
			if err := bus.CheckToken(f.name, f.v); err != nil {
				return Plan{}, err
			}
		}
	}
	if !printable(cmd.GetWorkload(), MaxWorkload) {
		return Plan{}, errcode.Errorf(errcode.InvalidArgument, "workload must be at most %d printable characters", MaxWorkload)
	}
	if len(cmd.GetKeyHash()) != 32 {
		return Plan{}, errcode.New(errcode.InvalidArgument, "key_hash must be a SHA-256 (32 bytes)")
	}
	if p := cmd.GetPrefix(); p == "" || !printable(p, MaxPrefixLen) || strings.ContainsRune(p, ' ') {
		return Plan{}, errcode.Errorf(errcode.InvalidArgument, "prefix must be 1 to %d printable characters without spaces", MaxPrefixLen)
	}
	var expires *timestamppb.Timestamp
	if e := cmd.GetExpiresAt(); e != nil {
		if err := e.CheckValid(); err != nil || !e.AsTime().After(now) {
			return Plan{}, errcode.New(errcode.InvalidArgument, "expires_at must be in the future")
		}
		expires = timestamppb.New(e.AsTime())
	}
	if _, _, ok := cat.KeyByHash(cmd.GetKeyHash()); ok {
		return Plan{}, errcode.New(errcode.Conflict, "a key with this hash is already registered")
	}
	id := newID()
	ev := &controlv1.AgentKeyIssued{Meta: newMeta(), AgentId: agent, KeyId: id, Prefix: cmd.GetPrefix(),
		KeyHash: append([]byte(nil), cmd.GetKeyHash()...), User: cmd.GetUser(), Environment: cmd.GetEnvironment(),
		Surface: cmd.GetSurface(), Workload: cmd.GetWorkload(), ExpiresAt: expires}
	return Plan{Aggregate: bus.AggAgent, AggregateID: agent, ReplyID: id, Events: []bus.Message{ev}}, nil
}

// RevokeKey plans an AgentKeyRevoked; revoking a revoked key changes
// nothing.
func RevokeKey(keys KeyIndex, cmd *rpcv1.RevokeAgentKey) (Plan, error) {
	tenant, id := cmd.GetTenant(), cmd.GetKeyId()
	if err := checkTenant(tenant); err != nil {
		return Plan{}, err
	}
	if err := bus.CheckToken("key_id", id); err != nil {
		return Plan{}, err
	}
	agent, revoked, ok := keys.Key(tenant, id)
	if !ok {
		return Plan{}, errcode.New(errcode.NotFound, "no such key")
	}
	p := Plan{Aggregate: bus.AggAgent, AggregateID: agent, ReplyID: id}
	if !revoked {
		p.Events = []bus.Message{&controlv1.AgentKeyRevoked{Meta: newMeta(), AgentId: agent, KeyId: id}}
	}
	return p, nil
}

func printable(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			return false
		}
	}
	return true
}
