package service_test

import (
	"context"
	"strings"
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
	"github.com/mcpgw/mcpgw/libs/testenv"
)

// Agent keys used as canaries: none may appear anywhere but in the test.
const (
	keyAlice = "mgw_alice-canary-0b7e5c1d9a"
	keyBob   = "mgw_bob-canary-5a2f9e77c3"
	keyCarol = "mgw_carol-canary-44e1b0d2"
	keyDave  = "mgw_dave-canary-9c3d1f0e"
	keyOther = "mgw_other-canary-7f0a2b1c"
	keySoon  = "mgw_soon-canary-1d2c3b4a"
	keyWrong = "mgw_wrong-canary-6e5d4c3b"
)

// acmeTools are the tools of acme's first source.
func acmeTools() []*controlv1.ToolSpec {
	return []*controlv1.ToolSpec{
		toolSpec("send_message", "Send a message", alt("api_key", "apiKey")),
		toolSpec("list_channels", "List acme channels"),
		toolSpec("legacy_call", "Legacy", alt("custom", "unknown")),
		toolSpec("oauth_call", "OAuth", alt("oauth", "oauth2")),
		toolSpec("unselected_call", "Not selected"),
		toolSpec("gone_call", "Removed in v2"),
	}
}

func TestPolicy(t *testing.T) {
	e := newEnv(t)
	sdb := testenv.SpiceDB(t)
	e.startPolicy(t, sdb.Client, 2*time.Second)

	e.importSource(t, "acme", "src_a", 1, []string{"api.example.test"}, acmeTools()...)
	e.importSource(t, "acme", "src_c", 1, nil, toolSpec("list_channels", "A colliding tool"))
	e.importSource(t, "acme", "src_f", 1, nil, toolSpec("forged_tool", "Never approved by policy"))
	e.importSource(t, "other", "src_o", 1, nil, toolSpec("list_channels", "List other channels"), toolSpec("other_only", "Other only"))
	e.bind(t, "acme", "bnd_dev", "src_a", "api_key", "dev")

	var admin *commonv1.SignedContext
	t.Run("admin token", func(t *testing.T) {
		admin = e.contextFor(t, adminToken)
		c := e.verify(t, admin)
		if !c.GetPlatformAdmin() || c.GetUser() != "admin" || c.GetCredentialKind() != "admin_token" || c.GetSurface() != "api" {
			t.Fatalf("admin context: %v", c)
		}
	})

	agentCtx := func(tenant string) *commonv1.SignedContext {
		now := time.Now()
		sc, err := reqctx.Sign(e.keys.ID[bus.Policy], &commonv1.Context{Tenant: tenant, Agent: "a1", User: "alice", Surface: "ci",
			IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(30 * time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}

	t.Run("authorize refusals", func(t *testing.T) {
		cmd := &rpcv1.AddGrant{Tenant: "acme", Tool: "list_channels", SubjectType: "agent", SubjectId: "a1"}
		digest, _ := reqctx.CommandDigest(cmd)
		forged := &commonv1.SignedContext{Context: admin.GetContext(), Signature: e.keys.ID[bus.Edge].Sign(append([]byte("mcpgw/context/v1\x00"), admin.GetContext()...))}
		tests := []struct {
			name string
			req  *rpcv1.AuthorizeRequest
			want errcode.Code
		}{
			{"context forged by the edge", &rpcv1.AuthorizeRequest{Actor: forged, Tenant: "acme", Command: reqctx.CommandName(cmd), CommandDigest: digest}, errcode.Unauthenticated},
			{"unsigned context", &rpcv1.AuthorizeRequest{Actor: &commonv1.SignedContext{Context: admin.GetContext()}, Tenant: "acme", Command: reqctx.CommandName(cmd), CommandDigest: digest}, errcode.Unauthenticated},
			{"agent is no operator", &rpcv1.AuthorizeRequest{Actor: agentCtx("acme"), Tenant: "acme", Command: reqctx.CommandName(cmd), CommandDigest: digest}, errcode.PermissionDenied},
			{"invalid tenant", &rpcv1.AuthorizeRequest{Actor: admin, Tenant: "acme.>", Command: reqctx.CommandName(cmd), CommandDigest: digest}, errcode.InvalidID},
			{"invalid digest", &rpcv1.AuthorizeRequest{Actor: admin, Tenant: "acme", Command: reqctx.CommandName(cmd), CommandDigest: digest[:8]}, errcode.InvalidArgument},
			{"invalid command", &rpcv1.AuthorizeRequest{Actor: admin, Tenant: "acme", Command: "rm -rf", CommandDigest: digest}, errcode.InvalidArgument},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var reply rpcv1.AuthorizeReply
				e.call(t, e.edge, bus.PolicyAuthorize, tt.req, &reply)
				wantCode(t, "authorize", reply.GetError(), tt.want)
				if reply.GetAuthorization() != nil {
					t.Fatal("refusal carries an authorization")
				}
			})
		}
		eventually(t, "CommandDenied for the agent", func() bool {
			for _, ev := range e.auditEvents(t, bus.KindCommandDenied) {
				m := ev.Msg.(*auditv1.CommandDenied)
				if ev.Meta.GetTenant() == "acme" && m.GetPrincipal().GetAgent() == "a1" && m.GetCommand() == reqctx.CommandName(cmd) {
					return true
				}
			}
			return false
		})
	})

	t.Run("authorize", func(t *testing.T) {
		cmd := &rpcv1.AddGrant{Tenant: "acme", Tool: "list_channels", SubjectType: "agent", SubjectId: "a1"}
		r := e.authorize(t, admin, "acme", cmd)
		if r.GetError() != nil {
			t.Fatal(r.GetError())
		}
		v, _ := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: e.keys.Keyring, Revocations: reqctx.NewRevocationList()})
		attach(cmd, r.GetAuthorization())
		a, err := v.VerifyCommand(cmd, "acme")
		if err != nil {
			t.Fatalf("authorization does not verify: %v", err)
		}
		if life := a.GetExpiresAt().AsTime().Sub(a.GetIssuedAt().AsTime()); life > 30*time.Second || !a.GetActor().GetPlatformAdmin() || a.GetRequestId() == "" {
			t.Fatalf("authorization: life %s, actor %v, request %q", life, a.GetActor(), a.GetRequestId())
		}
	})

	t.Run("command refusals", func(t *testing.T) {
		approve := func() *rpcv1.ApproveSourceVersion {
			return &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_a", Version: 1}
		}
		// No authorization at all.
		wantCode(t, "no authorization", e.send(t, bus.PolicyApprove, approve()).GetError(), errcode.PermissionDenied)
		// An authorization of another command (different digest).
		other := &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_f", Version: 1}
		a := e.authorize(t, admin, "acme", other)
		cmd := approve()
		attach(cmd, a.GetAuthorization())
		wantCode(t, "mismatched authorization", e.send(t, bus.PolicyApprove, cmd).GetError(), errcode.PermissionDenied)
		// The same command authorized for another tenant.
		cmd = approve()
		cmd.Tenant = "other"
		a = e.authorize(t, admin, "other", cmd)
		cmd.Tenant = "acme"
		attach(cmd, a.GetAuthorization())
		wantCode(t, "authorization of another tenant", e.send(t, bus.PolicyApprove, cmd).GetError(), errcode.PermissionDenied)
		// A validly signed authorization of a non-admin actor is decided again.
		cmd = approve()
		digest, _ := reqctx.CommandDigest(cmd)
		now := time.Now()
		actor, _ := proto.Clone(e.verify(t, agentCtx("acme"))).(*commonv1.Context)
		sa, err := reqctx.SignAuthorization(e.keys.ID[bus.Policy], &commonv1.Authorization{Actor: actor, Tenant: "acme",
			Command: reqctx.CommandName(cmd), CommandDigest: digest, IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(10 * time.Second))})
		if err != nil {
			t.Fatal(err)
		}
		attach(cmd, sa)
		wantCode(t, "non-admin actor", e.send(t, bus.PolicyApprove, cmd).GetError(), errcode.PermissionDenied)
		// Garbage, signed by the edge.
		msg, err := bus.SignRequest(e.keys.ID[bus.Edge], bus.PolicyApprove.Subject(), []byte{0xff, 0xff, 0xff}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.edge.Conn.RequestMsg(msg, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var reply rpcv1.CommandReply
		if err := proto.Unmarshal(resp.Data, &reply); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "undecodable command", reply.GetError(), errcode.InvalidArgument)
	})

	t.Run("approve", func(t *testing.T) {
		r := e.mustCommand(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_a", Version: 1})
		if r.GetId() != "src_a" || r.GetVersion() != 2 {
			t.Fatalf("reply %v", r)
		}
		ev := lastEvent(t, e, "ctl.acme.sourcepolicy.src_a.SourceVersionApproved").(*controlv1.SourceVersionApproved)
		want := map[string][]byte{}
		for _, tl := range acmeTools() {
			d, err := catalog.ToolDigest(tl)
			if err != nil {
				t.Fatal(err)
			}
			want[tl.GetName()] = d
		}
		if len(ev.GetTools()) != len(want) {
			t.Fatalf("approved %d tools, want %d", len(ev.GetTools()), len(want))
		}
		for _, tl := range ev.GetTools() {
			if string(want[tl.GetName()]) != string(tl.GetDigest()) {
				t.Errorf("digest of %s differs from catalog.ToolDigest", tl.GetName())
			}
		}
		if strings.Join(ev.GetAllowedHosts(), ",") != "api.example.test" {
			t.Errorf("default allowed hosts %v", ev.GetAllowedHosts())
		}
		if ev.GetMeta().GetActor().GetId() != "admin" || ev.GetMeta().GetActor().GetVia() != "policy" || ev.GetMeta().GetActor().GetKind() != "operator" {
			t.Errorf("actor %v", ev.GetMeta().GetActor())
		}
		allow := lastEvent(t, e, "ctl.acme.sourcepolicy.src_a.HostAllowlistSet").(*controlv1.HostAllowlistSet)
		if strings.Join(allow.GetHosts(), ",") != "api.example.test" {
			t.Errorf("allowlist %v", allow.GetHosts())
		}
	})

	t.Run("approve refusals", func(t *testing.T) {
		r := e.command(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_c", Version: 1})
		wantCode(t, "collision", r.GetError(), errcode.Conflict)
		if !strings.Contains(r.GetError().GetMessage(), "list_channels") {
			t.Errorf("collision error does not name the tool: %q", r.GetError().GetMessage())
		}
		wantCode(t, "unknown version", e.command(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_a", Version: 7}).GetError(), errcode.NotFound)
		wantCode(t, "unknown source", e.command(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_zz", Version: 1}).GetError(), errcode.NotFound)
		wantCode(t, "bad host", e.command(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_f", Version: 1, AllowedHosts: []string{"https://x/"}}).GetError(), errcode.InvalidArgument)
		wantCode(t, "bad prefix", e.command(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_f", Version: 1, AllowedPrefixes: []string{"10.0.0.300/8"}}).GetError(), errcode.InvalidArgument)
		wantCode(t, "another tenant's source", e.command(t, bus.PolicyApprove, "other", &rpcv1.ApproveSourceVersion{Tenant: "other", SourceId: "src_a", Version: 1}).GetError(), errcode.NotFound)
	})

	t.Run("select", func(t *testing.T) {
		e.mustCommand(t, bus.PolicySelect, "acme", &rpcv1.SelectOperations{Tenant: "acme", SourceId: "src_a",
			Tools: []string{"send_message", "list_channels", "legacy_call", "oauth_call", "gone_call"}})
		wantCode(t, "unknown tool", e.command(t, bus.PolicySelect, "acme", &rpcv1.SelectOperations{Tenant: "acme", SourceId: "src_a", Tools: []string{"nope"}}).GetError(), errcode.NotFound)
		wantCode(t, "unapproved source", e.command(t, bus.PolicySelect, "acme", &rpcv1.SelectOperations{Tenant: "acme", SourceId: "src_f", Tools: []string{"forged_tool"}}).GetError(), errcode.NotFound)
		e.mustCommand(t, bus.PolicyApprove, "other", &rpcv1.ApproveSourceVersion{Tenant: "other", SourceId: "src_o", Version: 1})
		e.mustCommand(t, bus.PolicySelect, "other", &rpcv1.SelectOperations{Tenant: "other", SourceId: "src_o", Tools: []string{"list_channels", "other_only"}})
	})

	grants := map[string]string{}
	t.Run("grant", func(t *testing.T) {
		for _, tool := range []string{"send_message", "list_channels", "legacy_call", "oauth_call", "unselected_call", "gone_call"} {
			r := e.mustCommand(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: tool, SubjectType: "agent", SubjectId: "a1"})
			if !strings.HasPrefix(r.GetId(), "grt_") || r.GetVersion() != 1 {
				t.Fatalf("grant reply %v", r)
			}
			grants[tool] = r.GetId()
		}
		e.mustCommand(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "list_channels", SubjectType: "user", SubjectId: "carol"})
		e.mustCommand(t, bus.PolicyGrant, "other", &rpcv1.AddGrant{Tenant: "other", Tool: "list_channels", SubjectType: "agent", SubjectId: "a1"})
		e.mustCommand(t, bus.PolicyGrant, "other", &rpcv1.AddGrant{Tenant: "other", Tool: "other_only", SubjectType: "agent", SubjectId: "a1"})
		again := e.mustCommand(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "send_message", SubjectType: "agent", SubjectId: "a1"})
		if again.GetId() != grants["send_message"] {
			t.Errorf("a repeated grant made a new one: %s", again.GetId())
		}
		wantCode(t, "unapproved tool", e.command(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "forged_tool", SubjectType: "agent", SubjectId: "a1"}).GetError(), errcode.NotFound)
		wantCode(t, "other tenant's tool", e.command(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "other_only", SubjectType: "agent", SubjectId: "a1"}).GetError(), errcode.NotFound)
		wantCode(t, "bad subject type", e.command(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "list_channels", SubjectType: "team", SubjectId: "a1"}).GetError(), errcode.InvalidArgument)
		wantCode(t, "unknown grant", e.command(t, bus.PolicyRevokeGrant, "acme", &rpcv1.RevokeGrant{Tenant: "acme", GrantId: "grt_0000"}).GetError(), errcode.NotFound)
	})

	var alice, bob, carol, dave, other *commonv1.SignedContext
	var aliceKey string
	t.Run("issue key and authenticate", func(t *testing.T) {
		aliceKey = e.issueKey(t, "acme", "a1", "alice", "dev", "ci", keyAlice)
		if !strings.HasPrefix(aliceKey, "key_") {
			t.Fatalf("key ID %q", aliceKey)
		}
		e.issueKey(t, "acme", "a1", "bob", "prod", "ide", keyBob)
		e.issueKey(t, "acme", "a2", "carol", "dev", "ide", keyCarol)
		e.issueKey(t, "acme", "a3", "dave", "dev", "ide", keyDave)
		e.issueKey(t, "other", "a1", "alice", "dev", "ci", keyOther)
		alice, bob, carol, dave, other = e.contextFor(t, keyAlice), e.contextFor(t, keyBob), e.contextFor(t, keyCarol), e.contextFor(t, keyDave), e.contextFor(t, keyOther)
		c := e.verify(t, alice)
		if c.GetTenant() != "acme" || c.GetAgent() != "a1" || c.GetUser() != "alice" || c.GetEnvironment() != "dev" || c.GetSurface() != "ci" ||
			c.GetReportedSurface() != "test-client/1.0" || c.GetCredentialId() != aliceKey || c.GetCredentialKind() != "agent_key" ||
			c.GetCredentialFingerprint() != reqctx.Fingerprint([]byte(keyAlice)) || c.GetAssertionId() == "" || c.GetWorkload() != "test" {
			t.Fatalf("context %v", c)
		}
		if life := c.GetExpiresAt().AsTime().Sub(c.GetIssuedAt().AsTime()); life > time.Minute || life <= 0 {
			t.Fatalf("lifetime %s", life)
		}
		wantCode(t, "hash registered twice", e.command(t, bus.PolicyIssueKey, "acme", &rpcv1.IssueAgentKey{Tenant: "acme", AgentId: "a9",
			KeyHash: sha256Sum([]byte(keyAlice)), Prefix: "mgw_x"}).GetError(), errcode.Conflict)
		wantCode(t, "short hash", e.command(t, bus.PolicyIssueKey, "acme", &rpcv1.IssueAgentKey{Tenant: "acme", AgentId: "a9",
			KeyHash: []byte("short"), Prefix: "mgw_x"}).GetError(), errcode.InvalidArgument)
		wantCode(t, "unknown key to revoke", e.command(t, bus.PolicyRevokeKey, "acme", &rpcv1.RevokeAgentKey{Tenant: "acme", KeyId: "key_0000"}).GetError(), errcode.NotFound)
	})

	t.Run("wrong credentials", func(t *testing.T) {
		wantCode(t, "wrong key", e.authenticate(t, keyWrong).GetError(), errcode.Unauthenticated)
		var reply rpcv1.AuthenticateReply
		e.call(t, e.edge, bus.PolicyAuthenticate, &rpcv1.AuthenticateRequest{SealedCredential: []byte("not a sealed credential, only junk bytes of some length")}, &reply)
		wantCode(t, "unsealed credential", reply.GetError(), errcode.Unauthenticated)
		eventually(t, "AuthenticationFailed for the wrong key", func() bool {
			for _, ev := range e.auditEvents(t, bus.KindAuthenticationFailed) {
				m := ev.Msg.(*auditv1.AuthenticationFailed)
				if ev.Meta.GetTenant() == bus.UnattributedTenant && m.GetReasonCode() == "unknown_key" &&
					m.GetPrincipal().GetCredentialFingerprint() == reqctx.Fingerprint([]byte(keyWrong)) {
					return true
				}
			}
			return false
		})
	})

	t.Run("check", func(t *testing.T) {
		tests := []struct {
			name string
			ctx  *commonv1.SignedContext
			tool string
			want string
		}{
			{"granted agent", alice, "send_message", "allowed"},
			{"granted agent in another environment", bob, "send_message", "allowed"},
			{"user grant", carol, "list_channels", "allowed"},
			{"agent and user without grant", carol, "send_message", "denied"},
			{"user without grant", dave, "list_channels", "denied"},
			{"unknown tool", alice, "no_such_tool", "denied"},
			{"invalid tool name", alice, "a.b", "denied"},
			{"same name in another tenant", other, "send_message", "denied"},
			{"other tenant's own grant", other, "other_only", "allowed"},
			{"acme agent and other tenant's tool", alice, "other_only", "denied"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for range 2 { // the second answer comes from the cache
					r := e.check(t, tt.ctx, tt.tool)
					if r.GetError() != nil || r.GetOutcome() != tt.want {
						t.Fatalf("check = %s (%s) %v, want %s", r.GetOutcome(), r.GetReason(), r.GetError(), tt.want)
					}
				}
			})
		}
		forged := &commonv1.SignedContext{Context: alice.GetContext(), Signature: e.keys.ID[bus.Adapter].Sign(append([]byte("mcpgw/context/v1\x00"), alice.GetContext()...))}
		r := e.check(t, forged, "send_message")
		wantCode(t, "forged context", r.GetError(), errcode.Unauthenticated)
		if r.GetOutcome() == "allowed" {
			t.Fatal("forged context allowed")
		}
		r = e.check(t, admin, "send_message")
		if r.GetOutcome() == "allowed" {
			t.Fatal("tenantless admin context allowed to invoke a tool")
		}
	})

	t.Run("visible", func(t *testing.T) {
		tests := []struct {
			name string
			ctx  *commonv1.SignedContext
			want string
		}{
			// legacy_call: unknown auth; oauth_call: no strategy;
			// unselected_call: not selected; send_message needs a dev binding.
			{"agent in dev", alice, "gone_call,list_channels,send_message"},
			{"agent in prod has no binding for send_message", bob, "gone_call,list_channels"},
			{"user grant only", carol, "list_channels"},
			{"no grant", dave, ""},
			{"other tenant", other, "list_channels,other_only"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := e.visibleNames(t, tt.ctx); got != tt.want {
					t.Fatalf("visible = %q, want %q", got, tt.want)
				}
			})
		}
		r := e.visible(t, alice)
		for _, tl := range r.GetTools() {
			if tl.GetName() == "list_channels" && tl.GetDescription() != "List acme channels" {
				t.Fatalf("acme sees another tenant's tool: %q", tl.GetDescription())
			}
			if tl.GetName() == "send_message" && (string(tl.GetInputSchema()) != `{"type":"object"}` || !tl.GetAnnotations().GetReadOnly()) {
				t.Fatalf("visible tool fields: %v", tl)
			}
		}
		r = e.visible(t, other)
		if tl := r.GetTools()[0]; tl.GetDescription() != "List other channels" {
			t.Fatalf("other sees acme's tool: %q", tl.GetDescription())
		}
		wantCode(t, "tenantless context", e.visible(t, admin).GetError(), errcode.PermissionDenied)
		forged := &commonv1.SignedContext{Context: alice.GetContext(), Signature: []byte("x")}
		wantCode(t, "forged context", e.visible(t, forged).GetError(), errcode.Unauthenticated)
	})

	t.Run("new binding changes the visible set", func(t *testing.T) {
		e.bind(t, "acme", "bnd_prod", "src_a", "api_key", "prod")
		eventually(t, "send_message visible in prod", func() bool { return e.visibleNames(t, bob) == "gone_call,list_channels,send_message" })
	})

	t.Run("re-approval drops a removed tool", func(t *testing.T) {
		var v2 []*controlv1.ToolSpec
		for _, tl := range acmeTools() {
			if tl.GetName() != "gone_call" {
				v2 = append(v2, tl)
			}
		}
		e.importSource(t, "acme", "src_a", 2, []string{"api.example.test"}, v2...)
		if got := e.visibleNames(t, alice); got != "gone_call,list_channels,send_message" {
			t.Fatalf("an import changed the visible set before approval: %q", got)
		}
		e.mustCommand(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_a", Version: 2})
		if got := e.visibleNames(t, alice); got != "list_channels,send_message" {
			t.Fatalf("visible after re-approval = %q", got)
		}
	})

	t.Run("revoke grant", func(t *testing.T) {
		e.mustCommand(t, bus.PolicyRevokeGrant, "acme", &rpcv1.RevokeGrant{Tenant: "acme", GrantId: grants["send_message"]})
		if r := e.check(t, alice, "send_message"); r.GetOutcome() != "denied" {
			t.Fatalf("check after revoke = %s", r.GetOutcome())
		}
		if got := e.visibleNames(t, alice); got != "list_channels" {
			t.Fatalf("visible after revoke = %q", got)
		}
		again := e.mustCommand(t, bus.PolicyRevokeGrant, "acme", &rpcv1.RevokeGrant{Tenant: "acme", GrantId: grants["send_message"]})
		if again.GetVersion() != 2 {
			t.Fatalf("second revoke changed the grant: %v", again)
		}
	})

	t.Run("revoke key", func(t *testing.T) {
		e.mustCommand(t, bus.PolicyRevokeKey, "acme", &rpcv1.RevokeAgentKey{Tenant: "acme", KeyId: aliceKey})
		wantCode(t, "revoked key", e.authenticate(t, keyAlice).GetError(), errcode.Unauthenticated)
		// The context issued before the revocation is refused too.
		r := e.check(t, alice, "list_channels")
		wantCode(t, "context of a revoked key", r.GetError(), errcode.Unauthenticated)
		wantCode(t, "visible for a revoked key", e.visible(t, alice).GetError(), errcode.Unauthenticated)
		eventually(t, "AuthenticationFailed for the revoked key", func() bool {
			for _, ev := range e.auditEvents(t, bus.KindAuthenticationFailed) {
				m := ev.Msg.(*auditv1.AuthenticationFailed)
				if ev.Meta.GetTenant() == "acme" && m.GetReasonCode() == "revoked" && m.GetPrincipal().GetAgent() == "a1" && m.GetCredentialKind() == "agent_key" {
					return true
				}
			}
			return false
		})
	})

	t.Run("key expiry", func(t *testing.T) {
		exp := time.Now().Add(1500 * time.Millisecond)
		e.mustCommand(t, bus.PolicyIssueKey, "acme", &rpcv1.IssueAgentKey{Tenant: "acme", AgentId: "a4", KeyHash: sha256Sum([]byte(keySoon)),
			Prefix: keySoon[:8], ExpiresAt: timestamppb.New(exp)})
		c := e.verify(t, e.contextFor(t, keySoon))
		if c.GetExpiresAt().AsTime().After(exp) {
			t.Fatalf("context outlives its key: %s > %s", c.GetExpiresAt().AsTime(), exp)
		}
		eventually(t, "expired key refused", func() bool { return e.authenticate(t, keySoon).GetError() != nil })
	})

	t.Run("forged approval is ignored", func(t *testing.T) {
		spec := toolSpec("forged_tool", "Never approved by policy")
		d, _ := catalog.ToolDigest(spec)
		ev := &controlv1.SourceVersionApproved{Meta: &commonv1.EventMeta{Id: bus.NewID("evt_"), Type: "mcpgw.control.v1.SourceVersionApproved",
			Tenant: "acme", Aggregate: "sourcepolicy", AggregateId: "src_f", AggregateVersion: 1},
			SourceId: "src_f", Version: 1, Tools: []*controlv1.ApprovedTool{{Name: "forged_tool", Digest: d}}}
		subject := "ctl.acme.sourcepolicy.src_f.SourceVersionApproved"
		msg := testenv.SignEvent(t, e.keys.ID[bus.Importer], subject, ev)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := e.n.JS.PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish forged event: %v", err)
		}
		// The command catches up with the stream first, so the forged event
		// has been seen (and dropped) when it is planned.
		wantCode(t, "grant on a forged approval", e.command(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "forged_tool", SubjectType: "agent", SubjectId: "a2"}).GetError(), errcode.NotFound)
		// The junk message does not block policy's own approval.
		e.mustCommand(t, bus.PolicyApprove, "acme", &rpcv1.ApproveSourceVersion{Tenant: "acme", SourceId: "src_f", Version: 1})
		e.mustCommand(t, bus.PolicyGrant, "acme", &rpcv1.AddGrant{Tenant: "acme", Tool: "forged_tool", SubjectType: "agent", SubjectId: "a2"})
		if r := e.check(t, carol, "forged_tool"); r.GetOutcome() != "allowed" {
			t.Fatalf("check after the real approval = %s", r.GetOutcome())
		}
	})

	t.Run("no secret anywhere", func(t *testing.T) {
		e.assertNoCanary(t, adminToken, keyAlice, keyBob, keyCarol, keyDave, keyOther, keySoon, keyWrong)
		k := sdb.PresharedKey.Reveal()
		e.assertNoCanary(t, string(k))
	})
}

// lastEvent reads and verifies the last CONTROL message on subject.
func lastEvent(t *testing.T, e *env, subject string) bus.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.n.JS.Stream(ctx, bus.StreamControl)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(ctx, subject)
	if err != nil {
		t.Fatalf("read %s: %v", subject, err)
	}
	v, err := bus.NewVerifier(e.keys.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := v.VerifyControl(m.Subject, m.Header, m.Data)
	if err != nil {
		t.Fatalf("verify %s: %v", subject, err)
	}
	return ev.Msg
}
