package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/adapter/internal/service"
)

const tenant = "demo"

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// resolver resolves the test's host names to loopback or to a private
// address; every other name fails. Nothing outside 127.0.0.1 is ever dialed.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[strings.ToLower(host)]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// recorded is one request an upstream saw.
type recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// upstreamServer is a small API on 127.0.0.1 that records every request and
// every new connection.
type upstreamServer struct {
	srv   *httptest.Server
	name  string // host name the tools use
	port  string
	mu    sync.Mutex
	reqs  []recorded
	conns atomic.Int64
	// redirectTo is where /redirect sends the client.
	redirectTo atomic.Value
}

func newUpstream(t testing.TB, name string) *upstreamServer {
	t.Helper()
	u := &upstreamServer{name: name}
	u.redirectTo.Store("/landing")
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /v1/messages", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(bytes.NewReader(u.last().Body)).Decode(&in)
		writeJSON(w, http.StatusCreated, map[string]any{"id": "msg_1", "to": in["to"], "status": "queued"})
	})
	mux.HandleFunc("GET /v1/messages/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "status": "queued"})
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		k := r.Header.Get("X-API-Key")
		writeJSON(w, http.StatusOK, map[string]any{
			"raw": k, "b64": base64.StdEncoding.EncodeToString([]byte(k)), "url": url.QueryEscape(k),
			"sentence": "your key is " + k + "!",
		})
	})
	mux.HandleFunc("GET /search", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"results": []string{}})
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, u.redirectTo.Load().(string), http.StatusFound)
	})
	mux.HandleFunc("GET /landing", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"landed": true})
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"blob": strings.Repeat("x", 200<<10)})
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "not found"})
	})
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		u.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	u.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.srv.Start()
	t.Cleanup(u.srv.Close)
	_, u.port, _ = net.SplitHostPort(u.srv.Listener.Addr().String())
	return u
}

func (u *upstreamServer) host() string { return u.name + ":" + u.port }
func (u *upstreamServer) base() string { return "http://" + u.host() }

func (u *upstreamServer) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func (u *upstreamServer) count() int { return len(u.requests()) }

func (u *upstreamServer) last() recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return recorded{}
	}
	return u.reqs[len(u.reqs)-1]
}

// env is one adapter on a real NATS server, with the edge, importer, policy
// and broker played by their own runtimes and keys.
type env struct {
	t                              testing.TB
	n                              *testenv.NATSServer
	keys                           *testenv.Keys
	edge, importer, policy, broker *bus.Runtime
	svc                            *service.Service
	logs                           *syncBuffer
	api, other                     *upstreamServer
	secret                         []byte
	replies                        [][]byte
	mu                             sync.Mutex
	aggs                           map[string]bus.Expect
	lastSeq                        uint64
	outcomes                       map[string]string // tool → policy outcome (default allowed)
	policyCalls, resolveCalls      atomic.Int64
	materials                      map[string]*rpcv1.Material
	brokerMode                     atomic.Value // "ok", "deny", "foreign"
	policyVerifier                 *reqctx.Verifier
}

