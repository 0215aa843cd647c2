package proposal

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/catalog"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/tools/demoapi"
)

func TestSlug(t *testing.T) {
	tests := []struct{ name, want string }{
		{"Demo Messages API", "demo-messages-api"},
		{"  --Payments v2 (EU)--  ", "payments-v2-eu"},
		{"Ünïcödé Straße", "n-c-d-stra-e"},
		{"日本語", "source"},
		{"", "source"},
		{"a-very-long-name-that-keeps-going-and-going", "a-very-long-name-that-keeps-goin"},
		{"abcdefghijklmnopqrstuvwxyz01234 5", "abcdefghijklmnopqrstuvwxyz01234"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Slug(tc.name)
			if got != tc.want {
				t.Fatalf("Slug(%q) = %q, want %q", tc.name, got, tc.want)
			}
			if len(got) > MaxSlug || strings.HasPrefix(got, "-") || strings.HasSuffix(got, "-") {
				t.Fatalf("Slug(%q) = %q breaks the slug rules", tc.name, got)
			}
		})
	}
}

func TestHostOf(t *testing.T) {
	tests := []struct{ url, want string }{
		{"https://API.example.com/v1", "api.example.com"},
		{"http://127.0.0.1:8090", "127.0.0.1:8090"},
		{"http://[::1]:8080/x", "[::1]:8080"},
		{"/", ""},
		{"/v1", ""},
		{"://bad", ""},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			if got := hostOf(tc.url); got != tc.want {
				t.Fatalf("hostOf(%q) = %q, want %q", tc.url, got, tc.want)
			}
		})
	}
}

