package store_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/testenv"

	"github.com/mcpgw/mcpgw/services/audit/internal/query"
	"github.com/mcpgw/mcpgw/services/audit/internal/row"
	"github.com/mcpgw/mcpgw/services/audit/internal/store"
)

func TestStore(t *testing.T) {
	ch := testenv.ClickHouse(t)
	st, err := store.Open(store.Config{Addr: ch.Addr, Password: ch.Password, Database: "audit_store"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for range 2 { // idempotent
		if err := st.ApplyDDL(ctx); err != nil {
			t.Fatalf("apply ddl: %v\n%s", err, ch.LogTail())
		}
	}

	base := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	mk := func(i int, tenant, req, bindings string) row.Row {
		return row.Row{Time: base.Add(time.Duration(i) * time.Second), EventID: fmt.Sprintf("evt_%d", i), Tenant: tenant,
			Kind: "credential_used", Code: "ADP002", Service: "adapter", Subject: "audit." + tenant + ".credential_used",
			StreamSeq: uint64(i), RequestID: req, BindingID: bindings, UpstreamStatus: 200, LatencyUS: 42, Detail: "{}"}
	}
	rows := []row.Row{
		mk(1, "t1", "req_a", "bnd_1"),
		mk(2, "t1", "req_a", "bnd_2,bnd_1"),
		mk(3, "t1", "req_b", "bnd_10"),
		mk(4, "t2", "req_a", "bnd_1"),
	}
	if err := st.Insert(ctx, rows); err != nil {
		t.Fatalf("insert: %v", err)
	}
	// At-least-once delivery: the same rows again are read once.
	if err := st.Insert(ctx, rows[:2]); err != nil {
		t.Fatalf("insert again: %v", err)
	}
	if err := st.Insert(ctx, nil); err != nil {
		t.Fatalf("insert nothing: %v", err)
	}

	tests := []struct {
		name   string
		filter query.Filter
		want   []string
	}{
		{"by request, newest first", query.Filter{Tenant: "t1", RequestID: "req_a", Limit: 10}, []string{"evt_2", "evt_1"}},
		{"by binding in a list", query.Filter{Tenant: "t1", BindingID: "bnd_1", Limit: 10}, []string{"evt_2", "evt_1"}},
		{"binding prefix does not match", query.Filter{Tenant: "t1", BindingID: "bnd", Limit: 10}, nil},
		{"request and binding", query.Filter{Tenant: "t1", RequestID: "req_a", BindingID: "bnd_2", Limit: 10}, []string{"evt_2"}},
		{"other tenant", query.Filter{Tenant: "t2", RequestID: "req_a", Limit: 10}, []string{"evt_4"}},
		{"limit", query.Filter{Tenant: "t1", RequestID: "req_a", Limit: 1}, []string{"evt_2"}},
		{"injection is a value", query.Filter{Tenant: "t1", RequestID: "req_a' OR '1'='1", Limit: 10}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.Select(ctx, tc.filter)
			if err != nil {
				t.Fatalf("select: %v", err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.EventID)
			}
			if strings.Join(ids, " ") != strings.Join(tc.want, " ") {
				t.Errorf("rows = %v, want %v", ids, tc.want)
			}
		})
	}

	t.Run("round trip", func(t *testing.T) {
		got, err := st.Select(ctx, query.Filter{Tenant: "t1", RequestID: "req_b", Limit: 10})
		if err != nil || len(got) != 1 {
			t.Fatalf("select: %v, %d rows", err, len(got))
		}
		if got[0] != rows[2] {
			t.Errorf("row read back differs:\n got %+v\nwant %+v", got[0], rows[2])
		}
	})

	t.Run("unnormalized filter", func(t *testing.T) {
		if _, err := st.Select(ctx, query.Filter{Tenant: "t1", Limit: 10}); err == nil {
			t.Error("select without request or binding succeeded")
		}
	})
}

func TestOpenRefusesBadDatabase(t *testing.T) {
	for _, db := range []string{"", "a.b", "x; DROP TABLE y", "1abc"} {
		t.Run(db, func(t *testing.T) {
			if _, err := store.Open(store.Config{Addr: "127.0.0.1:1", Database: db}); err == nil {
				t.Errorf("database %q accepted", db)
			}
		})
	}
}

func TestDownServerFailsWithoutSecret(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pw := secret.New([]byte("canary-ch-password-1f2e3d"))
	st, err := store.Open(store.Config{Addr: addr, Password: pw, Database: "audit", DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	errs := []error{st.Ping(ctx), st.ApplyDDL(ctx), st.Insert(ctx, []row.Row{{EventID: "evt_1", Tenant: "t1", Detail: "{}"}})}
	for i, err := range errs {
		if err == nil {
			t.Errorf("call %d succeeded with no server", i)
			continue
		}
		if strings.Contains(err.Error(), "canary-ch-password") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
