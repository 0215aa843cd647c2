package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/tools/cli"
)

// repoRoot is the directory holding go.work, found by walking up from the
// test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory: run the tests inside the repository")
		}
		dir = parent
	}
}

// inspectPaths are the descriptions the inspect tests read.
type inspectPaths struct {
	root, corpus, demo, corpusFile string
}

func newInspectPaths(t *testing.T) inspectPaths {
	t.Helper()
	root := repoRoot(t)
	p := inspectPaths{
		root:   root,
		corpus: filepath.Join(root, "..", "shared", "corpus"),
		demo:   filepath.Join(root, "services", "importer", "analysis", "testdata", "demo-messages.yaml"),
	}
	p.corpusFile = filepath.Join(p.corpus, "A18__VTEX_-_Audience_API.json")
	if _, err := os.Stat(p.corpusFile); err != nil {
		t.Fatalf("the corpus of real descriptions must be at shared/corpus beside the repository checkout: %v", err)
	}
	return p
}

// normalize replaces the checkout's absolute paths for golden files.
func (p inspectPaths) normalize(s string) string {
	return strings.NewReplacer(p.corpus, "$CORPUS", p.root, "$REPO").Replace(s)
}

// arg replaces the placeholders DEMO and CORPUS_FILE in a command line.
func (p inspectPaths) arg(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch a {
		case "DEMO":
			a = p.demo
		case "CORPUS_FILE":
			a = p.corpusFile
		}
		out[i] = a
	}
	return out
}

func TestInspectGolden(t *testing.T) {
	p := newInspectPaths(t)
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"inspect_demo", "", []string{"inspect", "DEMO"}, 0},
		{"inspect_demo_json", "", []string{"inspect", "DEMO", "-o", "json"}, 0},
		{"inspect_corpus_and_or", "", []string{"inspect", "CORPUS_FILE"}, 0},
		{"inspect_corpus_and_or_json", "", []string{"inspect", "CORPUS_FILE", "-o", "json"}, 0},
		{"inspect_malformed_yaml", "openapi: 3.0.3\ninfo:\n  title: x\n   version: 1\n", []string{"inspect", "-"}, 1},
		{"inspect_malformed_json", "{\"openapi\": \"3.0.3\",\n \"info\": {\"title\": \"x\" \"version\": \"1\"}}\n", []string{"inspect", "-", "-o", "json"}, 1},
		{"inspect_external_ref", "openapi: 3.0.3\ninfo: {title: x, version: '1'}\npaths:\n  /a:\n    get:\n      responses: {'200': {$ref: 'other.yaml#/x'}}\n", []string{"inspect", "-"}, 1},
		{"inspect_unsupported_format", "asyncapi: 2.6.0\ninfo: {title: x, version: '1'}\nchannels: {}\n", []string{"inspect", "-"}, 1},
		{"inspect_missing_file", "", []string{"inspect", "no-such-description.yaml"}, 1},
		{"inspect_no_file", "", []string{"inspect"}, 2},
		{"inspect_unknown_output", "", []string{"inspect", "DEMO", "-o", "yaml"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			args := p.arg(tt.args)
			res := h.run(t, tt.stdin, args...)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", res.code, tt.code, res.stderr)
			}
			if tt.code != 0 {
				assertOneLine(t, res.stderr)
				if res.stdout != "" {
					t.Fatalf("stdout = %q, want nothing on failure", res.stdout)
				}
			}
			if reqs := h.edge.Requests(); len(reqs) != 0 {
				t.Fatalf("inspect contacted the server: %+v", reqs)
			}
			got := fmt.Sprintf("$ mcpgw %s\n--- stdout\n%s--- stderr\n%s--- exit %d\n", strings.Join(args, " "), res.stdout, res.stderr, res.code)
			golden(t, filepath.Join("testdata", "output", tt.name+".golden"), p.normalize(h.normalize(got)))
		})
	}
}

func TestInspectHelpGolden(t *testing.T) {
	h := newHarness(t)
	res := h.run(t, "", "inspect", "--help")
	if res.code != cli.ExitOK || res.stderr != "" {
		t.Fatalf("help: exit %d, stderr %q", res.code, res.stderr)
	}
	golden(t, filepath.Join("testdata", "help", "mcpgw_inspect.golden"), res.stdout)
}