type envOption func(*service.Config)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, n: testenv.NATS(t), keys: testenv.NewKeys(t), logs: &syncBuffer{},
		aggs: map[string]bus.Expect{}, outcomes: map[string]string{}, materials: map[string]*rpcv1.Material{}}
	e.brokerMode.Store("ok")
	var rnd [12]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	e.secret = []byte("canary-" + hex.EncodeToString(rnd[:]) + "+/=&")
	e.api = newUpstream(t, "api.test")
	e.other = newUpstream(t, "other.test")
	e.edge = e.n.Runtime(t, e.keys, bus.Edge)
	e.importer = e.n.Runtime(t, e.keys, bus.Importer)
	e.policy = e.n.Runtime(t, e.keys, bus.Policy)
	e.broker = e.n.Runtime(t, e.keys, bus.Broker)
	var err error
	e.policyVerifier, err = reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: e.keys.Keyring, Revocations: reqctx.NewRevocationList()})
	if err != nil {
		t.Fatal(err)
	}
	e.servePolicy()
	e.serveBroker()

	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt, err := bus.OpenWith(ctx, bus.RuntimeConfig{Service: bus.Adapter, URL: e.n.URL, PasswordFile: e.n.PasswordFile(bus.Adapter), Logger: logger},
		e.keys.ID[bus.Adapter], e.keys.Keyring)
	if err != nil {
		t.Fatalf("open adapter runtime: %v", err)
	}
	t.Cleanup(rt.Close)
	cfg := service.Config{Logger: logger, PolicyTimeout: time.Second, BrokerTimeout: time.Second, UpstreamTimeout: 5 * time.Second,
		Deps: service.Deps{Runtime: rt, Resolver: resolver{
			"api.test":     {netip.MustParseAddr("127.0.0.1")},
			"other.test":   {netip.MustParseAddr("127.0.0.1")},
			"evil.test":    {netip.MustParseAddr("127.0.0.1")},
			"private.test": {netip.MustParseAddr("10.1.2.3")},
		}}}
	for _, o := range opts {
		o(&cfg)
	}
	e.svc, err = service.New(cfg)
	if err != nil {
		t.Fatalf("new adapter: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("adapter run: %v", err)
		}
		e.svc.Close()
	})
	select {
	case <-e.svc.Ready():
	case err := <-done:
		t.Fatalf("adapter stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("adapter not ready within 20s")
	}
	return e
}

