// Package local is the broker's embedded secret store: encrypted files under
// one directory, one file per secret version.
//
// Layout: Dir/<tenant>/<name>.<version>.sec, with Dir and every tenant
// directory 0700 and every file 0600. Versions are decimal numbers from 1;
// deleting a version leaves an empty marker Dir/<tenant>/<name>.<version>.del
// so that the number is never handed out again.
//
// Each file holds a format byte and the AES-256-GCM encryption (random
// 96-bit nonce) of one secret under a per-tenant key derived with HKDF-SHA256
// from a 32-byte master key, with the tenant in the HKDF info. The
// authenticated data binds the format, tenant, name and version, so a file
// copied into another tenant's directory, renamed to another name or version,
// or altered in any byte fails to decrypt ([store.ErrCorrupt]). No plaintext
// and no key is ever written to Dir.
//
// The master key lives in its own 0600 file (Config.MasterKeyFile), created
// from crypto/rand on first start when missing; a key file readable by group
// or others is refused.
package local

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
)

// Backend is the backend name in the references this store returns
// ("local://<tenant>/<name>#<version>").
const Backend = "local"

// MasterKeySize is the size in bytes of the master key.
const MasterKeySize = 32

const (
	// formatV1 is the first byte of every secret file: AES-256-GCM with a
	// random nonce under an HKDF-SHA256 tenant key.
	formatV1 byte = 1
	// nonceSize and tagSize are those of AES-GCM.
	nonceSize = 12
	tagSize   = 16
	// maxFileSize bounds what Get reads.
	maxFileSize = 1 + nonceSize + store.MaxValueSize + tagSize

	// hkdfSalt and tenantKeyInfo separate this store's derived keys from
	// any other use of the master key.
	hkdfSalt      = "mcpgw/store/local/v1"
	tenantKeyInfo = "mcpgw/store/local/tenant-key/v1\x00"
	// aadPrefix starts the authenticated data of every secret file.
	aadPrefix = "mcpgw/store/local/secret/v1\x00"

	secretSuffix  = ".sec"
	deletedSuffix = ".del"
	// maxPutAttempts bounds the retries of Put when other writers claim the
	// version it chose.
	maxPutAttempts = 64
)

// Config configures a Store.
type Config struct {
	// Dir holds the encrypted secrets. It is created 0700 if missing; an
	// existing Dir that group or others can access is refused. Required.
	Dir string
	// MasterKeyFile holds the 32-byte master key. It is created 0600 (and
	// its directory 0700) if missing; a file whose mode is not 0600 or 0400
	// is refused. Keep it outside Dir and back it up: without it no secret
	// can be read. Required.
	MasterKeyFile string
	// Logger receives the store's few operational messages (never secret
	// material). Optional; nothing is logged when nil.
	Logger *slog.Logger
}

// Store is the local encrypted file store. It implements [store.Store].
//
// A Store is safe for concurrent use by multiple goroutines, and several
// Stores (in one process or several) may share one Dir and master key: a
// version number is claimed by hard-linking a complete, synced file into
// place, which fails if that version exists, so concurrent Puts never
// overwrite each other and readers never see a partial file.
type Store struct {
	dir    string
	master secret.Value
	log    *slog.Logger

	// mu serializes Put and Delete within this Store.
	mu sync.Mutex

	// keysMu guards keys, the per-tenant AEADs derived so far.
	keysMu sync.Mutex
	keys   map[string]cipher.AEAD
}

var _ store.Store = (*Store)(nil)

