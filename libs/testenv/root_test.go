package testenv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/testenv"
)

func TestFindRoot(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "repo")
	nested := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.work"), []byte("go 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory named go.work is not a workspace file.
	if err := os.Mkdir(filepath.Join(root, "a", "go.work"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		want    string
		wantErr bool
	}{
		{name: "at root", dir: root, want: root},
		{name: "nested", dir: nested, want: root},
		{name: "outside", dir: tmp, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testenv.FindRoot(tt.dir)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("FindRoot(%s) = %s, want an error", tt.dir, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindRoot(%s): %v", tt.dir, err)
			}
			if got != tt.want {
				t.Errorf("FindRoot(%s) = %s, want %s", tt.dir, got, tt.want)
			}
		})
	}
}

func TestRootHoldsThisModule(t *testing.T) {
	root := testenv.Root(t)
	if _, err := os.Stat(filepath.Join(root, "libs", "go.mod")); err != nil {
		t.Errorf("root %s does not hold libs/go.mod: %v", root, err)
	}
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as testing.T does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestBinMissingSaysMakeDeps(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	done := make(chan string)
	go func() {
		defer func() { done <- rec.msg }()
		path := testenv.Bin(rec, "no-such-tool")
		t.Errorf("Bin returned %s for a missing tool", path)
	}()
	msg := <-done
	if !strings.Contains(msg, "make deps") {
		t.Errorf("failure message %q does not say to run make deps", msg)
	}
}
