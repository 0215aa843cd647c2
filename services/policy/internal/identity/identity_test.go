package identity_test

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/catalog"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/policy/internal/identity"
)

// keys is a hand-written KeyLookup over a map of hex hashes.
type keys map[[32]byte]struct {
	tenant string
	key    catalog.AgentKey
}

func (k keys) KeyByHash(h []byte) (string, catalog.AgentKey, bool) {
	var a [32]byte
	copy(a[:], h)
	e, ok := k[a]
	return e.tenant, e.key, ok
}

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func sealed(t *testing.T, pub *seal.PublicKey, kind string, value []byte) []byte {
	t.Helper()
	b, err := proto.Marshal(&rpcv1.Credential{Kind: kind, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	out, err := seal.Seal(pub, []byte(seal.InfoCredential), nil, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAuthenticate(t *testing.T) {
	sk, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	other, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	live, revoked, expired, soon := "mgw_live-canary-1", "mgw_revoked-2", "mgw_expired-3", "mgw_soon-4"
	admin := "admin-token-canary-5"
	k := keys{}
	add := func(v string, key catalog.AgentKey) {
		k[sha256.Sum256([]byte(v))] = struct {
			tenant string
			key    catalog.AgentKey
		}{"demo", key}
	}
	add(live, catalog.AgentKey{ID: "key_1", AgentID: "a1", User: "alice", Environment: "dev", Surface: "ci", Workload: "build"})
	add(revoked, catalog.AgentKey{ID: "key_2", AgentID: "a1", Revoked: true})
	add(expired, catalog.AgentKey{ID: "key_3", AgentID: "a1", ExpiresAt: now.Add(-time.Second)})
	add(soon, catalog.AgentKey{ID: "key_4", AgentID: "a1", ExpiresAt: now.Add(10 * time.Second)})
	a, err := identity.New(identity.Config{SealKey: sk, Keys: k, AdminTokenHash: identity.HashAdminToken(secret.New([]byte(admin))),
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		sealed []byte
		reason string
		tenant string
		check  func(t *testing.T, tenant, agent, user, surface, kind string, admin bool, life time.Duration)
	}{
		{name: "agent key", sealed: sealed(t, sk.Public(), "bearer", []byte(live)),
			check: func(t *testing.T, tenant, agent, user, surface, kind string, admin bool, life time.Duration) {
				if tenant != "demo" || agent != "a1" || user != "alice" || surface != "ci" || kind != identity.KindAgentKey || admin || life != time.Minute {
					t.Fatalf("context: %s %s %s %s %s %v %s", tenant, agent, user, surface, kind, admin, life)
				}
			}},
		{name: "key expiring soon bounds the context", sealed: sealed(t, sk.Public(), "bearer", []byte(soon)),
			check: func(t *testing.T, _, _, _, _, _ string, _ bool, life time.Duration) {
				if life != 10*time.Second {
					t.Fatalf("lifetime %s, want the key's 10s", life)
				}
			}},
		{name: "admin token", sealed: sealed(t, sk.Public(), "bearer", []byte(admin)),
			check: func(t *testing.T, tenant, _, user, surface, kind string, isAdmin bool, _ time.Duration) {
				if !isAdmin || user != "admin" || surface != "api" || kind != identity.KindAdminToken || tenant != "" {
					t.Fatalf("admin context: %s %s %s %s %v", tenant, user, surface, kind, isAdmin)
				}
			}},
		{name: "unknown key", sealed: sealed(t, sk.Public(), "bearer", []byte("mgw_nope")), reason: identity.ReasonUnknownKey},
		{name: "revoked key", sealed: sealed(t, sk.Public(), "bearer", []byte(revoked)), reason: identity.ReasonRevoked, tenant: "demo"},
		{name: "expired key", sealed: sealed(t, sk.Public(), "bearer", []byte(expired)), reason: identity.ReasonExpired, tenant: "demo"},
		{name: "sealed to another key", sealed: sealed(t, other.Public(), "bearer", []byte(live)), reason: identity.ReasonMalformed},
		{name: "wrong kind", sealed: sealed(t, sk.Public(), "basic", []byte(live)), reason: identity.ReasonMalformed},
		{name: "empty value", sealed: sealed(t, sk.Public(), "bearer", nil), reason: identity.ReasonMalformed},
		{name: "garbage", sealed: []byte("not sealed at all, not sealed at all, not sealed at all"), reason: identity.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := a.Authenticate(tt.sealed, "claude-code/1.0\x00\n")
			if tt.reason != "" {
				var f *identity.Failure
				if !errors.As(err, &f) || f.Reason != tt.reason || f.Tenant != tt.tenant {
					t.Fatalf("Authenticate = %v, want failure %s in %q", err, tt.reason, tt.tenant)
				}
				for _, canary := range []string{live, revoked, expired, admin} {
					if strings.Contains(f.Error(), canary) || strings.Contains(f.Fingerprint, canary) {
						t.Fatal("failure carries the credential")
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if c.GetReportedSurface() != "claude-code/1.0" {
				t.Errorf("reported surface %q not trimmed", c.GetReportedSurface())
			}
			if c.GetCredentialFingerprint() == "" || c.GetAssertionId() == "" {
				t.Error("fingerprint or assertion ID missing")
			}
			life := c.GetExpiresAt().AsTime().Sub(c.GetIssuedAt().AsTime())
			if life > reqctx.MaxLifetime {
				t.Errorf("lifetime %s over a minute", life)
			}
			tt.check(t, c.GetTenant(), c.GetAgent(), c.GetUser(), c.GetSurface(), c.GetCredentialKind(), c.GetPlatformAdmin(), life)
		})
	}
}

func TestNewRefusesLongContexts(t *testing.T) {
	sk, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := identity.New(identity.Config{SealKey: sk, Keys: keys{}, ContextTTL: 2 * time.Minute}); err == nil {
		t.Fatal("a two-minute context lifetime was accepted")
	}
	if _, err := identity.New(identity.Config{SealKey: sk, Keys: keys{}, AdminTokenHash: []byte("short")}); err == nil {
		t.Fatal("a malformed admin token hash was accepted")
	}
}
