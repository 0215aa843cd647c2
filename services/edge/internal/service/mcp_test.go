package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
)

type clientKind struct {
	name   string
	legacy bool
}

// Both protocol eras: a session-based 2025-11-25 client and a sessionless
// 2026-07-28 client.
var clientKinds = []clientKind{{"session-2025-11-25", true}, {"sessionless-2026-07-28", false}}

// mcpClient connects an mcp-go client to the edge with a bearer credential.
func (h *harness) mcpClient(t *testing.T, credential string, k clientKind, opts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	hc := &http.Client{Transport: h.http.Transport}
	opts = append([]transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + credential}),
		transport.WithHTTPBasicClient(hc),
	}, opts...)
	var c *client.Client
	if k.legacy {
		tr, err := transport.NewStreamableHTTP(h.url+"/mcp", opts...)
		if err != nil {
			t.Fatal(err)
		}
		c = client.NewClient(tr, client.WithLegacyProtocolOnly())
	} else {
		var err error
		if c, err = client.NewStreamableHttpClient(h.url+"/mcp", opts...); err != nil {
			t.Fatal(err)
		}
	}
	// Start's context lives as long as the client: it carries the GET stream.
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	init := mcpgo.InitializeRequest{}
	init.Params.ClientInfo = mcpgo.Implementation{Name: "edge-test", Version: "1.0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if k.legacy {
		if c.GetSessionId() == "" || c.ProtocolVersion() != mcpgo.ProtocolVersion20251125 {
			t.Fatalf("legacy client: session %q, protocol %q", c.GetSessionId(), c.ProtocolVersion())
		}
	} else if c.GetSessionId() != "" || c.ProtocolVersion() != mcpgo.ProtocolVersion20260728 {
		t.Fatalf("sessionless client: session %q, protocol %q", c.GetSessionId(), c.ProtocolVersion())
	}
	return c
}

