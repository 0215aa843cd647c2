// Package devstack runs the whole mcpgw system on one machine: an embedded
// NATS JetStream server (in this process), the real SpiceDB and ClickHouse
// servers, the six services as their own processes, and the demo messages
// API (in this process). It keeps all state under one directory, seeds the
// demo in tenant "demo" once, and comes back up with its state after a
// restart. `make run` and the end-to-end tests use it.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	natsserverpkg "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/chproc"
	"github.com/mcpgw/mcpgw/libs/natsserver"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/libs/spicedbproc"
	"github.com/mcpgw/mcpgw/tools/client"
	"github.com/mcpgw/mcpgw/tools/demoapi"
)

// Tenant is the demo's tenant.
const Tenant = "demo"

// Config configures a stack.
type Config struct {
	// Root is the repository root (holding go.work); binaries are built from it.
	Root string
	// StateDir keeps all state (default Root/.mcpgw).
	StateDir string
	// EdgeAddr is the edge's listen address (default 127.0.0.1:8080; port 0
	// picks a free one).
	EdgeAddr string
	// BinDir holds prebuilt service binaries; empty builds them into
	// StateDir/bin.
	BinDir string
	// Environment is the gateway's deployment environment (default "dev").
	Environment string
	// ExtraEnv is added to every service's environment (tests).
	ExtraEnv []string
	// Logger receives the launcher's own progress; service output goes to
	// StateDir/logs/<service>.log.
	Logger *slog.Logger
}

// Stack is a running system.
type Stack struct {
	cfg   Config
	log   *slog.Logger
	state persisted

	nats    *natsserverpkg.Server
	admin   *nats.Conn
	spicedb *spicedbproc.Process
	ch      *chproc.Process
	demo    *http.Server
	demoSrv *demoapi.Server
	procs   []*proc

	// AdminToken is the local stack's admin token (platform admin).
	AdminToken secret.Value
	// AgentKey is the demo agent's key.
	AgentKey secret.Value
	// NATSURL, EdgeURL and DemoURL locate the parts.
	NATSURL, EdgeURL, DemoURL string
	// Secrets lists every generated credential (for canary searches).
	Secrets map[string]secret.Value

	exited chan string
	once   sync.Once
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// Start brings the whole system up. On error it stops what it started.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	if cfg.Root == "" {
		return nil, errors.New("devstack: Root is required")
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.Root, ".mcpgw")
	}
	if cfg.EdgeAddr == "" {
		cfg.EdgeAddr = "127.0.0.1:8080"
	}
	if host, p, err := net.SplitHostPort(cfg.EdgeAddr); err != nil {
		return nil, fmt.Errorf("devstack: edge address: %w", err)
	} else if p == "0" {
		n := 0
		if err := port(&n); err != nil {
			return nil, err
		}
		cfg.EdgeAddr = net.JoinHostPort(host, strconv.Itoa(n))
	}
	if cfg.Environment == "" {
		cfg.Environment = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stack{cfg: cfg, log: cfg.Logger, Secrets: map[string]secret.Value{}, exited: make(chan string, 16)}
	if err := s.start(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Stack) start(ctx context.Context) error {
	for _, d := range []string{"", dirSecrets, dirLogs, "nats", "clickhouse", "spicedb", "broker"} {
		if err := os.MkdirAll(s.path(d), 0o700); err != nil {
			return fmt.Errorf("create state dir: %w", err)
		}
	}
	if err := s.loadState(); err != nil {
		return err
	}
	for _, p := range []*int{&s.state.Ports.NATS, &s.state.Ports.SpiceDB, &s.state.Ports.ClickHouse, &s.state.Ports.DemoAPI} {
		if err := port(p); err != nil {
			return err
		}
	}
	if err := s.saveState(); err != nil {
		return err
	}
	if _, err := s.ensureKeys(); err != nil {
		return err
	}
	var err error
	if s.AdminToken, err = ensureSecret(s.path(fileAdminToken), "mgwadm_", 32); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	s.Secrets["admin token"] = s.AdminToken
	// Bins are built while the dependencies start.
	buildErr := make(chan error, 1)
	go func() { buildErr <- s.build(ctx) }()

	if err := s.startNATS(ctx); err != nil {
		return err
	}
	if err := s.startSpiceDB(ctx); err != nil {
		return err
	}
	if err := s.startClickHouse(ctx); err != nil {
		return err
	}
	if err := s.startDemoAPI(); err != nil {
		return err
	}
	if err := <-buildErr; err != nil {
		return err
	}
	if err := s.startServices(); err != nil {
		return err
	}
	if err := s.waitEdge(ctx); err != nil {
		return err
	}
	if err := s.seed(ctx); err != nil {
		return fmt.Errorf("seed the demo: %w", err)
	}
	return s.waitReady(ctx)
}

// waitReady returns once an operator request passes authentication by
// policy and every service answers, so the banner is printed only when the
// system serves: after a restart, services first replay CONTROL.
func (s *Stack) waitReady(ctx context.Context) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	return retry(ctx, "wait for the services", func() error {
		if _, err := c.Keys(ctx); err != nil {
			return err
		}
		_, err := c.Audit(ctx, Tenant, client.AuditQuery{RequestID: "req_ready", Limit: 1})
		return err
	})
}

