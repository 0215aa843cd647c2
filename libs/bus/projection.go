package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Applier applies one verified event to a read model. It is called in
// stream order from a single goroutine. An error is retried with backoff
// until it succeeds or the projection stops, so an applier that depends on
// an outside system (SpiceDB) never skips an event.
type Applier func(ctx context.Context, ev *Event) error

// ProjectionConfig configures a Projection.
type ProjectionConfig struct {
	JetStream jetstream.JetStream
	Verifier  *Verifier
	Logger    *slog.Logger
	// Filters restrict the subjects replayed (default "ctl.>").
	Filters []string
	// StartSeq resumes after a cursor: replay starts at StartSeq+1. A caller
	// resumes only together with the aggregate versions the cursor covers
	// (Restore); otherwise it replays from the start.
	StartSeq uint64
	// MaxRetryDelay caps the retry backoff of a failing Applier (default 2s).
	MaxRetryDelay time.Duration
}

// AggregateState is what a projection knows of one aggregate: the stream
// sequence of the last message on its subject filter (junk included) and
// its version (the number of valid events applied).
type AggregateState struct {
	LastSeq uint64
	Version uint64
}

// Projection replays CONTROL through one ordered consumer, verifies every
// message, and hands valid events to an Applier in order. It drops events
// whose aggregate version is at or below the current one (replays) and
// refuses gaps, so an old "granted" replayed after "revoked" is ignored while
// a rebuild from the start of the stream works. Methods are safe for
// concurrent use; Run must be called once.
type Projection struct {
	cfg ProjectionConfig
	log *slog.Logger

	mu      sync.Mutex
	changed chan struct{}
	aggs    map[string]AggregateState
	applied uint64 // last stream sequence processed
	ready   chan struct{}
	isReady bool
}

// NewProjection returns a Projection.
func NewProjection(cfg ProjectionConfig) (*Projection, error) {
	if cfg.JetStream == nil || cfg.Verifier == nil {
		return nil, errors.New("bus: projection needs JetStream and Verifier")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.Filters) == 0 {
		cfg.Filters = []string{ControlPrefix + ".>"}
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = 2 * time.Second
	}
	return &Projection{
		cfg: cfg, log: cfg.Logger.With("component", "projection"),
		changed: make(chan struct{}), aggs: map[string]AggregateState{},
		applied: cfg.StartSeq, ready: make(chan struct{}),
	}, nil
}

func aggKey(tenant, agg, id string) string { return tenant + "." + agg + "." + id }

// Restore seeds the aggregate states that a cursor (StartSeq) covers.
func (p *Projection) Restore(states map[string]AggregateState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range states {
		p.aggs[k] = v
	}
}

// Snapshot returns the applied sequence and a copy of every aggregate state,
// for a caller that persists a cursor.
func (p *Projection) Snapshot() (uint64, map[string]AggregateState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]AggregateState, len(p.aggs))
	for k, v := range p.aggs {
		out[k] = v
	}
	return p.applied, out
}

// Expect returns what a writer should expect of an aggregate before
// appending to it.
func (p *Projection) Expect(tenant string, agg Aggregate, id string) Expect {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.aggs[aggKey(tenant, string(agg), id)]
	return Expect{LastSeq: s.LastSeq, Version: s.Version}
}

// Ready is closed once the projection has caught up with the stream (no
// message pending for its filters).
func (p *Projection) Ready() <-chan struct{} { return p.ready }

// WaitFor blocks until the projection has processed stream sequence seq, or
// ctx ends.
func (p *Projection) WaitFor(ctx context.Context, seq uint64) error {
	for {
		p.mu.Lock()
		done, ch := p.applied >= seq, p.changed
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for control sequence %d: %w", seq, ctx.Err())
		}
	}
}

// Run replays and follows CONTROL until ctx ends.
func (p *Projection) Run(ctx context.Context, apply Applier) error {
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: p.cfg.Filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	if p.cfg.StartSeq > 0 {
		occ.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		occ.OptStartSeq = p.cfg.StartSeq + 1
	}
	cons, err := p.cfg.JetStream.OrderedConsumer(ctx, StreamControl, occ)
	if err != nil {
		return fmt.Errorf("ordered consumer on %s: %w", StreamControl, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("consume %s: %w", StreamControl, err)
	}
	go func() { <-ctx.Done(); it.Stop() }()
	if ci, err := cons.Info(ctx); err == nil && ci.NumPending == 0 {
		p.markReady()
	}
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			p.log.Warn("control replay interrupted", "err", err)
			continue
		}
		md, err := msg.Metadata()
		if err != nil {
			p.log.Warn("control message without metadata dropped")
			continue
		}
		if err := p.process(ctx, md.Sequence.Stream, msg, apply); err != nil {
			return err
		}
		if md.NumPending == 0 {
			p.markReady()
		}
	}
}

func (p *Projection) markReady() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isReady {
		p.isReady = true
		close(p.ready)
	}
}

func (p *Projection) process(ctx context.Context, seq uint64, msg jetstream.Msg, apply Applier) error {
	defer p.advance(seq)
	t, err := ParseControlSubject(msg.Subject())
	if err != nil {
		p.log.Warn("malformed control subject dropped", "seq", seq)
		return nil
	}
	key := aggKey(t.Tenant, t.Aggregate, t.ID)
	// A message that is not applied still moves the aggregate's last
	// sequence (junk counts for optimistic concurrency); an applied event
	// moves sequence and version together, after it was applied, so Expect
	// never pairs a new sequence with an old version.
	skip := func() {
		p.mu.Lock()
		st := p.aggs[key]
		st.LastSeq = seq
		p.aggs[key] = st
		p.mu.Unlock()
	}
	ev, err := p.cfg.Verifier.VerifyControl(msg.Subject(), msg.Headers(), msg.Data())
	if err != nil {
		p.log.Warn("unverified control message dropped", "seq", seq, "aggregate", t.Aggregate, "id", t.ID, "err", err)
		skip()
		return nil
	}
	ev.Seq = seq
	p.mu.Lock()
	current := p.aggs[key].Version
	p.mu.Unlock()
	v := ev.Meta.GetAggregateVersion()
	switch {
	case v <= current:
		p.log.Warn("replayed control event dropped", "seq", seq, "aggregate", t.Aggregate, "id", t.ID, "version", v, "current", current)
		skip()
		return nil
	case v > current+1:
		p.log.Error("control event gap refused", "seq", seq, "aggregate", t.Aggregate, "id", t.ID, "version", v, "current", current)
		skip()
		return nil
	}
	delay := 50 * time.Millisecond
	for {
		err := apply(ctx, ev)
		if err == nil {
			break
		}
		p.log.Warn("applying control event failed; retrying", "seq", seq, "type", ev.Meta.GetType(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, p.cfg.MaxRetryDelay)
	}
	p.mu.Lock()
	p.aggs[key] = AggregateState{LastSeq: seq, Version: v}
	p.mu.Unlock()
	return nil
}

func (p *Projection) advance(seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq > p.applied {
		p.applied = seq
	}
	close(p.changed)
	p.changed = make(chan struct{})
}
