package main

import (
	"io"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr bool
		check   func(t *testing.T, cfgAddr, db string, applyDDL, production bool, batch int, wait time.Duration)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, addr, db string, applyDDL, production bool, batch int, wait time.Duration) {
				if addr != "127.0.0.1:9000" || db != "mcpgw" || !applyDDL || production || batch != 500 || wait != time.Second {
					t.Errorf("defaults: %s %s %v %v %d %v", addr, db, applyDDL, production, batch, wait)
				}
			},
		},
		{
			name: "environment fallbacks",
			env: map[string]string{"MCPGW_CLICKHOUSE_ADDR": "127.0.0.1:19000", "MCPGW_CLICKHOUSE_DATABASE": "audit",
				"MCPGW_APPLY_DDL": "false", "MCPGW_ENV": "production", "MCPGW_BATCH_SIZE": "10", "MCPGW_BATCH_WAIT": "250ms"},
			check: func(t *testing.T, addr, db string, applyDDL, production bool, batch int, wait time.Duration) {
				if addr != "127.0.0.1:19000" || db != "audit" || applyDDL || !production || batch != 10 || wait != 250*time.Millisecond {
					t.Errorf("env: %s %s %v %v %d %v", addr, db, applyDDL, production, batch, wait)
				}
			},
		},
		{
			name: "flags win over the environment",
			args: []string{"-clickhouse-addr", "127.0.0.1:29000", "-batch-size", "7"},
			env:  map[string]string{"MCPGW_CLICKHOUSE_ADDR": "127.0.0.1:19000", "MCPGW_BATCH_SIZE": "10"},
			check: func(t *testing.T, addr, _ string, _, _ bool, batch int, _ time.Duration) {
				if addr != "127.0.0.1:29000" || batch != 7 {
					t.Errorf("flags: %s %d", addr, batch)
				}
			},
		},
		{name: "bad log level", args: []string{"-log-level", "loud"}, wantErr: true},
		{name: "bad log format", args: []string{"-log-format", "xml"}, wantErr: true},
		{name: "bad environment value", env: map[string]string{"MCPGW_BATCH_SIZE": "many"}, wantErr: true},
		{name: "zero batch", args: []string{"-batch-size", "0"}, wantErr: true},
		{name: "stray argument", args: []string{"extra"}, wantErr: true},
		{name: "no password flag", args: []string{"-clickhouse-password", "x"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr {
				if err == nil {
					t.Fatal("parse succeeded")
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if cfg.Logger == nil {
				t.Fatal("no logger")
			}
			tc.check(t, cfg.ClickHouse.Addr, cfg.ClickHouse.Database, cfg.ApplyDDL, cfg.Production, cfg.BatchSize, cfg.BatchWait)
		})
	}
}
