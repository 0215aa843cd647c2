package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/services/adapter/internal/service"
)

var apiKeyAuth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{{Name: "ApiKeyAuth", Kind: "apiKey", In: "header", Param: "X-API-Key"}}}}

var headerKey = &controlv1.Placement{In: "header", Name: "X-API-Key"}

func sendMessage(server string) *controlv1.ToolSpec {
	return &controlv1.ToolSpec{
		Name: "send_message", Description: "Send a message",
		InputSchema: []byte(`{"type":"object","properties":{"to":{"type":"string","minLength":1},"body":{"type":"string","minLength":1},"priority":{"type":"string"}},"required":["to","body"],"additionalProperties":false}`),
		Operation: &controlv1.OperationSpec{OperationId: "sendMessage", Method: "POST", Path: "/v1/messages", Servers: []string{server},
			ContentType: "application/json", Params: []*controlv1.ParamMapping{
				{Property: "to", In: "body", Name: "to", Required: true},
				{Property: "body", In: "body", Name: "body", Required: true},
				{Property: "priority", In: "header", Name: "X-Priority"},
			}},
		Auth: apiKeyAuth,
	}
}

func getMessage(server string) *controlv1.ToolSpec {
	return &controlv1.ToolSpec{
		Name: "get_message", Description: "Get a message",
		InputSchema: []byte(`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"],"additionalProperties":false}`),
		Operation: &controlv1.OperationSpec{OperationId: "getMessage", Method: "GET", Path: "/v1/messages/{id}", Servers: []string{server},
			Params: []*controlv1.ParamMapping{{Property: "id", In: "path", Name: "id", Required: true, Style: "simple"}}},
		Auth: apiKeyAuth,
	}
}

// simpleTool is a GET of path with a permissive schema.
func simpleTool(name, server, path string, auth []*controlv1.AuthAlternative, params ...*controlv1.ParamMapping) *controlv1.ToolSpec {
	return &controlv1.ToolSpec{
		Name: name, InputSchema: []byte(`{"type":"object"}`),
		Operation: &controlv1.OperationSpec{OperationId: name, Method: "GET", Path: path, Servers: []string{server}, Params: params},
		Auth:      auth,
	}
}

// demo sets up the "messages" source on the api upstream with a binding of
// the secret for environment dev.
func (e *env) demo() {
	e.t.Helper()
	e.addSource(source{id: "src_msgs", approve: true, hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{sendMessage(e.api.base()), getMessage(e.api.base())}})
	e.bind(tenant, "bnd_msgs", "src_msgs", "ApiKeyAuth", "dev", []string{e.api.host()}, headerKey, e.secret)
	e.sync()
}

