package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// errNoToken says where a token can come from.
var errNoToken = errors.New("no operator token: pass --token-file, or set MCPGW_TOKEN_FILE or MCPGW_TOKEN (the local stack keeps its admin token in ./.mcpgw/admin.token)")

// token returns the operator token from, in order: --token-file,
// MCPGW_TOKEN_FILE, MCPGW_TOKEN, ./.mcpgw/admin.token when it exists. Token
// files must have mode 0600 or 0400. The token is registered for scrubbing.
func (r *run) token(cmd *cobra.Command) (secret.Value, error) {
	var (
		v   secret.Value
		err error
	)
	switch {
	case cmd.Flags().Changed("token-file"):
		if r.tokenFile == "" {
			return secret.Value{}, usagef(cmd, "--token-file must not be empty")
		}
		v, err = readTokenFile(r.tokenFile)
	case r.cfg.Env.TokenFile != "":
		v, err = readTokenFile(r.cfg.Env.TokenFile)
		if err != nil {
			err = fmt.Errorf("%w (from MCPGW_TOKEN_FILE)", err)
		}
	case !r.cfg.Env.Token.IsZero():
		v = trimmed(r.cfg.Env.Token)
		if v.IsZero() {
			return secret.Value{}, errors.New("MCPGW_TOKEN is blank")
		}
	default:
		p := r.statePath(AdminTokenFile)
		if _, statErr := os.Stat(p); errors.Is(statErr, fs.ErrNotExist) {
			return secret.Value{}, errNoToken
		}
		v, err = readTokenFile(p)
	}
	if err != nil {
		return secret.Value{}, err
	}
	r.keep(v)
	return v, nil
}

// readTokenFile reads a token from a 0600 (or 0400) file, without
// surrounding whitespace.
func readTokenFile(path string) (secret.Value, error) {
	raw, err := secret.ReadFile(path)
	if err != nil {
		return secret.Value{}, fmt.Errorf("token file: %w", err)
	}
	v := trimmed(raw)
	raw.Wipe()
	if v.IsZero() {
		return secret.Value{}, fmt.Errorf("token file %s is empty", path)
	}
	return v, nil
}

// trimmed returns v without surrounding whitespace, as a new Value.
func trimmed(v secret.Value) secret.Value {
	b := v.Reveal()
	defer clear(b)
	return secret.New(bytes.TrimSpace(b))
}
