// Package projection applies verified CONTROL events to policy's read
// models: the shared catalog, an index of agent keys, and the SpiceDB
// relationships (GrantAdded → TOUCH tool#invoker, GrantRevoked → DELETE).
//
// The catalog always replays CONTROL from the start. SpiceDB keeps its
// relationships across restarts of policy, so policy records a cursor — the
// last CONTROL sequence whose writes SpiceDB holds, with the aggregate states
// it covers — in its KV bucket, and skips SpiceDB writes for events at or
// below it. When SpiceDB holds no relationship at all (the memory datastore
// after a restart), the cursor is ignored and every relationship is rebuilt
// from CONTROL. Writes are idempotent, so replaying some twice is harmless.
package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/policy/internal/spicedb"
)

// Relations is the SpiceDB side of the projection; *spicedb.Client
// implements it.
type Relations interface {
	WriteSchema(ctx context.Context, schema string) error
	// HasSchema reports whether SpiceDB holds a schema; a SpiceDB that lost
	// its datastore (memory engine after a restart) holds none.
	HasSchema(ctx context.Context) (bool, error)
	Empty(ctx context.Context) (bool, error)
	Touch(ctx context.Context, g spicedb.Grant) error
	Delete(ctx context.Context, g spicedb.Grant) error
}

// Cursor is what policy records of its SpiceDB projection.
type Cursor struct {
	// Seq is the last CONTROL sequence whose writes SpiceDB holds.
	Seq uint64
	// Aggregates are the projection's aggregate states at Seq.
	Aggregates map[string]bus.AggregateState
}

// CursorStore persists the cursor.
type CursorStore interface {
	// Load returns the stored cursor; ok is false when there is none.
	Load(ctx context.Context) (c Cursor, ok bool, err error)
	Save(ctx context.Context, c Cursor) error
}

// Snapshotter reports how far the CONTROL projection has fully applied
// events; *bus.Projection implements it.
type Snapshotter interface {
	Snapshot() (uint64, map[string]bus.AggregateState)
}

// Config configures a Projector.
type Config struct {
	Catalog   *catalog.Catalog
	Relations Relations
	Cursor    CursorStore
	// Schema is the SpiceDB schema written at start.
	Schema string
	Logger *slog.Logger
	// OnApplied is called with the tenant of every applied event, after
	// SpiceDB holds its writes (decision caches drop the tenant's entries).
	OnApplied func(tenant string)
	// InitRetry caps the backoff of Maintain's initialization (default 2s).
	InitRetry time.Duration
	// SaveEvery is how often Maintain stores the cursor when it moved
	// (default 1s).
	SaveEvery time.Duration
}

// Projector is a bus.Applier for policy's read models. Apply is called from
// the CONTROL projection's single goroutine; the other methods are safe for
// concurrent use.
type Projector struct {
	cfg  Config
	log  *slog.Logger
	keys *Keys

	catSeq uint64 // last sequence applied to the catalog (Apply goroutine only)

	// writeMu orders SpiceDB writes of Apply against a rebuild (Resync), so
	// a rebuild never re-adds a grant revoked while it ran.
	writeMu sync.Mutex

	mu        sync.Mutex
	ready     bool
	skipUpTo  uint64
	lastWrite uint64 // sequence of the last event written to SpiceDB
	saved     uint64 // sequence of the last stored or loaded cursor
}