func TestHappyPath(t *testing.T) {
	e := newEnv(t)
	e.demo()
	reply, rid := e.invoke(e.context(tenant, "dev"), "send_message", map[string]any{"to": "bob", "body": "hello", "priority": "high"})
	res := decodeResult(t, reply)
	if res.IsError || res.StructuredContent["id"] != "msg_1" || res.StructuredContent["to"] != "bob" {
		t.Fatalf("result = %+v", res)
	}
	got := e.api.last()
	if got.Method != "POST" || got.Path != "/v1/messages" {
		t.Fatalf("upstream saw %s %s", got.Method, got.Path)
	}
	if v := got.Header.Values("X-API-Key"); len(v) != 1 || v[0] != string(e.secret) {
		t.Fatalf("upstream did not get exactly the bound key")
	}
	if got.Header.Get("User-Agent") != "mcpgw-adapter" || got.Header.Get("Accept") != "application/json" ||
		got.Header.Get("Content-Type") != "application/json" || got.Header.Get("X-Priority") != "high" {
		t.Fatalf("upstream headers = %v", redact(got.Header))
	}
	if got.Header.Get("Authorization") != "" {
		t.Fatal("upstream got an Authorization header")
	}
	var body map[string]any
	if err := json.Unmarshal(got.Body, &body); err != nil || body["to"] != "bob" || body["body"] != "hello" || len(body) != 2 {
		t.Fatalf("upstream body = %s", got.Body)
	}
	if e.resolveCalls.Load() != 1 || e.policyCalls.Load() != 1 {
		t.Fatalf("resolve calls %d, policy calls %d; want 1 and 1", e.resolveCalls.Load(), e.policyCalls.Load())
	}
	a := e.auditFor(tenant, rid)
	used, done := a["used"], a["completed"]
	if used == nil || done == nil || a["refused"] != nil {
		t.Fatalf("audit = %v, want credential_used and invocation_completed", a)
	}
	if used.GetCredentialStatus() != "resolved" || len(used.GetBindingIds()) != 1 || used.GetBindingIds()[0] != "bnd_msgs" {
		t.Fatalf("credential_used = %v", used)
	}
	if done.GetAdapterOutcome() != "ok" || done.GetUpstreamStatus() != 201 || done.GetPolicyOutcome() != "allowed" ||
		done.GetCredentialStatus() != "resolved" || done.GetUpstreamHost() != e.api.host() || done.GetSourceId() != "src_msgs" ||
		done.GetSourceVersion() != 1 || done.GetOperationId() != "sendMessage" || done.GetLatencyUs() == 0 {
		t.Fatalf("invocation_completed = %v", done)
	}
	// The principal comes from the signed context, reported surface included.
	for _, ev := range e.auditEvents(tenant) {
		if ev.Meta.GetRequestId() != rid {
			continue
		}
		p := principalOf(ev)
		if p.GetAgent() != "agent_1" || p.GetUser() != "alice" || p.GetReportedSurface() != "claude-code" || p.GetEnvironment() != "dev" {
			t.Fatalf("principal = %v", p)
		}
	}

	// A path parameter is escaped into its segment.
	reply, _ = e.invoke(e.context(tenant, "dev"), "get_message", map[string]any{"id": "msg 1"})
	if res := decodeResult(t, reply); res.IsError || res.StructuredContent["id"] != "msg 1" {
		t.Fatalf("get_message = %+v", res)
	}
	if got := e.api.last(); got.Path != "/v1/messages/msg 1" {
		t.Fatalf("path = %q", got.Path)
	}
	e.canary()
}

