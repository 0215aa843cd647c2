// Package testenv starts real dependencies for tests — the pinned SpiceDB
// binary, a private clickhouse-server process — on random 127.0.0.1 ports,
// and stops them when the test ends. A missing dependency fails the test with
// the command that installs it; nothing is skipped.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Root returns the repository root: the nearest directory at or above the
// working directory that holds go.work. It fails the test if there is none.
func Root(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: working directory: %v", err)
	}
	root, err := FindRoot(wd)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return root
}

// FindRoot walks up from dir to the nearest directory that holds go.work
// and returns it.
func FindRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	for {
		info, err := os.Stat(filepath.Join(dir, "go.work"))
		if err == nil && !info.IsDir() {
			return dir, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("look for go.work in %s: %w", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work found above the working directory")
		}
		dir = parent
	}
}

// Bin returns the path of the pinned tool <root>/.bin/<name>, built by
// `make deps`. It fails the test, saying to run `make deps`, when the file
// is missing.
func Bin(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(Root(t), ".bin", name)
	info, err := os.Stat(path)
	if err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
		t.Fatalf("testenv: %s is missing: run `make deps` (builds the tools pinned in tools/pinned into .bin/)", path)
	}
	return path
}
