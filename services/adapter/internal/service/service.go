// Package service is the adapter's composition root: it joins the bus,
// projects CONTROL into the catalog, builds the gates, the guarded egress
// client, the broker and policy clients and the invoke service, and serves
// rpc.adapter.invoke and rpc.adapter.explain once the catalog has caught up.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/egress"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/services/adapter/internal/gate"
	"github.com/mcpgw/mcpgw/services/adapter/internal/invoke"
	"github.com/mcpgw/mcpgw/services/adapter/internal/ports"
	"github.com/mcpgw/mcpgw/services/adapter/internal/respmap"
	"github.com/mcpgw/mcpgw/services/adapter/internal/upstream"
)

// Defaults of Config's zero fields.
const (
	DefaultPolicyTimeout    = 2 * time.Second
	DefaultBrokerTimeout    = 5 * time.Second
	DefaultUpstreamTimeout  = 15 * time.Second
	DefaultDialTimeout      = 5 * time.Second
	DefaultMaxResponseBytes = 2 << 20
	// openTimeout bounds joining the bus in New.
	openTimeout = 30 * time.Second
)

// Config configures the adapter. File paths name 0600 files; no secret is
// ever a value here.
type Config struct {
	NATSURL          string
	NATSPasswordFile string
	IdentityFile     string
	KeyringFile      string
	Logger           *slog.Logger
	// Production refuses what only suits a laptop.
	Production bool

	// MaxArgumentBytes caps a call's arguments (default 256 KiB).
	MaxArgumentBytes int
	// MaxRequestBytes caps a built upstream request (default 512 KiB).
	MaxRequestBytes int
	// MaxResponseBytes caps an upstream response body (default 2 MiB).
	MaxResponseBytes int64
	// MaxResultBytes caps the encoded result sent back to the edge; it must
	// stay below the NATS maximum payload (default 900 KiB).
	MaxResultBytes int
	// PolicyTimeout bounds rpc.policy.check (default 2s); on expiry the call
	// is denied.
	PolicyTimeout time.Duration
	// BrokerTimeout bounds rpc.broker.resolve (default 5s).
	BrokerTimeout time.Duration
	// UpstreamTimeout bounds one upstream request (default 15s).
	UpstreamTimeout time.Duration
	// DialTimeout bounds resolving and connecting to an upstream (default 5s).
	DialTimeout time.Duration
	// MaxRedirects bounds the redirects followed (default 3, at most 3).
	MaxRedirects int

	// Deps replace what New would otherwise build (tests).
	Deps Deps
}

// Deps are dependencies a caller may supply instead of files.
type Deps struct {
	// Runtime is an open bus runtime for bus.Adapter; the service does not
	// close it.
	Runtime *bus.Runtime
	// Resolver resolves upstream host names (default the system resolver).
	Resolver egress.Resolver
	// TLSConfig is the base TLS configuration of upstream connections
	// (root CAs); it must verify certificates.
	TLSConfig *tls.Config
}

// Service is the running adapter.
type Service struct {
	cfg      Config
	log      *slog.Logger
	rt       *bus.Runtime
	ownsRT   bool
	proj     *bus.Projection
	cat      *catalog.Catalog
	egress   *egress.Client
	handlers *ports.Handlers
	ready    chan struct{}
}

