// Package catalog is the shared read model of mcpgw's control plane: the
// sources, versions and tools the importer proposed, policy's approvals,
// selections, host allowlists, grants and agent keys, and the broker's
// bindings, all projected from verified CONTROL events. Services that need
// these facts (policy, adapter, broker) apply events to a Catalog through a
// bus.Projection; the Catalog trusts only what bus.Verifier verified and the
// owner of each aggregate said.
//
// A Catalog is safe for concurrent use. Query results are copies or
// immutable values; callers never see a half-applied event.
package catalog

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// ToolDigest is SHA-256 over a ToolSpec's deterministic encoding: what
// policy approves and the adapter checks before it runs a tool.
func ToolDigest(spec *controlv1.ToolSpec) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode tool spec: %w", err)
	}
	h := sha256.Sum256(b)
	return h[:], nil
}

// Version is one version of a source as the importer proposed it.
type Version struct {
	Number        uint32
	Format        string
	Title         string
	Document      *controlv1.DocumentRef
	ProposedHosts []string
	// Tools by name; complete only once Committed.
	Tools     map[string]*controlv1.ToolSpec
	Committed bool
}

// Approval is policy's approval of one source version.
type Approval struct {
	Version uint32
	// Digests by tool name.
	Digests map[string][]byte
	Hosts   []string
}

// Source is an imported API description with its versions and policy's
// decisions about it.
type Source struct {
	ID, Name, Slug string
	Versions       map[uint32]*Version
	// Approval is the latest approval (nil until one).
	Approval *Approval
	// Selected is the set of enabled tool names (nil: none selected yet).
	Selected map[string]bool
	// Allowlist is the confirmed host allowlist.
	AllowHosts    []string
	AllowPrefixes []string
}

// Binding is a credential binding's metadata (never secret material).
type Binding struct {
	ID, Name, Strategy string
	Placement          *controlv1.Placement
	SecretRef          string
	Hosts              []string
	Environment        string
	SourceID, Scheme   string
	Disabled           bool
}

// Grant lets a subject invoke a tool.
type Grant struct {
	ID, Tool, SubjectType, SubjectID string
	Revoked                          bool
}

// AgentKey is an agent key's registration (hash and prefix only).
type AgentKey struct {
	ID, AgentID, Prefix        string
	Hash                       []byte
	User, Environment, Surface string
	Workload                   string
	ExpiresAt                  time.Time
	Revoked                    bool
}

type tenant struct {
	sources  map[string]*Source
	bindings map[string]*Binding
	grants   map[string]*Grant
	keys     map[string]*AgentKey
	secrets  map[string]string // name → latest ref
}

// Catalog is the projection. Use New, feed Apply from a bus.Projection.
type Catalog struct {
	mu       sync.RWMutex
	tenants  map[string]*tenant
	keyIndex map[string]*AgentKey // hex hash → key
	onChange []func(tenant string)
}

// New returns an empty Catalog.
func New() *Catalog {
	return &Catalog{tenants: map[string]*tenant{}, keyIndex: map[string]*AgentKey{}}
}

// OnChange registers f to be called (outside the lock) after every applied
// event, with the event's tenant. Register before the projection starts.
func (c *Catalog) OnChange(f func(tenant string)) { c.onChange = append(c.onChange, f) }

func (c *Catalog) tenant(id string) *tenant {
	t, ok := c.tenants[id]
	if !ok {
		t = &tenant{sources: map[string]*Source{}, bindings: map[string]*Binding{}, grants: map[string]*Grant{}, keys: map[string]*AgentKey{}, secrets: map[string]string{}}
		c.tenants[id] = t
	}
	return t
}

func (t *tenant) source(id string) *Source {
	s, ok := t.sources[id]
	if !ok {
		s = &Source{ID: id, Versions: map[uint32]*Version{}}
		t.sources[id] = s
	}
	return s
}

