// Package service is the importer's composition root: it joins the bus,
// builds its read models from CONTROL (its own catalog of sources, and the
// shared catalog of committed tools and policy's approvals that new versions
// are compared and tool names checked against), and serves
// rpc.importer.import and rpc.importer.map_auth once they have caught up.
// From then on it also proposes a new version of each source whose
// unapproved tool names an approval of another source made collide (see
// ingest.Renamer).
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	libcatalog "github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/services/importer/internal/catalog"
	"github.com/mcpgw/mcpgw/services/importer/internal/fetch"
	"github.com/mcpgw/mcpgw/services/importer/internal/ingest"
	"github.com/mcpgw/mcpgw/services/importer/internal/ports"
)

// Config is the importer's configuration, parsed once in main.
type Config struct {
	// NATSURL, NATSPasswordFile, IdentityFile and KeyringFile say how to
	// join the bus; the files must be 0600. New uses them; NewWithRuntime
	// ignores them.
	NATSURL          string
	NATSPasswordFile string
	IdentityFile     string
	KeyringFile      string
	// Production refuses what only suits a laptop.
	Production bool
	// MaxDocumentBytes bounds an imported description (default 50 MiB).
	MaxDocumentBytes int64
	// ToolNameBudget bounds generated tool names (analysis default when 0).
	ToolNameBudget int
	// Fetch configures imports from a URL (size cap, timeout, redirects,
	// resolver); its MaxBytes is capped at MaxDocumentBytes.
	Fetch  fetch.Config
	Logger *slog.Logger
}

// setupTimeout bounds joining the bus and looking up buckets.
const setupTimeout = 30 * time.Second

// replyHeadroom is left in a NATS message for a reply's headers and fields
// beside the review.
const replyHeadroom = 64 << 10

// Service is a running importer. Run it once; Close it after Run returned.
type Service struct {
	rt      *bus.Runtime
	ownsRT  bool
	log     *slog.Logger
	proj    *bus.Projection
	cat     *catalog.Catalog
	tools   *libcatalog.Catalog
	handler *ports.Handlers
	renamer *ingest.Renamer
	ready   chan struct{}
}