func TestGateRefusals(t *testing.T) {
	e := newEnv(t, func(c *service.Config) { c.MaxArgumentBytes = 4096 })
	e.demo()
	// Proposed, never approved.
	e.addSource(source{id: "src_draft", hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{simpleTool("draft_tool", e.api.base(), "/search", apiKeyAuth)}})
	// Approved, not selected.
	e.addSource(source{id: "src_unsel", approve: true, selected: []string{}, hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{simpleTool("unselected_tool", e.api.base(), "/search", apiKeyAuth)}})
	// Approved, host missing from the allowlist.
	e.addSource(source{id: "src_unlisted", approve: true, hosts: []string{e.other.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{simpleTool("unlisted_tool", e.api.base(), "/search", apiKeyAuth)}})
	// Approved, host listed but resolving to a private address without a prefix.
	e.addSource(source{id: "src_private", approve: true, hosts: []string{"private.test"},
		tools: []*controlv1.ToolSpec{simpleTool("private_tool", "http://private.test", "/search", apiKeyAuth)}})
	// Approved, loopback without an allowed prefix.
	e.addSource(source{id: "src_loop", approve: true, hosts: []string{e.api.host()},
		tools: []*controlv1.ToolSpec{simpleTool("loopback_tool", e.api.base(), "/search", apiKeyAuth)}})
	// Approved, policy says no.
	e.addSource(source{id: "src_pol", approve: true, hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{
			simpleTool("denied_tool", e.api.base(), "/search", apiKeyAuth),
			simpleTool("conditional_tool", e.api.base(), "/search", apiKeyAuth),
		}})
	e.mu.Lock()
	e.outcomes["denied_tool"], e.outcomes["conditional_tool"] = "denied", "conditional"
	e.mu.Unlock()
	// Approved, a scheme nobody bound.
	other := []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{{Name: "OtherAuth", Kind: "http-bearer"}}}}
	e.addSource(source{id: "src_unbound", approve: true, hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{simpleTool("unbound_tool", e.api.base(), "/search", other)}})
	// A revoked agent key.
	e.append(e.policy, tenant, bus.AggAgent, "agent_9", &controlv1.AgentKeyIssued{Meta: &commonv1.EventMeta{}, AgentId: "agent_9", KeyId: "key_9", Prefix: "mk_9", KeyHash: []byte("h9")})
	e.append(e.policy, tenant, bus.AggAgent, "agent_9", &controlv1.AgentKeyRevoked{Meta: &commonv1.EventMeta{}, AgentId: "agent_9", KeyId: "key_9"})
	e.sync()

	now := time.Now()
	sign := func(c *commonv1.Context) *commonv1.SignedContext {
		sc, err := reqctx.Sign(e.keys.ID[bus.Policy], c)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	base := func() *commonv1.Context {
		return &commonv1.Context{Tenant: tenant, Agent: "agent_1", Environment: "dev", CredentialId: "key_1",
			IssuedAt: timestamppb.New(now.Add(-time.Second)), ExpiresAt: timestamppb.New(now.Add(50 * time.Second))}
	}
	expired := base()
	expired.IssuedAt, expired.ExpiresAt = timestamppb.New(now.Add(-90*time.Second)), timestamppb.New(now.Add(-40*time.Second))
	revoked := base()
	revoked.CredentialId = "key_9"
	valid := sign(base())
	forged := &commonv1.SignedContext{Context: valid.Context, Signature: e.keys.ID[bus.Edge].Sign(append([]byte("mcpgw/context/v1\x00"), valid.Context...))}
	tampered := &commonv1.SignedContext{Context: []byte(strings.Replace(string(valid.Context), "dev", "prd", 1)), Signature: valid.Signature}
	prodCtx := e.context(tenant, "prod")

	okArgs := map[string]any{"to": "bob", "body": "hi"}
	tests := []struct {
		name       string
		ctx        *commonv1.SignedContext
		tool       string
		args       any
		gate       string
		uniform    bool
		message    string
		policy     string
		credential string
	}{
		{"unsigned context", nil, "send_message", okArgs, "context", true, "", "not_evaluated", "not_resolved"},
		{"context signed by the edge", forged, "send_message", okArgs, "context", true, "", "not_evaluated", "not_resolved"},
		{"tampered context", tampered, "send_message", okArgs, "context", true, "", "not_evaluated", "not_resolved"},
		{"expired context", sign(expired), "send_message", okArgs, "context", true, "", "not_evaluated", "not_resolved"},
		{"revoked credential", sign(revoked), "send_message", okArgs, "context", true, "", "not_evaluated", "not_resolved"},
		{"unknown tool", valid, "no_such_tool", okArgs, "approval", true, "", "not_evaluated", "not_resolved"},
		{"another tenant's tool", e.context("other", "dev"), "send_message", okArgs, "approval", true, "", "not_evaluated", "not_resolved"},
		{"not approved", valid, "draft_tool", map[string]any{}, "approval", true, "", "not_evaluated", "not_resolved"},
		{"not selected", valid, "unselected_tool", map[string]any{}, "selection", true, "", "not_evaluated", "not_resolved"},
		{"host not allowlisted", valid, "unlisted_tool", map[string]any{}, "host", true, "", "not_evaluated", "not_resolved"},
		{"host resolves to a private address", valid, "private_tool", map[string]any{}, "host", true, "", "not_evaluated", "not_resolved"},
		{"loopback without a prefix", valid, "loopback_tool", map[string]any{}, "host", true, "", "not_evaluated", "not_resolved"},
		{"policy denies", valid, "denied_tool", map[string]any{}, "policy", true, "", "denied", "not_resolved"},
		{"policy conditional", valid, "conditional_tool", map[string]any{}, "policy", true, "", "conditional", "not_resolved"},
		{"missing required argument", valid, "send_message", map[string]any{"to": "bob"}, "schema", false, `missing property 'body'`, "allowed", "not_resolved"},
		{"wrong type", valid, "send_message", map[string]any{"to": "bob", "body": 7}, "schema", false, `argument "/body": got number, want string`, "allowed", "not_resolved"},
		{"extra argument", valid, "send_message", map[string]any{"to": "bob", "body": "x", "X-API-Key": "evil"}, "schema", false, "additional properties", "allowed", "not_resolved"},
		{"arguments not an object", valid, "send_message", []byte(`["x"]`), "schema", false, "must be a JSON object", "allowed", "not_resolved"},
		{"arguments not JSON", valid, "send_message", []byte(`{"to":`), "schema", false, "not valid JSON", "allowed", "not_resolved"},
		{"path traversal", valid, "get_message", map[string]any{"id": "../admin"}, "schema", false, "must not contain a slash", "allowed", "not_resolved"},
		{"dot dot", valid, "get_message", map[string]any{"id": "..%2fadmin"}, "schema", false, "must not contain '..'", "allowed", "not_resolved"},
		{"line break in path", valid, "get_message", map[string]any{"id": "a\r\nX-Evil: 1"}, "schema", false, "line breaks", "allowed", "not_resolved"},
		{"NUL in path", valid, "get_message", map[string]any{"id": "a\x00b"}, "schema", false, "NUL", "allowed", "not_resolved"},
		{"header injection", valid, "send_message", map[string]any{"to": "bob", "body": "x", "priority": "high\r\nX-Evil: 1"}, "schema", false, "line breaks", "allowed", "not_resolved"},
		{"no binding for the scheme", valid, "unbound_tool", map[string]any{}, "binding", false, `no credential binding for this tool in environment "dev"`, "allowed", "missing"},
		{"no binding for the environment", prodCtx, "send_message", okArgs, "binding", false, `no credential binding for this tool in environment "prod"`, "allowed", "missing"},
		{"arguments too large", valid, "send_message", map[string]any{"to": "bob", "body": strings.Repeat("x", 5000)}, "size", false, "over the 4096-byte limit", "allowed", "not_resolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resolves, upstreamBefore := e.resolveCalls.Load(), e.api.count()+e.other.count()
			reply, rid := e.invoke(tt.ctx, tt.tool, tt.args)
			if tt.uniform {
				if reply.GetError().GetCode() != string(errcode.ToolNotPermitted) || reply.GetError().GetMessage() != "unknown or not permitted tool" || reply.GetResult() != nil {
					t.Fatalf("reply = %v, want the uniform error", reply)
				}
			} else {
				res := decodeResult(t, reply)
				if !res.IsError || !strings.Contains(res.Content[0].Text, tt.message) {
					t.Fatalf("result = %+v, want isError containing %q", res, tt.message)
				}
			}
			if e.resolveCalls.Load() != resolves {
				t.Fatal("the broker was asked for a credential")
			}
			if e.api.count()+e.other.count() != upstreamBefore {
				t.Fatal("the upstream saw a request")
			}
			ten := tenant
			if tt.name == "another tenant's tool" {
				ten = "other"
			}
			a := e.auditFor(ten, rid)
			ref := a["refused"]
			if ref == nil || a["used"] != nil || a["completed"] != nil {
				t.Fatalf("audit = %v, want one invocation_refused", a)
			}
			if ref.GetGate() != tt.gate || ref.GetAdapterOutcome() != "refused" || ref.GetPolicyOutcome() != tt.policy ||
				ref.GetCredentialStatus() != tt.credential || ref.GetReason() == "" {
				t.Fatalf("invocation_refused = %v; want gate %s policy %s credential %s", ref, tt.gate, tt.policy, tt.credential)
			}
			// Explain names the same gate without resolving anything.
			if tt.ctx != nil && json.Valid(mustJSON(tt.args)) {
				x := e.explain(tt.ctx, tt.tool, tt.args)
				if x.GetAllowed() || x.GetGate() != tt.gate || x.GetReason() == "" {
					t.Fatalf("explain = %v, want gate %s", x, tt.gate)
				}
			}
		})
	}
	if e.resolveCalls.Load() != 0 {
		t.Fatalf("broker asked %d times", e.resolveCalls.Load())
	}
	e.canary()
}

