package authn_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
)

const goodKey = "mgw_good-credential-value"

// fakePolicy answers rpc.policy.authenticate like policy: it opens the
// sealed credential and signs a context for the one key it knows.
type fakePolicy struct {
	keys  *testenv.Keys
	now   func() time.Time
	calls atomic.Int32
	down  atomic.Bool
	forge atomic.Bool
	gate  chan struct{} // when set, calls wait for it

	mu     sync.Mutex
	sealed [][]byte
	meta   []bus.Meta
}

func (f *fakePolicy) Call(ctx context.Context, verb bus.Verb, req, reply proto.Message) error {
	f.calls.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if verb.Subject() != bus.PolicyAuthenticate.Subject() {
		return errors.New("unexpected verb")
	}
	if f.down.Load() {
		return errcode.New(errcode.Unavailable, "policy did not answer")
	}
	in := req.(*rpcv1.AuthenticateRequest)
	f.mu.Lock()
	f.sealed = append(f.sealed, in.GetSealedCredential())
	f.meta = append(f.meta, bus.MetaFrom(ctx))
	f.mu.Unlock()
	out := reply.(*rpcv1.AuthenticateReply)
	plain, err := seal.Open(f.keys.Seal[bus.Policy], []byte(seal.InfoCredential), nil, in.GetSealedCredential())
	if err != nil {
		return err
	}
	var cred rpcv1.Credential
	if err := proto.Unmarshal(plain, &cred); err != nil {
		return err
	}
	if string(cred.GetValue()) != goodKey || cred.GetKind() != authn.CredentialKindBearer {
		out.Error = &rpcv1.Error{Code: string(errcode.Unauthenticated), Message: "invalid credential"}
		return nil
	}
	if f.forge.Load() {
		out.Context = &commonv1.SignedContext{Context: []byte{1}, Signature: make([]byte, 64)}
		return nil
	}
	now := f.now()
	sc, err := reqctx.Sign(f.keys.ID[bus.Policy], &commonv1.Context{
		Tenant: "t1", Agent: "a1", ReportedSurface: in.GetReportedSurface(),
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute)),
		CredentialFingerprint: reqctx.Fingerprint(cred.GetValue()),
	})
	if err != nil {
		return err
	}
	out.Context = sc
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func setup(t *testing.T) (*authn.Authenticator, *fakePolicy, *clock) {
	t.Helper()
	keys := testenv.NewKeys(t)
	c := &clock{t: time.Now()}
	f := &fakePolicy{keys: keys, now: c.now}
	a, err := authn.New(authn.Config{Caller: f, Keyring: keys.Keyring, CacheSize: 8, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return a, f, c
}

func TestAuthenticateCachesUntilShortlyBeforeExpiry(t *testing.T) {
	a, f, c := setup(t)
	ctx := bus.WithMeta(context.Background(), bus.Meta{RequestID: "req_1", Tenant: "t1"})
	p, err := a.Authenticate(ctx, []byte(goodKey), "cli/1", "127.0.0.1:5000")
	if err != nil {
		t.Fatal(err)
	}
	if p.Tenant() != "t1" || p.Context.GetReportedSurface() != "cli/1" || p.Fingerprint != reqctx.Fingerprint([]byte(goodKey)) {
		t.Fatalf("principal %v", p.Context)
	}
	if f.meta[0].RequestID != "req_1" {
		t.Fatalf("authenticate carried meta %+v", f.meta[0])
	}
	if bytes.Contains(f.sealed[0], []byte(goodKey)) {
		t.Fatal("credential sent in clear")
	}
	c.advance(40 * time.Second)
	if _, err := a.Authenticate(ctx, []byte(goodKey), "cli/1", ""); err != nil || f.calls.Load() != 1 {
		t.Fatalf("cached: err %v, calls %d", err, f.calls.Load())
	}
	c.advance(10 * time.Second) // 50s of 60s: less than a quarter left
	if _, err := a.Authenticate(ctx, []byte(goodKey), "cli/1", ""); err != nil || f.calls.Load() != 2 {
		t.Fatalf("refresh: err %v, calls %d", err, f.calls.Load())
	}
}

func TestAuthenticateSharesConcurrentFirstRequests(t *testing.T) {
	a, f, _ := setup(t)
	f.gate = make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Authenticate(context.Background(), []byte(goodKey), "", "")
			errs <- err
		}()
	}
	// Hold policy's answer until the first call arrives: every other
	// request either joins that call or finds its cached result.
	deadline := time.Now().Add(5 * time.Second)
	for f.calls.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no call reached policy")
		}
		time.Sleep(time.Millisecond)
	}
	close(f.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.calls.Load(); n != 1 {
		t.Fatalf("%d calls to policy for one credential", n)
	}
}

func TestAuthenticateRefusals(t *testing.T) {
	tests := []struct {
		name  string
		cred  string
		setup func(*fakePolicy)
		want  errcode.Code
	}{
		{"missing", "", nil, errcode.Unauthenticated},
		{"unknown credential", "mgw_other", nil, errcode.Unauthenticated},
		{"policy down", goodKey, func(f *fakePolicy) { f.down.Store(true) }, errcode.Unavailable},
		{"forged context", goodKey, func(f *fakePolicy) { f.forge.Store(true) }, errcode.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, f, _ := setup(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			_, err := a.Authenticate(context.Background(), []byte(tt.cred), "", "")
			if errcode.CodeOf(err) != tt.want {
				t.Fatalf("error %v, want %s", err, tt.want)
			}
		})
	}
}

func TestReauthenticateUsesTheSealedCredential(t *testing.T) {
	a, f, c := setup(t)
	p, err := a.Authenticate(context.Background(), []byte(goodKey), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := a.Reauthenticate(context.Background(), p); err != nil || p2 != p || f.calls.Load() != 1 {
		t.Fatalf("fresh context not reused: %v, calls %d", err, f.calls.Load())
	}
	c.advance(55 * time.Second)
	p3, err := a.Reauthenticate(context.Background(), p)
	if err != nil || f.calls.Load() != 2 || p3 == p || p3.CredentialKey != p.CredentialKey {
		t.Fatalf("reauthenticate: %v, calls %d", err, f.calls.Load())
	}
	a.Forget(p3)
	if _, err := a.Reauthenticate(context.Background(), p3); err != nil || f.calls.Load() != 3 {
		t.Fatalf("after Forget: %v, calls %d", err, f.calls.Load())
	}
}

func TestNewNeedsPolicySealingKey(t *testing.T) {
	keys := testenv.NewKeys(t)
	empty, err := bus.NewKeyring(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authn.New(authn.Config{Caller: &fakePolicy{keys: keys}, Keyring: empty}); err == nil {
		t.Fatal("New accepted a keyring without policy's sealing key")
	}
}
