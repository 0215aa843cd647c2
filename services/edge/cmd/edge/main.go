// Command edge runs mcpgw's edge: the only ingress, serving the MCP endpoint
// (/mcp) and the operator API (/api/v1). Flags fall back to MCPGW_*
// environment variables (libs/flagenv); secrets come only from 0600 files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgw/mcpgw/libs/flagenv"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/limit"
	"github.com/mcpgw/mcpgw/services/edge/internal/mcp"
	"github.com/mcpgw/mcpgw/services/edge/internal/operatorapi"
	"github.com/mcpgw/mcpgw/services/edge/internal/service"
)

func main() {
	if err := run(os.Args[1:], os.LookupEnv); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "edge:", err)
		os.Exit(1)
	}
}

func run(args []string, lookup flagenv.Lookup) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	var common flagenv.Common
	common.Register(fs, "edge", flagenv.Production(lookup))
	var cfg service.Config
	fs.StringVar(&cfg.Listen, "listen", service.DefaultListen, "HTTP listen address (with -production, plain HTTP only on loopback)")
	fs.StringVar(&cfg.PublicURL, "public-url", "", "base URL clients use (default derived from -listen)")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "", "TLS certificate (PEM); enables HTTPS with -tls-key-file")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "", "0600 file holding the TLS private key (PEM)")
	fs.Int64Var(&cfg.MCPBodyLimit, "mcp-body-limit", mcp.DefaultBodyLimit, "largest MCP request body in bytes (below the NATS max payload)")
	fs.Int64Var(&cfg.JSONBodyLimit, "json-body-limit", operatorapi.DefaultJSONLimit, "largest operator API JSON body in bytes")
	fs.Int64Var(&cfg.UploadLimit, "upload-limit", operatorapi.DefaultUploadLimit, "largest uploaded description in bytes")
	fs.Float64Var(&cfg.RateLimit, "rate", limit.DefaultRate, "requests per second per credential (negative disables)")
	fs.IntVar(&cfg.RateBurst, "burst", limit.DefaultBurst, "token bucket size per credential")
	fs.IntVar(&cfg.ContextCacheSize, "context-cache-size", authn.DefaultCacheSize, "signed contexts kept in memory")
	fs.DurationVar(&cfg.InvokeTimeout, "invoke-timeout", mcp.DefaultInvokeTimeout, "longest a tools/call may take")
	fs.DurationVar(&cfg.ListChangedInterval, "list-changed-interval", mcp.DefaultListChangedInterval, "how often open streams' visible sets are checked")
	if err := flagenv.Parse(fs, args, lookup); err != nil {
		return err
	}
	cfg.NATSURL, cfg.NATSPasswordFile = common.NATSURL, common.NATSPasswordFile
	cfg.IdentityFile, cfg.KeyringFile, cfg.Production = common.IdentityFile, common.KeyringFile, common.Production
	log, err := common.Logger(os.Stderr, "edge")
	if err != nil {
		return err
	}
	cfg.Logger = log

	svc, err := service.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return svc.Run(ctx)
}
