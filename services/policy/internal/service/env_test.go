package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authzed/authzed-go/v1"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/policy/internal/service"
)

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a real NATS server with every stream, and the runtimes of the
// services that talk to policy, acting as they would.
type env struct {
	n        *testenv.NATSServer
	keys     *testenv.Keys
	edge     *bus.Runtime
	adapter  *bus.Runtime
	importer *bus.Runtime
	broker   *bus.Runtime
	logs     *syncBuffer
	logger   *slog.Logger
	admin    []byte

	mu       sync.Mutex
	expects  map[string]bus.Expect
	captured []*nats.Msg
	replies  [][]byte
}

const adminToken = "admin-token-canary-8d1f0a"

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{n: testenv.NATS(t), keys: testenv.NewKeys(t), logs: &syncBuffer{}, admin: []byte(adminToken), expects: map[string]bus.Expect{}}
	e.logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("policy logs:\n%s", e.logs.String())
		}
	})
	sub, err := e.n.Admin.Subscribe(">", func(m *nats.Msg) {
		e.mu.Lock()
		e.captured = append(e.captured, m)
		e.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	e.edge = e.n.Runtime(t, e.keys, bus.Edge)
	e.adapter = e.n.Runtime(t, e.keys, bus.Adapter)
	e.importer = e.n.Runtime(t, e.keys, bus.Importer)
	e.broker = e.n.Runtime(t, e.keys, bus.Broker)
	return e
}

// policy is one running instance of the service.
type policy struct {
	svc  *service.Service
	rt   *bus.Runtime
	stop func()
}

func (e *env) startPolicy(t *testing.T, client *authzed.Client, cacheTTL time.Duration) *policy {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt, err := bus.OpenWith(ctx, bus.RuntimeConfig{Service: bus.Policy, URL: e.n.URL, PasswordFile: e.n.PasswordFile(bus.Policy), Logger: e.logger},
		e.keys.ID[bus.Policy], e.keys.Keyring)
	if err != nil {
		t.Fatalf("open policy runtime: %v", err)
	}
	svc, err := service.NewWithDeps(service.Config{Logger: e.logger, DecisionCacheTTL: cacheTTL},
		service.Deps{Runtime: rt, SealKey: e.keys.Seal[bus.Policy], AdminToken: secret.New(e.admin), SpiceDB: client})
	if err != nil {
		rt.Close()
		t.Fatalf("new policy: %v", err)
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	var once sync.Once
	p := &policy{svc: svc, rt: rt}
	p.stop = func() {
		once.Do(func() {
			stopRun()
			if err := <-done; err != nil {
				t.Errorf("policy run: %v", err)
			}
			svc.Close()
			rt.Close()
		})
	}
	t.Cleanup(p.stop)
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("policy stopped before serving: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("policy not serving within 60s")
	}
	return p
}

func (e *env) call(t *testing.T, rt *bus.Runtime, verb bus.Verb, req, reply proto.Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = bus.WithMeta(ctx, bus.Meta{RequestID: "req_" + strings.ReplaceAll(t.Name(), "/", "_"), Tenant: "demo"})
	if err := rt.Client.Call(ctx, verb, req, reply); err != nil {
		t.Fatalf("%s: %v", verb.Subject(), err)
	}
	b, err := proto.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.replies = append(e.replies, b)
	e.mu.Unlock()
}

func (e *env) sealCredential(t *testing.T, value []byte) []byte {
	t.Helper()
	raw, ok := e.keys.Keyring.SealKey(bus.Policy)
	if !ok {
		t.Fatal("keyring has no policy sealing key")
	}
	pub, err := seal.ParsePublicKeyBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := proto.Marshal(&rpcv1.Credential{Kind: "bearer", Value: value})
	if err != nil {
		t.Fatal(err)
	}
	out, err := seal.Seal(pub, []byte(seal.InfoCredential), nil, pt)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) authenticate(t *testing.T, value string) *rpcv1.AuthenticateReply {
	t.Helper()
	var reply rpcv1.AuthenticateReply
	e.call(t, e.edge, bus.PolicyAuthenticate, &rpcv1.AuthenticateRequest{SealedCredential: e.sealCredential(t, []byte(value)), ReportedSurface: "test-client/1.0"}, &reply)
	return &reply
}

func (e *env) contextFor(t *testing.T, value string) *commonv1.SignedContext {
	t.Helper()
	r := e.authenticate(t, value)
	if r.GetError() != nil || r.GetContext() == nil {
		t.Fatalf("authenticate: %v", r.GetError())
	}
	return r.GetContext()
}

func (e *env) verify(t *testing.T, sc *commonv1.SignedContext) *commonv1.Context {
	t.Helper()
	v, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: e.keys.Keyring, Revocations: reqctx.NewRevocationList()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(sc)
	if err != nil {
		t.Fatalf("verify context: %v", err)
	}
	return c
}

// authorize asks policy to authorize cmd for actor and attaches the result.
func (e *env) authorize(t *testing.T, actor *commonv1.SignedContext, tenant string, cmd proto.Message) *rpcv1.AuthorizeReply {
	t.Helper()
	digest, err := reqctx.CommandDigest(cmd)
	if err != nil {
		t.Fatal(err)
	}
	var reply rpcv1.AuthorizeReply
	e.call(t, e.edge, bus.PolicyAuthorize, &rpcv1.AuthorizeRequest{Actor: actor, Tenant: tenant, Command: reqctx.CommandName(cmd), CommandDigest: digest}, &reply)
	return &reply
}

func attach(cmd proto.Message, sa *commonv1.SignedAuthorization) {
	fd := cmd.ProtoReflect().Descriptor().Fields().ByName(protoreflect.Name(reqctx.AuthorizationField))
	cmd.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(sa.ProtoReflect()))
}

// command runs an operator command as the admin, the way the edge does.
func (e *env) command(t *testing.T, verb bus.Verb, tenant string, cmd proto.Message) *rpcv1.CommandReply {
	t.Helper()
	a := e.authorize(t, e.contextFor(t, adminToken), tenant, cmd)
	if a.GetError() != nil {
		t.Fatalf("authorize %s: %v", reqctx.CommandName(cmd), a.GetError())
	}
	attach(cmd, a.GetAuthorization())
	return e.send(t, verb, cmd)
}

func (e *env) send(t *testing.T, verb bus.Verb, cmd proto.Message) *rpcv1.CommandReply {
	t.Helper()
	var reply rpcv1.CommandReply
	e.call(t, e.edge, verb, cmd, &reply)
	return &reply
}

func (e *env) mustCommand(t *testing.T, verb bus.Verb, tenant string, cmd proto.Message) *rpcv1.CommandReply {
	t.Helper()
	r := e.command(t, verb, tenant, cmd)
	if r.GetError() != nil {
		t.Fatalf("%s: %s: %s", verb.Name, r.GetError().GetCode(), r.GetError().GetMessage())
	}
	return r
}

func wantCode(t *testing.T, what string, got *rpcv1.Error, want errcode.Code) {
	t.Helper()
	if errcode.Code(got.GetCode()) != want {
		t.Fatalf("%s: error %q (%s), want %s", what, got.GetCode(), got.GetMessage(), want)
	}
}

// appendAs appends a CONTROL event as another service (importer, broker).
func (e *env) appendAs(t *testing.T, rt *bus.Runtime, agg bus.Aggregate, tenant, id string, ev bus.Message) bus.Appended {
	t.Helper()
	e.mu.Lock()
	key := tenant + "/" + string(agg) + "/" + id
	exp := e.expects[key]
	e.mu.Unlock()
	ev.GetMeta().Tenant = tenant
	ev.GetMeta().Actor = &commonv1.Actor{Kind: "service", Id: string(rt.Service)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ap, err := rt.Publisher.AppendControl(ctx, agg, id, ev, exp)
	if err != nil {
		t.Fatalf("append %T: %v", ev, err)
	}
	e.mu.Lock()
	e.expects[key] = bus.Expect{LastSeq: ap.Seq, Version: ap.Version}
	e.mu.Unlock()
	return ap
}

func toolSpec(name, desc string, auth ...*controlv1.AuthAlternative) *controlv1.ToolSpec {
	return &controlv1.ToolSpec{Name: name, Description: desc, InputSchema: []byte(`{"type":"object"}`),
		Annotations: &controlv1.ToolAnnotations{ReadOnly: true, Title: desc},
		Operation:   &controlv1.OperationSpec{OperationId: name, Method: "GET", Path: "/" + name, Servers: []string{"https://api.example.test"}},
		Auth:        auth}
}

func alt(name, kind string) *controlv1.AuthAlternative {
	return &controlv1.AuthAlternative{Schemes: []*controlv1.AuthScheme{{Name: name, Kind: kind, In: "header", Param: "X-Key"}}}
}

// importSource plays the importer: a committed version with tools.
func (e *env) importSource(t *testing.T, tenant, src string, version uint32, hosts []string, tools ...*controlv1.ToolSpec) {
	t.Helper()
	e.appendAs(t, e.importer, bus.AggSource, tenant, src, &controlv1.SourceVersionStarted{Meta: &commonv1.EventMeta{},
		SourceId: src, Version: version, Name: src, Slug: src, Format: "openapi-3.1", ProposedHosts: hosts})
	for _, tl := range tools {
		e.appendAs(t, e.importer, bus.AggSource, tenant, src, &controlv1.ToolProposed{Meta: &commonv1.EventMeta{}, SourceId: src, Version: version, Tool: tl})
	}
	e.appendAs(t, e.importer, bus.AggSource, tenant, src, &controlv1.SourceVersionCommitted{Meta: &commonv1.EventMeta{},
		SourceId: src, Version: version, ToolCount: uint32(len(tools))})
}

// bind plays the broker: an active binding of a source's scheme.
func (e *env) bind(t *testing.T, tenant, id, src, scheme, environment string) {
	t.Helper()
	e.appendAs(t, e.broker, bus.AggBinding, tenant, id, &controlv1.BindingCreated{Meta: &commonv1.EventMeta{},
		BindingId: id, Name: id, Strategy: "api_key", Placement: &controlv1.Placement{In: "header", Name: "X-Key"},
		SecretRef: "local:" + tenant + "/" + id, Hosts: []string{"api.example.test"}, Environment: environment, SourceId: src, Scheme: scheme})
}

func (e *env) check(t *testing.T, sc *commonv1.SignedContext, tool string) *rpcv1.CheckReply {
	t.Helper()
	var reply rpcv1.CheckReply
	e.call(t, e.adapter, bus.PolicyCheck, &rpcv1.CheckRequest{Context: sc, Tool: tool}, &reply)
	return &reply
}

func (e *env) visible(t *testing.T, sc *commonv1.SignedContext) *rpcv1.VisibleReply {
	t.Helper()
	var reply rpcv1.VisibleReply
	e.call(t, e.edge, bus.PolicyVisible, &rpcv1.VisibleRequest{Context: sc}, &reply)
	return &reply
}

// visibleNames returns the names of the visible set, failing on an error.
func (e *env) visibleNames(t *testing.T, sc *commonv1.SignedContext) string {
	t.Helper()
	r := e.visible(t, sc)
	if r.GetError() != nil {
		t.Fatalf("visible: %s: %s", r.GetError().GetCode(), r.GetError().GetMessage())
	}
	var names []string
	for _, tl := range r.GetTools() {
		names = append(names, tl.GetName())
	}
	return strings.Join(names, ",")
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		<-tick.C
	}
}

// issueKey registers an agent key (by hash and prefix) as the edge does.
func (e *env) issueKey(t *testing.T, tenant, agent, user, environment, surface, key string) string {
	t.Helper()
	h := sha256Sum([]byte(key))
	r := e.mustCommand(t, bus.PolicyIssueKey, tenant, &rpcv1.IssueAgentKey{Tenant: tenant, AgentId: agent, User: user,
		Environment: environment, Surface: surface, Workload: "test", KeyHash: h, Prefix: key[:8]})
	return r.GetId()
}

// auditEvents returns the verified audit events captured so far of kind.
func (e *env) auditEvents(t *testing.T, kind bus.AuditKind) []*bus.Event {
	t.Helper()
	v, err := bus.NewVerifier(e.keys.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	msgs := append([]*nats.Msg(nil), e.captured...)
	e.mu.Unlock()
	var out []*bus.Event
	for _, m := range msgs {
		if !strings.HasPrefix(m.Subject, bus.AuditPrefix+".") || !strings.HasSuffix(m.Subject, "."+string(kind)) {
			continue
		}
		ev, err := v.VerifyAudit(m.Subject, m.Header, m.Data)
		if err != nil {
			t.Fatalf("audit event on %s does not verify: %v", m.Subject, err)
		}
		out = append(out, ev)
	}
	return out
}

// assertNoCanary searches logs, every NATS message and every reply for
// canary in raw, base64, URL- and JSON-escaped forms.
func (e *env) assertNoCanary(t *testing.T, canaries ...string) {
	t.Helper()
	e.mu.Lock()
	var hay [][]byte
	var where []string
	for _, m := range e.captured {
		hay = append(hay, []byte(m.Subject), m.Data)
		where = append(where, "nats subject "+m.Subject, "nats data "+m.Subject)
		for k, vs := range m.Header {
			hay = append(hay, []byte(k+": "+strings.Join(vs, ",")))
			where = append(where, "nats header "+m.Subject)
		}
	}
	for range e.replies {
		where = append(where, "reply")
	}
	hay = append(hay, e.replies...)
	e.mu.Unlock()
	hay = append(hay, []byte(e.logs.String()))
	where = append(where, "logs")
	for _, c := range canaries {
		js, _ := json.Marshal(c)
		forms := map[string]string{
			"raw":       c,
			"base64":    base64.StdEncoding.EncodeToString([]byte(c)),
			"base64url": base64.RawURLEncoding.EncodeToString([]byte(c)),
			"url":       url.QueryEscape(c),
			"json":      strings.Trim(string(js), `"`),
			"path":      url.PathEscape(c),
		}
		for name, f := range forms {
			for i, h := range hay {
				if bytes.Contains(h, []byte(f)) {
					t.Errorf("canary found (%s form) in %s", name, where[i])
				}
			}
		}
	}
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
