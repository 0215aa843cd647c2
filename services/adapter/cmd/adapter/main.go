// Command adapter runs mcpgw's adapter: it checks policy's signature on each
// call's context, runs the gates, resolves the upstream credential from the
// broker only when every gate passed, calls the upstream and maps its
// response. Every flag falls back to an MCPGW_* environment variable;
// secrets come only from 0600 files.
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

	"github.com/mcpgw/mcpgw/services/adapter/internal/service"
)

func main() {
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "adapter:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(env(name, "")); err == nil {
		return n
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env(name, "")); err == nil {
		return d
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("adapter", flag.ContinueOnError)
	var cfg service.Config
	var maxResponse int
	fs.StringVar(&cfg.NATSURL, "nats-url", env("MCPGW_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	fs.StringVar(&cfg.NATSPasswordFile, "nats-password-file", env("MCPGW_NATS_PASSWORD_FILE", ""), "0600 file holding the adapter's NATS password")
	fs.StringVar(&cfg.IdentityFile, "identity-file", env("MCPGW_IDENTITY_FILE", ""), "0600 file holding the adapter's Ed25519 signing seed")
	fs.StringVar(&cfg.KeyringFile, "keyring-file", env("MCPGW_KEYRING_FILE", ""), "public keys of every service (JSON)")
	logLevel := fs.String("log-level", env("MCPGW_LOG_LEVEL", "info"), "debug, info, warn or error")
	logFormat := fs.String("log-format", env("MCPGW_LOG_FORMAT", "text"), "text or json")
	fs.BoolVar(&cfg.Production, "production", env("MCPGW_ENV", "") == "production", "production mode: refuse what only suits a laptop")
	fs.IntVar(&cfg.MaxArgumentBytes, "max-argument-bytes", envInt("MCPGW_MAX_ARGUMENT_BYTES", 256<<10), "largest arguments of a call")
	fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", envInt("MCPGW_MAX_REQUEST_BYTES", 512<<10), "largest upstream request")
	fs.IntVar(&maxResponse, "max-response-bytes", envInt("MCPGW_MAX_RESPONSE_BYTES", service.DefaultMaxResponseBytes), "largest upstream response body")
	fs.IntVar(&cfg.MaxResultBytes, "max-result-bytes", envInt("MCPGW_MAX_RESULT_BYTES", 900<<10), "largest encoded result returned to the edge (below the NATS maximum payload)")
	fs.DurationVar(&cfg.PolicyTimeout, "policy-timeout", envDuration("MCPGW_POLICY_TIMEOUT", service.DefaultPolicyTimeout), "bound on a policy decision; past it the call is denied")
	fs.DurationVar(&cfg.BrokerTimeout, "broker-timeout", envDuration("MCPGW_BROKER_TIMEOUT", service.DefaultBrokerTimeout), "bound on credential resolution")
	fs.DurationVar(&cfg.UpstreamTimeout, "upstream-timeout", envDuration("MCPGW_UPSTREAM_TIMEOUT", service.DefaultUpstreamTimeout), "bound on one upstream request")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", envDuration("MCPGW_DIAL_TIMEOUT", service.DefaultDialTimeout), "bound on resolving and connecting to an upstream")
	fs.IntVar(&cfg.MaxRedirects, "max-redirects", envInt("MCPGW_MAX_REDIRECTS", 3), "redirects followed per call (1-3)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg.MaxResponseBytes = int64(maxResponse)
	log, err := logger(*logLevel, *logFormat)
	if err != nil {
		return err
	}
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	svc, err := service.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	return svc.Run(ctx)
}

func logger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}
