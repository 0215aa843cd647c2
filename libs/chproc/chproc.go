// Package chproc runs a private clickhouse-server process (Debian's 18.16 or
// later) with its own configuration, data, tmp and log directories under one
// state directory that survives restarts. The server listens on 127.0.0.1
// only, speaks only the native protocol (no HTTP or interserver ports), and
// has one user, "default", whose password is stored in the configuration only
// as a SHA-256 hash. The local stack launcher and the test helpers in
// libs/testenv both start ClickHouse through this package.
package chproc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/mcpgw/mcpgw/libs/proc"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// ErrNotInstalled is returned by Start when no clickhouse-server binary is
// found.
var ErrNotInstalled = errors.New("clickhouse-server not found: run `make deps` (installs Debian's clickhouse-server)")

// User is the only ClickHouse user the server knows.
const User = "default"

const (
	defaultStartTimeout = 60 * time.Second
	defaultStopTimeout  = 30 * time.Second
	pollInterval        = 100 * time.Millisecond
)

// searchPaths are tried after $PATH: Debian installs the server under
// /usr/sbin, which is not on every user's $PATH.
var searchPaths = []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"}

// Config describes one server.
type Config struct {
	// Dir is the state directory. Start creates it (0700) and, beneath it,
	// config.xml and users.xml (0600, rewritten on every start), data/,
	// tmp/ and log/. Data in data/ survives restarts. Required.
	Dir string
	// TCPPort is the native protocol port on 127.0.0.1. Zero picks a free
	// port (and retries with another if it is taken before the server binds
	// it).
	TCPPort int
	// Password is the password of user "default". Required. Only its
	// SHA-256 hash is written to disk.
	Password secret.Value
	// Binary is the clickhouse-server executable. Empty looks it up on $PATH
	// and then under /usr/sbin and /usr/bin.
	Binary string
	// StartTimeout bounds how long Start waits for the server to answer
	// SELECT 1; zero means 60s. The context passed to Start can end the wait
	// sooner.
	StartTimeout time.Duration
	// StopTimeout bounds how long Stop waits after SIGTERM before it sends
	// SIGKILL; zero means 30s.
	StopTimeout time.Duration
	// Logger receives start and stop events; nil discards them.
	Logger *slog.Logger
}

// Process is a running clickhouse-server. Its methods are safe for
// concurrent use.
type Process struct {
	addr     string
	password secret.Value
	dir      string
	child    *proc.Process
}

// Start writes the configuration, starts clickhouse-server and returns once
// a native-protocol connection answers SELECT 1. On failure it stops the
// process it started and returns an error that includes the tail of the
// server's logs.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	if cfg.Dir == "" {
		return nil, errors.New("chproc: config Dir is required")
	}
	if cfg.Password.IsZero() {
		return nil, errors.New("chproc: config Password is required")
	}
	if cfg.TCPPort < 0 || cfg.TCPPort > 65535 {
		return nil, fmt.Errorf("chproc: invalid tcp port %d", cfg.TCPPort)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("chproc: resolve dir: %w", err)
	}
	bin, err := findBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = defaultStartTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = defaultStopTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	logger := cfg.Logger.With("component", "chproc")
	for _, sub := range []string{"", "data", "tmp", "log", "data/user_files", "data/format_schemas"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("chproc: create dir: %w", err)
		}
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	p, err := proc.TryPorts(cfg.TCPPort, func(port int) (*Process, error) {
		return start(ctx, bin, dir, port, cfg, logger)
	}, func(port int) {
		logger.Info("port taken before the server bound it, retrying", "port", port)
	})
	if err != nil {
		return nil, fmt.Errorf("chproc: %w", err)
	}
	return p, nil
}

