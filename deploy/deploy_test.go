package deploy_test

import (
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/deploy"
)

func TestClickHouseDDL(t *testing.T) {
	tests := []struct {
		name     string
		database string
		wantErr  bool
	}{
		{name: "plain", database: "mcpgw"},
		{name: "underscore first", database: "_audit_2"},
		{name: "max length", database: strings.Repeat("a", 64)},
		{name: "too long", database: strings.Repeat("a", 65), wantErr: true},
		{name: "empty", database: "", wantErr: true},
		{name: "digit first", database: "1db", wantErr: true},
		{name: "dot", database: "a.b", wantErr: true},
		{name: "injection", database: "x; DROP DATABASE y", wantErr: true},
		{name: "backtick", database: "a`b", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, err := deploy.ClickHouseDDL(tt.database)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ClickHouseDDL(%q): want error, got %d statements", tt.database, len(stmts))
				}
				return
			}
			if err != nil {
				t.Fatalf("ClickHouseDDL(%q): %v", tt.database, err)
			}
			if len(stmts) != 2 {
				t.Fatalf("got %d statements, want 2: %q", len(stmts), stmts)
			}
			if want := "CREATE DATABASE IF NOT EXISTS " + tt.database; stmts[0] != want {
				t.Errorf("first statement = %q, want %q", stmts[0], want)
			}
			if !strings.HasPrefix(stmts[1], "CREATE TABLE IF NOT EXISTS "+tt.database+"."+deploy.AuditEventsTable) {
				t.Errorf("second statement does not create the audit table: %q", stmts[1])
			}
			for _, s := range stmts {
				if strings.Contains(s, "{database}") || strings.Contains(s, ";") || strings.Contains(s, "--") {
					t.Errorf("statement not fully prepared: %q", s)
				}
			}
		})
	}
}

func TestSpiceDBSchema(t *testing.T) {
	schema := deploy.SpiceDBSchema()
	for _, want := range []string{"definition user", "definition agent", "definition tool", "relation invoker: agent | user", "permission invoke = invoker"} {
		if !strings.Contains(schema, want) {
			t.Errorf("schema lacks %q", want)
		}
	}
}
