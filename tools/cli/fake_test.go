package cli_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/tools/client"
)

// cannedReview is what the fake importer returns: the shape of the
// importer's analysis result, trimmed to what a review shows.
const cannedReview = `{
  "format": "openapi3.0",
  "spec_version": "3.0.3",
  "title": "Petstore",
  "version": "1.0.0",
  "servers": [{"url": "https://api.petstore.example"}],
  "schemes": [],
  "operations": [
    {"method": "GET", "path": "/pets", "operation_id": "listPets", "tool": "list_pets",
     "auth": [[{"scheme": "ApiKeyAuth", "kind": "apiKey", "in": "header", "param": "X-API-Key", "scopes": [], "caller_visible": false}]],
     "auth_source": "global", "inferred_auth": [], "unsupported": ""},
    {"method": "POST", "path": "/pets", "operation_id": "createPet", "tool": "create_pet",
     "auth": [[{"scheme": "OAuth", "kind": "oauth2", "in": "header", "param": "Authorization", "scopes": ["pets:write"], "caller_visible": false}],
              [{"scheme": "BasicAuth", "kind": "http-basic", "in": "header", "param": "Authorization", "scopes": [], "caller_visible": false}]],
     "auth_source": "operation", "inferred_auth": [{"scheme": "", "kind": "apiKey", "in": "query", "param": "api_key", "scopes": [], "caller_visible": false, "inferred": true}],
     "unsupported": ""},
    {"method": "GET", "path": "/health", "operation_id": "health", "tool": "health",
     "auth": [], "auth_source": "operation", "inferred_auth": [], "unsupported": ""},
    {"method": "PUT", "path": "/pets/{id}/photo", "operation_id": "uploadPhoto", "tool": "upload_photo",
     "auth": [[]], "auth_source": "operation", "inferred_auth": [], "unsupported": "multipart/form-data bodies are not supported"}
  ],
  "diagnostics": [
    {"level": "warning", "message": "operation uploadPhoto: unsupported body"},
    {"level": "info", "message": "servers[0]: no description"}
  ],
  "slots": [
    {"scheme": "ApiKeyAuth", "kind": "apiKey", "in": "header", "param": "X-API-Key", "tools": ["list_pets"], "strategy": "api_key", "bindings": []},
    {"scheme": "OAuth", "kind": "oauth2", "tools": ["create_pet"], "blocked_reason": "no binding strategy serves oauth2 yet; an operator can map it to one that does (mcpgw map-auth)", "bindings": []}
  ]
}`

// cannedAgentKey is the key the fake issues; printing it once is the point
// of agent key create.
const cannedAgentKey = "mcpk_demo.canned-agent-key-value"

// recorded is one request the fake edge received.
type recorded struct {
	Method, Path, RawQuery, Auth string
	Body                         []byte
}

// fakeEdge answers the operator API endpoints tools/client uses with canned
// answers. It checks the bearer token and opens sealed secrets with its
// broker key, as the real broker would.
type fakeEdge struct {
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	broker    *seal.PrivateKey
	requests  []recorded
	secrets   map[string][]byte // "tenant/name" → opened plaintext
	keysCalls int
	// echo, when set, is text the fake puts into its error messages (to
	// check that the CLI scrubs secrets a server reflects).
	echo string
}

func newFakeEdge(t *testing.T, token string) *fakeEdge {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEdge{token: token, broker: k, secrets: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/keys", f.keys)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/sources", f.importSource)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/sources/{id}/versions/{version}/approve", f.approve)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/sources/{id}/auth/{scheme}", f.mapAuth)
	mux.HandleFunc("PUT /api/v1/tenants/{tenant}/sources/{id}/selection", f.selection)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/secrets", f.putSecret)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/bindings", f.createBinding)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/grants", f.addGrant)
	mux.HandleFunc("DELETE /api/v1/tenants/{tenant}/grants/{id}", f.revokeGrant)
	mux.HandleFunc("POST /api/v1/tenants/{tenant}/agents/{agent}/keys", f.createKey)
	mux.HandleFunc("DELETE /api/v1/tenants/{tenant}/agents/{agent}/keys/{key}", f.revokeKey)
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/audit", f.audit)
	mux.HandleFunc("GET /api/v1/tenants/{tenant}/sources/{id}/slots", f.slots)
	f.srv = httptest.NewServer(f.authenticate(mux))
	t.Cleanup(f.srv.Close)
	return f
}

// URL is the fake edge's base URL (on 127.0.0.1).
func (f *fakeEdge) URL() string { return f.srv.URL }

// rotate gives the fake broker a new key.
func (f *fakeEdge) rotate(t *testing.T) {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.broker = k
	f.mu.Unlock()
}

func (f *fakeEdge) brokerKey() *seal.PrivateKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broker
}

