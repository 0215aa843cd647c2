// Package service is the audit service's composition root: it joins the
// bus, replays CONTROL into the shared catalog (for revocations), serves
// rpc.audit.query, waits for ClickHouse (applying the DDL), and runs one
// writer for AUDIT and one for CONTROL.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/libs/secret"

	"github.com/mcpgw/mcpgw/services/audit/internal/ports"
	"github.com/mcpgw/mcpgw/services/audit/internal/query"
	"github.com/mcpgw/mcpgw/services/audit/internal/row"
	"github.com/mcpgw/mcpgw/services/audit/internal/store"
	"github.com/mcpgw/mcpgw/services/audit/internal/writer"
)

// ClickHouseConfig says where the audit table lives.
type ClickHouseConfig struct {
	// Addr is the native protocol address, host:port.
	Addr string
	// User defaults to "default".
	User string
	// PasswordFile is a 0600 file holding the user's password; empty means
	// no password (refused in production).
	PasswordFile string
	// Database holds audit_events (created by the DDL).
	Database string
}

// Config is the audit service's configuration, parsed once in main.
type Config struct {
	// NATSURL, NATSPasswordFile, IdentityFile and KeyringFile join the bus
	// as the audit service (see bus.RuntimeConfig); unused with
	// Deps.Runtime.
	NATSURL          string
	NATSPasswordFile string
	IdentityFile     string
	KeyringFile      string

	ClickHouse ClickHouseConfig
	// ApplyDDL applies deploy.ClickHouseDDL (idempotent) before writing.
	ApplyDDL bool
	// BatchSize and BatchWait bound each fetch from a durable consumer
	// (defaults 500 and 1s).
	BatchSize int
	BatchWait time.Duration
	// RetryMin and RetryMax bound the backoff while ClickHouse is down, at
	// start and when an insert fails (defaults 250ms and 15s).
	RetryMin, RetryMax time.Duration
	// Production refuses what only suits a laptop: a missing NATS password
	// file and a ClickHouse user without a password.
	Production bool
	Logger     *slog.Logger
}

// Deps are dependencies already built by the caller, for tests and
// embedding. The caller keeps ownership of Runtime.
type Deps struct {
	// Runtime replaces NATSURL, NATSPasswordFile, IdentityFile and KeyringFile.
	Runtime *bus.Runtime
	// ClickHousePassword replaces ClickHouse.PasswordFile.
	ClickHousePassword secret.Value
}

// Service is the running audit service. Run must be called once; Close
// releases what New opened.
type Service struct {
	cfg       Config
	log       *slog.Logger
	rt        *bus.Runtime
	ownsRT    bool
	cat       *catalog.Catalog
	proj      *bus.Projection
	store     *store.Store
	handler   *ports.Query
	writers   []*writer.Writer
	ready     chan struct{}
	closeOnce sync.Once
}

