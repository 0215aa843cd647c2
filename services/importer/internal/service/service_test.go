package service_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	libcatalog "github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/services/importer/internal/service"
	"github.com/mcpgw/mcpgw/tools/demoapi"
)

const (
	tenant = "demo"
	// maxDoc is the document limit the tests run the importer with.
	maxDoc = 256 << 10
	// revokedKey is an operator credential revoked before the importer starts.
	revokedKey = "key_revoked"
)

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}

type fixture struct {
	t       *testing.T
	ctx     context.Context
	n       *testenv.NATSServer
	keys    *testenv.Keys
	logs    *syncBuffer
	edge    *bus.Runtime
	uploads jetstream.ObjectStore
	// cat is a reader's view of CONTROL (as policy builds it).
	cat  *libcatalog.Catalog
	proj *bus.Projection
}

// startImporter runs one importer instance on its own runtime until the
// test ends and waits until it serves.
func (f *fixture) startImporter() { f.startStoppableImporter() }

// startStoppableImporter is startImporter, and returns a function that
// stops the instance (once) before the test ends.
func (f *fixture) startStoppableImporter() (stopImporter func()) {
	t := f.t
	log := slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(f.ctx, 20*time.Second)
	defer cancel()
	rt, err := bus.OpenWith(ctx, bus.RuntimeConfig{Service: bus.Importer, URL: f.n.URL, PasswordFile: f.n.PasswordFile(bus.Importer), Logger: log},
		f.keys.ID[bus.Importer], f.keys.Keyring)
	if err != nil {
		t.Fatalf("open importer runtime: %v", err)
	}
	t.Cleanup(rt.Close)
	svc, err := service.NewWithRuntime(service.Config{Logger: log, MaxDocumentBytes: maxDoc}, rt)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	var once sync.Once
	stopImporter = func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("importer run: %v", err)
			}
			svc.Close()
		})
	}
	t.Cleanup(stopImporter)
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("importer stopped before serving: %v", err)
	case <-ctx.Done():
		t.Fatal("importer did not become ready")
	}
	return stopImporter
}

func newFixture(t *testing.T, importers int) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &fixture{t: t, ctx: ctx, n: testenv.NATS(t), keys: testenv.NewKeys(t), logs: &syncBuffer{}}
	policy := f.n.Runtime(t, f.keys, bus.Policy)
	// An operator credential revoked before the importer starts: its replay
	// must reach the importer's read model before it serves.
	if _, err := policy.Publisher.AppendControl(ctx, bus.AggAgent, "agt_1", &controlv1.AgentKeyRevoked{
		Meta: &commonv1.EventMeta{Tenant: tenant, Actor: &commonv1.Actor{Kind: "operator", Id: "admin", Via: "policy"}}, AgentId: "agt_1", KeyId: revokedKey,
	}, bus.Expect{}); err != nil {
		t.Fatal(err)
	}
	for range importers {
		f.startImporter()
	}
	f.edge = f.n.Runtime(t, f.keys, bus.Edge)
	var err error
	if f.uploads, err = f.edge.JetStream.ObjectStore(ctx, bus.BucketUploads); err != nil {
		t.Fatal(err)
	}
	if f.proj, err = policy.NewProjection(); err != nil {
		t.Fatal(err)
	}
	f.cat = libcatalog.New()
	go func() { _ = f.proj.Run(ctx, f.cat.Apply) }()
	// Stop every goroutine of the fixture before its runtimes close.
	t.Cleanup(cancel)
	return f
}

// upload stores doc in the upload bucket as the edge does.
func (f *fixture) upload(doc []byte) *controlv1.DocumentRef {
	f.t.Helper()
	name := tenant + "/" + bus.NewID("upl_")
	if _, err := f.uploads.Put(f.ctx, jetstream.ObjectMeta{Name: name}, bytes.NewReader(doc)); err != nil {
		f.t.Fatal(err)
	}
	sum := sha256.Sum256(doc)
	return &controlv1.DocumentRef{Bucket: bus.BucketUploads, Object: name, Sha256: hex.EncodeToString(sum[:]), Size: uint64(len(doc))}
}

