// Package app holds the broker's use cases: writing a secret sealed by an
// operator's client (PutSecret), creating a credential binding
// (CreateBinding), and releasing a binding's material sealed to the
// adapter's key (Resolve).
//
// The ports authenticate and authorize (policy's signature on a command's
// authorization or on a request's context) before they call the App; the App
// validates, talks to the secret store, appends CONTROL events and publishes
// AUDIT events through small interfaces, and returns *errcode.Error values
// whose messages are safe for callers. No method logs, returns or records
// secret material.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
)

// Publisher appends the broker's CONTROL events and publishes its AUDIT
// events; *bus.Publisher implements it. Both return only after JetStream
// stored the event.
type Publisher interface {
	AppendControl(ctx context.Context, agg bus.Aggregate, id string, ev bus.Message, expect bus.Expect) (bus.Appended, error)
	PublishAudit(ctx context.Context, kind bus.AuditKind, ev bus.Message) (bus.Appended, error)
}

// Projection is the broker's view of how far it has read CONTROL;
// *bus.Projection implements it.
type Projection interface {
	Expect(tenant string, agg bus.Aggregate, id string) bus.Expect
	WaitFor(ctx context.Context, seq uint64) error
}

// Bindings finds a binding of a tenant in the read model; *catalog.Catalog
// implements it.
type Bindings interface {
	Binding(tenant, id string) (catalog.Binding, bool)
}

// ControlHead returns the sequence of the last message in the CONTROL
// stream, so that a reader can wait until it has seen everything written so
// far.
type ControlHead func(ctx context.Context) (uint64, error)

// Service is the value of Actor.Via on the broker's events.
const Service = string(bus.Broker)

// DefaultRefreshTimeout bounds how long a use case waits for its read model
// to catch up with CONTROL before it decides (default of
// Config.RefreshTimeout).
const DefaultRefreshTimeout = 2 * time.Second

// DefaultAuditTimeout bounds publishing one audit event (default of
// Config.AuditTimeout): a resolve whose audit is not stored by then fails
// closed.
const DefaultAuditTimeout = 5 * time.Second

// Config configures an App. Every field but Logger, Now and RefreshTimeout
// is required.
type Config struct {
	// Store is the secret store written by PutSecret and read, uncached,
	// by CreateBinding to check that a reference exists.
	Store store.Store
	// Secrets is the store Resolve reads, usually a cache over Store.
	Secrets store.Store
	// Strategies are the supported binding strategies.
	Strategies *strategy.Set
	// SealKey is the broker's HPKE private key, to which operators' clients
	// seal secrets.
	SealKey    *seal.PrivateKey
	Publisher  Publisher
	Projection Projection
	Bindings   Bindings
	// Sources gives the slots of a source (usually the same catalog).
	Sources     Sources
	ControlHead ControlHead
	// Logger defaults to slog.Default(); the App adds component=app.
	Logger *slog.Logger
	// RefreshTimeout defaults to DefaultRefreshTimeout.
	RefreshTimeout time.Duration
	// AuditTimeout defaults to DefaultAuditTimeout.
	AuditTimeout time.Duration
}

// App runs the broker's use cases. It is safe for concurrent use.
type App struct {
	cfg Config
	log *slog.Logger
}

