package analysis_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGolden compares the full JSON result for the demo document and a few
// small corpus files with files under testdata/golden (go test -update
// rewrites them).
func TestGolden(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"demo-messages", "testdata/demo-messages.yaml"},
		{"corpus-A12-googleapis-undeclared", filepath.Join(corpusDir, "A12__googleapis-acceleratedmobilepageurl-v1-openapi.yaml")},
		{"corpus-A13-amazonaws-sigv4", filepath.Join(corpusDir, "A13__amazonaws-forecastquery-openapi.yaml")},
		{"corpus-A18-vtex-and-or", filepath.Join(corpusDir, "A18__VTEX_-_Audience_API.json")},
		{"corpus-A07-docusign-swagger-bearer-dangling", filepath.Join(corpusDir, "A07__docusign-monitor.rest.swagger-v2.json")},
		{"corpus-A32-obuk-swagger-application-jws", filepath.Join(corpusDir, "A32__obuk-2019-events-swagger.yaml")},
		{"corpus-A35-postman-hawk", filepath.Join(corpusDir, "A35__newman-hawk-auth-test.postman_collection.json")},
		{"corpus-A36-postman-inherited", filepath.Join(corpusDir, "A36__newman-inherited-entities.postman_collection.json")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatalf("read %s: %v", tt.path, err)
			}
			res, err := analysis.Analyze(data, analysis.Options{})
			if err != nil {
				t.Fatalf("analyze: %v", err)
			}
			got, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", tt.name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatalf("write golden: %v", err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("result differs from %s (run go test -update after checking the change):\n%s", golden, firstDifference(got, want))
			}
		})
	}
}

// TestDemoTool pins what the demo relies on, independently of the golden file.
func TestDemoTool(t *testing.T) {
	data, err := os.ReadFile("testdata/demo-messages.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := analysis.Analyze(data, analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Title != "Demo Messages API" || res.Format != analysis.FormatOpenAPI30 || res.Servers[0].URL != "http://127.0.0.1:8090" {
		t.Errorf("result = %s %q %+v", res.Format, res.Title, res.Servers)
	}
	send := operation(t, res, "POST /v1/messages")
	if send.Name != "send_message" {
		t.Errorf("tool name = %q", send.Name)
	}
	var names []string
	for name := range properties(t, send) {
		names = append(names, name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"body", "template_id", "to"}) {
		t.Errorf("input properties = %v", names)
	}
	want := [][]analysis.Requirement{{{Scheme: "ApiKeyAuth", Kind: analysis.KindAPIKey, In: analysis.LocationHeader, Param: "X-API-Key", Scopes: []string{}}}}
	if got := send.Auth; len(got) != 1 || len(got[0]) != 1 || got[0][0].Scheme != want[0][0].Scheme || got[0][0].Kind != want[0][0].Kind || got[0][0].Param != want[0][0].Param {
		t.Errorf("auth = %+v", got)
	}
	if operation(t, res, "GET /v1/messages/{id}").Name != "get_message" {
		t.Errorf("get tool name = %q", operation(t, res, "GET /v1/messages/{id}").Name)
	}
}

func firstDifference(got, want []byte) string {
	gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w []byte
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if !bytes.Equal(g, w) {
			return "line " + itoa(i+1) + ":\n got: " + string(g) + "\nwant: " + string(w)
		}
	}
	return ""
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
