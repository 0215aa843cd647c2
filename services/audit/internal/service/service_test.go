package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/chproc"
	"github.com/mcpgw/mcpgw/libs/errcode"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/testenv"

	"github.com/mcpgw/mcpgw/services/audit/internal/service"
)

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stack is a NATS server, the keys of every service, and a running audit
// service writing to database db.
type stack struct {
	n    *testenv.NATSServer
	keys *testenv.Keys
	logs *logBuffer
	rt   map[bus.Service]*bus.Runtime
}

func newStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{n: testenv.NATS(t), keys: testenv.NewKeys(t), logs: &logBuffer{}, rt: map[bus.Service]*bus.Runtime{}}
	for _, svc := range []bus.Service{bus.Edge, bus.Importer, bus.Policy, bus.Broker, bus.Adapter} {
		s.rt[svc] = s.n.Runtime(t, s.keys, svc)
	}
	return s
}

// start runs the audit service against ClickHouse at addr.
func (s *stack) start(t *testing.T, addr, db string, password secret.Value) {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := service.NewWithDeps(service.Config{
		ClickHouse: service.ClickHouseConfig{Addr: addr, Database: db},
		ApplyDDL:   true, BatchSize: 100, BatchWait: 200 * time.Millisecond,
		RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond, Logger: log,
	}, service.Deps{Runtime: s.n.Runtime(t, s.keys, bus.Audit), ClickHousePassword: password})
	if err != nil {
		t.Fatalf("new service: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		svc.Close()
	})
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatalf("service stopped: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("service not ready")
	}
}

// authorize returns cmd carrying policy's authorization of an admin for
// tenant; mutate may change the authorization before it is signed.
func (s *stack) authorize(t *testing.T, cmd *rpcv1.QueryAudit, tenant string, mutate func(*commonv1.Authorization)) *rpcv1.QueryAudit {
	t.Helper()
	cmd.Authorization = nil
	digest, err := reqctx.CommandDigest(cmd)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	a := &commonv1.Authorization{
		Actor: &commonv1.Context{Tenant: tenant, User: "admin", CredentialId: "adm_1", CredentialKind: "admin_token",
			PlatformAdmin: true, IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(30 * time.Second))},
		Tenant: tenant, Command: reqctx.CommandName(cmd), CommandDigest: digest, RequestId: "req_query",
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(30 * time.Second)), AuthorizationId: bus.NewID("az_"),
	}
	signer := s.keys.ID[bus.Policy]
	if mutate != nil {
		mutate(a)
	}
	if a.GetAuthorizationId() == "forged" {
		if signer, err = bus.NewIdentity(bus.Policy); err != nil { // a key policy does not hold
			t.Fatal(err)
		}
	}
	sa, err := reqctx.SignAuthorization(signer, a)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Authorization = sa
	return cmd
}

// query calls rpc.audit.query as the edge.
func (s *stack) query(t *testing.T, cmd *rpcv1.QueryAudit) *rpcv1.QueryAuditReply {
	t.Helper()
	var reply rpcv1.QueryAuditReply
	ctx := bus.WithMeta(ctxT(t), bus.Meta{RequestID: "req_query", Tenant: cmd.GetTenant()})
	if err := s.rt[bus.Edge].Client.Call(ctx, bus.AuditQuery, cmd, &reply); err != nil {
		t.Fatalf("call %s: %v", bus.AuditQuery.Subject(), err)
	}
	return &reply
}

// rowsFor polls until the admin query for (tenant, request, binding)
// returns want rows.
func (s *stack) rowsFor(t *testing.T, tenant, requestID, bindingID string, want int) []*rpcv1.AuditRow {
	t.Helper()
	var rows []*rpcv1.AuditRow
	eventually(t, fmt.Sprintf("%d rows for %s/%s/%s", want, tenant, requestID, bindingID), func() bool {
		r := s.query(t, s.authorize(t, &rpcv1.QueryAudit{Tenant: tenant, RequestId: requestID, BindingId: bindingID}, tenant, nil))
		rows = r.GetRows()
		return r.GetError() == nil && len(rows) >= want
	})
	if len(rows) != want {
		t.Fatalf("%d rows, want %d", len(rows), want)
	}
	return rows
}

