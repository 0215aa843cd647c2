package proposal

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// op is an analysed operation with only what naming reads.
func op(name, id, method, path string) analysis.Operation {
	return analysis.Operation{Method: method, Path: path, OperationID: id, Tool: analysis.Tool{Name: name}}
}

// spec is a tool spec with only what matching reads.
func spec(name, id, method, path string) *controlv1.ToolSpec {
	return &controlv1.ToolSpec{Name: name, Operation: &controlv1.OperationSpec{OperationId: id, Method: method, Path: path}}
}

func tools(specs ...*controlv1.ToolSpec) map[string]*controlv1.ToolSpec {
	m := map[string]*controlv1.ToolSpec{}
	for _, s := range specs {
		m[s.GetName()] = s
	}
	return m
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

func TestName(t *testing.T) {
	listItems := op("list_items", "listItems", "GET", "/items")
	getItem := op("get_item", "getItem", "GET", "/items/{id}")
	tests := []struct {
		name   string
		ops    []analysis.Operation
		nc     NameContext
		want   []string
		notes  []string // substrings of the info diagnostics added, in order
		budget int
	}{
		{
			name: "new source without collisions keeps the derived names",
			ops:  []analysis.Operation{listItems, getItem},
			nc:   NameContext{Slug: "alpha", Taken: set("delete_item")},
			want: []string{"list_items", "get_item"},
		},
		{
			name:  "a name approved in another source takes the slug",
			ops:   []analysis.Operation{listItems, getItem},
			nc:    NameContext{Slug: "beta", Taken: set("list_items")},
			want:  []string{"beta_list_items", "get_item"},
			notes: []string{`operation GET /items is named "beta_list_items": tool name "list_items" is approved in another source of this tenant`},
		},
		{
			name:  "previous name kept, matched by operation ID",
			ops:   []analysis.Operation{op("list_items", "listItems", "GET", "/v2/items")},
			nc:    NameContext{Slug: "alpha", Previous: tools(spec("items_list", "listItems", "GET", "/items"))},
			want:  []string{"items_list"},
			notes: []string{`keeps its tool name "items_list" of the previous version (derived name "list_items")`},
		},
		{
			name:  "previous name kept, matched by method and path when the operation ID changed",
			ops:   []analysis.Operation{op("list_all_items", "listAllItems", "GET", "/items")},
			nc:    NameContext{Slug: "alpha", Previous: tools(spec("list_items", "listItems", "GET", "/items"))},
			want:  []string{"list_items"},
			notes: []string{`keeps its tool name "list_items" of the previous version`},
		},
		{
			name: "an approved name is kept even when another source has it approved",
			ops:  []analysis.Operation{op("fetch_items", "fetchItems", "GET", "/items")},
			nc: NameContext{Slug: "alpha", Taken: set("list_items"),
				Approved: tools(spec("list_items", "listItems", "GET", "/items")),
				Previous: tools(spec("list_items", "listItems", "GET", "/items"))},
			want:  []string{"list_items"},
			notes: []string{`keeps its approved tool name "list_items" (derived name "fetch_items")`},
		},
		{
			name:  "an unapproved previous name that another source approved since takes the slug",
			ops:   []analysis.Operation{listItems},
			nc:    NameContext{Slug: "beta", Taken: set("list_items"), Previous: tools(spec("list_items", "listItems", "GET", "/items"))},
			want:  []string{"beta_list_items"},
			notes: []string{`is named "beta_list_items"`},
		},
		{
			name:  "a prefixed name stays prefixed",
			ops:   []analysis.Operation{listItems},
			nc:    NameContext{Slug: "beta", Previous: tools(spec("beta_list_items", "listItems", "GET", "/items"))},
			want:  []string{"beta_list_items"},
			notes: []string{`keeps its tool name "beta_list_items" of the previous version`},
		},
		{
			name: "a name held by another operation of the source gets a route suffix",
			ops:  []analysis.Operation{op("fetch_item", "fetchItem", "GET", "/items/{id}"), op("get_item", "getItem", "GET", "/things/{id}")},
			nc:   NameContext{Slug: "alpha", Previous: tools(spec("get_item", "getItem", "GET", "/items/{id}"))},
			// fetchItem matches get_item by route only after getItem took it
			// by operation ID: getItem keeps the name, fetchItem is new.
			want: []string{"fetch_item", "get_item"},
		},
		{
			name: "the approved name wins over a previous one",
			ops:  []analysis.Operation{op("get_item", "getItem", "GET", "/items/{id}"), op("show_item", "showItem", "GET", "/show/{id}")},
			nc: NameContext{Slug: "alpha",
				Approved: tools(spec("get_item", "getItem", "GET", "/items/{id}")),
				Previous: tools(spec("get_item", "showItem", "GET", "/show/{id}"))},
			want:  []string{"get_item", "show_item"},
			notes: nil,
		},
		{
			name:  "a derived name held by a kept name gets a route suffix",
			ops:   []analysis.Operation{op("get_item", "getItem", "GET", "/things/{id}"), op("fetch_item", "fetchItem", "GET", "/items/{id}")},
			nc:    NameContext{Slug: "alpha", Previous: tools(spec("get_item", "", "GET", "/items/{id}"))},
			want:  []string{"get_item_" + hexDigest("GET /things/{id}")[:6], "get_item"},
			notes: []string{`tool name "get_item" is held by another tool`, `keeps its tool name "get_item" of the previous version`},
		},
		{
			name:  "a prefixed name that is taken too gets a route suffix",
			ops:   []analysis.Operation{listItems},
			nc:    NameContext{Slug: "beta", Taken: set("list_items", "beta_list_items")},
			want:  []string{"beta_list_items_" + hexDigest("GET /items")[:6]},
			notes: []string{`approved in another source of this tenant; tool name "beta_list_items" is held by another tool`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := &analysis.Result{Operations: tc.ops, Diagnostics: []analysis.Diagnostic{{Level: analysis.LevelWarning, Message: "kept"}}}
			before := slices.Clone(tc.ops)
			got := Name(res, tc.nc)
			var names []string
			for _, o := range got.Operations {
				names = append(names, o.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("names = %v, want %v", names, tc.want)
			}
			added := got.Diagnostics[1:]
			if got.Diagnostics[0].Message != "kept" || len(added) != len(tc.notes) {
				t.Fatalf("diagnostics = %v, want the input's and %d more", got.Diagnostics, len(tc.notes))
			}
			for i, d := range added {
				if d.Level != analysis.LevelInfo || !strings.Contains(d.Message, tc.notes[i]) {
					t.Fatalf("diagnostic %d = %+v, want info with %q", i, d, tc.notes[i])
				}
			}
			if !slices.EqualFunc(res.Operations, before, func(a, b analysis.Operation) bool { return a.Name == b.Name }) || len(res.Diagnostics) != 1 {
				t.Fatal("Name modified its input")
			}
		})
	}
}

func TestNameBudget(t *testing.T) {
	long := strings.Repeat("very_long_operation_name_", 3) + "end"
	taken := set(long[:20])
	res := &analysis.Result{Operations: []analysis.Operation{op(long[:20], "x", "GET", "/x")}}
	slug := strings.Repeat("s", MaxSlug)
	for _, budget := range []int{16, 20, 48} {
		got := Name(res, NameContext{Slug: slug, Budget: budget, Taken: taken}).Operations[0].Name
		if len(got) > budget || !toolNameRE.MatchString(got) || taken[got] || !strings.HasPrefix(got, "s") {
			t.Fatalf("budget %d: name %q", budget, got)
		}
	}
	if NameBudget(0) != analysis.DefaultToolNameBudget || NameBudget(3) != minNameBudget || NameBudget(64) != 64 {
		t.Fatal("NameBudget does not follow the analysis's defaults")
	}
	got := prefixed("beta", "list_items", 48)
	if got != "beta_list_items" {
		t.Fatalf("prefixed = %q", got)
	}
}

func TestMatch(t *testing.T) {
	prev := tools(
		spec("a", "opA", "GET", "/a"),
		spec("b", "opB", "GET", "/b"),
		spec("c", "", "POST", "/c"),
	)
	keys := []OpKey{
		{OperationID: "opB", Method: "GET", Path: "/a"},  // by ID: b (not a, whose route it has)
		{OperationID: "opX", Method: "get", Path: "/a"},  // by route: a, but opA took it by ID
		{OperationID: "", Method: "POST", Path: "/c"},    // by route: c
		{OperationID: "opA", Method: "GET", Path: "/z"},  // by ID: a (IDs match before routes)
		{OperationID: "", Method: "DELETE", Path: "/c"},  // nothing
		{OperationID: "opB", Method: "GET", Path: "/b2"}, // b already matched
	}
	got := Match(keys, prev)
	want := []string{"b", "", "c", "a", "", ""}
	if !slices.Equal(got, want) {
		t.Fatalf("Match = %q, want %q", got, want)
	}
	if got := Match(keys, nil); !slices.Equal(got, make([]string, len(keys))) {
		t.Fatalf("Match against nothing = %q", got)
	}
}
