// Package service is the policy service's composition root: it loads keys
// and secrets from 0600 files, joins the bus, connects to SpiceDB, wires the
// read models, the application and the NATS handlers by hand, and runs them.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/authzed/authzed-go/v1"

	"github.com/mcpgw/mcpgw/deploy"
	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/policy/internal/app"
	"github.com/mcpgw/mcpgw/services/policy/internal/identity"
	"github.com/mcpgw/mcpgw/services/policy/internal/ports"
	"github.com/mcpgw/mcpgw/services/policy/internal/projection"
	"github.com/mcpgw/mcpgw/services/policy/internal/spicedb"
)

// Config is the policy service's configuration, parsed once in main.
// Secrets are named by 0600 files, never given as values.
type Config struct {
	NATSURL          string
	NATSPasswordFile string
	// IdentityFile holds policy's Ed25519 signing seed.
	IdentityFile string
	// KeyringFile holds every service's public keys.
	KeyringFile string
	// SealKeyFile holds policy's HPKE private key.
	SealKeyFile string
	// AdminTokenFile holds the local stack's admin token (refused in
	// production). Optional.
	AdminTokenFile string
	// SpiceDBAddr is "host:port"; plaintext only to loopback unless
	// SpiceDBPlaintext.
	SpiceDBAddr string
	// SpiceDBPlaintext allows plaintext to a non-loopback SpiceDB (a private
	// container network); refused in production mode.
	SpiceDBPlaintext bool
	// SpiceDBKeyFile holds SpiceDB's preshared key.
	SpiceDBKeyFile string
	// ContextTTL is the lifetime of context assertions (default and
	// maximum one minute).
	ContextTTL time.Duration
	// DecisionCacheTTL bounds cached decisions and visible sets (default
	// 2s; negative disables caching).
	DecisionCacheTTL time.Duration
	// Production refuses what only suits a laptop (an admin token file).
	Production bool
	Logger     *slog.Logger
}

// Deps are dependencies already built, for tests and embedding. Runtime,
// SealKey and SpiceDB are required; the service does not close them.
type Deps struct {
	Runtime *bus.Runtime
	SealKey *seal.PrivateKey
	// AdminToken enables the admin token (refused in production).
	AdminToken secret.Value
	SpiceDB    *authzed.Client
}

// Service is a running policy service.
type Service struct {
	cfg       Config
	log       *slog.Logger
	rt        *bus.Runtime
	proj      *bus.Projection
	projector *projection.Projector
	handlers  *ports.Handlers
	closers   []func()

	mu      sync.Mutex
	running bool
	ready   chan struct{}
}