func mustJSON(v any) []byte {
	if b, ok := v.([]byte); ok {
		return b
	}
	b, _ := json.Marshal(v)
	return b
}

func TestPolicyUnavailableDenies(t *testing.T) {
	e := newEnv(t, func(c *service.Config) { c.PolicyTimeout = 300 * time.Millisecond })
	e.demo()
	e.policy.Server.Close() // policy is down: nobody answers rpc.policy.check
	reply, rid := e.invoke(e.context(tenant, "dev"), "send_message", map[string]any{"to": "bob", "body": "hi"})
	if reply.GetError().GetCode() != string(errcode.ToolNotPermitted) {
		t.Fatalf("reply = %v, want the uniform error", reply)
	}
	ref := e.auditFor(tenant, rid)["refused"]
	if ref == nil || ref.GetGate() != "policy" || ref.GetPolicyOutcome() != "unavailable" {
		t.Fatalf("invocation_refused = %v", ref)
	}
	if e.resolveCalls.Load() != 0 || e.api.count() != 0 {
		t.Fatal("a credential was resolved or the upstream called while policy was down")
	}
}

func TestExplainAllowed(t *testing.T) {
	e := newEnv(t)
	e.demo()
	before := len(e.auditEvents(tenant))
	x := e.explain(e.context(tenant, "dev"), "send_message", map[string]any{"to": "bob", "body": "hi"})
	if !x.GetAllowed() || x.GetGate() != "" {
		t.Fatalf("explain = %v, want allowed", x)
	}
	if e.resolveCalls.Load() != 0 || e.api.count() != 0 || len(e.auditEvents(tenant)) != before {
		t.Fatal("explain resolved a credential, called the upstream or wrote audit")
	}
}

