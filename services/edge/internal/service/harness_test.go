package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/edge/internal/service"
)

// Credentials the fake policy knows. Each is random per harness so that
// canary searches are meaningful.
type principal struct {
	credential string
	ctx        *commonv1.Context
}

// harness runs the edge over a real NATS server, with small responders
// that play policy, the adapter, the importer, the broker and audit over
// the real signed protocol, and the edge's HTTP handler on 127.0.0.1.
type harness struct {
	t        *testing.T
	n        *testenv.NATSServer
	keys     *testenv.Keys
	url      string
	svc      *service.Service
	logs     *lockedBuffer
	verifier *reqctx.Verifier
	http     *http.Client

	agentA, agentB, admin, forged principal

	mu          sync.Mutex
	principals  map[string]*commonv1.Context // by SHA-256 of the credential
	forgedHash  string
	visible     map[string][]*rpcv1.VisibleTool // by tenant
	visibleErr  bool
	invokes     []*invoked
	commands    []command
	uploads     []upload
	responses   []capturedResponse
	authCalls   int
	release     chan struct{}
	policyRT    *bus.Runtime
	edgeRT      *bus.Runtime
	issuedAgent map[string]string // key hash → agent (issued keys)
}

type invoked struct {
	req  *rpcv1.InvokeRequest
	meta bus.Meta
	ctx  *commonv1.Context
}

type command struct {
	msg  proto.Message
	meta bus.Meta
	auth *commonv1.Authorization
}

type upload struct {
	size   uint64
	sha256 string
	match  bool
}

type capturedResponse struct {
	url  string
	body []byte
	hdr  http.Header
}

type harnessOpts struct {
	rate          float64
	burst         int
	mcpBodyLimit  int64
	jsonBodyLimit int64
	uploadLimit   int64
}

