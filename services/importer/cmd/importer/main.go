// Command importer runs the mcpgw importer: it serves rpc.importer.import,
// turning uploaded API descriptions into proposed source versions on
// CONTROL. Flags fall back to MCPGW_* environment variables (libs/flagenv);
// secrets come only from 0600 files.
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
	"github.com/mcpgw/mcpgw/services/importer/internal/ingest"
	"github.com/mcpgw/mcpgw/services/importer/internal/service"
)

func main() {
	if err := run(os.Args[1:], os.LookupEnv); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "importer:", err)
		os.Exit(1)
	}
}

func run(args []string, lookup flagenv.Lookup) error {
	fs := flag.NewFlagSet("importer", flag.ContinueOnError)
	var common flagenv.Common
	common.Register(fs, "importer", flagenv.Production(lookup))
	var cfg service.Config
	fs.Int64Var(&cfg.MaxDocumentBytes, "max-document-bytes", ingest.DefaultMaxDocumentBytes, "largest description imported, in bytes")
	fs.IntVar(&cfg.ToolNameBudget, "tool-name-budget", 0, "longest generated tool name; 0 takes the default")
	if err := flagenv.Parse(fs, args, lookup); err != nil {
		return err
	}
	cfg.NATSURL, cfg.NATSPasswordFile = common.NATSURL, common.NATSPasswordFile
	cfg.IdentityFile, cfg.KeyringFile, cfg.Production = common.IdentityFile, common.KeyringFile, common.Production
	log, err := common.Logger(os.Stderr, "importer")
	if err != nil {
		return err
	}
	cfg.Logger = log

	svc, err := service.New(cfg)
	if err != nil {
		return err
	}
	defer svc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return svc.Run(ctx)
}
