package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/deploy"
	"github.com/mcpgw/mcpgw/libs/testenv"
)

func TestClickHouseStarts(t *testing.T) {
	s := testenv.ClickHouse(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want a 127.0.0.1 address", s.Addr)
	}
	conn := s.Conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var db string
	if err := conn.QueryRow(ctx, "SELECT currentDatabase()").Scan(&db); err != nil {
		t.Fatalf("current database: %v", err)
	}
	if db != s.Database {
		t.Errorf("current database = %q, want %q", db, s.Database)
	}
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatalf("version: %v", err)
	}
	t.Logf("clickhouse-server %s on %s", version, s.Addr)

	pw := string(s.Password.Reveal())
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", *s)} {
		if strings.Contains(out, pw) {
			t.Errorf("formatted server shows the password: %s", out)
		}
	}
}

func TestClickHouseDatabasesAreFresh(t *testing.T) {
	a := testenv.ClickHouse(t)
	b := testenv.ClickHouse(t)
	if a.Database == b.Database {
		t.Errorf("two calls returned the same database %q", a.Database)
	}
	if a.Addr == b.Addr {
		t.Errorf("two calls returned the same address %q", a.Addr)
	}
}

// auditRow is one row of deploy's audit_events table.
type auditRow struct {
	EventDate        time.Time `ch:"event_date"`
	Time             time.Time `ch:"time"`
	EventID          string    `ch:"event_id"`
	Tenant           string    `ch:"tenant"`
	Kind             string    `ch:"kind"`
	Code             string    `ch:"code"`
	Service          string    `ch:"service"`
	Subject          string    `ch:"subject"`
	StreamSeq        uint64    `ch:"stream_seq"`
	RequestID        string    `ch:"request_id"`
	Actor            string    `ch:"actor"`
	Surface          string    `ch:"surface"`
	ReportedSurface  string    `ch:"reported_surface"`
	AgentID          string    `ch:"agent_id"`
	UserID           string    `ch:"user_id"`
	Environment      string    `ch:"environment"`
	Tool             string    `ch:"tool"`
	SourceID         string    `ch:"source_id"`
	OperationID      string    `ch:"operation_id"`
	BindingID        string    `ch:"binding_id"`
	Gate             string    `ch:"gate"`
	Reason           string    `ch:"reason"`
	CredentialStatus string    `ch:"credential_status"`
	PolicyOutcome    string    `ch:"policy_outcome"`
	AdapterOutcome   string    `ch:"adapter_outcome"`
	UpstreamStatus   uint16    `ch:"upstream_status"`
	LatencyUS        uint64    `ch:"latency_us"`
	Detail           string    `ch:"detail"`
}

const auditColumns = "event_date, time, event_id, tenant, kind, code, service, subject, stream_seq, request_id, actor, surface, reported_surface, agent_id, user_id, environment, tool, source_id, operation_id, binding_id, gate, reason, credential_status, policy_outcome, adapter_outcome, upstream_status, latency_us, detail"

func (r auditRow) values() []any {
	return []any{r.EventDate, r.Time, r.EventID, r.Tenant, r.Kind, r.Code, r.Service, r.Subject, r.StreamSeq, r.RequestID, r.Actor, r.Surface, r.ReportedSurface, r.AgentID, r.UserID, r.Environment, r.Tool, r.SourceID, r.OperationID, r.BindingID, r.Gate, r.Reason, r.CredentialStatus, r.PolicyOutcome, r.AdapterOutcome, r.UpstreamStatus, r.LatencyUS, r.Detail}
}

func TestClickHouseAuditDDL(t *testing.T) {
	s := testenv.ClickHouse(t)
	conn := s.Conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	stmts, err := deploy.ClickHouseDDL(s.Database)
	if err != nil {
		t.Fatalf("ddl: %v", err)
	}
	// Twice: the DDL must be idempotent, as services apply it on every start.
	for range 2 {
		for _, stmt := range stmts {
			if err := conn.Exec(ctx, stmt); err != nil {
				t.Fatalf("exec %q: %v\n%s", stmt, err, s.LogTail())
			}
		}
	}
	table := s.Database + "." + deploy.AuditEventsTable

	now := time.Now().UTC().Truncate(time.Second)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	row := auditRow{
		EventDate: day, Time: now, EventID: "evt_1", Tenant: "demo", Kind: "tool.invoked",
		Code: "T1000I", Service: "adapter", Subject: "audit.demo.tool_invoked", StreamSeq: 7,
		RequestID: "req_1", Actor: "agent:demo/a1", Surface: "mcp", ReportedSurface: "claude",
		AgentID: "a1", UserID: "u1", Environment: "dev", Tool: "list_pets", SourceID: "src_1",
		OperationID: "op_1", BindingID: "bnd_1", Gate: "", Reason: "", CredentialStatus: "injected",
		PolicyOutcome: "allow", AdapterOutcome: "ok", UpstreamStatus: 200, LatencyUS: 1234, Detail: "{}",
	}
	insert := func(rows ...auditRow) {
		t.Helper()
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+auditColumns+")")
		if err != nil {
			t.Fatalf("prepare batch: %v", err)
		}
		defer batch.Close()
		for _, r := range rows {
			if err := batch.Append(r.values()...); err != nil {
				t.Fatalf("append: %v", err)
			}
		}
		if err := batch.Send(); err != nil {
			t.Fatalf("send batch: %v\n%s", err, s.LogTail())
		}
	}
	count := func(final bool) uint64 {
		t.Helper()
		q := "SELECT count() FROM " + table
		if final {
			q += " FINAL"
		}
		q += " WHERE tenant = ? AND event_id = ?"
		var n uint64
		if err := conn.QueryRow(ctx, q, row.Tenant, row.EventID).Scan(&n); err != nil {
			t.Fatalf("count: %v", err)
		}
		return n
	}

	insert(row)
	var got []auditRow
	if err := conn.Select(ctx, &got, "SELECT "+auditColumns+" FROM "+table+" FINAL WHERE tenant = ?", "demo"); err != nil {
		t.Fatalf("select: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d rows, want 1", len(got))
	}
	got[0].EventDate = got[0].EventDate.UTC()
	got[0].Time = got[0].Time.UTC()
	if got[0] != row {
		t.Errorf("row read back differs:\n got %+v\nwant %+v", got[0], row)
	}

	// At-least-once delivery: the same event inserted again, in another part.
	insert(row)
	if n := count(true); n != 1 {
		t.Errorf("count with FINAL after a duplicate insert = %d, want 1", n)
	}
	if err := conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"); err != nil {
		t.Fatalf("optimize: %v", err)
	}
	if n := count(false); n != 1 {
		t.Errorf("count after OPTIMIZE FINAL = %d, want 1", n)
	}

	// Another tenant's event with the same ID is a different row.
	other := row
	other.Tenant = "other"
	insert(other)
	var total uint64
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+table+" FINAL").Scan(&total); err != nil {
		t.Fatalf("count all: %v", err)
	}
	if total != 2 {
		t.Errorf("rows across tenants = %d, want 2", total)
	}
}
