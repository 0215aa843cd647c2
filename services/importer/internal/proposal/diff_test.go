package proposal

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

func TestDiff(t *testing.T) {
	key := &controlv1.AuthScheme{Name: "key", Kind: "apiKey", In: "header", Param: "X-API-Key"}
	oauth := &controlv1.AuthScheme{Name: "oauth", Kind: "oauth2", In: "header", Param: "Authorization", Scopes: []string{"read"}}
	gone := &controlv1.AuthScheme{Name: "basic", Kind: "http-basic", In: "header", Param: "Authorization"}
	tool := func(name, id, method, path string, mod func(*controlv1.ToolSpec)) *controlv1.ToolSpec {
		s := &controlv1.ToolSpec{Name: name, Description: name + " things", InputSchema: []byte(`{"type":"object"}`),
			Annotations: &controlv1.ToolAnnotations{ReadOnly: method == "GET"},
			Operation: &controlv1.OperationSpec{OperationId: id, Method: method, Path: path, Servers: []string{"https://a.example.com"},
				Params: []*controlv1.ParamMapping{{Property: "id", In: "path", Name: "id", Required: true}}},
			Auth: []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{key}}}}
		if mod != nil {
			mod(s)
		}
		return s
	}
	base := Base{Version: 3, Hosts: []string{"a.example.com", "same.example.com"}, Tools: tools(
		tool("list_items", "listItems", "GET", "/items", nil),
		tool("get_item", "getItem", "GET", "/items/{id}", nil),
		tool("delete_item", "deleteItem", "DELETE", "/items/{id}", func(s *controlv1.ToolSpec) {
			s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{gone}}}
		}),
		tool("rename_me", "renameMe", "POST", "/rename", nil),
		tool("move_item", "moveItem", "POST", "/items/{id}/move", nil),
		tool("scoped", "scoped", "GET", "/scoped", func(s *controlv1.ToolSpec) {
			s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{oauth}}}
		}),
	)}
	keyInQuery := &controlv1.AuthScheme{Name: "key", Kind: "apiKey", In: "query", Param: "api_key"}
	bearer := &controlv1.AuthScheme{Name: "bearer", Kind: "http-bearer", In: "header", Param: "Authorization"}
	oauthWrite := proto.Clone(oauth).(*controlv1.AuthScheme)
	oauthWrite.Scopes = []string{"read", "write"}
	p := &Proposal{Hosts: []string{"b.example.com", "same.example.com"}, Tools: []*controlv1.ToolSpec{
		tool("create_item", "createItem", "POST", "/items", func(s *controlv1.ToolSpec) {
			s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{bearer}}}
		}),
		tool("get_item", "getItem", "GET", "/items/{id}", func(s *controlv1.ToolSpec) {
			s.InputSchema = []byte(`{"type":"object","properties":{"id":{"type":"string"},"fields":{"type":"string"}}}`)
			s.Operation.Params = append(s.Operation.Params, &controlv1.ParamMapping{Property: "fields", In: "query", Name: "fields"})
			s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{keyInQuery}}}
			s.Description = "Get an item"
		}),
		tool("list_items", "listItems", "GET", "/items", func(s *controlv1.ToolSpec) {
			s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{keyInQuery}}}
		}),
		tool("move_item", "moveItem", "PUT", "/items/{id}/location", func(s *controlv1.ToolSpec) {
			s.Operation.Servers = []string{"https://b.example.com"}
			s.Annotations = &controlv1.ToolAnnotations{Idempotent: true}
		}),
		tool("renamed", "renameMe", "POST", "/rename", nil),
		tool("scoped", "scoped", "GET", "/scoped", func(s *controlv1.ToolSpec) {
			s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{oauthWrite}}}
		}),
	}}
	// An unchanged tool.
	same := tool("same", "same", "GET", "/same", nil)
	base.Tools["same"] = same
	p.Tools = append(p.Tools, proto.Clone(same).(*controlv1.ToolSpec))

	got, err := Diff(base, p)
	if err != nil {
		t.Fatal(err)
	}
	want := &controlv1.SourceDiff{
		BaseVersion:     3,
		AddedOperations: []*controlv1.OperationChange{{Tool: "create_item", Method: "POST", Path: "/items", OperationId: "createItem"}},
		RemovedOperations: []*controlv1.OperationChange{
			{Tool: "delete_item", Method: "DELETE", Path: "/items/{id}", OperationId: "deleteItem"},
		},
		ChangedOperations: []*controlv1.OperationChange{
			{Tool: "get_item", Method: "GET", Path: "/items/{id}", OperationId: "getItem",
				Changes: []string{"description", "input_schema", "operation", "auth"}, OperationChanges: []string{"params"}},
			{Tool: "list_items", Method: "GET", Path: "/items", OperationId: "listItems", Changes: []string{"auth"}},
			{Tool: "move_item", Method: "PUT", Path: "/items/{id}/location", OperationId: "moveItem",
				Changes: []string{"annotations", "operation"}, OperationChanges: []string{"method", "path", "servers"}},
			{Tool: "renamed", Method: "POST", Path: "/rename", OperationId: "renameMe", Changes: []string{"name", "description"}, PreviousTool: "rename_me"},
			{Tool: "scoped", Method: "GET", Path: "/scoped", OperationId: "scoped", Changes: []string{"auth"}},
		},
		AddedSchemes:        []*controlv1.AuthSchemeChange{{Name: "bearer", Kind: "http-bearer"}},
		RemovedSchemes:      []*controlv1.AuthSchemeChange{{Name: "basic", Kind: "http-basic"}},
		ChangedSchemes:      []*controlv1.AuthSchemeChange{{Name: "key", Kind: "apiKey", Changes: []string{"in", "param"}}, {Name: "oauth", Kind: "oauth2", Changes: []string{"scopes"}}},
		AddedHosts:          []string{"b.example.com"},
		RemovedHosts:        []string{"a.example.com"},
		UnchangedOperations: 1,
	}
	if !proto.Equal(got, want) {
		t.Fatalf("diff =\n%s\nwant\n%s", prototext.Format(got), prototext.Format(want))
	}

	t.Run("kind change", func(t *testing.T) {
		b := Base{Version: 1, Tools: tools(tool("x", "x", "GET", "/x", nil))}
		q := &Proposal{Tools: []*controlv1.ToolSpec{tool("x", "x", "GET", "/x", func(s *controlv1.ToolSpec) {
			s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{{Name: "key", Kind: "awsSigV4", In: "header", Param: "X-API-Key"}}}}
		})}}
		d, err := Diff(b, q)
		if err != nil {
			t.Fatal(err)
		}
		want := []*controlv1.AuthSchemeChange{{Name: "key", Kind: "awsSigV4", PreviousKind: "apiKey", Changes: []string{"kind"}}}
		if len(d.GetChangedSchemes()) != 1 || !proto.Equal(d.GetChangedSchemes()[0], want[0]) {
			t.Fatalf("changed schemes = %v", d.GetChangedSchemes())
		}
	})

	t.Run("no secrets or schemas", func(t *testing.T) {
		b, err := proto.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{`"type"`, "things", "Get an item"} {
			if strings.Contains(string(b), s) {
				t.Fatalf("diff carries %q", s)
			}
		}
	})
}