func TestArgumentsCannotOverrideCredential(t *testing.T) {
	e := newEnv(t)
	queryKey := &controlv1.Placement{In: "query", Name: "api_key"}
	queryAuth := []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{{Name: "QueryKey", Kind: "apiKey", In: "query", Param: "api_key"}}}}
	e.addSource(source{id: "src_over", approve: true, hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{
			// A permissive schema and a spec that (wrongly) maps arguments onto
			// the credential's header and query parameter.
			simpleTool("echo_tool", e.api.base(), "/echo", apiKeyAuth,
				&controlv1.ParamMapping{Property: "key_override", In: "header", Name: "X-API-Key"}),
			simpleTool("search_tool", e.api.base(), "/search", queryAuth,
				&controlv1.ParamMapping{Property: "api_key", In: "query", Name: "api_key"},
				&controlv1.ParamMapping{Property: "q", In: "query", Name: "q"}),
		}})
	e.bind(tenant, "bnd_hdr", "src_over", "ApiKeyAuth", "", []string{e.api.host()}, headerKey, e.secret)
	e.bind(tenant, "bnd_qry", "src_over", "QueryKey", "", []string{e.api.host()}, queryKey, e.secret)
	e.sync()

	evil := map[string]any{"X-API-Key": "evil", "Authorization": "Bearer evil", "key_override": "evil", "api_key": "evil", "q": "cats"}
	for range 2 { // the second call must not see anything from the first
		reply, _ := e.invoke(e.context(tenant, "dev"), "echo_tool", evil)
		if res := decodeResult(t, reply); res.IsError {
			t.Fatalf("echo_tool = %+v", res)
		}
		got := e.api.last()
		if v := got.Header.Values("X-API-Key"); len(v) != 1 || v[0] != string(e.secret) {
			t.Fatal("the argument replaced or joined the injected header credential")
		}
		if got.Header.Get("Authorization") != "" {
			t.Fatal("an Authorization header from the arguments reached the upstream")
		}
		reply, _ = e.invoke(e.context(tenant, "dev"), "search_tool", evil)
		if res := decodeResult(t, reply); res.IsError {
			t.Fatalf("search_tool = %+v", res)
		}
		got = e.api.last()
		q := parseQuery(t, got.RawQuery)
		if v := q["api_key"]; len(v) != 1 || v[0] != string(e.secret) || q.Get("q") != "cats" {
			t.Fatal("the argument replaced or joined the injected query credential")
		}
		if got.Header.Get("X-API-Key") != "" {
			t.Fatal("a header credential reached a query-bound tool")
		}
	}
	e.canary()
}