// TestInspectOffline checks that inspect needs neither a server nor a
// token, and that stdin gives the same document as the file.
func TestInspectOffline(t *testing.T) {
	p := newInspectPaths(t)
	h := newHarness(t)
	if err := os.Remove(filepath.Join(h.work, cli.StateDir, cli.AdminTokenFile)); err != nil {
		t.Fatal(err)
	}
	h.edge.srv.Close()

	fromFile := h.run(t, "", "inspect", p.demo, "-o", "json")
	if fromFile.code != 0 {
		t.Fatalf("exit %d: %s", fromFile.code, fromFile.stderr)
	}
	demo, err := os.ReadFile(p.demo)
	if err != nil {
		t.Fatal(err)
	}
	fromStdin := h.run(t, string(demo), "inspect", "-", "-o", "json")
	if fromStdin.code != 0 {
		t.Fatalf("exit %d: %s", fromStdin.code, fromStdin.stderr)
	}
	if fromFile.stdout != fromStdin.stdout {
		t.Fatalf("stdin and file differ:\n--- file\n%s\n--- stdin\n%s", fromFile.stdout, fromStdin.stdout)
	}
}

// shapeDoc exercises every shape of the inspect document: a server URL with
// a variable, schemes without a placement, with flows and scopes, an
// explicitly public operation, an anonymous alternative, an AND
// requirement, an inferred credential and a diagnostic with a pointer.
const shapeDoc = `openapi: 3.0.3
info: {title: Shapes, version: '2'}
servers:
  - url: https://{region}.api.example/v1
    variables:
      region: {default: eu}
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example/token
          scopes: {read: Read, write: Write}
    mtls: {type: mutualTLS}
    key: {type: apiKey, in: header, name: X-API-Key}
security:
  - oauth: [read]
paths:
  /public:
    get:
      operationId: getPublic
      security: []
      responses: {'200': {description: ok}}
  /maybe:
    get:
      operationId: getMaybe
      security: [{oauth: [read]}, {}]
      responses: {'200': {description: ok}}
  /both:
    post:
      operationId: postBoth
      security: [{mtls: [], key: []}]
      responses: {'200': {description: ok}}
  /undeclared:
    get:
      operationId: getUndeclared
      security: []
      parameters:
        - {name: api_key, in: query, schema: {type: string}}
        - {name: q, in: query, schema: {type: string}}
      responses: {'200': {description: ok}}
  /broken:
    get:
      operationId: getBroken
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses: {'200': {description: ok}}
`