// servePolicy plays policy's rpc.policy.check: it verifies the context and
// answers the outcome configured for the tool (allowed by default).
func (e *env) servePolicy() {
	err := e.policy.Server.Handle(bus.PolicyCheck, func(_ context.Context, req *bus.Request) (proto.Message, error) {
		e.policyCalls.Add(1)
		var in rpcv1.CheckRequest
		if err := proto.Unmarshal(req.Data, &in); err != nil {
			return &rpcv1.CheckReply{Error: &rpcv1.Error{Code: string(errcode.InvalidArgument), Message: "bad request"}}, nil
		}
		if _, err := e.policyVerifier.Verify(in.GetContext()); err != nil {
			return &rpcv1.CheckReply{Outcome: "denied", Reason: "context not verified"}, nil
		}
		e.mu.Lock()
		out, ok := e.outcomes[in.GetTool()]
		e.mu.Unlock()
		if !ok {
			out = "allowed"
		}
		return &rpcv1.CheckReply{Outcome: out, Reason: "test policy: " + out}, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// serveBroker plays the broker's rpc.broker.resolve: it seals the material
// of the requested bindings to the adapter's key for this call.
func (e *env) serveBroker() {
	err := e.broker.Server.Handle(bus.BrokerResolve, func(_ context.Context, req *bus.Request) (proto.Message, error) {
		e.resolveCalls.Add(1)
		var in rpcv1.ResolveRequest
		if err := proto.Unmarshal(req.Data, &in); err != nil {
			return &rpcv1.ResolveReply{Error: &rpcv1.Error{Code: string(errcode.InvalidArgument), Message: "bad request"}}, nil
		}
		if req.Caller != bus.Adapter {
			return &rpcv1.ResolveReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "not the adapter"}}, nil
		}
		if e.brokerMode.Load() == "deny" {
			return &rpcv1.ResolveReply{Error: &rpcv1.Error{Code: string(errcode.PermissionDenied), Message: "binding refused"}}, nil
		}
		var rm rpcv1.ResolvedMaterial
		e.mu.Lock()
		for _, id := range in.GetBindingIds() {
			m, ok := e.materials[id]
			if !ok {
				e.mu.Unlock()
				return &rpcv1.ResolveReply{Error: &rpcv1.Error{Code: string(errcode.NotFound), Message: "unknown binding"}}, nil
			}
			m = proto.Clone(m).(*rpcv1.Material)
			if e.brokerMode.Load() == "foreign" {
				m.Hosts = []string{"elsewhere.test"}
			}
			rm.Materials = append(rm.Materials, m)
		}
		e.mu.Unlock()
		pub, err := seal.ParsePublicKeyBytes(in.GetRecipientKey())
		if err != nil {
			return &rpcv1.ResolveReply{Error: &rpcv1.Error{Code: string(errcode.InvalidArgument), Message: "bad key"}}, nil
		}
		plain, err := proto.Marshal(&rm)
		if err != nil {
			return nil, err
		}
		sealed, err := seal.Seal(pub, []byte(seal.InfoResolve), []byte(in.GetRequestId()), plain)
		if err != nil {
			return nil, err
		}
		return &rpcv1.ResolveReply{Sealed: sealed}, nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// append appends a CONTROL event as rt with the expectations this env
// tracked for the aggregate.
func (e *env) append(rt *bus.Runtime, ten string, agg bus.Aggregate, id string, ev bus.Message) {
	e.t.Helper()
	ev.GetMeta().Tenant = ten
	ev.GetMeta().Actor = &commonv1.Actor{Kind: "operator", Id: "admin", Surface: "cli", Via: string(rt.Service)}
	key := ten + "/" + string(agg) + "/" + id
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.mu.Lock()
	exp := e.aggs[key]
	e.mu.Unlock()
	a, err := rt.Publisher.AppendControl(ctx, agg, id, ev, exp)
	if err != nil {
		e.t.Fatalf("append %s/%s: %v", agg, id, err)
	}
	e.mu.Lock()
	e.aggs[key] = bus.Expect{LastSeq: a.Seq, Version: a.Version}
	if a.Seq > e.lastSeq {
		e.lastSeq = a.Seq
	}
	e.mu.Unlock()
}

// sync waits until the adapter's catalog has applied every event this env
// appended.
func (e *env) sync() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.mu.Lock()
	seq := e.lastSeq
	e.mu.Unlock()
	if err := e.svc.WaitForControl(ctx, seq); err != nil {
		e.t.Fatal(err)
	}
}

// source describes one imported source and policy's decisions about it.
type source struct {
	tenant, id string
	version    uint32
	tools      []*controlv1.ToolSpec
	approve    bool
	selected   []string // nil: every tool
	hosts      []string
	prefixes   []string
}

// propose appends the importer's events for one source version.
func (e *env) propose(s source) {
	e.t.Helper()
	if s.tenant == "" {
		s.tenant = tenant
	}
	if s.version == 0 {
		s.version = 1
	}
	var servers []string
	for _, tl := range s.tools {
		servers = append(servers, tl.GetOperation().GetServers()...)
	}
	e.append(e.importer, s.tenant, bus.AggSource, s.id, &controlv1.SourceVersionStarted{Meta: &commonv1.EventMeta{},
		SourceId: s.id, Version: s.version, Name: s.id, Slug: s.id, Format: "openapi-3.0", ProposedHosts: servers})
	for _, tl := range s.tools {
		e.append(e.importer, s.tenant, bus.AggSource, s.id, &controlv1.ToolProposed{Meta: &commonv1.EventMeta{}, SourceId: s.id, Version: s.version, Tool: tl})
	}
	e.append(e.importer, s.tenant, bus.AggSource, s.id, &controlv1.SourceVersionCommitted{Meta: &commonv1.EventMeta{},
		SourceId: s.id, Version: s.version, ToolCount: uint32(len(s.tools))})
}

// decide appends policy's approval, selection and allowlist of a version.
func (e *env) decide(s source) {
	e.t.Helper()
	if s.tenant == "" {
		s.tenant = tenant
	}
	if s.version == 0 {
		s.version = 1
	}
	if s.approve {
		ap := &controlv1.SourceVersionApproved{Meta: &commonv1.EventMeta{}, SourceId: s.id, Version: s.version, AllowedHosts: s.hosts}
		for _, tl := range s.tools {
			d, err := catalog.ToolDigest(tl)
			if err != nil {
				e.t.Fatal(err)
			}
			ap.Tools = append(ap.Tools, &controlv1.ApprovedTool{Name: tl.GetName(), Digest: d})
		}
		e.append(e.policy, s.tenant, bus.AggSourcePolicy, s.id, ap)
	}
	sel := s.selected
	if sel == nil {
		for _, tl := range s.tools {
			sel = append(sel, tl.GetName())
		}
	}
	e.append(e.policy, s.tenant, bus.AggSourcePolicy, s.id, &controlv1.OperationsSelected{Meta: &commonv1.EventMeta{}, SourceId: s.id, Tools: sel})
	e.append(e.policy, s.tenant, bus.AggSourcePolicy, s.id, &controlv1.HostAllowlistSet{Meta: &commonv1.EventMeta{}, SourceId: s.id, Hosts: s.hosts, AllowedPrefixes: s.prefixes})
}

func (e *env) addSource(s source) {
	e.t.Helper()
	e.propose(s)
	e.decide(s)
}

// bind creates a binding as the broker and gives the fake broker its
// material.
func (e *env) bind(ten, id, sourceID, scheme, environment string, hosts []string, placement *controlv1.Placement, value []byte) {
	e.t.Helper()
	if ten == "" {
		ten = tenant
	}
	e.append(e.broker, ten, bus.AggBinding, id, &controlv1.BindingCreated{Meta: &commonv1.EventMeta{}, BindingId: id, Name: id,
		Strategy: "api_key", Placement: placement, SecretRef: "local:" + ten + "/" + id, Hosts: hosts, Environment: environment,
		SourceId: sourceID, Scheme: scheme})
	e.mu.Lock()
	e.materials[id] = &rpcv1.Material{BindingId: id, Strategy: "api_key", Placement: placement, Hosts: hosts, Value: bytes.Clone(value)}
	e.mu.Unlock()
}

// context returns a policy-signed context.
func (e *env) context(ten, environment string) *commonv1.SignedContext {
	e.t.Helper()
	now := time.Now()
	sc, err := reqctx.Sign(e.keys.ID[bus.Policy], &commonv1.Context{
		Tenant: ten, User: "alice", Agent: "agent_1", Workload: "wl", Surface: "cli", ReportedSurface: "claude-code",
		Environment: environment, CredentialFingerprint: "fp_0123", CredentialId: "key_1", CredentialKind: "agent_key",
		IssuedAt: timestamppb.New(now.Add(-time.Second)), ExpiresAt: timestamppb.New(now.Add(50 * time.Second)), AssertionId: bus.NewID("as_"),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return sc
}

// invoke calls rpc.adapter.invoke as the edge.
func (e *env) invoke(sc *commonv1.SignedContext, tool string, args any) (*rpcv1.InvokeReply, string) {
	e.t.Helper()
	raw, ok := args.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(args); err != nil {
			e.t.Fatal(err)
		}
	}
	rid := bus.NewID("req_")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var reply rpcv1.InvokeReply
	if err := e.edge.Client.Call(bus.WithMeta(ctx, bus.Meta{RequestID: rid, Tenant: tenant}), bus.AdapterInvoke,
		&rpcv1.InvokeRequest{Context: sc, Tool: tool, Arguments: raw, RequestId: rid}, &reply); err != nil {
		e.t.Fatalf("invoke %s: %v", tool, err)
	}
	b, _ := proto.Marshal(&reply)
	e.mu.Lock()
	e.replies = append(e.replies, b)
	e.mu.Unlock()
	return &reply, rid
}

// explain calls rpc.adapter.explain as the edge.
func (e *env) explain(sc *commonv1.SignedContext, tool string, args any) *rpcv1.ExplainReply {
	e.t.Helper()
	raw, _ := json.Marshal(args)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var reply rpcv1.ExplainReply
	if err := e.edge.Client.Call(ctx, bus.AdapterExplain, &rpcv1.InvokeRequest{Context: sc, Tool: tool, Arguments: raw, RequestId: bus.NewID("req_")}, &reply); err != nil {
		e.t.Fatalf("explain %s: %v", tool, err)
	}
	return &reply
}

// auditEvents returns the verified audit events of a tenant, in order.
func (e *env) auditEvents(ten string) []*bus.Event {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.n.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := bus.NewVerifier(e.keys.Keyring)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*bus.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue
		}
		if !strings.HasPrefix(m.Subject, "audit."+ten+".") {
			continue
		}
		ev, err := v.VerifyAudit(m.Subject, m.Header, m.Data)
		if err != nil {
			e.t.Fatalf("audit event %d does not verify: %v", seq, err)
		}
		out = append(out, ev)
	}
	return out
}

// auditFor returns the audit events of one request: kind name → call.
func (e *env) auditFor(ten, requestID string) map[string]*auditv1.Call {
	e.t.Helper()
	out := map[string]*auditv1.Call{}
	for _, ev := range e.auditEvents(ten) {
		if ev.Meta.GetRequestId() != requestID {
			continue
		}
		switch m := ev.Msg.(type) {
		case *auditv1.InvocationRefused:
			out["refused"] = m.GetCall()
		case *auditv1.CredentialUsed:
			out["used"] = m.GetCall()
		case *auditv1.InvocationCompleted:
			out["completed"] = m.GetCall()
		}
	}
	return out
}

// forms are the encodings of a secret the canary checks search for.
func forms(secret []byte) map[string][]byte {
	j, _ := json.Marshal(string(secret))
	return map[string][]byte{
		"raw":    secret,
		"base64": []byte(base64.StdEncoding.EncodeToString(secret)),
		"url":    []byte(url.QueryEscape(string(secret))),
		"path":   []byte(url.PathEscape(string(secret))),
		"json":   j[1 : len(j)-1],
	}
}

// assertNoSecret fails when any form of secret appears in b.
func assertNoSecret(t testing.TB, where string, b, secret []byte) {
	t.Helper()
	for name, f := range forms(secret) {
		if bytes.Contains(b, f) {
			t.Errorf("%s contains the secret (%s form)", where, name)
		}
	}
}

// canary checks that the secret appears in no log line, no stored event
// and no reply the edge got.
func (e *env) canary() {
	e.t.Helper()
	assertNoSecret(e.t, "adapter logs", e.logs.Bytes(), e.secret)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{bus.StreamAudit, bus.StreamControl} {
		s, err := e.n.JS.Stream(ctx, name)
		if err != nil {
			e.t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if err != nil {
				continue
			}
			var hdr bytes.Buffer
			for k, v := range m.Header {
				fmt.Fprintf(&hdr, "%s: %s\n", k, strings.Join(v, ","))
			}
			assertNoSecret(e.t, fmt.Sprintf("%s message %d", name, seq), append(hdr.Bytes(), m.Data...), e.secret)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, r := range e.replies {
		assertNoSecret(e.t, fmt.Sprintf("reply %d", i), r, e.secret)
	}
}

// result decodes a CallToolResult.
type result struct {
	Content []struct {
		Type, Text string
	} `json:"content"`
	StructuredContent map[string]any `json:"structuredContent"`
	IsError           bool           `json:"isError"`
}

func decodeResult(t testing.TB, r *rpcv1.InvokeReply) result {
	t.Helper()
	if r.GetError() != nil {
		t.Fatalf("got error reply %v, want a result", r.GetError())
	}
	var out result
	if err := json.Unmarshal(r.GetResult(), &out); err != nil {
		t.Fatalf("result is not JSON: %v", err)
	}
	if len(out.Content) != 1 || out.Content[0].Type != "text" {
		t.Fatalf("result content = %+v, want one text block", out.Content)
	}
	return out
}

// redact shows header names only.
func redact(h http.Header) []string {
	var out []string
	for k := range h {
		out = append(out, k)
	}
	return out
}

func principalOf(ev *bus.Event) *auditv1.Principal {
	switch m := ev.Msg.(type) {
	case *auditv1.InvocationRefused:
		return m.GetPrincipal()
	case *auditv1.CredentialUsed:
		return m.GetPrincipal()
	case *auditv1.InvocationCompleted:
		return m.GetPrincipal()
	}
	return nil
}

func parseQuery(t testing.TB, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("upstream query does not parse: %v", err)
	}
	return q
}
