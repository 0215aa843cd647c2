package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/secret"
)

const canary = "canary-s3cr3t-7f1d"

func TestValueRedactsInFmt(t *testing.T) {
	v := secret.New([]byte(canary))
	type wrapper struct {
		Exported   secret.Value
		unexported secret.Value
		Ptr        *secret.Value
	}
	w := wrapper{Exported: v, unexported: v, Ptr: &v}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T-%v", "%10s", "%-20v", "%08x", "%p-%v"}
	for _, verb := range verbs {
		for name, arg := range map[string]any{"value": v, "pointer": &v, "struct": w, "struct pointer": &w, "slice": []secret.Value{v}, "map": map[string]secret.Value{"k": v}} {
			t.Run(verb+"/"+name, func(t *testing.T) {
				out := fmt.Sprintf(verb, arg, arg)
				assertNoCanary(t, out)
			})
		}
	}
	if got := fmt.Sprint(v); got != secret.Redacted {
		t.Fatalf("Sprint = %q, want %q", got, secret.Redacted)
	}
	if got := v.String(); got != secret.Redacted {
		t.Fatalf("String = %q", got)
	}
	if got := v.GoString(); got != secret.Redacted {
		t.Fatalf("GoString = %q", got)
	}
	if got := fmt.Sprintf("%#v", v); got != secret.Redacted {
		t.Fatalf("%%#v = %q", got)
	}
}

func TestValueRedactsInSlogAndEncoders(t *testing.T) {
	v := secret.New([]byte(canary))
	var buf bytes.Buffer
	for name, h := range map[string]slog.Handler{
		"text": slog.NewTextHandler(&buf, nil),
		"json": slog.NewJSONHandler(&buf, nil),
	} {
		t.Run(name, func(t *testing.T) {
			buf.Reset()
			log := slog.New(h)
			log.Info("msg", "secret", v, "ptr", &v, slog.Any("any", v), slog.Group("g", "inner", v))
			out := buf.String()
			assertNoCanary(t, out)
			if !strings.Contains(out, secret.Redacted) {
				t.Fatalf("log line lacks %q: %s", secret.Redacted, out)
			}
		})
	}
	t.Run("json", func(t *testing.T) {
		b, err := json.Marshal(struct {
			A secret.Value
			B *secret.Value
			M map[string]secret.Value
		}{A: v, B: &v, M: map[string]secret.Value{"k": v}})
		if err != nil {
			t.Fatal(err)
		}
		assertNoCanary(t, string(b))
		if want := `{"A":"(sensitive)","B":"(sensitive)","M":{"k":"(sensitive)"}}`; string(b) != want {
			t.Fatalf("json = %s, want %s", b, want)
		}
	})
	t.Run("text", func(t *testing.T) {
		b, err := v.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != secret.Redacted {
			t.Fatalf("MarshalText = %q", b)
		}
	})
}

