package service_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
	"github.com/mcpgw/mcpgw/services/edge/internal/service"
)

const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func jsonBody(v any) *bytes.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// lastCommand returns the last command of that name the responders
// accepted (its authorization was verified as the owning service would).
func (h *harness) lastCommand(t *testing.T, name string) command {
	t.Helper()
	cs := h.commandsOf(name)
	if len(cs) == 0 {
		t.Fatalf("no %s reached its service", name)
	}
	return cs[len(cs)-1]
}

func TestOperatorAPI(t *testing.T) {
	h := newHarness(t, harnessOpts{uploadLimit: 8 << 20})
	admin := h.admin.credential
	jsonHdr := map[string]string{"Content-Type": "application/json", "Traceparent": traceParent, "User-Agent": "mcpgw-cli/test"}

	t.Run("upload is streamed through the object store", func(t *testing.T) {
		doc := bytes.Repeat([]byte(`{"openapi":"3.1.0","paths":{}}`+"\n"), (5<<20)/31+1)
		code, hdr, b := h.do("POST", "/api/v1/tenants/tenant-a/sources?name=Pets+API", admin, bytes.NewReader(doc), map[string]string{"Traceparent": traceParent})
		if code != http.StatusCreated {
			t.Fatalf("status %d: %s", code, b)
		}
		var res struct {
			SourceID string          `json:"source_id"`
			Version  uint32          `json:"version"`
			Review   json.RawMessage `json:"review"`
		}
		if err := json.Unmarshal(b, &res); err != nil || res.SourceID != "src_0001" || res.Version != 1 || string(res.Review) != `{"tools":2}` {
			t.Fatalf("response %s", b)
		}
		c := h.lastCommand(t, "mcpgw.rpc.v1.ImportSource")
		cmd := c.msg.(*rpcv1.ImportSource)
		sum := sha256.Sum256(doc)
		if cmd.GetTenant() != "tenant-a" || cmd.GetName() != "Pets API" || cmd.GetUpload().GetBucket() != bus.BucketUploads ||
			!strings.HasPrefix(cmd.GetUpload().GetObject(), "tenant-a/") || cmd.GetUpload().GetSize() != uint64(len(doc)) {
			t.Fatalf("command %v", cmd)
		}
		h.mu.Lock()
		up := h.uploads[len(h.uploads)-1]
		h.mu.Unlock()
		if !up.match || up.size != uint64(len(doc)) || up.sha256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("importer read %+v", up)
		}
		if c.meta.RequestID != hdr.Get(ingress.HeaderRequestID) || c.meta.TraceParent != traceParent || c.meta.Tenant != "tenant-a" {
			t.Fatalf("meta %+v, request id %q", c.meta, hdr.Get(ingress.HeaderRequestID))
		}
		if !c.auth.GetActor().GetPlatformAdmin() || c.auth.GetActor().GetReportedSurface() != "Go-http-client/1.1" {
			t.Fatalf("authorization actor %v", c.auth.GetActor())
		}
	})
	t.Run("approve", func(t *testing.T) {
		code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/sources/src_0001/versions/1/approve", admin,
			jsonBody(map[string]any{"allowed_hosts": []string{"api.example.com"}, "allowed_prefixes": []string{"10.0.0.0/8"}}), jsonHdr)
		if code != http.StatusOK || !strings.Contains(string(b), `"revision":3`) {
			t.Fatalf("status %d: %s", code, b)
		}
		cmd := h.lastCommand(t, "mcpgw.rpc.v1.ApproveSourceVersion").msg.(*rpcv1.ApproveSourceVersion)
		if cmd.GetSourceId() != "src_0001" || cmd.GetVersion() != 1 || cmd.GetAllowedHosts()[0] != "api.example.com" || cmd.GetAllowedPrefixes()[0] != "10.0.0.0/8" {
			t.Fatalf("command %v", cmd)
		}
		if code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/sources/src_0001/versions/1/approve", admin, nil, nil); code != http.StatusOK {
			t.Fatalf("approve without body: %d %s", code, b)
		}
	})
	t.Run("selection", func(t *testing.T) {
		code, _, b := h.do("PUT", "/api/v1/tenants/tenant-a/sources/src_0001/selection", admin, jsonBody(map[string]any{"tools": []string{"list_pets"}}), jsonHdr)
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, b)
		}
		cmd := h.lastCommand(t, "mcpgw.rpc.v1.SelectOperations").msg.(*rpcv1.SelectOperations)
		if cmd.GetSourceId() != "src_0001" || len(cmd.GetTools()) != 1 || cmd.GetTools()[0] != "list_pets" {
			t.Fatalf("command %v", cmd)
		}
	})
	canary := "sk_live_" + randomHex(t)
	t.Run("secret passes through sealed", func(t *testing.T) {
		pub := h.keys.Seal[bus.Broker].Public()
		sealed, err := seal.Seal(pub, []byte(seal.InfoSecret), seal.SecretAAD("tenant-a", "stripe"), []byte(canary))
		if err != nil {
			t.Fatal(err)
		}
		code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/secrets", admin, jsonBody(map[string]any{"name": "stripe", "sealed_value": base64.StdEncoding.EncodeToString(sealed)}), jsonHdr)
		if code != http.StatusCreated || string(bytes.TrimSpace(b)) != `{"secret_ref":"local:tenant-a/stripe"}` {
			t.Fatalf("status %d: %s", code, b)
		}
		cmd := h.lastCommand(t, "mcpgw.rpc.v1.PutSecret").msg.(*rpcv1.PutSecret)
		if !bytes.Equal(cmd.GetSealedValue(), sealed) || cmd.GetName() != "stripe" {
			t.Fatal("sealed value changed on its way")
		}
	})
	t.Run("binding", func(t *testing.T) {
		code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/bindings", admin, jsonBody(map[string]any{
			"name": "stripe prod", "strategy": "bearer", "placement": map[string]string{"in": "header", "name": "Authorization", "prefix": "Bearer "},
			"secret_ref": "local:tenant-a/stripe", "hosts": []string{"api.stripe.com"}, "environment": "prod", "source_id": "src_0001", "scheme": "bearerAuth",
		}), jsonHdr)
		if code != http.StatusCreated || string(bytes.TrimSpace(b)) != `{"binding_id":"bnd_0001"}` {
			t.Fatalf("status %d: %s", code, b)
		}
		cmd := h.lastCommand(t, "mcpgw.rpc.v1.CreateBinding").msg.(*rpcv1.CreateBinding)
		if cmd.GetStrategy() != "bearer" || cmd.GetPlacement().GetPrefix() != "Bearer " || cmd.GetHosts()[0] != "api.stripe.com" || cmd.GetScheme() != "bearerAuth" {
			t.Fatalf("command %v", cmd)
		}
	})
	t.Run("grant and revoke", func(t *testing.T) {
		code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/grants", admin, jsonBody(map[string]any{"tool": "list_pets", "subject_type": "agent", "subject_id": "agent-a"}), jsonHdr)
		if code != http.StatusCreated || string(bytes.TrimSpace(b)) != `{"grant_id":"grt_0001"}` {
			t.Fatalf("status %d: %s", code, b)
		}
		if cmd := h.lastCommand(t, "mcpgw.rpc.v1.AddGrant").msg.(*rpcv1.AddGrant); cmd.GetSubjectId() != "agent-a" {
			t.Fatalf("command %v", cmd)
		}
		if code, _, b := h.do("DELETE", "/api/v1/tenants/tenant-a/grants/grt_0001", admin, nil, nil); code != http.StatusOK {
			t.Fatalf("revoke: %d %s", code, b)
		}
		if cmd := h.lastCommand(t, "mcpgw.rpc.v1.RevokeGrant").msg.(*rpcv1.RevokeGrant); cmd.GetGrantId() != "grt_0001" {
			t.Fatalf("command %v", cmd)
		}
	})
	t.Run("audit query", func(t *testing.T) {
		code, _, b := h.do("GET", "/api/v1/tenants/tenant-a/audit?request_id=req_0123abcd&limit=10", admin, nil, nil)
		if code != http.StatusOK || !strings.Contains(string(b), `"event_id":"evt_1"`) {
			t.Fatalf("status %d: %s", code, b)
		}
		cmd := h.lastCommand(t, "mcpgw.rpc.v1.QueryAudit").msg.(*rpcv1.QueryAudit)
		if cmd.GetRequestId() != "req_0123abcd" || cmd.GetLimit() != 10 {
			t.Fatalf("command %v", cmd)
		}
	})
	t.Run("binding slots", func(t *testing.T) {
		code, _, b := h.do("GET", "/api/v1/tenants/tenant-a/sources/src-ok/slots", admin, nil, nil)
		if code != http.StatusOK || !strings.Contains(string(b), `"scheme":"ApiKeyAuth"`) || !strings.Contains(string(b), `"binding_id":"bnd_0001"`) {
			t.Fatalf("status %d: %s", code, b)
		}
		if cmd := h.lastCommand(t, "mcpgw.rpc.v1.ListSlots").msg.(*rpcv1.ListSlots); cmd.GetSourceId() != "src-ok" || cmd.GetTenant() != "tenant-a" {
			t.Fatalf("command %v", cmd)
		}
		if code, _, b := h.do("GET", "/api/v1/tenants/tenant-a/sources/src-nope/slots", admin, nil, nil); code != http.StatusNotFound {
			t.Fatalf("unknown source: %d %s", code, b)
		}
	})
	t.Run("sealing keys", func(t *testing.T) {
		code, _, b := h.do("GET", "/api/v1/keys", admin, nil, nil)
		var res map[string]struct{ Key, Fingerprint string }
		if code != http.StatusOK || json.Unmarshal(b, &res) != nil {
			t.Fatalf("status %d: %s", code, b)
		}
		for _, s := range []bus.Service{bus.Broker, bus.Policy} {
			name := "broker"
			if s == bus.Policy {
				name = "policy"
			}
			pub := h.keys.Seal[s].Public()
			if res[name].Key != pub.String() || res[name].Fingerprint != pub.Fingerprint() {
				t.Fatalf("%s key %+v", name, res[name])
			}
		}
	})
	t.Run("canary secret appears nowhere in clear", func(t *testing.T) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, r := range h.responses {
			assertAbsent(t, "response from "+r.url, canary, r.body)
		}
		assertAbsent(t, "logs", canary, []byte(h.logs.String()))
	})
	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name, method, path, credential string
			body                           string
			status                         int
			code                           string
		}{
			{"no credential", "POST", "/api/v1/tenants/tenant-a/grants", "", `{}`, 401, "unauthenticated"},
			{"agent key is not an operator", "POST", "/api/v1/tenants/tenant-a/grants", h.agentA.credential, `{"tool":"x","subject_type":"agent","subject_id":"y"}`, 403, "permission_denied"},
			{"invalid tenant", "POST", "/api/v1/tenants/Bad.Tenant/grants", admin, `{"tool":"x","subject_type":"agent","subject_id":"y"}`, 400, "invalid_id"},
			{"unknown field", "POST", "/api/v1/tenants/tenant-a/grants", admin, `{"tool":"x","subject_type":"agent","subject_id":"y","role":"owner"}`, 400, "invalid_argument"},
			{"trailing data", "POST", "/api/v1/tenants/tenant-a/grants", admin, `{"tool":"x","subject_type":"agent","subject_id":"y"} {}`, 400, "invalid_argument"},
			{"missing fields", "POST", "/api/v1/tenants/tenant-a/grants", admin, `{"tool":"x"}`, 400, "invalid_argument"},
			{"bad version", "POST", "/api/v1/tenants/tenant-a/sources/src_1/versions/zero/approve", admin, ``, 400, "invalid_argument"},
			{"bad grant id", "DELETE", "/api/v1/tenants/tenant-a/grants/GRT*", admin, ``, 400, "invalid_id"},
			{"bad sealed value", "POST", "/api/v1/tenants/tenant-a/secrets", admin, `{"name":"x","sealed_value":"!!"}`, 400, "invalid_argument"},
			{"negative expiry", "POST", "/api/v1/tenants/tenant-a/agents/agent-c/keys", admin, `{"expires_in_seconds":-1}`, 400, "invalid_argument"},
			{"audit limit", "GET", "/api/v1/tenants/tenant-a/audit?limit=100000", admin, ``, 400, "invalid_argument"},
			{"unknown endpoint", "GET", "/api/v1/nothing", admin, ``, 404, "not_found"},
			{"json over 1 MiB", "POST", "/api/v1/tenants/tenant-a/grants", admin, `{"tool":"` + strings.Repeat("x", 1<<20) + `"}`, 413, "too_large"},
			{"upload over the limit", "POST", "/api/v1/tenants/tenant-a/sources?name=big", admin, strings.Repeat("x", 9<<20), 413, "too_large"},
			{"upload without name", "POST", "/api/v1/tenants/tenant-a/sources", admin, `{}`, 400, "invalid_argument"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(h.commandsOf("mcpgw.rpc.v1.AddGrant"))
				code, hdr, b := h.do(tt.method, tt.path, tt.credential, strings.NewReader(tt.body), jsonHdr)
				var eb ingress.ErrorBody
				if code != tt.status || json.Unmarshal(b, &eb) != nil || eb.Error.Code != tt.code {
					t.Fatalf("status %d body %s, want %d %s", code, b, tt.status, tt.code)
				}
				if len(h.commandsOf("mcpgw.rpc.v1.AddGrant")) != before {
					t.Fatal("a refused request reached a service")
				}
				if tt.status == 401 && hdr.Get("WWW-Authenticate") == "" {
					t.Fatal("401 without WWW-Authenticate")
				}
			})
		}
		// Refusals on a tenant's path are recorded on that tenant.
		h.waitRefusal("tenant-a", ingress.ReasonUnauthenticated)
		h.waitRefusal("tenant-a", ingress.ReasonTooLarge)
	})
	t.Run("health and protected resource metadata need no credential", func(t *testing.T) {
		if code, _, b := h.do("GET", "/healthz", "", nil, nil); code != http.StatusOK || string(bytes.TrimSpace(b)) != `{"status":"ok"}` {
			t.Fatalf("healthz %d %s", code, b)
		}
		code, _, b := h.do("GET", "/.well-known/oauth-protected-resource", "", nil, nil)
		want := `{"resource":"` + h.url + `","authorization_servers":[],"bearer_methods_supported":["header"]}`
		if code != http.StatusOK || string(bytes.TrimSpace(b)) != want {
			t.Fatalf("metadata %d %s", code, b)
		}
	})
}

