package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/tools/client"
)

// maxKeyFile bounds a public key file.
const maxKeyFile = 4 << 10

// pinFile is the JSON of pins.json: the broker key first seen at each
// server. Public keys only; nothing in it is secret.
type pinFile struct {
	Servers map[string]pin `json:"servers"`
}

// pin is one server's pinned broker key.
type pin struct {
	BrokerKey   string    `json:"broker_key"`
	Fingerprint string    `json:"fingerprint"`
	PinnedAt    time.Time `json:"pinned_at"`
}

// brokerKey returns the key `secret put` seals to: the key in keyFile
// (--broker-key-file, else ./.mcpgw/broker.seal.pub when present), else the
// server's key, trusted on first use and pinned per server in
// ConfigDir/pins.json. A server key that differs from its pin is refused.
func (r *run) brokerKey(ctx context.Context, cmd *cobra.Command, c *client.Client, keyFile string) (*seal.PublicKey, error) {
	if !cmd.Flags().Changed("broker-key-file") {
		keyFile = ""
		if p := r.statePath(BrokerKeyFile); fileExists(p) {
			keyFile = p
		}
	}
	if keyFile != "" {
		k, err := readPublicKeyFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("broker key: %w", err)
		}
		return k, nil
	}
	if r.cfg.ConfigDir == "" {
		return nil, errors.New("broker key: no configuration directory to pin the broker's key in; set XDG_CONFIG_HOME or pass --broker-key-file")
	}
	keys, err := c.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch broker key: %w", err)
	}
	k, err := seal.ParsePublicKey(keys.Broker)
	if err != nil {
		return nil, fmt.Errorf("broker key from the server: %w", err)
	}
	if keys.BrokerFingerprint != "" && keys.BrokerFingerprint != k.Fingerprint() {
		return nil, fmt.Errorf("broker key from the server does not match the fingerprint it announced (%s, key %s)", printable(keys.BrokerFingerprint), k.Fingerprint())
	}
	path := filepath.Join(r.cfg.ConfigDir, PinsFile)
	pins, err := readPins(path)
	if err != nil {
		return nil, err
	}
	server := pinKey(r.serverURL(cmd))
	if p, ok := pins.Servers[server]; ok {
		if p.BrokerKey == k.String() {
			return k, nil
		}
		return nil, fmt.Errorf("the broker key of %s changed: pinned %s, the server now offers %s; refusing to seal a secret to it (if the key was rotated on purpose, check the new key with the operator of the gateway, then remove %q from %s or pass --broker-key-file)",
			server, printable(p.Fingerprint), k.Fingerprint(), server, path)
	}
	pins.Servers[server] = pin{BrokerKey: k.String(), Fingerprint: k.Fingerprint(), PinnedAt: r.cfg.Now().UTC()}
	if err := writePins(path, pins); err != nil {
		return nil, err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "Pinned the broker key %s of %s (first use; stored in %s).\n", k.Fingerprint(), server, path)
	return k, nil
}

// readPublicKeyFile reads a public key in its text form.
func readPublicKeyFile(path string) (*seal.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	k, err := seal.ParsePublicKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// pinKey names a server in pins.json: scheme, lowercased host and path.
func pinKey(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return server
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/")
}

func readPins(path string) (*pinFile, error) {
	p := &pinFile{}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read key pins: %w", err)
	default:
		if err := json.Unmarshal(b, p); err != nil {
			return nil, fmt.Errorf("key pins %s are corrupt: %w", path, err)
		}
	}
	if p.Servers == nil {
		p.Servers = map[string]pin{}
	}
	return p, nil
}

// writePins replaces pins.json atomically, creating its directory (0700).
func writePins(path string, p *pinFile) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("encode key pins: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write key pins: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+PinsFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("write key pins: %w", err)
	}
	tmp := f.Name()
	_, werr := f.Write(append(b, '\n'))
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write key pins: %w", werr)
	}
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