// lockedBuffer collects log output from every goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newHarness(t *testing.T, o harnessOpts) *harness {
	t.Helper()
	h := &harness{
		t: t, n: testenv.NATS(t), keys: testenv.NewKeys(t), logs: &lockedBuffer{},
		principals: map[string]*commonv1.Context{}, visible: map[string][]*rpcv1.VisibleTool{},
		release: make(chan struct{}), issuedAgent: map[string]string{},
	}
	t.Cleanup(func() { close(h.release) })
	var err error
	h.verifier, err = reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: h.keys.Keyring, Revocations: reqctx.NewRevocationList()})
	if err != nil {
		t.Fatal(err)
	}
	h.agentA = h.addPrincipal(&commonv1.Context{Tenant: "tenant-a", Agent: "agent-a", User: "alice", Environment: "prod", Surface: "ci", CredentialKind: "agent_key", CredentialId: "key_a"})
	h.agentB = h.addPrincipal(&commonv1.Context{Tenant: "tenant-b", Agent: "agent-b", User: "bob", Environment: "prod", Surface: "ci", CredentialKind: "agent_key", CredentialId: "key_b"})
	h.admin = h.addPrincipal(&commonv1.Context{User: "admin", PlatformAdmin: true, Surface: "api", CredentialKind: "admin_token", CredentialId: "admin"})
	h.forged = principal{credential: "mgw_" + randomHex(t)}
	h.forgedHash = hashOf(h.forged.credential)
	h.visible["tenant-a"] = []*rpcv1.VisibleTool{
		{Name: "list_pets", Description: "List pets", InputSchema: []byte(`{"type":"object","properties":{"limit":{"type":"integer"}}}`), Annotations: &controlv1.ToolAnnotations{ReadOnly: true}},
		{Name: "get_pet", Description: "Get a pet", InputSchema: []byte(`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`)},
	}
	h.visible["tenant-b"] = []*rpcv1.VisibleTool{
		{Name: "list_invoices", Description: "List invoices", InputSchema: []byte(`{"type":"object"}`)},
	}

	h.policyRT = h.serve(bus.Policy, []route{
		{bus.PolicyAuthenticate, h.authenticate},
		{bus.PolicyVisible, h.visibleHandler},
		{bus.PolicyAuthorize, h.authorize},
		{bus.PolicyApprove, h.commandHandler(func() proto.Message { return &rpcv1.ApproveSourceVersion{} }, "src-ok")},
		{bus.PolicySelect, h.commandHandler(func() proto.Message { return &rpcv1.SelectOperations{} }, "")},
		{bus.PolicyGrant, h.commandHandler(func() proto.Message { return &rpcv1.AddGrant{} }, "grt_0001")},
		{bus.PolicyRevokeGrant, h.commandHandler(func() proto.Message { return &rpcv1.RevokeGrant{} }, "")},
		{bus.PolicyIssueKey, h.issueKey},
		{bus.PolicyRevokeKey, h.commandHandler(func() proto.Message { return &rpcv1.RevokeAgentKey{} }, "")},
	})
	h.serve(bus.Adapter, []route{{bus.AdapterInvoke, h.invoke}})
	h.serve(bus.Importer, []route{{bus.ImporterImport, h.importHandler}, {bus.ImporterMapAuth, h.mapAuthHandler}})
	h.serve(bus.Broker, []route{
		{bus.BrokerPutSecret, h.commandHandler(func() proto.Message { return &rpcv1.PutSecret{} }, "local:tenant-a/stripe")},
		{bus.BrokerCreate, h.commandHandler(func() proto.Message { return &rpcv1.CreateBinding{} }, "bnd_0001")},
		{bus.BrokerSlots, h.slots},
	})
	h.serve(bus.Audit, []route{{bus.AuditQuery, h.auditQuery}})

	logger := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	edgeRT, err := bus.OpenWith(ctx, bus.RuntimeConfig{Service: bus.Edge, URL: h.n.URL, PasswordFile: h.n.PasswordFile(bus.Edge), Logger: logger}, h.keys.ID[bus.Edge], h.keys.Keyring)
	if err != nil {
		t.Fatalf("open edge runtime: %v", err)
	}
	t.Cleanup(edgeRT.Close)
	h.edgeRT = edgeRT

	ts := httptest.NewUnstartedServer(nil)
	h.url = "http://" + ts.Listener.Addr().String()
	h.svc, err = service.NewWithRuntime(service.Config{
		PublicURL: h.url, Logger: logger, InvokeTimeout: time.Second, ListChangedInterval: 100 * time.Millisecond,
		RateLimit: o.rate, RateBurst: o.burst, MCPBodyLimit: o.mcpBodyLimit, JSONBodyLimit: o.jsonBodyLimit, UploadLimit: o.uploadLimit,
	}, edgeRT)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = h.svc.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	sctx, scancel := context.WithCancel(context.Background())
	t.Cleanup(scancel)
	h.svc.Start(sctx)
	h.http = &http.Client{Transport: &capture{h: h, next: http.DefaultTransport}, Timeout: 30 * time.Second}
	return h
}

// capture records every HTTP response the tests receive, for canary
// searches.
type capture struct {
	h    *harness
	next http.RoundTripper
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		resp.Body = &teeBody{ReadCloser: resp.Body, h: c.h, url: r.URL.String(), hdr: resp.Header}
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	c.h.mu.Lock()
	c.h.responses = append(c.h.responses, capturedResponse{url: r.URL.String(), body: body, hdr: resp.Header.Clone()})
	c.h.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// teeBody records a streamed response as it is read.
type teeBody struct {
	io.ReadCloser
	h   *harness
	url string
	hdr http.Header
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		t.h.mu.Lock()
		t.h.responses = append(t.h.responses, capturedResponse{url: t.url, body: append([]byte(nil), p[:n]...), hdr: t.hdr})
		t.h.mu.Unlock()
	}
	return n, err
}

func (h *harness) addPrincipal(c *commonv1.Context) principal {
	cred := "mgw_" + randomHex(h.t)
	h.principals[hashOf(cred)] = c
	return principal{credential: cred, ctx: c}
}