// Apply applies one verified event. It is a bus.Applier. Events of types the
// catalog does not model are ignored.
func (c *Catalog) Apply(_ context.Context, ev *bus.Event) error {
	tenantID := ev.Meta.GetTenant()
	c.mu.Lock()
	t := c.tenant(tenantID)
	switch m := ev.Msg.(type) {
	case *controlv1.SourceVersionStarted:
		s := t.source(m.GetSourceId())
		s.Name, s.Slug = m.GetName(), m.GetSlug()
		s.Versions[m.GetVersion()] = &Version{Number: m.GetVersion(), Format: m.GetFormat(), Title: m.GetTitle(),
			Document: m.GetDocument(), ProposedHosts: m.GetProposedHosts(), Tools: map[string]*controlv1.ToolSpec{}}
	case *controlv1.ToolProposed:
		if v := t.source(m.GetSourceId()).Versions[m.GetVersion()]; v != nil && !v.Committed {
			v.Tools[m.GetTool().GetName()] = m.GetTool()
		}
	case *controlv1.SourceVersionCommitted:
		if v := t.source(m.GetSourceId()).Versions[m.GetVersion()]; v != nil && uint32(len(v.Tools)) == m.GetToolCount() {
			v.Committed = true
		}
	case *controlv1.SourceVersionApproved:
		a := &Approval{Version: m.GetVersion(), Digests: map[string][]byte{}, Hosts: m.GetAllowedHosts()}
		for _, tl := range m.GetTools() {
			a.Digests[tl.GetName()] = tl.GetDigest()
		}
		t.source(m.GetSourceId()).Approval = a
	case *controlv1.OperationsSelected:
		sel := map[string]bool{}
		for _, n := range m.GetTools() {
			sel[n] = true
		}
		t.source(m.GetSourceId()).Selected = sel
	case *controlv1.HostAllowlistSet:
		s := t.source(m.GetSourceId())
		s.AllowHosts, s.AllowPrefixes = m.GetHosts(), m.GetAllowedPrefixes()
	case *controlv1.GrantAdded:
		t.grants[m.GetGrantId()] = &Grant{ID: m.GetGrantId(), Tool: m.GetTool(), SubjectType: m.GetSubjectType(), SubjectID: m.GetSubjectId()}
	case *controlv1.GrantRevoked:
		if g := t.grants[m.GetGrantId()]; g != nil {
			g.Revoked = true
		}
	case *controlv1.AgentKeyIssued:
		k := &AgentKey{ID: m.GetKeyId(), AgentID: m.GetAgentId(), Prefix: m.GetPrefix(), Hash: m.GetKeyHash(),
			User: m.GetUser(), Environment: m.GetEnvironment(), Surface: m.GetSurface(), Workload: m.GetWorkload()}
		if m.GetExpiresAt() != nil {
			k.ExpiresAt = m.GetExpiresAt().AsTime()
		}
		t.keys[k.ID] = k
		c.keyIndex[fmt.Sprintf("%x", k.Hash)] = k
	case *controlv1.AgentKeyRevoked:
		if k := t.keys[m.GetKeyId()]; k != nil {
			k.Revoked = true
		}
	case *controlv1.BindingCreated:
		t.bindings[m.GetBindingId()] = &Binding{ID: m.GetBindingId(), Name: m.GetName(), Strategy: m.GetStrategy(),
			Placement: m.GetPlacement(), SecretRef: m.GetSecretRef(), Hosts: m.GetHosts(), Environment: m.GetEnvironment(),
			SourceID: m.GetSourceId(), Scheme: m.GetScheme()}
	case *controlv1.BindingDisabled:
		if b := t.bindings[m.GetBindingId()]; b != nil {
			b.Disabled = true
		}
	case *controlv1.SecretWritten:
		t.secrets[m.GetName()] = m.GetSecretRef()
	}
	hooks := c.onChange
	c.mu.Unlock()
	for _, f := range hooks {
		f(tenantID)
	}
	return nil
}

// Tool is a tool as the runtime sees it: the approved spec (or, when not
// approved, the latest proposal) with every fact the gates need.
type Tool struct {
	Tenant   string
	SourceID string
	Slug     string
	// Version is the version whose spec this is.
	Version uint32
	Spec    *controlv1.ToolSpec
	// Approved: the version is approved and the spec's digest matches the
	// approved digest.
	Approved bool
	// ApprovalReason says why not, when not approved.
	ApprovalReason string
	Selected       bool
	AllowHosts     []string
	AllowPrefixes  []string
}

// Tool finds a tool by name in a tenant. It prefers the approved version of
// a source that has the name; otherwise it returns the latest committed
// proposal with Approved false. ok is false when no source has the name.
func (c *Catalog) Tool(tenantID, name string) (Tool, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil {
		return Tool{}, false
	}
	var proposal *Tool
	for _, sid := range sortedKeys(t.sources) {
		s := t.sources[sid]
		if a := s.Approval; a != nil {
			if v := s.Versions[a.Version]; v != nil && v.Committed {
				if spec, ok := v.Tools[name]; ok {
					tl := c.toolOf(tenantID, s, v, spec)
					want, have := a.Digests[name], []byte(nil)
					if d, err := ToolDigest(spec); err == nil {
						have = d
					}
					switch {
					case want == nil:
						tl.ApprovalReason = "tool not in the approved version"
					case string(want) != string(have):
						tl.ApprovalReason = "tool does not match its approved digest"
					default:
						tl.Approved = true
					}
					return tl, true
				}
			}
		}
		if proposal == nil {
			if v := latestCommitted(s); v != nil {
				if spec, ok := v.Tools[name]; ok {
					tl := c.toolOf(tenantID, s, v, spec)
					tl.ApprovalReason = "source version not approved"
					proposal = &tl
				}
			}
		}
	}
	if proposal != nil {
		return *proposal, true
	}
	return Tool{}, false
}

func (c *Catalog) toolOf(tenantID string, s *Source, v *Version, spec *controlv1.ToolSpec) Tool {
	return Tool{Tenant: tenantID, SourceID: s.ID, Slug: s.Slug, Version: v.Number, Spec: spec,
		Selected: s.Selected[spec.GetName()], AllowHosts: s.AllowHosts, AllowPrefixes: s.AllowPrefixes}
}

func latestCommitted(s *Source) *Version {
	var best *Version
	for _, v := range s.Versions {
		if v.Committed && (best == nil || v.Number > best.Number) {
			best = v
		}
	}
	return best
}

