package proc_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/proc"
)

// childEnv selects what the test binary does when it runs as a child.
const childEnv = "PROC_TEST_CHILD"

// TestMain lets the test binary serve as the child process: with childEnv set
// it runs that behaviour instead of the tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	switch mode {
	case "sleep":
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ready")
		time.Sleep(time.Hour)
	case "chatty":
		// More than the tail holds: LogTail must return only the end.
		fmt.Println("first-line")
		fmt.Println(strings.Repeat("x", 10_000))
		fmt.Fprintln(os.Stderr, "last-line on stderr")
	case "env":
		fmt.Println(strings.Join(os.Environ(), "\n"))
	case "fail":
		return 3
	}
	return 0
}

// spawn starts the test binary as a child in mode and stops it when the test
// ends.
func spawn(t *testing.T, mode string, edit func(*proc.Spec)) *proc.Process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := proc.Spec{
		Name:    "testchild",
		Path:    self,
		Env:     []string{childEnv + "=" + mode},
		Dir:     dir,
		LogFile: filepath.Join(dir, "child.log"),
	}
	if edit != nil {
		edit(&spec)
	}
	p, err := proc.Start(spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop in cleanup: %v", err)
		}
	})
	return p
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exited(t *testing.T, p *proc.Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("child did not exit")
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name        string
		mode        string
		stopTimeout time.Duration
		wantSignal  syscall.Signal
		wantWarning bool
	}{
		{name: "term", mode: "sleep", stopTimeout: time.Minute, wantSignal: syscall.SIGTERM},
		{name: "kill after timeout", mode: "ignore-term", stopTimeout: 100 * time.Millisecond, wantSignal: syscall.SIGKILL, wantWarning: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			p := spawn(t, tt.mode, func(s *proc.Spec) {
				s.StopTimeout = tt.stopTimeout
				s.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			// The child must have set up its signal handling first.
			waitFor(t, "the child to start", func() bool { return strings.Contains(p.LogTail(), "ready") })
			if err := p.Err(); err != nil {
				t.Errorf("Err before exit = %v, want nil", err)
			}

			// Concurrent calls all wait for the one stop and share its result.
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i := range errs {
				wg.Go(func() { errs[i] = p.Stop() })
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("stop %d: %v", i, err)
				}
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("Done open after Stop returned")
			}
			var exitErr *exec.ExitError
			if !errors.As(p.Err(), &exitErr) {
				t.Fatalf("Err = %v, want an exit error", p.Err())
			}
			ws, ok := exitErr.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != tt.wantSignal {
				t.Errorf("child ended with %v, want signal %v", p.Err(), tt.wantSignal)
			}
			if got := strings.Contains(logs.String(), "testchild did not stop in time, killing"); got != tt.wantWarning {
				t.Errorf("kill warning logged = %t, want %t; logs:\n%s", got, tt.wantWarning, logs.String())
			}
			if !strings.Contains(logs.String(), "testchild stopped") {
				t.Errorf("no stop event logged:\n%s", logs.String())
			}
			if err := p.Stop(); err != nil {
				t.Errorf("stop after exit: %v", err)
			}
		})
	}
}

func TestStopAfterExit(t *testing.T) {
	var logs bytes.Buffer
	p := spawn(t, "fail", func(s *proc.Spec) { s.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	exited(t, p)
	var exitErr *exec.ExitError
	if !errors.As(p.Err(), &exitErr) || exitErr.ExitCode() != 3 {
		t.Errorf("Err = %v, want exit status 3", p.Err())
	}
	if err := p.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("stop of an exited child logged:\n%s", logs.String())
	}
}

func TestLogTail(t *testing.T) {
	p := spawn(t, "chatty", nil)
	exited(t, p)
	if err := p.Err(); err != nil {
		t.Fatalf("child failed: %v", err)
	}
	tail := p.LogTail()
	header, body, ok := strings.Cut(tail, "\n")
	if !ok || !strings.HasPrefix(header, "--- ") || !strings.HasSuffix(header, "child.log (tail) ---") {
		t.Fatalf("tail header %q", header)
	}
	if !strings.Contains(body, "last-line on stderr") {
		t.Error("tail lacks the end of stderr")
	}
	if strings.Contains(body, "first-line") {
		t.Error("tail holds the start of a log longer than the tail")
	}
	if len(body) > 4096+1 {
		t.Errorf("tail body is %d bytes, want at most 4 KiB", len(body))
	}
}

func TestTailLogs(t *testing.T) {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.log")
	full := filepath.Join(dir, "full.log")
	if err := os.WriteFile(blank, []byte(" \n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		paths []string
		want  string
	}{
		{name: "none", want: ""},
		{name: "missing and blank", paths: []string{filepath.Join(dir, "missing.log"), blank}, want: ""},
		{name: "one with text", paths: []string{blank, full}, want: "--- " + full + " (tail) ---\nhello\n\n"},
		{name: "twice", paths: []string{full, full}, want: strings.Repeat("--- "+full+" (tail) ---\nhello\n\n", 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proc.TailLogs(tt.paths...); got != tt.want {
				t.Errorf("TailLogs = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvironmentNotInherited(t *testing.T) {
	t.Setenv("PROC_TEST_PARENT_SECRET", "canary")
	p := spawn(t, "env", func(s *proc.Spec) { s.Env = append(s.Env, "GIVEN=yes") })
	exited(t, p)
	logged := p.LogTail()
	if strings.Contains(logged, "canary") {
		t.Error("the parent's environment reached the child")
	}
	if !strings.Contains(logged, "GIVEN=yes") {
		t.Errorf("the child lacks Spec.Env:\n%s", logged)
	}
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	valid := proc.Spec{Name: "x", Path: self, Dir: dir, LogFile: filepath.Join(dir, "x.log")}
	tests := []struct {
		name string
		edit func(*proc.Spec)
		want string
	}{
		{name: "no name", edit: func(s *proc.Spec) { s.Name = "" }, want: "Name is required"},
		{name: "no path", edit: func(s *proc.Spec) { s.Path = "" }, want: "Path is required"},
		{name: "no dir", edit: func(s *proc.Spec) { s.Dir = "" }, want: "Dir is required"},
		{name: "no log file", edit: func(s *proc.Spec) { s.LogFile = "" }, want: "LogFile is required"},
		{name: "log dir missing", edit: func(s *proc.Spec) { s.LogFile = filepath.Join(dir, "no", "x.log") }, want: "open output log"},
		{name: "binary missing", edit: func(s *proc.Spec) { s.Path = filepath.Join(dir, "nonexistent") }, want: "start " + filepath.Join(dir, "nonexistent")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := valid
			tt.edit(&spec)
			p, err := proc.Start(spec)
			if err == nil {
				_ = p.Stop()
				t.Fatal("Start succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}
