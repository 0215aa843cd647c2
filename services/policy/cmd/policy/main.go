// Command policy runs mcpgw's policy service: the identity authority,
// approvals, grants in SpiceDB, and the check and visible decisions. Flags
// fall back to MCPGW_* environment variables; secrets come only from 0600
// files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/services/policy/internal/service"
)

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// envDuration returns the duration in environment variable name, or def;
// a value that is not a duration is an error.
func envDuration(name string, def time.Duration) (time.Duration, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("policy: %s: not a duration", name)
	}
	return d, nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	var cfg service.Config
	fs.StringVar(&cfg.NATSURL, "nats-url", env("MCPGW_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	fs.StringVar(&cfg.NATSPasswordFile, "nats-password-file", env("MCPGW_NATS_PASSWORD_FILE", ""), "0600 file holding policy's NATS password")
	fs.StringVar(&cfg.IdentityFile, "identity-file", env("MCPGW_IDENTITY_FILE", ""), "0600 file holding policy's Ed25519 signing seed")
	fs.StringVar(&cfg.KeyringFile, "keyring-file", env("MCPGW_KEYRING_FILE", ""), "keyring JSON with every service's public keys")
	fs.StringVar(&cfg.SealKeyFile, "seal-key-file", env("MCPGW_SEAL_KEY_FILE", ""), "0600 file holding policy's HPKE private key")
	fs.StringVar(&cfg.AdminTokenFile, "admin-token-file", env("MCPGW_ADMIN_TOKEN_FILE", ""), "0600 file holding the local stack's admin token (refused with -production)")
	fs.StringVar(&cfg.SpiceDBAddr, "spicedb-addr", env("MCPGW_SPICEDB_ADDR", "127.0.0.1:50051"), "SpiceDB gRPC address (plaintext only to loopback)")
	fs.BoolVar(&cfg.SpiceDBPlaintext, "spicedb-plaintext", env("MCPGW_SPICEDB_PLAINTEXT", "") == "true", "allow plaintext to a non-loopback SpiceDB (a private network; refused with -production)")
	fs.StringVar(&cfg.SpiceDBKeyFile, "spicedb-key-file", env("MCPGW_SPICEDB_KEY_FILE", ""), "0600 file holding SpiceDB's preshared key")
	contextTTL, err := envDuration("MCPGW_CONTEXT_TTL", time.Minute)
	if err != nil {
		return err
	}
	cacheTTL, err := envDuration("MCPGW_DECISION_CACHE_TTL", 2*time.Second)
	if err != nil {
		return err
	}
	fs.DurationVar(&cfg.ContextTTL, "context-ttl", contextTTL, "lifetime of context assertions (at most 1m)")
	fs.DurationVar(&cfg.DecisionCacheTTL, "decision-cache-ttl", cacheTTL, "how long check decisions and visible sets are cached (negative disables)")
	logLevel := fs.String("log-level", env("MCPGW_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", env("MCPGW_LOG_FORMAT", "text"), "log format: text or json")
	fs.BoolVar(&cfg.Production, "production", env("MCPGW_ENV", "") == "production", "production mode (refuses an admin token file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = logger

	svc, err := service.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return svc.Run(ctx)
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("policy: -log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, errors.New("policy: -log-format must be text or json")
	}
}
