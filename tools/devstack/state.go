package devstack

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// Layout of the state directory (default ./.mcpgw/). Secret files are 0600,
// their directories 0700.
const (
	fileState      = "state.json"
	fileKeyring    = "keyring.json"
	fileAdminToken = "admin.token"
	fileDemoKey    = "demo-agent.key"
	dirSecrets     = "secrets"
	dirLogs        = "logs"
	dirBin         = "bin"
)

// persisted is the non-secret state kept across restarts in state.json.
type persisted struct {
	Ports struct {
		NATS       int `json:"nats"`
		SpiceDB    int `json:"spicedb"`
		ClickHouse int `json:"clickhouse"`
		DemoAPI    int `json:"demo_api"`
	} `json:"ports"`
	Demo struct {
		Seeded    bool   `json:"seeded"`
		SourceID  string `json:"source_id,omitempty"`
		BindingID string `json:"binding_id,omitempty"`
		GrantID   string `json:"grant_id,omitempty"`
		KeyID     string `json:"key_id,omitempty"`
	} `json:"demo"`
}

func (s *Stack) path(parts ...string) string {
	return filepath.Join(append([]string{s.cfg.StateDir}, parts...)...)
}

func (s *Stack) secretPath(name string) string { return s.path(dirSecrets, name) }

func (s *Stack) loadState() error {
	b, err := os.ReadFile(s.path(fileState))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &s.state); err != nil {
		return fmt.Errorf("state file %s is corrupt: %w", s.path(fileState), err)
	}
	return nil
}

func (s *Stack) saveState() error {
	b, err := json.MarshalIndent(s.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path(fileState + ".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return os.Rename(tmp, s.path(fileState))
}

// ensureSecret returns the secret in file name under secrets/ (or at path
// when absolute), creating it with n random bytes (base64url) when missing.
func ensureSecret(path, prefix string, n int) (secret.Value, error) {
	if v, err := bus.ReadSecretFile(path); err == nil {
		return v, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return secret.Value{}, err
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return secret.Value{}, err
	}
	v := []byte(prefix + base64.RawURLEncoding.EncodeToString(b))
	if err := bus.WriteSecretFile(path, v); err != nil {
		return secret.Value{}, err
	}
	return secret.New(v), nil
}

// ensureKeys creates (once) every service's signing identity, the HPKE keys
// of policy and the broker, and the public keyring.
func (s *Stack) ensureKeys() (*bus.Keyring, error) {
	pubs := map[bus.Service]ed25519.PublicKey{}
	for _, svc := range bus.Services {
		p := s.secretPath(string(svc) + ".identity")
		id, err := bus.ReadIdentityFile(svc, p)
		if errors.Is(err, os.ErrNotExist) {
			if id, err = bus.NewIdentity(svc); err == nil {
				err = bus.WriteIdentityFile(p, id)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("identity of %s: %w", svc, err)
		}
		pubs[svc] = id.Public()
	}
	kr, err := bus.NewKeyring(pubs)
	if err != nil {
		return nil, err
	}
	for _, svc := range []bus.Service{bus.Policy, bus.Broker} {
		p := s.secretPath(string(svc) + ".seal")
		k, err := seal.ReadPrivateKeyFile(p)
		if errors.Is(err, os.ErrNotExist) {
			if k, err = seal.GenerateKey(); err == nil {
				err = seal.WritePrivateKeyFile(p, k)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("sealing key of %s: %w", svc, err)
		}
		kr.SetSealKey(svc, k.Public().Bytes())
		if svc == bus.Broker {
			if err := os.WriteFile(s.path("broker.seal.pub"), []byte(k.Public().String()+"\n"), 0o644); err != nil {
				return nil, err
			}
		}
	}
	b, err := json.MarshalIndent(kr, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.path(fileKeyring), b, 0o644); err != nil {
		return nil, fmt.Errorf("write keyring: %w", err)
	}
	return kr, nil
}

// port returns *p, choosing a free loopback port the first time.
func port(p *int) error {
	if *p != 0 {
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("pick a free port: %w", err)
	}
	*p = l.Addr().(*net.TCPAddr).Port
	return l.Close()
}
