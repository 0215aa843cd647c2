package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/services/audit/internal/service"
)

// envPrefix starts the environment variable that backs each flag:
// -clickhouse-addr falls back to MCPGW_CLICKHOUSE_ADDR.
const envPrefix = "MCPGW_"

// parseConfig parses flags once, with MCPGW_* environment fallbacks (a flag
// given on the command line wins), and builds the logger. Secrets come only
// from 0600 files named here, never from flags or the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (service.Config, error) {
	var cfg service.Config
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL")
	fs.StringVar(&cfg.NATSPasswordFile, "nats-password-file", "", "0600 file with the audit service's NATS password")
	fs.StringVar(&cfg.IdentityFile, "identity-file", "", "0600 file with the audit service's Ed25519 signing seed")
	fs.StringVar(&cfg.KeyringFile, "keyring-file", "", "JSON file with every service's public keys")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	fs.BoolVar(&cfg.Production, "production", false, "production mode (also MCPGW_ENV=production): refuse laptop-only settings")
	fs.StringVar(&cfg.ClickHouse.Addr, "clickhouse-addr", "127.0.0.1:9000", "ClickHouse native protocol address")
	fs.StringVar(&cfg.ClickHouse.User, "clickhouse-user", "default", "ClickHouse user")
	fs.StringVar(&cfg.ClickHouse.PasswordFile, "clickhouse-password-file", "", "0600 file with the ClickHouse user's password")
	fs.StringVar(&cfg.ClickHouse.Database, "clickhouse-database", "mcpgw", "ClickHouse database holding audit_events")
	fs.BoolVar(&cfg.ApplyDDL, "apply-ddl", true, "apply the ClickHouse DDL (idempotent) at start")
	fs.IntVar(&cfg.BatchSize, "batch-size", 500, "most events fetched and inserted at once")
	fs.DurationVar(&cfg.BatchWait, "batch-wait", time.Second, "longest wait for a full batch")

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: %w", name, err)
			}
		}
	})
	if envErr != nil {
		return service.Config{}, envErr
	}
	if getenv(envPrefix+"ENV") == "production" {
		cfg.Production = true
	}
	if err := fs.Parse(args); err != nil {
		return service.Config{}, err
	}
	if fs.NArg() > 0 {
		return service.Config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if cfg.BatchSize <= 0 || cfg.BatchWait <= 0 {
		return service.Config{}, fmt.Errorf("-batch-size and -batch-wait must be positive")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return service.Config{}, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, opts)
	case "json":
		h = slog.NewJSONHandler(stderr, opts)
	default:
		return service.Config{}, fmt.Errorf("-log-format must be text or json, not %q", *logFormat)
	}
	cfg.Logger = slog.New(h).With("service", "audit")
	return cfg, nil
}