// route is one verb a responder serves.
type route struct {
	verb bus.Verb
	fn   bus.Handler
}

func (h *harness) serve(s bus.Service, routes []route) *bus.Runtime {
	h.t.Helper()
	rt := h.n.Runtime(h.t, h.keys, s)
	for _, r := range routes {
		if err := rt.Server.Handle(r.verb, r.fn); err != nil {
			h.t.Fatal(err)
		}
	}
	return rt
}

func randomHex(t testing.TB) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func hashOf(cred string) string {
	s := sha256.Sum256([]byte(cred))
	return hex.EncodeToString(s[:])
}

// --- policy ---

func (h *harness) authenticate(_ context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.AuthenticateRequest
	if err := proto.Unmarshal(req.Data, &in); err != nil {
		return nil, err
	}
	plain, err := seal.Open(h.keys.Seal[bus.Policy], []byte(seal.InfoCredential), nil, in.GetSealedCredential())
	if err != nil {
		return &rpcv1.AuthenticateReply{Error: &rpcv1.Error{Code: string(errcode.Unauthenticated), Message: "invalid credential"}}, nil
	}
	var cred rpcv1.Credential
	if err := proto.Unmarshal(plain, &cred); err != nil || cred.GetKind() != "bearer" {
		return &rpcv1.AuthenticateReply{Error: &rpcv1.Error{Code: string(errcode.Unauthenticated), Message: "invalid credential"}}, nil
	}
	key := hashOf(string(cred.GetValue()))
	h.mu.Lock()
	h.authCalls++
	tmpl, ok := h.principals[key]
	forged := key == h.forgedHash
	h.mu.Unlock()
	if forged {
		return &rpcv1.AuthenticateReply{Context: &commonv1.SignedContext{Context: []byte("x"), Signature: make([]byte, 64)}}, nil
	}
	if !ok {
		return &rpcv1.AuthenticateReply{Error: &rpcv1.Error{Code: string(errcode.Unauthenticated), Message: "invalid credential"}}, nil
	}
	c := proto.Clone(tmpl).(*commonv1.Context)
	now := time.Now()
	c.IssuedAt, c.ExpiresAt = timestamppb.New(now), timestamppb.New(now.Add(time.Minute))
	c.ReportedSurface = in.GetReportedSurface()
	c.CredentialFingerprint = reqctx.Fingerprint(cred.GetValue())
	c.AssertionId = bus.NewID("asr_")
	sc, err := reqctx.Sign(h.keys.ID[bus.Policy], c)
	if err != nil {
		return nil, err
	}
	return &rpcv1.AuthenticateReply{Context: sc}, nil
}

func (h *harness) visibleHandler(_ context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.VisibleRequest
	if err := proto.Unmarshal(req.Data, &in); err != nil {
		return nil, err
	}
	c, err := h.verifier.Verify(in.GetContext())
	if err != nil {
		return &rpcv1.VisibleReply{Error: &rpcv1.Error{Code: string(errcode.Unauthenticated), Message: "bad context"}}, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.visibleErr {
		return &rpcv1.VisibleReply{Error: &rpcv1.Error{Code: string(errcode.Unavailable), Message: "authorizer unavailable"}}, nil
	}
	return &rpcv1.VisibleReply{Tools: h.visible[c.GetTenant()]}, nil
}

func (h *harness) setVisible(tenant string, tools []*rpcv1.VisibleTool) {
	h.mu.Lock()
	h.visible[tenant] = tools
	h.mu.Unlock()
}

func (h *harness) setVisibleErr(v bool) {
	h.mu.Lock()
	h.visibleErr = v
	h.mu.Unlock()
}

func (h *harness) authorize(_ context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.AuthorizeRequest
	if err := proto.Unmarshal(req.Data, &in); err != nil {
		return nil, err
	}
	actor, err := h.verifier.Verify(in.GetActor())
	if err != nil {
		return &rpcv1.AuthorizeReply{Error: &rpcv1.Error{Code: string(errcode.Unauthenticated), Message: "bad actor"}}, nil
	}
	if !actor.GetPlatformAdmin() {
		return &rpcv1.AuthorizeReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "operator role required"}}, nil
	}
	now := time.Now()
	sa, err := reqctx.SignAuthorization(h.keys.ID[bus.Policy], &commonv1.Authorization{
		Actor: actor, Tenant: in.GetTenant(), Command: in.GetCommand(), CommandDigest: in.GetCommandDigest(),
		RequestId: req.Meta.RequestID, IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(30 * time.Second)),
		AuthorizationId: bus.NewID("az_"),
	})
	if err != nil {
		return nil, err
	}
	return &rpcv1.AuthorizeReply{Authorization: sa}, nil
}

