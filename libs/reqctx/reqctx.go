// Package reqctx is the request context of mcpgw: the context assertion
// policy signs after verifying a principal's credential, the operator-command
// authorizations policy signs, and their verification by every other
// service (policy's signature, expiry, revocation, command digest).
//
// Only policy holds the signing key; the edge carries assertions it cannot
// forge, and every receiver verifies them.
package reqctx

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
)

// MaxLifetime is the longest a context assertion or command authorization
// may live.
const MaxLifetime = time.Minute

const (
	labelContext       = "mcpgw/context/v1\x00"
	labelAuthorization = "mcpgw/authorization/v1\x00"
)

// AuthorizationField is the name of the field every operator command
// message carries policy's signed authorization in.
const AuthorizationField = "authorization"

// Sign signs a context assertion as policy. It refuses a context whose
// lifetime exceeds MaxLifetime or that names no tenant.
func Sign(policy *bus.Identity, c *commonv1.Context) (*commonv1.SignedContext, error) {
	if policy == nil || policy.Service != bus.Policy {
		return nil, errors.New("reqctx: only policy signs contexts")
	}
	if c.GetTenant() == "" && !c.GetPlatformAdmin() {
		return nil, errors.New("reqctx: context without tenant")
	}
	if c.GetExpiresAt().AsTime().Sub(c.GetIssuedAt().AsTime()) > MaxLifetime {
		return nil, errors.New("reqctx: context lifetime exceeds one minute")
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode context: %w", err)
	}
	return &commonv1.SignedContext{Context: data, Signature: policy.Sign(append([]byte(labelContext), data...)), KeyId: policy.KeyID()}, nil
}

// Revocations reports whether a credential was revoked. Every service keeps
// one from CONTROL, so a revocation holds even while an assertion is cached.
type Revocations interface {
	Revoked(tenant, credentialID string) bool
}

// Verifier verifies contexts and authorizations signed by policy. It is
// safe for concurrent use.
type Verifier struct {
	keys    *bus.Keyring
	revoked Revocations
	now     func() time.Time
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Keyring     *bus.Keyring
	Revocations Revocations
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewVerifier returns a Verifier.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if cfg.Keyring == nil || cfg.Revocations == nil {
		return nil, errors.New("reqctx: verifier needs Keyring and Revocations")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{keys: cfg.Keyring, revoked: cfg.Revocations, now: cfg.Now}, nil
}

// Verify returns the context of a signed assertion, or errcode.Unauthenticated
// when it is not policy's, has expired, or names a revoked credential.
func (v *Verifier) Verify(sc *commonv1.SignedContext) (*commonv1.Context, error) {
	if sc == nil || !v.keys.Verify(bus.Policy, append([]byte(labelContext), sc.GetContext()...), sc.GetSignature()) {
		return nil, errcode.New(errcode.Unauthenticated, "context not signed by policy")
	}
	var c commonv1.Context
	if err := proto.Unmarshal(sc.GetContext(), &c); err != nil {
		return nil, errcode.Wrap(errcode.Unauthenticated, "undecodable context", err)
	}
	if err := v.live(c.GetIssuedAt(), c.GetExpiresAt()); err != nil {
		return nil, err
	}
	if c.GetCredentialId() != "" && v.revoked.Revoked(c.GetTenant(), c.GetCredentialId()) {
		return nil, errcode.New(errcode.Unauthenticated, "credential revoked")
	}
	return &c, nil
}

func (v *Verifier) live(issued, expires *timestamppb.Timestamp) error {
	now := v.now()
	if issued == nil || expires == nil || expires.AsTime().Sub(issued.AsTime()) > MaxLifetime {
		return errcode.New(errcode.Unauthenticated, "assertion lifetime invalid")
	}
	if now.After(expires.AsTime()) {
		return errcode.New(errcode.Unauthenticated, "assertion expired")
	}
	if issued.AsTime().After(now.Add(bus.DefaultRequestWindow)) {
		return errcode.New(errcode.Unauthenticated, "assertion issued in the future")
	}
	return nil
}

// CommandDigest is SHA-256 over a command's deterministic encoding with its
// authorization field cleared: what policy's authorization covers.
func CommandDigest(cmd proto.Message) ([]byte, error) {
	c := proto.Clone(cmd)
	fd := c.ProtoReflect().Descriptor().Fields().ByName(AuthorizationField)
	if fd == nil {
		return nil, fmt.Errorf("reqctx: %s has no authorization field", c.ProtoReflect().Descriptor().FullName())
	}
	c.ProtoReflect().Clear(fd)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode command: %w", err)
	}
	h := sha256.Sum256(data)
	return h[:], nil
}

