// Command importer runs the mcpgw importer: it serves rpc.importer.import,
// turning uploaded API descriptions, or ones it fetches from a URL an
// operator named, into proposed source versions on CONTROL. Flags fall back to MCPGW_* environment variables (libs/flagenv);
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
	"github.com/mcpgw/mcpgw/services/importer/internal/fetch"
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
	fs.Int64Var(&cfg.Fetch.MaxBytes, "fetch-max-bytes", 0, "largest description fetched from a URL, in bytes; 0 takes -max-document-bytes")
	fs.DurationVar(&cfg.Fetch.Timeout, "fetch-timeout", fetch.DefaultTimeout, "bound on fetching a description from a URL, redirects included")
	fs.IntVar(&cfg.Fetch.MaxRedirects, "fetch-max-redirects", fetch.DefaultMaxRedirects, "same-host redirects followed when fetching from a URL; 0 takes the default, -1 follows none")
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
