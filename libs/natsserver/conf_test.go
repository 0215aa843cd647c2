package natsserver_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/natsserver"
	"github.com/mcpgw/mcpgw/libs/testenv"
)

// TestConfigFileParsesWithSamePermissions loads the generated file with
// nats-server's own parser and compares users and permissions with the
// embedded server's options.
func TestConfigFileParsesWithSamePermissions(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(natsserver.PasswordHashEnv(natsserver.AdminUser), string(hash))
	for _, s := range bus.Services {
		t.Setenv(natsserver.PasswordHashEnv(string(s)), string(hash))
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(natsserver.ConfigFile("127.0.0.1:4222", "/data")), 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server rejects the generated config: %v", err)
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	if users[natsserver.AdminUser] == nil || users[natsserver.AdminUser].Password != string(hash) {
		t.Fatal("admin user missing or password not taken from the environment")
	}
	for _, s := range bus.Services {
		u := users[string(s)]
		if u == nil || u.Permissions == nil {
			t.Fatalf("user %s missing", s)
		}
		want := bus.PermissionsFor(s)
		if len(u.Permissions.Publish.Allow) != len(want.PublishAllow) || len(u.Permissions.Subscribe.Allow) != len(want.SubscribeAllow) ||
			len(u.Permissions.Publish.Deny) != len(want.PublishDeny) {
			t.Fatalf("permissions of %s differ from the registry", s)
		}
	}
}

// TestCommittedConfigIsCurrent fails when deploy/nats/nats.conf is stale.
func TestCommittedConfigIsCurrent(t *testing.T) {
	root := testenv.Root(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != natsserver.ConfigFile("0.0.0.0:4222", "/data") {
		t.Fatal("deploy/nats/nats.conf is stale: run `go run ./tools/cmd/natsconf > deploy/nats/nats.conf`")
	}
}
