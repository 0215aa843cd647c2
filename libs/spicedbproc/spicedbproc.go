// Package spicedbproc runs the pinned spicedb binary as a child process on
// 127.0.0.1: `spicedb serve --datastore-engine memory` for the local stack,
// with its preshared key passed through the environment, or
// `spicedb serve-testing` for tests, which keeps an isolated datastore per
// bearer token. Only the gRPC API listens; the read-only, HTTP, metrics and
// dispatch listeners are off, and so are telemetry and the release check, so
// spicedb opens no connection beyond 127.0.0.1. The local stack launcher and the
// test helpers in libs/testenv both start SpiceDB through this package.
package spicedbproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mcpgw/mcpgw/libs/proc"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// ErrNotInstalled is returned by Start when the spicedb binary is missing.
var ErrNotInstalled = errors.New("spicedb binary not found: run `make deps` (builds the pinned spicedb into .bin/)")

// Mode selects how spicedb runs.
type Mode int

const (
	// Memory runs `spicedb serve --datastore-engine memory`: one datastore,
	// lost on restart, guarded by the preshared key.
	Memory Mode = iota + 1
	// Testing runs `spicedb serve-testing`: every distinct bearer token gets
	// its own empty datastore, and any token is accepted.
	Testing
)

// String returns the spicedb subcommand the mode runs.
func (m Mode) String() string {
	switch m {
	case Memory:
		return "serve"
	case Testing:
		return "serve-testing"
	default:
		return "Mode(" + strconv.Itoa(int(m)) + ")"
	}
}

const (
	defaultStartTimeout = 60 * time.Second
	defaultStopTimeout  = 15 * time.Second
	pollInterval        = 100 * time.Millisecond
	logName             = "spicedb.log"
)

// Config describes one spicedb process.
type Config struct {
	// Binary is the spicedb executable (the repository's .bin/spicedb).
	// Required.
	Binary string
	// Dir is the working directory (created 0700); the process's output goes
	// to Dir/spicedb.log. Being spicedb's working directory, it also keeps
	// spicedb from loading a stray spicedb.env. Required.
	Dir string
	// Mode selects serve (memory datastore) or serve-testing. Required.
	Mode Mode
	// GRPCPort is the gRPC port on 127.0.0.1. Zero picks a free port (and
	// retries with another if it is taken before spicedb binds it).
	GRPCPort int
	// PresharedKey is the bearer token clients send. Required. In Memory
	// mode spicedb receives it through SPICEDB_GRPC_PRESHARED_KEY in its
	// environment, never as a flag; in Testing mode spicedb accepts any
	// token and the key only selects the datastore.
	PresharedKey secret.Value
	// StartTimeout bounds how long Start waits for spicedb to report
	// serving; zero means 60s. The context passed to Start can end the wait
	// sooner.
	StartTimeout time.Duration
	// StopTimeout bounds how long Stop waits after SIGTERM before it sends
	// SIGKILL; zero means 15s.
	StopTimeout time.Duration
	// Logger receives start and stop events; nil discards them.
	Logger *slog.Logger
}

// Process is a running spicedb. Its methods are safe for concurrent use.
type Process struct {
	addr  string
	key   secret.Value
	child *proc.Process
}

// Start starts spicedb and returns once its gRPC health service reports
// SERVING. On failure it stops the process it started and returns an error
// that includes the tail of spicedb's output.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	if cfg.Binary == "" {
		return nil, errors.New("spicedbproc: config Binary is required")
	}
	if cfg.Dir == "" {
		return nil, errors.New("spicedbproc: config Dir is required")
	}
	if cfg.Mode != Memory && cfg.Mode != Testing {
		return nil, fmt.Errorf("spicedbproc: invalid mode %v", cfg.Mode)
	}
	if cfg.PresharedKey.IsZero() {
		return nil, errors.New("spicedbproc: config PresharedKey is required")
	}
	if cfg.GRPCPort < 0 || cfg.GRPCPort > 65535 {
		return nil, fmt.Errorf("spicedbproc: invalid grpc port %d", cfg.GRPCPort)
	}
	if info, err := os.Stat(cfg.Binary); err != nil || info.IsDir() {
		return nil, fmt.Errorf("%w (%s)", ErrNotInstalled, cfg.Binary)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("spicedbproc: resolve dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spicedbproc: create dir: %w", err)
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
	logger := cfg.Logger.With("component", "spicedbproc")

	ctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	p, err := proc.TryPorts(cfg.GRPCPort, func(port int) (*Process, error) {
		return start(ctx, dir, port, cfg, logger)
	}, func(port int) {
		logger.Info("port taken before spicedb bound it, retrying", "port", port)
	})
	if err != nil {
		return nil, fmt.Errorf("spicedbproc: %w", err)
	}
	return p, nil
}