// tenanted is every operator command: it names its tenant.
type tenanted interface {
	proto.Message
	GetTenant() string
}

// verifyCommand checks a command as its owning service would and records it.
func (h *harness) verifyCommand(req *bus.Request, msg tenanted) error {
	if err := proto.Unmarshal(req.Data, msg); err != nil {
		return err
	}
	a, err := h.verifier.VerifyCommand(msg, msg.GetTenant())
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.commands = append(h.commands, command{msg: msg, meta: req.Meta, auth: a})
	h.mu.Unlock()
	return nil
}

func (h *harness) commandHandler(newMsg func() proto.Message, id string) bus.Handler {
	return func(_ context.Context, req *bus.Request) (proto.Message, error) {
		msg := newMsg().(tenanted)
		if err := h.verifyCommand(req, msg); err != nil {
			return &rpcv1.CommandReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "command refused"}}, nil
		}
		return &rpcv1.CommandReply{Id: id, Version: 3}, nil
	}
}

func (h *harness) issueKey(_ context.Context, req *bus.Request) (proto.Message, error) {
	var msg rpcv1.IssueAgentKey
	if err := h.verifyCommand(req, &msg); err != nil {
		return &rpcv1.CommandReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "command refused"}}, nil
	}
	if len(msg.GetKeyHash()) != sha256.Size {
		return &rpcv1.CommandReply{Error: &rpcv1.Error{Code: string(errcode.InvalidArgument), Message: "bad hash"}}, nil
	}
	h.mu.Lock()
	h.principals[hex.EncodeToString(msg.GetKeyHash())] = &commonv1.Context{
		Tenant: msg.GetTenant(), Agent: msg.GetAgentId(), User: msg.GetUser(), Environment: msg.GetEnvironment(),
		Surface: msg.GetSurface(), Workload: msg.GetWorkload(), CredentialKind: "agent_key", CredentialId: "key_issued",
	}
	h.mu.Unlock()
	return &rpcv1.CommandReply{Id: "key_issued", Version: 1}, nil
}

// --- adapter ---

func (h *harness) invoke(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.InvokeRequest
	if err := proto.Unmarshal(req.Data, &in); err != nil {
		return nil, err
	}
	c, err := h.verifier.Verify(in.GetContext())
	if err != nil {
		return &rpcv1.InvokeReply{Error: &rpcv1.Error{Code: string(errcode.Unauthenticated), Message: "bad context"}}, nil
	}
	h.mu.Lock()
	h.invokes = append(h.invokes, &invoked{req: &in, meta: req.Meta, ctx: c})
	visible := false
	for _, t := range h.visible[c.GetTenant()] {
		visible = visible || t.GetName() == in.GetTool()
	}
	h.mu.Unlock()
	switch in.GetTool() {
	case "slow_tool":
		select {
		case <-h.release:
		case <-ctx.Done():
		}
		return &rpcv1.InvokeReply{Result: []byte(`{"content":[{"type":"text","text":"too late"}]}`)}, nil
	case "broken_tool":
		return &rpcv1.InvokeReply{Error: &rpcv1.Error{Code: string(errcode.Unavailable), Message: "credential service unavailable"}}, nil
	}
	if !visible {
		return &rpcv1.InvokeReply{Error: &rpcv1.Error{Code: string(errcode.ToolNotPermitted), Message: "unknown or not permitted tool"}}, nil
	}
	result, _ := json.Marshal(map[string]any{
		"content": []map[string]any{{"type": "text", "text": "called " + in.GetTool() + " with " + string(in.GetArguments())}},
	})
	return &rpcv1.InvokeReply{Result: result}, nil
}

