// Package e2e_test runs the whole system as real processes — embedded NATS
// JetStream, SpiceDB, ClickHouse 18.16 and the six services — and drives it
// the way an agent (mcp-go's client) and an operator (the operator API)
// would.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/tools/client"
	"github.com/mcpgw/mcpgw/tools/demoapi"
	"github.com/mcpgw/mcpgw/tools/devstack"
)

// busTap records every message on every subject.
type busTap struct {
	mu   sync.Mutex
	data bytes.Buffer
	n    int
}

func tapBus(t *testing.T, nc *nats.Conn) *busTap {
	t.Helper()
	tap := &busTap{}
	sub, err := nc.Subscribe(">", func(m *nats.Msg) {
		tap.mu.Lock()
		defer tap.mu.Unlock()
		tap.n++
		tap.data.WriteString(m.Subject)
		for k, v := range m.Header {
			tap.data.WriteString(k + ": " + strings.Join(v, ",") + "\n")
		}
		tap.data.Write(m.Data)
		tap.data.WriteByte('\n')
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return tap
}

const gateAPI = `openapi: 3.0.3
info: {title: Gate API, version: "1"}
servers: [{url: "%s"}]
components:
  securitySchemes:
    GateKey: {type: apiKey, in: header, name: X-Gate-Key}
security: [{GateKey: []}]
paths:
  /v1/%s:
    post:
      operationId: %s
      summary: A tool for a gate test
      requestBody:
        required: true
        content:
          application/json:
            schema: {type: object, properties: {note: {type: string}}}
      responses:
        "200": {description: ok}
`

// importGateTool imports a one-tool source and returns its ID and version.
func importGateTool(t *testing.T, op *client.Client, tenant, server, tool string) (string, uint32) {
	t.Helper()
	doc := fmt.Sprintf(gateAPI, server, tool, tool)
	res, err := op.Import(ctxT(t, 60*time.Second), tenant, tool+" api", "", strings.NewReader(doc))
	if err != nil {
		t.Fatalf("import %s: %v", tool, err)
	}
	return res.SourceID, res.Version
}

func TestSystem(t *testing.T) {
	stateDir, edgeAddr := t.TempDir(), freeAddr(t)
	s := startStack(t, stackOpts{stateDir: stateDir, edgeAddr: edgeAddr})
	tap := tapBus(t, s.AdminConn())
	op, opRec := opClient(t, s)
	// Key-issuing responses are the one exception to the canary rule, so
	// keys are issued through a client whose responses are not recorded.
	keyIssuer, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	demo := s.DemoAPI().Recorder()
	bindingID := s.DemoBindingID()
	var mcpRecs []*recorder
	secrets := map[string]secret.Value{}
	for k, v := range s.Secrets {
		secrets[k] = v
	}

	t.Run("the demo agent lists and calls send_message", func(t *testing.T) {
		c, rec := mcpClient(t, s, s.AgentKey, false)
		mcpRecs = append(mcpRecs, rec)
		res, err := c.ListTools(ctxT(t, 30*time.Second), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tools) != 1 || res.Tools[0].Name != devstack.DemoTool {
			t.Fatalf("tools/list = %s", mustJSON(res.Tools))
		}
		schema, _ := json.Marshal(res.Tools[0].InputSchema)
		var props struct {
			Properties map[string]any `json:"properties"`
		}
		_ = json.Unmarshal(schema, &props)
		var names []string
		for k := range props.Properties {
			names = append(names, k)
		}
		sort.Strings(names)
		if strings.Join(names, ",") != "body,template_id,to" {
			t.Fatalf("input schema properties = %v (%s)", names, schema)
		}
		if bytes.Contains(bytes.ToLower(schema), []byte("api-key")) || bytes.Contains(bytes.ToLower(schema), []byte("api_key")) {
			t.Fatalf("auth field in input schema: %s", schema)
		}
		demo.Reset()
		out, err := call(t, c, devstack.DemoTool, map[string]any{"to": "alice@example.com", "body": "hello from e2e"})
		if err != nil || out.IsError {
			t.Fatalf("tools/call: %v %s", err, mustJSON(out))
		}
		sc, _ := json.Marshal(out.StructuredContent)
		if !bytes.Contains(sc, []byte(`"queued"`)) {
			t.Fatalf("structuredContent = %s", sc)
		}
		got := demo.Requests()
		if len(got) != 1 || !got[0].KeyMatched {
			t.Fatalf("upstream requests: %d, key matched: %v", len(got), len(got) == 1 && got[0].KeyMatched)
		}
		// The upstream received no header the client sent.
		allowed := map[string]bool{"X-Api-Key": true, "Content-Type": true, "Accept": true, "User-Agent": true, "Content-Length": true, "Accept-Encoding": true}
		for h := range got[0].Header {
			if !allowed[h] {
				t.Errorf("upstream received header %q", h)
			}
		}
		if ua := got[0].Header.Get("User-Agent"); ua != "mcpgw-adapter" {
			t.Errorf("upstream User-Agent = %q, want the adapter's own", ua)
		}
		reqID := rec.lastRequestID()
		if reqID == "" {
			t.Fatal("no X-Request-Id on the MCP response")
		}
		rows := auditRows(t, op, devstack.Tenant, client.AuditQuery{RequestID: reqID}, func(r []client.AuditRow) bool {
			return hasRow(r, "invocation_completed") && hasRow(r, "credential_used") && hasRow(r, "credential_resolved")
		})
		if !hasRow(rows, "invocation_completed", "binding_id", bindingID, "credential_status", "resolved", "policy_outcome", "allowed", "adapter_outcome", "ok", "request_id", reqID) {
			t.Fatalf("audit trail lacks the completed invocation: %s", mustJSON(rows))
		}
		// The broker shows the demo's one binding slot as filled.
		slots, err := op.Slots(ctxT(t, 30*time.Second), devstack.Tenant, s.DemoSourceID())
		if err != nil || len(slots.Slots) != 1 || slots.Slots[0].Scheme != devstack.DemoScheme || slots.Slots[0].Strategy != "api_key" ||
			len(slots.Slots[0].Bindings) != 1 || slots.Slots[0].Bindings[0].BindingID != bindingID {
			t.Fatalf("binding slots: %v %s", err, mustJSON(slots))
		}
		// The same trail by binding ID.
		auditRows(t, op, devstack.Tenant, client.AuditQuery{BindingID: bindingID}, func(r []client.AuditRow) bool { return hasRow(r, "credential_used", "request_id", reqID) })
	})

	t.Run("an agent without a grant sees nothing and is refused by policy", func(t *testing.T) {
		k, err := keyIssuer.CreateAgentKey(ctxT(t, 30*time.Second), devstack.Tenant, "intruder", client.AgentKeyRequest{User: "mallory", Environment: "dev", Surface: "mcp"})
		if err != nil {
			t.Fatal(err)
		}
		secrets["intruder key"] = k.Key
		c, rec := mcpClient(t, s, k.Key, true)
		mcpRecs = append(mcpRecs, rec)
		if names := toolNames(t, c); len(names) != 0 {
			t.Fatalf("ungranted agent lists %v", names)
		}
		demo.Reset()
		_, err = call(t, c, devstack.DemoTool, map[string]any{"to": "x", "body": "y"})
		if !isUniformError(err) {
			t.Fatalf("call without grant: %v", err)
		}
		reqID := rec.lastRequestID()
		rows := auditRows(t, op, devstack.Tenant, client.AuditQuery{RequestID: reqID}, func(r []client.AuditRow) bool { return hasRow(r, "invocation_refused") })
		if !hasRow(rows, "invocation_refused", "gate", "policy", "policy_outcome", "denied") || hasRow(rows, "credential_resolved") || hasRow(rows, "credential_used") {
			t.Fatalf("audit for ungranted call: %s", mustJSON(rows))
		}
		if len(demo.Requests()) != 0 {
			t.Fatal("upstream was called")
		}
	})

	t.Run("each gate refuses and audits, resolving no credential", func(t *testing.T) {
		c, rec := mcpClient(t, s, s.AgentKey, false)
		mcpRecs = append(mcpRecs, rec)
		ctx := ctxT(t, 3*time.Minute)
		// Unapproved source.
		unapprovedSrc, _ := importGateTool(t, op, devstack.Tenant, s.DemoURL, "unapproved_tool")
		_ = unapprovedSrc
		// Unselected: get_message is approved but not selected.
		if _, err := op.AddGrant(ctx, devstack.Tenant, "get_message", "agent", devstack.DemoAgent); err != nil {
			t.Fatalf("grant get_message: %v", err)
		}
		// Host not allowlisted: approved with an allowlist that does not cover its server.
		hostSrc, hostV := importGateTool(t, op, devstack.Tenant, s.DemoURL, "host_tool")
		if _, err := op.Approve(ctx, devstack.Tenant, hostSrc, hostV, []string{"api.example.com"}, nil); err != nil {
			t.Fatal(err)
		}
		// Missing binding: approved, selected and granted, never bound.
		unboundSrc, unboundV := importGateTool(t, op, devstack.Tenant, s.DemoURL, "unbound_tool")
		demoHost := strings.TrimPrefix(s.DemoURL, "http://")
		if _, err := op.Approve(ctx, devstack.Tenant, unboundSrc, unboundV, []string{demoHost}, []string{"127.0.0.1/32"}); err != nil {
			t.Fatal(err)
		}
		for src, tool := range map[string]string{hostSrc: "host_tool", unboundSrc: "unbound_tool"} {
			if _, err := op.Select(ctx, devstack.Tenant, src, []string{tool}); err != nil {
				t.Fatal(err)
			}
			if _, err := op.AddGrant(ctx, devstack.Tenant, tool, "agent", devstack.DemoAgent); err != nil {
				t.Fatal(err)
			}
		}
		big := strings.Repeat("x", 300<<10)
		cases := []struct {
			name, tool, gate string
			args             map[string]any
			uniform          bool
		}{
			{"unapproved source", "unapproved_tool", "approval", map[string]any{"note": "x"}, true},
			{"unselected operation", "get_message", "selection", map[string]any{"id": "msg_1"}, true},
			{"host not allowlisted", "host_tool", "host", map[string]any{"note": "x"}, true},
			{"invalid arguments", devstack.DemoTool, "schema", map[string]any{"body": "no recipient"}, false},
			{"oversize arguments", devstack.DemoTool, "size", map[string]any{"to": "a", "body": "b", "template_id": big}, false},
			{"missing binding", "unbound_tool", "binding", map[string]any{"note": "x"}, false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				demo.Reset()
				res, err := call(t, c, tc.tool, tc.args)
				if tc.uniform {
					if !isUniformError(err) {
						t.Fatalf("want the uniform error, got %v %s", err, mustJSON(res))
					}
				} else if err != nil || res == nil || !res.IsError {
					t.Fatalf("want an isError result, got %v %s", err, mustJSON(res))
				}
				reqID := rec.lastRequestID()
				rows := auditRows(t, op, devstack.Tenant, client.AuditQuery{RequestID: reqID}, func(r []client.AuditRow) bool { return hasRow(r, "invocation_refused") })
				if !hasRow(rows, "invocation_refused", "gate", tc.gate) {
					t.Fatalf("audit: %s", mustJSON(rows))
				}
				if hasRow(rows, "credential_resolved") || hasRow(rows, "credential_used") {
					t.Fatalf("a credential was resolved: %s", mustJSON(rows))
				}
				if tc.gate == "binding" && !hasRow(rows, "invocation_refused", "credential_status", "missing") {
					t.Fatalf("missing binding not recorded as missing: %s", mustJSON(rows))
				}
				if n := len(demo.Requests()); n != 0 {
					t.Fatalf("upstream called %d times", n)
				}
			})
		}
		t.Run("over the edge's body limit", func(t *testing.T) {
			_, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": strings.Repeat("y", 1<<20)})
			if err == nil {
				t.Fatal("a 1 MiB request was accepted")
			}
		})
	})

	t.Run("two tenants with a tool of the same name stay apart", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Minute)
		acmeKey := secret.New([]byte("acme-upstream-key-7f3e9a"))
		secrets["acme upstream key"] = acmeKey
		acmeAPI, err := demoapi.New(demoapi.Config{APIKey: acmeKey})
		if err != nil {
			t.Fatal(err)
		}
		acmeSrv := httptest.NewServer(acmeAPI.Handler())
		t.Cleanup(acmeSrv.Close)
		acmeHost := strings.TrimPrefix(acmeSrv.URL, "http://")
		res, err := op.Import(ctx, "acme", "Acme Messages", "", bytes.NewReader(demoapi.OpenAPI(acmeSrv.URL)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.Approve(ctx, "acme", res.SourceID, res.Version, []string{acmeHost}, []string{"127.0.0.1/32"}); err != nil {
			t.Fatal(err)
		}
		if _, err := op.Select(ctx, "acme", res.SourceID, []string{devstack.DemoTool}); err != nil {
			t.Fatal(err)
		}
		ref, err := op.PutSecret(ctx, "acme", "acme-key", acmeKey)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.CreateBinding(ctx, "acme", client.Binding{Name: "acme", Strategy: "api_key", Placement: client.Placement{In: "header", Name: "X-API-Key"},
			SecretRef: ref, Hosts: []string{acmeHost}, Environment: "dev", SourceID: res.SourceID, Scheme: devstack.DemoScheme}); err != nil {
			t.Fatal(err)
		}
		// The demo tenant's secret reference is refused in acme.
		demoRef := "local://demo/" + devstack.DemoSecret + "#1"
		if _, err := op.CreateBinding(ctx, "acme", client.Binding{Name: "steal", Strategy: "api_key", Placement: client.Placement{In: "header", Name: "X-API-Key"},
			SecretRef: demoRef, Hosts: []string{acmeHost}, Environment: "dev", SourceID: res.SourceID, Scheme: devstack.DemoScheme}); err == nil {
			t.Fatal("acme bound the demo tenant's secret")
		}
		if _, err := op.AddGrant(ctx, "acme", devstack.DemoTool, "agent", "acme-agent"); err != nil {
			t.Fatal(err)
		}
		k, err := keyIssuer.CreateAgentKey(ctx, "acme", "acme-agent", client.AgentKeyRequest{User: "ann", Environment: "dev", Surface: "mcp"})
		if err != nil {
			t.Fatal(err)
		}
		secrets["acme agent key"] = k.Key
		for _, legacy := range []bool{false, true} {
			t.Run(fmt.Sprintf("session-based=%v", legacy), func(t *testing.T) {
				ac, rec := mcpClient(t, s, k.Key, legacy)
				dc, drec := mcpClient(t, s, s.AgentKey, legacy)
				mcpRecs = append(mcpRecs, rec, drec)
				if names := toolNames(t, ac); strings.Join(names, ",") != devstack.DemoTool {
					t.Fatalf("acme lists %v", names)
				}
				demo.Reset()
				before := len(acmeAPI.Recorder().Requests())
				if out, err := call(t, ac, devstack.DemoTool, map[string]any{"to": "a", "body": "from acme"}); err != nil || out.IsError {
					t.Fatalf("acme call: %v %s", err, mustJSON(out))
				}
				if len(demo.Requests()) != 0 || len(acmeAPI.Recorder().Requests()) != before+1 {
					t.Fatal("acme's call did not reach exactly acme's upstream")
				}
				if out, err := call(t, dc, devstack.DemoTool, map[string]any{"to": "d", "body": "from demo"}); err != nil || out.IsError {
					t.Fatalf("demo call: %v %s", err, mustJSON(out))
				}
				if len(demo.Requests()) != 1 || len(acmeAPI.Recorder().Requests()) != before+1 {
					t.Fatal("demo's call did not reach exactly demo's upstream")
				}
			})
		}
	})

	t.Run("a compromised service cannot widen what it holds", func(t *testing.T) {
		ctx := ctxT(t, 3*time.Minute)
		// Act as the edge, with the edge's own NATS user and signing key.
		edge, err := bus.Open(ctx, s.RuntimeConfig(bus.Edge))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(edge.Close)
		t.Run("a context not signed by policy is refused by the adapter", func(t *testing.T) {
			forged := &commonv1.Context{Tenant: devstack.Tenant, Agent: devstack.DemoAgent, User: devstack.DemoUser, Environment: "dev", Surface: "mcp",
				IssuedAt: timestamppb.Now(), ExpiresAt: timestamppb.New(time.Now().Add(30 * time.Second))}
			raw, _ := protoMarshal(forged)
			sc := &commonv1.SignedContext{Context: raw, Signature: edge.Identity.Sign(append([]byte("mcpgw/context/v1\x00"), raw...))}
			var reply rpcv1.InvokeReply
			err := edge.Client.Call(bus.WithMeta(ctx, bus.Meta{RequestID: bus.NewID("req_"), Tenant: devstack.Tenant}), bus.AdapterInvoke,
				&rpcv1.InvokeRequest{Context: sc, Tool: devstack.DemoTool, Arguments: []byte(`{"to":"a","body":"b"}`)}, &reply)
			if err != nil {
				t.Fatal(err)
			}
			if reply.GetError().GetCode() != "tool_not_permitted" || len(reply.GetResult()) != 0 {
				t.Fatalf("forged context: %+v", &reply)
			}
		})
		t.Run("an approval signed by the importer is ignored", func(t *testing.T) {
			c, rec := mcpClient(t, s, s.AgentKey, false)
			mcpRecs = append(mcpRecs, rec)
			src, v := importGateTool(t, op, devstack.Tenant, s.DemoURL, "sneaky_tool")
			importer, err := bus.ReadIdentityFile(bus.Importer, s.RuntimeConfig(bus.Importer).IdentityFile)
			if err != nil {
				t.Fatal(err)
			}
			// The importer knows the real digest of its own tool.
			digest := toolDigest(t, s, src, v, "sneaky_tool")
			for _, ev := range []struct {
				subj string
				msg  bus.Message
			}{
				{"ctl.demo.sourcepolicy." + src + ".SourceVersionApproved", &controlv1.SourceVersionApproved{Meta: forgedMeta("sourcepolicy", src, "SourceVersionApproved", 1), SourceId: src, Version: v, Tools: []*controlv1.ApprovedTool{{Name: "sneaky_tool", Digest: digest}}}},
				{"ctl.demo.sourcepolicy." + src + ".OperationsSelected", &controlv1.OperationsSelected{Meta: forgedMeta("sourcepolicy", src, "OperationsSelected", 2), SourceId: src, Tools: []string{"sneaky_tool"}}},
			} {
				m, err := bus.SignEvent(importer, ev.subj, ev.msg)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.AdminConn().PublishMsg(m); err != nil {
					t.Fatal(err)
				}
			}
			_ = s.AdminConn().Flush()
			_, err = call(t, c, "sneaky_tool", map[string]any{"note": "x"})
			if !isUniformError(err) {
				t.Fatalf("tool approved by the importer was callable: %v", err)
			}
			rows := auditRows(t, op, devstack.Tenant, client.AuditQuery{RequestID: rec.lastRequestID()}, func(r []client.AuditRow) bool { return hasRow(r, "invocation_refused") })
			if !hasRow(rows, "invocation_refused", "gate", "approval") {
				t.Fatalf("audit: %s", mustJSON(rows))
			}
		})
		t.Run("a credential never goes to a host its binding manager did not confirm", func(t *testing.T) {
			var evilHits sync.Map
			evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				evilHits.Store(time.Now().UnixNano(), r.Header.Clone())
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"id":"msg_evil","status":"queued"}`))
			}))
			t.Cleanup(evil.Close)
			// The importer proposes a new server for the approved demo source.
			res, err := op.Import(ctx, devstack.Tenant, "Demo Messages API", s.DemoSourceID(), bytes.NewReader(demoapi.OpenAPI(evil.URL)))
			if err != nil {
				t.Fatal(err)
			}
			// The review names what must be bound: the demo's one slot, already
			// filled by its binding.
			var rv struct {
				Slots []struct {
					Scheme   string
					Strategy string
					Bindings []struct {
						BindingID string `json:"binding_id"`
					}
				}
			}
			if err := json.Unmarshal(res.Review, &rv); err != nil || len(rv.Slots) != 1 || rv.Slots[0].Scheme != devstack.DemoScheme ||
				rv.Slots[0].Strategy != "api_key" || len(rv.Slots[0].Bindings) != 1 || rv.Slots[0].Bindings[0].BindingID != bindingID {
				t.Fatalf("review slots: %v %s", err, res.Review)
			}
			c, rec := mcpClient(t, s, s.AgentKey, false)
			mcpRecs = append(mcpRecs, rec)
			demo.Reset()
			if out, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": "still v1"}); err != nil || out.IsError {
				t.Fatalf("call after an unapproved proposal: %v %s", err, mustJSON(out))
			}
			if len(demo.Requests()) != 1 {
				t.Fatal("the approved upstream was not called")
			}
			// Even approved (with the new host allowlisted), the binding's
			// confirmed hosts do not include it: the binding gate refuses.
			evilHost := strings.TrimPrefix(evil.URL, "http://")
			if _, err := op.Approve(ctx, devstack.Tenant, res.SourceID, res.Version, []string{evilHost}, []string{"127.0.0.1/32"}); err != nil {
				t.Fatal(err)
			}
			if _, err := op.Select(ctx, devstack.Tenant, res.SourceID, []string{devstack.DemoTool}); err != nil {
				t.Fatal(err)
			}
			out, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": "to evil?"})
			if err != nil || !out.IsError {
				t.Fatalf("call to an unconfirmed host: %v %s", err, mustJSON(out))
			}
			n := 0
			evilHits.Range(func(any, any) bool { n++; return true })
			if n != 0 {
				t.Fatalf("the unconfirmed host received %d requests", n)
			}
			rows := auditRows(t, op, devstack.Tenant, client.AuditQuery{RequestID: rec.lastRequestID()}, func(r []client.AuditRow) bool { return hasRow(r, "invocation_refused") })
			if !hasRow(rows, "invocation_refused", "gate", "binding") || hasRow(rows, "credential_resolved") {
				t.Fatalf("audit: %s", mustJSON(rows))
			}
			// Restore: approve version 1 again so later steps run against it.
			if _, err := op.Approve(ctx, devstack.Tenant, s.DemoSourceID(), 1, []string{strings.TrimPrefix(s.DemoURL, "http://")}, []string{"127.0.0.1/32"}); err != nil {
				t.Fatal(err)
			}
			if _, err := op.Select(ctx, devstack.Tenant, s.DemoSourceID(), []string{devstack.DemoTool}); err != nil {
				t.Fatal(err)
			}
		})
	})

	t.Run("bad input gets a clear error", func(t *testing.T) {
		ctx := ctxT(t, time.Minute)
		_, err := op.Import(ctx, devstack.Tenant, "broken", "", strings.NewReader("openapi: 3.0.3\ninfo: [unclosed\n"))
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
			t.Fatalf("malformed description: %v", err)
		}
		if _, err := op.Approve(ctx, devstack.Tenant, "src_doesnotexist", 1, nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			t.Fatalf("unknown source: %v", err)
		}
		for _, auth := range []string{"", "Bearer mgw_wrong-key-123456789"} {
			req, _ := http.NewRequest(http.MethodPost, s.MCPURL(), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), `Bearer realm="mcpgw"`) {
				t.Fatalf("auth %q: %d %q", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	})

	t.Run("fail closed when the broker or SpiceDB is down", func(t *testing.T) {
		c, rec := mcpClient(t, s, s.AgentKey, false)
		mcpRecs = append(mcpRecs, rec)
		if err := s.StopService(bus.Broker); err != nil {
			t.Fatal(err)
		}
		demo.Reset()
		out, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": "broker down"})
		if err == nil && (out == nil || !out.IsError) {
			t.Fatalf("call with the broker down succeeded: %s", mustJSON(out))
		}
		if len(demo.Requests()) != 0 {
			t.Fatal("upstream called without a credential")
		}
		if err := s.StartService(bus.Broker); err != nil {
			t.Fatal(err)
		}
		eventually(t, "calls work again after the broker restarts", func() error {
			out, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": "broker back"})
			if err != nil || out.IsError {
				return fmt.Errorf("%v %s", err, mustJSON(out))
			}
			return nil
		})

		if err := s.StopSpiceDB(); err != nil {
			t.Fatal(err)
		}
		// Decisions made before the outage may be served from policy's
		// decision cache for its short TTL; after that every call is refused.
		eventually(t, "calls are refused with SpiceDB down", func() error {
			demo.Reset()
			if _, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": "spicedb down"}); !isUniformError(err) {
				return fmt.Errorf("call with SpiceDB down: %v", err)
			}
			return nil
		})
		rows := auditRows(t, op, devstack.Tenant, client.AuditQuery{RequestID: rec.lastRequestID()}, func(r []client.AuditRow) bool { return hasRow(r, "invocation_refused") })
		if !hasRow(rows, "invocation_refused", "gate", "policy", "policy_outcome", "unavailable") {
			t.Fatalf("audit: %s", mustJSON(rows))
		}
		if len(demo.Requests()) != 0 {
			t.Fatal("upstream called with SpiceDB down")
		}
		eventually(t, "tools/list fails closed with SpiceDB down", func() error {
			if res, err := c.ListTools(ctxT(t, 30*time.Second), mcp.ListToolsRequest{}); err == nil {
				return fmt.Errorf("tools/list answered %d tools", len(res.Tools))
			}
			return nil
		})
		if err := s.StartSpiceDB(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		eventually(t, "policy rebuilds SpiceDB and calls work", func() error {
			out, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": "spicedb back"})
			if err != nil || out.IsError {
				return fmt.Errorf("%v %s", err, mustJSON(out))
			}
			return nil
		})
	})

	t.Run("no secret leaks anywhere", func(t *testing.T) {
		// Audit rows of every kind, through the operator API (recorded).
		auditRows(t, op, devstack.Tenant, client.AuditQuery{BindingID: bindingID, Limit: 1000}, func(r []client.AuditRow) bool { return len(r) > 0 })
		for name, b := range readDirFiles(t, s.LogDir()) {
			assertAbsent(t, "log "+name, b, secrets)
		}
		tap.mu.Lock()
		busData := append([]byte(nil), tap.data.Bytes()...)
		n := tap.n
		tap.mu.Unlock()
		if n == 0 {
			t.Fatal("no NATS message was observed")
		}
		assertAbsent(t, "NATS messages", busData, secrets)
		for i, r := range mcpRecs {
			assertAbsent(t, fmt.Sprintf("MCP responses of client %d", i), r.all(), secrets)
		}
		assertAbsent(t, "operator API responses", opRec.all(), secrets)
		pids := s.PIDs()
		if len(pids) != 8 {
			t.Fatalf("expected 8 processes (six services, SpiceDB, ClickHouse), got %v", pids)
		}
		for name, pid := range pids {
			cl := cmdline(pid)
			if len(cl) == 0 {
				t.Fatalf("no command line for %s (pid %d)", name, pid)
			}
			assertAbsent(t, "command line of "+name, cl, secrets)
		}
		// The binding's secret is in no file under the state dir, except the
		// demo API's own key file (the upstream's, read by the upstream).
		upstream := map[string]secret.Value{"demo api key": s.Secrets["demo api key"], "acme upstream key": secrets["acme upstream key"]}
		for name, b := range readDirFiles(t, stateDir) {
			if strings.HasSuffix(name, "/secrets/demoapi.key") {
				continue
			}
			assertAbsent(t, "file "+name, b, upstream)
		}
	})

	t.Run("after a restart the tool, binding and grant are rebuilt from CONTROL", func(t *testing.T) {
		s.Stop()
		s2 := startStack(t, stackOpts{stateDir: stateDir, edgeAddr: edgeAddr})
		if !s2.AgentKey.Equal(s.AgentKey) {
			t.Fatal("the demo agent key changed across a restart")
		}
		c, _ := mcpClient(t, s2, s2.AgentKey, false)
		eventually(t, "the restarted stack serves the demo tool", func() error {
			if names := toolNames(t, c); strings.Join(names, ",") != devstack.DemoTool {
				return fmt.Errorf("tools %v", names)
			}
			out, err := call(t, c, devstack.DemoTool, map[string]any{"to": "a", "body": "after restart"})
			if err != nil || out.IsError {
				return fmt.Errorf("%v %s", err, mustJSON(out))
			}
			return nil
		})
	})
}

func forgedMeta(agg, id, event string, version uint64) *commonv1.EventMeta {
	return &commonv1.EventMeta{Id: bus.NewID("evt_"), Type: "mcpgw.control.v1." + event, Time: timestamppb.Now(), Tenant: devstack.Tenant,
		Aggregate: agg, AggregateId: id, AggregateVersion: version}
}

func protoMarshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// toolDigest reads a committed version's tool from CONTROL (as any service
// can) and returns its digest.
func toolDigest(t *testing.T, s *devstack.Stack, src string, v uint32, name string) []byte {
	t.Helper()
	ctx := ctxT(t, time.Minute)
	rt, err := bus.Open(ctx, s.RuntimeConfig(bus.Audit))
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	proj, err := rt.NewProjection()
	if err != nil {
		t.Fatal(err)
	}
	cat := catalog.New()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = proj.Run(pctx, cat.Apply) }()
	select {
	case <-proj.Ready():
	case <-ctx.Done():
		t.Fatal("catalog not ready")
	}
	ver, ok := cat.Version(devstack.Tenant, src, v)
	if !ok || ver.Tools[name] == nil {
		t.Fatalf("version %d of %s not found", v, src)
	}
	d, err := catalog.ToolDigest(ver.Tools[name])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond) // polling interval of a bounded wait
	}
	t.Fatalf("%s: %v", what, err)
}