// TestInspectJSONShape checks the document against its specification: every
// key present with its type, auth [] for no auth, servers as URL strings.
func TestInspectJSONShape(t *testing.T) {
	h := newHarness(t)
	res := h.run(t, shapeDoc, "inspect", "-", "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatalf("stdout is not a JSON object: %v", err)
	}
	str := func(where string, m map[string]any, key string) string {
		t.Helper()
		v, ok := m[key].(string)
		if !ok {
			t.Fatalf("%s: %q = %#v, want a string", where, key, m[key])
		}
		return v
	}
	list := func(where string, m map[string]any, key string) []any {
		t.Helper()
		v, ok := m[key].([]any)
		if !ok {
			t.Fatalf("%s: %q = %#v, want a list (never null)", where, key, m[key])
		}
		return v
	}
	object := func(where string, v any) map[string]any {
		t.Helper()
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s = %#v, want an object", where, v)
		}
		return m
	}
	requirement := func(where string, v any) map[string]any {
		t.Helper()
		q := object(where, v)
		for _, k := range []string{"scheme", "kind", "in", "param"} {
			str(where, q, k)
		}
		list(where, q, "scopes")
		if q["caller_visible"] != false {
			t.Fatalf("%s: caller_visible = %v", where, q["caller_visible"])
		}
		return q
	}

	if f := str("document", doc, "format"); f != "openapi3.0" {
		t.Errorf("format = %q", f)
	}
	if title := str("document", doc, "title"); title != "Shapes" {
		t.Errorf("title = %q", title)
	}
	if servers := list("document", doc, "servers"); len(servers) != 1 || servers[0] != "https://eu.api.example/v1" {
		t.Errorf("servers = %#v, want the URL string with its variable's default", servers)
	}

	schemes := map[string]map[string]any{}
	for i, v := range list("document", doc, "schemes") {
		where := fmt.Sprintf("schemes[%d]", i)
		s := object(where, v)
		for _, k := range []string{"name", "kind", "in", "param"} {
			str(where, s, k)
		}
		list(where, s, "flows")
		list(where, s, "scopes")
		schemes[str(where, s, "name")] = s
	}
	if s := schemes["oauth"]; s == nil || s["kind"] != "oauth2" || len(s["flows"].([]any)) != 1 || !slices.Equal(anyStrings(s["scopes"]), []string{"read", "write"}) {
		t.Errorf("oauth scheme = %#v", s)
	}
	if s := schemes["mtls"]; s == nil || s["kind"] != "mutualTLS" || s["in"] != "" || s["param"] != "" {
		t.Errorf("mtls scheme = %#v", s)
	}
	if s := schemes["key"]; s == nil || s["kind"] != "apiKey" || s["in"] != "header" || s["param"] != "X-API-Key" {
		t.Errorf("key scheme = %#v", s)
	}

	ops := map[string]map[string]any{}
	for i, v := range list("document", doc, "operations") {
		where := fmt.Sprintf("operations[%d]", i)
		op := object(where, v)
		for _, k := range []string{"method", "path", "operation_id", "tool", "unsupported"} {
			str(where, op, k)
		}
		for j, alt := range list(where, op, "auth") {
			alt, ok := alt.([]any)
			if !ok {
				t.Fatalf("%s: auth[%d] = %#v, want a list", where, j, alt)
			}
			for k, q := range alt {
				requirement(fmt.Sprintf("%s.auth[%d][%d]", where, j, k), q)
			}
		}
		for j, q := range list(where, op, "inferred_auth") {
			requirement(fmt.Sprintf("%s.inferred_auth[%d]", where, j), q)
		}
		if schema := object(where+".input_schema", op["input_schema"]); schema["type"] != "object" {
			t.Errorf("%s: input_schema = %#v", where, schema)
		}
		ops[str(where, op, "operation_id")] = op
	}
	if len(ops) != 5 {
		t.Fatalf("operations = %d, want 5", len(ops))
	}
	authJSON := func(id string) string {
		t.Helper()
		b, err := json.Marshal(ops[id]["auth"])
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for id, want := range map[string]string{
		"getPublic":     `[]`,
		"getMaybe":      `[[{"caller_visible":false,"in":"header","kind":"oauth2","param":"Authorization","scheme":"oauth","scopes":["read"]}],[]]`,
		"postBoth":      `[[{"caller_visible":false,"in":"header","kind":"apiKey","param":"X-API-Key","scheme":"key","scopes":[]},{"caller_visible":false,"in":"","kind":"mutualTLS","param":"","scheme":"mtls","scopes":[]}]]`,
		"getUndeclared": `[]`,
	} {
		if got := authJSON(id); got != want {
			t.Errorf("%s: auth = %s, want %s", id, got, want)
		}
	}
	inferred := ops["getUndeclared"]["inferred_auth"].([]any)
	if len(inferred) != 1 || inferred[0].(map[string]any)["param"] != "api_key" || inferred[0].(map[string]any)["in"] != "query" {
		t.Errorf("getUndeclared: inferred_auth = %#v", inferred)
	}
	if props := object("input_schema", ops["getUndeclared"]["input_schema"])["properties"].(map[string]any); props["api_key"] != nil || props["q"] == nil {
		t.Errorf("getUndeclared: input properties = %#v, want q without api_key", props)
	}
	if !strings.Contains(res.stdout, `"auth": []`) {
		t.Error(`no operation prints "auth": []`)
	}

	diags := list("document", doc, "diagnostics")
	if len(diags) == 0 {
		t.Fatal("no diagnostics, want the validator's finding about /broken")
	}
	pointers := 0
	for i, v := range diags {
		where := fmt.Sprintf("diagnostics[%d]", i)
		d := object(where, v)
		for _, k := range []string{"level", "message"} {
			str(where, d, k)
		}
		if str(where, d, "pointer") != "" {
			pointers++
		}
	}
	if pointers == 0 {
		t.Error("no diagnostic has a pointer, want the one about the unused path parameter of /broken")
	}
}

// TestInspectPrintsDocument checks that inspect -o json prints the
// analysis package's Document and nothing else, the document the importer's
// review carries too.
func TestInspectPrintsDocument(t *testing.T) {
	res, err := analysis.Analyze([]byte(shapeDoc), analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(analysis.NewDocument(res), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	out := h.run(t, shapeDoc, "inspect", "-", "-o", "json")
	if out.code != 0 {
		t.Fatalf("exit %d: %s", out.code, out.stderr)
	}
	if out.stdout != string(want)+"\n" {
		t.Fatalf("inspect printed\n%s\nwant analysis.NewDocument\n%s", out.stdout, want)
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, s := range l {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}

// TestInspectHidesCredentials checks that credential values written into a
// description (examples and defaults of auth parameters) reach neither
// output.
func TestInspectHidesCredentials(t *testing.T) {
	doc := `openapi: 3.1.0
info: {title: Leaky, version: '1'}
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
security: [{key: []}]
paths:
  /items:
    get:
      parameters:
        - {name: X-API-Key, in: header, example: ` + secretCanary + `, schema: {type: string, default: ` + secretCanary + `}}
        - {name: access_token, in: query, schema: {type: string, example: ` + secretCanary + `}}
        - {name: limit, in: query, schema: {type: integer}}
      responses: {'200': {description: ok}}
`
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			h := newHarness(t)
			res := h.run(t, doc, "inspect", "-", "-o", output)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			want := "inferred apiKey query access_token"
			if output == "json" {
				want = `"limit"`
			}
			if !strings.Contains(res.stdout, want) {
				t.Fatalf("the review lacks %s:\n%s", want, res.stdout)
			}
		})
	}
}
