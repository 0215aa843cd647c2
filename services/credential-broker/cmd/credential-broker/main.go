// Command credential-broker runs mcpgw's credential broker: it keeps
// credential bindings and the secrets behind them, and releases a binding's
// material only to the adapter, sealed to the adapter's key for one call.
//
// Every flag has an MCPGW_* environment fallback (MCPGW_NATS_URL,
// MCPGW_STATE_DIR, …); MCPGW_ENV=production sets -production. Secrets are
// read only from 0600 files named by flags, never from flags themselves.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/services/credential-broker/internal/service"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "credential-broker:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("credential-broker", flag.ContinueOnError)
	env := func(name, def string) string {
		if v, ok := os.LookupEnv("MCPGW_" + name); ok {
			return v
		}
		return def
	}
	cacheTTL, err := time.ParseDuration(env("SECRET_CACHE_TTL", service.DefaultSecretCacheTTL.String()))
	if err != nil {
		return fmt.Errorf("MCPGW_SECRET_CACHE_TTL: %w", err)
	}
	production, _ := strconv.ParseBool(env("PRODUCTION", "false"))
	production = production || os.Getenv("MCPGW_ENV") == "production"

	var cfg service.Config
	fs.StringVar(&cfg.NATSURL, "nats-url", env("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	fs.StringVar(&cfg.NATSPasswordFile, "nats-password-file", env("NATS_PASSWORD_FILE", ""), "0600 file holding the broker's NATS password")
	fs.StringVar(&cfg.IdentityFile, "identity-file", env("IDENTITY_FILE", ""), "0600 file holding the broker's Ed25519 signing seed")
	fs.StringVar(&cfg.KeyringFile, "keyring-file", env("KEYRING_FILE", ""), "JSON file with every service's public signing and sealing keys")
	fs.StringVar(&cfg.SealKeyFile, "seal-key-file", env("SEAL_KEY_FILE", ""), "0600 file holding the broker's HPKE private key (operators seal secrets to its public key)")
	fs.StringVar(&cfg.StateDir, "state-dir", env("STATE_DIR", ""), "directory of the local encrypted secret store and its master key (0700)")
	fs.DurationVar(&cfg.SecretCacheTTL, "secret-cache-ttl", cacheTTL, "how long a secret read for resolve stays in memory (negative: no cache)")
	logLevel := fs.String("log-level", env("LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", env("LOG_FORMAT", "text"), "log format: text or json")
	fs.BoolVar(&cfg.Production, "production", production, "refuse settings that only suit a laptop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = log.With("service", "credential-broker")

	s, err := service.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return s.Run(ctx)
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, errors.New("-log-format must be text or json")
	}
}
