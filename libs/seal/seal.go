// Package seal encrypts a message to one recipient's public key with HPKE
// (RFC 9180, crypto/hpke) in base mode, with the suite DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256 and AES-256-GCM.
//
// A sealed message is self-contained: one version byte, the 32-byte
// encapsulated key, then the AEAD ciphertext (plaintext length + 16 bytes).
// Each call to [Seal] uses a fresh ephemeral key, so sealing the same
// plaintext twice gives unrelated outputs.
//
// The info argument names the purpose of a message (for example
// "mcpgw/broker-resolve/v1") and must be non-empty; a message sealed for one
// purpose does not open for another. The aad argument binds the context of the
// message (request ID, binding IDs): it is authenticated, not encrypted, and
// must be given again, identical, to [Open].
//
// Private keys redact themselves wherever they are printed or encoded; their
// files are 0600 and read only with that mode (see libs/secret).
package seal

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// Version is the first byte of every sealed message produced by this package.
// It names the HPKE suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
// AES-256-GCM.
const Version byte = 1

// KeySize is the size in bytes of a serialized public or private key.
const KeySize = 32

// encSize is the size of the encapsulated key of DHKEM(X25519).
const encSize = 32

// tagSize is the size of the AES-GCM authentication tag.
const tagSize = 16

// Overhead is the number of bytes a sealed message adds to its plaintext.
const Overhead = 1 + encSize + tagSize

// fingerprintDomain separates public key fingerprints from other SHA-256 uses.
const fingerprintDomain = "mcpgw/seal/public-key/v1\x00"

var (
	// ErrMalformed is returned (wrapped) by Open for input too short to be a
	// sealed message or with an unknown version byte, and by the key parsers
	// for bytes or text that are not a key.
	ErrMalformed = errors.New("malformed sealed message or key")
	// ErrDecrypt is returned (wrapped) by Open when the message does not
	// authenticate: another key, another info, another aad, or altered bytes.
	ErrDecrypt = errors.New("sealed message does not authenticate")
	// ErrNoInfo is returned by Seal and Open when info is empty.
	ErrNoInfo = errors.New("info must name the purpose of the message")
)

// suite returns the one ciphersuite of Version 1.
func suite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.DHKEM(ecdh.X25519()), hpke.HKDFSHA256(), hpke.AES256GCM()
}

// PublicKey is a recipient's public key. It is not secret: it prints as its
// base64url text form. A PublicKey is immutable and safe for concurrent use.
// The zero PublicKey is no key (it serializes as nothing and Seal refuses
// it); obtain one from [PrivateKey.Public] or a parser.
type PublicKey struct {
	k hpke.PublicKey
}

// PrivateKey is a recipient's private key. It prints as "(sensitive)" in fmt
// (every verb), log/slog, JSON and text encodings. A PrivateKey is immutable
// and safe for concurrent use. The zero PrivateKey is no key; obtain one from
// [GenerateKey], [ParsePrivateKey] or [ReadPrivateKeyFile].
type PrivateKey struct {
	k   hpke.PrivateKey
	pub *PublicKey
}

// GenerateKey returns a new private key from crypto/rand.
func GenerateKey() (*PrivateKey, error) {
	kem, _, _ := suite()
	k, err := kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &PrivateKey{k: k, pub: &PublicKey{k: k.PublicKey()}}, nil
}

// ParsePrivateKey returns the private key whose serialized form (32 bytes,
// as returned by [PrivateKey.Secret]) v holds.
func ParsePrivateKey(v secret.Value) (*PrivateKey, error) {
	b := v.Reveal()
	defer clear(b)
	if len(b) != KeySize {
		return nil, fmt.Errorf("parse private key: %w: want %d bytes, got %d", ErrMalformed, KeySize, len(b))
	}
	kem, _, _ := suite()
	k, err := kem.NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", ErrMalformed)
	}
	return &PrivateKey{k: k, pub: &PublicKey{k: k.PublicKey()}}, nil
}

// Public returns the public key of k.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// Secret returns the serialized private key (32 bytes) as a [secret.Value],
// for storage; [ParsePrivateKey] reads it back.
func (k *PrivateKey) Secret() (secret.Value, error) {
	if k == nil || k.k == nil {
		return secret.Value{}, errors.New("serialize private key: no key")
	}
	b, err := k.k.Bytes()
	if err != nil {
		return secret.Value{}, fmt.Errorf("serialize private key: %w", err)
	}
	v := secret.New(b)
	clear(b)
	return v, nil
}

// String returns [secret.Redacted].
func (k *PrivateKey) String() string { return secret.Redacted }

// GoString returns [secret.Redacted].
func (k *PrivateKey) GoString() string { return secret.Redacted }

// Format writes [secret.Redacted] for every verb.
func (k *PrivateKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(secret.Redacted)) }

// LogValue returns [secret.Redacted] as a string.
func (k *PrivateKey) LogValue() slog.Value { return slog.StringValue(secret.Redacted) }

// MarshalJSON encodes k as the JSON string "(sensitive)".
func (k *PrivateKey) MarshalJSON() ([]byte, error) { return []byte(`"` + secret.Redacted + `"`), nil }