// New returns an App.
func New(cfg Config) (*App, error) {
	switch {
	case cfg.Store == nil || cfg.Secrets == nil:
		return nil, errors.New("app: Store and Secrets are required")
	case cfg.Strategies == nil:
		return nil, errors.New("app: Strategies are required")
	case cfg.SealKey == nil:
		return nil, errors.New("app: SealKey is required")
	case cfg.Publisher == nil || cfg.Projection == nil || cfg.Bindings == nil || cfg.Sources == nil || cfg.ControlHead == nil:
		return nil, errors.New("app: Publisher, Projection, Bindings, Sources and ControlHead are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RefreshTimeout <= 0 {
		cfg.RefreshTimeout = DefaultRefreshTimeout
	}
	if cfg.AuditTimeout <= 0 {
		cfg.AuditTimeout = DefaultAuditTimeout
	}
	return &App{cfg: cfg, log: cfg.Logger.With("component", "app")}, nil
}

// Result is what a command created or changed.
type Result struct {
	// ID is the object's ID (a binding ID, or a secret reference).
	ID string
	// Version is the aggregate's version after the command.
	Version uint64
}

// operatorActor returns the actor an operator command's events record.
func operatorActor(auth *commonv1.Authorization) *commonv1.Actor {
	id := auth.GetActor().GetUser()
	if id == "" {
		id = "admin"
	}
	return &commonv1.Actor{Kind: "operator", Id: id, Surface: auth.GetActor().GetSurface(), Via: Service}
}

// commandMeta returns the metadata block of an event caused by an operator
// command in tenant.
func commandMeta(ctx context.Context, tenant string, auth *commonv1.Authorization) *commonv1.EventMeta {
	m := bus.MetaFrom(ctx)
	requestID := auth.GetRequestId()
	if requestID == "" {
		requestID = m.RequestID
	}
	return &commonv1.EventMeta{Tenant: tenant, Actor: operatorActor(auth), RequestId: requestID, TraceParent: m.TraceParent}
}

// errNotApplied marks an append whose event was stored but not yet seen by
// the projection: the command took effect.
var errNotApplied = errors.New("event stored but not yet applied")

// appendControl appends the event that build returns to an aggregate and
// waits until the projection has applied it, so the caller reads its own
// write. When the aggregate changed concurrently it waits for the
// projection to catch up and tries once more.
func (a *App) appendControl(ctx context.Context, tenant string, agg bus.Aggregate, id string, build func() bus.Message) (bus.Appended, error) {
	var appended bus.Appended
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			if rerr := a.refresh(ctx); rerr != nil {
				return bus.Appended{}, rerr
			}
		}
		appended, err = a.cfg.Publisher.AppendControl(ctx, agg, id, build(), a.cfg.Projection.Expect(tenant, agg, id))
		if errcode.CodeOf(err) != errcode.Conflict {
			break
		}
	}
	if err != nil {
		return bus.Appended{}, fmt.Errorf("append %s %s: %w", agg, id, err)
	}
	if err := a.cfg.Projection.WaitFor(ctx, appended.Seq); err != nil {
		return bus.Appended{}, errcode.Wrap(errcode.Unavailable, "event stored; read model not yet caught up", fmt.Errorf("%w: %w", errNotApplied, err))
	}
	return appended, nil
}

// publishAudit publishes an audit event, waiting at most AuditTimeout for
// JetStream to store it.
func (a *App) publishAudit(ctx context.Context, kind bus.AuditKind, ev bus.Message) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.AuditTimeout)
	defer cancel()
	_, err := a.cfg.Publisher.PublishAudit(ctx, kind, ev)
	return err
}

// refresh waits until the projection has applied everything CONTROL held
// when it was called, for at most RefreshTimeout.
func (a *App) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RefreshTimeout)
	defer cancel()
	head, err := a.cfg.ControlHead(ctx)
	if err != nil {
		return errcode.Wrap(errcode.Unavailable, "control stream unavailable", err)
	}
	if err := a.cfg.Projection.WaitFor(ctx, head); err != nil {
		return errcode.Wrap(errcode.Unavailable, "read model not caught up", err)
	}
	return nil
}

// storeError maps a secret-store error to a caller-safe *errcode.Error.
func storeError(err error, what string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errcode.Wrap(errcode.NotFound, what+" not found", err)
	case errors.Is(err, store.ErrWrongTenant):
		return errcode.Wrap(errcode.PermissionDenied, what+" belongs to another tenant", err)
	case errors.Is(err, store.ErrInvalid):
		msg := what + " is not valid for this secret store"
		if se := (*store.Error)(nil); errors.As(err, &se) && se.Reason != "" {
			msg += ": " + se.Reason
		}
		return errcode.Wrap(errcode.InvalidArgument, msg, err)
	default:
		return errcode.Wrap(errcode.Unavailable, "secret store unavailable", err)
	}
}