func (f *fakeEdge) setEcho(s string) {
	f.mu.Lock()
	f.echo = s
	f.mu.Unlock()
}

// Requests returns a copy of the recorded requests.
func (f *fakeEdge) Requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

func (f *fakeEdge) KeysCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keysCalls
}

func (f *fakeEdge) Secret(tenant, name string) ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.secrets[tenant+"/"+name]
	return b, ok
}

// authenticate records every request and refuses a wrong token.
func (f *fakeEdge) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			apiError(w, http.StatusBadRequest, "invalid_argument", "read body")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.mu.Lock()
		f.requests = append(f.requests, recorded{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Auth: r.Header.Get("Authorization"), Body: body})
		echo := f.echo
		f.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			apiError(w, http.StatusUnauthorized, "unauthenticated", "invalid operator token")
			return
		}
		if echo != "" {
			apiError(w, http.StatusBadRequest, "invalid_argument", "cannot use "+echo)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeEdge) slots(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != "src_petstore" {
		w.WriteHeader(http.StatusNotFound)
		reply(w, map[string]any{"error": map[string]string{"code": "not_found", "message": "source not found"}})
		return
	}
	reply(w, client.Slots{Version: 2, Approved: true, Slots: []client.Slot{
		{Scheme: "ApiKeyAuth", Kind: "apiKey", In: "header", Param: "X-API-Key", Tools: []string{"get_pet", "list_pets"}, Strategy: "api_key",
			Bindings: []client.SlotBinding{{BindingID: "bnd_4t7c2w", Environment: "dev", Hosts: []string{"api.petstore.example"}}}},
		{Scheme: "OAuth", Kind: "oauth2", In: "header", Param: "Authorization", Tools: []string{"create_pet"},
			BlockedReason: "no binding strategy serves oauth2 yet"},
	}})
}

func (f *fakeEdge) keys(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	f.keysCalls++
	pub := f.broker.Public()
	f.mu.Unlock()
	reply(w, client.Keys{Broker: pub.String(), BrokerFingerprint: pub.Fingerprint()})
}

func (f *fakeEdge) importSource(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("name") == "" {
		apiError(w, http.StatusBadRequest, "invalid_argument", "name is required")
		return
	}
	if q := r.URL.Query(); q.Has("url") {
		if b, _ := io.ReadAll(r.Body); len(b) > 0 {
			apiError(w, http.StatusBadRequest, "invalid_argument", "send either a body or a url, not both")
			return
		}
		if len(q["allow_host"]) == 0 {
			apiError(w, http.StatusBadRequest, "invalid_argument", "fetch: the URL's host is not in the fetch allowlist (host \"specs.petstore.example\")")
			return
		}
	}
	id, version, rv := "src_petstore", 1, json.RawMessage(cannedReview)
	if s := r.URL.Query().Get("source_id"); s != "" {
		id, version = s, 2
		var doc map[string]any
		_ = json.Unmarshal([]byte(cannedReview), &doc)
		doc["diff"] = map[string]any{
			"base_version": 1,
			"operations": map[string]any{
				"added":     []any{map[string]any{"tool": "delete_pet", "method": "DELETE", "path": "/pets/{id}"}},
				"removed":   []any{},
				"changed":   []any{map[string]any{"tool": "list_pets", "method": "GET", "path": "/pets", "changes": []string{"input_schema", "auth"}}},
				"unchanged": 2,
			},
			"auth":    map[string]any{"added": []any{map[string]any{"name": "OAuth", "kind": "oauth2"}}, "removed": []any{}, "changed": []any{}},
			"hosts":   map[string]any{"added": []string{"api2.petstore.example"}, "removed": []string{"api.petstore.example"}},
			"omitted": 0,
		}
		rv, _ = json.Marshal(doc)
	}
	reply(w, map[string]any{"source_id": id, "version": version, "review": rv})
}

// mapAuth answers a mapping with version 2 of the source and a review whose
// diff changes the scheme's kind.
func (f *fakeEdge) mapAuth(w http.ResponseWriter, r *http.Request) {
	var in client.AuthMapping
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_argument", "bad body")
		return
	}
	if in.Kind == "apiKey" && in.Param == "" {
		apiError(w, http.StatusBadRequest, "invalid_argument", "an apiKey needs the parameter that carries it")
		return
	}
	if in.Kind != "apiKey" {
		in.In, in.Param = "header", "Authorization"
	}
	scheme := r.PathValue("scheme")
	var doc map[string]any
	_ = json.Unmarshal([]byte(cannedReview), &doc)
	doc["diff"] = map[string]any{
		"base_version": 1,
		"operations": map[string]any{
			"added": []any{}, "removed": []any{},
			"changed":   []any{map[string]any{"tool": "create_pet", "method": "POST", "path": "/pets", "changes": []string{"auth"}}},
			"unchanged": 2,
		},
		"auth":    map[string]any{"added": []any{}, "removed": []any{}, "changed": []any{map[string]any{"name": scheme, "kind": in.Kind, "previous_kind": "hmac", "changes": []string{"kind"}}}},
		"hosts":   map[string]any{"added": []string{}, "removed": []string{}},
		"omitted": 0,
	}
	doc["diagnostics"] = append(doc["diagnostics"].([]any), map[string]any{"level": "info",
		"message": fmt.Sprintf("auth scheme %q mapped by an operator: kind %s, in %s, param %q", scheme, in.Kind, in.In, in.Param)})
	rv, _ := json.Marshal(doc)
	reply(w, map[string]any{"source_id": r.PathValue("id"), "version": 2, "review": json.RawMessage(rv)})
}

