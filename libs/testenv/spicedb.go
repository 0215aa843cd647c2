package testenv

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/spicedbproc"
)

// SpiceDBServer is a real `spicedb serve-testing` started for one test. Its
// PresharedKey redacts itself when printed or logged.
type SpiceDBServer struct {
	// Addr is the gRPC address, "127.0.0.1:<port>".
	Addr string
	// Client is a ready client that sends PresharedKey as bearer token; it
	// is closed in t.Cleanup.
	Client *authzed.Client
	// PresharedKey is the bearer token of this server's datastore.
	// serve-testing accepts any token and gives each distinct token its own
	// empty datastore, so a client with another token sees nothing of this
	// one's.
	PresharedKey secret.Value

	proc *spicedbproc.Process
}

// SpiceDB starts the pinned spicedb binary (<root>/.bin/spicedb) with
// `serve-testing` on a random 127.0.0.1 port (read-only and HTTP listeners
// off) and returns once its health service reports SERVING. It is stopped
// (by the PID it was started with) in t.Cleanup. Its output goes to a file
// under t.TempDir(), whose tail is logged if the test fails. A missing
// binary fails the test, saying to run `make deps`.
func SpiceDB(t testing.TB) *SpiceDBServer {
	t.Helper()
	bin := Bin(t, "spicedb")
	key := secret.New([]byte("testkey-" + randomHex(t, 16)))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	proc, err := spicedbproc.Start(ctx, spicedbproc.Config{
		Binary:       bin,
		Dir:          filepath.Join(t.TempDir(), "spicedb"),
		Mode:         spicedbproc.Testing,
		PresharedKey: key,
	})
	if errors.Is(err, spicedbproc.ErrNotInstalled) {
		t.Fatalf("testenv: %v", err)
	}
	if err != nil {
		t.Fatalf("testenv: start spicedb: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: spicedb output:\n%s", proc.LogTail())
		}
		if err := proc.Stop(); err != nil {
			t.Errorf("testenv: stop spicedb: %v", err)
		}
	})
	client, err := proc.Client()
	if err != nil {
		t.Fatalf("testenv: spicedb client: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return &SpiceDBServer{Addr: proc.Addr(), Client: client, PresharedKey: key, proc: proc}
}

// DialOptions returns gRPC dial options for another connection to this
// server: plaintext (loopback) transport and PresharedKey as bearer token.
func (s *SpiceDBServer) DialOptions() []grpc.DialOption { return s.proc.DialOptions() }

// LogTail returns the tail of spicedb's output, for failure messages.
func (s *SpiceDBServer) LogTail() string { return s.proc.LogTail() }