// args returns the command line. It holds no secret.
func args(mode Mode, addr string) []string {
	common := []string{
		"--grpc-addr=" + addr,
		"--grpc-enabled=true",
		"--http-enabled=false",
		"--log-format=json",
		"--log-level=info",
		// No connection leaves the machine: no release check.
		"--skip-release-check=true",
	}
	switch mode {
	case Testing:
		return append([]string{"serve-testing"}, append(common,
			"--readonly-grpc-enabled=false",
			"--readonly-http-enabled=false",
		)...)
	default:
		return append([]string{"serve"}, append(common,
			"--datastore-engine=memory",
			"--metrics-enabled=false",
			"--dispatch-cluster-enabled=false",
			// No telemetry reports either.
			"--telemetry-endpoint=",
		)...)
	}
}

// start makes one attempt on port. Its errors carry no package prefix.
func start(ctx context.Context, dir string, port int, cfg Config, logger *slog.Logger) (*Process, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Nothing of the parent's environment is inherited: neither its secrets
	// nor SPICEDB_* settings that would change how spicedb runs.
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
	if cfg.Mode == Memory {
		key := cfg.PresharedKey.Reveal()
		env = append(env, "SPICEDB_GRPC_PRESHARED_KEY="+string(key))
		clear(key)
	}
	child, err := proc.Start(proc.Spec{
		Name:        "spicedb",
		Path:        cfg.Binary,
		Args:        args(cfg.Mode, addr),
		Env:         env,
		Dir:         dir,
		LogFile:     filepath.Join(dir, logName),
		StopTimeout: cfg.StopTimeout,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	p := &Process{addr: addr, key: cfg.PresharedKey, child: child}
	logger.Info("spicedb started", "pid", p.PID(), "addr", addr, "mode", cfg.Mode.String())

	if err := p.waitReady(ctx); err != nil {
		_ = p.child.Stop()
		tail := p.LogTail()
		if strings.Contains(tail, "address already in use") {
			return nil, &proc.PortInUseError{Err: fmt.Errorf("port %d in use: %w\n%s", port, err, tail)}
		}
		return nil, fmt.Errorf("spicedb on %s not ready: %w\n%s", addr, err, tail)
	}
	logger.Info("spicedb ready", "pid", p.PID(), "addr", addr)
	return p, nil
}

func (p *Process) waitReady(ctx context.Context) error {
	conn, err := grpc.NewClient(p.addr, p.DialOptions()...)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	var lastErr error
	for {
		lastErr = check(ctx, health)
		if lastErr == nil {
			return nil
		}
		select {
		case <-p.child.Done():
			return fmt.Errorf("spicedb exited: %v", p.child.Err())
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), lastErr)
		case <-ticker.C:
		}
	}
}

func check(ctx context.Context, health healthpb.HealthClient) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health status %s", s)
	}
	return nil
}

// Addr returns the gRPC address, "127.0.0.1:<port>".
func (p *Process) Addr() string { return p.addr }

// PID returns spicedb's process ID.
func (p *Process) PID() int { return p.child.PID() }

// Done is closed when the process has exited, for whatever reason.
func (p *Process) Done() <-chan struct{} { return p.child.Done() }

// Err returns how the process exited; it is meaningful only after Done is
// closed.
func (p *Process) Err() error { return p.child.Err() }

// DialOptions returns the gRPC dial options for this loopback server:
// plaintext transport and the preshared key as bearer token.
func (p *Process) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer{key: p.key}),
	}
}

// bearer sends a preshared key as "authorization: Bearer <key>" over a
// plaintext connection, which this package only ever makes to 127.0.0.1.
type bearer struct{ key secret.Value }

// GetRequestMetadata returns the authorization header.
func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b.key.Reveal())}, nil
}

// RequireTransportSecurity returns false: the server is on loopback.
func (bearer) RequireTransportSecurity() bool { return false }

// Client returns a new client for the server, authenticated with the
// preshared key. The caller closes it.
func (p *Process) Client() (*authzed.Client, error) {
	c, err := authzed.NewClient(p.addr, p.DialOptions()...)
	if err != nil {
		return nil, fmt.Errorf("spicedbproc: new client: %w", err)
	}
	return c, nil
}

// LogTail returns the last few kilobytes of spicedb's output, for error
// messages. The output holds no key.
func (p *Process) LogTail() string { return p.child.LogTail() }

// Stop sends SIGTERM to the spicedb it started (by PID), waits for it to
// exit, and sends SIGKILL if it has not exited within the stop timeout. It
// is idempotent.
func (p *Process) Stop() error {
	if err := p.child.Stop(); err != nil {
		return fmt.Errorf("spicedbproc: %w", err)
	}
	return nil
}
