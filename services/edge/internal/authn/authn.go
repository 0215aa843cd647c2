// Package authn turns a principal's presented credential into policy's
// signed context. The edge never inspects or trusts a credential itself: it
// seals the credential to policy's HPKE public key, asks policy
// (rpc.policy.authenticate) to verify it, and caches the signed context that
// comes back until shortly before it expires.
//
// The cache is keyed by SHA-256 of the credential (and the reported surface,
// which the context records); it is a bounded LRU held in memory only. The
// credential itself is never stored: a Principal keeps the sealed form,
// which only policy can open, so that a long-lived notification stream can
// be re-authenticated without the edge holding the credential.
package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
)

// DefaultCacheSize is the number of signed contexts kept when Config.CacheSize
// is zero.
const DefaultCacheSize = 4096

// CredentialKindBearer is the kind of a credential presented as
// "Authorization: Bearer <credential>".
const CredentialKindBearer = "bearer"

// Caller sends one authenticated request over the bus; *bus.Client
// satisfies it.
type Caller interface {
	Call(ctx context.Context, verb bus.Verb, req, reply proto.Message) error
}

// Config configures an Authenticator.
type Config struct {
	// Caller reaches rpc.policy.authenticate (required).
	Caller Caller
	// Keyring holds policy's signing key and HPKE sealing key (required).
	Keyring *bus.Keyring
	// CacheSize bounds the number of cached contexts (DefaultCacheSize when 0).
	CacheSize int
	// Timeout bounds one authenticate request (default 5s).
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Principal is an authenticated caller: policy's signed context and what
// the edge derived from it. It holds no credential; Fingerprint is the
// non-reversible fingerprint policy records.
type Principal struct {
	// Signed is policy's assertion, attached to every call the edge makes.
	Signed *commonv1.SignedContext
	// Context is the decoded, signature-checked assertion (read-only).
	Context *commonv1.Context
	// Fingerprint is reqctx.Fingerprint of the credential.
	Fingerprint string
	// CredentialKey is the hex SHA-256 of the credential: a stable key for
	// rate limits and session binding. It is held in memory only and never
	// logged or sent.
	CredentialKey string

	cacheKey    string
	sealed      []byte
	surface     string
	remote      string
	usableUntil time.Time
}

// Tenant returns the tenant the context names ("" for a platform admin).
func (p *Principal) Tenant() string { return p.Context.GetTenant() }

// LogValue logs only non-secret identifiers.
func (p *Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("tenant", p.Context.GetTenant()),
		slog.String("agent", p.Context.GetAgent()),
		slog.String("fingerprint", p.Fingerprint),
	)
}

// Authenticator verifies credentials through policy and caches the signed
// contexts. It is safe for concurrent use; concurrent first requests with the
// same credential share one call to policy.
type Authenticator struct {
	caller   Caller
	policy   *seal.PublicKey
	verifier *reqctx.Verifier
	cache    *lru.Cache[string, *Principal]
	timeout  time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	inflight map[string]*flight
}

type flight struct {
	done chan struct{}
	p    *Principal
	err  error
}

// New returns an Authenticator. It fails when the keyring holds no HPKE key
// for policy.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Caller == nil || cfg.Keyring == nil {
		return nil, errors.New("authn: Caller and Keyring are required")
	}
	raw, ok := cfg.Keyring.SealKey(bus.Policy)
	if !ok {
		return nil, errors.New("authn: keyring holds no sealing key for policy")
	}
	pub, err := seal.ParsePublicKeyBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("authn: policy sealing key: %w", err)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// The edge does not replay CONTROL, so it keeps no revocations: every
	// receiver of a context checks them. Verification here only makes sure
	// the reply is a well-formed, live assertion signed by policy.
	v, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: cfg.Keyring, Revocations: reqctx.NewRevocationList(), Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	cache, err := lru.New[string, *Principal](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	return &Authenticator{
		caller: cfg.Caller, policy: pub, verifier: v, cache: cache, timeout: cfg.Timeout,
		log: cfg.Logger.With("component", "authn"), now: cfg.Now, inflight: map[string]*flight{},
	}, nil
}

// CredentialKey returns the hex SHA-256 of a credential, the key the edge
// uses for rate limits before authenticating.
func CredentialKey(credential []byte) string {
	h := sha256.Sum256(credential)
	return hex.EncodeToString(h[:])
}

