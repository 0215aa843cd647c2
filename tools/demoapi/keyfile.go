package demoapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
)

// maxKeyFileBytes bounds how much of a key file ReadKeyFile reads.
const maxKeyFileBytes = 4 << 10

// ReadKeyFile reads an API key from path. It refuses a file that is not a
// regular file, that group or others may access (its mode must allow
// nothing beyond 0600), that is larger than 4 KiB, or that holds no key. One
// trailing line ending is removed. Errors name the path, never the content.
func ReadKeyFile(path string) (Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("read key file %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("read key file %s: mode %04o lets group or others access it; want 0600", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(b) > maxKeyFileBytes {
		return nil, fmt.Errorf("read key file %s: larger than %d bytes", path, maxKeyFileBytes)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return nil, fmt.Errorf("read key file %s: empty", path)
	}
	return Secret(b), nil
}

// ErrNotLoopback is returned (wrapped) by CheckListenAddr for an address
// that is not a loopback address.
var ErrNotLoopback = errors.New("not a loopback address")

// CheckListenAddr returns an error unless addr (host:port) names a loopback
// address ("localhost" or a loopback IP) or allowRemote is true. An empty
// host means every interface and is refused too. It resolves no names.
func CheckListenAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("check listen address %q: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("check listen address %q: %w", addr, ErrNotLoopback)
}
