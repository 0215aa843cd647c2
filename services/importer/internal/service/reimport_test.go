package service_test

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	libcatalog "github.com/mcpgw/mcpgw/libs/catalog"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/services/importer/internal/proposal"
)

// itemsV1 and itemsV2 are two versions of one description. Version 2 adds
// createItem (with a new bearer scheme), removes deleteItem, adds a query
// parameter to getItem, renames listItems' operation ID, moves the key from
// a header to the query and the servers to another host.
const itemsV1 = `openapi: 3.0.3
info: {title: Items API, version: "1"}
servers: [{url: "https://api.one.example.com/v1"}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
security: [{key: []}]
paths:
  /items:
    get:
      operationId: listItems
      summary: List items
      responses: {"200": {description: ok}}
  /items/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getItem
      summary: Get an item
      responses: {"200": {description: ok}}
    delete:
      operationId: deleteItem
      summary: Delete an item
      responses: {"204": {description: gone}}
`

const itemsV2 = `openapi: 3.0.3
info: {title: Items API, version: "2"}
servers: [{url: "https://api.two.example.com/v1"}]
components:
  securitySchemes:
    key: {type: apiKey, in: query, name: api_key}
    bearer: {type: http, scheme: bearer}
security: [{key: []}]
paths:
  /items:
    get:
      operationId: listAllItems
      summary: List items
      responses: {"200": {description: ok}}
    post:
      operationId: createItem
      summary: Create an item
      security: [{bearer: []}]
      responses: {"201": {description: created}}
  /items/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getItem
      summary: Get an item
      parameters: [{name: fields, in: query, schema: {type: string}}]
      responses: {"200": {description: ok}}
`

// approve appends policy's approval of a committed version, with the
// digest of each of its tools, as policy's approve command does.
func (f *fixture) approve(pol *bus.Runtime, tnt, sourceID string, version uint32) {
	f.t.Helper()
	f.approveAs(pol, tnt, sourceID, version, "")
}

// approveAs is approve with the request ID recorded on the approval.
func (f *fixture) approveAs(pol *bus.Runtime, tnt, sourceID string, version uint32, requestID string) {
	f.t.Helper()
	f.readerSees()
	v, ok := f.cat.Version(tnt, sourceID, version)
	if !ok {
		f.t.Fatalf("version %d of %s is not committed", version, sourceID)
	}
	ev := &controlv1.SourceVersionApproved{
		Meta:     &commonv1.EventMeta{Tenant: tnt, Actor: &commonv1.Actor{Kind: "operator", Id: "admin", Via: "policy"}, RequestId: requestID},
		SourceId: sourceID, Version: version, AllowedHosts: v.ProposedHosts,
	}
	for _, name := range slices.Sorted(maps.Keys(v.Tools)) {
		d, err := libcatalog.ToolDigest(v.Tools[name])
		if err != nil {
			f.t.Fatal(err)
		}
		ev.Tools = append(ev.Tools, &controlv1.ApprovedTool{Name: name, Digest: d})
	}
	if _, err := pol.Publisher.AppendControl(f.ctx, bus.AggSourcePolicy, sourceID, ev, f.proj.Expect(tnt, bus.AggSourcePolicy, sourceID)); err != nil {
		f.t.Fatalf("approve: %v", err)
	}
	f.readerSees()
}

// importDoc imports doc as a new source (sourceID empty) or a new version,
// and fails the test on an error reply.
func (f *fixture) importDoc(tnt, name, sourceID, doc string) *rpcv1.ImportReply {
	f.t.Helper()
	reply := f.call(f.command(tnt, name, sourceID, f.upload([]byte(doc))))
	if reply.GetError() != nil {
		f.t.Fatalf("import %s: %v", name, reply.GetError())
	}
	return reply
}

// proposedNames returns the tool names a version proposed, sorted.
func (f *fixture) proposedNames(sourceID string, version uint32) []string {
	f.t.Helper()
	var names []string
	for _, ev := range f.sourceEvents(sourceID) {
		if tp, ok := ev.Msg.(*controlv1.ToolProposed); ok && tp.GetVersion() == version {
			names = append(names, tp.GetTool().GetName())
		}
	}
	sort.Strings(names)
	return names
}

