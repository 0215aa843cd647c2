package demoapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mcpgw/mcpgw/tools/demoapi"
)

// doc is the part of an OpenAPI document the tests look at.
type doc struct {
	OpenAPI string `yaml:"openapi"`
	Info    struct {
		Title   string `yaml:"title"`
		Version string `yaml:"version"`
	} `yaml:"info"`
	Servers []struct {
		URL string `yaml:"url"`
	} `yaml:"servers"`
	Security   []map[string][]string           `yaml:"security"`
	Paths      map[string]map[string]operation `yaml:"paths"`
	Components struct {
		SecuritySchemes map[string]map[string]string `yaml:"securitySchemes"`
	} `yaml:"components"`
}

type operation struct {
	OperationID string `yaml:"operationId"`
	Summary     string `yaml:"summary"`
	Parameters  []struct {
		Name     string            `yaml:"name"`
		In       string            `yaml:"in"`
		Required bool              `yaml:"required"`
		Schema   map[string]string `yaml:"schema"`
	} `yaml:"parameters"`
	RequestBody struct {
		Required bool `yaml:"required"`
		Content  map[string]struct {
			Schema schema `yaml:"schema"`
		} `yaml:"content"`
	} `yaml:"requestBody"`
	Responses map[string]any `yaml:"responses"`
}

type schema struct {
	Type       string            `yaml:"type"`
	Required   []string          `yaml:"required"`
	Properties map[string]schema `yaml:"properties"`
	MaxLength  int               `yaml:"maxLength"`
	Desc       string            `yaml:"description"`
}

func parseDoc(t *testing.T, b []byte) doc {
	t.Helper()
	var d doc
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatalf("OpenAPI output is not YAML: %v", err)
	}
	return d
}

func TestOpenAPIDescribesTheAPI(t *testing.T) {
	d := parseDoc(t, demoapi.OpenAPI("http://127.0.0.1:8090"))
	if d.OpenAPI != "3.0.3" || d.Info.Title != "Demo Messages API" || d.Info.Version == "" {
		t.Errorf("openapi %q, title %q, version %q; want 3.0.3, Demo Messages API, a version", d.OpenAPI, d.Info.Title, d.Info.Version)
	}
	if len(d.Servers) != 1 || d.Servers[0].URL != "http://127.0.0.1:8090" {
		t.Errorf("servers = %+v; want one, http://127.0.0.1:8090", d.Servers)
	}
	wantScheme := map[string]string{"type": "apiKey", "in": "header", "name": "X-API-Key"}
	if fmt.Sprint(d.Components.SecuritySchemes["ApiKeyAuth"]) != fmt.Sprint(wantScheme) {
		t.Errorf("ApiKeyAuth = %v; want %v", d.Components.SecuritySchemes["ApiKeyAuth"], wantScheme)
	}
	if fmt.Sprint(d.Security) != "[map[ApiKeyAuth:[]]]" {
		t.Errorf("security = %v; want [{ApiKeyAuth: []}]", d.Security)
	}

	tests := []struct {
		path, method, id, summary string
		responses                 []string
	}{
		{"/v1/messages", "post", "sendMessage", "Send a message", []string{"201", "400", "401", "413"}},
		{"/v1/messages/{id}", "get", "getMessage", "Get a message", []string{"200", "401", "404"}},
	}
	ops := 0
	for _, item := range d.Paths {
		ops += len(item)
	}
	if ops != len(tests) {
		t.Errorf("document has %d operations; want %d", ops, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			op, ok := d.Paths[tt.path][tt.method]
			if !ok {
				t.Fatalf("no %s %s", tt.method, tt.path)
			}
			if op.OperationID != tt.id || op.Summary != tt.summary {
				t.Errorf("operationId %q, summary %q; want %q, %q", op.OperationID, op.Summary, tt.id, tt.summary)
			}
			var codes []string
			for c := range op.Responses {
				codes = append(codes, c)
			}
			slices.Sort(codes)
			if !slices.Equal(codes, tt.responses) {
				t.Errorf("responses %v; want %v", codes, tt.responses)
			}
		})
	}

	send := d.Paths["/v1/messages"]["post"]
	body := send.RequestBody.Content["application/json"].Schema
	if !send.RequestBody.Required || body.Type != "object" || fmt.Sprint(body.Required) != "[to body]" {
		t.Errorf("request body: required %v, type %q, required fields %v; want true, object, [to body]", send.RequestBody.Required, body.Type, body.Required)
	}
	wantProps := map[string]schema{
		"to":          {Type: "string", Desc: "Recipient address or handle"},
		"body":        {Type: "string", MaxLength: 2000, Desc: "Message text"},
		"template_id": {Type: "string", Desc: "Optional template to render the message with"},
	}
	if len(body.Properties) != len(wantProps) {
		t.Errorf("request properties %v; want %v", body.Properties, wantProps)
	}
	for name, want := range wantProps {
		got := body.Properties[name]
		if got.Type != want.Type || got.MaxLength != want.MaxLength || got.Desc != want.Desc {
			t.Errorf("property %s = %+v; want %+v", name, got, want)
		}
	}
	get := d.Paths["/v1/messages/{id}"]["get"]
	if len(get.Parameters) != 1 {
		t.Fatalf("getMessage parameters %+v; want one", get.Parameters)
	}
	if p := get.Parameters[0]; p.Name != "id" || p.In != "path" || !p.Required || p.Schema["type"] != "string" {
		t.Errorf("getMessage parameter %+v; want required path string id", p)
	}
}