// authorization returns policy's authorization of cmd for an operator
// (platform admin through the CLI); mod may change it before signing.
func (f *fixture) authorization(cmd *rpcv1.ImportSource, mod func(*commonv1.Authorization)) *commonv1.SignedAuthorization {
	f.t.Helper()
	c := proto.Clone(cmd).(*rpcv1.ImportSource)
	c.Authorization = nil
	digest, err := reqctx.CommandDigest(c)
	if err != nil {
		f.t.Fatal(err)
	}
	now := time.Now()
	a := &commonv1.Authorization{
		Actor: &commonv1.Context{Tenant: cmd.GetTenant(), Surface: "cli", CredentialKind: "admin_token", CredentialId: "admin",
			PlatformAdmin: true, IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute))},
		Tenant: cmd.GetTenant(), Command: reqctx.CommandName(c), CommandDigest: digest, RequestId: bus.NewID("req_"),
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(50 * time.Second)), AuthorizationId: bus.NewID("authz_"),
	}
	if mod != nil {
		mod(a)
	}
	sa, err := reqctx.SignAuthorization(f.keys.ID[bus.Policy], a)
	if err != nil {
		f.t.Fatal(err)
	}
	return sa
}

func (f *fixture) command(tnt, name, sourceID string, ref *controlv1.DocumentRef) *rpcv1.ImportSource {
	cmd := &rpcv1.ImportSource{Tenant: tnt, Name: name, SourceId: sourceID, Upload: ref}
	cmd.Authorization = f.authorization(cmd, nil)
	return cmd
}

// call sends cmd as the edge does.
func (f *fixture) call(cmd *rpcv1.ImportSource) *rpcv1.ImportReply {
	f.t.Helper()
	reply, err := f.callErr(cmd)
	if err != nil {
		f.t.Fatalf("call import: %v", err)
	}
	return reply
}