// CommandName is the name an authorization names a command by: the message's
// full protobuf name, e.g. "mcpgw.rpc.v1.CreateBinding".
func CommandName(cmd proto.Message) string { return string(cmd.ProtoReflect().Descriptor().FullName()) }

// SignAuthorization signs an operator-command authorization as policy.
func SignAuthorization(policy *bus.Identity, a *commonv1.Authorization) (*commonv1.SignedAuthorization, error) {
	if policy == nil || policy.Service != bus.Policy {
		return nil, errors.New("reqctx: only policy signs authorizations")
	}
	if a.GetExpiresAt().AsTime().Sub(a.GetIssuedAt().AsTime()) > MaxLifetime {
		return nil, errors.New("reqctx: authorization lifetime exceeds one minute")
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode authorization: %w", err)
	}
	return &commonv1.SignedAuthorization{Authorization: data, Signature: policy.Sign(append([]byte(labelAuthorization), data...)), KeyId: policy.KeyID()}, nil
}

// VerifyCommand checks the authorization a command carries: policy signed
// it, it is live, the actor's credential is not revoked, and it authorizes
// exactly this command (name and digest) in tenant. It returns the
// authorization, whose Actor names who acts.
func (v *Verifier) VerifyCommand(cmd proto.Message, tenant string) (*commonv1.Authorization, error) {
	fd := cmd.ProtoReflect().Descriptor().Fields().ByName(AuthorizationField)
	if fd == nil || fd.Kind() != protoreflect.MessageKind {
		return nil, fmt.Errorf("reqctx: %s has no authorization field", CommandName(cmd))
	}
	sa, ok := cmd.ProtoReflect().Get(fd).Message().Interface().(*commonv1.SignedAuthorization)
	if !ok || sa == nil || len(sa.GetAuthorization()) == 0 {
		return nil, errcode.New(errcode.PermissionDenied, "command carries no authorization")
	}
	if !v.keys.Verify(bus.Policy, append([]byte(labelAuthorization), sa.GetAuthorization()...), sa.GetSignature()) {
		return nil, errcode.New(errcode.PermissionDenied, "authorization not signed by policy")
	}
	var a commonv1.Authorization
	if err := proto.Unmarshal(sa.GetAuthorization(), &a); err != nil {
		return nil, errcode.Wrap(errcode.PermissionDenied, "undecodable authorization", err)
	}
	if err := v.live(a.GetIssuedAt(), a.GetExpiresAt()); err != nil {
		return nil, errcode.Wrap(errcode.PermissionDenied, "authorization not live", err)
	}
	if id := a.GetActor().GetCredentialId(); id != "" && v.revoked.Revoked(a.GetActor().GetTenant(), id) {
		return nil, errcode.New(errcode.PermissionDenied, "actor credential revoked")
	}
	want, err := CommandDigest(cmd)
	if err != nil {
		return nil, err
	}
	if a.GetCommand() != CommandName(cmd) || a.GetTenant() != tenant || string(a.GetCommandDigest()) != string(want) {
		return nil, errcode.New(errcode.PermissionDenied, "authorization does not cover this command")
	}
	return &a, nil
}

// RevocationList is an in-memory Revocations kept from CONTROL events. It is
// safe for concurrent use.
type RevocationList struct {
	mu sync.RWMutex
	m  map[string]struct{}
}

// NewRevocationList returns an empty list.
func NewRevocationList() *RevocationList { return &RevocationList{m: map[string]struct{}{}} }

// Revoke records a revoked credential.
func (r *RevocationList) Revoke(tenant, credentialID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[tenant+"/"+credentialID] = struct{}{}
}

// Revoked reports whether a credential was revoked.
func (r *RevocationList) Revoked(tenant, credentialID string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.m[tenant+"/"+credentialID]
	return ok
}

// Fingerprint is a short, non-reversible fingerprint of a presented
// credential, safe to log and record: the first 16 hex characters of a
// domain-separated SHA-256.
func Fingerprint(credential []byte) string {
	h := sha256.Sum256(append([]byte("mcpgw/fingerprint/v1\x00"), credential...))
	return fmt.Sprintf("%x", h[:8])
}