func TestAgentKeyOnlyInIssuingResponse(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	messages := h.recordNATS()
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	code, _, b := h.do("POST", "/api/v1/tenants/tenant-a/agents/agent-c/keys", h.admin.credential,
		jsonBody(map[string]any{"user": "carol", "environment": "prod", "surface": "ci", "workload": "nightly", "expires_in_seconds": 3600}), jsonHdr)
	if code != http.StatusCreated {
		t.Fatalf("status %d: %s", code, b)
	}
	var issued struct {
		KeyID  string `json:"key_id"`
		Key    string `json:"key"`
		Prefix string `json:"prefix"`
	}
	if err := json.Unmarshal(b, &issued); err != nil {
		t.Fatal(err)
	}
	key := issued.Key
	if !strings.HasPrefix(key, "mgw_") || len(key) != 4+43 || issued.Prefix != key[:12] || issued.KeyID != "key_issued" {
		t.Fatalf("issued %+v", issued)
	}
	cmd := h.lastCommand(t, "mcpgw.rpc.v1.IssueAgentKey").msg.(*rpcv1.IssueAgentKey)
	sum := sha256.Sum256([]byte(key))
	if !bytes.Equal(cmd.GetKeyHash(), sum[:]) || cmd.GetPrefix() != key[:12] || cmd.GetAgentId() != "agent-c" || cmd.GetSurface() != "ci" {
		t.Fatalf("command %v", cmd)
	}
	if d := time.Until(cmd.GetExpiresAt().AsTime()); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("expiry in %v", d)
	}
	h.mu.Lock()
	issuing := len(h.responses) - 1
	h.mu.Unlock()

	// The key works as an agent credential, through policy.
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	if code, _, b := h.do("POST", "/mcp", key, strings.NewReader(list), jsonHdr); code != http.StatusOK || !strings.Contains(string(b), "list_pets") {
		t.Fatalf("list with the issued key: %d %s", code, b)
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_pet","arguments":{"id":"1"}}}`
	if code, _, _ := h.do("POST", "/mcp", key, strings.NewReader(call), jsonHdr); code != http.StatusOK {
		t.Fatalf("call with the issued key: %d", code)
	}
	if code, _, b := h.do("DELETE", "/api/v1/tenants/tenant-a/agents/agent-c/keys/key_issued", h.admin.credential, nil, nil); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, b)
	}
	if cmd := h.lastCommand(t, "mcpgw.rpc.v1.RevokeAgentKey").msg.(*rpcv1.RevokeAgentKey); cmd.GetKeyId() != "key_issued" {
		t.Fatalf("command %v", cmd)
	}
	// An unauthenticated request carrying a near-miss of the key is refused
	// and audited with a fingerprint only.
	h.do("POST", "/mcp", key+"x", strings.NewReader(list), jsonHdr)
	h.waitRefusal(ingress.UnattributedTenant, ingress.ReasonUnauthenticated)

	h.mu.Lock()
	responses := append([]capturedResponse(nil), h.responses...)
	h.mu.Unlock()
	for i, r := range responses {
		if i == issuing {
			continue
		}
		assertAbsent(t, "response from "+r.url, key, r.body)
		var hdr bytes.Buffer
		_ = r.hdr.Write(&hdr)
		assertAbsent(t, "response headers from "+r.url, key, hdr.Bytes())
	}
	assertAbsent(t, "logs", key, []byte(h.logs.String()))
	var all bytes.Buffer
	for _, m := range messages() {
		all.Write(m)
	}
	if all.Len() == 0 {
		t.Fatal("recorded no NATS traffic")
	}
	assertAbsent(t, "NATS traffic", key, all.Bytes())
	assertAbsent(t, "NATS traffic", h.admin.credential, all.Bytes())
}

func TestProductionRefusesPlainHTTP(t *testing.T) {
	tests := []struct {
		name    string
		cfg     service.Config
		wantErr string
	}{
		{"non-loopback without TLS", service.Config{Production: true, Listen: "0.0.0.0:8080"}, "refuses plain HTTP"},
		{"all interfaces without TLS", service.Config{Production: true, Listen: ":8080"}, "refuses plain HTTP"},
		{"half a TLS pair", service.Config{Listen: "127.0.0.1:8080", TLSCertFile: "cert.pem"}, "both -tls-cert-file and -tls-key-file"},
		{"bad public URL", service.Config{Listen: "127.0.0.1:8080", PublicURL: "ftp://x"}, "public URL"},
		{"loopback passes the check", service.Config{Production: true, Listen: "127.0.0.1:8080"}, "edge runtime is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := service.NewWithRuntime(tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