// New validates cfg, joins the bus (unless Deps.Runtime is given) and wires
// the service. Nothing is served until Run.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "adapter"), ready: make(chan struct{})}
	s.rt = cfg.Deps.Runtime
	if s.rt == nil {
		ctx, cancel := context.WithTimeout(context.Background(), openTimeout)
		defer cancel()
		rt, err := bus.Open(ctx, bus.RuntimeConfig{Service: bus.Adapter, URL: cfg.NATSURL, PasswordFile: cfg.NATSPasswordFile,
			IdentityFile: cfg.IdentityFile, KeyringFile: cfg.KeyringFile, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("join bus: %w", err)
		}
		s.rt, s.ownsRT = rt, true
	} else if s.rt.Service != bus.Adapter {
		return nil, fmt.Errorf("runtime is %s's, not the adapter's", s.rt.Service)
	}
	if err := s.wire(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (c *Config) defaults() error {
	if c.Deps.Runtime == nil {
		if c.NATSURL == "" || c.IdentityFile == "" || c.KeyringFile == "" {
			return errors.New("adapter: nats url, identity file and keyring file are required")
		}
		if c.Production && c.NATSPasswordFile == "" {
			return errors.New("adapter: production mode needs a NATS password file")
		}
	}
	if c.MaxArgumentBytes < 0 || c.MaxRequestBytes < 0 || c.MaxResponseBytes < 0 || c.MaxResultBytes < 0 {
		return errors.New("adapter: limits must not be negative")
	}
	for _, d := range []time.Duration{c.PolicyTimeout, c.BrokerTimeout, c.UpstreamTimeout, c.DialTimeout} {
		if d < 0 {
			return errors.New("adapter: timeouts must not be negative")
		}
	}
	if c.MaxArgumentBytes == 0 {
		c.MaxArgumentBytes = gate.DefaultMaxArgumentBytes
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = gate.DefaultMaxRequestBytes
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = respmap.DefaultMaxResultBytes
	}
	if c.MaxResultBytes > 1000<<10 {
		return errors.New("adapter: the result limit must stay below the NATS maximum payload (1 MiB)")
	}
	if c.PolicyTimeout == 0 {
		c.PolicyTimeout = DefaultPolicyTimeout
	}
	if c.BrokerTimeout == 0 {
		c.BrokerTimeout = DefaultBrokerTimeout
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = upstream.DefaultMaxRedirects
	}
	if c.MaxRedirects < 0 || c.MaxRedirects > upstream.DefaultMaxRedirects {
		return fmt.Errorf("adapter: redirects must be between 1 and %d", upstream.DefaultMaxRedirects)
	}
	// A handler runs within the bus request window; the redirects of one
	// call share what is left of it.
	if c.PolicyTimeout+c.BrokerTimeout+c.UpstreamTimeout >= bus.DefaultRequestWindow {
		return fmt.Errorf("adapter: policy, broker and upstream timeouts must add up to less than %s", bus.DefaultRequestWindow)
	}
	return nil
}

func (s *Service) wire() error {
	var err error
	if s.proj, err = s.rt.NewProjection(); err != nil {
		return fmt.Errorf("control projection: %w", err)
	}
	s.cat = catalog.New()
	verifier, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: s.rt.Keyring, Revocations: s.cat})
	if err != nil {
		return err
	}
	if s.egress, err = egress.New(egress.Config{
		Resolver: s.cfg.Deps.Resolver, TLSConfig: s.cfg.Deps.TLSConfig,
		Timeout: s.cfg.UpstreamTimeout, DialTimeout: s.cfg.DialTimeout, ResponseHeaderTimeout: s.cfg.UpstreamTimeout,
		MaxResponseBytes: s.cfg.MaxResponseBytes, Logger: s.cfg.Logger,
	}); err != nil {
		return fmt.Errorf("egress client: %w", err)
	}
	gates, err := gate.New(gate.Config{
		Catalog: s.cat, Verifier: verifier, Hosts: s.egress,
		Policy:           &policyClient{c: s.rt.Client, timeout: s.cfg.PolicyTimeout},
		MaxArgumentBytes: s.cfg.MaxArgumentBytes, MaxRequestBytes: s.cfg.MaxRequestBytes,
	})
	if err != nil {
		return err
	}
	sender, err := upstream.NewClient(upstream.ClientConfig{Egress: s.egress, MaxRedirects: s.cfg.MaxRedirects})
	if err != nil {
		return err
	}
	app, err := invoke.New(invoke.Config{
		Gates: gates, Resolver: &brokerClient{c: s.rt.Client, timeout: s.cfg.BrokerTimeout},
		Auditor: s.rt.Publisher, Sender: sender, Logger: s.cfg.Logger, MaxResultBytes: s.cfg.MaxResultBytes,
	})
	if err != nil {
		return err
	}
	s.handlers, err = ports.New(app, s.cfg.Logger)
	return err
}

// Run replays CONTROL into the catalog, serves the adapter's verbs once it
// has caught up, and returns when ctx ends (nil) or the projection fails.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- s.proj.Run(ctx, s.cat.Apply) }()
	select {
	case <-s.proj.Ready():
	case err := <-errc:
		return fmt.Errorf("control projection: %w", err)
	case <-ctx.Done():
		return nil
	}
	if err := s.handlers.Register(s.rt.Server); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	close(s.ready)
	s.log.Info("adapter serving", "verbs", []string{bus.AdapterInvoke.Subject(), bus.AdapterExplain.Subject()})
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("control projection: %w", err)
	}
}

// Ready is closed once the catalog has caught up and the verbs are served.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// WaitForControl blocks until the catalog has applied CONTROL sequence seq
// (read-your-writes for a caller that just appended), or ctx ends.
func (s *Service) WaitForControl(ctx context.Context, seq uint64) error {
	return s.proj.WaitFor(ctx, seq)
}

// Close stops serving, closes idle upstream connections and, when the
// service opened it, leaves the bus.
func (s *Service) Close() {
	if s.egress != nil {
		s.egress.CloseIdleConnections()
	}
	if s.rt == nil {
		return
	}
	if s.ownsRT {
		s.rt.Close()
		return
	}
	s.rt.Server.Close()
}
