package service_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
)

func TestOperatorAPIImportURL(t *testing.T) {
	h := newHarness(t, harnessOpts{uploadLimit: 8 << 20})
	admin := h.admin.credential
	const secret = "q-s3cr3t"
	specURL := "https://specs.example.com/v1/openapi.json?token=" + secret
	importPath := func(params url.Values) string {
		return "/api/v1/tenants/tenant-a/sources?" + params.Encode()
	}

	t.Run("url with an empty body", func(t *testing.T) {
		h.mu.Lock()
		uploads := len(h.uploads)
		h.mu.Unlock()
		params := url.Values{"name": {"Specs"}, "url": {specURL}, "allow_host": {"specs.example.com", "*.cdn.example.com"}, "allow_prefix": {"10.0.0.0/8"}}
		code, _, b := h.do("POST", importPath(params), admin, nil, nil)
		if code != http.StatusCreated {
			t.Fatalf("status %d: %s", code, b)
		}
		var res struct {
			SourceID string          `json:"source_id"`
			Version  uint32          `json:"version"`
			Review   json.RawMessage `json:"review"`
		}
		if err := json.Unmarshal(b, &res); err != nil || res.SourceID != "src_0002" || res.Version != 1 || string(res.Review) != `{"tools":1}` {
			t.Fatalf("response %s", b)
		}
		cmd := h.lastCommand(t, "mcpgw.rpc.v1.ImportSource").msg.(*rpcv1.ImportSource)
		if cmd.GetTenant() != "tenant-a" || cmd.GetName() != "Specs" || cmd.GetUrl() != specURL || cmd.GetUpload() != nil ||
			!slices.Equal(cmd.GetFetchAllowedHosts(), []string{"specs.example.com", "*.cdn.example.com"}) ||
			!slices.Equal(cmd.GetFetchAllowedPrefixes(), []string{"10.0.0.0/8"}) {
			t.Fatalf("command %v", cmd)
		}
		h.mu.Lock()
		n := len(h.uploads)
		h.mu.Unlock()
		if n != uploads {
			t.Fatal("an import from a URL read an upload")
		}
	})

	tests := []struct {
		name   string
		params url.Values
		body   string
		msg    string
	}{
		{"body and url", url.Values{"name": {"x"}, "url": {specURL}, "allow_host": {"specs.example.com"}}, `openapi: 3.1.0`, "not both"},
		{"not http", url.Values{"name": {"x"}, "url": {"file:///etc/passwd?token=" + secret}}, "", "http or https"},
		{"relative", url.Values{"name": {"x"}, "url": {"/openapi.json?token=" + secret}}, "", "http or https"},
		{"credentials", url.Values{"name": {"x"}, "url": {"https://u:" + secret + "@specs.example.com/"}}, "", "credentials"},
		{"two urls", url.Values{"name": {"x"}, "url": {specURL, specURL}}, "", "one url"},
		{"too long", url.Values{"name": {"x"}, "url": {specURL + strings.Repeat("a", 8<<10)}}, "", "longer than"},
		{"bad prefix", url.Values{"name": {"x"}, "url": {specURL}, "allow_prefix": {"10.0.0.1"}}, "", "allow_prefix"},
		{"allowlist without url", url.Values{"name": {"x"}, "allow_host": {"specs.example.com"}}, `openapi: 3.1.0`, "need a url"},
		{"no name", url.Values{"url": {specURL}}, "", "name"},
	}
	for _, tt := range tests {
		t.Run("refused "+tt.name, func(t *testing.T) {
			before := len(h.commandsOf("mcpgw.rpc.v1.ImportSource"))
			code, _, b := h.do("POST", importPath(tt.params), admin, strings.NewReader(tt.body), nil)
			var eb ingress.ErrorBody
			if code != http.StatusBadRequest || json.Unmarshal(b, &eb) != nil || eb.Error.Code != "invalid_argument" || !strings.Contains(eb.Error.Message, tt.msg) {
				t.Fatalf("status %d body %s, want 400 invalid_argument with %q", code, b, tt.msg)
			}
			if strings.Contains(string(b), secret) {
				t.Fatalf("error repeats the URL: %s", b)
			}
			if len(h.commandsOf("mcpgw.rpc.v1.ImportSource")) != before {
				t.Fatal("a refused request reached the importer")
			}
		})
	}
}