// Authenticate returns the principal for a presented credential. Errors:
// errcode.Unauthenticated when policy refuses the credential (or none was
// given), errcode.Unavailable when policy cannot be reached. The credential
// is sealed to policy's key before it leaves this function and is not kept.
func (a *Authenticator) Authenticate(ctx context.Context, credential []byte, reportedSurface, remoteAddr string) (*Principal, error) {
	if len(credential) == 0 {
		return nil, errcode.New(errcode.Unauthenticated, "missing credential")
	}
	credKey := CredentialKey(credential)
	key := credKey + "\x00" + reportedSurface
	if p, ok := a.cached(key); ok {
		return p, nil
	}
	return a.do(key, func() (*Principal, error) {
		plain, err := proto.Marshal(&rpcv1.Credential{Kind: CredentialKindBearer, Value: credential})
		if err != nil {
			return nil, fmt.Errorf("encode credential: %w", err)
		}
		sealed, err := seal.Seal(a.policy, []byte(seal.InfoCredential), nil, plain)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("seal credential: %w", err)
		}
		p := &Principal{
			Fingerprint: reqctx.Fingerprint(credential), CredentialKey: credKey,
			cacheKey: key, sealed: sealed, surface: reportedSurface, remote: remoteAddr,
		}
		return a.call(ctx, p)
	})
}

// Reauthenticate returns a principal with a fresh context for the same
// credential as p, from the cache when possible, else by presenting p's
// sealed credential to policy again. Errors are those of Authenticate.
func (a *Authenticator) Reauthenticate(ctx context.Context, p *Principal) (*Principal, error) {
	if cp, ok := a.cached(p.cacheKey); ok {
		return cp, nil
	}
	return a.do(p.cacheKey, func() (*Principal, error) {
		np := &Principal{
			Fingerprint: p.Fingerprint, CredentialKey: p.CredentialKey,
			cacheKey: p.cacheKey, sealed: p.sealed, surface: p.surface, remote: p.remote,
		}
		return a.call(ctx, np)
	})
}

// Forget drops any cached context for p's credential, so the next request
// asks policy again.
func (a *Authenticator) Forget(p *Principal) { a.cache.Remove(p.cacheKey) }

func (a *Authenticator) cached(key string) (*Principal, bool) {
	p, ok := a.cache.Get(key)
	if !ok {
		return nil, false
	}
	if !a.now().Before(p.usableUntil) {
		a.cache.Remove(key)
		return nil, false
	}
	return p, true
}

// do runs fn once for concurrent callers with the same key.
func (a *Authenticator) do(key string, fn func() (*Principal, error)) (*Principal, error) {
	a.mu.Lock()
	if f, ok := a.inflight[key]; ok {
		a.mu.Unlock()
		<-f.done
		return f.p, f.err
	}
	f := &flight{done: make(chan struct{})}
	a.inflight[key] = f
	a.mu.Unlock()
	f.p, f.err = fn()
	a.mu.Lock()
	delete(a.inflight, key)
	a.mu.Unlock()
	close(f.done)
	return f.p, f.err
}

// call asks policy to verify p's sealed credential and completes p.
func (a *Authenticator) call(ctx context.Context, p *Principal) (*Principal, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	var reply rpcv1.AuthenticateReply
	err := a.caller.Call(ctx, bus.PolicyAuthenticate, &rpcv1.AuthenticateRequest{
		SealedCredential: p.sealed, ReportedSurface: p.surface, RemoteAddr: p.remote,
	}, &reply)
	if err != nil {
		a.log.Warn("authenticate failed", "fingerprint", p.Fingerprint, "code", errcode.CodeOf(err), "err", err)
		if errcode.CodeOf(err) == errcode.Unauthenticated {
			return nil, errcode.New(errcode.Unauthenticated, "invalid credential")
		}
		return nil, errcode.Wrap(errcode.Unavailable, "identity service unavailable", err)
	}
	if e := reply.GetError(); e != nil {
		if errcode.Code(e.GetCode()) == errcode.Unauthenticated || errcode.Code(e.GetCode()) == errcode.PermissionDenied {
			return nil, errcode.New(errcode.Unauthenticated, "invalid credential")
		}
		a.log.Warn("authenticate refused", "fingerprint", p.Fingerprint, "code", e.GetCode())
		return nil, errcode.New(errcode.Unavailable, "identity service unavailable")
	}
	c, err := a.verifier.Verify(reply.GetContext())
	if err != nil {
		a.log.Error("policy returned an unusable context", "fingerprint", p.Fingerprint, "err", err)
		return nil, errcode.Wrap(errcode.Unavailable, "identity service unavailable", err)
	}
	p.Signed, p.Context = reply.GetContext(), c
	issued, expires := c.GetIssuedAt().AsTime(), c.GetExpiresAt().AsTime()
	// Reuse the context until a quarter of its lifetime is left, so that
	// every receiver still finds it live.
	p.usableUntil = expires.Add(-max(expires.Sub(issued)/4, time.Second))
	if a.now().Before(p.usableUntil) {
		a.cache.Add(p.cacheKey, p)
	}
	return p, nil
}
