// Command credential-broker runs mcpgw's credential broker: it keeps
// credential bindings and the secrets behind them, and releases a binding's
// material only to the adapter, sealed to the adapter's key for one call.
//
// Every flag has an MCPGW_* environment fallback (libs/flagenv);
// MCPGW_ENV=production sets -production. Secrets are read only from 0600
// files named by flags, never from flags themselves.
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
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/service"
)

func main() {
	if err := run(os.Args[1:], os.LookupEnv); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "credential-broker:", err)
		os.Exit(1)
	}
}

func run(args []string, lookup flagenv.Lookup) error {
	fs := flag.NewFlagSet("credential-broker", flag.ContinueOnError)
	var common flagenv.Common
	common.Register(fs, "credential-broker", flagenv.Production(lookup))
	var cfg service.Config
	fs.StringVar(&cfg.SealKeyFile, "seal-key-file", "", "0600 file holding the broker's HPKE private key (operators seal secrets to its public key)")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "directory of the local encrypted secret store and its master key (0700)")
	fs.DurationVar(&cfg.SecretCacheTTL, "secret-cache-ttl", service.DefaultSecretCacheTTL, "how long a secret read for resolve stays in memory (negative: no cache)")
	if err := flagenv.Parse(fs, args, lookup); err != nil {
		return err
	}
	cfg.NATSURL, cfg.NATSPasswordFile = common.NATSURL, common.NATSPasswordFile
	cfg.IdentityFile, cfg.KeyringFile, cfg.Production = common.IdentityFile, common.KeyringFile, common.Production
	log, err := common.Logger(os.Stderr, "credential-broker")
	if err != nil {
		return err
	}
	cfg.Logger = log

	s, err := service.New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return s.Run(ctx)
}