func (h *harness) invoked() []*invoked {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*invoked(nil), h.invokes...)
}

// --- importer ---

// mapAuthHandler answers a verified mapping with version 2 of its source,
// or not_found for a scheme named "missing".
func (h *harness) mapAuthHandler(_ context.Context, req *bus.Request) (proto.Message, error) {
	var msg rpcv1.MapAuth
	if err := h.verifyCommand(req, &msg); err != nil {
		return &rpcv1.ImportReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "command refused"}}, nil
	}
	if msg.GetScheme() == "missing" {
		return &rpcv1.ImportReply{Error: &rpcv1.Error{Code: string(errcode.NotFound), Message: "no tool requires auth scheme \"missing\""}}, nil
	}
	return &rpcv1.ImportReply{SourceId: msg.GetSourceId(), Version: 2, Review: []byte(`{"diagnostics":[{"level":"info","message":"mapped"}]}`)}, nil
}

func (h *harness) importHandler(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var msg rpcv1.ImportSource
	if err := h.verifyCommand(req, &msg); err != nil {
		return &rpcv1.ImportReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "command refused"}}, nil
	}
	if msg.GetUrl() != "" {
		// The importer fetches the URL itself; nothing was uploaded.
		return &rpcv1.ImportReply{SourceId: "src_0002", Version: 1, Review: []byte(`{"tools":1}`)}, nil
	}
	ref := msg.GetUpload()
	// Read as the admin: bus.PermissionsFor(Importer) lacks the JetStream
	// flow-control subject ($JS.FC.OBJ_uploads.>) an Object Store Get of a
	// multi-megabyte object needs (reported; libs is not this package's).
	obs, err := h.n.JS.ObjectStore(ctx, ref.GetBucket())
	if err != nil {
		return nil, err
	}
	r, err := obs.Get(ctx, ref.GetObject())
	if err != nil {
		return nil, err
	}
	defer r.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, r)
	if err != nil {
		return nil, err
	}
	got := hex.EncodeToString(sum.Sum(nil))
	h.mu.Lock()
	h.uploads = append(h.uploads, upload{size: uint64(n), sha256: got, match: got == ref.GetSha256() && uint64(n) == ref.GetSize()})
	h.mu.Unlock()
	return &rpcv1.ImportReply{SourceId: "src_0001", Version: 1, Review: []byte(`{"tools":2}`)}, nil
}

// --- audit ---

func (h *harness) auditQuery(_ context.Context, req *bus.Request) (proto.Message, error) {
	var msg rpcv1.QueryAudit
	if err := h.verifyCommand(req, &msg); err != nil {
		return &rpcv1.QueryAuditReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "command refused"}}, nil
	}
	return &rpcv1.QueryAuditReply{Rows: []*rpcv1.AuditRow{{EventId: "evt_1", Tenant: msg.GetTenant(), Kind: "credential_used", RequestId: msg.GetRequestId(), Time: timestamppb.Now()}}}, nil
}

func (h *harness) slots(_ context.Context, req *bus.Request) (proto.Message, error) {
	var msg rpcv1.ListSlots
	if err := h.verifyCommand(req, &msg); err != nil {
		return &rpcv1.ListSlotsReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "command refused"}}, nil
	}
	if msg.GetSourceId() != "src-ok" {
		return &rpcv1.ListSlotsReply{Error: &rpcv1.Error{Code: string(errcode.NotFound), Message: "source not found"}}, nil
	}
	return &rpcv1.ListSlotsReply{Version: 1, Approved: true, Slots: []*rpcv1.Slot{{Scheme: "ApiKeyAuth", Kind: "apiKey", In: "header", Param: "X-API-Key",
		Tools: []string{"send_message"}, Strategy: "api_key", Bindings: []*rpcv1.SlotBinding{{BindingId: "bnd_0001", Environment: "dev"}}}}}, nil
}

