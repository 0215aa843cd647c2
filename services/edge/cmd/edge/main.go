// Command edge runs mcpgw's edge: the only ingress, serving the MCP endpoint
// (/mcp) and the operator API (/api/v1). Flags fall back to MCPGW_*
// environment variables; secrets come only from 0600 files.
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

	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/limit"
	"github.com/mcpgw/mcpgw/services/edge/internal/mcp"
	"github.com/mcpgw/mcpgw/services/edge/internal/operatorapi"
	"github.com/mcpgw/mcpgw/services/edge/internal/service"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int64) int64 {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv(name); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	var cfg service.Config
	fs.StringVar(&cfg.NATSURL, "nats-url", env("MCPGW_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	fs.StringVar(&cfg.NATSPasswordFile, "nats-password-file", env("MCPGW_NATS_PASSWORD_FILE", ""), "0600 file holding the edge's NATS password")
	fs.StringVar(&cfg.IdentityFile, "identity-file", env("MCPGW_IDENTITY_FILE", ""), "0600 file holding the edge's Ed25519 signing seed")
	fs.StringVar(&cfg.KeyringFile, "keyring-file", env("MCPGW_KEYRING_FILE", ""), "keyring JSON with every service's public keys (incl. sealing keys)")
	fs.StringVar(&cfg.Listen, "listen", env("MCPGW_LISTEN", service.DefaultListen), "HTTP listen address")
	fs.StringVar(&cfg.PublicURL, "public-url", env("MCPGW_PUBLIC_URL", ""), "base URL clients use (default derived from -listen)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", env("MCPGW_TLS_CERT_FILE", ""), "TLS certificate (PEM); enables HTTPS with -tls-key-file")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", env("MCPGW_TLS_KEY_FILE", ""), "0600 file holding the TLS private key (PEM)")
	fs.Int64Var(&cfg.MCPBodyLimit, "mcp-body-limit", envInt("MCPGW_MCP_BODY_LIMIT", mcp.DefaultBodyLimit), "largest MCP request body in bytes (below the NATS max payload)")
	fs.Int64Var(&cfg.JSONBodyLimit, "json-body-limit", envInt("MCPGW_JSON_BODY_LIMIT", operatorapi.DefaultJSONLimit), "largest operator API JSON body in bytes")
	fs.Int64Var(&cfg.UploadLimit, "upload-limit", envInt("MCPGW_UPLOAD_LIMIT", operatorapi.DefaultUploadLimit), "largest uploaded description in bytes")
	fs.Float64Var(&cfg.RateLimit, "rate", envFloat("MCPGW_RATE", limit.DefaultRate), "requests per second per credential (negative disables)")
	burst := fs.Int64("burst", envInt("MCPGW_BURST", limit.DefaultBurst), "token bucket size per credential")
	cacheSize := fs.Int64("context-cache-size", envInt("MCPGW_CONTEXT_CACHE_SIZE", authn.DefaultCacheSize), "signed contexts kept in memory")
	fs.DurationVar(&cfg.InvokeTimeout, "invoke-timeout", envDuration("MCPGW_INVOKE_TIMEOUT", mcp.DefaultInvokeTimeout), "longest a tools/call may take")
	fs.DurationVar(&cfg.ListChangedInterval, "list-changed-interval", envDuration("MCPGW_LIST_CHANGED_INTERVAL", mcp.DefaultListChangedInterval), "how often open streams' visible sets are checked")
	logLevel := fs.String("log-level", env("MCPGW_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", env("MCPGW_LOG_FORMAT", "text"), "log format: text or json")
	fs.BoolVar(&cfg.Production, "production", env("MCPGW_ENV", "") == "production", "production mode (refuses plain HTTP on a non-loopback address)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg.RateBurst, cfg.ContextCacheSize = int(*burst), int(*cacheSize)
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
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, errors.New("-log-format must be text or json")
	}
}