func bigDiff(n int) *controlv1.SourceDiff {
	d := &controlv1.SourceDiff{BaseVersion: 7, UnchangedOperations: 5, AddedHosts: []string{"a.example.com"}}
	for i := range n {
		d.AddedOperations = append(d.AddedOperations, &controlv1.OperationChange{Tool: fmt.Sprintf("tool_%04d", i), Method: "GET", Path: fmt.Sprintf("/things/%d", i)})
		d.ChangedOperations = append(d.ChangedOperations, &controlv1.OperationChange{Tool: fmt.Sprintf("changed_%04d", i), Method: "GET", Path: "/c", Changes: []string{"auth"}})
	}
	return d
}

func TestTrimDiff(t *testing.T) {
	d := bigDiff(500)
	full := proto.Size(d)
	if got := TrimDiff(d, full); got != d {
		t.Fatal("a diff that fits was copied")
	}
	for _, limit := range []int{full - 1, full / 2, 2000, 40} {
		got := TrimDiff(d, limit)
		if proto.Size(got) > limit {
			t.Fatalf("limit %d: trimmed diff has %d bytes", limit, proto.Size(got))
		}
		if int(got.GetOmitted()) != DiffEntries(d)-DiffEntries(got) || got.GetOmitted() == 0 {
			t.Fatalf("limit %d: omitted = %d, dropped %d", limit, got.GetOmitted(), DiffEntries(d)-DiffEntries(got))
		}
		if got.GetBaseVersion() != 7 || got.GetUnchangedOperations() != 5 {
			t.Fatalf("limit %d: counts lost", limit)
		}
		// The longest lists lose entries first: both kinds keep about as
		// many entries.
		if a, c := len(got.GetAddedOperations()), len(got.GetChangedOperations()); a-c > 1 || c-a > 1 {
			t.Fatalf("limit %d: %d added and %d changed left", limit, a, c)
		}
	}
	if DiffEntries(d) != 1001 || d.GetOmitted() != 0 {
		t.Fatal("TrimDiff modified its input")
	}
}

func TestReviewWithDiff(t *testing.T) {
	res := demoResult(t)
	d := bigDiff(3)
	b, err := Review(res, d, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		analysis.Result
		Diff *JSONDiff `json:"diff"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Operations) != 2 || got.Diff == nil || got.Diff.BaseVersion != 7 || len(got.Diff.Operations.Added) != 3 ||
		got.Diff.Operations.Added[0].Tool != "tool_0000" || len(got.Diff.Operations.Changed[1].Changes) != 1 || got.Diff.Operations.Unchanged != 5 {
		t.Fatalf("review = %s", b)
	}
	for _, empty := range []string{`"removed":[]`, `"hosts":{"added":["a.example.com"],"removed":[]}`} {
		if !strings.Contains(string(b), empty) {
			t.Fatalf("review lacks %s: %s", empty, b)
		}
	}

	t.Run("no diff for a new source", func(t *testing.T) {
		b, err := Review(res, nil, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"diff"`) {
			t.Fatal("review of a first version carries a diff")
		}
	})

	t.Run("diff shortened when nothing else fits", func(t *testing.T) {
		big := bigDiff(400)
		noOps, err := Review(&analysis.Result{}, nil, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		budget := len(noOps) + 4000
		b, err := Review(res, big, budget)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > budget {
			t.Fatalf("review of %d bytes over %d", len(b), budget)
		}
		var got struct {
			Diff *JSONDiff `json:"diff"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Diff == nil || got.Diff.Omitted == 0 || got.Diff.BaseVersion != 7 {
			t.Fatalf("diff = %+v", got.Diff)
		}
	})
}
