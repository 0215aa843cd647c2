// Package chproc runs a private clickhouse-server process (Debian's 18.16 or
// later) with its own configuration, data, tmp and log directories under one
// state directory that survives restarts. The server listens on 127.0.0.1
// only, speaks only the native protocol (no HTTP or interserver ports), and
// has one user, "default", whose password is stored in the configuration only
// as a SHA-256 hash. The local stack launcher and the test helpers in
// libs/testenv both start ClickHouse through this package.
package chproc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

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
	maxPortAttempts     = 5
	tailBytes           = 4096
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
	cmd      *exec.Cmd
	logger   *slog.Logger
	stopWait time.Duration

	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
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
	for attempt := 1; ; attempt++ {
		port := cfg.TCPPort
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		p, err := start(ctx, bin, dir, port, cfg, logger)
		if err == nil {
			return p, nil
		}
		var inUse *portInUseError
		if cfg.TCPPort == 0 && errors.As(err, &inUse) && attempt < maxPortAttempts {
			logger.Info("port taken before the server bound it, retrying", "port", port)
			continue
		}
		return nil, err
	}
}

// portInUseError reports that the server exited because its port was taken.
type portInUseError struct{ err error }

func (e *portInUseError) Error() string { return e.err.Error() }
func (e *portInUseError) Unwrap() error { return e.err }

func start(ctx context.Context, bin, dir string, port int, cfg Config, logger *slog.Logger) (*Process, error) {
	if err := writeConfig(dir, port, cfg.Password); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(filepath.Join(dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("chproc: open output log: %w", err)
	}
	defer out.Close()

	cmd := exec.Command(bin, "--config-file="+filepath.Join(dir, "config.xml"))
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	// The server gets no inherited environment: nothing of the parent's
	// (which may hold other services' secrets) reaches it.
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TZ=UTC"}
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("chproc: start %s: %w", bin, err)
	}
	p := &Process{
		addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		password: cfg.Password,
		dir:      dir,
		cmd:      cmd,
		logger:   logger,
		stopWait: cfg.StopTimeout,
		done:     make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	logger.Info("clickhouse-server started", "pid", cmd.Process.Pid, "addr", p.addr, "dir", dir)

	if err := p.waitReady(ctx); err != nil {
		_ = p.Stop()
		tail := p.LogTail()
		if strings.Contains(tail, "Address already in use") {
			return nil, &portInUseError{err: fmt.Errorf("chproc: port %d in use: %w\n%s", port, err, tail)}
		}
		return nil, fmt.Errorf("chproc: clickhouse-server on %s not ready: %w\n%s", p.addr, err, tail)
	}
	logger.Info("clickhouse-server ready", "pid", cmd.Process.Pid, "addr", p.addr)
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
		case <-p.done:
			return fmt.Errorf("server exited: %v", p.waitErr)
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
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Dir returns the absolute state directory.
func (p *Process) Dir() string { return p.dir }

// Done is closed when the server process has exited, for whatever reason.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the process exited; it is meaningful only after Done is
// closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

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
	var b strings.Builder
	for _, name := range []string{"stdout.log", "error.log"} {
		path := filepath.Join(p.dir, "log", name)
		data, err := tailFile(path, tailBytes)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- %s (tail) ---\n%s\n", path, data)
	}
	return b.String()
}

// Stop sends SIGTERM to the server it started (by PID), waits for it to
// exit, and sends SIGKILL if it has not exited within the stop timeout. It
// is idempotent and returns nil when the process ended because of the stop.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("chproc: signal pid %d: %w", p.PID(), err)
		}
		timer := time.NewTimer(p.stopWait)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			p.logger.Warn("clickhouse-server did not stop in time, killing", "pid", p.PID())
			if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				p.stopErr = fmt.Errorf("chproc: kill pid %d: %w", p.PID(), err)
				return
			}
			<-p.done
		}
		p.logger.Info("clickhouse-server stopped", "pid", p.PID())
	})
	return p.stopErr
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("chproc: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tailFile(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	off := max(info.Size()-n, 0)
	buf := make([]byte, info.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf, nil
}

// passwordHash returns the hex SHA-256 of the password, the form
// password_sha256_hex takes, so the password itself is never written.
func passwordHash(p secret.Value) string {
	b := p.Reveal()
	defer clear(b)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