func TestCredentialEchoIsScrubbed(t *testing.T) {
	e := newEnv(t)
	e.addSource(source{id: "src_echo", approve: true, hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{simpleTool("echo_tool", e.api.base(), "/echo", apiKeyAuth)}})
	e.bind(tenant, "bnd_echo", "src_echo", "ApiKeyAuth", "", []string{e.api.host()}, headerKey, e.secret)
	e.sync()
	reply, rid := e.invoke(e.context(tenant, "dev"), "echo_tool", map[string]any{})
	res := decodeResult(t, reply)
	if res.IsError || res.StructuredContent["raw"] != "[redacted]" || res.StructuredContent["b64"] != "[redacted]" ||
		res.StructuredContent["url"] != "[redacted]" || res.StructuredContent["sentence"] != "your key is [redacted]!" {
		t.Fatalf("result = %s", reply.GetResult())
	}
	if e.api.last().Header.Get("X-API-Key") != string(e.secret) {
		t.Fatal("upstream did not get the key")
	}
	if done := e.auditFor(tenant, rid)["completed"]; done == nil || !strings.Contains(done.GetReason(), "scrubbed") {
		t.Fatalf("invocation_completed = %v", done)
	}
	e.canary()
}

func TestRedirects(t *testing.T) {
	e := newEnv(t)
	e.addSource(source{id: "src_redir", approve: true, hosts: []string{e.api.host(), e.other.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{simpleTool("redirect_tool", e.api.base(), "/redirect", apiKeyAuth)}})
	e.bind(tenant, "bnd_redir", "src_redir", "ApiKeyAuth", "", []string{e.api.host()}, headerKey, e.secret)
	e.sync()
	tests := []struct {
		name      string
		target    string
		isError   bool
		wantOther int  // requests the other host sees
		keyAgain  bool // the landing request on the api host carries the key
	}{
		{"same host gets the credential again", e.api.base() + "/landing", false, 0, true},
		{"another allowed host gets no credential", e.other.base() + "/landing", false, 1, false},
		{"a host outside the allowlist is not reached", "http://evil.test:" + e.other.port + "/landing", true, 0, false},
		{"a loop stops after three redirects", e.api.base() + "/redirect", true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.api.redirectTo.Store(tt.target)
			apiBefore, otherBefore := e.api.count(), e.other.count()
			reply, _ := e.invoke(e.context(tenant, "dev"), "redirect_tool", map[string]any{})
			res := decodeResult(t, reply)
			if res.IsError != tt.isError {
				t.Fatalf("result = %s", reply.GetResult())
			}
			if n := e.other.count() - otherBefore; n != tt.wantOther {
				t.Fatalf("other host saw %d requests, want %d", n, tt.wantOther)
			}
			for _, r := range e.other.requests()[otherBefore:] {
				if r.Header.Get("X-API-Key") != "" || r.Header.Get("Authorization") != "" {
					t.Fatal("the credential followed a redirect to another host")
				}
			}
			reqs := e.api.requests()[apiBefore:]
			if reqs[0].Header.Get("X-API-Key") != string(e.secret) {
				t.Fatal("the first request lacks the credential")
			}
			if tt.keyAgain {
				if len(reqs) != 2 || reqs[1].Path != "/landing" || reqs[1].Header.Get("X-API-Key") != string(e.secret) {
					t.Fatal("the same-host redirect did not carry the credential")
				}
			}
			if tt.name == "a loop stops after three redirects" && len(reqs) != 4 {
				t.Fatalf("api host saw %d requests, want 4", len(reqs))
			}
		})
	}
	e.canary()
}

