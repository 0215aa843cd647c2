// Package proc supervises one child process started by a test helper or the
// local stack launcher: it starts the child with its output appended to a log
// file, reports when and how the child exited, stops it by PID (SIGTERM, then
// SIGKILL after a timeout) and reads the tail of its logs for error messages.
// On Linux the kernel kills the child if the thread that started it dies, so
// no child outlives a crashed test or launcher.
//
// The child inherits nothing of the parent's environment. Secrets must reach
// it through Spec.Env or a file, never through Spec.Args: command lines are
// readable by every local user.
//
// TryPorts and FreePort serve children that listen on a loopback port picked
// at start: they retry with another port when one is taken between the pick
// and the child's bind.
package proc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM before it sends
// SIGKILL when Spec.StopTimeout is zero.
const DefaultStopTimeout = 10 * time.Second

// tailBytes is how much of each log TailLogs returns.
const tailBytes = 4096

// Spec describes one child process.
type Spec struct {
	// Name names the child in log messages, e.g. "spicedb". Required.
	Name string
	// Path is the executable. Required.
	Path string
	// Args are the arguments after the program name. They must hold no
	// secret.
	Args []string
	// Env is the child's whole environment; nil means an empty one. Nothing
	// of the parent's environment is inherited.
	Env []string
	// Dir is the child's working directory, which must exist. Required.
	Dir string
	// LogFile receives the child's standard output and error, appended; it
	// is created 0600 if missing. Required.
	LogFile string
	// StopTimeout bounds how long Stop waits after SIGTERM before it sends
	// SIGKILL; zero means DefaultStopTimeout.
	StopTimeout time.Duration
	// Logger receives stop events; nil discards them. Callers add their own
	// component attribute.
	Logger *slog.Logger
}

// Process is a running child. Its methods are safe for concurrent use.
type Process struct {
	name     string
	logFile  string
	cmd      *exec.Cmd
	logger   *slog.Logger
	stopWait time.Duration

	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// Start starts the child described by spec and returns without waiting for
// it to become ready. The child runs until it exits or Stop ends it; errors
// carry no package prefix, so callers add their own.
func Start(spec Spec) (*Process, error) {
	switch {
	case spec.Name == "":
		return nil, errors.New("spec Name is required")
	case spec.Path == "":
		return nil, errors.New("spec Path is required")
	case spec.Dir == "":
		return nil, errors.New("spec Dir is required")
	case spec.LogFile == "":
		return nil, errors.New("spec LogFile is required")
	}
	if spec.StopTimeout <= 0 {
		spec.StopTimeout = DefaultStopTimeout
	}
	if spec.Logger == nil {
		spec.Logger = slog.New(slog.DiscardHandler)
	}
	out, err := os.OpenFile(spec.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open output log: %w", err)
	}
	// The child holds its own copy of the descriptor once it has started.
	defer out.Close()

	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	// A non-nil Env, even an empty one, keeps exec from passing on the
	// parent's environment.
	cmd.Env = append([]string{}, spec.Env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Path, err)
	}
	p := &Process{
		name:     spec.Name,
		logFile:  spec.LogFile,
		cmd:      cmd,
		logger:   spec.Logger,
		stopWait: spec.StopTimeout,
		done:     make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// PID returns the child's process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed when the child has exited, for whatever reason.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns how the child exited (nil for a zero exit status); it is nil
// until Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// LogTail returns the tail of the child's log file as TailLogs formats it.
func (p *Process) LogTail() string { return TailLogs(p.logFile) }

// Stop sends SIGTERM to the child (by PID), waits for it to exit, and sends
// SIGKILL if it has not exited within the stop timeout. It returns once the
// child has exited. It is idempotent: later and concurrent calls wait for
// the first and return its result. It returns nil when the child had
// already exited or ended because of the stop.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			p.stopErr = fmt.Errorf("signal pid %d: %w", p.PID(), err)
		}
		timer := time.NewTimer(p.stopWait)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			p.logger.Warn(p.name+" did not stop in time, killing", "pid", p.PID())
			if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				p.stopErr = fmt.Errorf("kill pid %d: %w", p.PID(), err)
				return
			}
			<-p.done
		}
		p.logger.Info(p.name+" stopped", "pid", p.PID())
	})
	return p.stopErr
}

// TailLogs returns the last 4 KiB of each of the files at paths, each under
// a "--- <path> (tail) ---" line, for error messages. Files that are missing
// or hold only white space are left out; with none left it returns "".
func TailLogs(paths ...string) string {
	var b bytes.Buffer
	for _, path := range paths {
		data, err := tailFile(path, tailBytes)
		if err != nil || len(bytes.TrimSpace(data)) == 0 {
			continue
		}
		fmt.Fprintf(&b, "--- %s (tail) ---\n%s\n", path, data)
	}
	return b.String()
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