func toolNames(r *mcpgo.ListToolsResult) []string {
	var names []string
	for _, t := range r.Tools {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names
}

func TestMCP(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	for _, k := range clientKinds {
		t.Run(k.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a := h.mcpClient(t, h.agentA.credential, k)
			b := h.mcpClient(t, h.agentB.credential, k)

			t.Run("list returns exactly the caller's visible set", func(t *testing.T) {
				res, err := a.ListTools(ctx, mcpgo.ListToolsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if got := toolNames(res); !slices.Equal(got, []string{"get_pet", "list_pets"}) {
					t.Fatalf("tenant-a sees %v", got)
				}
				for _, tool := range res.Tools {
					if tool.Name == "list_pets" {
						if tool.Annotations.ReadOnlyHint == nil || !*tool.Annotations.ReadOnlyHint {
							t.Fatal("read-only hint lost")
						}
					}
				}
			})
			t.Run("tenants see only their own tools", func(t *testing.T) {
				res, err := b.ListTools(ctx, mcpgo.ListToolsRequest{})
				if err != nil {
					t.Fatal(err)
				}
				if got := toolNames(res); !slices.Equal(got, []string{"list_invoices"}) {
					t.Fatalf("tenant-b sees %v", got)
				}
			})
			t.Run("call is forwarded with context and arguments", func(t *testing.T) {
				before := len(h.invoked())
				res, err := a.CallTool(ctx, callReq("list_pets", map[string]any{"limit": 2}))
				if err != nil {
					t.Fatal(err)
				}
				text := res.Content[0].(mcpgo.TextContent).Text
				if text != `called list_pets with {"limit":2}` {
					t.Fatalf("result %q", text)
				}
				inv := h.invoked()[before]
				if inv.ctx.GetTenant() != "tenant-a" || inv.ctx.GetAgent() != "agent-a" {
					t.Fatalf("adapter saw context %v", inv.ctx)
				}
				if !strings.HasPrefix(inv.req.GetRequestId(), "req_") || inv.meta.RequestID != inv.req.GetRequestId() || inv.meta.Tenant != "tenant-a" {
					t.Fatalf("request id %q, meta %+v", inv.req.GetRequestId(), inv.meta)
				}
				if inv.ctx.GetReportedSurface() != "edge-test/1.0" {
					t.Fatalf("reported surface %q", inv.ctx.GetReportedSurface())
				}
			})
			t.Run("unlisted tool is still forwarded and refused uniformly", func(t *testing.T) {
				for _, tool := range []string{"list_invoices", "no_such_tool"} {
					before := len(h.invoked())
					_, err := a.CallTool(ctx, callReq(tool, nil))
					if !errors.Is(err, mcpgo.ErrInvalidParams) || !strings.Contains(err.Error(), "unknown or not permitted tool") {
						t.Fatalf("call %s: error %v", tool, err)
					}
					inv := h.invoked()
					if len(inv) != before+1 || inv[before].req.GetTool() != tool {
						t.Fatalf("call of %s did not reach the adapter", tool)
					}
				}
			})
			t.Run("adapter errors are errors", func(t *testing.T) {
				_, err := a.CallTool(ctx, callReq("broken_tool", nil))
				if !errors.Is(err, mcpgo.ErrInternalError) || !strings.Contains(err.Error(), "credential service unavailable") {
					t.Fatalf("error %v", err)
				}
			})
			t.Run("adapter timeout is an error, never a result", func(t *testing.T) {
				res, err := a.CallTool(ctx, callReq("slow_tool", nil))
				if err == nil || !errors.Is(err, mcpgo.ErrInternalError) {
					t.Fatalf("slow call: result %v, error %v", res, err)
				}
			})
			t.Run("visible set unavailable fails closed", func(t *testing.T) {
				h.setVisibleErr(true)
				defer h.setVisibleErr(false)
				res, err := a.ListTools(ctx, mcpgo.ListToolsRequest{})
				if err == nil {
					t.Fatalf("list succeeded with %v", res)
				}
			})
		})
	}
}

func callReq(name string, args map[string]any) mcpgo.CallToolRequest {
	var r mcpgo.CallToolRequest
	r.Params.Name = name
	if args != nil {
		r.Params.Arguments = args
	}
	return r
}

func TestMCPSessionBoundToCredential(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a := h.mcpClient(t, h.agentA.credential, clientKinds[0])
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	hdr := map[string]string{"Content-Type": "application/json", "Mcp-Session-Id": a.GetSessionId(), "Mcp-Protocol-Version": mcpgo.ProtocolVersion20251125}
	if code, _, _ := h.do("POST", "/mcp", h.agentB.credential, strings.NewReader(body), hdr); code != http.StatusNotFound {
		t.Fatalf("another credential on a's session: status %d, want 404", code)
	}
	if code, _, b := h.do("POST", "/mcp", h.agentA.credential, strings.NewReader(body), hdr); code != http.StatusOK || !strings.Contains(string(b), "list_pets") {
		t.Fatalf("owner on its session: status %d body %s", code, b)
	}
	hdr["Mcp-Session-Id"] = "mcp-session-00000000000000000000000000000000"
	if code, _, _ := h.do("POST", "/mcp", h.agentA.credential, strings.NewReader(body), hdr); code != http.StatusNotFound {
		t.Fatalf("unknown session: status %d, want 404", code)
	}
	// A legacy client that sends no session is served statelessly.
	delete(hdr, "Mcp-Session-Id")
	if code, _, b := h.do("POST", "/mcp", h.agentA.credential, strings.NewReader(body), hdr); code != http.StatusOK || !strings.Contains(string(b), "list_pets") {
		t.Fatalf("no session: status %d body %s", code, b)
	}
}

func TestMCPRefusals(t *testing.T) {
	h := newHarness(t, harnessOpts{mcpBodyLimit: 4096})
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	wantAuth := `Bearer realm="mcpgw", resource_metadata="` + h.url + `/.well-known/oauth-protected-resource"`
	tests := []struct {
		name       string
		credential string
	}{
		{"missing credential", ""},
		{"unknown credential", "mgw_" + randomHex(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, hdr, _ := h.do("POST", "/mcp", tt.credential, strings.NewReader(list), jsonHdr)
			if code != http.StatusUnauthorized || hdr.Get("WWW-Authenticate") != wantAuth {
				t.Fatalf("status %d, WWW-Authenticate %q", code, hdr.Get("WWW-Authenticate"))
			}
			if !strings.HasPrefix(hdr.Get(ingress.HeaderRequestID), "req_") {
				t.Fatalf("request id %q", hdr.Get(ingress.HeaderRequestID))
			}
			waitFor(t, 10*time.Second, "refusal of "+hdr.Get(ingress.HeaderRequestID), func() bool {
				for _, r := range h.refusals(ingress.UnattributedTenant) {
					if r.GetMeta().GetRequestId() == hdr.Get(ingress.HeaderRequestID) {
						if r.GetReasonCode() != ingress.ReasonUnauthenticated {
							t.Fatalf("reason %q", r.GetReasonCode())
						}
						if tt.credential != "" && r.GetPrincipal().GetCredentialFingerprint() != reqctx.Fingerprint([]byte(tt.credential)) {
							t.Fatal("refusal lacks the credential's fingerprint")
						}
						return true
					}
				}
				return false
			})
		})
	}
	t.Run("mcp-go client sees the authorization error", func(t *testing.T) {
		tr, err := transport.NewStreamableHTTP(h.url+"/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer wrong"}))
		if err != nil {
			t.Fatal(err)
		}
		c := client.NewClient(tr, client.WithLegacyProtocolOnly())
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Start(ctx)
		_, err = c.Initialize(ctx, mcpgo.InitializeRequest{})
		var authErr *transport.AuthorizationRequiredError
		if !errors.As(err, &authErr) || authErr.ResourceMetadataURL != h.url+"/.well-known/oauth-protected-resource" {
			t.Fatalf("initialize error %v", err)
		}
	})
	t.Run("body over the limit", func(t *testing.T) {
		big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_pets","arguments":{"pad":"` + strings.Repeat("x", 5000) + `"}}}`
		before := len(h.invoked())
		code, _, _ := h.do("POST", "/mcp", h.agentA.credential, strings.NewReader(big), jsonHdr)
		if code != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413", code)
		}
		// Chunked (no Content-Length) too.
		req, _ := http.NewRequest("POST", h.url+"/mcp", struct{ *strings.Reader }{strings.NewReader(big)})
		req.Header.Set("Authorization", "Bearer "+h.agentA.credential)
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("chunked: status %d, want 413", resp.StatusCode)
		}
		if len(h.invoked()) != before {
			t.Fatal("an oversized call reached the adapter")
		}
		h.waitRefusal(ingress.UnattributedTenant, ingress.ReasonTooLarge)
	})
	t.Run("forged context from policy fails closed", func(t *testing.T) {
		before := len(h.invoked())
		code, _, _ := h.do("POST", "/mcp", h.forged.credential, strings.NewReader(list), jsonHdr)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", code)
		}
		if len(h.invoked()) != before {
			t.Fatal("call reached the adapter")
		}
	})
	t.Run("dns rebinding", func(t *testing.T) {
		req, _ := http.NewRequest("POST", h.url+"/mcp", strings.NewReader(list))
		req.Host = "evil.example"
		req.Header.Set("Authorization", "Bearer "+h.agentA.credential)
		req.Header.Set("Content-Type", "application/json")
		resp, err := h.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403", resp.StatusCode)
		}
	})
	t.Run("policy down fails closed", func(t *testing.T) {
		h.policyRT.Close()
		// A credential not yet cached must be verified by policy.
		code, _, _ := h.do("POST", "/mcp", h.agentB.credential, strings.NewReader(list), jsonHdr)
		if code != http.StatusServiceUnavailable {
			t.Fatalf("status %d, want 503", code)
		}
	})
}