// start makes one attempt on port. Its errors carry no package prefix.
func start(ctx context.Context, bin, dir string, port int, cfg Config, logger *slog.Logger) (*Process, error) {
	if err := writeConfig(dir, port, cfg.Password); err != nil {
		return nil, err
	}
	child, err := proc.Start(proc.Spec{
		Name: "clickhouse-server",
		Path: bin,
		Args: []string{"--config-file=" + filepath.Join(dir, "config.xml")},
		// The server gets no inherited environment: nothing of the parent's
		// (which may hold other services' secrets) reaches it.
		Env:         []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC"},
		Dir:         dir,
		LogFile:     filepath.Join(dir, "log", "stdout.log"),
		StopTimeout: cfg.StopTimeout,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	p := &Process{
		addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		password: cfg.Password,
		dir:      dir,
		child:    child,
	}
	logger.Info("clickhouse-server started", "pid", p.PID(), "addr", p.addr, "dir", dir)

	if err := p.waitReady(ctx); err != nil {
		_ = p.child.Stop()
		tail := p.LogTail()
		if strings.Contains(tail, "Address already in use") {
			return nil, &proc.PortInUseError{Err: fmt.Errorf("port %d in use: %w\n%s", port, err, tail)}
		}
		return nil, fmt.Errorf("clickhouse-server on %s not ready: %w\n%s", p.addr, err, tail)
	}
	logger.Info("clickhouse-server ready", "pid", p.PID(), "addr", p.addr)
	return p, nil
}

func (p *Process) waitReady(ctx context.Context) error {
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		if lastErr = p.ping(ctx); lastErr == nil {
			return nil
		}
		select {
		case <-p.child.Done():
			return fmt.Errorf("server exited: %v", p.child.Err())
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), lastErr)
		case <-ticker.C:
		}
	}
}

func (p *Process) ping(ctx context.Context) error {
	opts := p.Options("default")
	opts.DialTimeout = time.Second
	opts.MaxOpenConns = 1
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var one uint8
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// Addr returns the native protocol address, "127.0.0.1:<port>".
func (p *Process) Addr() string { return p.addr }

// PID returns the server's process ID.
func (p *Process) PID() int { return p.child.PID() }

// Dir returns the absolute state directory.
func (p *Process) Dir() string { return p.dir }

// Done is closed when the server process has exited, for whatever reason.
func (p *Process) Done() <-chan struct{} { return p.child.Done() }

// Err returns how the process exited; it is meaningful only after Done is
// closed.
func (p *Process) Err() error { return p.child.Err() }

// Options returns fresh client options for the native protocol that connect
// to database as user "default". The caller may change the copy it gets.
func (p *Process) Options(database string) *clickhouse.Options {
	return &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     []string{p.addr},
		Auth: clickhouse.Auth{
			Database: database,
			Username: User,
			Password: string(p.password.Reveal()),
		},
		DialTimeout: 5 * time.Second,
	}
}

// LogTail returns the last few kilobytes of the server's output and error
// logs, for error messages. The logs hold no password.
func (p *Process) LogTail() string {
	return proc.TailLogs(filepath.Join(p.dir, "log", "stdout.log"), filepath.Join(p.dir, "log", "error.log"))
}

// Stop sends SIGTERM to the server it started (by PID), waits for it to
// exit, and sends SIGKILL if it has not exited within the stop timeout. It
// is idempotent and returns nil when the process ended because of the stop.
func (p *Process) Stop() error {
	if err := p.child.Stop(); err != nil {
		return fmt.Errorf("chproc: %w", err)
	}
	return nil
}

func findBinary(bin string) (string, error) {
	if bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("%w (%s: %v)", ErrNotInstalled, bin, err)
		}
		return bin, nil
	}
	if path, err := exec.LookPath("clickhouse-server"); err == nil {
		return path, nil
	}
	for _, path := range searchPaths {
		if info, err := os.Stat(path); err == nil && !info.IsDir() {
			return path, nil
		}
	}
	return "", ErrNotInstalled
}

// passwordHash returns the hex SHA-256 of the password, the form
// password_sha256_hex takes, so the password itself is never written.
func passwordHash(p secret.Value) string {
	b := p.Reveal()
	defer clear(b)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