func TestNewServerNeedsNewApprovalAndBinding(t *testing.T) {
	e := newEnv(t)
	e.demo()
	ctx := e.context(tenant, "dev")
	args := map[string]any{"to": "bob", "body": "hi"}
	// The importer proposes v2 whose server is another host.
	v2 := source{id: "src_msgs", version: 2, approve: true, hosts: []string{e.api.host(), e.other.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{sendMessage(e.other.base()), getMessage(e.other.base())}}
	e.propose(v2)
	e.sync()
	reply, _ := e.invoke(ctx, "send_message", args)
	if res := decodeResult(t, reply); res.IsError {
		t.Fatalf("v1 call = %+v", res)
	}
	if e.api.count() != 1 || e.other.count() != 0 {
		t.Fatal("the adapter ran the unapproved v2 spec")
	}
	// Policy approves v2 and allowlists the new host, but nobody re-bound.
	e.decide(v2)
	e.sync()
	resolves := e.resolveCalls.Load()
	reply, rid := e.invoke(ctx, "send_message", args)
	res := decodeResult(t, reply)
	if !res.IsError || !strings.Contains(res.Content[0].Text, "no credential binding") {
		t.Fatalf("v2 call = %+v, want the binding refusal", res)
	}
	if e.resolveCalls.Load() != resolves || e.other.count() != 0 {
		t.Fatal("a credential was resolved for, or a request sent to, the new host")
	}
	if ref := e.auditFor(tenant, rid)["refused"]; ref == nil || ref.GetGate() != "binding" || ref.GetCredentialStatus() != "missing" || ref.GetSourceVersion() != 2 {
		t.Fatalf("invocation_refused = %v", ref)
	}
}

func TestBrokerFailuresFailClosed(t *testing.T) {
	e := newEnv(t, func(c *service.Config) { c.BrokerTimeout = 300 * time.Millisecond })
	e.demo()
	args := map[string]any{"to": "bob", "body": "hi"}
	tests := []struct {
		name, mode, credential, text string
	}{
		{"broker refuses", "deny", "denied", "could not be resolved"},
		{"material for other hosts", "foreign", "error", "may not be sent to this host"},
		{"broker down", "down", "error", "credential broker is unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.brokerMode.Store(tt.mode)
			if tt.mode == "down" {
				e.broker.Server.Close()
			}
			reply, rid := e.invoke(e.context(tenant, "dev"), "send_message", args)
			res := decodeResult(t, reply)
			if !res.IsError || !strings.Contains(res.Content[0].Text, tt.text) {
				t.Fatalf("result = %+v", res)
			}
			if e.api.count() != 0 {
				t.Fatal("the upstream was called without a resolved credential")
			}
			a := e.auditFor(tenant, rid)
			done := a["completed"]
			if done == nil || a["used"] != nil || done.GetGate() != "broker" || done.GetAdapterOutcome() != "error" || done.GetCredentialStatus() != tt.credential {
				t.Fatalf("audit = %v", a)
			}
		})
	}
	e.canary()
}

func TestCredentialUseNotPersistedMeansNoCall(t *testing.T) {
	e := newEnv(t)
	e.demo()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The AUDIT stream stops capturing credential_used: its append gets no
	// acknowledgement.
	s, err := e.n.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.Subjects = nil
	for _, k := range bus.AuditKinds() {
		if k.Kind != bus.KindCredentialUsed {
			cfg.Subjects = append(cfg.Subjects, "audit.*."+string(k.Kind))
		}
	}
	if _, err := e.n.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	reply, rid := e.invoke(e.context(tenant, "dev"), "send_message", map[string]any{"to": "bob", "body": "hi"})
	res := decodeResult(t, reply)
	if !res.IsError || !strings.Contains(res.Content[0].Text, "audit record could not be written") {
		t.Fatalf("result = %+v", res)
	}
	if e.api.count() != 0 {
		t.Fatal("the upstream was called although credential use was not recorded")
	}
	if done := e.auditFor(tenant, rid)["completed"]; done == nil || done.GetGate() != "audit" || done.GetAdapterOutcome() != "error" {
		t.Fatalf("invocation_completed = %v", done)
	}
}

