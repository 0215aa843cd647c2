package secret

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// MaxFileSize is the largest secret file [ReadFile] accepts, in bytes.
const MaxFileSize = 1 << 20

// FileMode is the mode [WriteFile] and [CreateFile] give the files they write.
const FileMode fs.FileMode = 0o600

// ErrPermissions is returned (wrapped) by [ReadFile] when a file's mode is not
// exactly 0600 or 0400, or when it is not a regular file.
var ErrPermissions = errors.New("secret file must be a regular file with mode 0600 or 0400")

// ReadFile reads a secret from the file at path. It refuses (with an error
// wrapping [ErrPermissions]) a file that is not a regular file or whose mode
// is not exactly 0600 or 0400, so that a secret readable by group or others
// is never used. Symbolic links are followed and the mode checked is the one
// of the opened file. Files larger than [MaxFileSize] are refused. Errors name
// the path and the mode, never the contents.
func ReadFile(path string) (Value, error) {
	f, err := os.Open(path)
	if err != nil {
		return Value{}, fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Value{}, fmt.Errorf("read secret file: %w", err)
	}
	if err := CheckMode(fi); err != nil {
		return Value{}, fmt.Errorf("read secret file %s: %w", path, err)
	}
	if fi.Size() > MaxFileSize {
		return Value{}, fmt.Errorf("read secret file %s: larger than %d bytes", path, MaxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		clear(b)
		return Value{}, fmt.Errorf("read secret file %s: %w", path, err)
	}
	if len(b) > MaxFileSize {
		clear(b)
		return Value{}, fmt.Errorf("read secret file %s: larger than %d bytes", path, MaxFileSize)
	}
	v := New(b)
	clear(b)
	return v, nil
}

// CheckMode returns an error wrapping [ErrPermissions] unless fi describes a
// regular file with mode exactly 0600 or 0400.
func CheckMode(fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w (found %s)", ErrPermissions, fi.Mode().Type())
	}
	if p := fi.Mode().Perm(); p != 0o600 && p != 0o400 {
		return fmt.Errorf("%w (found %#o; run chmod 600)", ErrPermissions, p)
	}
	if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return fmt.Errorf("%w (found %s)", ErrPermissions, fi.Mode())
	}
	return nil
}

// WriteFile writes v to the file at path with mode 0600, atomically: the
// bytes go to a temporary file in the same directory, which is synced and
// then renamed over path, and the directory is synced. A reader sees either
// the old file or the complete new one. An existing file at path is replaced.
func WriteFile(path string, v Value) error {
	tmp, err := writeTemp(path, v)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write secret file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// CreateFile writes v to a new file at path with mode 0600, atomically like
// [WriteFile], but never replaces an existing file: if path exists it returns
// an error wrapping [fs.ErrExist] and leaves the file as it was. Two processes
// racing to create the same path cannot both succeed. It needs a file system
// that supports hard links.
func CreateFile(path string, v Value) error {
	tmp, err := writeTemp(path, v)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		return fmt.Errorf("create secret file: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes v to a synced 0600 temporary file beside path and returns
// its name.
func writeTemp(path string, v Value) (string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write secret file: %w", err)
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		_ = f.Close()
		_ = os.Remove(name)
		return "", fmt.Errorf("write secret file %s: %w", path, err)
	}
	if err := f.Chmod(FileMode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(v.bytes()); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", fmt.Errorf("write secret file %s: %w", path, err)
	}
	return name, nil
}

// syncDir flushes a directory so that a rename or link into it survives a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
