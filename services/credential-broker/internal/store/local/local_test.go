package local_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/local"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/storetest"
)

// env is one store's directory and master key file.
type env struct {
	dir, keyFile string
}

func newEnv(t *testing.T) env {
	t.Helper()
	root := t.TempDir()
	return env{dir: filepath.Join(root, "secrets"), keyFile: filepath.Join(root, "keys", "master.key")}
}

func (e env) open(t *testing.T) *local.Store {
	t.Helper()
	s, err := local.New(local.Config{Dir: e.dir, MasterKeyFile: e.keyFile})
	if err != nil {
		t.Fatalf("local.New: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return newEnv(t).open(t) })
}

func TestConformanceOverSharedDir(t *testing.T) {
	// Two Stores over one Dir and key, as two broker processes would be: each
	// suite step writes through one and reads through the other.
	storetest.Run(t, func(t *testing.T) store.Store {
		e := newEnv(t)
		return &split{w: e.open(t), r: e.open(t)}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e env) local.Config
		want  error
	}{
		{"missing dir", func(t *testing.T, e env) local.Config { return local.Config{MasterKeyFile: e.keyFile} }, nil},
		{"missing key file", func(t *testing.T, e env) local.Config { return local.Config{Dir: e.dir} }, nil},
		{"key file 0644", func(t *testing.T, e env) local.Config {
			writeFile(t, e.keyFile, bytes.Repeat([]byte{7}, local.MasterKeySize), 0o644)
			return local.Config{Dir: e.dir, MasterKeyFile: e.keyFile}
		}, secret.ErrPermissions},
		{"key file 0640", func(t *testing.T, e env) local.Config {
			writeFile(t, e.keyFile, bytes.Repeat([]byte{7}, local.MasterKeySize), 0o640)
			return local.Config{Dir: e.dir, MasterKeyFile: e.keyFile}
		}, secret.ErrPermissions},
		{"key of 31 bytes", func(t *testing.T, e env) local.Config {
			writeFile(t, e.keyFile, bytes.Repeat([]byte{7}, local.MasterKeySize-1), 0o600)
			return local.Config{Dir: e.dir, MasterKeyFile: e.keyFile}
		}, nil},
		{"dir 0755", func(t *testing.T, e env) local.Config {
			if err := os.MkdirAll(e.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(e.dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return local.Config{Dir: e.dir, MasterKeyFile: e.keyFile}
		}, nil},
		{"dir is a file", func(t *testing.T, e env) local.Config {
			writeFile(t, e.dir, []byte("x"), 0o600)
			return local.Config{Dir: e.dir, MasterKeyFile: e.keyFile}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := local.New(tt.setup(t, e))
			if err == nil {
				t.Fatal("New accepted the configuration")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("New error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFirstStartCreatesKeyAndPrivateDirs(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	assertMode(t, e.keyFile, 0o600)
	assertMode(t, filepath.Dir(e.keyFile), 0o700|fs.ModeDir)
	assertMode(t, e.dir, 0o700|fs.ModeDir)
	key, err := os.ReadFile(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != local.MasterKeySize {
		t.Fatalf("master key has %d bytes, want %d", len(key), local.MasterKeySize)
	}
	if bytes.Equal(key, make([]byte, local.MasterKeySize)) {
		t.Fatal("master key is all zeros")
	}
	ref, err := s.Put(t.Context(), "acme", "github-token", secret.New([]byte(storetest.Canary)))
	if err != nil {
		t.Fatal(err)
	}
	if ref.String() != "local://acme/github-token#1" {
		t.Fatalf("first ref = %q, want local://acme/github-token#1", ref)
	}
	assertMode(t, filepath.Join(e.dir, "acme"), 0o700|fs.ModeDir)
	assertMode(t, filepath.Join(e.dir, "acme", "github-token.1.sec"), 0o600)
}

func TestConcurrentFirstStartsAgreeOnKey(t *testing.T) {
	e := newEnv(t)
	const n = 8
	stores := make([]*local.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = local.New(local.Config{Dir: e.dir, MasterKeyFile: e.keyFile})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	ref, err := stores[0].Put(t.Context(), "acme", "k", secret.New([]byte(storetest.Canary)))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		v, err := s.Get(t.Context(), "acme", ref)
		if err != nil {
			t.Fatalf("store %d cannot read what store 0 wrote: %v", i, err)
		}
		if string(v.Reveal()) != storetest.Canary {
			t.Fatalf("store %d read other bytes", i)
		}
	}
}

func TestConcurrentPutsAcrossStores(t *testing.T) {
	// Each Store serializes its own writers; Stores sharing a Dir (separate
	// processes) rely on the no-clobber claim of a version file.
	e := newEnv(t)
	a, b := e.open(t), e.open(t)
	const each = 16
	var mu sync.Mutex
	got := map[store.Ref]string{}
	var wg sync.WaitGroup
	for w, s := range []*local.Store{a, b, a, b} {
		wg.Go(func() {
			for i := range each {
				value := fmt.Sprintf("%s-%d-%d", storetest.Canary, w, i)
				ref, err := s.Put(t.Context(), "acme", "rotated", secret.New([]byte(value)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := got[ref]; dup {
					t.Errorf("%q returned for %q and %q", ref, prev, value)
				}
				got[ref] = value
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != 4*each {
		t.Fatalf("%d distinct refs, want %d", len(got), 4*each)
	}
	for ref, want := range got {
		v, err := a.Get(t.Context(), "acme", ref)
		if err != nil {
			t.Fatal(err)
		}
		if string(v.Reveal()) != want {
			t.Fatalf("%q holds other bytes", ref)
		}
	}
}

func TestSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	first := e.open(t)
	r1, err := first.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary+"-1")))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := first.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary+"-2")))
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Delete(t.Context(), "acme", r2); err != nil {
		t.Fatal(err)
	}

	second := e.open(t)
	v, err := second.Get(t.Context(), "acme", r1)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if string(v.Reveal()) != storetest.Canary+"-1" {
		t.Fatal("after restart: other bytes")
	}
	if _, err := second.Get(t.Context(), "acme", r2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted version after restart: error = %v, want ErrNotFound", err)
	}
	r3, err := second.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary+"-3")))
	if err != nil {
		t.Fatal(err)
	}
	if r3.Version() != "3" {
		t.Fatalf("version after restart = %q, want 3 (versions are never reused)", r3.Version())
	}
}

func TestNoPlaintextAtRest(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	for i := range 3 {
		if _, err := s.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary))); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Put(t.Context(), fmt.Sprintf("tenant-%d", i), "k", secret.New([]byte("prefix-"+storetest.Canary+"-suffix"))); err != nil {
			t.Fatal(err)
		}
	}
	key, err := os.ReadFile(e.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	keyForms := storetest.Encodings(string(key))
	files := 0
	err = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			assertMode(t, path, 0o700|fs.ModeDir)
			return nil
		}
		assertMode(t, path, 0o600)
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, form := range storetest.Encodings(storetest.Canary) {
			if bytes.Contains(b, []byte(form)) {
				t.Errorf("%s contains the secret (as %q)", path, form)
			}
		}
		for _, form := range keyForms {
			if bytes.Contains(b, []byte(form)) {
				t.Errorf("%s contains the master key", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files != 6 {
		t.Fatalf("found %d files under Dir, want 6 (one per version, no temporary files)", files)
	}
}

func TestTamperedFileIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(b []byte) []byte
	}{
		{"format byte", func(b []byte) []byte { b[0] ^= 0xff; return b }},
		{"nonce", func(b []byte) []byte { b[1] ^= 0x01; return b }},
		{"ciphertext", func(b []byte) []byte { b[len(b)/2] ^= 0x01; return b }},
		{"tag", func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"header only", func(b []byte) []byte { return b[:5] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"appended", func(b []byte) []byte { return append(b, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.open(t)
			ref, err := s.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary)))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(e.dir, "acme", "api-key.1.sec")
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, tt.tamper(b), 0o600)
			v, err := s.Get(t.Context(), "acme", ref)
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Get of a tampered file: error = %v, want ErrCorrupt", err)
			}
			if !v.IsZero() {
				t.Fatal("Get of a tampered file returned a value")
			}
		})
	}
}

func TestMovedOrRenamedFileIsRefused(t *testing.T) {
	tests := []struct {
		name              string
		tenant, file, ref string
	}{
		{"moved to another tenant", "other", "api-key.1.sec", "local://other/api-key#1"},
		{"renamed to another name", "acme", "db-password.1.sec", "local://acme/db-password#1"},
		{"renamed to another version", "acme", "api-key.7.sec", "local://acme/api-key#7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.open(t)
			if _, err := s.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary))); err != nil {
				t.Fatal(err)
			}
			// Give the target tenant a directory of its own, as a real one has.
			if _, err := s.Put(t.Context(), "other", "unrelated", secret.New([]byte("x"))); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(e.dir, "acme", "api-key.1.sec"))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(e.dir, tt.tenant, tt.file), b, 0o600)
			ref, err := store.ParseRef(tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(t.Context(), tt.tenant, ref); !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("Get of a moved file: error = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestOtherMasterKeyCannotRead(t *testing.T) {
	e := newEnv(t)
	s := e.open(t)
	ref, err := s.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary)))
	if err != nil {
		t.Fatal(err)
	}
	other := env{dir: e.dir, keyFile: filepath.Join(t.TempDir(), "other.key")}
	if _, err := other.open(t).Get(t.Context(), "acme", ref); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Get under another master key: error = %v, want ErrCorrupt", err)
	}
}

