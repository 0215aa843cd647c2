// Command importer runs the mcpgw importer: it serves rpc.importer.import,
// turning uploaded API descriptions into proposed source versions on
// CONTROL. Flags fall back to MCPGW_* environment variables; secrets come
// only from 0600 files.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/mcpgw/mcpgw/services/importer/internal/ingest"
	"github.com/mcpgw/mcpgw/services/importer/internal/service"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "importer:", err)
		os.Exit(1)
	}
}

func run() error {
	env := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok {
			return v
		}
		return def
	}
	var envErr error
	envInt := func(name string, def int64) int64 {
		v, ok := os.LookupEnv(name)
		if !ok {
			return def
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			envErr = fmt.Errorf("%s: not an integer", name)
			return def
		}
		return n
	}
	var (
		cfg       service.Config
		logLevel  string
		logFormat string
		budget    int64
	)
	flag.StringVar(&cfg.NATSURL, "nats-url", env("MCPGW_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL (env MCPGW_NATS_URL)")
	flag.StringVar(&cfg.NATSPasswordFile, "nats-password-file", env("MCPGW_NATS_PASSWORD_FILE", ""), "0600 file holding the importer's NATS password (env MCPGW_NATS_PASSWORD_FILE)")
	flag.StringVar(&cfg.IdentityFile, "identity-file", env("MCPGW_IDENTITY_FILE", ""), "0600 file holding the importer's Ed25519 signing seed (env MCPGW_IDENTITY_FILE)")
	flag.StringVar(&cfg.KeyringFile, "keyring-file", env("MCPGW_KEYRING_FILE", ""), "JSON file of every service's public keys (env MCPGW_KEYRING_FILE)")
	flag.StringVar(&logLevel, "log-level", env("MCPGW_LOG_LEVEL", "info"), "debug, info, warn or error (env MCPGW_LOG_LEVEL)")
	flag.StringVar(&logFormat, "log-format", env("MCPGW_LOG_FORMAT", "text"), "text or json (env MCPGW_LOG_FORMAT)")
	flag.BoolVar(&cfg.Production, "production", env("MCPGW_ENV", "") == "production", "production mode: refuse what only suits a laptop (env MCPGW_ENV=production)")
	flag.Int64Var(&cfg.MaxDocumentBytes, "max-document-bytes", envInt("MCPGW_MAX_DOCUMENT_BYTES", ingest.DefaultMaxDocumentBytes), "largest description imported, in bytes (env MCPGW_MAX_DOCUMENT_BYTES)")
	flag.Int64Var(&budget, "tool-name-budget", envInt("MCPGW_TOOL_NAME_BUDGET", 0), "longest generated tool name; 0 takes the default (env MCPGW_TOOL_NAME_BUDGET)")
	flag.Parse()
	if envErr != nil {
		return envErr
	}
	cfg.ToolNameBudget = int(budget)

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, opts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	default:
		return fmt.Errorf("-log-format must be text or json, not %q", logFormat)
	}
	cfg.Logger = cfg.Logger.With("service", "importer")

	svc, err := service.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return svc.Run(ctx)
}