func TestOpenAPIServerURLIsQuoted(t *testing.T) {
	tests := []string{
		"http://127.0.0.1:8090",
		"http://[::1]:8090/base",
		`http://localhost:1/a "quoted" #not-a-comment`,
		"http://x/\nopenapi: 2.0",
		"",
	}
	for _, url := range tests {
		t.Run(url, func(t *testing.T) {
			d := parseDoc(t, demoapi.OpenAPI(url))
			if len(d.Servers) != 1 || d.Servers[0].URL != url {
				t.Errorf("servers = %+v; want one with url %q", d.Servers, url)
			}
			if d.OpenAPI != "3.0.3" {
				t.Errorf("openapi = %q; want 3.0.3", d.OpenAPI)
			}
		})
	}
}

// TestOpenAPIMatchesServer calls every documented operation on a live server
// and checks that each status it returns is documented.
func TestOpenAPIMatchesServer(t *testing.T) {
	h := start(t, demoapi.Config{})
	d := parseDoc(t, demoapi.OpenAPI(h.url))
	r := h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), `{"to":"a","body":"b"}`)
	var created struct{ ID string }
	if err := json.Unmarshal(r.body, &created); err != nil || created.ID == "" {
		t.Fatalf("create message: %v (%s)", err, r.body)
	}
	bodies := map[string]string{"ok": `{"to":"a","body":"b"}`, "bad": `{"to":"a"}`, "big": strings.Repeat(" ", demoapi.MaxBodyBytes+1)}
	for path, item := range d.Paths {
		for method, op := range item {
			for _, key := range []string{canaryKey, "wrong"} {
				for kind, body := range bodies {
					for _, id := range []string{created.ID, "msg_unknown"} {
						p := strings.ReplaceAll(path, "{id}", id)
						m := strings.ToUpper(method)
						if m == http.MethodGet {
							body = ""
						}
						r := h.do(t, m, p, keyHeader(key), body)
						if _, ok := op.Responses[fmt.Sprint(r.status)]; !ok {
							t.Errorf("%s %s (%s body, key ok %v) returned %d, which %s does not document",
								m, p, kind, key == canaryKey, r.status, op.OperationID)
						}
					}
				}
			}
		}
	}
}