// New opens (or, on first start, creates) the store described by cfg.
func New(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("local store: Dir is required")
	}
	if cfg.MasterKeyFile == "" {
		return nil, errors.New("local store: MasterKeyFile is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "store.local")
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	if err := checkPrivateDir(cfg.Dir, os.Stat); err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	master, err := loadOrCreateMasterKey(cfg.MasterKeyFile, log)
	if err != nil {
		return nil, fmt.Errorf("local store: %w", err)
	}
	return &Store{
		dir:    cfg.Dir,
		master: master,
		log:    log,
		keys:   map[string]cipher.AEAD{},
	}, nil
}

// Put implements [store.Store.Put]. The returned reference is
// "local://<tenant>/<name>#<version>" with the next unused version number.
func (s *Store) Put(ctx context.Context, tenant, name string, v secret.Value) (store.Ref, error) {
	if err := ctx.Err(); err != nil {
		return store.Ref{}, &store.Error{Op: "put", Err: err}
	}
	if err := store.CheckPut(tenant, name, v); err != nil {
		return store.Ref{}, err
	}
	where := tenant + "/" + name
	fail := func(reason string, err error) (store.Ref, error) {
		return store.Ref{}, &store.Error{Op: "put", Ref: where, Reason: reason, Err: err}
	}
	aead, err := s.tenantAEAD(tenant)
	if err != nil {
		return fail("derive tenant key", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	tdir := filepath.Join(s.dir, tenant)
	if err := ensurePrivateDir(tdir); err != nil {
		return fail("", err)
	}
	last, err := lastVersion(tdir, name)
	if err != nil {
		return fail("", err)
	}
	plaintext := v.Reveal()
	defer clear(plaintext)
	for range maxPutAttempts {
		if err := ctx.Err(); err != nil {
			return fail("", err)
		}
		last++
		version := strconv.FormatUint(last, 10)
		sealed := encrypt(aead, tenant, name, version, plaintext)
		err := secret.CreateFile(filepath.Join(tdir, fileName(name, version, secretSuffix)), secret.New(sealed))
		if errors.Is(err, fs.ErrExist) {
			continue // another writer claimed this version
		}
		if err != nil {
			return fail("write version "+version, err)
		}
		ref, err := store.NewRef(Backend, tenant, name, version)
		if err != nil {
			return fail("", err)
		}
		return ref, nil
	}
	return fail(fmt.Sprintf("no free version after %d attempts", maxPutAttempts), nil)
}

// Get implements [store.Store.Get].
func (s *Store) Get(ctx context.Context, tenant string, ref store.Ref) (secret.Value, error) {
	if err := ctx.Err(); err != nil {
		return secret.Value{}, &store.Error{Op: "get", Ref: ref.String(), Err: err}
	}
	if err := s.checkRef("get", tenant, ref); err != nil {
		return secret.Value{}, err
	}
	fail := func(kind error, reason string, err error) (secret.Value, error) {
		return secret.Value{}, &store.Error{Op: "get", Ref: ref.String(), Kind: kind, Reason: reason, Err: err}
	}
	tdir := filepath.Join(s.dir, tenant)
	if err := checkPrivateDir(tdir, os.Lstat); errors.Is(err, fs.ErrNotExist) {
		return fail(store.ErrNotFound, "", nil)
	} else if err != nil {
		return fail(nil, "", err)
	}
	sealed, err := readSecretFile(filepath.Join(tdir, fileName(ref.Name(), ref.Version(), secretSuffix)))
	if errors.Is(err, fs.ErrNotExist) {
		return fail(store.ErrNotFound, "", nil)
	}
	if err != nil {
		return fail(nil, "", err)
	}
	aead, err := s.tenantAEAD(tenant)
	if err != nil {
		return fail(nil, "derive tenant key", err)
	}
	plaintext, err := decrypt(aead, tenant, ref.Name(), ref.Version(), sealed)
	if err != nil {
		s.log.Warn("secret file failed its integrity check", "ref", ref.String())
		return fail(store.ErrCorrupt, err.Error(), nil)
	}
	v := secret.New(plaintext)
	clear(plaintext)
	return v, nil
}

// Delete implements [store.Store.Delete]. It leaves a marker so that the
// version number is never reused.
func (s *Store) Delete(ctx context.Context, tenant string, ref store.Ref) error {
	if err := ctx.Err(); err != nil {
		return &store.Error{Op: "delete", Ref: ref.String(), Err: err}
	}
	if err := s.checkRef("delete", tenant, ref); err != nil {
		return err
	}
	fail := func(kind error, reason string, err error) error {
		return &store.Error{Op: "delete", Ref: ref.String(), Kind: kind, Reason: reason, Err: err}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tdir := filepath.Join(s.dir, tenant)
	if err := checkPrivateDir(tdir, os.Lstat); errors.Is(err, fs.ErrNotExist) {
		return fail(store.ErrNotFound, "", nil)
	} else if err != nil {
		return fail(nil, "", err)
	}
	path := filepath.Join(tdir, fileName(ref.Name(), ref.Version(), secretSuffix))
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return fail(store.ErrNotFound, "", nil)
	} else if err != nil {
		return fail(nil, "", err)
	}
	marker := filepath.Join(tdir, fileName(ref.Name(), ref.Version(), deletedSuffix))
	if err := secret.CreateFile(marker, secret.Value{}); err != nil && !errors.Is(err, fs.ErrExist) {
		return fail(nil, "write deletion marker", err)
	}
	if err := os.Remove(path); errors.Is(err, fs.ErrNotExist) {
		return fail(store.ErrNotFound, "", nil)
	} else if err != nil {
		return fail(nil, "", err)
	}
	if err := syncDir(tdir); err != nil {
		return fail(nil, "", err)
	}
	return nil
}

// checkRef applies the port's checks and this backend's version syntax.
func (s *Store) checkRef(op, tenant string, ref store.Ref) error {
	if err := store.CheckRef(op, Backend, tenant, ref); err != nil {
		return err
	}
	if _, ok := parseVersion(ref.Version()); !ok {
		return &store.Error{Op: op, Ref: ref.String(), Kind: store.ErrInvalid, Reason: "version is not a decimal number"}
	}
	return nil
}

// tenantAEAD returns the AEAD under tenant's derived key, deriving it once.
func (s *Store) tenantAEAD(tenant string) (cipher.AEAD, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	if a, ok := s.keys[tenant]; ok {
		return a, nil
	}
	master := s.master.Reveal()
	defer clear(master)
	key, err := hkdf.Key(sha256.New, master, []byte(hkdfSalt), tenantKeyInfo+tenant, 32)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	s.keys[tenant] = a
	return a, nil
}

// aad returns the authenticated data that binds a secret file to its format,
// tenant, name and version.
func aad(tenant, name, version string) []byte {
	return []byte(aadPrefix + string(formatV1) + tenant + "\x00" + name + "\x00" + version)
}

// encrypt returns the contents of a secret file.
func encrypt(aead cipher.AEAD, tenant, name, version string, plaintext []byte) []byte {
	out := make([]byte, 1, 1+aead.Overhead()+len(plaintext))
	out[0] = formatV1
	return aead.Seal(out, nil, plaintext, aad(tenant, name, version))
}

// decrypt opens the contents of a secret file.
func decrypt(aead cipher.AEAD, tenant, name, version string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+aead.Overhead() {
		return nil, fmt.Errorf("file of %d bytes is too short", len(sealed))
	}
	if sealed[0] != formatV1 {
		return nil, fmt.Errorf("unknown format %d", sealed[0])
	}
	pt, err := aead.Open(nil, nil, sealed[1:], aad(tenant, name, version))
	if err != nil {
		return nil, errors.New("decryption failed")
	}
	return pt, nil
}

// fileName returns the file name of one version of a secret.
func fileName(name, version, suffix string) string {
	return name + "." + version + suffix
}

// parseVersion parses a version in its one canonical form (decimal, no sign,
// no leading zero).
func parseVersion(s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		return 0, false
	}
	return n, true
}

// lastVersion returns the highest version of name in tdir, live or deleted,
// or 0 if there is none.
func lastVersion(tdir, name string) (uint64, error) {
	entries, err := os.ReadDir(tdir)
	if err != nil {
		return 0, err
	}
	var last uint64
	prefix := name + "."
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		v, ok := strings.CutSuffix(rest, secretSuffix)
		if !ok {
			v, ok = strings.CutSuffix(rest, deletedSuffix)
		}
		if !ok {
			continue
		}
		if n, ok := parseVersion(v); ok && n > last {
			last = n
		}
	}
	return last, nil
}

// readSecretFile reads one secret file without following a symbolic link,
// refusing a file that is not regular, not 0600/0400 or too large.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := secret.CheckMode(fi); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return b, nil
}