func TestMCPRateLimit(t *testing.T) {
	h := newHarness(t, harnessOpts{rate: 0.001, burst: 2})
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	hdr := map[string]string{"Content-Type": "application/json"}
	for i := range 2 {
		if code, _, _ := h.do("POST", "/mcp", h.agentA.credential, strings.NewReader(list), hdr); code != http.StatusOK {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	code, rh, _ := h.do("POST", "/mcp", h.agentA.credential, strings.NewReader(list), hdr)
	if code != http.StatusTooManyRequests || rh.Get("Retry-After") == "" {
		t.Fatalf("status %d, want 429 with Retry-After", code)
	}
	r := h.waitRefusal(ingress.UnattributedTenant, ingress.ReasonRateLimited)
	if r.GetPrincipal().GetCredentialFingerprint() != reqctx.Fingerprint([]byte(h.agentA.credential)) {
		t.Fatal("rate-limit refusal lacks the fingerprint")
	}
	// Another credential has its own bucket.
	if code, _, _ := h.do("POST", "/mcp", h.agentB.credential, strings.NewReader(list), hdr); code != http.StatusOK {
		t.Fatalf("other credential: status %d", code)
	}
}

func TestMCPListChanged(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var legacyGot, modernGot, otherGot atomic.Int32
	legacy := h.mcpClient(t, h.agentA.credential, clientKinds[0], transport.WithContinuousListening())
	legacy.OnNotification(func(n mcpgo.JSONRPCNotification) {
		if n.Method == mcpgo.MethodNotificationToolsListChanged {
			legacyGot.Add(1)
		}
	})
	modern := h.mcpClient(t, h.agentA.credential, clientKinds[1])
	modern.OnNotification(func(n mcpgo.JSONRPCNotification) {
		if n.Method == mcpgo.MethodNotificationToolsListChanged {
			modernGot.Add(1)
		}
	})
	stop, err := modern.ListenAsync(ctx, mcpgo.SubscriptionFilter{ToolsListChanged: true}, func(err error) { t.Errorf("listen: %v", err) })
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer stop()
	other := h.mcpClient(t, h.agentB.credential, clientKinds[0], transport.WithContinuousListening())
	other.OnNotification(func(n mcpgo.JSONRPCNotification) {
		if n.Method == mcpgo.MethodNotificationToolsListChanged {
			otherGot.Add(1)
		}
	})
	// Let both streams be watched and primed before the change.
	waitFor(t, 10*time.Second, "streams watched", func() bool {
		return h.watched() >= 3
	})
	h.setVisible("tenant-a", append(h.visibleOf("tenant-a"), &rpcv1.VisibleTool{Name: "delete_pet", InputSchema: []byte(`{"type":"object"}`)}))
	waitFor(t, 10*time.Second, "list_changed on both eras", func() bool {
		return legacyGot.Load() > 0 && modernGot.Load() > 0
	})
	res, err := legacy.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil || !slices.Contains(toolNames(res), "delete_pet") {
		t.Fatalf("list after change: %v %v", res, err)
	}
	if otherGot.Load() != 0 {
		t.Fatal("another tenant's stream was told of tenant-a's change")
	}
}

func (h *harness) visibleOf(tenant string) []*rpcv1.VisibleTool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*rpcv1.VisibleTool(nil), h.visible[tenant]...)
}

