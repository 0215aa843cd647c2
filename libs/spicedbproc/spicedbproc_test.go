package spicedbproc_test

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

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"
	"github.com/authzed/authzed-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/mcpgw/mcpgw/libs/proc"
	"github.com/mcpgw/mcpgw/libs/proc/proctest"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/spicedbproc"
)

// binary returns <repo>/.bin/spicedb, built by `make deps`.
func binary(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.work above the working directory")
		}
		dir = parent
	}
	bin := filepath.Join(dir, ".bin", "spicedb")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make deps`", bin)
	}
	return bin
}

func start(t *testing.T, cfg spicedbproc.Config) *spicedbproc.Process {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := spicedbproc.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("spicedb output:\n%s", p.LogTail())
		}
		if err := p.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return p
}

func newKey() (string, secret.Value) {
	k := "canary-key-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	return k, secret.New([]byte(k))
}

func TestMemoryModeRequiresKey(t *testing.T) {
	raw, key := newKey()
	dir := t.TempDir()
	p := start(t, spicedbproc.Config{Binary: binary(t), Dir: dir, Mode: spicedbproc.Memory, PresharedKey: key})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	client, err := p.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	schema := "definition user {}\ndefinition doc {\n    relation viewer: user\n}"
	if _, err := client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: schema}); err != nil {
		t.Fatalf("write schema with the key: %v", err)
	}

	tests := []struct {
		name string
		opts []grpc.DialOption
		want codes.Code
	}{
		{name: "wrong key", opts: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer("wrong"))}, want: codes.PermissionDenied},
		{name: "no key", opts: []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, want: codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := authzed.NewClient(p.Addr(), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.ReadSchema(ctx, &v1.ReadSchemaRequest{})
			if status.Code(err) != tt.want {
				t.Errorf("read schema: got %v, want %s", err, tt.want)
			}
		})
	}

	// The key reaches spicedb only through its environment.
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID())); err == nil && strings.Contains(string(cmdline), raw) {
		t.Error("key on spicedb's command line")
	}
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(data), raw) || strings.Contains(string(data), hex.EncodeToString([]byte(raw))) {
			t.Errorf("%s contains the key", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestListensOnlyOnGRPCPort(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("this test reads /proc and needs linux, not %s", runtime.GOOS)
	}
	for _, mode := range []spicedbproc.Mode{spicedbproc.Memory, spicedbproc.Testing} {
		t.Run(mode.String(), func(t *testing.T) {
			_, key := newKey()
			p := start(t, spicedbproc.Config{Binary: binary(t), Dir: t.TempDir(), Mode: mode, PresharedKey: key})
			got := proctest.ListeningSockets(t, p.PID())
			if len(got) != 1 || got[0] != p.Addr() {
				t.Errorf("spicedb listens on %v, want only [%s]", got, p.Addr())
			}
			// The release check would dial out at start-up.
			if tail := p.LogTail(); strings.Contains(tail, "version checking") || strings.Contains(tail, "releases/latest") {
				t.Errorf("spicedb tried to check for releases:\n%s", tail)
			}
		})
	}
}

func TestFixedPortAndStop(t *testing.T) {
	port, err := proc.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, key := newKey()
	p := start(t, spicedbproc.Config{Binary: binary(t), Dir: t.TempDir(), Mode: spicedbproc.Testing, PresharedKey: key, GRPCPort: port})
	if want := "127.0.0.1:" + strconv.Itoa(port); p.Addr() != want {
		t.Errorf("Addr = %q, want %q", p.Addr(), want)
	}
	proctest.StopTwice(t, p)
}

func TestStartErrors(t *testing.T) {
	_, key := newKey()
	bin := binary(t)
	tests := []struct {
		name string
		cfg  spicedbproc.Config
		is   error
	}{
		{name: "no binary", cfg: spicedbproc.Config{Dir: t.TempDir(), Mode: spicedbproc.Testing, PresharedKey: key}},
		{name: "no dir", cfg: spicedbproc.Config{Binary: bin, Mode: spicedbproc.Testing, PresharedKey: key}},
		{name: "no mode", cfg: spicedbproc.Config{Binary: bin, Dir: t.TempDir(), PresharedKey: key}},
		{name: "no key", cfg: spicedbproc.Config{Binary: bin, Dir: t.TempDir(), Mode: spicedbproc.Memory}},
		{name: "bad port", cfg: spicedbproc.Config{Binary: bin, Dir: t.TempDir(), Mode: spicedbproc.Memory, PresharedKey: key, GRPCPort: -1}},
		{
			name: "missing binary",
			cfg:  spicedbproc.Config{Binary: "/nonexistent/spicedb", Dir: t.TempDir(), Mode: spicedbproc.Testing, PresharedKey: key},
			is:   spicedbproc.ErrNotInstalled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := spicedbproc.Start(context.Background(), tt.cfg)
			proctest.StartFailed(t, p, err, tt.is)
			if tt.is == spicedbproc.ErrNotInstalled && !strings.Contains(err.Error(), "make deps") {
				t.Errorf("error %q does not say how to install", err)
			}
		})
	}
}

// bearer sends a fixed token.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
