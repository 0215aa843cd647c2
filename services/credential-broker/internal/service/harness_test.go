package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/service"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/storetest"
)

// lockedBuffer collects log output from several goroutines.
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

// wiretap records every message published on the NATS server.
type wiretap struct {
	mu      sync.Mutex
	msgs    []*nats.Msg
	changed chan struct{}
}

func newWiretap() *wiretap { return &wiretap{changed: make(chan struct{})} }

func (w *wiretap) add(m *nats.Msg) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, m)
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *wiretap) all() []*nats.Msg {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*nats.Msg(nil), w.msgs...)
}

// waitFor returns every message recorded once one on subject was, or false
// when timeout passes first.
func (w *wiretap) waitFor(subject string, timeout time.Duration) ([]*nats.Msg, bool) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		msgs, ch := append([]*nats.Msg(nil), w.msgs...), w.changed
		w.mu.Unlock()
		for _, m := range msgs {
			if m.Subject == subject {
				return msgs, true
			}
		}
		select {
		case <-ch:
		case <-deadline:
			return nil, false
		}
	}
}

// harness is a real NATS server with the broker, and runtimes that play the
// edge, the adapter and policy (its keys).
type harness struct {
	t        *testing.T
	n        *testenv.NATSServer
	keys     *testenv.Keys
	stateDir string
	logs     *lockedBuffer
	log      *slog.Logger
	tap      *wiretap
	edge     *bus.Runtime
	adapter  *bus.Runtime
	broker   *running
	// tapSub is the wiretap's subscription to every subject.
	tapSub *nats.Subscription
	// replies holds every reply received (sealed material removed), for
	// the canary scan.
	replies []string
}

// running is one broker instance.
type running struct {
	rt   *bus.Runtime
	svc  *service.Service
	stop context.CancelFunc
	done chan error
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, n: testenv.NATS(t), keys: testenv.NewKeys(t), logs: &lockedBuffer{}, tap: newWiretap()}
	h.stateDir = filepath.Join(t.TempDir(), "state")
	h.log = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sub, err := h.n.Admin.Subscribe(">", h.tap.add)
	if err != nil {
		t.Fatal(err)
	}
	h.tapSub = sub
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := h.n.Admin.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", h.logs.String())
		}
	})
	h.edge = h.runtime(t, bus.Edge)
	h.adapter = h.runtime(t, bus.Adapter)
	h.broker = h.start(t)
	return h
}

// runtime opens a service's runtime that logs into the captured log.
func (h *harness) runtime(t *testing.T, s bus.Service) *bus.Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt, err := bus.OpenWith(ctx, bus.RuntimeConfig{Service: s, URL: h.n.URL, PasswordFile: h.n.PasswordFile(s), Logger: h.log}, h.keys.ID[s], h.keys.Keyring)
	if err != nil {
		t.Fatalf("open %s runtime: %v", s, err)
	}
	h.t.Cleanup(rt.Close)
	return rt
}