// --- helpers ---

func (h *harness) commandsOf(name string) []command {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []command
	for _, c := range h.commands {
		if reqctx.CommandName(c.msg) == name {
			out = append(out, c)
		}
	}
	return out
}

// do sends an HTTP request to the edge with a bearer credential (none when
// empty) and returns status, headers and body.
func (h *harness) do(method, path, credential string, body io.Reader, hdr map[string]string) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// refusals returns the EdgeRefused events recorded so far on tenant,
// verified as signed by the edge.
func (h *harness) refusals(tenant string) []*auditv1.EdgeRefused {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := h.n.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	v, err := bus.NewVerifier(h.keys.Keyring)
	if err != nil {
		h.t.Fatal(err)
	}
	subject, _ := bus.AuditSubject(tenant, bus.KindEdgeRefused)
	var out []*auditv1.EdgeRefused
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if m.Subject != subject {
			continue
		}
		ev, err := v.VerifyAudit(m.Subject, m.Header, m.Data)
		if err != nil {
			h.t.Fatalf("audit event not verifiable: %v", err)
		}
		if ev.Signer != bus.Edge {
			h.t.Fatalf("refusal signed by %s", ev.Signer)
		}
		out = append(out, ev.Msg.(*auditv1.EdgeRefused))
	}
	return out
}

// waitRefusal polls until a refusal with reason on tenant appears.
func (h *harness) waitRefusal(tenant, reason string) *auditv1.EdgeRefused {
	h.t.Helper()
	var found *auditv1.EdgeRefused
	waitFor(h.t, 10*time.Second, "EdgeRefused "+reason+" on "+tenant, func() bool {
		for _, r := range h.refusals(tenant) {
			if r.GetReasonCode() == reason {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// recordNATS subscribes to every subject as the admin and keeps every
// message (subject, headers, payload) for canary searches.
func (h *harness) recordNATS() func() [][]byte {
	h.t.Helper()
	var mu sync.Mutex
	var msgs [][]byte
	sub, err := h.n.Admin.Subscribe(">", func(m *nats.Msg) {
		var b bytes.Buffer
		b.WriteString(m.Subject)
		b.WriteString(" ")
		b.WriteString(m.Reply)
		for k, vs := range m.Header {
			b.WriteString(k + ":" + strings.Join(vs, ","))
		}
		b.Write(m.Data)
		mu.Lock()
		msgs = append(msgs, b.Bytes())
		mu.Unlock()
	})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.n.Admin.Flush(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() [][]byte {
		_ = h.n.Admin.Flush()
		mu.Lock()
		defer mu.Unlock()
		return append([][]byte(nil), msgs...)
	}
}

// encodings returns the forms a secret could leak in.
func encodings(s string) map[string]string {
	j, _ := json.Marshal(s)
	return map[string]string{
		"raw":        s,
		"base64":     base64.StdEncoding.EncodeToString([]byte(s)),
		"base64raw":  base64.RawStdEncoding.EncodeToString([]byte(s)),
		"base64url":  base64.URLEncoding.EncodeToString([]byte(s)),
		"base64rurl": base64.RawURLEncoding.EncodeToString([]byte(s)),
		"url":        url.QueryEscape(s),
		"path":       url.PathEscape(s),
		"json":       strings.Trim(string(j), `"`),
	}
}

// assertAbsent fails when any encoding of secret appears in data.
func assertAbsent(t *testing.T, where string, secret string, data []byte) {
	t.Helper()
	for form, enc := range encodings(secret) {
		if bytes.Contains(data, []byte(enc)) {
			t.Fatalf("%s contains the secret (%s form)", where, form)
		}
	}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