func TestUpstreamOutcomes(t *testing.T) {
	e := newEnv(t, func(c *service.Config) { c.MaxResultBytes = 64 << 10 })
	open := []*controlv1.AuthAlternative{{}} // an empty alternative: no credential needed
	e.addSource(source{id: "src_out", approve: true, hosts: []string{e.api.host()}, prefixes: []string{"127.0.0.1/32"},
		tools: []*controlv1.ToolSpec{
			simpleTool("big_tool", e.api.base(), "/big", open),
			simpleTool("fail_tool", e.api.base(), "/fail", nil),
			simpleTool("open_tool", e.api.base(), "/search", open),
		}})
	e.sync()
	tests := []struct {
		tool, outcome, text string
		isError             bool
		status              uint32
	}{
		{"big_tool", "error", "result too large", true, 200},
		{"fail_tool", "upstream_error", "upstream answered HTTP 404", true, 404},
		{"open_tool", "ok", `"results":[]`, false, 200},
	}
	for _, tt := range tests {
		t.Run(tt.tool, func(t *testing.T) {
			reply, rid := e.invoke(e.context(tenant, "dev"), tt.tool, map[string]any{})
			res := decodeResult(t, reply)
			if res.IsError != tt.isError || !strings.Contains(res.Content[0].Text, tt.text) {
				t.Fatalf("result = %.300s", reply.GetResult())
			}
			a := e.auditFor(tenant, rid)
			done := a["completed"]
			if done == nil || a["used"] != nil || done.GetAdapterOutcome() != tt.outcome || done.GetUpstreamStatus() != tt.status ||
				done.GetCredentialStatus() != "not_required" {
				t.Fatalf("audit = %v", a)
			}
		})
	}
	if e.resolveCalls.Load() != 0 {
		t.Fatal("the broker was asked for a tool without auth")
	}
}

func TestKeepAliveReuse(t *testing.T) {
	e := newEnv(t)
	e.demo()
	ctx := e.context(tenant, "dev")
	const calls = 25
	for i := range calls {
		reply, _ := e.invoke(ctx, "get_message", map[string]any{"id": "m" + string(rune('a'+i%26))})
		if res := decodeResult(t, reply); res.IsError {
			t.Fatalf("call %d = %+v", i, res)
		}
	}
	if n := e.api.conns.Load(); n != 1 {
		t.Fatalf("%d calls opened %d upstream connections, want 1", calls, n)
	}
}

func TestRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	e.demo()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Undecodable request.
	msg, err := bus.SignRequest(e.keys.ID[bus.Edge], bus.AdapterInvoke.Subject(), []byte{0xff, 0xff, 0xff}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.edge.Conn.RequestMsgWithContext(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp.Data), "invalid_argument") {
		t.Fatalf("reply to junk = %q", resp.Data)
	}
	// Another service may not call invoke: the bus refuses it before the
	// adapter runs anything.
	pol := e.n.Runtime(t, e.keys, bus.Policy)
	msg, err = bus.SignRequest(e.keys.ID[bus.Policy], bus.AdapterInvoke.Subject(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if _, err := pol.Conn.RequestMsgWithContext(short, msg); err == nil {
		t.Fatal("the adapter answered a request from policy")
	}
	if e.api.count() != 0 || e.resolveCalls.Load() != 0 {
		t.Fatal("a bad request reached the broker or the upstream")
	}
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  service.Config
	}{
		{"no files", service.Config{}},
		{"production without a password file", service.Config{NATSURL: "nats://127.0.0.1:4222", IdentityFile: "/x", KeyringFile: "/y", Production: true}},
		{"negative limit", service.Config{Deps: service.Deps{Runtime: &bus.Runtime{Service: bus.Adapter}}, MaxArgumentBytes: -1}},
		{"result over the NATS payload", service.Config{Deps: service.Deps{Runtime: &bus.Runtime{Service: bus.Adapter}}, MaxResultBytes: 2 << 20}},
		{"too many redirects", service.Config{Deps: service.Deps{Runtime: &bus.Runtime{Service: bus.Adapter}}, MaxRedirects: 10}},
		{"timeouts beyond the request window", service.Config{Deps: service.Deps{Runtime: &bus.Runtime{Service: bus.Adapter}}, UpstreamTimeout: time.Minute}},
		{"another service's runtime", service.Config{Deps: service.Deps{Runtime: &bus.Runtime{Service: bus.Edge}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := service.New(tt.cfg); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
	// A missing identity file fails with a clear error, not a panic.
	_, err := service.New(service.Config{NATSURL: "nats://127.0.0.1:1", IdentityFile: t.TempDir() + "/none", KeyringFile: t.TempDir() + "/none"})
	if err == nil {
		t.Fatal("New joined the bus without an identity")
	}
}