// New joins the bus with the configured files and builds the service.
func New(cfg Config) (*Service, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	log := logger(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	rt, err := bus.Open(ctx, bus.RuntimeConfig{Service: bus.Importer, URL: cfg.NATSURL, PasswordFile: cfg.NATSPasswordFile,
		IdentityFile: cfg.IdentityFile, KeyringFile: cfg.KeyringFile, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("join bus: %w", err)
	}
	s, err := build(ctx, cfg, rt)
	if err != nil {
		rt.Close()
		return nil, err
	}
	s.ownsRT = true
	return s, nil
}

// NewWithRuntime builds the service on a runtime the caller opened (as the
// importer) and keeps owning: Close does not close it.
func NewWithRuntime(cfg Config, rt *bus.Runtime) (*Service, error) {
	if rt == nil || rt.Service != bus.Importer {
		return nil, errors.New("service: needs the importer's bus runtime")
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	return build(ctx, cfg, rt)
}

func (cfg Config) check() error {
	if cfg.NATSURL == "" || cfg.IdentityFile == "" || cfg.KeyringFile == "" {
		return errors.New("config: -nats-url, -identity-file and -keyring-file are required")
	}
	if cfg.NATSPasswordFile == "" {
		if cfg.Production {
			return errors.New("config: production mode refuses a NATS connection without its own user: set -nats-password-file")
		}
		return errors.New("config: -nats-password-file is required")
	}
	u, err := url.Parse(cfg.NATSURL)
	if err != nil {
		return errors.New("config: -nats-url does not parse")
	}
	if u.User != nil {
		return errors.New("config: -nats-url must not carry credentials; use -nats-password-file")
	}
	if cfg.MaxDocumentBytes < 0 || cfg.ToolNameBudget < 0 {
		return errors.New("config: limits must not be negative")
	}
	return nil
}

func logger(cfg Config) *slog.Logger {
	if cfg.Logger == nil {
		return slog.Default()
	}
	return cfg.Logger
}

func build(ctx context.Context, cfg Config, rt *bus.Runtime) (*Service, error) {
	if cfg.MaxDocumentBytes < 0 || cfg.ToolNameBudget < 0 {
		return nil, errors.New("config: limits must not be negative")
	}
	log := logger(cfg).With("component", "importer")
	uploads, err := rt.JetStream.ObjectStore(ctx, bus.BucketUploads)
	if err != nil {
		return nil, fmt.Errorf("%w: bucket %s: %v", bus.ErrNotProvisioned, bus.BucketUploads, err)
	}
	sources, err := rt.JetStream.ObjectStore(ctx, bus.BucketSources)
	if err != nil {
		return nil, fmt.Errorf("%w: bucket %s: %v", bus.ErrNotProvisioned, bus.BucketSources, err)
	}
	control, err := rt.JetStream.Stream(ctx, bus.StreamControl)
	if err != nil {
		return nil, fmt.Errorf("%w: stream %s: %v", bus.ErrNotProvisioned, bus.StreamControl, err)
	}
	maxEvent := int(rt.Conn.MaxPayload())
	if m := control.CachedInfo().Config.MaxMsgSize; m > 0 && int(m) < maxEvent {
		maxEvent = int(m)
	}
	proj, err := bus.NewProjection(bus.ProjectionConfig{JetStream: rt.JetStream, Verifier: rt.Verifier, Logger: log, Filters: catalog.Filters()})
	if err != nil {
		return nil, err
	}
	cat, tools := catalog.New(), libcatalog.New()
	imp, err := ingest.New(ingest.Config{
		Uploads: uploads, Sources: sources, Control: control,
		Publisher: rt.Publisher, Projection: proj, Catalog: cat, Tools: tools,
		MaxDocumentBytes: cfg.MaxDocumentBytes, ToolNameBudget: cfg.ToolNameBudget, Fetch: cfg.Fetch,
		MaxEventBytes: maxEvent, MaxReviewBytes: int(rt.Conn.MaxPayload()) - replyHeadroom,
		Logger: log,
	})
	if err != nil {
		return nil, err
	}
	verifier, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: rt.Keyring, Revocations: cat})
	if err != nil {
		return nil, err
	}
	h, err := ports.New(ports.Config{Authorizer: verifier, Importer: imp, Logger: log})
	if err != nil {
		return nil, err
	}
	return &Service{rt: rt, log: log, proj: proj, cat: cat, tools: tools, handler: h, renamer: ingest.NewRenamer(imp), ready: make(chan struct{})}, nil
}

// Ready is closed once the service serves requests: its read model has
// caught up with CONTROL.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// apply feeds one verified event to both read models; neither fails. Once
// the projection has caught up, an approval makes the renamer check its
// tenant.
func (s *Service) apply(ctx context.Context, ev *bus.Event) error {
	if err := s.cat.Apply(ctx, ev); err != nil {
		return err
	}
	if err := s.tools.Apply(ctx, ev); err != nil {
		return err
	}
	select {
	case <-s.proj.Ready():
		s.renamer.Observe(ev)
	default:
	}
	return nil
}

// Run replays CONTROL into the read models, serves the importer's verbs once
// it has caught up, and returns when ctx ends (nil) or the projection fails
// (its error; the service then stops serving rather than answer from a
// stale read model).
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	projErr := make(chan error, 1)
	go func() { projErr <- s.proj.Run(ctx, s.apply) }()
	select {
	case <-s.proj.Ready():
	case err := <-projErr:
		return fmt.Errorf("control projection: %w", err)
	case <-ctx.Done():
		return nil
	}
	// Collisions that exist now, whatever history made them, are renamed
	// from the current state; later approvals are observed as they come.
	go s.renamer.Run(ctx)
	for _, tenant := range s.tools.Tenants() {
		s.renamer.Check(ingest.RenameCommand{Tenant: tenant, RequestID: bus.NewID("req_")})
	}
	defer s.rt.Server.Close()
	if err := s.rt.Server.Handle(bus.ImporterImport, s.handler.Import); err != nil {
		return err
	}
	if err := s.rt.Server.Handle(bus.ImporterMapAuth, s.handler.MapAuth); err != nil {
		return err
	}
	close(s.ready)
	s.log.Info("importer serving", "verbs", []string{bus.ImporterImport.Subject(), bus.ImporterMapAuth.Subject()})
	select {
	case <-ctx.Done():
		return nil
	case err := <-projErr:
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("control projection stopped: %w", err)
	}
}

// Close releases the bus runtime when the service opened it.
func (s *Service) Close() {
	if s.ownsRT {
		s.rt.Close()
	}
}
