// Command demoapi serves the demo messages API (package demoapi) on a
// loopback address. The API key is read from a 0600 file, never from a flag.
//
//	demoapi -key-file .mcpgw/demoapi.key [-addr 127.0.0.1:8090] [-allow-remote]
//	demoapi -openapi-out FILE [-addr 127.0.0.1:8090]
//
// With -openapi-out it writes the OpenAPI description (server
// http://<addr>) to FILE, or to standard output for "-", and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/tools/demoapi"
)

// shutdownTimeout bounds how long in-flight requests may take after a signal.
const shutdownTimeout = 10 * time.Second

func main() {
	base := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(base, os.Args[1:]); err != nil {
		base.Error("demoapi stopped", slog.String("component", "demoapi"), slog.String("error", err.Error()))
		os.Exit(1)
	}
}

// run parses args, then serves until a signal arrives or the server fails.
func run(base *slog.Logger, args []string) error {
	log := base.With(slog.String("component", "demoapi"))
	fs := flag.NewFlagSet("demoapi", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address (host:port); loopback only unless -allow-remote")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback listen address")
	keyFile := fs.String("key-file", "", "path to a 0600 file holding the API key")
	openAPIOut := fs.String("openapi-out", "", `write the OpenAPI description to this file ("-" for standard output) and exit`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	if *openAPIOut != "" {
		return writeOpenAPI(*openAPIOut, "http://"+*addr)
	}

	if err := demoapi.CheckListenAddr(*addr, *allowRemote); err != nil {
		if errors.Is(err, demoapi.ErrNotLoopback) {
			return fmt.Errorf("%w (pass -allow-remote to listen on it)", err)
		}
		return err
	}
	if *keyFile == "" {
		return errors.New("-key-file is required")
	}
	key, err := demoapi.ReadKeyFile(*keyFile)
	if err != nil {
		return err
	}
	api, err := demoapi.New(demoapi.Config{APIKey: key, Logger: base})
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", slog.String("addr", ln.Addr().String()))

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// writeOpenAPI writes the description with serverURL to path, or to
// standard output when path is "-".
func writeOpenAPI(path, serverURL string) error {
	doc := demoapi.OpenAPI(serverURL)
	if path == "-" {
		_, err := os.Stdout.Write(doc)
		return err
	}
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		return fmt.Errorf("write openapi: %w", err)
	}
	return nil
}
