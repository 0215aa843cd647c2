package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mcpgw/mcpgw/libs/flagenv"
	"github.com/mcpgw/mcpgw/services/audit/internal/service"
)

// parseConfig parses flags once, with MCPGW_* environment fallbacks (a flag
// given on the command line wins; libs/flagenv), and builds the logger.
// Secrets come only from 0600 files named here, never from flags or the
// environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (service.Config, error) {
	lookup := func(k string) (string, bool) { v := getenv(k); return v, v != "" }
	var cfg service.Config
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common flagenv.Common
	common.Register(fs, "audit", flagenv.Production(lookup))
	fs.StringVar(&cfg.ClickHouse.Addr, "clickhouse-addr", "127.0.0.1:9000", "ClickHouse native protocol address")
	fs.StringVar(&cfg.ClickHouse.User, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&cfg.ClickHouse.PasswordFile, "clickhouse-password-file", "", "0600 file with the ClickHouse user's password")
	fs.StringVar(&cfg.ClickHouse.Database, "clickhouse-database", "mcpgw", "ClickHouse database holding audit_events")
	fs.BoolVar(&cfg.ApplyDDL, "apply-ddl", true, "apply the ClickHouse DDL (idempotent) at start")
	fs.IntVar(&cfg.BatchSize, "batch-size", 500, "most events fetched and inserted at once")
	fs.DurationVar(&cfg.BatchWait, "batch-wait", time.Second, "longest wait for a full batch")
	if err := flagenv.Parse(fs, args, lookup); err != nil {
		return service.Config{}, err
	}
	if cfg.BatchSize <= 0 || cfg.BatchWait <= 0 {
		return service.Config{}, fmt.Errorf("-batch-size and -batch-wait must be positive")
	}
	cfg.NATSURL, cfg.NATSPasswordFile = common.NATSURL, common.NATSPasswordFile
	cfg.IdentityFile, cfg.KeyringFile, cfg.Production = common.IdentityFile, common.KeyringFile, common.Production
	log, err := common.Logger(stderr, "audit")
	if err != nil {
		return service.Config{}, err
	}
	cfg.Logger = log
	return cfg, nil
}