func TestRevealReturnsCopy(t *testing.T) {
	src := []byte(canary)
	v := secret.New(src)
	clear(src)
	got := v.Reveal()
	if string(got) != canary {
		t.Fatalf("Reveal = %q after clearing the input, want the original", got)
	}
	clear(got)
	if string(v.Reveal()) != canary {
		t.Fatal("clearing the revealed copy changed the value")
	}
	if (secret.Value{}).Reveal() != nil {
		t.Fatal("zero value revealed bytes")
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		name string
		a, b secret.Value
		want bool
	}{
		{"same bytes", secret.New([]byte("abc")), secret.New([]byte("abc")), true},
		{"different bytes", secret.New([]byte("abc")), secret.New([]byte("abd")), false},
		{"prefix", secret.New([]byte("abc")), secret.New([]byte("ab")), false},
		{"both zero", secret.Value{}, secret.New(nil), true},
		{"zero and non-zero", secret.Value{}, secret.New([]byte("a")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a.Equal(tt.b); got != tt.want {
				t.Fatalf("Equal = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	a := secret.New([]byte(canary))
	fp := a.Fingerprint()
	if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(fp) {
		t.Fatalf("Fingerprint = %q, want 12 lowercase hex characters", fp)
	}
	if fp != secret.New([]byte(canary)).Fingerprint() {
		t.Fatal("fingerprint is not stable")
	}
	if fp == secret.New([]byte(canary+"x")).Fingerprint() {
		t.Fatal("different secrets share a fingerprint")
	}
	assertNoCanary(t, fp)
}

func TestWipe(t *testing.T) {
	src := []byte(canary)
	v := secret.New(src)
	cp := v
	v.Wipe()
	if !v.IsZero() || !cp.IsZero() || cp.Len() != 0 {
		t.Fatal("wipe did not empty every copy")
	}
	if cp.Reveal() != nil {
		t.Fatal("wiped copy still reveals bytes")
	}
	if string(src) != canary {
		t.Fatal("wipe touched the caller's input slice")
	}
	(secret.Value{}).Wipe()
}

func TestReadFileModes(t *testing.T) {
	tests := []struct {
		mode fs.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o644, false},
		{0o640, false},
		{0o604, false},
		{0o660, false},
		{0o700, false},
		{0o666, false},
		{0o200, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%#o", tt.mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, []byte(canary), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			v, err := secret.ReadFile(path)
			if tt.ok {
				if err != nil {
					t.Fatalf("ReadFile: %v", err)
				}
				if string(v.Reveal()) != canary {
					t.Fatal("ReadFile returned other bytes")
				}
				return
			}
			if !errors.Is(err, secret.ErrPermissions) {
				t.Fatalf("ReadFile error = %v, want ErrPermissions", err)
			}
			assertNoCanary(t, err.Error())
		})
	}
}

func TestReadFileRefusals(t *testing.T) {
	dir := t.TempDir()
	t.Run("directory", func(t *testing.T) {
		sub := filepath.Join(dir, "sub")
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := secret.ReadFile(sub); !errors.Is(err, secret.ErrPermissions) {
			t.Fatalf("ReadFile(dir) error = %v, want ErrPermissions", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		if _, err := secret.ReadFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("ReadFile(missing) error = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		path := filepath.Join(dir, "large")
		if err := os.WriteFile(path, make([]byte, secret.MaxFileSize+1), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := secret.ReadFile(path); err == nil {
			t.Fatal("ReadFile accepted a file over MaxFileSize")
		}
	})
	t.Run("symlink to 0600 file", func(t *testing.T) {
		target := filepath.Join(dir, "target")
		if err := os.WriteFile(target, []byte(canary), 0o600); err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "link")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		v, err := secret.ReadFile(link)
		if err != nil || string(v.Reveal()) != canary {
			t.Fatalf("ReadFile(symlink) = %v", err)
		}
	})
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := secret.WriteFile(path, secret.New([]byte("first"))); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	if err := secret.WriteFile(path, secret.New([]byte(canary))); err != nil {
		t.Fatalf("WriteFile over an existing file: %v", err)
	}
	assertMode(t, path, 0o600)
	v, err := secret.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Reveal()) != canary {
		t.Fatal("WriteFile did not replace the contents")
	}
	assertOnlyFiles(t, dir, "key")
}

func TestCreateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := secret.CreateFile(path, secret.New([]byte(canary))); err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	err := secret.CreateFile(path, secret.New([]byte("other")))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateFile over an existing file: error = %v, want fs.ErrExist", err)
	}
	v, err := secret.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Reveal()) != canary {
		t.Fatal("CreateFile replaced an existing file")
	}
	assertOnlyFiles(t, dir, "key")
}

func assertNoCanary(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, canary) || strings.Contains(strings.ToLower(s), fmt.Sprintf("%x", canary)) || strings.Contains(s, fmt.Sprint([]byte(canary))) {
		t.Fatalf("output contains the secret: %s", s)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Fatalf("mode of %s = %#o, want %#o", path, got, want)
	}
}

func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("files in %s = %v, want %v (temporary files left behind?)", dir, got, names)
	}
}