// New returns a Projector.
func New(cfg Config) (*Projector, error) {
	if cfg.Catalog == nil || cfg.Relations == nil || cfg.Cursor == nil || cfg.Schema == "" {
		return nil, errors.New("projection: Catalog, Relations, Cursor and Schema are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnApplied == nil {
		cfg.OnApplied = func(string) {}
	}
	if cfg.InitRetry <= 0 {
		cfg.InitRetry = 2 * time.Second
	}
	if cfg.SaveEvery <= 0 {
		cfg.SaveEvery = time.Second
	}
	return &Projector{cfg: cfg, log: cfg.Logger.With("component", "projection"), keys: NewKeys()}, nil
}

// Keys returns the agent key index the projector maintains.
func (p *Projector) Keys() *Keys { return p.keys }

// Init writes the schema and decides which events SpiceDB already holds:
// none when it is empty, else those up to the stored cursor. It is done
// once; later calls return nil at once.
func (p *Projector) Init(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ready {
		return nil
	}
	if err := p.cfg.Relations.WriteSchema(ctx, p.cfg.Schema); err != nil {
		return err
	}
	c, ok, err := p.cfg.Cursor.Load(ctx)
	if err != nil {
		return fmt.Errorf("load cursor: %w", err)
	}
	if ok && c.Seq > 0 {
		empty, err := p.cfg.Relations.Empty(ctx)
		if err != nil {
			return err
		}
		if empty {
			p.log.Info("spicedb holds no relationship; rebuilding from control", "cursor", c.Seq)
		} else {
			p.skipUpTo, p.saved = c.Seq, c.Seq
			p.log.Info("resuming spicedb projection", "cursor", c.Seq)
		}
	}
	p.ready = true
	return nil
}

// Ready reports whether Init has succeeded.
func (p *Projector) Ready() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// Apply applies one verified event: to the catalog and the key index once,
// then to SpiceDB (unless the cursor covers it). A SpiceDB error is returned
// so that the CONTROL projection retries the event; it is never skipped.
func (p *Projector) Apply(ctx context.Context, ev *bus.Event) error {
	if ev.Seq == 0 || ev.Seq > p.catSeq {
		if err := p.cfg.Catalog.Apply(ctx, ev); err != nil {
			return err
		}
		p.keys.Apply(ev)
		p.catSeq = ev.Seq
	}
	tenant := ev.Meta.GetTenant()
	var err error
	switch m := ev.Msg.(type) {
	case *controlv1.GrantAdded:
		err = p.write(ctx, ev.Seq, func() error {
			return p.cfg.Relations.Touch(ctx, grantOf(tenant, m.GetTool(), m.GetSubjectType(), m.GetSubjectId()))
		})
	case *controlv1.GrantRevoked:
		g, ok := p.cfg.Catalog.Grant(tenant, m.GetGrantId())
		if !ok {
			break
		}
		if p.stillGranted(tenant, g) {
			break
		}
		err = p.write(ctx, ev.Seq, func() error {
			return p.cfg.Relations.Delete(ctx, grantOf(tenant, g.Tool, g.SubjectType, g.SubjectID))
		})
	}
	if err != nil {
		return err
	}
	p.cfg.OnApplied(tenant)
	return nil
}

// stillGranted reports whether another active grant gives the same subject
// the same tool (then the relationship stays).
func (p *Projector) stillGranted(tenant string, revoked catalog.Grant) bool {
	for _, g := range p.cfg.Catalog.Grants(tenant) {
		if g.ID != revoked.ID && g.Tool == revoked.Tool && g.SubjectType == revoked.SubjectType && g.SubjectID == revoked.SubjectID {
			return true
		}
	}
	return false
}

func grantOf(tenant, tool, subjectType, subjectID string) spicedb.Grant {
	return spicedb.Grant{Tenant: tenant, Tool: tool, Subject: spicedb.Subject{Type: subjectType, ID: subjectID}}
}

func (p *Projector) write(ctx context.Context, seq uint64, do func() error) error {
	if err := p.Init(ctx); err != nil {
		return fmt.Errorf("initialize spicedb: %w", err)
	}
	p.mu.Lock()
	skip := seq <= p.skipUpTo
	p.mu.Unlock()
	if skip {
		return nil
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if err := do(); err != nil {
		return err
	}
	p.mu.Lock()
	p.lastWrite = max(p.lastWrite, seq)
	p.mu.Unlock()
	return nil
}

// Maintain initializes SpiceDB (retrying with backoff) and then stores the
// cursor every SaveEvery when it moved, and once more when ctx ends. snap
// reports how far the CONTROL projection has fully applied events.
func (p *Projector) Maintain(ctx context.Context, snap Snapshotter) {
	delay := 100 * time.Millisecond
	for {
		err := p.Init(ctx)
		if err == nil {
			break
		}
		p.log.Warn("spicedb not initialized; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, p.cfg.InitRetry)
	}
	t := time.NewTicker(p.cfg.SaveEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := p.SaveCursor(sctx, snap); err != nil {
				p.log.Warn("saving projection cursor failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := p.Resync(ctx); err != nil {
				p.log.Warn("checking spicedb for a lost datastore failed", "err", err)
			}
			if err := p.SaveCursor(ctx, snap); err != nil {
				p.log.Warn("saving projection cursor failed", "err", err)
			}
		}
	}
}

// Resync detects a SpiceDB that lost its datastore while policy ran (no
// schema: the memory engine after a restart) and rebuilds it: the schema,
// then every active grant of the catalog, which holds all of CONTROL up to
// the events Apply has taken. Apply's writes wait meanwhile, so a grant
// revoked during the rebuild is not re-added. It reports whether it rebuilt.
func (p *Projector) Resync(ctx context.Context) error {
	if !p.Ready() {
		return nil
	}
	ok, err := p.cfg.Relations.HasSchema(ctx)
	if err != nil || ok {
		return err
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	p.log.Warn("spicedb lost its schema and relationships; rebuilding from the control read model")
	if err := p.cfg.Relations.WriteSchema(ctx, p.cfg.Schema); err != nil {
		return err
	}
	n := 0
	for _, tenant := range p.cfg.Catalog.Tenants() {
		for _, g := range p.cfg.Catalog.Grants(tenant) {
			if err := p.cfg.Relations.Touch(ctx, grantOf(tenant, g.Tool, g.SubjectType, g.SubjectID)); err != nil {
				return err
			}
			n++
		}
		p.cfg.OnApplied(tenant)
	}
	p.log.Info("spicedb rebuilt", "grants", n)
	return nil
}

// SaveCursor stores the CONTROL projection's snapshot as the cursor when
// SpiceDB received writes after the last stored cursor. Every event at or
// below the snapshot's sequence was fully applied, SpiceDB writes included.
func (p *Projector) SaveCursor(ctx context.Context, snap Snapshotter) error {
	seq, aggs := snap.Snapshot()
	p.mu.Lock()
	due := p.ready && p.lastWrite > p.saved && seq > p.saved
	p.mu.Unlock()
	if !due {
		return nil
	}
	if err := p.cfg.Cursor.Save(ctx, Cursor{Seq: seq, Aggregates: aggs}); err != nil {
		return err
	}
	p.mu.Lock()
	p.saved = max(p.saved, seq)
	p.mu.Unlock()
	return nil
}