func (s *Stack) build(ctx context.Context) error {
	if s.cfg.BinDir != "" {
		return nil
	}
	s.cfg.BinDir = s.path(dirBin)
	pkgs := []string{}
	for _, svc := range bus.Services {
		pkgs = append(pkgs, "./services/"+string(svc)+"/cmd/"+string(svc))
	}
	s.log.Info("building services")
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", s.cfg.BinDir + "/"}, pkgs...)...)
	cmd.Dir = s.cfg.Root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build services: %v\n%s", err, out)
	}
	return nil
}

func (s *Stack) startNATS(ctx context.Context) error {
	cfg := natsserver.Config{Port: s.state.Ports.NATS, StoreDir: s.path("nats"), Passwords: map[bus.Service][]byte{}}
	admin, err := ensureSecret(s.secretPath("nats-admin.pass"), "", 24)
	if err != nil {
		return err
	}
	cfg.AdminPassword = admin.Reveal()
	s.Secrets["nats admin password"] = admin
	for _, svc := range bus.Services {
		p, err := ensureSecret(s.secretPath("nats-"+string(svc)+".pass"), "", 24)
		if err != nil {
			return err
		}
		cfg.Passwords[svc] = p.Reveal()
		s.Secrets["nats password of "+string(svc)] = p
	}
	ns, err := natsserver.Start(cfg)
	if err != nil {
		return fmt.Errorf("nats (port %d): %w", s.state.Ports.NATS, err)
	}
	s.nats, s.NATSURL = ns, ns.ClientURL()
	s.admin, err = nats.Connect(s.NATSURL, nats.UserInfo(natsserver.AdminUser, string(cfg.AdminPassword)), nats.Name("mcpgw-launcher"))
	if err != nil {
		return fmt.Errorf("connect to nats as admin: %w", err)
	}
	js, err := jetstream.New(s.admin)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bus.Provision(pctx, js, bus.ProvisionConfig{}); err != nil {
		return err
	}
	s.log.Info("nats ready", "url", s.NATSURL)
	return nil
}

func (s *Stack) startSpiceDB(ctx context.Context) error {
	key, err := ensureSecret(s.secretPath("spicedb.key"), "", 24)
	if err != nil {
		return err
	}
	s.Secrets["spicedb preshared key"] = key
	bin := filepath.Join(s.cfg.Root, ".bin", "spicedb")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("spicedb binary missing at %s: run `make deps`", bin)
	}
	s.spicedb, err = spicedbproc.Start(ctx, spicedbproc.Config{Binary: bin, Dir: s.path("spicedb"), Mode: spicedbproc.Memory,
		GRPCPort: s.state.Ports.SpiceDB, PresharedKey: key, Logger: s.log})
	if err != nil {
		return fmt.Errorf("spicedb: %w", err)
	}
	s.log.Info("spicedb ready", "addr", s.spicedb.Addr())
	return nil
}

func (s *Stack) startClickHouse(ctx context.Context) error {
	pw, err := ensureSecret(s.secretPath("clickhouse.pass"), "", 24)
	if err != nil {
		return err
	}
	s.Secrets["clickhouse password"] = pw
	s.ch, err = chproc.Start(ctx, chproc.Config{Dir: s.path("clickhouse"), TCPPort: s.state.Ports.ClickHouse, Password: pw, Logger: s.log})
	if err != nil {
		return fmt.Errorf("clickhouse: %w (if clickhouse-server is missing, run `make deps`)", err)
	}
	s.log.Info("clickhouse ready", "addr", s.ch.Addr())
	return nil
}

func (s *Stack) startDemoAPI() error {
	key, err := ensureSecret(s.secretPath("demoapi.key"), "demo_", 24)
	if err != nil {
		return err
	}
	s.Secrets["demo api key"] = key
	s.demoSrv, err = demoapi.New(demoapi.Config{APIKey: key, Logger: s.log})
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(s.state.Ports.DemoAPI)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("demo api on %s: %w", addr, err)
	}
	s.demo = &http.Server{Handler: s.demoSrv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.demo.Serve(l) }()
	s.DemoURL = "http://" + addr
	return nil
}

// DemoAPI returns the in-process demo API (its Recorder shows what the
// upstream received).
func (s *Stack) DemoAPI() *demoapi.Server { return s.demoSrv }