func demoResult(t *testing.T) *analysis.Result {
	t.Helper()
	res, err := analysis.Analyze(demoapi.OpenAPI("http://127.0.0.1:8090"), analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBuildDemo(t *testing.T) {
	res := demoResult(t)
	p, err := Build(res)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range p.Tools {
		names = append(names, s.GetName())
		if bytes.Contains(bytes.ToLower(s.GetInputSchema()), []byte("x-api-key")) {
			t.Fatalf("tool %s input schema names the credential header", s.GetName())
		}
	}
	if !slices.Equal(names, []string{"get_message", "send_message"}) {
		t.Fatalf("tools = %v", names)
	}
	if !slices.Equal(p.Hosts, []string{"127.0.0.1:8090"}) {
		t.Fatalf("hosts = %v", p.Hosts)
	}
	h := sha256.New()
	for _, s := range p.Tools {
		d, err := catalog.ToolDigest(s)
		if err != nil {
			t.Fatal(err)
		}
		h.Write(d)
	}
	if !bytes.Equal(p.ToolsDigest, h.Sum(nil)) {
		t.Fatal("tools digest is not SHA-256 over the tool digests in name order")
	}
	again, err := Build(demoResult(t))
	if err != nil || !bytes.Equal(again.ToolsDigest, p.ToolsDigest) {
		t.Fatalf("build is not deterministic: %v", err)
	}
}

func TestBuildSkipsUnsupported(t *testing.T) {
	res := demoResult(t)
	res.Operations[0].Unsupported = "request body media type is not supported"
	res.Operations[0].Servers = []analysis.Server{{URL: "https://other.example.com"}}
	p, err := Build(res)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tools) != len(res.Operations)-1 || p.Unsupported != 1 {
		t.Fatalf("tools = %d, unsupported = %d", len(p.Tools), p.Unsupported)
	}
	// The unsupported operation's hosts are still proposed: it stays in the review.
	if !slices.Equal(p.Hosts, []string{"127.0.0.1:8090", "other.example.com"}) {
		t.Fatalf("hosts = %v", p.Hosts)
	}
}

func TestToolsDigestOrder(t *testing.T) {
	a := &controlv1.ToolSpec{Name: "a", Description: "x"}
	b := &controlv1.ToolSpec{Name: "b", Description: "y"}
	d1, err := ToolsDigest([]*controlv1.ToolSpec{a, b})
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := ToolsDigest([]*controlv1.ToolSpec{b, a})
	if !bytes.Equal(d1, d2) {
		t.Fatal("digest depends on input order")
	}
	b.Description = "z"
	d3, _ := ToolsDigest([]*controlv1.ToolSpec{a, b})
	if bytes.Equal(d1, d3) {
		t.Fatal("digest ignores a changed spec")
	}
}

func TestReview(t *testing.T) {
	res := demoResult(t)
	full, err := json.Marshal(analysis.NewDocument(res))
	if err != nil {
		t.Fatal(err)
	}
	noSchemas, err := Review(res, nil, len(full)-1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		budget      int
		wantOps     int
		wantSchemas bool
		wantNote    string
		wantErr     bool
	}{
		{name: "fits", budget: len(full), wantOps: 2, wantSchemas: true},
		{name: "schemas dropped", budget: len(full) - 1, wantOps: 2, wantNote: "operation schemas omitted"},
		{name: "operations dropped", budget: len(noSchemas) - 1, wantOps: 1, wantNote: "1 of 2 operations omitted"},
		{name: "nothing fits", budget: 10, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Review(res, nil, tc.budget)
			if tc.wantErr {
				if err == nil {
					t.Fatal("review over budget accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > tc.budget {
				t.Fatalf("review of %d bytes exceeds %d", len(b), tc.budget)
			}
			var got analysis.Document
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Operations) != tc.wantOps {
				t.Fatalf("operations = %d, want %d", len(got.Operations), tc.wantOps)
			}
			hasSchema := len(got.Operations[0].InputSchema) > 0 && string(got.Operations[0].InputSchema) != "null"
			if hasSchema != tc.wantSchemas {
				t.Fatalf("schemas present = %v, want %v", hasSchema, tc.wantSchemas)
			}
			if tc.wantNote != "" {
				last := got.Diagnostics[len(got.Diagnostics)-1]
				if !strings.Contains(last.Message, tc.wantNote) {
					t.Fatalf("last diagnostic %q, want %q", last.Message, tc.wantNote)
				}
			}
			if len(res.Operations[0].InputSchema) == 0 {
				t.Fatal("Review modified its input")
			}
		})
	}
}

// TestReviewIsInspectDocument checks that a review without a diff is the
// document `mcpgw inspect -o json` prints, byte for byte once compacted:
// against analysis.NewDocument for descriptions of every format, and
// against the CLI's golden files, whose first line names the description
// they inspected.
func TestReviewIsInspectDocument(t *testing.T) {
	const (
		repo   = "../../../.."
		corpus = repo + "/../shared/corpus"
	)
	if _, err := os.Stat(corpus); err != nil {
		t.Fatalf("the corpus of real descriptions must be at shared/corpus beside the repository checkout: %v", err)
	}
	analyze := func(t *testing.T, path string) *analysis.Result {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := analysis.Analyze(data, analysis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	review := func(t *testing.T, res *analysis.Result) []byte {
		t.Helper()
		b, err := Review(res, nil, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("document", func(t *testing.T) {
		for _, path := range []string{
			repo + "/services/importer/analysis/testdata/demo-messages.yaml",
			corpus + "/A15__nytimes-archive-swagger.yaml",
			corpus + "/A17__twilio_oauth_v1.yaml",
			corpus + "/A35__newman-hawk-auth-test.postman_collection.json",
		} {
			t.Run(filepath.Base(path), func(t *testing.T) {
				res := analyze(t, path)
				want, err := json.Marshal(analysis.NewDocument(res))
				if err != nil {
					t.Fatal(err)
				}
				if got := review(t, res); !bytes.Equal(got, want) {
					t.Fatalf("review differs from the document:\n--- review\n%s\n--- document\n%s", got, want)
				}
			})
		}
	})

	t.Run("inspect golden", func(t *testing.T) {
		for _, name := range []string{"inspect_demo_json", "inspect_corpus_and_or_json"} {
			t.Run(name, func(t *testing.T) {
				golden, err := os.ReadFile(filepath.Join(repo, "tools", "cli", "testdata", "output", name+".golden"))
				if err != nil {
					t.Fatal(err)
				}
				command, rest, _ := strings.Cut(string(golden), "\n")
				args := strings.Fields(command)
				if len(args) != 6 || args[2] != "inspect" || args[4] != "-o" || args[5] != "json" {
					t.Fatalf("golden %s runs %q, want mcpgw inspect FILE -o json", name, command)
				}
				path := strings.NewReplacer("$CORPUS", corpus, "$REPO", repo).Replace(args[3])
				_, stdout, ok := strings.Cut(rest, "--- stdout\n")
				stdout, _, ok2 := strings.Cut(stdout, "--- stderr\n")
				if !ok || !ok2 {
					t.Fatalf("golden %s has no stdout section", name)
				}
				var want bytes.Buffer
				if err := json.Compact(&want, []byte(stdout)); err != nil {
					t.Fatalf("golden %s stdout is not JSON: %v", name, err)
				}
				if got := review(t, analyze(t, path)); !bytes.Equal(got, want.Bytes()) {
					t.Fatalf("review of %s differs from mcpgw inspect -o json:\n--- review\n%s\n--- inspect\n%s", path, got, want.Bytes())
				}
			})
		}
	})
}
