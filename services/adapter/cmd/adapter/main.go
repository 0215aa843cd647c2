// Command adapter runs mcpgw's adapter: it checks policy's signature on each
// call's context, runs the gates, resolves the upstream credential from the
// broker only when every gate passed, calls the upstream and maps its
// response. Every flag falls back to an MCPGW_* environment variable
// (libs/flagenv); secrets come only from 0600 files.
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
	"github.com/mcpgw/mcpgw/services/adapter/internal/service"
)

func main() {
	if err := run(os.Args[1:], os.LookupEnv); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "adapter:", err)
		os.Exit(1)
	}
}

func run(args []string, lookup flagenv.Lookup) error {
	fs := flag.NewFlagSet("adapter", flag.ContinueOnError)
	var common flagenv.Common
	common.Register(fs, "adapter", flagenv.Production(lookup))
	var cfg service.Config
	var maxResponse int
	fs.IntVar(&cfg.MaxArgumentBytes, "max-argument-bytes", 256<<10, "largest arguments of a call")
	fs.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", 512<<10, "largest upstream request")
	fs.IntVar(&maxResponse, "max-response-bytes", service.DefaultMaxResponseBytes, "largest upstream response body")
	fs.IntVar(&cfg.MaxResultBytes, "max-result-bytes", 900<<10, "largest encoded result returned to the edge (below the NATS maximum payload)")
	fs.DurationVar(&cfg.PolicyTimeout, "policy-timeout", service.DefaultPolicyTimeout, "bound on a policy decision; past it the call is denied")
	fs.DurationVar(&cfg.BrokerTimeout, "broker-timeout", service.DefaultBrokerTimeout, "bound on credential resolution")
	fs.DurationVar(&cfg.UpstreamTimeout, "upstream-timeout", service.DefaultUpstreamTimeout, "bound on one upstream request")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", service.DefaultDialTimeout, "bound on resolving and connecting to an upstream")
	fs.IntVar(&cfg.MaxRedirects, "max-redirects", 3, "redirects followed per call (1-3)")
	if err := flagenv.Parse(fs, args, lookup); err != nil {
		return err
	}
	cfg.MaxResponseBytes = int64(maxResponse)
	cfg.NATSURL, cfg.NATSPasswordFile = common.NATSURL, common.NATSPasswordFile
	cfg.IdentityFile, cfg.KeyringFile, cfg.Production = common.IdentityFile, common.KeyringFile, common.Production
	log, err := common.Logger(os.Stderr, "adapter")
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
