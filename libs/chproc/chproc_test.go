package chproc_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/mcpgw/mcpgw/libs/chproc"
	"github.com/mcpgw/mcpgw/libs/proc"
	"github.com/mcpgw/mcpgw/libs/proc/proctest"
	"github.com/mcpgw/mcpgw/libs/secret"
)

func start(t *testing.T, cfg chproc.Config) *chproc.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := chproc.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return p
}

func TestStartRestartKeepsData(t *testing.T) {
	dir := t.TempDir()
	password := secret.New([]byte("pw-" + strconv.FormatInt(time.Now().UnixNano(), 36)))
	cfg := chproc.Config{Dir: dir, Password: password}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p := start(t, cfg)
	conn, err := clickhouse.Open(p.Options("default"))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	for _, stmt := range []string{
		"CREATE DATABASE kept",
		"CREATE TABLE kept.t (id String) ENGINE = MergeTree() ORDER BY id",
	} {
		if err := conn.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO kept.t (id)")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	if err := batch.Append("row-1"); err != nil {
		t.Fatalf("append: %v", err)
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("send: %v", err)
	}
	_ = conn.Close()
	proctest.StopTwice(t, p)

	p2 := start(t, cfg)
	conn2, err := clickhouse.Open(p2.Options("kept"))
	if err != nil {
		t.Fatalf("open after restart: %v", err)
	}
	defer conn2.Close()
	var id string
	if err := conn2.QueryRow(ctx, "SELECT id FROM t").Scan(&id); err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	if id != "row-1" {
		t.Errorf("id = %q, want row-1", id)
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	p := start(t, chproc.Config{Dir: t.TempDir(), Password: secret.New([]byte("right"))})
	opts := p.Options("default")
	opts.Auth.Password = "wrong"
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err == nil {
		t.Fatal("ping with a wrong password succeeded")
	}
}

func TestConfigHoldsNoPasswordAndIsPrivate(t *testing.T) {
	dir := t.TempDir()
	pw := "canary-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	p := start(t, chproc.Config{Dir: dir, Password: secret.New([]byte(pw))})
	canaries := []string{pw, hex.EncodeToString([]byte(pw))}

	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, c := range canaries {
			if strings.Contains(string(data), c) {
				t.Errorf("%s contains the password", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	for _, name := range []string{"config.xml", "users.xml"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("stat %s: %v", name, err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s mode = %#o, want 0600", name, perm)
		}
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID()))
	if err == nil && strings.Contains(string(cmdline), pw) {
		t.Error("password on the server's command line")
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.PID()))
	if err == nil && strings.Contains(string(environ), pw) {
		t.Error("password in the server's environment")
	}
}

func TestListensOnlyOnLoopbackTCPPort(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("this test reads /proc and needs linux, not %s", runtime.GOOS)
	}
	p := start(t, chproc.Config{Dir: t.TempDir(), Password: secret.New([]byte("pw"))})
	listeners := proctest.ListeningSockets(t, p.PID())
	if len(listeners) != 1 || listeners[0] != p.Addr() {
		t.Errorf("server listens on %v, want only [%s]", listeners, p.Addr())
	}
}

func TestFixedPort(t *testing.T) {
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, chproc.Config{Dir: t.TempDir(), Password: secret.New([]byte("pw")), TCPPort: port})
	if want := "127.0.0.1:" + strconv.Itoa(port); p.Addr() != want {
		t.Errorf("Addr = %q, want %q", p.Addr(), want)
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  chproc.Config
		is   error
	}{
		{name: "no dir", cfg: chproc.Config{Password: secret.New([]byte("pw"))}},
		{name: "no password", cfg: chproc.Config{Dir: t.TempDir()}},
		{name: "bad port", cfg: chproc.Config{Dir: t.TempDir(), Password: secret.New([]byte("pw")), TCPPort: 70000}},
		{
			name: "missing binary",
			cfg:  chproc.Config{Dir: t.TempDir(), Password: secret.New([]byte("pw")), Binary: "/nonexistent/clickhouse-server"},
			is:   chproc.ErrNotInstalled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := chproc.Start(context.Background(), tt.cfg)
			proctest.StartFailed(t, p, err, tt.is)
			if tt.is == chproc.ErrNotInstalled && !strings.Contains(err.Error(), "make deps") {
				t.Errorf("error %q does not say how to install", err)
			}
		})
	}
}