// start runs a broker instance over the harness's state directory and
// waits until it serves.
func (h *harness) start(t *testing.T) *running {
	t.Helper()
	rt := h.runtime(t, bus.Broker)
	svc, err := service.NewWithDeps(service.Config{StateDir: h.stateDir, Logger: h.log},
		service.Deps{Runtime: rt, SealKey: h.keys.Seal[bus.Broker]})
	if err != nil {
		t.Fatalf("new broker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{rt: rt, svc: svc, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- svc.Run(ctx) }()
	h.t.Cleanup(func() { r.shutdown(h.t) })
	select {
	case <-svc.Ready():
	case err := <-r.done:
		t.Fatalf("broker stopped before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("broker not serving after 20s")
	}
	return r
}

// shutdown stops the instance and leaves the bus; it is idempotent.
func (r *running) shutdown(t *testing.T) {
	t.Helper()
	if r.stop == nil {
		return
	}
	r.stop()
	r.stop = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("broker Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("broker did not stop within 10s")
	}
	r.svc.Close()
	r.rt.Close()
}

// drainTap returns every message the wiretap recorded up to now. A
// sentinel published last arrives last: once the wiretap has it, it has
// every earlier message.
func (h *harness) drainTap(t *testing.T) []*nats.Msg {
	t.Helper()
	if !h.tapSub.IsValid() {
		return h.tap.all()
	}
	sentinel := "test.sentinel." + bus.NewID("s_")
	if err := h.n.Admin.Publish(sentinel, nil); err != nil {
		t.Fatal(err)
	}
	msgs, ok := h.tap.waitFor(sentinel, 10*time.Second)
	if !ok {
		t.Fatal("the wiretap did not receive its sentinel within 10s")
	}
	return msgs
}

// untap stops the wiretap after it received everything sent so far (it is
// a responder on every subject, which hides "no responders" from JetStream
// publishers). Later messages are not searched.
func (h *harness) untap(t *testing.T) {
	t.Helper()
	h.drainTap(t)
	if err := h.tapSub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Admin.Flush(); err != nil {
		t.Fatal(err)
	}
}

// restart replaces the running broker with a new instance over the same
// state directory and NATS server.
func (h *harness) restart(t *testing.T) {
	t.Helper()
	h.broker.shutdown(t)
	h.broker = h.start(t)
}

// authorize signs, as policy, an authorization of cmd in tenant and sets it
// on cmd.
func (h *harness) authorize(t *testing.T, cmd proto.Message, tenant string, set func(*commonv1.SignedAuthorization)) {
	t.Helper()
	digest, err := reqctx.CommandDigest(cmd)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sa, err := reqctx.SignAuthorization(h.keys.ID[bus.Policy], &commonv1.Authorization{
		Actor: &commonv1.Context{Tenant: tenant, User: "alice", Surface: "cli", CredentialKind: "admin_token",
			IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(30 * time.Second))},
		Tenant: tenant, Command: reqctx.CommandName(cmd), CommandDigest: digest, RequestId: bus.NewID("req_"),
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(30 * time.Second)), AuthorizationId: bus.NewID("authz_"),
	})
	if err != nil {
		t.Fatal(err)
	}
	set(sa)
}

// sealSecret seals value to the broker's pinned key as the CLI does.
func (h *harness) sealSecret(t *testing.T, tenant, name string, value []byte) []byte {
	t.Helper()
	pinned, ok := h.keys.Keyring.SealKey(bus.Broker)
	if !ok {
		t.Fatal("keyring has no broker sealing key")
	}
	pub, err := seal.ParsePublicKeyBytes(pinned)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := seal.Seal(pub, []byte(seal.InfoSecret), seal.SecretAAD(tenant, name), value)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// callEdge sends a command as the edge and returns the reply.
func (h *harness) callEdge(t *testing.T, verb bus.Verb, req proto.Message) *rpcv1.CommandReply {
	t.Helper()
	var reply rpcv1.CommandReply
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.edge.Client.Call(bus.WithMeta(ctx, bus.Meta{RequestID: bus.NewID("req_")}), verb, req, &reply); err != nil {
		t.Fatalf("%s: %v", verb.Subject(), err)
	}
	h.recordReply(t, &reply)
	return &reply
}

// putSecret writes a secret as an authorized operator and returns the
// reply.
func (h *harness) putSecret(t *testing.T, tenant, name string, value []byte) *rpcv1.CommandReply {
	t.Helper()
	cmd := &rpcv1.PutSecret{Tenant: tenant, Name: name, SealedValue: h.sealSecret(t, tenant, name, value)}
	h.authorize(t, cmd, tenant, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
	return h.callEdge(t, bus.BrokerPutSecret, cmd)
}

// mustPutSecret writes a secret and returns its reference.
func (h *harness) mustPutSecret(t *testing.T, tenant, name string, value []byte) string {
	t.Helper()
	r := h.putSecret(t, tenant, name, value)
	if r.GetError() != nil {
		t.Fatalf("put_secret: %v", r.GetError())
	}
	return r.GetId()
}

// createBinding creates a binding as an authorized operator.
func (h *harness) createBinding(t *testing.T, cmd *rpcv1.CreateBinding) *rpcv1.CommandReply {
	t.Helper()
	h.authorize(t, cmd, cmd.GetTenant(), func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
	return h.callEdge(t, bus.BrokerCreate, cmd)
}

// mustCreateBinding creates a binding and returns its ID.
func (h *harness) mustCreateBinding(t *testing.T, cmd *rpcv1.CreateBinding) string {
	t.Helper()
	r := h.createBinding(t, cmd)
	if r.GetError() != nil {
		t.Fatalf("create_binding: %v", r.GetError())
	}
	return r.GetId()
}

// context returns a context of tenant and environment signed by signer
// (policy's identity, or a rogue one).
func (h *harness) context(t *testing.T, signer *bus.Identity, tenant, env string) *commonv1.SignedContext {
	t.Helper()
	now := time.Now()
	sc, err := reqctx.Sign(signer, &commonv1.Context{
		Tenant: tenant, User: "bob", Agent: "agent-1", Surface: "mcp", ReportedSurface: "claude-code",
		Environment: env, CredentialFingerprint: "0123456789abcdef", CredentialId: "key_1", CredentialKind: "agent_key",
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute)), AssertionId: bus.NewID("asr_"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// resolveResult is what the adapter got back.
type resolveResult struct {
	reply     *rpcv1.ResolveReply
	requestID string
	key       *seal.PrivateKey
}

// resolve asks as the adapter, with a fresh ephemeral key.
func (h *harness) resolve(t *testing.T, sc *commonv1.SignedContext, sourceID, host string, bindingIDs ...string) resolveResult {
	t.Helper()
	key, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	requestID := bus.NewID("req_")
	req := &rpcv1.ResolveRequest{Context: sc, Tool: "list_repos", SourceId: sourceID, BindingIds: bindingIDs,
		RecipientKey: key.Public().Bytes(), RequestId: requestID, Host: host}
	var reply rpcv1.ResolveReply
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.adapter.Client.Call(bus.WithMeta(ctx, bus.Meta{RequestID: requestID}), bus.BrokerResolve, req, &reply); err != nil {
		t.Fatalf("resolve: %v", err)
	}
	h.recordReply(t, &reply)
	return resolveResult{reply: &reply, requestID: requestID, key: key}
}

// open opens the sealed material as the adapter.
func (r resolveResult) open(t *testing.T) *rpcv1.ResolvedMaterial {
	t.Helper()
	if r.reply.GetError() != nil {
		t.Fatalf("resolve refused: %v", r.reply.GetError())
	}
	pt, err := seal.Open(r.key, []byte(seal.InfoResolve), []byte(r.requestID), r.reply.GetSealed())
	if err != nil {
		t.Fatalf("open material: %v", err)
	}
	var m rpcv1.ResolvedMaterial
	if err := proto.Unmarshal(pt, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// wantRefused checks that a resolve was refused with code and carried no
// material.
func (r resolveResult) wantRefused(t *testing.T, code string) {
	t.Helper()
	if r.reply.GetError().GetCode() != code {
		t.Fatalf("resolve error = %v, want code %s", r.reply.GetError(), code)
	}
	if len(r.reply.GetSealed()) != 0 {
		t.Fatal("a refused resolve carried sealed material")
	}
}

// recordReply keeps a reply, without its sealed material, in binary and
// text form.
func (h *harness) recordReply(t *testing.T, m proto.Message) {
	c := proto.Clone(m)
	if rr, ok := c.(*rpcv1.ResolveReply); ok {
		rr.Sealed = nil
	}
	b, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	h.replies = append(h.replies, string(b), prototext.Format(c))
}

// lastAudit returns the last verified audit event of kind in tenant.
func (h *harness) lastAudit(t *testing.T, tenant string, kind bus.AuditKind) *bus.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.n.JS.Stream(ctx, bus.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	subject, err := bus.AuditSubject(tenant, kind)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("no %s audit event in %s: %v", kind, tenant, err)
	}
	ev, err := h.adapter.Verifier.VerifyAudit(raw.Subject, raw.Header, raw.Data)
	if err != nil {
		t.Fatalf("audit event does not verify: %v", err)
	}
	return ev
}

// wantDenied checks that the last CredentialDenied of tenant is about the
// request r and says status.
func (h *harness) wantDenied(t *testing.T, tenant string, r resolveResult, status string) *auditv1.CredentialDenied {
	t.Helper()
	ev := h.lastAudit(t, tenant, bus.KindCredentialDenied)
	d := ev.Msg.(*auditv1.CredentialDenied)
	if d.GetMeta().GetRequestId() != r.requestID {
		t.Fatalf("last CredentialDenied is for request %q, want %q", d.GetMeta().GetRequestId(), r.requestID)
	}
	if d.GetCall().GetCredentialStatus() != status || d.GetCall().GetGate() != "broker" || d.GetCall().GetReason() == "" {
		t.Fatalf("CredentialDenied call = %v, want status %s with a reason", d.GetCall(), status)
	}
	return d
}

// canaryForms returns the forms of a secret to search for: raw, hex,
// base64 at every alignment, URL-escaped, JSON-escaped and Go-quoted.
func canaryForms(s string) []string {
	forms := storetest.Encodings(s)
	forms = append(forms, strings.ReplaceAll(strings.ReplaceAll(s, "\"", "%22"), " ", "%20"))
	j, _ := json.Marshal(s)
	forms = append(forms, strings.Trim(string(j), `"`))
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	forms = append(forms, strings.Trim(strings.TrimSpace(b.String()), `"`))
	forms = append(forms, strings.Trim(strconv.Quote(s), `"`))
	return forms
}

// assertNoCanary fails if any form of canary shows in text.
func assertNoCanary(t *testing.T, where, text, canary string) {
	t.Helper()
	for _, f := range canaryForms(canary) {
		if strings.Contains(text, f) {
			t.Fatalf("%s shows the secret (form %q)", where, f)
		}
	}
}

// assertCanaryNowhere searches logs, every NATS message, every reply and
// every file under the state directory.
func (h *harness) assertCanaryNowhere(t *testing.T, canary string) {
	t.Helper()
	msgs := h.drainTap(t)
	assertNoCanary(t, "the log", h.logs.String(), canary)
	for _, m := range msgs {
		var b strings.Builder
		b.WriteString(m.Subject)
		b.WriteByte('\n')
		b.Write(m.Data)
		for k, vs := range m.Header {
			b.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
		assertNoCanary(t, "NATS message on "+m.Subject, b.String(), canary)
	}
	for _, r := range h.replies {
		assertNoCanary(t, "a reply", r, canary)
	}
	files := 0
	err := filepath.WalkDir(h.stateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		assertNoCanary(t, "file "+path, string(b), canary)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no file under the state directory")
	}
}

// newCanary returns a unique secret with characters that URL and JSON
// escaping change.
func newCanary(t *testing.T) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "cnry-" + hex.EncodeToString(b[:]) + `-<&>"/+=? x`
}