// New joins the bus with the configured files, reads the ClickHouse
// password file and builds the service. It fails when a file is missing
// or readable by others, or when the streams or the audit durable consumers
// are not provisioned (bus.ErrNotProvisioned). ClickHouse may be down: Run
// waits for it.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := checkProduction(cfg, cfg.NATSPasswordFile == "", cfg.ClickHouse.PasswordFile == ""); err != nil {
		return nil, err
	}
	var deps Deps
	if cfg.ClickHouse.PasswordFile != "" {
		pw, err := bus.ReadSecretFile(cfg.ClickHouse.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse password: %w", err)
		}
		deps.ClickHousePassword = pw
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := bus.Open(ctx, bus.RuntimeConfig{
		Service: bus.Audit, URL: cfg.NATSURL, PasswordFile: cfg.NATSPasswordFile,
		IdentityFile: cfg.IdentityFile, KeyringFile: cfg.KeyringFile, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("join bus: %w", err)
	}
	deps.Runtime = rt
	s, err := NewWithDeps(cfg, deps)
	if err != nil {
		rt.Close()
		return nil, err
	}
	s.ownsRT = true
	return s, nil
}

// NewWithDeps builds the service on a runtime the caller opened.
func NewWithDeps(cfg Config, deps Deps) (*Service, error) {
	if deps.Runtime == nil {
		return nil, errors.New("service: a bus runtime is required")
	}
	if deps.Runtime.Service != bus.Audit {
		return nil, fmt.Errorf("service: runtime is %s, not %s", deps.Runtime.Service, bus.Audit)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := checkProduction(cfg, false, deps.ClickHousePassword.IsZero()); err != nil {
		return nil, err
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 250 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(15*time.Second, cfg.RetryMin)
	}
	rt := deps.Runtime
	s := &Service{cfg: cfg, log: cfg.Logger.With("component", "service"), rt: rt, cat: catalog.New(), ready: make(chan struct{})}

	var err error
	if s.proj, err = rt.NewProjection(); err != nil {
		return nil, fmt.Errorf("control projection: %w", err)
	}
	verifier, err := reqctx.NewVerifier(reqctx.VerifierConfig{Keyring: rt.Keyring, Revocations: s.cat})
	if err != nil {
		return nil, err
	}
	if s.store, err = store.Open(store.Config{
		Addr: cfg.ClickHouse.Addr, User: cfg.ClickHouse.User, Password: deps.ClickHousePassword, Database: cfg.ClickHouse.Database,
	}); err != nil {
		return nil, err
	}
	fail := func(err error) (*Service, error) { _ = s.store.Close(); return nil, err }
	queries, err := query.New(query.Config{Reader: s.store})
	if err != nil {
		return fail(err)
	}
	if s.handler, err = ports.NewQuery(ports.QueryConfig{Verifier: verifier, Queries: queries, Logger: cfg.Logger}); err != nil {
		return fail(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, src := range []struct {
		stream, durable string
		verify          writer.Verify
		mapRow          writer.Map
	}{
		{bus.StreamAudit, bus.DurableAuditEvents, rt.Verifier.VerifyAudit, row.FromAudit},
		{bus.StreamControl, bus.DurableAuditControl, rt.Verifier.VerifyControl, row.FromControl},
	} {
		cons, err := rt.JetStream.Consumer(ctx, src.stream, src.durable)
		if err != nil {
			return fail(fmt.Errorf("%w: durable consumer %s on %s: %v", bus.ErrNotProvisioned, src.durable, src.stream, err))
		}
		w, err := writer.New(writer.Config{
			Stream: src.stream, Consumer: cons, Verify: src.verify, Map: src.mapRow, Sink: s.store,
			BatchSize: cfg.BatchSize, BatchWait: cfg.BatchWait, RetryMin: cfg.RetryMin, RetryMax: cfg.RetryMax, Logger: cfg.Logger,
		})
		if err != nil {
			return fail(err)
		}
		s.writers = append(s.writers, w)
	}
	return s, nil
}

// checkProduction refuses, in production mode, a missing NATS password and
// a ClickHouse user without a password.
func checkProduction(cfg Config, noNATSPassword, noClickHousePassword bool) error {
	if !cfg.Production {
		return nil
	}
	if noNATSPassword {
		return errors.New("production mode: a NATS password file is required")
	}
	if noClickHousePassword {
		return errors.New("production mode: a ClickHouse password file is required")
	}
	return nil
}

// Ready is closed once the service answers rpc.audit.query: CONTROL has been
// replayed, so revoked operator credentials are known.
func (s *Service) Ready() <-chan struct{} { return s.ready }

// Run serves until ctx ends, then returns nil; it returns an error only
// when the service cannot go on (the CONTROL replay or the RPC subscription
// failed). ClickHouse being down at start or later is logged and retried:
// events stay unacknowledged on their streams until they are written.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	fail := func(err error) {
		errOnce.Do(func() { runErr = err })
		cancel()
	}

	wg.Go(func() {
		if err := s.proj.Run(ctx, s.cat.Apply); err != nil && ctx.Err() == nil {
			fail(fmt.Errorf("control projection: %w", err))
		}
	})
	select {
	case <-s.proj.Ready():
	case <-ctx.Done():
		wg.Wait()
		return runErr
	}
	if err := s.rt.Server.Handle(bus.AuditQuery, s.handler.Handle); err != nil {
		fail(fmt.Errorf("serve %s: %w", bus.AuditQuery.Subject(), err))
		wg.Wait()
		return runErr
	}
	close(s.ready)
	s.log.Info("serving", "verb", bus.AuditQuery.Subject())

	if s.waitClickHouse(ctx) {
		for _, w := range s.writers {
			wg.Go(func() { _ = w.Run(ctx) })
		}
		s.log.Info("writing audit rows", "database", s.cfg.ClickHouse.Database, "streams", []string{bus.StreamAudit, bus.StreamControl})
	}
	<-ctx.Done()
	wg.Wait()
	return runErr
}

// waitClickHouse retries until ClickHouse answers (and the DDL is applied,
// when configured), with backoff and a log line per attempt. It reports
// false when ctx ended first.
func (s *Service) waitClickHouse(ctx context.Context) bool {
	delay := s.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := s.prepareClickHouse(ctx)
		if err == nil {
			s.log.Info("clickhouse ready", "addr", s.cfg.ClickHouse.Addr, "database", s.cfg.ClickHouse.Database, "ddl_applied", s.cfg.ApplyDDL)
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		s.log.Warn("clickhouse unavailable; audit events wait on their streams until it answers",
			"addr", s.cfg.ClickHouse.Addr, "attempt", attempt, "retry_in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		delay = min(delay*2, s.cfg.RetryMax)
	}
}

func (s *Service) prepareClickHouse(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return err
	}
	if s.cfg.ApplyDDL {
		return s.store.ApplyDDL(ctx)
	}
	return nil
}

// Close releases the ClickHouse client and, when New opened it, the bus
// runtime. Call it after Run returned.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		_ = s.store.Close()
		if s.ownsRT {
			s.rt.Close()
		}
	})
}