// watched counts visible-set requests policy answered for open streams:
// each watched stream is primed with one.
func (h *harness) watched() int {
	return strings.Count(h.logs.String(), `"msg":"stream watched"`)
}

func TestMCPModernHeaderChecks(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	tests := []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"valid", map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}, http.StatusOK},
		{"missing Mcp-Method", map[string]string{"Mcp-Protocol-Version": "2026-07-28"}, http.StatusBadRequest},
		{"version mismatch", map[string]string{"Mcp-Protocol-Version": "2025-11-25", "Mcp-Method": "tools/list"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.hdr["Content-Type"] = "application/json"
			code, _, b := h.do("POST", "/mcp", h.agentA.credential, strings.NewReader(body), tt.hdr)
			if code != tt.status {
				t.Fatalf("status %d, want %d: %s", code, tt.status, b)
			}
			var resp struct {
				ID     json.RawMessage `json:"id"`
				Result *struct {
					ResultType string `json:"resultType"`
				} `json:"result"`
			}
			if err := json.Unmarshal(b, &resp); err != nil || string(resp.ID) != "7" {
				t.Fatalf("response %s", b)
			}
			if tt.status == http.StatusOK && resp.Result.ResultType != "complete" {
				t.Fatalf("modern result lacks resultType: %s", b)
			}
		})
	}
}

func TestMCPCredentialNeverOnTheBus(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	messages := h.recordNATS()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, k := range clientKinds {
		c := h.mcpClient(t, h.agentA.credential, k)
		if _, err := c.ListTools(ctx, mcpgo.ListToolsRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.CallTool(ctx, callReq("get_pet", map[string]any{"id": "1"})); err != nil {
			t.Fatal(err)
		}
	}
	h.do("POST", "/mcp", "mgw_wrong"+h.agentB.credential, strings.NewReader(`{}`), map[string]string{"Content-Type": "application/json"})
	msgs := messages()
	if len(msgs) == 0 {
		t.Fatal("recorded no NATS traffic")
	}
	var all bytes.Buffer
	for _, m := range msgs {
		all.Write(m)
		all.WriteByte('\n')
	}
	for _, cred := range []string{h.agentA.credential, "mgw_wrong" + h.agentB.credential} {
		assertAbsent(t, "NATS traffic", cred, all.Bytes())
		assertAbsent(t, "logs", cred, []byte(h.logs.String()))
	}
}
