// Command policy runs mcpgw's policy service: the identity authority,
// approvals, grants in SpiceDB, and the check and visible decisions. Flags
// fall back to MCPGW_* environment variables (libs/flagenv); secrets come
// only from 0600 files.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/libs/flagenv"
	"github.com/mcpgw/mcpgw/services/policy/internal/service"
)

func main() {
	if err := run(os.Args[1:], os.LookupEnv); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "policy:", err)
		os.Exit(1)
	}
}

func run(args []string, lookup flagenv.Lookup) error {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	var common flagenv.Common
	common.Register(fs, "policy", flagenv.Production(lookup))
	var cfg service.Config
	fs.StringVar(&cfg.SealKeyFile, "seal-key-file", "", "0600 file holding policy's HPKE private key")
	fs.StringVar(&cfg.AdminTokenFile, "admin-token-file", "", "0600 file holding the local stack's admin token (refused with -production)")
	fs.StringVar(&cfg.SpiceDBAddr, "spicedb-addr", "127.0.0.1:50051", "SpiceDB gRPC address (plaintext only to loopback unless -spicedb-plaintext)")
	fs.BoolVar(&cfg.SpiceDBPlaintext, "spicedb-plaintext", false, "allow plaintext to a non-loopback SpiceDB (a private network; refused with -production)")
	fs.StringVar(&cfg.SpiceDBKeyFile, "spicedb-key-file", "", "0600 file holding SpiceDB's preshared key")
	fs.DurationVar(&cfg.ContextTTL, "context-ttl", time.Minute, "lifetime of context assertions (at most 1m)")
	fs.DurationVar(&cfg.DecisionCacheTTL, "decision-cache-ttl", 2*time.Second, "how long check decisions and visible sets are cached (negative disables)")
	if err := flagenv.Parse(fs, args, lookup); err != nil {
		return err
	}
	cfg.NATSURL, cfg.NATSPasswordFile = common.NATSURL, common.NATSPasswordFile
	cfg.IdentityFile, cfg.KeyringFile, cfg.Production = common.IdentityFile, common.KeyringFile, common.Production
	log, err := common.Logger(os.Stderr, "policy")
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
