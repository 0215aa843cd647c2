package service_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/service"
)

const (
	tenantA = "acme"
	tenantB = "globex"
	source  = "src_github"
	host    = "api.example.com"
)

// apiKeyBinding is a CreateBinding for an api_key secret of tenant on host.
func apiKeyBinding(tenant, ref string) *rpcv1.CreateBinding {
	return &rpcv1.CreateBinding{
		Tenant: tenant, Name: "github", Strategy: "api_key",
		Placement: &controlv1.Placement{In: "header", Name: "X-API-Key"},
		SecretRef: ref, Hosts: []string{host, "uploads.example.com:8443"}, SourceId: source, Scheme: "ApiKeyAuth",
	}
}

// TestBroker runs the broker end to end on a real NATS server: an operator
// writes a canary secret sealed as the CLI does and binds it; the adapter
// resolves it; every refusal is audited and releases nothing; a restarted
// broker still resolves; and the canary shows nowhere but inside the
// sealed material.
func TestBroker(t *testing.T) {
	h := newHarness(t)
	canary := newCanary(t)

	ref := h.mustPutSecret(t, tenantA, "github-token", []byte(canary))
	if !strings.HasPrefix(ref, "local://"+tenantA+"/github-token#") {
		t.Fatalf("put_secret id = %q, want a local reference of %s", ref, tenantA)
	}
	bnd := h.mustCreateBinding(t, apiKeyBinding(tenantA, ref))
	if !strings.HasPrefix(bnd, "bnd_") || !bus.ValidToken(bnd) {
		t.Fatalf("create_binding id = %q, want bnd_<hex>", bnd)
	}
	betaRef := h.mustPutSecret(t, tenantB, "github-token", []byte(canary+"-b"))
	betaBnd := h.mustCreateBinding(t, apiKeyBinding(tenantB, betaRef))

	t.Run("events", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := h.n.JS.Stream(ctx, bus.StreamControl)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := st.GetLastMsgForSubject(ctx, "ctl."+tenantA+".secret.github-token.SecretWritten")
		if err != nil {
			t.Fatal(err)
		}
		ev, err := h.adapter.Verifier.VerifyControl(raw.Subject, raw.Header, raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		sw := ev.Msg.(*controlv1.SecretWritten)
		if sw.GetSecretRef() != ref || sw.GetName() != "github-token" {
			t.Fatalf("SecretWritten = %v", sw)
		}
		if a := sw.GetMeta().GetActor(); a.GetKind() != "operator" || a.GetId() != "alice" || a.GetSurface() != "cli" || a.GetVia() != "credential-broker" {
			t.Fatalf("actor = %v", a)
		}
		raw, err = st.GetLastMsgForSubject(ctx, "ctl."+tenantA+".binding."+bnd+".BindingCreated")
		if err != nil {
			t.Fatal(err)
		}
		ev, err = h.adapter.Verifier.VerifyControl(raw.Subject, raw.Header, raw.Data)
		if err != nil {
			t.Fatal(err)
		}
		bc := ev.Msg.(*controlv1.BindingCreated)
		if bc.GetSecretRef() != ref || bc.GetStrategy() != "api_key" || bc.GetSourceId() != source || len(bc.GetHosts()) != 2 {
			t.Fatalf("BindingCreated = %v", bc)
		}
	})

	t.Run("resolve releases the canary sealed to the adapter", func(t *testing.T) {
		r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, host, bnd)
		m := r.open(t)
		if len(m.GetMaterials()) != 1 {
			t.Fatalf("got %d materials, want 1", len(m.GetMaterials()))
		}
		got := m.GetMaterials()[0]
		if string(got.GetValue()) != canary {
			t.Fatal("resolved material differs from the canary")
		}
		if got.GetBindingId() != bnd || got.GetStrategy() != "api_key" || got.GetPlacement().GetName() != "X-API-Key" ||
			got.GetPlacement().GetIn() != "header" || strings.Join(got.GetHosts(), ",") != host+",uploads.example.com:8443" {
			t.Fatalf("material metadata = binding %s strategy %s placement %v hosts %v", got.GetBindingId(), got.GetStrategy(), got.GetPlacement(), got.GetHosts())
		}
		if _, err := seal.Open(r.key, []byte(seal.InfoResolve), []byte("another-request"), r.reply.GetSealed()); err == nil {
			t.Fatal("material opened with another request ID")
		}
		ev := h.lastAudit(t, tenantA, bus.KindCredentialResolved)
		res := ev.Msg.(*auditv1.CredentialResolved)
		if res.GetMeta().GetRequestId() != r.requestID || res.GetCall().GetCredentialStatus() != "resolved" || res.GetCall().GetGate() != "" ||
			res.GetCall().GetTool() != "list_repos" || res.GetCall().GetSourceId() != source ||
			strings.Join(res.GetCall().GetBindingIds(), ",") != bnd || res.GetPrincipal().GetUser() != "bob" ||
			res.GetPrincipal().GetAgent() != "agent-1" {
			t.Fatalf("CredentialResolved = %v", res)
		}
	})

	t.Run("host with the confirmed port", func(t *testing.T) {
		r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, ""), source, "uploads.example.com:8443", bnd)
		if string(r.open(t).GetMaterials()[0].GetValue()) != canary {
			t.Fatal("resolved material differs from the canary")
		}
	})

	refusals := []struct {
		name     string
		tenant   string
		signer   *bus.Identity
		env      string
		source   string
		host     string
		bindings []string
		code     string
		status   string
	}{
		{"host outside the binding's hosts", tenantA, h.keys.ID[bus.Policy], "prod", source, "evil.example.net", []string{bnd}, "permission_denied", "denied"},
		{"host suffix of a confirmed host", tenantA, h.keys.ID[bus.Policy], "prod", source, "example.com", []string{bnd}, "permission_denied", "denied"},
		{"confirmed host on another port", tenantA, h.keys.ID[bus.Policy], "prod", source, "uploads.example.com:443", []string{bnd}, "permission_denied", "denied"},
		{"binding of another tenant", tenantB, h.keys.ID[bus.Policy], "prod", source, host, []string{bnd}, "not_found", "missing"},
		{"unknown binding", tenantA, h.keys.ID[bus.Policy], "prod", source, host, []string{"bnd_00000000000000000000000000000000"}, "not_found", "missing"},
		{"one of two bindings unknown", tenantA, h.keys.ID[bus.Policy], "prod", source, host, []string{bnd, "bnd_ffffffffffffffffffffffffffffffff"}, "not_found", "missing"},
		{"binding of another source", tenantA, h.keys.ID[bus.Policy], "prod", "src_other", host, []string{bnd}, "permission_denied", "denied"},
		{"host with a path", tenantA, h.keys.ID[bus.Policy], "prod", source, host + "/x", []string{bnd}, "invalid_argument", "denied"},
		{"invalid binding ID", tenantA, h.keys.ID[bus.Policy], "prod", source, host, []string{"bnd.>"}, "invalid_id", "denied"},
		{"no binding", tenantA, h.keys.ID[bus.Policy], "prod", source, host, nil, "invalid_argument", "denied"},
	}
	for _, tt := range refusals {
		t.Run("refused: "+tt.name, func(t *testing.T) {
			r := h.resolve(t, h.context(t, tt.signer, tt.tenant, tt.env), tt.source, tt.host, tt.bindings...)
			r.wantRefused(t, tt.code)
			d := h.wantDenied(t, tt.tenant, r, tt.status)
			if d.GetPrincipal().GetUser() != "bob" || d.GetCall().GetSourceId() != tt.source {
				t.Fatalf("CredentialDenied = %v", d)
			}
		})
	}

	t.Run("refused: binding of another tenant does not leak it", func(t *testing.T) {
		r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, host, betaBnd)
		r.wantRefused(t, "not_found")
	})

	t.Run("refused: environment", func(t *testing.T) {
		cmd := apiKeyBinding(tenantA, ref)
		cmd.Environment = "prod"
		prod := h.mustCreateBinding(t, cmd)
		r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "dev"), source, host, prod)
		r.wantRefused(t, "permission_denied")
		h.wantDenied(t, tenantA, r, "denied")
		r = h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, host, prod)
		if string(r.open(t).GetMaterials()[0].GetValue()) != canary {
			t.Fatal("resolved material differs from the canary")
		}
	})

	t.Run("refused: context not signed by policy", func(t *testing.T) {
		rogue, err := bus.NewIdentity(bus.Policy)
		if err != nil {
			t.Fatal(err)
		}
		r := h.resolve(t, h.context(t, rogue, tenantA, "prod"), source, host, bnd)
		r.wantRefused(t, "unauthenticated")
		r = h.resolve(t, nil, source, host, bnd)
		r.wantRefused(t, "unauthenticated")
	})

	t.Run("refused: bad recipient key", func(t *testing.T) {
		req := &rpcv1.ResolveRequest{Context: h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), SourceId: source,
			BindingIds: []string{bnd}, RecipientKey: []byte("short"), RequestId: bus.NewID("req_"), Host: host}
		var reply rpcv1.ResolveReply
		if err := h.adapter.Client.Call(context.Background(), bus.BrokerResolve, req, &reply); err != nil {
			t.Fatal(err)
		}
		h.recordReply(t, &reply)
		if reply.GetError().GetCode() != "invalid_argument" || len(reply.GetSealed()) != 0 {
			t.Fatalf("reply = %v", reply.GetError())
		}
	})

	t.Run("a request signed as the edge is not answered", func(t *testing.T) {
		req := &rpcv1.ResolveRequest{Context: h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), SourceId: source,
			BindingIds: []string{bnd}, RecipientKey: mustKey(t).Public().Bytes(), RequestId: bus.NewID("req_"), Host: host}
		data, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := bus.SignRequest(h.keys.ID[bus.Edge], bus.BrokerResolve.Subject(), data, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := h.adapter.Conn.RequestMsgWithContext(ctx, msg)
		if err == nil {
			t.Fatalf("the broker answered a request signed as the edge (%d bytes)", len(resp.Data))
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("request error = %v, want a timeout", err)
		}
	})

	t.Run("the edge may not call resolve", func(t *testing.T) {
		var reply rpcv1.ResolveReply
		err := h.edge.Client.Call(context.Background(), bus.BrokerResolve, &rpcv1.ResolveRequest{}, &reply)
		if err == nil {
			t.Fatal("the edge's client sent a resolve request")
		}
	})

	t.Run("restart still resolves", func(t *testing.T) {
		h.restart(t)
		r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, host, bnd)
		if string(r.open(t).GetMaterials()[0].GetValue()) != canary {
			t.Fatal("resolved material differs from the canary after a restart")
		}
	})

	t.Run("secret store failure is unavailable", func(t *testing.T) {
		ref := h.mustPutSecret(t, tenantA, "flaky", []byte(canary+"-flaky"))
		id := h.mustCreateBinding(t, apiKeyBinding(tenantA, ref))
		tdir := filepath.Join(h.stateDir, "secrets", tenantA)
		if err := os.Chmod(tdir, 0o755); err != nil {
			t.Fatal(err)
		}
		r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, host, id)
		if err := os.Chmod(tdir, 0o700); err != nil {
			t.Fatal(err)
		}
		r.wantRefused(t, "unavailable")
		h.wantDenied(t, tenantA, r, "error")
		r = h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, host, id)
		if string(r.open(t).GetMaterials()[0].GetValue()) != canary+"-flaky" {
			t.Fatal("resolved material differs after the store recovered")
		}
	})

	t.Run("refused: revoked credential", func(t *testing.T) {
		// Every context of this test names credential key_1; policy now
		// registers and then revokes it.
		policy := h.runtime(t, bus.Policy)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		meta := func() *commonv1.EventMeta {
			return &commonv1.EventMeta{Tenant: tenantA, Actor: &commonv1.Actor{Kind: "operator", Id: "alice", Via: "policy"}}
		}
		issued, err := policy.Publisher.AppendControl(ctx, bus.AggAgent, "key_1",
			&controlv1.AgentKeyIssued{Meta: meta(), AgentId: "agent-1", KeyId: "key_1", Prefix: "mk_", KeyHash: make([]byte, 32)}, bus.Expect{})
		if err != nil {
			t.Fatal(err)
		}
		sc := h.context(t, h.keys.ID[bus.Policy], tenantA, "prod")
		if string(h.resolve(t, sc, source, host, bnd).open(t).GetMaterials()[0].GetValue()) != canary {
			t.Fatal("resolved material differs before the revocation")
		}
		if _, err := policy.Publisher.AppendControl(ctx, bus.AggAgent, "key_1",
			&controlv1.AgentKeyRevoked{Meta: meta(), AgentId: "agent-1", KeyId: "key_1"},
			bus.Expect{LastSeq: issued.Seq, Version: issued.Version}); err != nil {
			t.Fatal(err)
		}
		// A command waits until the broker has read its own event, which
		// CONTROL holds after the revocation.
		h.mustCreateBinding(t, apiKeyBinding(tenantA, ref))
		h.resolve(t, sc, source, host, bnd).wantRefused(t, "unauthenticated")
	})

	t.Run("canary nowhere", func(t *testing.T) {
		h.assertCanaryNowhere(t, canary)
	})
}