// ApprovedTools lists every approved, digest-matching tool of a tenant,
// sorted by name, with its selection flag.
func (c *Catalog) ApprovedTools(tenantID string) []Tool {
	c.mu.RLock()
	names := map[string]bool{}
	if t := c.tenants[tenantID]; t != nil {
		for _, s := range t.sources {
			if a := s.Approval; a != nil {
				for n := range a.Digests {
					names[n] = true
				}
			}
		}
	}
	c.mu.RUnlock()
	var out []Tool
	for _, n := range sortedKeys(names) {
		if tl, ok := c.Tool(tenantID, n); ok && tl.Approved {
			out = append(out, tl)
		}
	}
	return out
}

// Source returns a copy of a source. Its Versions map holds copies of the
// version summaries without their tools (use Version for those).
func (c *Catalog) Source(tenantID, id string) (Source, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil || t.sources[id] == nil {
		return Source{}, false
	}
	src := t.sources[id]
	s := *src
	s.Versions = make(map[uint32]*Version, len(src.Versions))
	for n, v := range src.Versions {
		cp := *v
		cp.Tools = nil
		s.Versions[n] = &cp
	}
	if src.Selected != nil {
		s.Selected = make(map[string]bool, len(src.Selected))
		for k, v := range src.Selected {
			s.Selected[k] = v
		}
	}
	if src.Approval != nil {
		a := *src.Approval
		s.Approval = &a
	}
	return s, true
}

// Version returns a committed version's tools (by name) of a source.
func (c *Catalog) Version(tenantID, sourceID string, n uint32) (*Version, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil || t.sources[sourceID] == nil {
		return nil, false
	}
	v := t.sources[sourceID].Versions[n]
	if v == nil || !v.Committed {
		return nil, false
	}
	cp := *v
	cp.Tools = map[string]*controlv1.ToolSpec{}
	for k, s := range v.Tools {
		cp.Tools[k] = s
	}
	return &cp, true
}

// Binding returns a binding by ID.
func (c *Catalog) Binding(tenantID, id string) (Binding, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil || t.bindings[id] == nil {
		return Binding{}, false
	}
	return *t.bindings[id], true
}

// BindingsFor returns the active bindings of a tenant that serve scheme of
// source in environment (a binding without an environment serves every
// environment), sorted by ID.
func (c *Catalog) BindingsFor(tenantID, sourceID, scheme, environment string) []Binding {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil {
		return nil
	}
	var out []Binding
	for _, id := range sortedKeys(t.bindings) {
		b := t.bindings[id]
		if !b.Disabled && b.SourceID == sourceID && b.Scheme == scheme && (b.Environment == "" || b.Environment == environment) {
			out = append(out, *b)
		}
	}
	return out
}

// BindingsOf returns the active bindings of a tenant that serve scheme of
// source, in every environment, sorted by ID.
func (c *Catalog) BindingsOf(tenantID, sourceID, scheme string) []Binding {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil {
		return nil
	}
	var out []Binding
	for _, id := range sortedKeys(t.bindings) {
		if b := t.bindings[id]; !b.Disabled && b.SourceID == sourceID && b.Scheme == scheme {
			out = append(out, *b)
		}
	}
	return out
}

// Grants returns the active grants of a tenant, sorted by ID.
func (c *Catalog) Grants(tenantID string) []Grant {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil {
		return nil
	}
	var out []Grant
	for _, id := range sortedKeys(t.grants) {
		if g := t.grants[id]; !g.Revoked {
			out = append(out, *g)
		}
	}
	return out
}

// Grant returns a grant by ID (revoked ones too).
func (c *Catalog) Grant(tenantID, id string) (Grant, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil || t.grants[id] == nil {
		return Grant{}, false
	}
	return *t.grants[id], true
}

// KeyByHash finds an agent key by the SHA-256 of the key, across tenants.
func (c *Catalog) KeyByHash(hash []byte) (tenantID string, k AgentKey, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	kp := c.keyIndex[fmt.Sprintf("%x", hash)]
	if kp == nil {
		return "", AgentKey{}, false
	}
	for tid, t := range c.tenants {
		if t.keys[kp.ID] == kp {
			return tid, *kp, true
		}
	}
	return "", AgentKey{}, false
}

// Revoked reports whether a credential (agent key ID) was revoked; it
// implements reqctx.Revocations.
func (c *Catalog) Revoked(tenantID, credentialID string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil {
		return false
	}
	k := t.keys[credentialID]
	return k != nil && k.Revoked
}

// SecretRef returns the latest reference written under a secret name.
func (c *Catalog) SecretRef(tenantID, name string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil {
		return "", false
	}
	r, ok := t.secrets[name]
	return r, ok
}

// Tenants lists the tenants the catalog knows, sorted.
func (c *Catalog) Tenants() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return sortedKeys(c.tenants)
}

// SourceIDs lists a tenant's source IDs, sorted.
func (c *Catalog) SourceIDs(tenantID string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	t := c.tenants[tenantID]
	if t == nil {
		return nil
	}
	return sortedKeys(t.sources)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
