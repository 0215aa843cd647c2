package devstack

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/spicedbproc"
)

// AdminConn is the launcher's admin NATS connection (it provisions streams
// and may read every subject; tests use it to watch the bus).
func (s *Stack) AdminConn() *nats.Conn { return s.admin }

// RuntimeConfig returns the bus configuration a service process of this
// stack uses (tests use it to act as that service).
func (s *Stack) RuntimeConfig(svc bus.Service) bus.RuntimeConfig {
	return bus.RuntimeConfig{
		Service: svc, URL: s.NATSURL,
		PasswordFile: s.secretPath("nats-" + string(svc) + ".pass"),
		IdentityFile: s.secretPath(string(svc) + ".identity"),
		KeyringFile:  s.path(fileKeyring),
	}
}

// StopService stops one service process (SIGTERM, then SIGKILL) and waits
// for it to end.
func (s *Stack) StopService(svc bus.Service) error {
	for i, p := range s.procs {
		if p.name != string(svc) {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		p.log.Close()
		s.procs = append(s.procs[:i], s.procs[i+1:]...)
		// Drain the exit notice this stop caused.
		select {
		case <-s.exited:
		default:
		}
		return nil
	}
	return fmt.Errorf("service %s is not running", svc)
}

// StartService starts one service process again.
func (s *Stack) StartService(svc bus.Service) error { return s.startService(svc) }

// StopSpiceDB stops SpiceDB (its memory datastore is lost).
func (s *Stack) StopSpiceDB() error {
	err := s.spicedb.Stop()
	return err
}

// StartSpiceDB starts SpiceDB again on the same port with an empty
// datastore; policy rebuilds its relationships from CONTROL.
func (s *Stack) StartSpiceDB(ctx context.Context) error {
	p, err := spicedbproc.Start(ctx, spicedbproc.Config{Binary: filepath.Join(s.cfg.Root, ".bin", "spicedb"), Dir: s.path("spicedb"), Mode: spicedbproc.Memory,
		GRPCPort: s.state.Ports.SpiceDB, PresharedKey: s.Secrets["spicedb preshared key"], Logger: s.log})
	if err != nil {
		return err
	}
	s.spicedb = p
	return nil
}
