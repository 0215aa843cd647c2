package seal_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
)

var (
	testInfo = []byte("mcpgw/seal-test/v1")
	testAAD  = []byte("req_0123|bnd_a,bnd_b")
)

func mustKey(t testing.TB) *seal.PrivateKey {
	t.Helper()
	k, err := seal.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	k := mustKey(t)
	tests := []struct {
		name      string
		aad       []byte
		plaintext []byte
	}{
		{"empty plaintext", testAAD, nil},
		{"one byte", testAAD, []byte{0}},
		{"text", testAAD, []byte("api-key-value")},
		{"no aad", nil, []byte("api-key-value")},
		{"64 KiB", testAAD, bytes.Repeat([]byte{0xa5}, 64<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sealed, err := seal.Seal(k.Public(), testInfo, tt.aad, tt.plaintext)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != len(tt.plaintext)+seal.Overhead {
				t.Fatalf("sealed length = %d, want %d", len(sealed), len(tt.plaintext)+seal.Overhead)
			}
			if sealed[0] != seal.Version {
				t.Fatalf("version byte = %d, want %d", sealed[0], seal.Version)
			}
			if len(tt.plaintext) >= 8 && bytes.Contains(sealed, tt.plaintext[:8]) {
				t.Fatal("sealed message contains the plaintext")
			}
			got, err := seal.Open(k, testInfo, tt.aad, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.plaintext) {
				t.Fatal("opened plaintext differs")
			}
		})
	}
}

func TestSealIsRandomized(t *testing.T) {
	k := mustKey(t)
	a, err := seal.Seal(k.Public(), testInfo, testAAD, []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := seal.Seal(k.Public(), testInfo, testAAD, []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are identical")
	}
}

func TestOpenRefuses(t *testing.T) {
	k := mustKey(t)
	other := mustKey(t)
	plaintext := []byte("api-key-value")
	sealed, err := seal.Seal(k.Public(), testInfo, testAAD, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    *seal.PrivateKey
		info   []byte
		aad    []byte
		sealed []byte
		want   error
	}{
		{"wrong key", other, testInfo, testAAD, sealed, seal.ErrDecrypt},
		{"wrong info", k, []byte("mcpgw/other-purpose/v1"), testAAD, sealed, seal.ErrDecrypt},
		{"wrong aad", k, testInfo, []byte("req_0124|bnd_a,bnd_b"), sealed, seal.ErrDecrypt},
		{"missing aad", k, testInfo, nil, sealed, seal.ErrDecrypt},
		{"empty info", k, nil, testAAD, sealed, seal.ErrNoInfo},
		{"unknown version", k, testInfo, testAAD, append([]byte{seal.Version + 1}, sealed[1:]...), seal.ErrMalformed},
		{"empty input", k, testInfo, testAAD, nil, seal.ErrMalformed},
		{"extra byte", k, testInfo, testAAD, append(bytes.Clone(sealed), 0), seal.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seal.Open(tt.key, tt.info, tt.aad, tt.sealed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Fatal("Open returned plaintext with an error")
			}
		})
	}
}