func (s *stack) publish(t *testing.T, svc bus.Service, kind bus.AuditKind, ev bus.Message) bus.Appended {
	t.Helper()
	a, err := s.rt[svc].Publisher.PublishAudit(ctxT(t), kind, ev)
	if err != nil {
		t.Fatalf("publish %s as %s: %v", kind, svc, err)
	}
	return a
}

func (s *stack) appendControl(t *testing.T, svc bus.Service, agg bus.Aggregate, id string, ev bus.Message, version uint64, lastSeq uint64) bus.Appended {
	t.Helper()
	a, err := s.rt[svc].Publisher.AppendControl(ctxT(t), agg, id, ev, bus.Expect{LastSeq: lastSeq, Version: version})
	if err != nil {
		t.Fatalf("append %T as %s: %v", ev, svc, err)
	}
	return a
}

func (s *stack) ackFloor(t *testing.T, stream, durable string) uint64 {
	t.Helper()
	c, err := s.n.JS.Consumer(ctxT(t), stream, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := c.Info(ctxT(t))
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	return info.AckFloor.Stream
}

func operator(via string) *commonv1.Actor {
	return &commonv1.Actor{Kind: "operator", Id: "admin", Surface: "cli", Via: via}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// encodings returns s raw, base64-, URL- and JSON-escaped.
func encodings(s string) []string {
	j, _ := json.Marshal(s)
	return []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)),
		url.QueryEscape(s), url.PathEscape(s), strings.Trim(string(j), `"`)}
}

