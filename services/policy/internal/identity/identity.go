// Package identity is policy's identity authority: it opens a credential the
// edge sealed to policy's HPKE key, verifies it — an agent key by the
// SHA-256 the catalog holds, or the local stack's admin token by its SHA-256
// in constant time — and builds the context assertion policy signs. It does
// no I/O. Credentials are wiped after use and never leave this package: a
// failure carries only a reason code and the credential's fingerprint.
package identity

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// DefaultContextTTL is the lifetime of a context assertion unless configured.
const DefaultContextTTL = time.Minute

// Credential kinds recorded in contexts and audit.
const (
	KindAgentKey   = "agent_key"
	KindAdminToken = "admin_token"
	// KindBearer is a presented bearer credential that matched nothing.
	KindBearer = "bearer"
)

// AdminUser is the user of the admin token's context.
const AdminUser = "admin"

// Reason codes of AuthenticationFailed (a stable set).
const (
	ReasonUnknownKey = "unknown_key"
	ReasonRevoked    = "revoked"
	ReasonExpired    = "expired"
	ReasonMalformed  = "malformed"
)

// maxReportedSurface is the budget for the client-reported surface.
const maxReportedSurface = 128

// KeyLookup finds an agent key by the SHA-256 of the key; *catalog.Catalog
// implements it.
type KeyLookup interface {
	KeyByHash(hash []byte) (tenant string, k catalog.AgentKey, ok bool)
}

// Config configures an Authenticator.
type Config struct {
	// SealKey is policy's HPKE private key. Required.
	SealKey *seal.PrivateKey
	// Keys finds agent keys. Required.
	Keys KeyLookup
	// AdminTokenHash is the SHA-256 of the admin token; empty disables the
	// admin token.
	AdminTokenHash []byte
	// ContextTTL is the assertion lifetime (default and maximum one minute).
	ContextTTL time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// Authenticator verifies sealed credentials. It is safe for concurrent use.
type Authenticator struct {
	sealKey *seal.PrivateKey
	keys    KeyLookup
	admin   []byte
	ttl     time.Duration
	now     func() time.Time
}

// New returns an Authenticator.
func New(cfg Config) (*Authenticator, error) {
	if cfg.SealKey == nil || cfg.Keys == nil {
		return nil, errors.New("identity: SealKey and Keys are required")
	}
	if len(cfg.AdminTokenHash) != 0 && len(cfg.AdminTokenHash) != sha256.Size {
		return nil, errors.New("identity: admin token hash must be a SHA-256")
	}
	if cfg.ContextTTL <= 0 {
		cfg.ContextTTL = DefaultContextTTL
	}
	if cfg.ContextTTL > reqctx.MaxLifetime {
		return nil, fmt.Errorf("identity: context lifetime %s exceeds %s", cfg.ContextTTL, reqctx.MaxLifetime)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Authenticator{sealKey: cfg.SealKey, keys: cfg.Keys, admin: append([]byte(nil), cfg.AdminTokenHash...), ttl: cfg.ContextTTL, now: cfg.Now}, nil
}

// HashAdminToken returns the SHA-256 of an admin token, the only form
// policy keeps.
func HashAdminToken(token secret.Value) []byte {
	b := token.Reveal()
	defer clear(b)
	h := sha256.Sum256(b)
	return h[:]
}

// Failure is why a credential was refused. It holds no credential: only a
// reason code, the credential's fingerprint and, for a known agent key, the
// key's tenant and registration.
type Failure struct {
	Reason string
	// Kind is the credential kind: KindAgentKey when a key matched, else
	// KindBearer.
	Kind        string
	Fingerprint string
	// Tenant and Key are set when an agent key matched (revoked, expired).
	Tenant string
	Key    *catalog.AgentKey
}

// Error returns the reason code.
func (f *Failure) Error() string { return "authentication failed: " + f.Reason }

// Authenticate opens a sealed credential and verifies it. On success it
// returns the context to sign (tenant, agent, user, workload, verified
// surface from the key, reported surface for audit, environment, credential
// fingerprint and ID, a lifetime of at most ContextTTL and never past the
// key's expiry). On failure it returns a *Failure.
func (a *Authenticator) Authenticate(sealed []byte, reportedSurface string) (*commonv1.Context, error) {
	pt, err := seal.Open(a.sealKey, []byte(seal.InfoCredential), nil, sealed)
	if err != nil {
		return nil, &Failure{Reason: ReasonMalformed, Kind: KindBearer}
	}
	defer clear(pt)
	var cred rpcv1.Credential
	if err := proto.Unmarshal(pt, &cred); err != nil {
		return nil, &Failure{Reason: ReasonMalformed, Kind: KindBearer}
	}
	value := cred.GetValue()
	defer clear(value)
	if cred.GetKind() != KindBearer || len(value) == 0 {
		return nil, &Failure{Reason: ReasonMalformed, Kind: KindBearer}
	}
	fp := reqctx.Fingerprint(value)
	sum := sha256.Sum256(value)
	now := a.now()
	base := &commonv1.Context{
		ReportedSurface:       Trim(reportedSurface, maxReportedSurface),
		CredentialFingerprint: fp,
		IssuedAt:              timestamppb.New(now),
		AssertionId:           bus.NewID("asr_"),
	}
	if len(a.admin) == sha256.Size && subtle.ConstantTimeCompare(sum[:], a.admin) == 1 {
		base.PlatformAdmin = true
		base.User = AdminUser
		base.Surface = "api"
		base.CredentialKind = KindAdminToken
		base.CredentialId = KindAdminToken
		base.ExpiresAt = timestamppb.New(now.Add(a.ttl))
		return base, nil
	}
	tenant, key, ok := a.keys.KeyByHash(sum[:])
	if !ok {
		return nil, &Failure{Reason: ReasonUnknownKey, Kind: KindBearer, Fingerprint: fp}
	}
	fail := func(reason string) error {
		return &Failure{Reason: reason, Kind: KindAgentKey, Fingerprint: fp, Tenant: tenant, Key: &key}
	}
	if key.Revoked {
		return nil, fail(ReasonRevoked)
	}
	expires := now.Add(a.ttl)
	if !key.ExpiresAt.IsZero() {
		if !now.Before(key.ExpiresAt) {
			return nil, fail(ReasonExpired)
		}
		if key.ExpiresAt.Before(expires) {
			expires = key.ExpiresAt
		}
	}
	base.Tenant = tenant
	base.Agent = key.AgentID
	base.User = key.User
	base.Workload = key.Workload
	base.Surface = key.Surface
	base.Environment = key.Environment
	base.CredentialId = key.ID
	base.CredentialKind = KindAgentKey
	base.ExpiresAt = timestamppb.New(expires)
	return base, nil
}

// Trim keeps at most max bytes of a caller-supplied string, dropping control
// and non-printable characters, so it can be recorded in audit.
func Trim(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+len(string(r)) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
