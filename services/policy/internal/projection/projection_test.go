package projection_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/policy/internal/projection"
	"github.com/mcpgw/mcpgw/services/policy/internal/spicedb"
)

// relations is a hand-written in-memory Relations.
type relations struct {
	mu     sync.Mutex
	rels   map[spicedb.Grant]bool
	writes int
	down   bool
	schema string
}

func (r *relations) WriteSchema(_ context.Context, s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return errors.New("spicedb down")
	}
	r.schema = s
	return nil
}

func (r *relations) HasSchema(context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return false, errors.New("spicedb down")
	}
	return r.schema != "", nil
}

// lose simulates a memory datastore that restarted: no schema, no
// relationship.
func (r *relations) lose() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.schema, r.rels = "", map[spicedb.Grant]bool{}
}

func (r *relations) Empty(context.Context) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rels) == 0, nil
}

func (r *relations) Touch(_ context.Context, g spicedb.Grant) error { return r.set(g, true) }

func (r *relations) Delete(_ context.Context, g spicedb.Grant) error { return r.set(g, false) }

func (r *relations) set(g spicedb.Grant, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return errors.New("spicedb down")
	}
	r.writes++
	if on {
		r.rels[g] = true
	} else {
		delete(r.rels, g)
	}
	return nil
}

func (r *relations) has(g spicedb.Grant) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rels[g]
}

// cursors is a hand-written CursorStore.
type cursors struct {
	c  projection.Cursor
	ok bool
}

func (c *cursors) Load(context.Context) (projection.Cursor, bool, error) { return c.c, c.ok, nil }
func (c *cursors) Save(_ context.Context, cur projection.Cursor) error {
	c.c, c.ok = cur, true
	return nil
}

type snap uint64

func (s snap) Snapshot() (uint64, map[string]bus.AggregateState) {
	return uint64(s), map[string]bus.AggregateState{"acme.grant.g1": {LastSeq: uint64(s), Version: 1}}
}

func events() []*bus.Event {
	ev := func(seq uint64, m bus.Message) *bus.Event {
		m.GetMeta().Tenant = "acme"
		return &bus.Event{Seq: seq, Meta: m.GetMeta(), Msg: m}
	}
	return []*bus.Event{
		ev(1, &controlv1.GrantAdded{Meta: &commonv1.EventMeta{}, GrantId: "g1", Tool: "t", SubjectType: "agent", SubjectId: "a1"}),
		ev(2, &controlv1.GrantAdded{Meta: &commonv1.EventMeta{}, GrantId: "g2", Tool: "t", SubjectType: "agent", SubjectId: "a1"}),
		ev(3, &controlv1.GrantRevoked{Meta: &commonv1.EventMeta{}, GrantId: "g1"}),
		ev(4, &controlv1.GrantAdded{Meta: &commonv1.EventMeta{}, GrantId: "g3", Tool: "u", SubjectType: "user", SubjectId: "bob"}),
		ev(5, &controlv1.GrantRevoked{Meta: &commonv1.EventMeta{}, GrantId: "g3"}),
	}
}

var (
	relT = spicedb.Grant{Tenant: "acme", Tool: "t", Subject: spicedb.Subject{Type: "agent", ID: "a1"}}
	relU = spicedb.Grant{Tenant: "acme", Tool: "u", Subject: spicedb.Subject{Type: "user", ID: "bob"}}
)

func newProjector(t *testing.T, rel *relations, cur *cursors, onApplied func(string)) *projection.Projector {
	t.Helper()
	p, err := projection.New(projection.Config{Catalog: catalog.New(), Relations: rel, Cursor: cur, Schema: "definition tool {}",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), OnApplied: onApplied})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func applyAll(t *testing.T, p *projection.Projector) {
	t.Helper()
	for _, ev := range events() {
		if err := p.Apply(context.Background(), ev); err != nil {
			t.Fatalf("apply %d: %v", ev.Seq, err)
		}
	}
}

