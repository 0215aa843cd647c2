package service_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// gadgets shares listItems with widgets and adds a tool of its own.
const gadgets = `openapi: 3.0.3
info: {title: Gadgets, version: "1"}
servers: [{url: "https://gadgets.example.com"}]
paths:
  /items:
    get:
      operationId: listItems
      responses: {"200": {description: ok}}
  /gadgets/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getGadget
      responses: {"200": {description: ok}}
`

// committedVersions returns the committed version numbers of a source, in
// order.
func (f *fixture) committedVersions(sourceID string) []uint32 {
	f.t.Helper()
	var out []uint32
	for _, ev := range f.sourceEvents(sourceID) {
		if c, ok := ev.Msg.(*controlv1.SourceVersionCommitted); ok {
			out = append(out, c.GetVersion())
		}
	}
	return out
}

// waitCommitted waits until a source has n committed versions.
func (f *fixture) waitCommitted(sourceID string, n int) []uint32 {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.committedVersions(sourceID)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("source %s has committed versions %v, want %d", sourceID, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settle gives the importers time to react to what was appended last.
func settle() { time.Sleep(400 * time.Millisecond) }

func TestRenameOnApproval(t *testing.T) {
	// Two importers over the same NATS both see the approval.
	f := newFixture(t, 2)
	pol := f.n.Runtime(t, f.keys, bus.Policy)
	alpha := f.importDoc(tenant, "Alpha", "", widgets).GetSourceId()
	beta := f.importDoc(tenant, "Beta Gadgets", "", gadgets).GetSourceId()
	other := f.importDoc("other", "Beta Gadgets", "", gadgets).GetSourceId()
	otherAlpha := f.importDoc("other", "Alpha", "", widgets).GetSourceId()
	if got := f.proposedNames(beta, 1); !slices.Equal(got, []string{"get_gadget", "list_items"}) {
		t.Fatalf("beta tools = %v", got)
	}

	f.approveAs(pol, tenant, alpha, 1, "req_approve_alpha")
	got := f.waitCommitted(beta, 2)

	t.Run("the colliding source gets a version with the prefixed name", func(t *testing.T) {
		if !slices.Equal(got, []uint32{1, 2}) {
			t.Fatalf("beta committed versions = %v", got)
		}
		if names := f.proposedNames(beta, 2); !slices.Equal(names, []string{"beta-gadgets_list_items", "get_gadget"}) {
			t.Fatalf("beta version 2 tools = %v", names)
		}
		d := f.startedEvent(beta, 2).GetDiff()
		want := &controlv1.OperationChange{Tool: "beta-gadgets_list_items", Method: "GET", Path: "/items", OperationId: "listItems",
			Changes: []string{"name"}, PreviousTool: "list_items"}
		if d.GetBaseVersion() != 1 || len(d.GetChangedOperations()) != 1 || !proto.Equal(d.GetChangedOperations()[0], want) ||
			d.GetUnchangedOperations() != 1 || len(d.GetAddedOperations())+len(d.GetRemovedOperations()) != 0 {
			t.Fatalf("diff = %s", prototext.Format(d))
		}
	})

	t.Run("the version is a proposal by the importer for the approval's request", func(t *testing.T) {
		var kinds []string
		for _, ev := range f.sourceEvents(beta) {
			v := uint32(0)
			switch m := ev.Msg.(type) {
			case *controlv1.SourceVersionStarted:
				v = m.GetVersion()
			case *controlv1.ToolProposed:
				v = m.GetVersion()
			case *controlv1.SourceVersionCommitted:
				v = m.GetVersion()
			}
			if v != 2 {
				continue
			}
			kinds = append(kinds, ev.Name())
			a := ev.Meta.GetActor()
			if a.GetKind() != "service" || a.GetId() != "importer" || a.GetVia() != "importer" {
				t.Fatalf("%s actor = %v", ev.Name(), a)
			}
			if ev.Meta.GetRequestId() != "req_approve_alpha" || ev.Meta.GetTenant() != tenant {
				t.Fatalf("%s meta = %v", ev.Name(), ev.Meta)
			}
		}
		if !slices.Equal(kinds, []string{"SourceVersionStarted", "ToolProposed", "ToolProposed", "SourceVersionCommitted"}) {
			t.Fatalf("version 2 events = %v", kinds)
		}
		if v, ok := f.cat.Version(tenant, beta, 2); !ok || !v.Committed || v.Document.GetObject() == "" {
			t.Fatalf("version 2 in the reader's catalog = %+v", v)
		}
	})

	t.Run("the approved source and another tenant are unaffected", func(t *testing.T) {
		settle()
		if got := f.committedVersions(alpha); !slices.Equal(got, []uint32{1}) {
			t.Fatalf("alpha committed versions = %v", got)
		}
		for _, id := range []string{other, otherAlpha} {
			if got := f.committedVersions(id); !slices.Equal(got, []uint32{1}) {
				t.Fatalf("source of another tenant has committed versions %v", got)
			}
		}
	})

	t.Run("a restarted importer does not propose again", func(t *testing.T) {
		f.startImporter()
		settle()
		if got := f.committedVersions(beta); !slices.Equal(got, []uint32{1, 2}) {
			t.Fatalf("beta committed versions = %v", got)
		}
		if n := len(f.sourceEvents(beta)); n != 8 {
			t.Fatalf("beta has %d events, want 8", n)
		}
	})

	t.Run("an approval without collisions proposes nothing", func(t *testing.T) {
		// Beta's version 2 no longer collides; the only source of a
		// third tenant has nothing to collide with.
		f.approve(pol, tenant, beta, 2)
		solo := f.importDoc("solo", "Alpha", "", widgets).GetSourceId()
		f.approve(pol, "solo", solo, 1)
		settle()
		for _, id := range []string{other, otherAlpha, alpha, solo} {
			if got := f.committedVersions(id); !slices.Equal(got, []uint32{1}) {
				t.Fatalf("committed versions = %v", got)
			}
		}
		if got := f.committedVersions(beta); !slices.Equal(got, []uint32{1, 2}) {
			t.Fatalf("beta committed versions = %v", got)
		}
	})

	t.Run("an approval in another tenant renames there only", func(t *testing.T) {
		f.approve(pol, "other", other, 1)
		f.waitCommitted(otherAlpha, 2)
		settle()
		if got := f.committedVersions(otherAlpha); !slices.Equal(got, []uint32{1, 2}) {
			t.Fatalf("committed versions = %v", got)
		}
		if names := f.proposedNames(otherAlpha, 2); !slices.Equal(names, []string{"alpha_list_items", "list_widgets"}) {
			t.Fatalf("version 2 tools = %v", names)
		}
		if got := f.committedVersions(alpha); !slices.Equal(got, []uint32{1}) {
			t.Fatalf("alpha committed versions = %v", got)
		}
	})
}

func TestRenameAtStart(t *testing.T) {
	// Approved while no importer runs: the collision exists when one
	// starts, and is renamed from the state it replays.
	f := newFixture(t, 0)
	stop := f.startStoppableImporter()
	pol := f.n.Runtime(t, f.keys, bus.Policy)
	alpha := f.importDoc(tenant, "Alpha", "", widgets).GetSourceId()
	beta := f.importDoc(tenant, "Beta Gadgets", "", gadgets).GetSourceId()
	gamma := f.importDoc(tenant, "Gamma", "", widgets).GetSourceId()
	stop()
	f.approve(pol, tenant, beta, 1)
	// Gamma's list_items is approved as well (as two approvals racing past
	// policy's check could do): an approved tool never changes name.
	f.approve(pol, tenant, gamma, 1)
	f.startImporter()
	got := f.waitCommitted(alpha, 2)
	if names := f.proposedNames(alpha, 2); !slices.Equal(names, []string{"alpha_list_items", "alpha_list_widgets"}) {
		t.Fatalf("alpha version 2 tools = %v", names)
	}
	settle()
	if got = f.committedVersions(alpha); !slices.Equal(got, []uint32{1, 2}) {
		t.Fatalf("alpha committed versions = %v", got)
	}
	for _, id := range []string{beta, gamma} {
		if got := f.committedVersions(id); !slices.Equal(got, []uint32{1}) {
			t.Fatalf("approved source's committed versions = %v", got)
		}
	}
}