// New loads the configured files, joins the bus and connects to SpiceDB,
// and returns the wired service.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SealKeyFile == "" || cfg.SpiceDBAddr == "" || cfg.SpiceDBKeyFile == "" {
		return nil, errors.New("policy: seal key file, spicedb address and spicedb key file are required")
	}
	if cfg.Production && cfg.AdminTokenFile != "" {
		return nil, errors.New("policy: an admin token file is refused in production mode")
	}
	if cfg.Production && cfg.SpiceDBPlaintext {
		return nil, errors.New("policy: plaintext to SpiceDB is refused in production mode")
	}
	var d Deps
	var closers []func()
	fail := func(err error) (*Service, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		return nil, err
	}
	var err error
	if d.SealKey, err = seal.ReadPrivateKeyFile(cfg.SealKeyFile); err != nil {
		return fail(fmt.Errorf("policy: %w", err))
	}
	if cfg.AdminTokenFile != "" {
		if d.AdminToken, err = bus.ReadSecretFile(cfg.AdminTokenFile); err != nil {
			return fail(fmt.Errorf("policy: admin token: %w", err))
		}
		defer d.AdminToken.Wipe()
	}
	key, err := bus.ReadSecretFile(cfg.SpiceDBKeyFile)
	if err != nil {
		return fail(fmt.Errorf("policy: spicedb key: %w", err))
	}
	if d.SpiceDB, err = spicedb.Dial(cfg.SpiceDBAddr, key, cfg.SpiceDBPlaintext); err != nil {
		return fail(fmt.Errorf("policy: %w", err))
	}
	closers = append(closers, func() { _ = d.SpiceDB.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d.Runtime, err = bus.Open(ctx, bus.RuntimeConfig{Service: bus.Policy, URL: cfg.NATSURL, PasswordFile: cfg.NATSPasswordFile,
		IdentityFile: cfg.IdentityFile, KeyringFile: cfg.KeyringFile, Logger: cfg.Logger})
	if err != nil {
		return fail(fmt.Errorf("policy: %w", err))
	}
	closers = append(closers, d.Runtime.Close)
	s, err := NewWithDeps(cfg, d)
	if err != nil {
		return fail(err)
	}
	s.closers = closers
	return s, nil
}

// NewWithDeps wires the service over dependencies the caller built and
// owns.
func NewWithDeps(cfg Config, d Deps) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger.With("component", "policy")
	if d.Runtime == nil || d.SealKey == nil || d.SpiceDB == nil {
		return nil, errors.New("policy: Runtime, SealKey and SpiceDB are required")
	}
	if d.Runtime.Service != bus.Policy {
		return nil, fmt.Errorf("policy: runtime is %s's", d.Runtime.Service)
	}
	if cfg.Production && !d.AdminToken.IsZero() {
		return nil, errors.New("policy: an admin token is refused in production mode")
	}
	if pub, ok := d.Runtime.Keyring.SealKey(bus.Policy); !ok || string(pub) != string(d.SealKey.Public().Bytes()) {
		return nil, errors.New("policy: the keyring's sealing key for policy does not match the seal key file")
	}
	var adminHash []byte
	if !d.AdminToken.IsZero() {
		adminHash = identity.HashAdminToken(d.AdminToken)
	}
	cat := catalog.New()
	authn, err := identity.New(identity.Config{SealKey: d.SealKey, Keys: cat, AdminTokenHash: adminHash, ContextTTL: cfg.ContextTTL})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	verifier, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: d.Runtime.Keyring, Revocations: cat})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	sdb, err := spicedb.New(d.SpiceDB)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cursor, err := projection.NewKVCursor(ctx, d.Runtime.JetStream)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	proj, err := d.Runtime.NewProjection()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	// The projector calls the app's invalidation, and the app reads the
	// projector's key index: wire through a late-bound function.
	var a *app.App
	projector, err := projection.New(projection.Config{Catalog: cat, Relations: sdb, Cursor: cursor,
		Schema: deploy.SpiceDBSchema(), Logger: cfg.Logger,
		OnApplied: func(tenant string) {
			if a != nil {
				a.Invalidate(tenant)
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	js := d.Runtime.JetStream
	a, err = app.New(app.Config{
		Signer: d.Runtime.Identity, Authenticator: authn, Verifier: verifier, Catalog: cat, Keys: projector.Keys(),
		Publisher: d.Runtime.Publisher, Projection: proj, Authorizer: sdb, DecisionTTL: cfg.DecisionCacheTTL, Logger: cfg.Logger,
		Head: func(ctx context.Context) (uint64, error) {
			st, err := js.Stream(ctx, bus.StreamControl)
			if err != nil {
				return 0, err
			}
			info, err := st.Info(ctx)
			if err != nil {
				return 0, err
			}
			return info.State.LastSeq, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	h, err := ports.New(ports.Config{App: a, Catalog: cat, Keys: projector.Keys(), Logger: cfg.Logger})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &Service{cfg: cfg, log: log, rt: d.Runtime, proj: proj, projector: projector, handlers: h, ready: make(chan struct{})}, nil
}

// Run replays CONTROL into the read models and SpiceDB, serves policy's
// verbs once the replay has caught up, and returns when ctx ends (nil) or
// the CONTROL projection fails. It may be called once.
func (s *Service) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("policy: already running")
	}
	s.running = true
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	errc := make(chan error, 1)
	wg.Go(func() { errc <- s.proj.Run(ctx, s.projector.Apply) })
	wg.Go(func() { s.projector.Maintain(ctx, s.proj) })
	select {
	case <-s.proj.Ready():
	case err := <-errc:
		return fmt.Errorf("policy: control projection: %w", err)
	case <-ctx.Done():
		return nil
	}
	if err := s.handlers.Register(s.rt.Server); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	// Register, then advertise: the server has the subscriptions once a
	// flush round trip returns.
	if err := s.rt.Conn.FlushTimeout(10 * time.Second); err != nil {
		return fmt.Errorf("policy: flush subscriptions: %w", err)
	}
	close(s.ready)
	s.log.Info("policy serving")
	select {
	case <-ctx.Done():
		s.rt.Server.Close()
		return nil
	case err := <-errc:
		s.rt.Server.Close()
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("policy: control projection: %w", err)
	}
}

// Ready is closed once the service serves its verbs (the CONTROL replay
// has caught up).
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Close stops serving and releases what New opened (nothing that Deps
// supplied).
func (s *Service) Close() {
	s.rt.Server.Close()
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}