// startedEvent returns a version's start event.
func (f *fixture) startedEvent(sourceID string, version uint32) *controlv1.SourceVersionStarted {
	f.t.Helper()
	for _, ev := range f.sourceEvents(sourceID) {
		if s, ok := ev.Msg.(*controlv1.SourceVersionStarted); ok && s.GetVersion() == version {
			return s
		}
	}
	f.t.Fatalf("no start event of version %d", version)
	return nil
}

// reviewOf decodes a reply's review with its diff.
type reviewOf struct {
	analysis.Result
	Diff json.RawMessage `json:"diff"`
}

func decodeReview(t *testing.T, reply *rpcv1.ImportReply) reviewOf {
	t.Helper()
	var r reviewOf
	if err := json.Unmarshal(reply.GetReview(), &r); err != nil {
		t.Fatalf("review does not decode: %v", err)
	}
	return r
}

func hasInfo(r reviewOf, substr string) bool {
	return slices.ContainsFunc(r.Diagnostics, func(d analysis.Diagnostic) bool {
		return d.Level == analysis.LevelInfo && strings.Contains(d.Message, substr)
	})
}

func TestReimportDiff(t *testing.T) {
	f := newFixture(t, 1)
	pol := f.n.Runtime(t, f.keys, bus.Policy)
	first := f.importDoc(tenant, "Items API", "", itemsV1)
	src := first.GetSourceId()
	if r := decodeReview(t, first); r.Diff != nil {
		t.Fatalf("first version's review has a diff: %s", r.Diff)
	}
	if f.startedEvent(src, 1).GetDiff() != nil {
		t.Fatal("first version's start event has a diff")
	}
	f.approve(pol, tenant, src, 1)
	v1, _ := f.cat.Version(tenant, src, 1)

	second := f.importDoc(tenant, "", src, itemsV2)
	if second.GetVersion() != 2 {
		t.Fatalf("version %d, want 2", second.GetVersion())
	}
	want := &controlv1.SourceDiff{
		BaseVersion:       1,
		AddedOperations:   []*controlv1.OperationChange{{Tool: "create_item", Method: "POST", Path: "/items", OperationId: "createItem"}},
		RemovedOperations: []*controlv1.OperationChange{{Tool: "delete_item", Method: "DELETE", Path: "/items/{id}", OperationId: "deleteItem"}},
		ChangedOperations: []*controlv1.OperationChange{
			{Tool: "get_item", Method: "GET", Path: "/items/{id}", OperationId: "getItem",
				Changes: []string{"input_schema", "operation", "auth"}, OperationChanges: []string{"servers", "params"}},
			{Tool: "list_items", Method: "GET", Path: "/items", OperationId: "listAllItems",
				Changes: []string{"operation", "auth"}, OperationChanges: []string{"operation_id", "servers"}},
		},
		AddedSchemes:   []*controlv1.AuthSchemeChange{{Name: "bearer", Kind: "http-bearer"}},
		ChangedSchemes: []*controlv1.AuthSchemeChange{{Name: "key", Kind: "apiKey", Changes: []string{"in", "param"}}},
		AddedHosts:     []string{"api.two.example.com"},
		RemovedHosts:   []string{"api.one.example.com"},
	}

	t.Run("the start event records the diff", func(t *testing.T) {
		got := f.startedEvent(src, 2).GetDiff()
		if !proto.Equal(got, want) {
			t.Fatalf("diff =\n%s\nwant\n%s", prototext.Format(got), prototext.Format(want))
		}
	})

	t.Run("the review carries the diff", func(t *testing.T) {
		r := decodeReview(t, second)
		wantJSON, err := json.Marshal(proposal.ReviewDiff(want))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Diff, wantJSON) {
			t.Fatalf("review diff = %s\nwant %s", r.Diff, wantJSON)
		}
		if !hasInfo(r, `keeps its approved tool name "list_items" (derived name "list_all_items")`) {
			t.Fatalf("no diagnostic for the kept name: %v", r.Diagnostics)
		}
		var tools []string
		for _, op := range r.Operations {
			tools = append(tools, op.Name)
		}
		sort.Strings(tools)
		if !slices.Equal(tools, []string{"create_item", "get_item", "list_items"}) {
			t.Fatalf("review tools = %v", tools)
		}
	})

	t.Run("names are stable", func(t *testing.T) {
		if got := f.proposedNames(src, 2); !slices.Equal(got, []string{"create_item", "get_item", "list_items"}) {
			t.Fatalf("version 2 tools = %v", got)
		}
	})

	t.Run("agents still see only the approved version", func(t *testing.T) {
		f.readerSees()
		if _, ok := f.cat.Version(tenant, src, 2); !ok {
			t.Fatal("version 2 is not committed")
		}
		approved := f.cat.ApprovedTools(tenant)
		var names []string
		for _, tl := range approved {
			names = append(names, tl.Spec.GetName())
			if tl.Version != 1 || !proto.Equal(tl.Spec, v1.Tools[tl.Spec.GetName()]) {
				t.Fatalf("approved tool %s is version %d's spec", tl.Spec.GetName(), tl.Version)
			}
		}
		if !slices.Equal(names, []string{"delete_item", "get_item", "list_items"}) {
			t.Fatalf("approved tools = %v", names)
		}
		tl, ok := f.cat.Tool(tenant, "create_item")
		if !ok || tl.Approved || tl.Version != 2 {
			t.Fatalf("new tool create_item: found %v, approved %v, version %d", ok, tl.Approved, tl.Version)
		}
		// Approving version 2 makes it the runtime's.
		f.approve(pol, tenant, src, 2)
		tl, ok = f.cat.Tool(tenant, "get_item")
		if !ok || !tl.Approved || tl.Version != 2 {
			t.Fatalf("after approval get_item: approved %v, version %d", tl.Approved, tl.Version)
		}
	})

	t.Run("an unchanged re-import changes nothing", func(t *testing.T) {
		third := f.importDoc(tenant, "", src, itemsV2)
		got := f.startedEvent(src, third.GetVersion()).GetDiff()
		wantSame := &controlv1.SourceDiff{BaseVersion: 2, UnchangedOperations: 3}
		if !proto.Equal(got, wantSame) {
			t.Fatalf("diff = %s", prototext.Format(got))
		}
	})
}