func TestAuditService(t *testing.T) {
	st := newStack(t)
	ch := testenv.ClickHouse(t)
	st.start(t, ch.Addr, "mcpgw_audit", ch.Password)

	canary := "canary-" + randomHex(t) + "/+&\"<>"
	principal := &auditv1.Principal{User: "u1", Agent: "agent_1", Workload: "wl", Surface: "mcp", ReportedSurface: "claude-code",
		Environment: "dev", CredentialFingerprint: "fp_1"}
	meta := func(tenant, req string) *commonv1.EventMeta {
		return &commonv1.EventMeta{Tenant: tenant, RequestId: req, Actor: &commonv1.Actor{Kind: "agent", Id: "agent_1", Surface: "mcp"}}
	}

	// The runtime path of one tool call in t1, and one in t2 with the same
	// request and binding IDs.
	st.publish(t, bus.Edge, bus.KindEdgeRefused, &auditv1.EdgeRefused{Meta: meta("t1", "req_edge"), Principal: principal,
		ReasonCode: "rate_limited", RemoteAddr: "127.0.0.1:5555", Method: "tools/call"})
	refused := st.publish(t, bus.Adapter, bus.KindInvocationRefused, &auditv1.InvocationRefused{Meta: meta("t1", "req_1"), Principal: principal,
		Call: &auditv1.Call{Tool: "list_pets", SourceId: "src_1", Gate: "schema", Reason: "missing property limit", PolicyOutcome: "allowed",
			CredentialStatus: "not_resolved", AdapterOutcome: "refused"}})
	resolved := st.publish(t, bus.Broker, bus.KindCredentialResolved, &auditv1.CredentialResolved{Meta: meta("t1", "req_1"), Principal: principal,
		Call: &auditv1.Call{Tool: "list_pets", SourceId: "src_1", BindingIds: []string{"bnd_1"}, CredentialStatus: "resolved"}})
	used := st.publish(t, bus.Adapter, bus.KindCredentialUsed, &auditv1.CredentialUsed{Meta: meta("t1", "req_1"), Principal: principal,
		Call: &auditv1.Call{Tool: "list_pets", SourceId: "src_1", OperationId: "listPets", BindingIds: []string{"bnd_1"},
			CredentialStatus: "resolved", PolicyOutcome: "allowed", UpstreamHost: "api.example.com"}})
	completed := st.publish(t, bus.Adapter, bus.KindInvocationCompleted, &auditv1.InvocationCompleted{Meta: meta("t1", "req_1"), Principal: principal,
		Call: &auditv1.Call{Tool: "list_pets", SourceId: "src_1", BindingIds: []string{"bnd_1"}, CredentialStatus: "resolved",
			PolicyOutcome: "allowed", AdapterOutcome: "ok", UpstreamStatus: 200, LatencyUs: 1500}})
	st.publish(t, bus.Policy, bus.KindCommandDenied, &auditv1.CommandDenied{Meta: meta("t1", "req_cmd"), Principal: principal,
		Command: "mcpgw.rpc.v1.CreateBinding", Reason: "not a binding manager"})
	other := st.publish(t, bus.Adapter, bus.KindCredentialUsed, &auditv1.CredentialUsed{Meta: meta("t2", "req_1"), Principal: principal,
		Call: &auditv1.Call{Tool: "list_pets", BindingIds: []string{"bnd_1"}, CredentialStatus: "resolved"}})

	// Operator actions on CONTROL, as their owners append them, with canaries
	// in every field that must never reach a row.
	created := st.appendControl(t, bus.Broker, bus.AggBinding, "bnd_1", &controlv1.BindingCreated{
		Meta: &commonv1.EventMeta{Tenant: "t1", RequestId: "req_ops", Actor: operator("credential-broker")}, BindingId: "bnd_1",
		Name: "petstore", Strategy: "api_key", SecretRef: "local:t1/" + canary, Placement: &controlv1.Placement{In: "header", Name: "X-Api-Key", Prefix: canary},
		Hosts: []string{"api.example.com"}, Environment: "dev", SourceId: "src_1", Scheme: "api_key"}, 0, 0)
	st.appendControl(t, bus.Policy, bus.AggAgent, "agent_1", &controlv1.AgentKeyIssued{
		Meta:    &commonv1.EventMeta{Tenant: "t1", RequestId: "req_ops", Actor: operator("policy")},
		AgentId: "agent_1", KeyId: "key_1", Prefix: canary, KeyHash: []byte(canary), User: "u1", Environment: "dev", Surface: "ci"}, 0, 0)
	st.appendControl(t, bus.Importer, bus.AggSource, "src_1", &controlv1.ToolProposed{
		Meta:     &commonv1.EventMeta{Tenant: "t1", RequestId: "req_ops", Actor: operator("importer")},
		SourceId: "src_1", Version: 1, Tool: &controlv1.ToolSpec{Name: "list_pets", Description: canary, InputSchema: []byte(canary),
			Operation: &controlv1.OperationSpec{Path: "/pets/" + canary}}}, 0, 0)
	st.appendControl(t, bus.Broker, bus.AggSecret, "sec_1", &controlv1.SecretWritten{
		Meta: &commonv1.EventMeta{Tenant: "t1", RequestId: "req_ops", Actor: operator("credential-broker")}, Name: "petstore", SecretRef: canary}, 0, 0)

	t.Run("rows of one request, newest first", func(t *testing.T) {
		rows := st.rowsFor(t, "t1", "req_1", "", 4)
		wantOrder := []bus.Appended{completed, used, resolved, refused}
		for i, r := range rows {
			if r.GetEventId() != wantOrder[i].ID {
				t.Errorf("row %d is %s (%s), want %s", i, r.GetEventId(), r.GetKind(), wantOrder[i].ID)
			}
			if r.GetTenant() != "t1" || r.GetRequestId() != "req_1" {
				t.Errorf("row %d: tenant %q request %q", i, r.GetTenant(), r.GetRequestId())
			}
		}
		c := rows[0]
		if c.GetKind() != "invocation_completed" || c.GetCode() != "ADP003" || c.GetService() != "adapter" ||
			c.GetAgentId() != "agent_1" || c.GetUserId() != "u1" || c.GetSurface() != "mcp" || c.GetReportedSurface() != "claude-code" ||
			c.GetEnvironment() != "dev" || c.GetTool() != "list_pets" || c.GetSourceId() != "src_1" || c.GetBindingId() != "bnd_1" ||
			c.GetCredentialStatus() != "resolved" || c.GetPolicyOutcome() != "allowed" || c.GetAdapterOutcome() != "ok" ||
			c.GetUpstreamStatus() != 200 || c.GetLatencyUs() != 1500 || c.GetSubject() != "audit.t1.invocation_completed" ||
			c.GetActor() != "agent:agent_1" || c.GetTime().AsTime().IsZero() {
			t.Errorf("invocation_completed row = %v", c)
		}
		r := rows[3]
		if r.GetKind() != "invocation_refused" || r.GetCode() != "ADP001" || r.GetGate() != "schema" || r.GetReason() != "missing property limit" {
			t.Errorf("invocation_refused row = %v", r)
		}
		if rows[2].GetService() != "credential-broker" || rows[2].GetCode() != "BRK001" {
			t.Errorf("credential_resolved row = %v", rows[2])
		}
	})

	t.Run("edge and policy events", func(t *testing.T) {
		e := st.rowsFor(t, "t1", "req_edge", "", 1)[0]
		if e.GetKind() != "edge_refused" || e.GetCode() != "EDG001" || e.GetService() != "edge" || e.GetReason() != "rate_limited" {
			t.Errorf("edge_refused row = %v", e)
		}
		p := st.rowsFor(t, "t1", "req_cmd", "", 1)[0]
		if p.GetKind() != "command_denied" || p.GetCode() != "POL002" || p.GetReason() != "not a binding manager" {
			t.Errorf("command_denied row = %v", p)
		}
	})

	t.Run("operator actions on CONTROL", func(t *testing.T) {
		rows := st.rowsFor(t, "t1", "req_ops", "", 4)
		byKind := map[string]*rpcv1.AuditRow{}
		for _, r := range rows {
			byKind[r.GetKind()] = r
			if r.GetActor() != "operator:admin" || r.GetSurface() != "cli" {
				t.Errorf("%s: actor %q surface %q", r.GetKind(), r.GetActor(), r.GetSurface())
			}
		}
		b := byKind["binding_created"]
		if b.GetEventId() != created.ID || b.GetCode() != "CTL011" || b.GetService() != "credential-broker" ||
			b.GetBindingId() != "bnd_1" || b.GetSourceId() != "src_1" || b.GetEnvironment() != "dev" ||
			b.GetSubject() != "ctl.t1.binding.bnd_1.BindingCreated" {
			t.Errorf("binding_created row = %v", b)
		}
		if k := byKind["agent_key_issued"]; k.GetCode() != "CTL009" || k.GetAgentId() != "agent_1" || k.GetUserId() != "u1" {
			t.Errorf("agent_key_issued row = %v", k)
		}
		if tp := byKind["tool_proposed"]; tp.GetCode() != "CTL002" || tp.GetTool() != "list_pets" || tp.GetService() != "importer" {
			t.Errorf("tool_proposed row = %v", tp)
		}
		if sw := byKind["secret_written"]; sw.GetCode() != "CTL013" {
			t.Errorf("secret_written row = %v", sw)
		}
	})

	t.Run("rows of one binding", func(t *testing.T) {
		rows := st.rowsFor(t, "t1", "", "bnd_1", 4)
		kinds := map[string]bool{}
		for _, r := range rows {
			kinds[r.GetKind()] = true
			if r.GetTenant() != "t1" {
				t.Errorf("row of tenant %q", r.GetTenant())
			}
		}
		for _, k := range []string{"credential_resolved", "credential_used", "invocation_completed", "binding_created"} {
			if !kinds[k] {
				t.Errorf("no %s row for the binding; got %v", k, kinds)
			}
		}
		if rows := st.rowsFor(t, "t1", "req_1", "bnd_1", 3); len(rows) != 3 {
			t.Errorf("request and binding: %d rows", len(rows))
		}
	})

	t.Run("tenants are isolated", func(t *testing.T) {
		rows := st.rowsFor(t, "t2", "req_1", "", 1)
		if rows[0].GetEventId() != other.ID || rows[0].GetTenant() != "t2" {
			t.Errorf("t2 row = %v", rows[0])
		}
		if rows := st.rowsFor(t, "t2", "", "bnd_1", 1); rows[0].GetEventId() != other.ID {
			t.Errorf("t2 binding row = %v", rows[0])
		}
		// An authorization for t2 does not open t1.
		cmd := st.authorize(t, &rpcv1.QueryAudit{Tenant: "t2", RequestId: "req_1"}, "t2", nil)
		cmd.Tenant = "t1"
		if r := st.query(t, cmd); r.GetError().GetCode() != string(errcode.PermissionDenied) || len(r.GetRows()) != 0 {
			t.Errorf("t2's authorization read t1: %v", r)
		}
	})

	t.Run("limit", func(t *testing.T) {
		r := st.query(t, st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req_1", Limit: 2}, "t1", nil))
		if r.GetError() != nil || len(r.GetRows()) != 2 || r.GetRows()[0].GetEventId() != completed.ID {
			t.Errorf("limit 2: %v", r)
		}
		r = st.query(t, st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req_1", Limit: 5000}, "t1", nil))
		if r.GetError() != nil || len(r.GetRows()) != 4 {
			t.Errorf("limit above the maximum: %v", r)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		// Revoke an operator credential on CONTROL; the projection must know it.
		issued := st.appendControl(t, bus.Policy, bus.AggAgent, "agent_rev", &controlv1.AgentKeyIssued{
			Meta: &commonv1.EventMeta{Tenant: "t1", Actor: operator("policy")}, AgentId: "agent_rev", KeyId: "key_rev"}, 0, 0)
		st.appendControl(t, bus.Policy, bus.AggAgent, "agent_rev", &controlv1.AgentKeyRevoked{
			Meta: &commonv1.EventMeta{Tenant: "t1", Actor: operator("policy")}, AgentId: "agent_rev", KeyId: "key_rev"}, 1, issued.Seq)

		good := &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req_1"}
		tests := []struct {
			name string
			cmd  func(t *testing.T) *rpcv1.QueryAudit
			code errcode.Code
		}{
			{"no authorization", func(t *testing.T) *rpcv1.QueryAudit { return &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req_1"} }, errcode.PermissionDenied},
			{"authorization of another command", func(t *testing.T) *rpcv1.QueryAudit {
				cmd := st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req_2"}, "t1", nil)
				cmd.RequestId = "req_1"
				return cmd
			}, errcode.PermissionDenied},
			{"authorization for another tenant", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, proto.Clone(good).(*rpcv1.QueryAudit), "t2", nil)
			}, errcode.PermissionDenied},
			{"authorization not signed by policy", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, proto.Clone(good).(*rpcv1.QueryAudit), "t1", func(a *commonv1.Authorization) { a.AuthorizationId = "forged" })
			}, errcode.PermissionDenied},
			{"expired authorization", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, proto.Clone(good).(*rpcv1.QueryAudit), "t1", func(a *commonv1.Authorization) {
					now := time.Now()
					a.IssuedAt, a.ExpiresAt = timestamppb.New(now.Add(-90*time.Second)), timestamppb.New(now.Add(-time.Minute))
				})
			}, errcode.PermissionDenied},
			{"authorization of another command type", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, proto.Clone(good).(*rpcv1.QueryAudit), "t1", func(a *commonv1.Authorization) { a.Command = "mcpgw.rpc.v1.CreateBinding" })
			}, errcode.PermissionDenied},
			{"neither request nor binding", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1"}, "t1", nil)
			}, errcode.InvalidArgument},
			{"bad binding ID", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1", BindingId: "bnd_1' OR 1=1"}, "t1", nil)
			}, errcode.InvalidID},
			{"bad request ID", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req 1; DROP"}, "t1", nil)
			}, errcode.InvalidArgument},
			{"bad tenant", func(t *testing.T) *rpcv1.QueryAudit {
				return st.authorize(t, &rpcv1.QueryAudit{Tenant: "T1.*", RequestId: "req_1"}, "T1.*", nil)
			}, errcode.InvalidID},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := st.query(t, tc.cmd(t))
				if r.GetError().GetCode() != string(tc.code) || len(r.GetRows()) != 0 {
					t.Errorf("reply = %v, want error %s and no rows", r, tc.code)
				}
			})
		}
		t.Run("revoked actor credential", func(t *testing.T) {
			eventually(t, "revocation applied", func() bool {
				r := st.query(t, st.authorize(t, proto.Clone(good).(*rpcv1.QueryAudit), "t1", func(a *commonv1.Authorization) {
					a.Actor.CredentialId = "key_rev"
				}))
				return r.GetError().GetCode() == string(errcode.PermissionDenied) && len(r.GetRows()) == 0
			})
		})
		t.Run("only the edge may call", func(t *testing.T) {
			var reply rpcv1.QueryAuditReply
			err := st.rt[bus.Adapter].Client.Call(ctxT(t), bus.AuditQuery, st.authorize(t, proto.Clone(good).(*rpcv1.QueryAudit), "t1", nil), &reply)
			if err == nil {
				t.Error("the adapter called rpc.audit.query")
			}
		})
	})

	t.Run("forged events are not written", func(t *testing.T) {
		forged := &auditv1.CredentialUsed{Meta: &commonv1.EventMeta{Id: bus.NewID("evt_"), Type: "mcpgw.audit.v1.CredentialUsed",
			Time: timestamppb.Now(), Tenant: "t1", RequestId: "req_forged"}, Principal: principal,
			Call: &auditv1.Call{Tool: "list_pets", BindingIds: []string{"bnd_1"}, CredentialStatus: "resolved"}}
		msg := testenv.SignEvent(t, st.keys.ID[bus.Edge], "audit.t1.credential_used", forged)
		// The edge's NATS user may not publish there; the admin relays it, as a
		// republish or a compromised server would.
		ack, err := st.n.JS.PublishMsg(ctxT(t), msg)
		if err != nil {
			t.Fatalf("relay forged event: %v", err)
		}
		eventually(t, "forged event acknowledged", func() bool {
			return st.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents) >= ack.Sequence
		})
		r := st.query(t, st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req_forged"}, "t1", nil))
		if r.GetError() != nil || len(r.GetRows()) != 0 {
			t.Errorf("forged event written: %v", r)
		}
		want := fmt.Sprintf(`"subject":"audit.t1.credential_used","seq":%d`, ack.Sequence)
		if logs := st.logs.String(); !strings.Contains(logs, want) || !strings.Contains(logs, "unverified message dropped") {
			t.Errorf("no drop warning with %s in logs", want)
		}
	})

	t.Run("no secret in rows, replies or logs", func(t *testing.T) {
		var secrets []string
		for _, s := range append(st.n.Secrets, []byte(canary), ch.Password.Reveal()) {
			secrets = append(secrets, encodings(string(s))...)
		}
		var haystacks []string
		// Every column of every row, straight from ClickHouse.
		conn, err := clickhouse.Open(ch.Options())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		rs, err := conn.Query(ctxT(t), "SELECT * FROM mcpgw_audit.audit_events")
		if err != nil {
			t.Fatalf("select: %v", err)
		}
		n := 0
		for rs.Next() {
			vals := make([]any, len(rs.ColumnTypes()))
			for i, ct := range rs.ColumnTypes() {
				vals[i] = newScanTarget(ct.ScanType().String())
			}
			if err := rs.Scan(vals...); err != nil {
				t.Fatalf("scan: %v", err)
			}
			for _, v := range vals {
				haystacks = append(haystacks, fmt.Sprint(reflect.ValueOf(v).Elem().Interface()))
			}
			n++
		}
		rs.Close()
		if n < 10 {
			t.Fatalf("only %d rows written", n)
		}
		for _, q := range []*rpcv1.QueryAudit{{Tenant: "t1", RequestId: "req_ops"}, {Tenant: "t1", BindingId: "bnd_1"}} {
			r := st.query(t, st.authorize(t, q, "t1", nil))
			b, _ := protojson.Marshal(r)
			w, _ := proto.Marshal(r)
			haystacks = append(haystacks, string(b), string(w))
		}
		haystacks = append(haystacks, st.logs.String())
		for _, h := range haystacks {
			for _, s := range secrets {
				if strings.Contains(h, s) {
					t.Fatalf("a secret (%d bytes) appears in %.200q", len(s), h)
				}
			}
		}
	})
}

