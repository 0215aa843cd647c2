package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// This file keeps tool names unique within a tenant when policy approves a
// source: a source whose latest committed version proposes, unapproved, a
// tool name that another source of the tenant now has approved could no
// longer be approved itself (policy refuses the collision). The importer
// proposes a new version of it, from its latest committed version's stored
// description by the same path as an operator's auth mapping, whose naming
// gives each colliding tool the source's slug as a prefix; its other tools
// keep their names, and its own approved tools never change name.

// RenameActor is the actor recorded on the versions proposed here.
func RenameActor() *commonv1.Actor {
	return &commonv1.Actor{Kind: "service", Id: "importer", Via: "importer"}
}

// errNoCollision stops a rename whose source no longer collides.
var errNoCollision = errors.New("no colliding tool name")

// Collisions returns, sorted, the tool names of the latest committed
// version of a source that another source of the tenant has approved and
// that policy has not approved for the source itself.
func (im *Importer) Collisions(tenant, sourceID string) []string {
	base := im.base(tenant, sourceID)
	if base == nil {
		return nil
	}
	taken := im.takenNames(tenant, sourceID)
	own := im.approvedTools(tenant, sourceID)
	var out []string
	for name := range base.Tools {
		if _, approved := own[name]; taken[name] && !approved {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// RenameCommand names the tenant whose sources are checked, and what the
// versions proposed are recorded with.
type RenameCommand struct {
	Tenant                 string
	RequestID, TraceParent string
}

// Rename proposes a new version of every source of cmd's tenant whose
// latest committed version has colliding tool names (see Collisions), and
// returns the versions committed. It decides from the read model caught up
// with CONTROL, so that it can run any number of times, in any number of
// importers: a source that no longer collides, because another importer
// has renamed it meanwhile, is left alone. A source that fails does not
// stop the others; the errors are joined.
func (im *Importer) Rename(ctx context.Context, cmd RenameCommand) ([]Result, error) {
	if err := bus.CheckToken("tenant", cmd.Tenant); err != nil {
		return nil, err
	}
	if err := im.refresh(ctx); err != nil {
		return nil, err
	}
	var (
		out  []Result
		errs []error
	)
	for _, id := range im.cfg.Tools.SourceIDs(cmd.Tenant) {
		if len(im.Collisions(cmd.Tenant, id)) == 0 {
			continue
		}
		r, ok, err := im.renameSource(ctx, cmd, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("source %s: %w", id, err))
			continue
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}

// inFlightWait bounds how long a rename waits for a version of the source
// that another writer started and has not committed: that version is named
// against the same approvals, so it usually leaves nothing to do; one never
// committed (an interrupted import) is passed over after the wait.
const inFlightWait = 10 * time.Second

// errInFlight makes a rename wait for another writer's version.
var errInFlight = errors.New("a version of the source is being written")

// renameSource proposes the new version of one source, unless it no longer
// collides once its lock is held and the read model has caught up.
func (im *Importer) renameSource(ctx context.Context, cmd RenameCommand, sourceID string) (Result, bool, error) {
	if s, ok := im.cfg.Catalog.Source(cmd.Tenant, sourceID); !ok || !s.Visible() {
		return Result{}, false, nil
	}
	unlock := im.locks.lock(cmd.Tenant + "/" + sourceID)
	defer unlock()
	deadline := time.Now().Add(inFlightWait)
	// check is called on the read model caught up with CONTROL, before the
	// version is analysed and again before each attempt at its start event:
	// another importer that won the race has left nothing to do.
	check := func() error {
		if len(im.Collisions(cmd.Tenant, sourceID)) == 0 {
			return errNoCollision
		}
		if im.inFlight(cmd.Tenant, sourceID) && time.Now().Before(deadline) {
			return errInFlight
		}
		return nil
	}
	for {
		if err := im.refresh(ctx); err != nil {
			return Result{}, false, err
		}
		err := check()
		if err == nil {
			var r Result
			r, err = im.proposeRename(ctx, cmd, sourceID, check)
			if err == nil {
				return r, true, nil
			}
		}
		switch {
		case errors.Is(err, errNoCollision):
			return Result{}, false, nil
		case !errors.Is(err, errInFlight):
			return Result{}, false, err
		}
		select {
		case <-ctx.Done():
			return Result{}, false, errcode.Wrap(errcode.Unavailable, "rename interrupted", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// proposeRename writes the new version from the latest committed one.
func (im *Importer) proposeRename(ctx context.Context, cmd RenameCommand, sourceID string, guard func() error) (Result, error) {
	base, err := im.latest(cmd.Tenant, sourceID)
	if err != nil {
		return Result{}, err
	}
	res, doc, err := im.reanalyse(ctx, base, "", nil)
	if err != nil {
		return Result{}, err
	}
	_, version, pl, err := im.write(ctx, Command{Tenant: cmd.Tenant, SourceID: sourceID, Actor: RenameActor(),
		RequestID: cmd.RequestID, TraceParent: cmd.TraceParent, guard: guard}, res, doc)
	if err != nil {
		return Result{}, err
	}
	return Result{SourceID: sourceID, Version: version, Review: pl.review, Tools: len(pl.prop.Tools)}, nil
}

// inFlight reports a version of the source started after its latest
// committed one.
func (im *Importer) inFlight(tenant, sourceID string) bool {
	s, ok := im.cfg.Catalog.Source(tenant, sourceID)
	base := im.base(tenant, sourceID)
	return ok && base != nil && s.Latest > base.Version
}

// Renamer runs Rename for the tenants of the approvals it is told of, one
// tenant at a time, outside the projection's goroutine.
type Renamer struct {
	im  *Importer
	log *slog.Logger

	mu      sync.Mutex
	pending map[string]RenameCommand
	wake    chan struct{}
}

// NewRenamer returns a Renamer of im's sources.
func NewRenamer(im *Importer) *Renamer {
	return &Renamer{im: im, log: im.log.With("component", "rename"), pending: map[string]RenameCommand{}, wake: make(chan struct{}, 1)}
}

// Observe queues ev's tenant when ev is an approval. It never blocks; call
// it only for events applied once the projection has caught up (history
// replayed at start is covered by Check).
func (r *Renamer) Observe(ev *bus.Event) {
	if _, ok := ev.Msg.(*controlv1.SourceVersionApproved); !ok {
		return
	}
	r.Check(RenameCommand{Tenant: ev.Meta.GetTenant(), RequestID: ev.Meta.GetRequestId(), TraceParent: ev.Meta.GetTraceParent()})
}

// Check queues a tenant; a tenant already queued keeps its first command.
func (r *Renamer) Check(cmd RenameCommand) {
	r.mu.Lock()
	if _, ok := r.pending[cmd.Tenant]; !ok {
		r.pending[cmd.Tenant] = cmd
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run renames the queued tenants' colliding sources until ctx ends. A
// failure is logged; the tenant is checked again at its next approval or
// at the next start.
func (r *Renamer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		}
		for {
			r.mu.Lock()
			var cmd RenameCommand
			found := false
			for tenant, c := range r.pending {
				cmd, found = c, true
				delete(r.pending, tenant)
				break
			}
			r.mu.Unlock()
			if !found || ctx.Err() != nil {
				break
			}
			res, err := r.im.Rename(ctx, cmd)
			for _, v := range res {
				r.log.Info("colliding tool names renamed in a new version", "tenant", cmd.Tenant, "source_id", v.SourceID,
					"version", v.Version, "request_id", cmd.RequestID)
			}
			if err != nil && ctx.Err() == nil {
				r.log.Warn("renaming colliding tool names failed", "tenant", cmd.Tenant, "request_id", cmd.RequestID,
					"code", errcode.CodeOf(err), "err", err)
			}
		}
	}
}