// loadOrCreateMasterKey reads the master key file, creating it from
// crypto/rand if it does not exist. Two processes starting together agree on
// one key: creation never replaces an existing file.
func loadOrCreateMasterKey(path string, log *slog.Logger) (secret.Value, error) {
	v, err := secret.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createMasterKey(path, log); err != nil {
			return secret.Value{}, fmt.Errorf("master key: %w", err)
		}
		v, err = secret.ReadFile(path)
	}
	if err != nil {
		return secret.Value{}, fmt.Errorf("master key: %w", err)
	}
	if v.Len() != MasterKeySize {
		n := v.Len()
		v.Wipe()
		return secret.Value{}, fmt.Errorf("master key %s: %d bytes, want %d", path, n, MasterKeySize)
	}
	return v, nil
}

// createMasterKey writes a new master key from crypto/rand to path, unless
// another process created the file first (then it leaves that one alone).
func createMasterKey(path string, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	raw := make([]byte, MasterKeySize)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	fresh := secret.New(raw)
	clear(raw)
	defer fresh.Wipe()
	err := secret.CreateFile(path, fresh)
	switch {
	case err == nil:
		log.Info("created master key", "path", path)
		return nil
	case errors.Is(err, fs.ErrExist):
		return nil
	default:
		return err
	}
}

// ensurePrivateDir creates dir 0700 if it is missing and checks that it is a
// directory no one but its owner can access.
func ensurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return checkPrivateDir(dir, os.Lstat)
}

// checkPrivateDir checks that dir is a directory with no permission bits for
// group or others. stat is os.Lstat for directories the store creates (a
// symbolic link there is refused) and os.Stat for the configured Dir.
func checkPrivateDir(dir string, stat func(string) (fs.FileInfo, error)) error {
	fi, err := stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if p := fi.Mode().Perm(); p&0o077 != 0 {
		return fmt.Errorf("directory %s has mode %#o, want 0700 (run chmod 700)", dir, p)
	}
	return nil
}

// syncDir flushes a directory so that a removal survives a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