func TestUnsafeFilesAreRefused(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e env)
	}{
		{"secret file 0644", func(t *testing.T, e env) {
			if err := os.Chmod(filepath.Join(e.dir, "acme", "api-key.1.sec"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"secret file is a symlink", func(t *testing.T, e env) {
			path := filepath.Join(e.dir, "acme", "api-key.1.sec")
			moved := filepath.Join(t.TempDir(), "elsewhere")
			if err := os.Rename(path, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"tenant dir 0755", func(t *testing.T, e env) {
			if err := os.Chmod(filepath.Join(e.dir, "acme"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			s := e.open(t)
			ref, err := s.Put(t.Context(), "acme", "api-key", secret.New([]byte(storetest.Canary)))
			if err != nil {
				t.Fatal(err)
			}
			tt.setup(t, e)
			v, err := s.Get(t.Context(), "acme", ref)
			if err == nil || !v.IsZero() {
				t.Fatal("Get read an unsafe file")
			}
			for _, form := range storetest.Encodings(storetest.Canary) {
				if strings.Contains(err.Error(), form) {
					t.Fatalf("error shows the secret: %v", err)
				}
			}
		})
	}
}

func TestNonNumericVersionIsInvalid(t *testing.T) {
	s := newEnv(t).open(t)
	for _, v := range []string{"abc", "01", "1-2"} {
		t.Run(v, func(t *testing.T) {
			ref, err := store.NewRef(local.Backend, "acme", "api-key", v)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(t.Context(), "acme", ref); !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("Get(%q) error = %v, want ErrInvalid", ref, err)
			}
		})
	}
}

// split writes through one Store and reads and deletes through another over
// the same files.
type split struct {
	w, r *local.Store
}

func (s *split) Put(ctx context.Context, tenant, name string, v secret.Value) (store.Ref, error) {
	return s.w.Put(ctx, tenant, name, v)
}

func (s *split) Get(ctx context.Context, tenant string, ref store.Ref) (secret.Value, error) {
	return s.r.Get(ctx, tenant, ref)
}

func (s *split) Delete(ctx context.Context, tenant string, ref store.Ref) error {
	return s.r.Delete(ctx, tenant, ref)
}

func writeFile(t *testing.T, path string, b []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode() & (fs.ModeDir | fs.ModePerm); got != want {
		t.Fatalf("mode of %s = %v, want %v", path, got, want)
	}
}
