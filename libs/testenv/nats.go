package testenv

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/natsserver"
	"github.com/mcpgw/mcpgw/libs/seal"
)

// NATSServer is a real embedded NATS JetStream server on a random
// 127.0.0.1 port with one user per service (permissions from the bus
// registry) and an admin user, with every stream and bucket provisioned.
type NATSServer struct {
	URL    string
	Server *server.Server
	// Admin is a connection as the admin user; JS its JetStream context.
	Admin *nats.Conn
	JS    jetstream.JetStream
	dir   string
	// Secrets lists every generated password (for canary searches).
	Secrets [][]byte
}

// NATS starts a server for the test and stops it at cleanup.
func NATS(t testing.TB) *NATSServer {
	t.Helper()
	dir := t.TempDir()
	n := &NATSServer{dir: dir}
	pw := func() []byte {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		p := []byte("nats-" + hex.EncodeToString(b[:]))
		n.Secrets = append(n.Secrets, p)
		return p
	}
	cfg := natsserver.Config{StoreDir: filepath.Join(dir, "jetstream"), Passwords: map[bus.Service][]byte{}, AdminPassword: pw()}
	for _, s := range bus.Services {
		p := pw()
		cfg.Passwords[s] = p
		if err := bus.WriteSecretFile(n.PasswordFile(s), p); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := natsserver.Start(cfg)
	if err != nil {
		t.Fatalf("start nats: %v", err)
	}
	n.Server, n.URL = ns, ns.ClientURL()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	n.Admin, err = nats.Connect(n.URL, nats.UserInfo(natsserver.AdminUser, string(cfg.AdminPassword)))
	if err != nil {
		t.Fatalf("connect admin: %v", err)
	}
	t.Cleanup(n.Admin.Close)
	n.JS, err = jetstream.New(n.Admin)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.Provision(ctx, n.JS, bus.ProvisionConfig{}); err != nil {
		t.Fatalf("provision: %v", err)
	}
	return n
}

// PasswordFile is the 0600 file holding a service's NATS password.
func (n *NATSServer) PasswordFile(s bus.Service) string {
	return filepath.Join(n.dir, "secrets", "nats-"+string(s)+".pass")
}

// Connect connects as a service's own user (closed at cleanup).
func (n *NATSServer) Connect(t testing.TB, s bus.Service) *nats.Conn {
	t.Helper()
	nc, err := bus.Connect(bus.ConnConfig{URL: n.URL, Service: s, PasswordFile: n.PasswordFile(s)})
	if err != nil {
		t.Fatalf("connect %s: %v", s, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Keys holds a fresh signing identity for every service, HPKE keys for
// policy and the broker, and the keyring with all their public keys.
type Keys struct {
	ID      map[bus.Service]*bus.Identity
	Seal    map[bus.Service]*seal.PrivateKey
	Keyring *bus.Keyring
}

// NewKeys generates identities for every service.
func NewKeys(t testing.TB) *Keys {
	t.Helper()
	k := &Keys{ID: map[bus.Service]*bus.Identity{}}
	pubs := map[bus.Service]ed25519.PublicKey{}
	for _, s := range bus.Services {
		id, err := bus.NewIdentity(s)
		if err != nil {
			t.Fatal(err)
		}
		k.ID[s] = id
		pubs[s] = id.Public()
	}
	kr, err := bus.NewKeyring(pubs)
	if err != nil {
		t.Fatal(err)
	}
	k.Keyring = kr
	k.Seal = map[bus.Service]*seal.PrivateKey{}
	for _, s := range []bus.Service{bus.Policy, bus.Broker} {
		sk, err := seal.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		k.Seal[s] = sk
		kr.SetSealKey(s, sk.Public().Bytes())
	}
	return k
}

// Runtime opens a service's bus runtime on n with the identity from k
// (closed at cleanup).
func (n *NATSServer) Runtime(t testing.TB, k *Keys, s bus.Service) *bus.Runtime {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rt, err := bus.OpenWith(ctx, bus.RuntimeConfig{Service: s, URL: n.URL, PasswordFile: n.PasswordFile(s)}, k.ID[s], k.Keyring)
	if err != nil {
		t.Fatalf("open %s runtime: %v", s, err)
	}
	t.Cleanup(rt.Close)
	return rt
}

// SignEvent signs ev as id for subject (acting as that service, possibly a
// compromised one), failing the test on error.
func SignEvent(t testing.TB, id *bus.Identity, subject string, ev bus.Message) *nats.Msg {
	t.Helper()
	m, err := bus.SignEvent(id, subject, ev)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