// callErr is call for goroutines other than the test's.
func (f *fixture) callErr(cmd *rpcv1.ImportSource) (*rpcv1.ImportReply, error) {
	ctx, cancel := context.WithTimeout(bus.WithMeta(f.ctx, bus.Meta{RequestID: bus.NewID("req_"), Tenant: cmd.GetTenant()}), 30*time.Second)
	defer cancel()
	var reply rpcv1.ImportReply
	if err := f.edge.Client.Call(ctx, bus.ImporterImport, cmd, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

// controlMsg is one raw CONTROL message.
type controlMsg struct {
	subject string
	header  nats.Header
	data    []byte
}

// control reads every message on CONTROL (as the admin).
func (f *fixture) control() []controlMsg {
	f.t.Helper()
	s, err := f.n.JS.Stream(f.ctx, bus.StreamControl)
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := s.Info(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []controlMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(f.ctx, seq)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, controlMsg{m.Subject, m.Header, m.Data})
	}
	return out
}

// sourceEvents returns the verified events of one source aggregate, in order.
func (f *fixture) sourceEvents(sourceID string) []*bus.Event {
	f.t.Helper()
	v, err := bus.NewVerifier(f.keys.Keyring)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*bus.Event
	for _, m := range f.control() {
		t, err := bus.ParseControlSubject(m.subject)
		if err != nil || t.Aggregate != string(bus.AggSource) || t.ID != sourceID {
			continue
		}
		ev, err := v.VerifyControl(m.subject, m.header, m.data)
		if err != nil {
			f.t.Fatalf("unverifiable event %s: %v", m.subject, err)
		}
		if ev.Signer != bus.Importer {
			f.t.Fatalf("event %s signed by %s", m.subject, ev.Signer)
		}
		out = append(out, ev)
	}
	return out
}

// storedObjects counts the objects in the sources bucket.
func (f *fixture) storedObjects() int {
	f.t.Helper()
	obs, err := f.n.JS.ObjectStore(f.ctx, bus.BucketSources)
	if err != nil {
		f.t.Fatal(err)
	}
	list, err := obs.List(f.ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		f.t.Fatal(err)
	}
	return len(list)
}

// readerSees waits until the reader's catalog has applied all of CONTROL.
func (f *fixture) readerSees() {
	f.t.Helper()
	msgs := f.control()
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	s, _ := f.n.JS.Stream(f.ctx, bus.StreamControl)
	info, err := s.Info(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.proj.WaitFor(ctx, info.State.LastSeq); err != nil {
		f.t.Fatalf("reader did not catch up with %d messages: %v", len(msgs), err)
	}
}

func wantError(t *testing.T, reply *rpcv1.ImportReply, code errcode.Code, msg string) {
	t.Helper()
	if reply.GetError().GetCode() != string(code) || !strings.Contains(reply.GetError().GetMessage(), msg) {
		t.Fatalf("reply error = %v, want code %s with %q", reply.GetError(), code, msg)
	}
	if reply.GetSourceId() != "" || reply.GetVersion() != 0 || len(reply.GetReview()) != 0 {
		t.Fatalf("refused reply carries a result: %v", reply)
	}
}

func TestImport(t *testing.T) {
	f := newFixture(t, 1)
	doc := demoapi.OpenAPI("http://127.0.0.1:8090")
	ref := f.upload(doc)
	cmd := f.command(tenant, "Demo Messages API", "", ref)

	var sourceID string
	var v1Digest []byte
	t.Run("new source", func(t *testing.T) {
		reply := f.call(cmd)
		if reply.GetError() != nil {
			t.Fatalf("import failed: %v", reply.GetError())
		}
		sourceID = reply.GetSourceId()
		if !strings.HasPrefix(sourceID, "src_") || !bus.ValidToken(sourceID) || reply.GetVersion() != 1 {
			t.Fatalf("reply = %s/%d", sourceID, reply.GetVersion())
		}
		var review analysis.Result
		if err := json.Unmarshal(reply.GetReview(), &review); err != nil {
			t.Fatalf("review is not an analysis result: %v", err)
		}
		if review.Title != "Demo Messages API" || len(review.Operations) != 2 {
			t.Fatalf("review = %q with %d operations", review.Title, len(review.Operations))
		}

		evs := f.sourceEvents(sourceID)
		var names []string
		for _, ev := range evs {
			names = append(names, ev.Name())
		}
		if !slices.Equal(names, []string{"SourceVersionStarted", "ToolProposed", "ToolProposed", "SourceVersionCommitted"}) {
			t.Fatalf("events = %v", names)
		}
		for i, ev := range evs {
			m := ev.Meta
			want := &commonv1.Actor{Kind: "operator", Id: "admin", Surface: "cli", Via: "importer"}
			if m.GetTenant() != tenant || !proto.Equal(m.GetActor(), want) || m.GetAggregateVersion() != uint64(i+1) || !strings.HasPrefix(m.GetRequestId(), "req_") {
				t.Fatalf("event %d meta = %v", i, m)
			}
		}
		started := evs[0].Msg.(*controlv1.SourceVersionStarted)
		sum := sha256.Sum256(doc)
		wantDoc := &controlv1.DocumentRef{Bucket: bus.BucketSources, Object: tenant + "/" + sourceID + "/v1", Sha256: hex.EncodeToString(sum[:]), Size: uint64(len(doc))}
		if started.GetVersion() != 1 || started.GetName() != "Demo Messages API" || started.GetSlug() != "demo-messages-api" ||
			started.GetFormat() != "openapi3.0" || started.GetTitle() != "Demo Messages API" ||
			!proto.Equal(started.GetDocument(), wantDoc) || !slices.Equal(started.GetProposedHosts(), []string{"127.0.0.1:8090"}) {
			t.Fatalf("started = %v", started)
		}
		obs, err := f.n.JS.ObjectStore(f.ctx, bus.BucketSources)
		if err != nil {
			t.Fatal(err)
		}
		stored, err := obs.GetBytes(f.ctx, wantDoc.GetObject())
		if err != nil || !bytes.Equal(stored, doc) {
			t.Fatalf("stored document differs from the upload: %v", err)
		}

		var specs []*controlv1.ToolSpec
		for _, ev := range evs[1:3] {
			tp := ev.Msg.(*controlv1.ToolProposed)
			if tp.GetSourceId() != sourceID || tp.GetVersion() != 1 {
				t.Fatalf("tool proposed for %s/%d", tp.GetSourceId(), tp.GetVersion())
			}
			specs = append(specs, tp.GetTool())
		}
		commit := evs[3].Msg.(*controlv1.SourceVersionCommitted)
		h := sha256.New()
		for _, s := range specs {
			d, err := libcatalog.ToolDigest(s)
			if err != nil {
				t.Fatal(err)
			}
			h.Write(d)
		}
		if commit.GetToolCount() != 2 || !bytes.Equal(commit.GetToolsDigest(), h.Sum(nil)) {
			t.Fatalf("commit = %v", commit)
		}
		v1Digest = commit.GetToolsDigest()

		f.readerSees()
		v, ok := f.cat.Version(tenant, sourceID, 1)
		if !ok || !v.Committed {
			t.Fatal("reader does not see a committed version 1")
		}
		var tools []string
		for name := range v.Tools {
			tools = append(tools, name)
		}
		slices.Sort(tools)
		if !slices.Equal(tools, []string{"get_message", "send_message"}) {
			t.Fatalf("tools = %v", tools)
		}
		for _, spec := range v.Tools {
			if bytes.Contains(bytes.ToLower(spec.GetInputSchema()), []byte("x-api-key")) {
				t.Fatalf("tool %s input schema carries the credential header", spec.GetName())
			}
			for _, p := range spec.GetOperation().GetParams() {
				if strings.EqualFold(p.GetName(), "X-API-Key") {
					t.Fatalf("tool %s maps an input onto the credential header", spec.GetName())
				}
			}
			if len(spec.GetAuth()) != 1 || len(spec.GetAuth()[0].GetSchemes()) != 1 {
				t.Fatalf("tool %s auth = %v", spec.GetName(), spec.GetAuth())
			}
			s := spec.GetAuth()[0].GetSchemes()[0]
			if s.GetName() != "ApiKeyAuth" || s.GetKind() != "apiKey" || s.GetIn() != "header" || s.GetParam() != "X-API-Key" || s.GetCallerVisible() {
				t.Fatalf("tool %s scheme = %v", spec.GetName(), s)
			}
			if !slices.Equal(spec.GetOperation().GetServers(), []string{"http://127.0.0.1:8090"}) {
				t.Fatalf("tool %s servers = %v", spec.GetName(), spec.GetOperation().GetServers())
			}
		}
		send := v.Tools["send_message"]
		if send.GetOperation().GetMethod() != "POST" || send.GetOperation().GetPath() != "/v1/messages" || send.GetOperation().GetContentType() != "application/json" {
			t.Fatalf("send_message operation = %v", send.GetOperation())
		}
	})
	if sourceID == "" {
		t.FailNow()
	}

	t.Run("re-import is version 2 with stable names", func(t *testing.T) {
		c := &rpcv1.ImportSource{Tenant: tenant, SourceId: sourceID, Upload: f.upload(doc)}
		c.Authorization = f.authorization(c, func(a *commonv1.Authorization) { a.Actor.User, a.Actor.Surface = "alice", "ui" })
		reply := f.call(c)
		if reply.GetError() != nil || reply.GetSourceId() != sourceID || reply.GetVersion() != 2 {
			t.Fatalf("reply = %v", reply)
		}
		evs := f.sourceEvents(sourceID)
		if len(evs) != 8 {
			t.Fatalf("%d events on the source, want 8", len(evs))
		}
		started := evs[4].Msg.(*controlv1.SourceVersionStarted)
		if started.GetVersion() != 2 || started.GetName() != "Demo Messages API" || started.GetSlug() != "demo-messages-api" ||
			started.GetDocument().GetObject() != tenant+"/"+sourceID+"/v2" {
			t.Fatalf("started = %v", started)
		}
		if a := evs[4].Meta.GetActor(); a.GetId() != "alice" || a.GetSurface() != "ui" {
			t.Fatalf("actor = %v", a)
		}
		commit := evs[7].Msg.(*controlv1.SourceVersionCommitted)
		if !bytes.Equal(commit.GetToolsDigest(), v1Digest) {
			t.Fatal("unchanged description proposed different tools")
		}
		f.readerSees()
		v, ok := f.cat.Version(tenant, sourceID, 2)
		if !ok || v.Tools["get_message"] == nil || v.Tools["send_message"] == nil || len(v.Tools) != 2 {
			t.Fatalf("version 2 not committed with the same tool names")
		}
	})

	t.Run("refusals write nothing", func(t *testing.T) {
		good := f.upload(doc)
		wrongSum := proto.Clone(good).(*controlv1.DocumentRef)
		wrongSum.Sha256 = strings.Repeat("ab", 32)
		wrongSize := proto.Clone(good).(*controlv1.DocumentRef)
		wrongSize.Size++
		otherBucket := proto.Clone(good).(*controlv1.DocumentRef)
		otherBucket.Bucket = bus.BucketSources
		missing := proto.Clone(good).(*controlv1.DocumentRef)
		missing.Object = tenant + "/upl_missing"
		syntax := f.upload([]byte("openapi: 3.0.3\ninfo:\n  title: Broken\n  version: '1'\npaths:\n  /x:\n    get: [unclosed\n"))
		async := f.upload([]byte("asyncapi: 2.6.0\ninfo: {title: Events, version: \"1\"}\nchannels: {}\n"))
		huge := f.upload(bytes.Repeat([]byte("#"), maxDoc+1))

		tests := []struct {
			name string
			cmd  func() *rpcv1.ImportSource
			code errcode.Code
			msg  string
		}{
			{"malformed description", func() *rpcv1.ImportSource { return f.command(tenant, "Broken", "", syntax) }, errcode.InvalidArgument, "at line 8, column 1"},
			{"unsupported format", func() *rpcv1.ImportSource { return f.command(tenant, "Events", "", async) }, errcode.InvalidArgument, "asyncapi"},
			{"SHA-256 mismatch", func() *rpcv1.ImportSource { return f.command(tenant, "X", "", wrongSum) }, errcode.InvalidArgument, "SHA-256"},
			{"size mismatch", func() *rpcv1.ImportSource { return f.command(tenant, "X", "", wrongSize) }, errcode.InvalidArgument, "size"},
			{"bad SHA-256", func() *rpcv1.ImportSource {
				r := proto.Clone(good).(*controlv1.DocumentRef)
				r.Sha256 = "xyz"
				return f.command(tenant, "X", "", r)
			}, errcode.InvalidArgument, "SHA-256"},
			{"other bucket", func() *rpcv1.ImportSource { return f.command(tenant, "X", "", otherBucket) }, errcode.InvalidArgument, "bucket"},
			{"no upload", func() *rpcv1.ImportSource { return f.command(tenant, "X", "", nil) }, errcode.InvalidArgument, "upload"},
			{"upload missing", func() *rpcv1.ImportSource { return f.command(tenant, "X", "", missing) }, errcode.NotFound, "upload"},
			{"over the size limit", func() *rpcv1.ImportSource { return f.command(tenant, "X", "", huge) }, errcode.TooLarge, "limit"},
			{"new source without name", func() *rpcv1.ImportSource { return f.command(tenant, " ", "", good) }, errcode.InvalidArgument, "name"},
			{"name with control characters", func() *rpcv1.ImportSource { return f.command(tenant, "a\x00b", "", good) }, errcode.InvalidArgument, "name"},
			{"unknown source", func() *rpcv1.ImportSource { return f.command(tenant, "", "src_0123", good) }, errcode.NotFound, "source"},
			{"source of another tenant", func() *rpcv1.ImportSource { return f.command("other", "", sourceID, good) }, errcode.NotFound, "source"},
			{"invalid source ID", func() *rpcv1.ImportSource { return f.command(tenant, "", "src.>", good) }, errcode.InvalidID, "source ID"},
			{"invalid tenant", func() *rpcv1.ImportSource { return f.command("Demo.*", "X", "", good) }, errcode.InvalidID, "tenant"},
			{"no authorization", func() *rpcv1.ImportSource {
				return &rpcv1.ImportSource{Tenant: tenant, Name: "X", Upload: good}
			}, errcode.PermissionDenied, "authorization"},
			{"authorization for another tenant", func() *rpcv1.ImportSource {
				c := &rpcv1.ImportSource{Tenant: tenant, Name: "X", Upload: good}
				c.Authorization = f.authorization(c, func(a *commonv1.Authorization) { a.Tenant = "other" })
				return c
			}, errcode.PermissionDenied, "authorization"},
			{"authorization for another command", func() *rpcv1.ImportSource {
				c := f.command(tenant, "X", "", good)
				c.Name = "Y"
				return c
			}, errcode.PermissionDenied, "authorization"},
			{"authorization signed by another key", func() *rpcv1.ImportSource {
				c := &rpcv1.ImportSource{Tenant: tenant, Name: "X", Upload: good}
				c.Authorization = f.authorization(c, nil)
				forger, err := bus.NewIdentity(bus.Policy)
				if err != nil {
					t.Fatal(err)
				}
				c.Authorization.Signature = forger.Sign(c.Authorization.GetAuthorization())
				return c
			}, errcode.PermissionDenied, "authorization"},
			{"expired authorization", func() *rpcv1.ImportSource {
				c := &rpcv1.ImportSource{Tenant: tenant, Name: "X", Upload: good}
				c.Authorization = f.authorization(c, func(a *commonv1.Authorization) {
					a.IssuedAt = timestamppb.New(time.Now().Add(-2 * time.Minute))
					a.ExpiresAt = timestamppb.New(time.Now().Add(-time.Minute - time.Second))
				})
				return c
			}, errcode.PermissionDenied, "authorization"},
			{"revoked operator credential", func() *rpcv1.ImportSource {
				c := &rpcv1.ImportSource{Tenant: tenant, Name: "X", Upload: good}
				c.Authorization = f.authorization(c, func(a *commonv1.Authorization) { a.Actor.CredentialId = revokedKey })
				return c
			}, errcode.PermissionDenied, "revoked"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before, objects := len(f.control()), f.storedObjects()
				wantError(t, f.call(tc.cmd()), tc.code, tc.msg)
				if after := len(f.control()); after != before {
					t.Fatalf("refused import appended %d CONTROL messages", after-before)
				}
				if after := f.storedObjects(); after != objects {
					t.Fatalf("refused import stored %d documents", after-objects)
				}
			})
		}
	})

	t.Run("unauthenticated requests get no answer", func(t *testing.T) {
		before := len(f.control())
		data, err := proto.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		// Unsigned.
		if _, err := f.edge.Conn.Request(bus.ImporterImport.Subject(), data, 500*time.Millisecond); err == nil {
			t.Fatal("unsigned request answered")
		}
		// Signed by a service that may not call the verb.
		msg, err := bus.SignRequest(f.keys.ID[bus.Adapter], bus.ImporterImport.Subject(), data, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		msg.Header.Set(bus.HeaderCaller, string(bus.Edge))
		if _, err := f.edge.Conn.RequestMsg(msg, 500*time.Millisecond); err == nil {
			t.Fatal("request signed by the adapter's key answered")
		}
		if after := len(f.control()); after != before {
			t.Fatalf("unauthenticated requests appended %d CONTROL messages", after-before)
		}
	})
}

func TestImportCanary(t *testing.T) {
	f := newFixture(t, 1)
	const canary = "cnry-7f3a9c2e41d8b6a0"
	doc := []byte(`openapi: 3.0.3
info: {title: Canary API, version: "1"}
servers: [{url: "https://api.example.com/v2"}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
security: [{key: []}]
paths:
  /things:
    get:
      operationId: listThings
      parameters:
        - {name: X-API-Key, in: header, required: true, example: "` + canary + `", schema: {type: string, default: "` + canary + `"}}
        - {name: api_key, in: query, schema: {type: string, example: "` + canary + `"}}
        - {name: limit, in: query, schema: {type: integer}}
      responses:
        "200": {description: ok}
`)
	reply := f.call(f.command(tenant, "Canary API", "", f.upload(doc)))
	if reply.GetError() != nil {
		t.Fatalf("import failed: %v", reply.GetError())
	}
	evs := f.sourceEvents(reply.GetSourceId())
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	spec := evs[1].Msg.(*controlv1.ToolProposed).GetTool()
	var schema struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(spec.GetInputSchema(), &schema); err != nil {
		t.Fatal(err)
	}
	if _, ok := schema.Properties["limit"]; !ok || len(schema.Properties) != 1 {
		t.Fatalf("input properties = %v, want only limit", schema.Properties)
	}
	var params []string
	for _, alt := range spec.GetAuth() {
		for _, s := range alt.GetSchemes() {
			params = append(params, s.GetIn()+":"+s.GetParam())
		}
	}
	slices.Sort(params)
	if !slices.Equal(params, []string{"header:X-API-Key", "query:api_key"}) {
		t.Fatalf("auth params = %v", params)
	}

	replyBytes, err := proto.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	var events []byte
	for _, m := range f.control() {
		events = append(events, m.data...)
		for k, v := range m.header {
			events = append(events, k...)
			events = append(events, strings.Join(v, ",")...)
		}
	}
	logs := f.logs.Bytes()
	if len(logs) == 0 {
		t.Fatal("no log output captured")
	}
	secrets := [][]byte{[]byte(canary)}
	secrets = append(secrets, f.n.Secrets...)
	for _, s := range secrets {
		quoted, _ := json.Marshal(string(s))
		forms := [][]byte{s, []byte(base64.StdEncoding.EncodeToString(s)), []byte(base64.URLEncoding.EncodeToString(s)),
			[]byte(url.QueryEscape(string(s))), quoted[1 : len(quoted)-1]}
		for _, form := range forms {
			for where, b := range map[string][]byte{"logs": logs, "events": events, "reply": replyBytes} {
				if bytes.Contains(b, form) {
					t.Fatalf("a secret appears in the %s", where)
				}
			}
		}
	}
}

func TestConcurrentReimports(t *testing.T) {
	f := newFixture(t, 2)
	doc := demoapi.OpenAPI("http://127.0.0.1:8090")
	first := f.call(f.command(tenant, "Demo", "", f.upload(doc)))
	if first.GetError() != nil {
		t.Fatalf("import failed: %v", first.GetError())
	}
	sourceID := first.GetSourceId()

	const n = 4
	replies := make([]*rpcv1.ImportReply, n)
	errs := make([]error, n)
	cmds := make([]*rpcv1.ImportSource, n)
	for i := range cmds {
		cmds[i] = f.command(tenant, "", sourceID, f.upload(doc))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { replies[i], errs[i] = f.callErr(cmds[i]) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("call import: %v", err)
	}

	versions := map[uint32]bool{1: true}
	for _, r := range replies {
		switch {
		case r.GetError() == nil:
			if versions[r.GetVersion()] {
				t.Fatalf("version %d reported twice", r.GetVersion())
			}
			versions[r.GetVersion()] = true
		case r.GetError().GetCode() == string(errcode.Conflict) || r.GetError().GetCode() == string(errcode.Unavailable):
		default:
			t.Fatalf("unexpected error: %v", r.GetError())
		}
	}
	t.Logf("committed versions: %v", versions)
	if len(versions) < 2 {
		t.Fatal("no concurrent re-import succeeded")
	}
	// The aggregate's versions are consecutive: no event was written over a
	// stale expectation.
	for i, ev := range f.sourceEvents(sourceID) {
		if ev.Meta.GetAggregateVersion() != uint64(i+1) {
			t.Fatalf("event %d has aggregate version %d", i, ev.Meta.GetAggregateVersion())
		}
	}
	f.readerSees()
	for v := range versions {
		ver, ok := f.cat.Version(tenant, sourceID, v)
		if !ok || len(ver.Tools) != 2 {
			t.Fatalf("reported version %d is not committed with its tools", v)
		}
	}
}

func TestNewFromFiles(t *testing.T) {
	n := testenv.NATS(t)
	keys := testenv.NewKeys(t)
	dir := t.TempDir()
	identity, keyring := dir+"/importer.key", dir+"/keyring.json"
	if err := bus.WriteIdentityFile(identity, keys.ID[bus.Importer]); err != nil {
		t.Fatal(err)
	}
	kr, err := json.Marshal(keys.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.WriteSecretFile(keyring, kr); err != nil {
		t.Fatal(err)
	}
	good := service.Config{NATSURL: n.URL, NATSPasswordFile: n.PasswordFile(bus.Importer), IdentityFile: identity, KeyringFile: keyring,
		Logger: slog.New(slog.NewTextHandler(&syncBuffer{}, nil))}

	refused := []struct {
		name string
		mod  func(*service.Config)
	}{
		{"no identity", func(c *service.Config) { c.IdentityFile = "" }},
		{"no password file in production", func(c *service.Config) { c.NATSPasswordFile, c.Production = "", true }},
		{"credentials in the URL", func(c *service.Config) { c.NATSURL = strings.Replace(n.URL, "nats://", "nats://importer:pw@", 1) }},
		{"negative limit", func(c *service.Config) { c.MaxDocumentBytes = -1 }},
		{"another service's identity", func(c *service.Config) {
			other := dir + "/edge.key"
			if err := bus.WriteIdentityFile(other, keys.ID[bus.Edge]); err != nil {
				t.Fatal(err)
			}
			c.IdentityFile = other
		}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			if svc, err := service.New(cfg); err == nil {
				svc.Close()
				t.Fatal("config accepted")
			}
		})
	}

	t.Run("serves", func(t *testing.T) {
		svc, err := service.New(good)
		if err != nil {
			t.Fatal(err)
		}
		defer svc.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		select {
		case <-svc.Ready():
		case err := <-done:
			t.Fatalf("run: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatal("not ready")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run: %v", err)
		}
	})
}
