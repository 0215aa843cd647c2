// Package service is the credential broker's composition root: it joins the
// bus, opens the local encrypted secret store under the state directory,
// loads the broker's HPKE key, replays CONTROL into the shared catalog, and
// serves rpc.broker.put_secret, rpc.broker.create_binding and
// rpc.broker.resolve once the catalog has caught up.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/app"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/ports"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/secretcache"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/local"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/apikey"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/basic"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy/bearer"
)

// DefaultSecretCacheTTL is how long a secret read for resolve is kept in
// memory when Config.SecretCacheTTL is zero.
const DefaultSecretCacheTTL = secretcache.DefaultTTL

// OpenTimeout bounds joining the bus in New.
const OpenTimeout = 30 * time.Second

// FlushTimeout bounds the round trip that makes the service's
// subscriptions live before it reports ready.
const FlushTimeout = 10 * time.Second

// Config is the broker's configuration, parsed once by main. Secrets come
// only from files (mode 0600): the NATS password, the signing identity, the
// HPKE private key and the store's master key.
type Config struct {
	// NATSURL is the NATS server to join.
	NATSURL string
	// NATSPasswordFile holds the broker's NATS password.
	NATSPasswordFile string
	// IdentityFile holds the broker's Ed25519 signing seed.
	IdentityFile string
	// KeyringFile holds every service's public signing and sealing keys.
	KeyringFile string
	// SealKeyFile holds the broker's HPKE (X25519) private key, to which
	// operators' clients seal secrets.
	SealKeyFile string
	// StateDir holds the local encrypted secret store (StateDir/secrets)
	// and its master key (StateDir/keys/master.key, created on first
	// start). Required.
	StateDir string
	// SecretCacheTTL is how long secrets read for resolve stay in memory
	// (default DefaultSecretCacheTTL; negative disables the cache).
	SecretCacheTTL time.Duration
	// Production refuses what only suits a laptop: a missing NATS password
	// file, a keyring without the broker's sealing key.
	Production bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Deps are dependencies already built, for tests and embedding: with a
// Runtime the service does not join the bus itself (and does not close the
// Runtime), with a SealKey it does not read SealKeyFile.
type Deps struct {
	Runtime *bus.Runtime
	SealKey *seal.PrivateKey
}

// Service is a running broker. Run it once; Close it when done.
type Service struct {
	cfg      Config
	log      *slog.Logger
	rt       *bus.Runtime
	ownsRT   bool
	proj     *bus.Projection
	cat      *catalog.Catalog
	cache    *secretcache.Cache
	handlers *ports.Handlers
	ready    chan struct{}
	// sealKeyFP is the fingerprint of the broker's HPKE public key, for
	// the log.
	sealKeyFP string
}

// New builds the broker from cfg, joining the bus with the files it names.
func New(cfg Config) (*Service, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.IdentityFile == "" || cfg.KeyringFile == "" {
		return nil, errors.New("config: identity file and keyring file are required")
	}
	if cfg.SealKeyFile == "" {
		return nil, errors.New("config: seal key file is required")
	}
	log := logger(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), OpenTimeout)
	defer cancel()
	rt, err := bus.Open(ctx, bus.RuntimeConfig{
		Service: bus.Broker, URL: cfg.NATSURL, PasswordFile: cfg.NATSPasswordFile,
		IdentityFile: cfg.IdentityFile, KeyringFile: cfg.KeyringFile, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("join bus: %w", err)
	}
	s, err := build(cfg, Deps{Runtime: rt})
	if err != nil {
		rt.Close()
		return nil, err
	}
	s.ownsRT = true
	return s, nil
}

// NewWithDeps builds the broker over dependencies already built (see Deps).
// deps.Runtime is required and must be the broker's.
func NewWithDeps(cfg Config, deps Deps) (*Service, error) {
	if deps.Runtime == nil {
		return nil, errors.New("service: Deps.Runtime is required")
	}
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	return build(cfg, deps)
}

func checkConfig(cfg Config) error {
	if cfg.StateDir == "" {
		return errors.New("config: state directory is required")
	}
	if cfg.Production && cfg.NATSPasswordFile == "" {
		return errors.New("config: production mode needs a NATS password file (a NATS user of its own)")
	}
	return nil
}

func logger(cfg Config) *slog.Logger {
	if cfg.Logger != nil {
		return cfg.Logger
	}
	return slog.Default()
}

// build wires the service over a runtime.
func build(cfg Config, deps Deps) (*Service, error) {
	log := logger(cfg)
	rt := deps.Runtime
	if rt.Service != bus.Broker {
		return nil, fmt.Errorf("service: runtime is %s's, not %s's", rt.Service, bus.Broker)
	}
	sealKey := deps.SealKey
	if sealKey == nil {
		k, err := seal.ReadPrivateKeyFile(cfg.SealKeyFile)
		if err != nil {
			return nil, fmt.Errorf("seal key: %w", err)
		}
		sealKey = k
	}
	if err := checkSealKey(rt.Keyring, sealKey, cfg.Production, log); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	backend, err := local.New(local.Config{
		Dir:           filepath.Join(cfg.StateDir, "secrets"),
		MasterKeyFile: filepath.Join(cfg.StateDir, "keys", "master.key"),
		Logger:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("secret store: %w", err)
	}
	cache, err := secretcache.New(secretcache.Config{Store: backend, TTL: cfg.SecretCacheTTL})
	if err != nil {
		return nil, err
	}
	strategies, err := strategy.NewSet(apikey.New(), bearer.New(), basic.New())
	if err != nil {
		return nil, err
	}

	proj, err := rt.NewProjection()
	if err != nil {
		return nil, fmt.Errorf("control projection: %w", err)
	}
	cat := catalog.New()
	verifier, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: rt.Keyring, Revocations: cat})
	if err != nil {
		return nil, err
	}
	a, err := app.New(app.Config{
		Store: backend, Secrets: cache, Strategies: strategies, SealKey: sealKey,
		Publisher: rt.Publisher, Projection: proj, Bindings: cat, Sources: cat,
		ControlHead: controlHead(rt), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	h, err := ports.New(ports.Config{App: a, Verifier: verifier, Logger: log})
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, log: log.With("component", "service"), rt: rt, proj: proj, cat: cat,
		cache: cache, handlers: h, ready: make(chan struct{}), sealKeyFP: sealKey.Public().Fingerprint(),
	}
	return s, nil
}

// checkSealKey makes sure operators seal to this broker's key: the keyring's
// sealing key for the broker, when it has one, must be key's public key.
func checkSealKey(kr *bus.Keyring, key *seal.PrivateKey, production bool, log *slog.Logger) error {
	pinned, ok := kr.SealKey(bus.Broker)
	if !ok {
		if production {
			return errors.New("keyring has no sealing key for the credential-broker; operators could not seal secrets to a pinned key")
		}
		log.Warn("keyring has no sealing key for the credential-broker", "component", "service",
			"seal_key", key.Public().Fingerprint())
		return nil
	}
	pub, err := seal.ParsePublicKeyBytes(pinned)
	if err != nil {
		return fmt.Errorf("keyring sealing key of the credential-broker: %w", err)
	}
	if !pub.Equal(key.Public()) {
		return fmt.Errorf("seal key %s does not match the keyring's sealing key %s for the credential-broker",
			key.Public().Fingerprint(), pub.Fingerprint())
	}
	return nil
}

// controlHead returns the last sequence of the CONTROL stream.
func controlHead(rt *bus.Runtime) app.ControlHead {
	return func(ctx context.Context) (uint64, error) {
		st, err := rt.JetStream.Stream(ctx, bus.StreamControl)
		if err != nil {
			return 0, fmt.Errorf("look up %s: %w", bus.StreamControl, err)
		}
		return st.CachedInfo().State.LastSeq, nil
	}
}

// Ready is closed once the service serves its verbs (the catalog has caught
// up with CONTROL).
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run replays CONTROL, serves the broker's verbs once caught up, and
// returns when ctx ends (nil) or the projection fails. It stops serving
// before it returns. Call it once.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	projDone := make(chan error, 1)
	go func() { projDone <- s.proj.Run(ctx, s.cat.Apply) }()
	stopped := func(err error) error {
		if err == nil || errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("control projection: %w", err)
	}
	select {
	case <-s.proj.Ready():
	case err := <-projDone:
		return stopped(err)
	case <-ctx.Done():
		cancel()
		return stopped(<-projDone)
	}
	if err := s.handlers.Register(s.rt.Server); err != nil {
		s.rt.Server.Close()
		cancel()
		<-projDone
		return fmt.Errorf("serve: %w", err)
	}
	// The subscriptions are live on the server only once flushed: advertise
	// readiness after that, never before.
	if err := s.rt.Conn.FlushTimeout(FlushTimeout); err != nil {
		s.rt.Server.Close()
		cancel()
		<-projDone
		return fmt.Errorf("serve: flush subscriptions: %w", err)
	}
	close(s.ready)
	s.log.Info("credential broker serving", "seal_key", s.sealKeyFP, "state_dir", s.cfg.StateDir)
	var err error
	select {
	case <-ctx.Done():
		cancel()
		err = <-projDone
	case err = <-projDone:
	}
	s.rt.Server.Close()
	s.log.Info("credential broker stopped")
	return stopped(err)
}

// Close wipes cached secrets and, when the service joined the bus itself,
// leaves it.
func (s *Service) Close() {
	s.cache.Purge()
	if s.ownsRT {
		s.rt.Close()
	}
}
