// Package natsserver starts the embedded NATS JetStream server of the local
// stack and of tests, with one user per service whose permissions come from
// the bus registry (bus.PermissionsFor), plus an admin user that provisions
// streams. It binds 127.0.0.1 only unless told otherwise.
package natsserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgw/mcpgw/libs/bus"
)

// AdminUser is the NATS user that provisions streams and buckets.
const AdminUser = "admin"

// Config configures the embedded server. Passwords are plaintext here only
// long enough to be hashed with bcrypt; the server keeps the hashes.
type Config struct {
	// Host defaults to 127.0.0.1; Port 0 picks a free port (-1 in NATS terms).
	Host string
	Port int
	// StoreDir is the JetStream file store directory.
	StoreDir string
	// Passwords of the service users and of AdminUser.
	Passwords     map[bus.Service][]byte
	AdminPassword []byte
	// MaxPayload defaults to 1 MiB.
	MaxPayload int32
	// ServerName defaults to "mcpgw".
	ServerName string
}

// Options builds the server options: users, permissions, JetStream.
func Options(cfg Config) (*server.Options, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("natsserver: StoreDir is required")
	}
	if len(cfg.AdminPassword) == 0 {
		return nil, errors.New("natsserver: admin password is required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	port := cfg.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 1 << 20
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "mcpgw"
	}
	hash := func(p []byte) (string, error) {
		h, err := bcrypt.GenerateFromPassword(p, bcrypt.MinCost+2)
		return string(h), err
	}
	adminHash, err := hash(cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("hash admin password: %w", err)
	}
	users := []*server.User{{Username: AdminUser, Password: adminHash}}
	for _, s := range bus.Services {
		p, ok := cfg.Passwords[s]
		if !ok || len(p) == 0 {
			return nil, fmt.Errorf("natsserver: no password for service %s", s)
		}
		h, err := hash(p)
		if err != nil {
			return nil, fmt.Errorf("hash password of %s: %w", s, err)
		}
		perm := bus.PermissionsFor(s)
		users = append(users, &server.User{
			Username: string(s),
			Password: h,
			Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: perm.PublishAllow, Deny: perm.PublishDeny},
				Subscribe: &server.SubjectPermission{Allow: perm.SubscribeAllow, Deny: perm.SubscribeDeny},
			},
		})
	}
	return &server.Options{
		ServerName:            cfg.ServerName,
		Host:                  cfg.Host,
		Port:                  port,
		HTTPPort:              0,
		NoLog:                 true,
		NoSigs:                true,
		JetStream:             true,
		StoreDir:              cfg.StoreDir,
		MaxPayload:            cfg.MaxPayload,
		Users:                 users,
		DisableShortFirstPing: true,
	}, nil
}

// Start runs an embedded server and waits until it accepts connections.
func Start(cfg Config) (*server.Server, error) {
	opts, err := Options(cfg)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("start nats: not ready after 10s")
	}
	return ns, nil
}