func (f *fakeEdge) approve(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AllowedHosts    []string `json:"allowed_hosts"`
		AllowedPrefixes []string `json:"allowed_prefixes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_argument", "bad body")
		return
	}
	reply(w, client.CommandResult{ID: r.PathValue("id"), Revision: 3})
}

func (f *fakeEdge) selection(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Tools []string `json:"tools"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Tools) == 0 {
		apiError(w, http.StatusBadRequest, "invalid_argument", "tools are required")
		return
	}
	reply(w, client.CommandResult{ID: r.PathValue("id"), Revision: 4})
}

func (f *fakeEdge) putSecret(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name        string `json:"name"`
		SealedValue string `json:"sealed_value"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_argument", "bad body")
		return
	}
	sealed, err := base64.StdEncoding.DecodeString(in.SealedValue)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_argument", "sealed_value is not base64")
		return
	}
	tenant := r.PathValue("tenant")
	plain, err := seal.Open(f.brokerKey(), []byte(seal.InfoSecret), seal.SecretAAD(tenant, in.Name), sealed)
	if err != nil {
		apiError(w, http.StatusBadRequest, "invalid_argument", "sealed_value does not open with the broker's key for this tenant and name")
		return
	}
	f.mu.Lock()
	f.secrets[tenant+"/"+in.Name] = plain
	f.mu.Unlock()
	reply(w, map[string]string{"secret_ref": "local://" + tenant + "/" + in.Name + "#v1"})
}

func (f *fakeEdge) createBinding(w http.ResponseWriter, r *http.Request) {
	var b client.Binding
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Name == "" || len(b.Hosts) == 0 {
		apiError(w, http.StatusBadRequest, "invalid_argument", "bad binding")
		return
	}
	reply(w, map[string]string{"binding_id": "bnd_" + strings.ReplaceAll(b.Name, "-", "_")})
}

func (f *fakeEdge) addGrant(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Tool        string `json:"tool"`
		SubjectType string `json:"subject_type"`
		SubjectID   string `json:"subject_id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Tool == "" {
		apiError(w, http.StatusBadRequest, "invalid_argument", "bad grant")
		return
	}
	reply(w, map[string]string{"grant_id": "grt_" + in.SubjectType + "_1"})
}

func (f *fakeEdge) revokeGrant(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") == "grt_missing" {
		apiError(w, http.StatusNotFound, "not_found", "grant grt_missing does not exist")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeEdge) createKey(w http.ResponseWriter, r *http.Request) {
	var in client.AgentKeyRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		apiError(w, http.StatusBadRequest, "invalid_argument", "bad body")
		return
	}
	reply(w, map[string]string{"key_id": "key_1", "prefix": "mcpk_demo", "key": cannedAgentKey})
}

func (f *fakeEdge) revokeKey(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeEdge) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("request_id") == "req_none" {
		reply(w, map[string]any{"rows": []any{}})
		return
	}
	rows := []map[string]any{
		{
			"event_id": "evt_3", "time": "2026-03-04T10:15:02.250Z", "kind": "invocation.completed", "request_id": "req_42",
			"tool": "list_pets", "binding_id": "bnd_pets", "gate": "", "reason": "", "credential_status": "resolved",
			"policy_outcome": "allowed", "adapter_outcome": "ok", "upstream_status": 200,
		},
		{
			"event_id": "evt_2", "time": "2026-03-04T10:15:02.100Z", "kind": "credential.used", "request_id": "req_42",
			"tool": "list_pets", "binding_id": "bnd_pets", "credential_status": "resolved", "policy_outcome": "allowed",
		},
		{
			"eventId": "evt_1", "time": "2026-03-04T10:14:59Z", "kind": "invocation.refused", "requestId": "req_41",
			"tool": "create_pet", "gate": "policy", "reason": "no grant for agent\x1b[31m demo-agent", "credentialStatus": "not_resolved",
			"policyOutcome": "denied", "adapterOutcome": "refused",
		},
	}
	reply(w, map[string]any{"rows": rows})
}