func TestOpenRefusesTampering(t *testing.T) {
	k := mustKey(t)
	sealed, err := seal.Seal(k.Public(), testInfo, testAAD, []byte("api-key-value"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, bit := range []byte{0x01, 0x80} {
			t.Run(fmt.Sprintf("byte %d bit %#x", i, bit), func(t *testing.T) {
				bad := bytes.Clone(sealed)
				bad[i] ^= bit
				if _, err := seal.Open(k, testInfo, testAAD, bad); err == nil {
					t.Fatal("Open accepted a tampered message")
				}
			})
		}
	}
}

func TestOpenRefusesTruncation(t *testing.T) {
	k := mustKey(t)
	sealed, err := seal.Seal(k.Public(), testInfo, testAAD, []byte("api-key-value"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(sealed) {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			_, err := seal.Open(k, testInfo, testAAD, sealed[:n])
			if err == nil {
				t.Fatal("Open accepted a truncated message")
			}
			if n < seal.Overhead && !errors.Is(err, seal.ErrMalformed) {
				t.Fatalf("Open error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	k := mustKey(t)
	if _, err := seal.Seal(k.Public(), nil, testAAD, []byte("x")); !errors.Is(err, seal.ErrNoInfo) {
		t.Fatalf("Seal with empty info: error = %v, want ErrNoInfo", err)
	}
	if _, err := seal.Seal(nil, testInfo, testAAD, []byte("x")); err == nil {
		t.Fatal("Seal accepted a nil key")
	}
	if _, err := seal.Open(nil, testInfo, testAAD, make([]byte, seal.Overhead)); err == nil {
		t.Fatal("Open accepted a nil key")
	}
	if _, err := seal.Seal(&seal.PublicKey{}, testInfo, testAAD, []byte("x")); err == nil {
		t.Fatal("Seal accepted the zero public key")
	}
	if _, err := seal.Open(&seal.PrivateKey{}, testInfo, testAAD, make([]byte, seal.Overhead)); err == nil {
		t.Fatal("Open accepted the zero private key")
	}
}

func TestPublicKeyEncodings(t *testing.T) {
	k := mustKey(t)
	pub := k.Public()

	b := pub.Bytes()
	if len(b) != seal.KeySize {
		t.Fatalf("Bytes length = %d", len(b))
	}
	fromBytes, err := seal.ParsePublicKeyBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	if !fromBytes.Equal(pub) {
		t.Fatal("bytes round trip changed the key")
	}

	text, err := pub.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != pub.String() || string(text) != base64.RawURLEncoding.EncodeToString(b) {
		t.Fatalf("text form %q is not the base64url of the bytes", text)
	}
	fromText, err := seal.ParsePublicKey(string(text))
	if err != nil {
		t.Fatal(err)
	}
	if !fromText.Equal(pub) {
		t.Fatal("text round trip changed the key")
	}

	var viaJSON struct{ Key *seal.PublicKey }
	j, err := json.Marshal(struct{ Key *seal.PublicKey }{pub})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(j, &viaJSON); err != nil {
		t.Fatal(err)
	}
	if !viaJSON.Key.Equal(pub) {
		t.Fatal("JSON round trip changed the key")
	}

	var viaBinary seal.PublicKey
	bin, _ := pub.MarshalBinary()
	if err := viaBinary.UnmarshalBinary(bin); err != nil || !viaBinary.Equal(pub) {
		t.Fatalf("binary round trip: %v", err)
	}

	// A key parsed from text seals to the original private key.
	sealed, err := seal.Seal(fromText, testInfo, testAAD, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Open(k, testInfo, testAAD, sealed); err != nil {
		t.Fatalf("open a message sealed to a parsed key: %v", err)
	}

	fp := pub.Fingerprint()
	if len(fp) != 16 {
		t.Fatalf("Fingerprint = %q", fp)
	}
	if _, err := hex.DecodeString(fp); err != nil {
		t.Fatalf("Fingerprint %q is not hex", fp)
	}
	if fp == mustKey(t).Public().Fingerprint() {
		t.Fatal("two keys share a fingerprint")
	}
}

func TestParsePublicKeyRefuses(t *testing.T) {
	good := mustKey(t).Public().String()
	tests := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"short", good[:len(good)-1]},
		{"long", good + "A"},
		{"padded", base64.URLEncoding.EncodeToString(make([]byte, seal.KeySize))},
		{"standard alphabet", strings.Repeat("+", len(good))},
		{"spaces", strings.Repeat(" ", len(good))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := seal.ParsePublicKey(tt.text); !errors.Is(err, seal.ErrMalformed) {
				t.Fatalf("ParsePublicKey error = %v, want ErrMalformed", err)
			}
		})
	}
	for _, n := range []int{0, 31, 33, 65} {
		t.Run(fmt.Sprintf("%d bytes", n), func(t *testing.T) {
			if _, err := seal.ParsePublicKeyBytes(make([]byte, n)); !errors.Is(err, seal.ErrMalformed) {
				t.Fatalf("ParsePublicKeyBytes error = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestPrivateKeyRedacts(t *testing.T) {
	k := mustKey(t)
	v, err := k.Secret()
	if err != nil {
		t.Fatal(err)
	}
	raw := v.Reveal()
	forms := []string{
		string(raw),
		hex.EncodeToString(raw),
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		fmt.Sprint(raw),
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("key", "k", k)
	j, err := json.Marshal(struct{ K *seal.PrivateKey }{k})
	if err != nil {
		t.Fatal(err)
	}
	type holder struct{ k *seal.PrivateKey }
	outputs := map[string]string{
		"%v":     fmt.Sprintf("%v", k),
		"%+v":    fmt.Sprintf("%+v", k),
		"%#v":    fmt.Sprintf("%#v", k),
		"%s":     fmt.Sprintf("%s", k),
		"%x":     fmt.Sprintf("%x", k),
		"%q":     fmt.Sprintf("%q", k),
		"holder": fmt.Sprintf("%+v %#v %v", holder{k}, holder{k}, holder{k}),
		"String": k.String(),
		"slog":   logBuf.String(),
		"json":   string(j),
	}
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			for _, f := range forms {
				if strings.Contains(out, f) {
					t.Fatalf("output shows the private key: %s", out)
				}
			}
		})
	}
	if outputs["%v"] != secret.Redacted || outputs["String"] != secret.Redacted {
		t.Fatalf("private key prints %q, want %q", outputs["%v"], secret.Redacted)
	}

	back, err := seal.ParsePrivateKey(v)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Public().Equal(k.Public()) {
		t.Fatal("private key round trip changed the public key")
	}
	if _, err := seal.ParsePrivateKey(secret.New(raw[:31])); !errors.Is(err, seal.ErrMalformed) {
		t.Fatalf("ParsePrivateKey(31 bytes) error = %v, want ErrMalformed", err)
	}
}

func TestPrivateKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t)
	path := filepath.Join(dir, "policy.hpke")
	if err := seal.WritePrivateKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %#o, want 0600", fi.Mode().Perm())
	}
	back, err := seal.ReadPrivateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Public().Equal(k.Public()) {
		t.Fatal("key file round trip changed the key")
	}

	t.Run("0644 refused", func(t *testing.T) {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := seal.ReadPrivateKeyFile(path)
		if !errors.Is(err, secret.ErrPermissions) {
			t.Fatalf("ReadPrivateKeyFile(0644) error = %v, want secret.ErrPermissions", err)
		}
	})
	t.Run("wrong size refused", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.hpke")
		if err := os.WriteFile(bad, make([]byte, 33), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := seal.ReadPrivateKeyFile(bad); !errors.Is(err, seal.ErrMalformed) {
			t.Fatalf("ReadPrivateKeyFile(33 bytes) error = %v, want ErrMalformed", err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	k, err := seal.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	valid, err := seal.Seal(k.Public(), testInfo, testAAD, []byte("api-key-value"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid, testAAD)
	f.Add(valid[:seal.Overhead], testAAD)
	f.Add([]byte{}, []byte{})
	f.Add([]byte{seal.Version}, testAAD)
	f.Add(bytes.Repeat([]byte{0xff}, 100), testAAD)
	f.Fuzz(func(t *testing.T, sealed, aad []byte) {
		pt, err := seal.Open(k, testInfo, aad, sealed)
		if err == nil && !(bytes.Equal(sealed, valid) && bytes.Equal(aad, testAAD)) {
			t.Fatalf("Open accepted input it did not seal: %x", sealed)
		}
		if err != nil && pt != nil {
			t.Fatal("Open returned plaintext with an error")
		}
	})
}

// BenchmarkSealOpen measures Seal and Open against a baseline of one
// AES-256-GCM seal of the same payload, so the cost of the key agreement
// shows as a ratio.
func BenchmarkSealOpen(b *testing.B) {
	k, err := seal.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{64, 1024, 16 << 10} {
		plaintext := make([]byte, size)
		sealed, err := seal.Seal(k.Public(), testInfo, testAAD, plaintext)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("baseline-aes256gcm/%d", size), func(b *testing.B) {
			key := make([]byte, 32)
			rand.Read(key)
			block, _ := aes.NewCipher(key)
			aead, _ := cipher.NewGCMWithRandomNonce(block)
			b.SetBytes(int64(size))
			for b.Loop() {
				aead.Seal(nil, nil, plaintext, testAAD)
			}
		})
		b.Run(fmt.Sprintf("seal/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := seal.Seal(k.Public(), testInfo, testAAD, plaintext); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("open/%d", size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := seal.Open(k, testInfo, testAAD, sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
