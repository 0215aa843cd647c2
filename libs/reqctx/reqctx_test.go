package reqctx_test

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/testenv"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func ctxFor(tenant string, life time.Duration) *commonv1.Context {
	return &commonv1.Context{
		Tenant: tenant, Agent: "agent_1", User: "alice", Surface: "cli", Environment: "dev",
		CredentialId: "key_1", CredentialKind: "agent_key",
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(life)),
	}
}

func verifier(t *testing.T, k *testenv.Keys, rev *reqctx.RevocationList, at time.Time) *reqctx.Verifier {
	t.Helper()
	v, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: k.Keyring, Revocations: rev, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestContextSignAndVerify(t *testing.T) {
	k := testenv.NewKeys(t)
	rev := reqctx.NewRevocationList()
	sc, err := reqctx.Sign(k.ID[bus.Policy], ctxFor("demo", 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c, err := verifier(t, k, rev, now.Add(time.Second)).Verify(sc)
	if err != nil || c.GetTenant() != "demo" || c.GetAgent() != "agent_1" {
		t.Fatalf("verify: %v %v", c, err)
	}
	unauth := &errcode.Error{Code: errcode.Unauthenticated}
	// Only policy signs.
	if _, err := reqctx.Sign(k.ID[bus.Edge], ctxFor("demo", 30*time.Second)); err == nil {
		t.Fatal("edge signed a context")
	}
	forged := &commonv1.SignedContext{Context: sc.Context, Signature: k.ID[bus.Edge].Sign(append([]byte("mcpgw/context/v1\x00"), sc.Context...))}
	if _, err := verifier(t, k, rev, now).Verify(forged); !errors.Is(err, unauth) {
		t.Fatalf("context signed by edge: %v", err)
	}
	// Expired.
	if _, err := verifier(t, k, rev, now.Add(time.Minute)).Verify(sc); !errors.Is(err, unauth) {
		t.Fatalf("expired context: %v", err)
	}
	// Longer than a minute is never signed.
	if _, err := reqctx.Sign(k.ID[bus.Policy], ctxFor("demo", 2*time.Minute)); err == nil {
		t.Fatal("signed a two-minute context")
	}
	// Revoked after issue.
	rev.Revoke("demo", "key_1")
	if _, err := verifier(t, k, rev, now).Verify(sc); !errors.Is(err, unauth) {
		t.Fatalf("revoked credential: %v", err)
	}
	// Tampered.
	bad := &commonv1.SignedContext{Context: append([]byte(nil), sc.Context...), Signature: sc.Signature}
	bad.Context[3] ^= 1
	if _, err := verifier(t, k, reqctx.NewRevocationList(), now).Verify(bad); !errors.Is(err, unauth) {
		t.Fatalf("tampered context: %v", err)
	}
}

func TestCommandAuthorization(t *testing.T) {
	k := testenv.NewKeys(t)
	v := verifier(t, k, reqctx.NewRevocationList(), now)
	cmd := &rpcv1.AddGrant{Tenant: "demo", Tool: "send_message", SubjectType: "agent", SubjectId: "agent_1"}
	digest, err := reqctx.CommandDigest(cmd)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := reqctx.SignAuthorization(k.ID[bus.Policy], &commonv1.Authorization{
		Actor: ctxFor("demo", 30*time.Second), Tenant: "demo", Command: reqctx.CommandName(cmd), CommandDigest: digest,
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(30 * time.Second)),
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd.Authorization = sa
	a, err := v.VerifyCommand(cmd, "demo")
	if err != nil || a.GetActor().GetAgent() != "agent_1" {
		t.Fatalf("verify command: %v", err)
	}
	denied := &errcode.Error{Code: errcode.PermissionDenied}
	// Another tenant.
	if _, err := v.VerifyCommand(cmd, "other"); !errors.Is(err, denied) {
		t.Fatalf("other tenant: %v", err)
	}
	// A changed command.
	changed := &rpcv1.AddGrant{Authorization: sa, Tenant: "demo", Tool: "delete_everything", SubjectType: "agent", SubjectId: "agent_1"}
	if _, err := v.VerifyCommand(changed, "demo"); !errors.Is(err, denied) {
		t.Fatalf("changed command: %v", err)
	}
	// Another command type with the same authorization.
	other := &rpcv1.RevokeGrant{Authorization: sa, Tenant: "demo"}
	if _, err := v.VerifyCommand(other, "demo"); !errors.Is(err, denied) {
		t.Fatalf("other command: %v", err)
	}
	// No authorization.
	if _, err := v.VerifyCommand(&rpcv1.AddGrant{Tenant: "demo"}, "demo"); !errors.Is(err, denied) {
		t.Fatalf("no authorization: %v", err)
	}
}