// newScanTarget returns a pointer for a ClickHouse column of scan type typ.
func newScanTarget(typ string) any {
	switch typ {
	case "uint16":
		return new(uint16)
	case "uint64":
		return new(uint64)
	case "time.Time":
		return new(time.Time)
	default:
		return new(string)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestClickHouseOutage runs the service while ClickHouse is down at start,
// then stops ClickHouse while it runs: events stay unacknowledged on their
// streams and are written once it is back.
func TestClickHouseOutage(t *testing.T) {
	st := newStack(t)
	port := freePort(t)
	dir := filepath.Join(t.TempDir(), "clickhouse")
	password := secret.New([]byte("ch-" + randomHex(t)))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	st.start(t, addr, "audit_outage", password)

	startCH := func() *chproc.Process {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		// A short stop timeout: 18.16 waits for idle client connections on
		// SIGTERM; after a second it is killed, as a crash would stop it.
		p, err := chproc.Start(ctx, chproc.Config{Dir: dir, TCPPort: port, Password: password, StopTimeout: time.Second})
		if err != nil {
			t.Fatalf("start clickhouse: %v", err)
		}
		t.Cleanup(func() { _ = p.Stop() })
		return p
	}
	event := func(req string) *auditv1.CredentialUsed {
		return &auditv1.CredentialUsed{Meta: &commonv1.EventMeta{Tenant: "t1", RequestId: req},
			Call: &auditv1.Call{Tool: "list_pets", BindingIds: []string{"bnd_1"}, CredentialStatus: "resolved"}}
	}

	eventually(t, "a log line saying clickhouse is unavailable", func() bool {
		return strings.Contains(st.logs.String(), "clickhouse unavailable")
	})
	t.Run("query fails closed while clickhouse is down", func(t *testing.T) {
		r := st.query(t, st.authorize(t, &rpcv1.QueryAudit{Tenant: "t1", RequestId: "req_x"}, "t1", nil))
		if r.GetError().GetCode() != string(errcode.Unavailable) || len(r.GetRows()) != 0 {
			t.Errorf("reply = %v, want unavailable", r)
		}
	})
	early := st.publish(t, bus.Adapter, bus.KindCredentialUsed, event("req_early"))
	if floor := st.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents); floor >= early.Seq {
		t.Fatalf("event acknowledged (ack floor %d) before clickhouse was up", floor)
	}
	proc := startCH()
	st.rowsFor(t, "t1", "req_early", "", 1)
	eventually(t, "acknowledgement", func() bool { return st.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents) >= early.Seq })

	if err := proc.Stop(); err != nil {
		t.Fatalf("stop clickhouse: %v", err)
	}
	failures := strings.Count(st.logs.String(), "audit insert failed")
	late := st.publish(t, bus.Adapter, bus.KindCredentialUsed, event("req_late"))
	eventually(t, "a failed insert", func() bool { return strings.Count(st.logs.String(), "audit insert failed") > failures })
	if floor := st.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents); floor >= late.Seq {
		t.Fatalf("event acknowledged (ack floor %d) while clickhouse was down", floor)
	}
	startCH()
	st.rowsFor(t, "t1", "req_late", "", 1)
	eventually(t, "acknowledgement", func() bool { return st.ackFloor(t, bus.StreamAudit, bus.DurableAuditEvents) >= late.Seq })
	if strings.Contains(st.logs.String(), string(password.Reveal())) {
		t.Error("the clickhouse password appears in the logs")
	}
}

