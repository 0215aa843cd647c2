package bus

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mcpgw/mcpgw/libs/secret"
	"log/slog"
	"os"
	"path/filepath"
)

// Identity is a service's signing identity: its name and Ed25519 private
// key. It redacts itself when printed or logged.
type Identity struct {
	Service Service
	key     ed25519.PrivateKey
}

// NewIdentity returns an identity for service with a fresh key.
func NewIdentity(service Service) (*Identity, error) {
	if !service.Valid() {
		return nil, fmt.Errorf("unknown service %q", service)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	return &Identity{Service: service, key: priv}, nil
}

// IdentityFromSeed rebuilds an identity from a 32-byte Ed25519 seed.
func IdentityFromSeed(service Service, seed []byte) (*Identity, error) {
	if !service.Valid() {
		return nil, fmt.Errorf("unknown service %q", service)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("signing key seed must be 32 bytes")
	}
	return &Identity{Service: service, key: ed25519.NewKeyFromSeed(seed)}, nil
}

// Public returns the identity's public key.
func (id *Identity) Public() ed25519.PublicKey { return id.key.Public().(ed25519.PublicKey) }

// KeyID returns a short, stable, non-secret ID of the public key.
func (id *Identity) KeyID() string { return KeyID(id.Public()) }

// Sign signs msg.
func (id *Identity) Sign(msg []byte) []byte { return ed25519.Sign(id.key, msg) }

// String redacts the key.
func (id *Identity) String() string { return fmt.Sprintf("identity(%s, %s)", id.Service, id.KeyID()) }

// GoString redacts the key.
func (id *Identity) GoString() string { return id.String() }

// LogValue redacts the key.
func (id *Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("service", string(id.Service)), slog.String("key_id", id.KeyID()))
}

// KeyID is the first 16 hex characters of SHA-256 over a public key.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// WriteIdentityFile stores the identity's seed base64-encoded in a new 0600
// file, atomically.
func WriteIdentityFile(path string, id *Identity) error {
	return WriteSecretFile(path, []byte(base64.StdEncoding.EncodeToString(id.key.Seed())+"\n"))
}

// ReadIdentityFile loads an identity from a 0600 (or 0400) file written by
// WriteIdentityFile; group- or world-readable files are refused.
func ReadIdentityFile(service Service, path string) (*Identity, error) {
	v, err := ReadSecretFile(path)
	if err != nil {
		return nil, err
	}
	seed, err := base64.StdEncoding.DecodeString(string(v.Reveal()))
	if err != nil {
		return nil, fmt.Errorf("read signing key %s: not base64", path)
	}
	return IdentityFromSeed(service, seed)
}

// Keyring holds the public signing keys of every service. It is public
// information and safe to log.
type Keyring struct {
	keys map[Service]ed25519.PublicKey
	seal map[Service][]byte
}

// NewKeyring builds a keyring from public keys.
func NewKeyring(keys map[Service]ed25519.PublicKey) (*Keyring, error) {
	k := &Keyring{keys: map[Service]ed25519.PublicKey{}, seal: map[Service][]byte{}}
	for s, pub := range keys {
		if !s.Valid() {
			return nil, fmt.Errorf("keyring: unknown service %q", s)
		}
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("keyring: bad key for %s", s)
		}
		k.keys[s] = append(ed25519.PublicKey(nil), pub...)
	}
	return k, nil
}

// Key returns a service's public key.
func (k *Keyring) Key(s Service) (ed25519.PublicKey, bool) {
	pub, ok := k.keys[s]
	return pub, ok
}

// SetSealKey records a service's HPKE public key (raw bytes of a
// seal.PublicKey): policy's, to which the edge seals presented credentials,
// and the broker's, to which operators seal secrets.
func (k *Keyring) SetSealKey(s Service, pub []byte) { k.seal[s] = append([]byte(nil), pub...) }

// SealKey returns a service's HPKE public key bytes.
func (k *Keyring) SealKey(s Service) ([]byte, bool) {
	b, ok := k.seal[s]
	return b, ok
}

// Verify reports whether sig is signer's signature over msg.
func (k *Keyring) Verify(signer Service, msg, sig []byte) bool {
	pub, ok := k.keys[signer]
	return ok && len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, msg, sig)
}

// keyringFile is the JSON form of a keyring file.
type keyringFile struct {
	Signing map[Service]string `json:"signing"`
	Sealing map[Service]string `json:"sealing,omitempty"`
}

// MarshalJSON encodes the keyring as {"signing": {service: base64 key},
// "sealing": {service: base64 key}}.
func (k *Keyring) MarshalJSON() ([]byte, error) {
	f := keyringFile{Signing: map[Service]string{}, Sealing: map[Service]string{}}
	for s, pub := range k.keys {
		f.Signing[s] = base64.StdEncoding.EncodeToString(pub)
	}
	for s, pub := range k.seal {
		f.Sealing[s] = base64.StdEncoding.EncodeToString(pub)
	}
	return json.Marshal(f)
}

// ParseKeyring decodes a keyring written by MarshalJSON.
func ParseKeyring(b []byte) (*Keyring, error) {
	var f keyringFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse keyring: %w", err)
	}
	keys := map[Service]ed25519.PublicKey{}
	for s, v := range f.Signing {
		pub, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("parse keyring: key of %s is not base64", s)
		}
		keys[s] = pub
	}
	k, err := NewKeyring(keys)
	if err != nil {
		return nil, err
	}
	for s, v := range f.Sealing {
		pub, err := base64.StdEncoding.DecodeString(v)
		if err != nil || !s.Valid() {
			return nil, fmt.Errorf("parse keyring: bad sealing key for %s", s)
		}
		k.SetSealKey(s, pub)
	}
	return k, nil
}

// ReadKeyringFile loads a keyring file.
func ReadKeyringFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	return ParseKeyring(b)
}

// ReadSecretFile reads a 0600 credential file (such as a NATS password),
// refusing one that group or others may read, and returns its content with
// trailing whitespace trimmed.
func ReadSecretFile(path string) (secret.Value, error) {
	v, err := secret.ReadFile(path)
	if err != nil {
		return secret.Value{}, err
	}
	b := v.Reveal()
	v.Wipe()
	return secret.New(bytes.TrimRight(b, " \r\n")), nil
}

// WriteSecretFile writes a credential file with mode 0600 atomically,
// creating its directory (0700) when missing.
func WriteSecretFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	return secret.WriteFile(path, secret.New(data))
}