// MarshalText encodes k as [secret.Redacted]; it does not serialize the key
// (see [PrivateKey.Secret]).
func (k *PrivateKey) MarshalText() ([]byte, error) { return []byte(secret.Redacted), nil }

// ParsePublicKeyBytes returns the public key serialized in b (32 bytes, as
// returned by [PublicKey.Bytes]).
func ParsePublicKeyBytes(b []byte) (*PublicKey, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("parse public key: %w: want %d bytes, got %d", ErrMalformed, KeySize, len(b))
	}
	kem, _, _ := suite()
	k, err := kem.NewPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", ErrMalformed)
	}
	return &PublicKey{k: k}, nil
}

// ParsePublicKey returns the public key in its text form: the unpadded
// base64url encoding of its 32 bytes, as returned by [PublicKey.MarshalText].
func ParsePublicKey(text string) (*PublicKey, error) {
	if len(text) != base64.RawURLEncoding.EncodedLen(KeySize) {
		return nil, fmt.Errorf("parse public key: %w: want %d base64url characters, got %d", ErrMalformed, base64.RawURLEncoding.EncodedLen(KeySize), len(text))
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w: not base64url", ErrMalformed)
	}
	return ParsePublicKeyBytes(b)
}

// Bytes returns the 32-byte serialized public key (a fresh copy).
func (p *PublicKey) Bytes() []byte {
	if p == nil || p.k == nil {
		return nil
	}
	return p.k.Bytes()
}

// MarshalBinary returns [PublicKey.Bytes].
func (p *PublicKey) MarshalBinary() ([]byte, error) { return p.Bytes(), nil }

// UnmarshalBinary sets p to the public key serialized in b.
func (p *PublicKey) UnmarshalBinary(b []byte) error {
	q, err := ParsePublicKeyBytes(b)
	if err != nil {
		return err
	}
	*p = *q
	return nil
}

// MarshalText returns the unpadded base64url encoding of the key's bytes.
func (p *PublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText sets p to the public key in its text form.
func (p *PublicKey) UnmarshalText(text []byte) error {
	q, err := ParsePublicKey(string(text))
	if err != nil {
		return err
	}
	*p = *q
	return nil
}

// String returns the text form of p (unpadded base64url).
func (p *PublicKey) String() string { return base64.RawURLEncoding.EncodeToString(p.Bytes()) }

// Equal reports whether p and o are the same key.
func (p *PublicKey) Equal(o *PublicKey) bool {
	if p == nil || o == nil {
		return p == o
	}
	return string(p.Bytes()) == string(o.Bytes())
}

// Fingerprint returns 16 hexadecimal characters of SHA-256 over a domain
// prefix and the key's bytes: a short name for the key in logs, audit records
// and pinning checks.
func (p *PublicKey) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte(fingerprintDomain))
	h.Write(p.Bytes())
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Seal encrypts plaintext to pub. info names the purpose (non-empty) and aad
// binds context; both must be given again, identical, to [Open]. The result
// is Version, the encapsulated key and the ciphertext, [Overhead] bytes longer
// than plaintext. Seal is safe for concurrent use.
func Seal(pub *PublicKey, info, aad, plaintext []byte) ([]byte, error) {
	if pub == nil || pub.k == nil {
		return nil, errors.New("seal: no public key")
	}
	if len(info) == 0 {
		return nil, fmt.Errorf("seal: %w", ErrNoInfo)
	}
	_, kdf, aead := suite()
	enc, s, err := hpke.NewSender(pub.k, kdf, aead, info)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if len(enc) != encSize {
		return nil, fmt.Errorf("seal: encapsulated key of %d bytes, want %d", len(enc), encSize)
	}
	out := make([]byte, 0, Overhead+len(plaintext))
	out = append(out, Version)
	out = append(out, enc...)
	ct, err := s.Seal(aad, plaintext)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return append(out, ct...), nil
}

// Open decrypts a message produced by [Seal] for priv's public key with the
// same info and aad. Input that is too short or has an unknown version gives
// an error wrapping [ErrMalformed]; a message that does not authenticate (any
// other key, info or aad, or any altered byte) gives one wrapping
// [ErrDecrypt]. Open never panics on any input and is safe for concurrent
// use. The caller owns the returned plaintext and should clear it when done.
func Open(priv *PrivateKey, info, aad, sealed []byte) ([]byte, error) {
	if priv == nil || priv.k == nil {
		return nil, errors.New("open: no private key")
	}
	if len(info) == 0 {
		return nil, fmt.Errorf("open: %w", ErrNoInfo)
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("open: %w: %d bytes, need at least %d", ErrMalformed, len(sealed), Overhead)
	}
	if sealed[0] != Version {
		return nil, fmt.Errorf("open: %w: unknown version %d", ErrMalformed, sealed[0])
	}
	_, kdf, aead := suite()
	r, err := hpke.NewRecipient(sealed[1:1+encSize], priv.k, kdf, aead, info)
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrDecrypt)
	}
	pt, err := r.Open(aad, sealed[1+encSize:])
	if err != nil {
		return nil, fmt.Errorf("open: %w", ErrDecrypt)
	}
	return pt, nil
}