func TestProjection(t *testing.T) {
	t.Run("fresh spicedb gets every relationship", func(t *testing.T) {
		rel, cur := &relations{rels: map[spicedb.Grant]bool{}}, &cursors{}
		var tenants []string
		p := newProjector(t, rel, cur, func(tenant string) { tenants = append(tenants, tenant) })
		applyAll(t, p)
		if !rel.has(relT) || rel.has(relU) || rel.schema == "" {
			t.Fatalf("relationships %v, schema %q", rel.rels, rel.schema)
		}
		if len(tenants) != 5 {
			t.Fatalf("OnApplied called %d times, want 5", len(tenants))
		}
		if err := p.SaveCursor(context.Background(), snap(5)); err != nil || cur.c.Seq != 5 || cur.c.Aggregates["acme.grant.g1"].Version != 1 {
			t.Fatalf("cursor %+v %v", cur.c, err)
		}
	})
	t.Run("cursor skips what spicedb holds", func(t *testing.T) {
		rel := &relations{rels: map[spicedb.Grant]bool{relT: true}}
		cur := &cursors{c: projection.Cursor{Seq: 3}, ok: true}
		p := newProjector(t, rel, cur, nil)
		applyAll(t, p)
		if rel.writes != 2 { // events 4 and 5 only
			t.Fatalf("%d writes, want 2", rel.writes)
		}
		if !rel.has(relT) || rel.has(relU) {
			t.Fatalf("relationships %v", rel.rels)
		}
	})
	t.Run("empty spicedb ignores the cursor", func(t *testing.T) {
		rel := &relations{rels: map[spicedb.Grant]bool{}}
		cur := &cursors{c: projection.Cursor{Seq: 5}, ok: true}
		p := newProjector(t, rel, cur, nil)
		applyAll(t, p)
		if !rel.has(relT) || rel.writes != 4 {
			t.Fatalf("rebuild: %v after %d writes", rel.rels, rel.writes)
		}
	})
	t.Run("spicedb down: apply fails, retry succeeds once up", func(t *testing.T) {
		rel := &relations{rels: map[spicedb.Grant]bool{}, down: true}
		p := newProjector(t, rel, &cursors{}, nil)
		ev := events()[0]
		if err := p.Apply(context.Background(), ev); err == nil {
			t.Fatal("apply succeeded with spicedb down")
		}
		if p.Ready() {
			t.Fatal("ready without a schema")
		}
		rel.mu.Lock()
		rel.down = false
		rel.mu.Unlock()
		if err := p.Apply(context.Background(), ev); err != nil || !rel.has(relT) {
			t.Fatalf("retry: %v", err)
		}
	})
	t.Run("a spicedb that lost its datastore while running is rebuilt", func(t *testing.T) {
		rel := &relations{rels: map[spicedb.Grant]bool{}}
		p := newProjector(t, rel, &cursors{}, nil)
		applyAll(t, p)
		if err := p.Resync(context.Background()); err != nil || !rel.has(relT) {
			t.Fatalf("resync of a healthy spicedb: %v %v", err, rel.rels)
		}
		before := rel.writes
		if err := p.Resync(context.Background()); err != nil || rel.writes != before {
			t.Fatalf("resync rewrote a healthy spicedb: %d writes", rel.writes-before)
		}
		rel.lose()
		if err := p.Resync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if rel.schema == "" || !rel.has(relT) || rel.has(relU) {
			t.Fatalf("after rebuild: schema %q, relationships %v", rel.schema, rel.rels)
		}
		rel.mu.Lock()
		rel.down = true
		rel.mu.Unlock()
		if err := p.Resync(context.Background()); err == nil {
			t.Fatal("resync with spicedb down reported success")
		}
	})
	t.Run("key index", func(t *testing.T) {
		p := newProjector(t, &relations{rels: map[spicedb.Grant]bool{}}, &cursors{}, nil)
		for i, m := range []bus.Message{
			&controlv1.AgentKeyIssued{Meta: &commonv1.EventMeta{Tenant: "acme"}, AgentId: "a1", KeyId: "key_1", KeyHash: make([]byte, 32)},
			&controlv1.AgentKeyRevoked{Meta: &commonv1.EventMeta{Tenant: "acme"}, AgentId: "a1", KeyId: "key_1"},
		} {
			if err := p.Apply(context.Background(), &bus.Event{Seq: uint64(i + 1), Meta: m.GetMeta(), Msg: m}); err != nil {
				t.Fatal(err)
			}
		}
		if agent, revoked, ok := p.Keys().Key("acme", "key_1"); !ok || agent != "a1" || !revoked {
			t.Fatalf("key: %s %v %v", agent, revoked, ok)
		}
		if _, _, ok := p.Keys().Key("other", "key_1"); ok {
			t.Fatal("key found in another tenant")
		}
	})
}