// ServiceArgs returns the command-line flags of a service: addresses and
// paths of 0600 files only, never a secret.
func (s *Stack) ServiceArgs(svc bus.Service) []string {
	args := []string{
		"-nats-url", s.NATSURL,
		"-nats-password-file", s.secretPath("nats-" + string(svc) + ".pass"),
		"-identity-file", s.secretPath(string(svc) + ".identity"),
		"-keyring-file", s.path(fileKeyring),
		"-log-format", "json",
	}
	switch svc {
	case bus.Policy:
		args = append(args, "-seal-key-file", s.secretPath("policy.seal"), "-admin-token-file", s.path(fileAdminToken),
			"-spicedb-addr", s.spicedb.Addr(), "-spicedb-key-file", s.secretPath("spicedb.key"))
	case bus.Broker:
		args = append(args, "-seal-key-file", s.secretPath("credential-broker.seal"), "-state-dir", s.path("broker"))
	case bus.Audit:
		args = append(args, "-clickhouse-addr", s.ch.Addr(), "-clickhouse-user", "default",
			"-clickhouse-password-file", s.secretPath("clickhouse.pass"), "-clickhouse-database", "mcpgw")
	case bus.Edge:
		args = append(args, "-listen", s.cfg.EdgeAddr, "-public-url", "http://"+s.cfg.EdgeAddr)
	}
	return args
}

func (s *Stack) startServices() error {
	for _, svc := range []bus.Service{bus.Audit, bus.Policy, bus.Broker, bus.Importer, bus.Adapter, bus.Edge} {
		if err := s.startService(svc); err != nil {
			return err
		}
	}
	return nil
}

func (s *Stack) startService(svc bus.Service) error {
	lf, err := os.OpenFile(s.path(dirLogs, string(svc)+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.cfg.BinDir, string(svc)), s.ServiceArgs(svc)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), s.cfg.ExtraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", svc, err)
	}
	p := &proc{name: string(svc), cmd: cmd, log: lf, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
		select {
		case s.exited <- p.name:
		default:
		}
	}()
	s.procs = append(s.procs, p)
	s.log.Info("started", "service", svc, "pid", cmd.Process.Pid)
	return nil
}

// Exited delivers the name of a service process that ended on its own.
func (s *Stack) Exited() <-chan string { return s.exited }

// LogTail returns the last bytes of a service's log.
func (s *Stack) LogTail(svc string, n int64) string {
	f, err := os.Open(s.path(dirLogs, svc+".log"))
	if err != nil {
		return ""
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// LogDir is where service logs are written.
func (s *Stack) LogDir() string { return s.path(dirLogs) }

// StateDir is the state directory.
func (s *Stack) StateDir() string { return s.cfg.StateDir }

// PIDs returns the process IDs of the service processes, SpiceDB and
// ClickHouse by name.
func (s *Stack) PIDs() map[string]int {
	out := map[string]int{}
	if s.spicedb != nil {
		out["spicedb"] = s.spicedb.PID()
	}
	if s.ch != nil {
		out["clickhouse-server"] = s.ch.PID()
	}
	for _, p := range s.procs {
		out[p.name] = p.cmd.Process.Pid
	}
	return out
}

func (s *Stack) waitEdge(ctx context.Context) error {
	s.EdgeURL = "http://" + s.cfg.EdgeAddr
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case name := <-s.exited:
			return fmt.Errorf("%s exited during start:\n%s", name, s.LogTail(name, 4000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(s.EdgeURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("edge did not answer on %s within 60s:\n%s", s.EdgeURL, s.LogTail("edge", 4000))
}

// Stop stops the services (SIGTERM, then SIGKILL after 10 s), the demo API,
// ClickHouse, SpiceDB and NATS, in that order. It is safe to call twice.
func (s *Stack) Stop() {
	s.once.Do(func() {
		for i := len(s.procs) - 1; i >= 0; i-- {
			p := s.procs[i]
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
			p.log.Close()
		}
		if s.demo != nil {
			_ = s.demo.Close()
		}
		if s.ch != nil {
			_ = s.ch.Stop()
		}
		if s.spicedb != nil {
			_ = s.spicedb.Stop()
		}
		if s.admin != nil {
			s.admin.Close()
		}
		if s.nats != nil {
			s.nats.Shutdown()
			s.nats.WaitForShutdown()
		}
	})
}

// MCPURL is the agents' endpoint.
func (s *Stack) MCPURL() string { return s.EdgeURL + "/mcp" }

// Banner is what `make run` prints once the stack is up.
func (s *Stack) Banner() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nmcpgw is up (state in %s, logs in %s)\n\n", s.cfg.StateDir, s.LogDir())
	fmt.Fprintf(&b, "  MCP URL:      %s\n", s.MCPURL())
	fmt.Fprintf(&b, "  Agent key:    %s\n", s.AgentKey.Reveal())
	fmt.Fprintf(&b, "  Operator API: %s/api/v1 (admin token in %s)\n", s.EdgeURL, s.path(fileAdminToken))
	fmt.Fprintf(&b, "  Demo API:     %s (the upstream behind the send_message tool)\n\n", s.DemoURL)
	fmt.Fprintf(&b, "Press Ctrl-C to stop.\n")
	return b.String()
}
