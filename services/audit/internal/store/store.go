// Package store is the audit service's ClickHouse client: it applies the
// DDL that deploy/ embeds, batch-inserts rows into audit_events, and reads
// deduplicated rows back.
//
// It keeps to what ClickHouse 18.16 accepts over the native protocol (and
// current versions too): inserts are PrepareBatch calls that name their
// columns (an Exec of INSERT … VALUES hangs on 18.16), reads use FINAL
// (ReplacingMergeTree deduplicates by event_id) and client-side ? binding.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mcpgw/mcpgw/deploy"
	"github.com/mcpgw/mcpgw/libs/secret"

	"github.com/mcpgw/mcpgw/services/audit/internal/query"
	"github.com/mcpgw/mcpgw/services/audit/internal/row"
)

// Config says where the audit table lives. Password redacts itself.
type Config struct {
	// Addr is the native protocol address, host:port.
	Addr string
	// User defaults to "default".
	User     string
	Password secret.Value
	// Database holds audit_events; it must satisfy
	// deploy.ValidateDatabaseName. ApplyDDL creates it.
	Database string
	// DialTimeout defaults to 5s.
	DialTimeout time.Duration
}

// Store reads and writes audit_events. It is safe for concurrent use; it
// connects lazily and reconnects after a server restart.
type Store struct {
	conn  driver.Conn
	db    string
	table string
}

// Open returns a Store. It does not connect: the first call does, so a
// server that is down at start is reported by Ping, not by Open.
func Open(cfg Config) (*Store, error) {
	if cfg.Addr == "" {
		return nil, errors.New("store: clickhouse address is required")
	}
	if err := deploy.ValidateDatabaseName(cfg.Database); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if cfg.User == "" {
		cfg.User = "default"
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	// Connect to the server's default database: the audit database may not
	// exist until ApplyDDL created it, and every statement names it.
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:    clickhouse.Native,
		Addr:        []string{cfg.Addr},
		Auth:        clickhouse.Auth{Username: cfg.User, Password: string(cfg.Password.Reveal())},
		DialTimeout: cfg.DialTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("store: open clickhouse client: %w", err)
	}
	return &Store{conn: conn, db: cfg.Database, table: cfg.Database + "." + deploy.AuditEventsTable}, nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.conn.Close() }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("ping clickhouse: %w", err)
	}
	return nil
}

// ApplyDDL runs deploy.ClickHouseDDL for the configured database. Every
// statement is idempotent, so it runs on every start.
func (s *Store) ApplyDDL(ctx context.Context) error {
	stmts, err := deploy.ClickHouseDDL(s.db)
	if err != nil {
		return fmt.Errorf("clickhouse ddl: %w", err)
	}
	for i, stmt := range stmts {
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("apply clickhouse ddl statement %d: %w", i+1, err)
		}
	}
	return nil
}

// Insert writes rows in one batch. It returns nil only when the server
// accepted the whole batch; the caller may then acknowledge the events.
// Inserting a row again is harmless: reads deduplicate by event ID.
func (s *Store) Insert(ctx context.Context, rows []row.Row) error {
	if len(rows) == 0 {
		return nil
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.table+" ("+strings.Join(row.Columns, ", ")+")")
	if err != nil {
		return fmt.Errorf("prepare audit insert: %w", err)
	}
	defer batch.Close()
	for _, r := range rows {
		if err := batch.Append(r.Values()...); err != nil {
			return fmt.Errorf("append audit row: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send audit batch of %d rows: %w", len(rows), err)
	}
	return nil
}

// selectColumns are the columns Select reads, in Scan order.
var selectColumns = []string{
	"time", "event_id", "tenant", "kind", "code", "service", "subject", "stream_seq",
	"request_id", "actor", "surface", "reported_surface", "agent_id", "user_id", "environment",
	"tool", "source_id", "operation_id", "binding_id", "gate", "reason", "credential_status",
	"policy_outcome", "adapter_outcome", "upstream_status", "latency_us", "detail",
}

// Select returns the deduplicated rows of f.Tenant that match f's request
// ID and/or binding ID (a row matches a binding when the binding is one of
// its comma-separated binding IDs), newest first, at most f.Limit. f must be
// normalized (query.Normalize); every value is bound, never interpolated.
func (s *Store) Select(ctx context.Context, f query.Filter) ([]row.Row, error) {
	if f.Tenant == "" || (f.RequestID == "" && f.BindingID == "") || f.Limit <= 0 {
		return nil, errors.New("select audit rows: filter not normalized")
	}
	where := []string{"tenant = ?"}
	args := []any{f.Tenant}
	if f.RequestID != "" {
		where = append(where, "request_id = ?")
		args = append(args, f.RequestID)
	}
	if f.BindingID != "" {
		where = append(where, "has(splitByChar(',', binding_id), ?)")
		args = append(args, f.BindingID)
	}
	args = append(args, f.Limit)
	q := "SELECT " + strings.Join(selectColumns, ", ") + " FROM " + s.table + " FINAL WHERE " +
		strings.Join(where, " AND ") + " ORDER BY time DESC, stream_seq DESC, event_id DESC LIMIT ?"
	rs, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("select audit rows: %w", err)
	}
	defer rs.Close()
	var out []row.Row
	for rs.Next() {
		var r row.Row
		if err := rs.Scan(&r.Time, &r.EventID, &r.Tenant, &r.Kind, &r.Code, &r.Service, &r.Subject, &r.StreamSeq,
			&r.RequestID, &r.Actor, &r.Surface, &r.ReportedSurface, &r.AgentID, &r.UserID, &r.Environment,
			&r.Tool, &r.SourceID, &r.OperationID, &r.BindingID, &r.Gate, &r.Reason, &r.CredentialStatus,
			&r.PolicyOutcome, &r.AdapterOutcome, &r.UpstreamStatus, &r.LatencyUS, &r.Detail); err != nil {
			return nil, fmt.Errorf("scan audit row: %w", err)
		}
		r.Time = r.Time.UTC()
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read audit rows: %w", err)
	}
	return out, nil
}
