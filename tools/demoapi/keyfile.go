package demoapi

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/mcpgw/mcpgw/libs/secret"
	"net"
)

// ReadKeyFile reads an API key from path with secret.ReadFile (a regular
// file of mode 0600 or 0400, bounded in size), removes one trailing line
// ending, and refuses an empty key. Errors name the path, never the content.
func ReadKeyFile(path string) (secret.Value, error) {
	v, err := secret.ReadFile(path)
	if err != nil {
		return secret.Value{}, fmt.Errorf("read key file: %w", err)
	}
	b := v.Reveal()
	v.Wipe()
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if len(b) == 0 {
		return secret.Value{}, fmt.Errorf("read key file %s: empty", path)
	}
	defer clear(b)
	return secret.New(b), nil
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
