package catalog_test

import (
	"context"
	"slices"
	"testing"

	"github.com/mcpgw/mcpgw/libs/bus"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/internal/catalog"
)

func event(tenant string, m bus.Message) *bus.Event {
	m.GetMeta().Tenant = tenant
	return &bus.Event{Meta: m.GetMeta(), Msg: m}
}

func started(tenant, id string, v uint32, name, slug string) *bus.Event {
	return event(tenant, &controlv1.SourceVersionStarted{Meta: &commonv1.EventMeta{}, SourceId: id, Version: v, Name: name, Slug: slug})
}

func tool(tenant, id string, v uint32, name string) *bus.Event {
	return event(tenant, &controlv1.ToolProposed{Meta: &commonv1.EventMeta{}, SourceId: id, Version: v, Tool: &controlv1.ToolSpec{Name: name}})
}

func committed(tenant, id string, v, count uint32) *bus.Event {
	return event(tenant, &controlv1.SourceVersionCommitted{Meta: &commonv1.EventMeta{}, SourceId: id, Version: v, ToolCount: count})
}

func TestCatalog(t *testing.T) {
	tests := []struct {
		name          string
		events        []*bus.Event
		tenant, id    string
		wantOK        bool
		want          catalog.Source
		wantVisible   bool
		revokedTenant string
	}{
		{name: "unknown", tenant: "t1", id: "src_a"},
		{
			name:   "started only is not visible",
			events: []*bus.Event{started("t1", "src_a", 1, "A", "a"), tool("t1", "src_a", 1, "x")},
			tenant: "t1", id: "src_a", wantOK: true,
			want: catalog.Source{ID: "src_a", Name: "A", Slug: "a", Latest: 1},
		},
		{
			name:   "committed",
			events: []*bus.Event{started("t1", "src_a", 1, "A", "a"), tool("t1", "src_a", 1, "x"), tool("t1", "src_a", 1, "y"), committed("t1", "src_a", 1, 2)},
			tenant: "t1", id: "src_a", wantOK: true, wantVisible: true,
			want: catalog.Source{ID: "src_a", Name: "A", Slug: "a", Latest: 1, Committed: []uint32{1}},
		},
		{
			name: "commit with a wrong count is ignored; a failed version's number stays taken",
			events: []*bus.Event{
				started("t1", "src_a", 1, "A", "a"), tool("t1", "src_a", 1, "x"), committed("t1", "src_a", 1, 1),
				started("t1", "src_a", 2, "A2", "a"), tool("t1", "src_a", 2, "x"), committed("t1", "src_a", 2, 5),
				started("t1", "src_a", 3, "A3", "a"),
			},
			tenant: "t1", id: "src_a", wantOK: true, wantVisible: true,
			want: catalog.Source{ID: "src_a", Name: "A3", Slug: "a", Latest: 3, Committed: []uint32{1}},
		},
		{
			name:   "tenants are apart",
			events: []*bus.Event{started("t1", "src_a", 1, "A", "a"), committed("t1", "src_a", 1, 0)},
			tenant: "t2", id: "src_a",
		},
		{
			name:   "revocation",
			events: []*bus.Event{event("t1", &controlv1.AgentKeyRevoked{Meta: &commonv1.EventMeta{}, KeyId: "key_1"})},
			tenant: "t1", id: "src_a", revokedTenant: "t1",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := catalog.New()
			for _, ev := range tc.events {
				if err := c.Apply(context.Background(), ev); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := c.Source(tc.tenant, tc.id)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if got.ID != tc.want.ID || got.Name != tc.want.Name || got.Slug != tc.want.Slug || got.Latest != tc.want.Latest ||
				!slices.Equal(got.Committed, tc.want.Committed) {
				t.Fatalf("source = %+v, want %+v", got, tc.want)
			}
			if got.Visible() != tc.wantVisible {
				t.Fatalf("visible = %v, want %v", got.Visible(), tc.wantVisible)
			}
			if tc.revokedTenant != "" {
				if !c.Revoked(tc.revokedTenant, "key_1") {
					t.Fatal("revocation not applied")
				}
				if c.Revoked("other", "key_1") || c.Revoked(tc.revokedTenant, "key_2") {
					t.Fatal("revocation leaks across tenants or keys")
				}
			}
		})
	}
}
