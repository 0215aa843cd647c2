package service_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
	"github.com/mcpgw/mcpgw/services/edge/internal/operatorapi"
)

func TestMapAuth(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	admin := h.admin.credential
	jsonHdr := map[string]string{"Content-Type": "application/json", "Traceparent": traceParent}

	t.Run("maps a scheme as a new version", func(t *testing.T) {
		code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/sources/src_0001/auth/inferred:header:X-Sig", admin,
			jsonBody(map[string]any{"kind": "apiKey", "in": "header", "param": "X-Sig"}), jsonHdr)
		var res operatorapi.ImportResult
		if code != http.StatusCreated || json.Unmarshal(b, &res) != nil {
			t.Fatalf("status %d: %s", code, b)
		}
		if res.SourceID != "src_0001" || res.Version != 2 || !strings.Contains(string(res.Review), `"mapped"`) {
			t.Fatalf("result %+v", res)
		}
		c := h.lastCommand(t, "mcpgw.rpc.v1.MapAuth")
		cmd := c.msg.(*rpcv1.MapAuth)
		if cmd.GetTenant() != "tenant-a" || cmd.GetSourceId() != "src_0001" || cmd.GetScheme() != "inferred:header:X-Sig" ||
			cmd.GetKind() != "apiKey" || cmd.GetIn() != "header" || cmd.GetParam() != "X-Sig" {
			t.Fatalf("command %v", cmd)
		}
		if c.auth.GetCommand() != "mcpgw.rpc.v1.MapAuth" || c.meta.TraceParent != traceParent {
			t.Fatalf("authorization %v, trace %q", c.auth, c.meta.TraceParent)
		}
	})

	tests := []struct {
		name, path, credential, body string
		status                       int
		code                         string
	}{
		{"no credential", "/api/v1/tenants/tenant-a/sources/src_0001/auth/key", "", `{"kind":"http-bearer"}`, 401, "unauthenticated"},
		{"agent key is not an operator", "/api/v1/tenants/tenant-a/sources/src_0001/auth/key", h.agentA.credential, `{"kind":"http-bearer"}`, 403, "permission_denied"},
		{"bad source id", "/api/v1/tenants/tenant-a/sources/SRC*/auth/key", admin, `{"kind":"http-bearer"}`, 400, "invalid_id"},
		{"no kind", "/api/v1/tenants/tenant-a/sources/src_0001/auth/key", admin, `{"in":"header"}`, 400, "invalid_argument"},
		{"unknown field", "/api/v1/tenants/tenant-a/sources/src_0001/auth/key", admin, `{"kind":"apiKey","value":"secret"}`, 400, "invalid_argument"},
	}
	for _, tt := range tests {
		t.Run("refuses "+tt.name, func(t *testing.T) {
			before := len(h.commandsOf("mcpgw.rpc.v1.MapAuth"))
			code, _, b := h.do("POST", tt.path, tt.credential, strings.NewReader(tt.body), jsonHdr)
			var eb ingress.ErrorBody
			if code != tt.status || json.Unmarshal(b, &eb) != nil || eb.Error.Code != tt.code {
				t.Fatalf("status %d body %s, want %d %s", code, b, tt.status, tt.code)
			}
			if len(h.commandsOf("mcpgw.rpc.v1.MapAuth")) != before {
				t.Fatal("a refused request reached the importer")
			}
		})
	}

	t.Run("passes the importer's refusal on", func(t *testing.T) {
		code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/sources/src_0001/auth/missing", admin,
			jsonBody(map[string]any{"kind": "http-bearer"}), jsonHdr)
		var eb ingress.ErrorBody
		if code != http.StatusNotFound || json.Unmarshal(b, &eb) != nil || eb.Error.Code != "not_found" || !strings.Contains(eb.Error.Message, "missing") {
			t.Fatalf("status %d: %s", code, b)
		}
	})
}
