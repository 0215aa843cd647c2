package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RuntimeConfig names the files and address a service needs to join the
// bus. Every file is read once; credential files must be 0600.
type RuntimeConfig struct {
	Service      Service
	URL          string
	PasswordFile string
	// IdentityFile holds the service's Ed25519 signing seed.
	IdentityFile string
	// KeyringFile holds every service's public signing key.
	KeyringFile string
	Logger      *slog.Logger
}

// Runtime is a service's connection to the bus with everything built on it:
// JetStream, its signing identity, the keyring, an event verifier and
// publisher, an RPC client and server (with the service's nonce bucket).
// Services build one in their composition root and close it on shutdown.
type Runtime struct {
	Service   Service
	Conn      *nats.Conn
	JetStream jetstream.JetStream
	Identity  *Identity
	Keyring   *Keyring
	Verifier  *Verifier
	Publisher *Publisher
	Client    *Client
	Server    *Server
	Logger    *slog.Logger
}

// Open connects and builds a Runtime. It fails when the streams or the
// service's nonce bucket are not provisioned (services never create them).
func Open(ctx context.Context, cfg RuntimeConfig) (*Runtime, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.IdentityFile == "" || cfg.KeyringFile == "" {
		return nil, errors.New("bus: identity and keyring files are required")
	}
	id, err := ReadIdentityFile(cfg.Service, cfg.IdentityFile)
	if err != nil {
		return nil, err
	}
	keys, err := ReadKeyringFile(cfg.KeyringFile)
	if err != nil {
		return nil, err
	}
	return OpenWith(ctx, cfg, id, keys)
}

// OpenWith is Open with an identity and keyring already loaded (tests).
func OpenWith(ctx context.Context, cfg RuntimeConfig, id *Identity, keys *Keyring) (*Runtime, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if id.Service != cfg.Service {
		return nil, fmt.Errorf("bus: identity is %s, not %s", id.Service, cfg.Service)
	}
	if pub, ok := keys.Key(cfg.Service); !ok || !pub.Equal(id.Public()) {
		return nil, fmt.Errorf("bus: keyring does not hold %s's public key", cfg.Service)
	}
	nc, err := Connect(ConnConfig{URL: cfg.URL, Service: cfg.Service, PasswordFile: cfg.PasswordFile, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	rt := &Runtime{Service: cfg.Service, Conn: nc, Identity: id, Keyring: keys, Logger: cfg.Logger}
	fail := func(err error) (*Runtime, error) { nc.Close(); return nil, err }
	if rt.JetStream, err = jetstream.New(nc); err != nil {
		return fail(fmt.Errorf("jetstream: %w", err))
	}
	for _, s := range []string{StreamControl, StreamAudit} {
		if _, err := rt.JetStream.Stream(ctx, s); err != nil {
			return fail(fmt.Errorf("%w: %s: %v", ErrNotProvisioned, s, err))
		}
	}
	if rt.Verifier, err = NewVerifier(keys); err != nil {
		return fail(err)
	}
	if rt.Publisher, err = NewPublisher(PublisherConfig{JetStream: rt.JetStream, Identity: id}); err != nil {
		return fail(err)
	}
	if rt.Client, err = NewClient(ClientConfig{Conn: nc, Identity: id, Keyring: keys}); err != nil {
		return fail(err)
	}
	nonces, err := NewKVNonceStore(ctx, rt.JetStream, cfg.Service)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ErrNotProvisioned, err))
	}
	if rt.Server, err = NewServer(ServerConfig{Conn: nc, Identity: id, Keyring: keys, Nonces: nonces, Logger: cfg.Logger}); err != nil {
		return fail(err)
	}
	return rt, nil
}

// NewProjection returns a CONTROL projection verified with the runtime's
// keyring.
func (rt *Runtime) NewProjection(filters ...string) (*Projection, error) {
	return NewProjection(ProjectionConfig{JetStream: rt.JetStream, Verifier: rt.Verifier, Logger: rt.Logger, Filters: filters})
}

// Close stops serving, drains the connection (in-flight requests finish)
// and returns once it is closed, or after a bound of 5 s: when Close
// returns, the service answers nothing more.
func (rt *Runtime) Close() {
	rt.Server.Close()
	if err := rt.Conn.Drain(); err != nil {
		rt.Conn.Close()
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for !rt.Conn.IsClosed() {
		if time.Now().After(deadline) {
			rt.Conn.Close()
			return
		}
		time.Sleep(5 * time.Millisecond) // polling a state nats.go exposes no channel for
	}
}
