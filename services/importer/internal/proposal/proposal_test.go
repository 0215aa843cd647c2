package proposal

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
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
	full, err := json.Marshal(res)
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
			var got analysis.Result
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
