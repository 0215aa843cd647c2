package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/mcpgw/mcpgw/libs/chproc"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// ClickHouseServer is a private clickhouse-server started for one test, with
// a fresh database. Its Password redacts itself when printed or logged.
type ClickHouseServer struct {
	// Addr is the native protocol address, "127.0.0.1:<port>".
	Addr string
	// Database is a database created for this call, empty at start.
	Database string
	// Password is the generated password of user "default".
	Password secret.Value

	proc *chproc.Process
}

// ClickHouse starts a private clickhouse-server (Debian's 18.16) with its
// state under t.TempDir(), listening only on a random 127.0.0.1 port with
// the native protocol, creates a fresh database and returns once a
// clickhouse-go connection answers SELECT 1. The server is stopped (by the
// PID it was started with) in t.Cleanup. A missing binary fails the test
// with the command that installs it.
//
// ClickHouse 18.16 speaks only the native protocol with clickhouse-go;
// insert with PrepareBatch naming the columns (Exec of INSERT … VALUES
// hangs), and keep to String, UInt*, Date and DateTime.
func ClickHouse(t testing.TB) *ClickHouseServer {
	t.Helper()
	password := secret.New([]byte(randomHex(t, 24)))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	proc, err := chproc.Start(ctx, chproc.Config{
		Dir:      filepath.Join(t.TempDir(), "clickhouse"),
		Password: password,
	})
	if errors.Is(err, chproc.ErrNotInstalled) {
		t.Fatalf("testenv: %v", err)
	}
	if err != nil {
		t.Fatalf("testenv: start clickhouse: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: clickhouse-server logs:\n%s", proc.LogTail())
		}
		if err := proc.Stop(); err != nil {
			t.Errorf("testenv: stop clickhouse: %v", err)
		}
	})

	s := &ClickHouseServer{
		Addr:     proc.Addr(),
		Database: "test_" + randomHex(t, 8),
		Password: password,
		proc:     proc,
	}
	conn, err := clickhouse.Open(proc.Options("default"))
	if err != nil {
		t.Fatalf("testenv: connect to clickhouse: %v", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE "+s.Database); err != nil {
		t.Fatalf("testenv: create database %s: %v\n%s", s.Database, err, proc.LogTail())
	}
	return s
}

// Options returns fresh native-protocol client options for s.Database as
// user "default".
func (s *ClickHouseServer) Options() *clickhouse.Options {
	return s.proc.Options(s.Database)
}

// Conn returns a connection pool to s.Database that has answered a ping; it
// is closed in t.Cleanup.
func (s *ClickHouseServer) Conn(t testing.TB) driver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(s.Options())
	if err != nil {
		t.Fatalf("testenv: connect to clickhouse: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("testenv: ping clickhouse: %v\n%s", err, s.proc.LogTail())
	}
	return conn
}

// LogTail returns the tail of the server's logs, for failure messages.
func (s *ClickHouseServer) LogTail() string { return s.proc.LogTail() }

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testenv: random: %v", err)
	}
	return hex.EncodeToString(b)
}
