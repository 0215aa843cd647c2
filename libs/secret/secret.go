// Package secret holds secret material (credentials, keys, tokens, passwords)
// in a type that never prints it.
//
// A [Value] renders as "(sensitive)" through every path that formats or
// encodes it by accident: fmt (all verbs, %#v included), log/slog,
// encoding/json and encoding.TextMarshaler. [Value.Reveal] is the one explicit
// way to obtain the bytes. [Value.Fingerprint] gives a short, stable
// identifier that is safe to log.
//
// [ReadFile] and [WriteFile] move a Value to and from a file that only its
// owner can read (mode 0600 or 0400), the one place where secret material may
// rest in clear.
package secret

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Redacted is the text a [Value] shows wherever it is printed or encoded.
const Redacted = "(sensitive)"

// fingerprintDomain separates secret fingerprints from any other SHA-256 use
// of the same bytes.
const fingerprintDomain = "mcpgw/secret/fingerprint/v1\x00"

// FingerprintLen is the length in characters of [Value.Fingerprint]: 12
// lowercase hexadecimal characters, the first 48 bits of the digest.
const FingerprintLen = 12

// Value holds secret bytes and redacts them wherever it is printed or
// encoded.
//
// The zero Value is empty and ready to use. A Value is a handle: copies of a
// Value share the same storage, so [Value.Wipe] clears it for every copy. The
// bytes are reachable only through a closure, so reflection-based printers
// (fmt on a struct with an unexported Value field, dump libraries) show a
// function address, never the bytes. A Value is not comparable with ==; use
// [Value.Equal].
//
// A Value is safe for concurrent reads; Wipe must not run concurrently with any
// other method on the same storage.
type Value struct {
	ref func() *box
}

// box owns the secret bytes of a Value.
type box struct {
	b []byte
}

// New returns a Value holding a copy of b. The caller keeps ownership of b and
// may clear it afterwards.
func New(b []byte) Value {
	if len(b) == 0 {
		return Value{}
	}
	c := make([]byte, len(b))
	copy(c, b)
	bx := &box{b: c}
	return Value{ref: func() *box { return bx }}
}

// Reveal returns a copy of the secret bytes: the one explicit way to read
// them. The caller owns the copy and should clear it when done.
func (v Value) Reveal() []byte {
	b := v.bytes()
	if len(b) == 0 {
		return nil
	}
	c := make([]byte, len(b))
	copy(c, b)
	return c
}

// Len returns the number of secret bytes. The length is not secret.
func (v Value) Len() int { return len(v.bytes()) }

// IsZero reports whether v holds no bytes (never set, empty, or wiped).
func (v Value) IsZero() bool { return v.Len() == 0 }

// Equal reports whether v and o hold the same bytes. The comparison takes
// time independent of the contents (it may depend on the lengths).
func (v Value) Equal(o Value) bool {
	return subtle.ConstantTimeCompare(v.bytes(), o.bytes()) == 1
}

// Fingerprint returns the first [FingerprintLen] hexadecimal characters of
// SHA-256 over a domain-separation prefix and the secret bytes. It identifies
// a secret in logs and audit records without disclosing it; it is not a
// substitute for [Value.Equal] and must not be used as a key.
func (v Value) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(fingerprintDomain))
	h.Write(v.bytes())
	return hex.EncodeToString(h.Sum(nil))[:FingerprintLen]
}

// Wipe overwrites the secret bytes with zeros and empties v and every copy of
// it. Wiping a zero Value does nothing.
func (v Value) Wipe() {
	if v.ref == nil {
		return
	}
	bx := v.ref()
	clear(bx.b)
	bx.b = nil
}

// String returns [Redacted].
func (v Value) String() string { return Redacted }

// GoString returns [Redacted], so %#v does not show the bytes.
func (v Value) GoString() string { return Redacted }

// Format writes [Redacted] for every verb and flag.
func (v Value) Format(f fmt.State, _ rune) {
	_, _ = f.Write([]byte(Redacted))
}

// LogValue returns [Redacted] as a string, so log/slog never shows the bytes.
func (v Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON encodes v as the JSON string "(sensitive)".
func (v Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText encodes v as [Redacted].
func (v Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// bytes returns the stored slice without copying; for use inside this package
// only.
func (v Value) bytes() []byte {
	if v.ref == nil {
		return nil
	}
	return v.ref().b
}