// TestCommands checks the operator commands' authorization and
// validation.
func TestCommands(t *testing.T) {
	h := newHarness(t)
	canary := newCanary(t)
	ref := h.mustPutSecret(t, tenantA, "token", []byte(canary))
	betaRef := h.mustPutSecret(t, tenantB, "token", []byte(canary))
	basicRef := h.mustPutSecret(t, tenantA, "login", []byte("svc-user:"+canary))

	t.Run("put_secret", func(t *testing.T) {
		tests := []struct {
			name  string
			build func(t *testing.T) *rpcv1.PutSecret
			code  string
		}{
			{"no authorization", func(t *testing.T) *rpcv1.PutSecret {
				return &rpcv1.PutSecret{Tenant: tenantA, Name: "x", SealedValue: h.sealSecret(t, tenantA, "x", []byte(canary))}
			}, "permission_denied"},
			{"authorization of another tenant", func(t *testing.T) *rpcv1.PutSecret {
				cmd := &rpcv1.PutSecret{Tenant: tenantB, Name: "x", SealedValue: h.sealSecret(t, tenantA, "x", []byte(canary))}
				h.authorize(t, cmd, tenantB, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
				cmd.Tenant = tenantA
				return cmd
			}, "permission_denied"},
			{"command changed after authorization", func(t *testing.T) *rpcv1.PutSecret {
				cmd := &rpcv1.PutSecret{Tenant: tenantA, Name: "x", SealedValue: h.sealSecret(t, tenantA, "x", []byte(canary))}
				h.authorize(t, cmd, tenantA, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
				cmd.Name = "y"
				return cmd
			}, "permission_denied"},
			{"sealed for another name", func(t *testing.T) *rpcv1.PutSecret {
				cmd := &rpcv1.PutSecret{Tenant: tenantA, Name: "x", SealedValue: h.sealSecret(t, tenantA, "other", []byte(canary))}
				h.authorize(t, cmd, tenantA, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
				return cmd
			}, "invalid_argument"},
			{"sealed for another tenant", func(t *testing.T) *rpcv1.PutSecret {
				cmd := &rpcv1.PutSecret{Tenant: tenantA, Name: "x", SealedValue: h.sealSecret(t, tenantB, "x", []byte(canary))}
				h.authorize(t, cmd, tenantA, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
				return cmd
			}, "invalid_argument"},
			{"not sealed", func(t *testing.T) *rpcv1.PutSecret {
				cmd := &rpcv1.PutSecret{Tenant: tenantA, Name: "x", SealedValue: append([]byte{seal.Version}, make([]byte, 80)...)}
				h.authorize(t, cmd, tenantA, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
				return cmd
			}, "invalid_argument"},
			{"invalid name", func(t *testing.T) *rpcv1.PutSecret {
				cmd := &rpcv1.PutSecret{Tenant: tenantA, Name: "a.b", SealedValue: h.sealSecret(t, tenantA, "a.b", []byte(canary))}
				h.authorize(t, cmd, tenantA, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
				return cmd
			}, "invalid_id"},
			{"invalid tenant", func(t *testing.T) *rpcv1.PutSecret {
				cmd := &rpcv1.PutSecret{Tenant: "ACME", Name: "x", SealedValue: h.sealSecret(t, "ACME", "x", []byte(canary))}
				h.authorize(t, cmd, "ACME", func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
				return cmd
			}, "invalid_id"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := h.callEdge(t, bus.BrokerPutSecret, tt.build(t))
				if r.GetError().GetCode() != tt.code || r.GetId() != "" {
					t.Fatalf("reply = %v, want code %s", r, tt.code)
				}
			})
		}
	})

	t.Run("rotation adds a version", func(t *testing.T) {
		again := h.mustPutSecret(t, tenantA, "token", []byte(canary+"-2"))
		if again == ref {
			t.Fatalf("second put_secret returned the same reference %q", ref)
		}
	})

	t.Run("create_binding", func(t *testing.T) {
		tests := []struct {
			name   string
			mutate func(*rpcv1.CreateBinding)
			code   string
			msg    string
		}{
			{"unknown strategy", func(c *rpcv1.CreateBinding) { c.Strategy = "oauth9" }, "invalid_argument", "supported strategies: api_key, basic, bearer"},
			{"secret of another tenant", func(c *rpcv1.CreateBinding) { c.SecretRef = betaRef }, "permission_denied", "another tenant"},
			{"unknown secret", func(c *rpcv1.CreateBinding) { c.SecretRef = "local://" + tenantA + "/never#1" }, "not_found", "not found"},
			{"unparsable secret ref", func(c *rpcv1.CreateBinding) { c.SecretRef = "vault:token" }, "invalid_argument", "secret_ref"},
			{"no hosts", func(c *rpcv1.CreateBinding) { c.Hosts = nil }, "invalid_argument", "host"},
			{"host with scheme", func(c *rpcv1.CreateBinding) { c.Hosts = []string{"https://api.example.com"} }, "invalid_argument", "scheme"},
			{"host with path", func(c *rpcv1.CreateBinding) { c.Hosts = []string{"api.example.com/v1"} }, "invalid_argument", "path"},
			{"wildcard host", func(c *rpcv1.CreateBinding) { c.Hosts = []string{"*.example.com"} }, "invalid_argument", "wildcard"},
			{"uppercase host", func(c *rpcv1.CreateBinding) { c.Hosts = []string{"API.example.com"} }, "invalid_argument", "lowercase"},
			{"no source", func(c *rpcv1.CreateBinding) { c.SourceId = "" }, "invalid_argument", "source_id"},
			{"no scheme", func(c *rpcv1.CreateBinding) { c.Scheme = "" }, "invalid_argument", "scheme"},
			{"api_key without name", func(c *rpcv1.CreateBinding) { c.Placement = &controlv1.Placement{In: "header"} }, "invalid_argument", "name"},
			{"api_key in body", func(c *rpcv1.CreateBinding) { c.Placement = &controlv1.Placement{In: "body", Name: "k"} }, "invalid_argument", "header or query"},
			{"basic secret without colon", func(c *rpcv1.CreateBinding) { c.Strategy, c.Placement = "basic", nil }, "invalid_argument", "username:password"},
			{"bearer in query", func(c *rpcv1.CreateBinding) { c.Strategy, c.Placement = "bearer", &controlv1.Placement{In: "query"} }, "invalid_argument", "header"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				cmd := apiKeyBinding(tenantA, ref)
				tt.mutate(cmd)
				r := h.createBinding(t, cmd)
				if r.GetError().GetCode() != tt.code || !strings.Contains(r.GetError().GetMessage(), tt.msg) || r.GetId() != "" {
					t.Fatalf("reply = %v, want code %s with %q", r, tt.code, tt.msg)
				}
			})
		}
		t.Run("no authorization", func(t *testing.T) {
			r := h.callEdge(t, bus.BrokerCreate, apiKeyBinding(tenantA, ref))
			if r.GetError().GetCode() != "permission_denied" {
				t.Fatalf("reply = %v", r)
			}
		})
		t.Run("authorization of another command", func(t *testing.T) {
			cmd := apiKeyBinding(tenantA, ref)
			h.authorize(t, cmd, tenantA, func(sa *commonv1.SignedAuthorization) { cmd.Authorization = sa })
			cmd.Hosts = append(cmd.Hosts, "attacker.example.net")
			r := h.callEdge(t, bus.BrokerCreate, cmd)
			if r.GetError().GetCode() != "permission_denied" {
				t.Fatalf("reply = %v", r)
			}
		})
	})

	t.Run("bearer and basic resolve", func(t *testing.T) {
		bearer := h.mustCreateBinding(t, &rpcv1.CreateBinding{Tenant: tenantA, Strategy: "bearer", SecretRef: ref,
			Hosts: []string{"[2001:db8::1]:8443", "10.0.0.7"}, SourceId: source, Scheme: "bearerAuth"})
		basic := h.mustCreateBinding(t, &rpcv1.CreateBinding{Tenant: tenantA, Strategy: "basic", SecretRef: basicRef,
			Hosts: []string{"10.0.0.7"}, SourceId: source, Scheme: "basicAuth"})
		r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, "10.0.0.7", bearer, basic)
		m := r.open(t).GetMaterials()
		if len(m) != 2 {
			t.Fatalf("got %d materials, want 2", len(m))
		}
		if string(m[0].GetValue()) != canary || m[0].GetPlacement().GetName() != "Authorization" || m[0].GetPlacement().GetPrefix() != "Bearer " {
			t.Fatalf("bearer material: placement %v", m[0].GetPlacement())
		}
		if string(m[1].GetValue()) != canary || m[1].GetUsername() != "svc-user" || m[1].GetPlacement().GetPrefix() != "Basic " {
			t.Fatalf("basic material: username %q placement %v", m[1].GetUsername(), m[1].GetPlacement())
		}
		r = h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, "[2001:db8::1]:8443", bearer)
		if string(r.open(t).GetMaterials()[0].GetValue()) != canary {
			t.Fatal("bearer over IPv6 differs")
		}
		r = h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, "[2001:db8::1]:8443", bearer, basic)
		r.wantRefused(t, "permission_denied")
	})

	t.Run("canary nowhere", func(t *testing.T) {
		h.assertCanaryNowhere(t, canary)
	})
}

// TestResolveFailsClosedWithoutAudit deletes the AUDIT stream: the broker
// must not release material it cannot record. (The wiretap is stopped
// first: as a subscriber of every subject it would hold the publish until
// the audit timeout instead of the immediate "no responders".)
func TestResolveFailsClosedWithoutAudit(t *testing.T) {
	h := newHarness(t)
	canary := newCanary(t)
	ref := h.mustPutSecret(t, tenantA, "token", []byte(canary))
	bnd := h.mustCreateBinding(t, apiKeyBinding(tenantA, ref))
	h.untap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.n.JS.DeleteStream(ctx, bus.StreamAudit); err != nil {
		t.Fatal(err)
	}
	r := h.resolve(t, h.context(t, h.keys.ID[bus.Policy], tenantA, "prod"), source, host, bnd)
	r.wantRefused(t, "unavailable")
	h.assertCanaryNowhere(t, canary)
}

// TestNewRefusesMismatchedSealKey checks that a broker whose HPKE key is
// not the keyring's pinned sealing key does not start.
func TestNewRefusesMismatchedSealKey(t *testing.T) {
	h := newHarness(t)
	rt := h.runtime(t, bus.Broker)
	_, err := service.NewWithDeps(service.Config{StateDir: t.TempDir(), Logger: h.log}, service.Deps{Runtime: rt, SealKey: mustKey(t)})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("NewWithDeps with another seal key: %v", err)
	}
	_, err = service.NewWithDeps(service.Config{Logger: h.log}, service.Deps{Runtime: rt, SealKey: h.keys.Seal[bus.Broker]})
	if err == nil {
		t.Fatal("NewWithDeps without a state directory succeeded")
	}
}

func mustKey(t *testing.T) *seal.PrivateKey {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
