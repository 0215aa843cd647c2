// Package catalog is the importer's own read model, projected from verified
// CONTROL events: the sources of each tenant with their name, slug and
// versions (started and committed), which the importer numbers new versions
// from and checks existence against, and the revoked credentials that
// operator authorizations are checked against.
//
// A Catalog performs no I/O; a bus.Projection feeds it through Apply. It is
// safe for concurrent use and returns copies.
package catalog

import (
	"context"
	"slices"
	"sync"

	"github.com/mcpgw/mcpgw/libs/bus"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// Filters are the CONTROL subjects the importer's projection replays: its
// own source aggregates, the agent aggregates whose events revoke
// credentials, policy's source decisions (approvals), which tool names are
// checked against, and the broker's bindings, which the review's binding
// slots show.
func Filters() []string {
	return []string{
		bus.ControlPrefix + ".*." + string(bus.AggSource) + ".*.*",
		bus.ControlPrefix + ".*." + string(bus.AggSourcePolicy) + ".*.*",
		bus.ControlPrefix + ".*." + string(bus.AggAgent) + ".*.*",
		bus.ControlPrefix + ".*." + string(bus.AggBinding) + ".*.*",
	}
}

// Source is what the importer knows of one of its sources.
type Source struct {
	ID, Name, Slug string
	// Latest is the highest version ever started (committed or not); a new
	// version is numbered Latest+1, so a failed import's number is never
	// reused.
	Latest uint32
	// Committed lists the committed (visible) versions, ascending.
	Committed []uint32
}

// Visible reports whether the source has a committed version: only such a
// source exists for an operator.
func (s Source) Visible() bool { return len(s.Committed) > 0 }

type version struct {
	tools     map[string]bool
	committed bool
}

type source struct {
	id, name, slug string
	latest         uint32
	versions       map[uint32]*version
}

// Catalog is the read model. Use New, feed Apply from a bus.Projection.
type Catalog struct {
	mu      sync.RWMutex
	sources map[string]map[string]*source // tenant → source ID → source
	revoked map[string]bool               // tenant + "/" + credential ID
}

// New returns an empty Catalog.
func New() *Catalog {
	return &Catalog{sources: map[string]map[string]*source{}, revoked: map[string]bool{}}
}

// Apply applies one verified event; it is a bus.Applier and never fails.
// Events of other types are ignored. A version commits only when its commit
// event names as many tools as were proposed for it.
func (c *Catalog) Apply(_ context.Context, ev *bus.Event) error {
	tenant := ev.Meta.GetTenant()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m := ev.Msg.(type) {
	case *controlv1.SourceVersionStarted:
		s := c.source(tenant, m.GetSourceId())
		s.name, s.slug = m.GetName(), m.GetSlug()
		s.latest = max(s.latest, m.GetVersion())
		s.versions[m.GetVersion()] = &version{tools: map[string]bool{}}
	case *controlv1.ToolProposed:
		if v := c.source(tenant, m.GetSourceId()).versions[m.GetVersion()]; v != nil && !v.committed {
			v.tools[m.GetTool().GetName()] = true
		}
	case *controlv1.SourceVersionCommitted:
		if v := c.source(tenant, m.GetSourceId()).versions[m.GetVersion()]; v != nil && uint32(len(v.tools)) == m.GetToolCount() {
			v.committed = true
		}
	case *controlv1.AgentKeyRevoked:
		c.revoked[tenant+"/"+m.GetKeyId()] = true
	}
	return nil
}

func (c *Catalog) source(tenant, id string) *source {
	t := c.sources[tenant]
	if t == nil {
		t = map[string]*source{}
		c.sources[tenant] = t
	}
	s := t[id]
	if s == nil {
		s = &source{id: id, versions: map[uint32]*version{}}
		t[id] = s
	}
	return s
}

// Source returns a copy of a tenant's source; ok is false when no version
// of it was ever started.
func (c *Catalog) Source(tenant, id string) (Source, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.sources[tenant][id]
	if s == nil {
		return Source{}, false
	}
	out := Source{ID: s.id, Name: s.name, Slug: s.slug, Latest: s.latest}
	for n, v := range s.versions {
		if v.committed {
			out.Committed = append(out.Committed, n)
		}
	}
	slices.Sort(out.Committed)
	return out, true
}

// Revoked reports whether a credential was revoked; it implements
// reqctx.Revocations.
func (c *Catalog) Revoked(tenant, credentialID string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.revoked[tenant+"/"+credentialID]
}
