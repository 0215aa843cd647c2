// Package writer projects one JetStream stream (AUDIT or CONTROL) into the
// audit table. It reads through a durable pull consumer that the launcher
// (or deploy/) provisioned, in batches; verifies every message; maps the
// verified events to rows; inserts each batch in one call; and acknowledges
// the messages only after the insert succeeded.
//
// Delivery is at least once and nothing is lost: when an insert fails, every
// message of the batch is negatively acknowledged with a growing delay and
// comes back; an insert that succeeded but whose acknowledgement was lost
// writes the rows again, which the table deduplicates by event ID. A message
// that fails verification is never written as if trusted: it is acknowledged
// (so it cannot block the stream) and dropped with a warning naming its
// subject and stream sequence.
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"

	"github.com/mcpgw/mcpgw/services/audit/internal/row"
)

// Fetcher is the part of a jetstream.Consumer the writer reads through.
type Fetcher interface {
	Fetch(batch int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error)
}

// Sink stores rows. Insert returns nil only when every row is stored;
// storing a row twice must be harmless.
type Sink interface {
	Insert(ctx context.Context, rows []row.Row) error
}

// Verify checks and decodes one message, e.g. bus.Verifier.VerifyAudit.
type Verify func(subject string, hdr nats.Header, data []byte) (*bus.Event, error)

// Map turns a verified event into a row, e.g. row.FromAudit.
type Map func(ev *bus.Event) row.Row

// Config configures a Writer. Stream, Consumer, Verify, Map and Sink are
// required.
type Config struct {
	// Stream names the stream read, for logs (bus.StreamAudit, bus.StreamControl).
	Stream   string
	Consumer Fetcher
	Verify   Verify
	Map      Map
	Sink     Sink
	// BatchSize is the most messages fetched and inserted at once (default 500).
	BatchSize int
	// BatchWait is how long a fetch waits for a full batch (default 1s).
	BatchWait time.Duration
	// InsertTimeout bounds one insert (default 10s); keep it below the
	// consumer's ack wait.
	InsertTimeout time.Duration
	// RetryMin and RetryMax bound the delay before a failed batch is
	// redelivered; it doubles with each consecutive failure (defaults 250ms
	// and 15s).
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
}

// Writer runs one stream's projection. Run must be called once.
type Writer struct {
	cfg      Config
	log      *slog.Logger
	failures int
}

// New returns a Writer.
func New(cfg Config) (*Writer, error) {
	if cfg.Stream == "" || cfg.Consumer == nil || cfg.Verify == nil || cfg.Map == nil || cfg.Sink == nil {
		return nil, errors.New("writer: Stream, Consumer, Verify, Map and Sink are required")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.BatchWait <= 0 {
		cfg.BatchWait = time.Second
	}
	if cfg.InsertTimeout <= 0 {
		cfg.InsertTimeout = 10 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 250 * time.Millisecond
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(15*time.Second, cfg.RetryMin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Writer{cfg: cfg, log: cfg.Logger.With("component", "writer", "stream", cfg.Stream)}, nil
}

// Run fetches, verifies, writes and acknowledges until ctx ends; it then
// returns nil. Failures of the bus or the sink are logged and retried with
// backoff, never returned.
func (w *Writer) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		msgs, err := w.fetch(ctx)
		if len(msgs) > 0 {
			w.handle(ctx, msgs)
		}
		if err != nil && ctx.Err() == nil {
			delay := w.backoff()
			w.log.Warn("fetch from durable consumer failed; retrying", "retry_in", delay, "err", err)
			wait(ctx, delay)
		}
	}
	return nil
}

// fetch returns up to BatchSize messages, waiting at most BatchWait.
func (w *Writer) fetch(ctx context.Context) ([]jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, w.cfg.BatchWait)
	defer cancel()
	batch, err := w.cfg.Consumer.Fetch(w.cfg.BatchSize, jetstream.FetchContext(fctx))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return msgs, fmt.Errorf("fetch: %w", err)
	}
	return msgs, nil
}

// handle writes one batch: unverifiable messages are dropped and
// acknowledged; the rest are inserted together, then acknowledged, or
// negatively acknowledged with a delay when the insert failed.
func (w *Writer) handle(ctx context.Context, msgs []jetstream.Msg) {
	rows := make([]row.Row, 0, len(msgs))
	pending := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		md, err := m.Metadata()
		if err != nil {
			w.log.Warn("message without stream metadata dropped", "subject", m.Subject())
			_ = m.Term()
			continue
		}
		seq := md.Sequence.Stream
		ev, err := w.cfg.Verify(m.Subject(), m.Headers(), m.Data())
		if err != nil {
			w.log.Warn("unverified message dropped, not written", "subject", m.Subject(), "seq", seq, "err", err)
			if err := m.Ack(); err != nil {
				w.log.Warn("acknowledge dropped message failed", "subject", m.Subject(), "seq", seq, "err", err)
			}
			continue
		}
		ev.Seq = seq
		r := w.cfg.Map(ev)
		if r.Time.IsZero() {
			r.Time = md.Timestamp.UTC()
		}
		rows = append(rows, r)
		pending = append(pending, m)
	}
	if len(rows) == 0 {
		return
	}
	first, last := rows[0].StreamSeq, rows[len(rows)-1].StreamSeq
	ictx, cancel := context.WithTimeout(ctx, w.cfg.InsertTimeout)
	err := w.cfg.Sink.Insert(ictx, rows)
	cancel()
	if err != nil && ctx.Err() != nil {
		// Shutting down: hand the batch back at once for another instance.
		for _, m := range pending {
			_ = m.Nak()
		}
		w.log.Info("stopped with a batch unwritten; it will be redelivered", "rows", len(rows), "first_seq", first, "last_seq", last)
		return
	}
	if err != nil {
		delay := w.backoff()
		w.log.Warn("audit insert failed; batch left unacknowledged for redelivery",
			"rows", len(rows), "first_seq", first, "last_seq", last, "retry_in", delay, "err", err)
		for _, m := range pending {
			if err := m.NakWithDelay(delay); err != nil {
				w.log.Debug("negative acknowledgement failed; the ack wait redelivers", "subject", m.Subject(), "err", err)
			}
		}
		wait(ctx, delay)
		return
	}
	if w.failures > 0 {
		w.log.Info("audit insert recovered", "after_failures", w.failures)
	}
	w.failures = 0
	for _, m := range pending {
		if err := m.Ack(); err != nil {
			w.log.Warn("acknowledge written message failed; it will be written again", "subject", m.Subject(), "err", err)
		}
	}
	w.log.Debug("audit rows written", "rows", len(rows), "first_seq", first, "last_seq", last)
}

// backoff counts a failure and returns the delay before the next attempt:
// RetryMin doubled per consecutive failure, capped at RetryMax.
func (w *Writer) backoff() time.Duration {
	w.failures++
	d := w.cfg.RetryMin
	for i := 1; i < w.failures && d < w.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, w.cfg.RetryMax)
}

// wait pauses for d or until ctx ends: the pause between retries.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
