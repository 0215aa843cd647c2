package service_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/testenv"
	"github.com/mcpgw/mcpgw/services/policy/internal/service"
)

// files writes the 0600 files a deployment gives policy and returns a
// Config naming them.
func files(t *testing.T, e *env, spicedbAddr string, spicedbKey []byte) service.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := service.Config{
		NATSURL: e.n.URL, NATSPasswordFile: e.n.PasswordFile(bus.Policy),
		IdentityFile: filepath.Join(dir, "policy.identity"), KeyringFile: filepath.Join(dir, "keyring.json"),
		SealKeyFile: filepath.Join(dir, "policy.seal"), AdminTokenFile: filepath.Join(dir, "admin.token"),
		SpiceDBAddr: spicedbAddr, SpiceDBKeyFile: filepath.Join(dir, "spicedb.key"),
		Logger: e.logger,
	}
	if err := bus.WriteIdentityFile(cfg.IdentityFile, e.keys.ID[bus.Policy]); err != nil {
		t.Fatal(err)
	}
	kr, err := e.keys.Keyring.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.KeyringFile, kr, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := seal.WritePrivateKeyFile(cfg.SealKeyFile, e.keys.Seal[bus.Policy]); err != nil {
		t.Fatal(err)
	}
	if err := bus.WriteSecretFile(cfg.AdminTokenFile, []byte(adminToken+"\n")); err != nil {
		t.Fatal(err)
	}
	if err := bus.WriteSecretFile(cfg.SpiceDBKeyFile, spicedbKey); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNewFromFiles(t *testing.T) {
	e := newEnv(t)
	sdb := testenv.SpiceDB(t)
	key := sdb.PresharedKey.Reveal()
	cfg := files(t, e, sdb.Addr, key)

	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name   string
			mutate func(c *service.Config)
			want   string
		}{
			{"admin token in production", func(c *service.Config) { c.Production = true }, "production"},
			{"no seal key", func(c *service.Config) { c.SealKeyFile = "" }, "required"},
			{"no spicedb key", func(c *service.Config) { c.SpiceDBKeyFile = "" }, "required"},
			{"readable admin token file", func(c *service.Config) {
				p := filepath.Join(t.TempDir(), "admin.token")
				if err := os.WriteFile(p, []byte(adminToken), 0o644); err != nil {
					t.Fatal(err)
				}
				c.AdminTokenFile = p
			}, "admin token"},
			{"context lifetime over a minute", func(c *service.Config) { c.ContextTTL = 2 * time.Minute }, "lifetime"},
			{"seal key not in the keyring", func(c *service.Config) {
				other, err := seal.GenerateKey()
				if err != nil {
					t.Fatal(err)
				}
				c.SealKeyFile = filepath.Join(t.TempDir(), "other.seal")
				if err := seal.WritePrivateKeyFile(c.SealKeyFile, other); err != nil {
					t.Fatal(err)
				}
			}, "sealing key"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := cfg
				tt.mutate(&c)
				svc, err := service.New(c)
				if err == nil {
					svc.Close()
					t.Fatal("New accepted the configuration")
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %q does not mention %q", err, tt.want)
				}
			})
		}
	})

	t.Run("serves", func(t *testing.T) {
		svc, err := service.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			svc.Close()
		}()
		select {
		case <-svc.Ready():
		case err := <-done:
			t.Fatalf("stopped: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("not serving within 60s")
		}
		c := e.verify(t, e.contextFor(t, adminToken))
		if !c.GetPlatformAdmin() {
			t.Fatal("admin token from the file not accepted")
		}
	})
	e.assertNoCanary(t, adminToken, string(key))
}
