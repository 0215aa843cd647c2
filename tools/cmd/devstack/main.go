// Command devstack is `make run`: it starts the whole mcpgw system on this
// machine with its state under ./.mcpgw/, prints the MCP URL and the demo
// agent key, and stops everything on Ctrl-C.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/tools/devstack"
)

func main() {
	edge := flag.String("edge-addr", "127.0.0.1:8080", "edge listen address (loopback)")
	state := flag.String("state-dir", "", "state directory (default <repo>/.mcpgw)")
	env := flag.String("environment", "dev", "the gateway's deployment environment")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	wd, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	root, err := testenv.FindRoot(wd)
	if err != nil {
		fail(fmt.Errorf("run devstack from inside the repository: %w", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := devstack.Start(ctx, devstack.Config{Root: root, StateDir: *state, EdgeAddr: *edge, Environment: *env, Logger: log})
	if err != nil {
		fail(err)
	}
	fmt.Print(s.Banner())
	select {
	case <-ctx.Done():
		fmt.Println("\nstopping…")
	case name := <-s.Exited():
		log.Error("a service exited", "service", name, "log", s.LogDir()+"/"+name+".log")
		fmt.Fprintln(os.Stderr, s.LogTail(name, 4000))
		s.Stop()
		os.Exit(1)
	}
	s.Stop()
	fmt.Println("stopped; state kept in", s.StateDir())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "devstack:", err)
	os.Exit(1)
}