func TestNewRefusals(t *testing.T) {
	n := testenv.NATS(t)
	keys := testenv.NewKeys(t)
	cfg := service.Config{ClickHouse: service.ClickHouseConfig{Addr: "127.0.0.1:9000", Database: "audit"}}
	tests := []struct {
		name string
		cfg  service.Config
		deps service.Deps
	}{
		{"no runtime", cfg, service.Deps{}},
		{"another service's runtime", cfg, service.Deps{Runtime: n.Runtime(t, keys, bus.Edge)}},
		{"production without clickhouse password", func() service.Config { c := cfg; c.Production = true; return c }(),
			service.Deps{Runtime: n.Runtime(t, keys, bus.Audit)}},
		{"bad database name", func() service.Config { c := cfg; c.ClickHouse.Database = "a;b"; return c }(),
			service.Deps{Runtime: n.Runtime(t, keys, bus.Audit)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if svc, err := service.NewWithDeps(tc.cfg, tc.deps); err == nil {
				svc.Close()
				t.Error("accepted")
			}
		})
	}
	t.Run("password file readable by others", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "ch.pass")
		if err := writeFile(path, "pw", 0o644); err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.ClickHouse.PasswordFile = path
		if _, err := service.New(c); err == nil {
			t.Error("a 0644 password file was accepted")
		}
	})
}

func writeFile(path, content string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
