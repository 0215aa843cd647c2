package seal

import (
	"fmt"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// ReadPrivateKeyFile reads a private key written by [WritePrivateKeyFile]: a
// file of exactly 32 bytes. It refuses a file whose mode is not 0600 or 0400
// (an error wrapping [secret.ErrPermissions]), and one of any other size (an
// error wrapping [ErrMalformed]). Errors name the path, never the key.
func ReadPrivateKeyFile(path string) (*PrivateKey, error) {
	v, err := secret.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read private key: %w", err)
	}
	defer v.Wipe()
	k, err := ParsePrivateKey(v)
	if err != nil {
		return nil, fmt.Errorf("read private key %s: %w", path, err)
	}
	return k, nil
}

// WritePrivateKeyFile writes k to path as a 0600 file of 32 bytes, atomically
// (see [secret.WriteFile]); an existing file is replaced.
func WritePrivateKeyFile(path string, k *PrivateKey) error {
	v, err := k.Secret()
	if err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	defer v.Wipe()
	if err := secret.WriteFile(path, v); err != nil {
		return fmt.Errorf("write private key: %w", err)
	}
	return nil
}