// widgets has two operations, one of them named like one of items' tools.
const widgets = `openapi: 3.0.3
info: {title: Widgets, version: "1"}
servers: [{url: "https://widgets.example.com"}]
paths:
  /items:
    get:
      operationId: listItems
      responses: {"200": {description: ok}}
  /widgets:
    get:
      operationId: listWidgets
      responses: {"200": {description: ok}}
`

func TestToolNamesWithinTenant(t *testing.T) {
	f := newFixture(t, 1)
	pol := f.n.Runtime(t, f.keys, bus.Policy)
	alpha := f.importDoc(tenant, "Alpha", "", widgets).GetSourceId()
	if got := f.proposedNames(alpha, 1); !slices.Equal(got, []string{"list_items", "list_widgets"}) {
		t.Fatalf("alpha tools = %v", got)
	}

	// A second source before any approval: nothing is taken yet.
	early := f.importDoc(tenant, "Early", "", widgets).GetSourceId()
	if got := f.proposedNames(early, 1); !slices.Equal(got, []string{"list_items", "list_widgets"}) {
		t.Fatalf("early tools = %v", got)
	}

	f.approve(pol, tenant, alpha, 1)
	// The last CONTROL message is one the importer does not replay: an
	// import still sees everything before it, and does not wait for it.
	if _, err := pol.Publisher.AppendControl(f.ctx, bus.AggGrant, "grt_1", &controlv1.GrantAdded{
		Meta:    &commonv1.EventMeta{Tenant: tenant, Actor: &commonv1.Actor{Kind: "operator", Id: "admin", Via: "policy"}},
		GrantId: "grt_1", Tool: "list_items", SubjectType: "agent", SubjectId: "agt_1",
	}, bus.Expect{}); err != nil {
		t.Fatal(err)
	}

	var beta string
	t.Run("a colliding tool takes its source's slug once the other is approved", func(t *testing.T) {
		reply := f.importDoc(tenant, "Beta Source", "", widgets)
		beta = reply.GetSourceId()
		if got := f.proposedNames(beta, 1); !slices.Equal(got, []string{"beta-source_list_items", "beta-source_list_widgets"}) {
			t.Fatalf("beta tools = %v", got)
		}
		r := decodeReview(t, reply)
		if !hasInfo(r, `is named "beta-source_list_items": tool name "list_items" is approved in another source of this tenant`) {
			t.Fatalf("no diagnostic for the rename: %v", r.Diagnostics)
		}
	})

	t.Run("another tenant is not affected", func(t *testing.T) {
		other := f.importDoc("other", "Beta Source", "", widgets).GetSourceId()
		if got := f.proposedNames(other, 1); !slices.Equal(got, []string{"list_items", "list_widgets"}) {
			t.Fatalf("tools in another tenant = %v", got)
		}
	})

	t.Run("a prefixed name is stable across re-imports", func(t *testing.T) {
		reply := f.importDoc(tenant, "", beta, widgets)
		if got := f.proposedNames(beta, 2); !slices.Equal(got, []string{"beta-source_list_items", "beta-source_list_widgets"}) {
			t.Fatalf("beta version 2 tools = %v", got)
		}
		if d := f.startedEvent(beta, 2).GetDiff(); d.GetUnchangedOperations() != 2 || proposal.DiffEntries(d) != 0 {
			t.Fatalf("diff = %s", prototext.Format(d))
		}
		if r := decodeReview(t, reply); !hasInfo(r, `keeps its tool name "beta-source_list_items" of the previous version`) {
			t.Fatalf("diagnostics = %v", r.Diagnostics)
		}
	})

	t.Run("an unapproved source is renamed once another is approved", func(t *testing.T) {
		// Early proposed list_items before alpha's approval; it was never
		// approved, so the importer proposed a version with the prefix on
		// alpha's approval, and its next import keeps it.
		f.waitCommitted(early, 2)
		if reply := f.importDoc(tenant, "", early, widgets); !slices.Equal(f.proposedNames(early, reply.GetVersion()), []string{"early_list_items", "early_list_widgets"}) {
			t.Fatalf("early version %d tools = %v", reply.GetVersion(), f.proposedNames(early, reply.GetVersion()))
		}
		if got := f.proposedNames(early, 2); !slices.Equal(got, []string{"early_list_items", "early_list_widgets"}) {
			t.Fatalf("early version 2 tools = %v", got)
		}
		d := f.startedEvent(early, 2).GetDiff()
		want := []*controlv1.OperationChange{
			{Tool: "early_list_items", Method: "GET", Path: "/items", OperationId: "listItems", Changes: []string{"name"}, PreviousTool: "list_items"},
			{Tool: "early_list_widgets", Method: "GET", Path: "/widgets", OperationId: "listWidgets", Changes: []string{"name"}, PreviousTool: "list_widgets"},
		}
		if len(d.GetChangedOperations()) != 2 || !proto.Equal(d.GetChangedOperations()[0], want[0]) || !proto.Equal(d.GetChangedOperations()[1], want[1]) {
			t.Fatalf("diff = %s", prototext.Format(d))
		}
	})

	t.Run("an approved tool keeps its name", func(t *testing.T) {
		reply := f.importDoc(tenant, "", alpha, widgets)
		if got := f.proposedNames(alpha, reply.GetVersion()); !slices.Equal(got, []string{"list_items", "list_widgets"}) {
			t.Fatalf("alpha version %d tools = %v", reply.GetVersion(), got)
		}
	})

	t.Run("an approved tool keeps its name when another source has it approved too", func(t *testing.T) {
		// Two sources of a tenant proposed the same names and both were
		// approved (as two approvals racing past policy's check could do):
		// each keeps its approved names; a third source takes the prefix.
		const tnt = "third"
		gamma := f.importDoc(tnt, "Gamma", "", widgets).GetSourceId()
		delta := f.importDoc(tnt, "Delta", "", widgets).GetSourceId()
		f.approve(pol, tnt, gamma, 1)
		f.approve(pol, tnt, delta, 1)
		for _, src := range []string{gamma, delta} {
			reply := f.importDoc(tnt, "", src, widgets)
			if got := f.proposedNames(src, reply.GetVersion()); !slices.Equal(got, []string{"list_items", "list_widgets"}) {
				t.Fatalf("version %d tools = %v", reply.GetVersion(), got)
			}
		}
		eps := f.importDoc(tnt, "Epsilon", "", widgets).GetSourceId()
		if got := f.proposedNames(eps, 1); !slices.Equal(got, []string{"epsilon_list_items", "epsilon_list_widgets"}) {
			t.Fatalf("epsilon tools = %v", got)
		}
	})
}
