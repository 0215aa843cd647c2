// Command audit runs the mcpgw audit service: it writes the AUDIT and
// CONTROL streams into ClickHouse and answers rpc.audit.query.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgw/mcpgw/services/audit/internal/service"
)

func main() { os.Exit(run()) }

func run() int {
	cfg, err := parseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit:", err)
		return 2
	}
	log := cfg.Logger
	svc, err := service.New(cfg)
	if err != nil {
		log.Error("audit service failed to start", "err", err)
		return 1
	}
	defer svc.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := svc.Run(ctx); err != nil {
		log.Error("audit service stopped", "err", err)
		return 1
	}
	log.Info("audit service stopped")
	return 0
}
