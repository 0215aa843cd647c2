// Package service is the edge's composition root: it joins the bus as the
// edge, wires authentication, limits, the MCP endpoint and the operator API
// by hand, and serves them over HTTP (TLS when configured).
//
// The edge holds no authority of its own: identity comes from policy, every
// tool call is decided by the adapter and every command by its owning
// service under policy's authorization.
package service

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
	"github.com/mcpgw/mcpgw/services/edge/internal/limit"
	"github.com/mcpgw/mcpgw/services/edge/internal/mcp"
	"github.com/mcpgw/mcpgw/services/edge/internal/operatorapi"
)

// DefaultListen is the edge's default address.
const DefaultListen = "127.0.0.1:8080"

// envelopeAllowance is what an invoke request adds to a call's arguments
// (signed context, IDs, NATS headers), with margin.
const envelopeAllowance = 64 << 10

// ResourceMetadataPath is where the RFC 9728 protected resource metadata is
// served.
const ResourceMetadataPath = "/.well-known/oauth-protected-resource"

// Config is the edge's configuration, parsed once in main.
type Config struct {
	NATSURL          string
	NATSPasswordFile string
	IdentityFile     string
	KeyringFile      string

	// Listen is the HTTP address (DefaultListen when empty).
	Listen string
	// PublicURL is the base URL clients reach the edge at (default derived
	// from Listen); it names the protected resource in 401 answers.
	PublicURL string
	// TLSCertFile and TLSKeyFile enable HTTPS when both are set.
	TLSCertFile string
	TLSKeyFile  string
	// Production refuses plain HTTP on a non-loopback address.
	Production bool

	// MCPBodyLimit bounds an MCP request (mcp.DefaultBodyLimit).
	MCPBodyLimit int64
	// JSONBodyLimit bounds an operator JSON body (operatorapi.DefaultJSONLimit).
	JSONBodyLimit int64
	// UploadLimit bounds an uploaded description (operatorapi.DefaultUploadLimit).
	UploadLimit int64
	// RateLimit and RateBurst size each credential's token bucket
	// (limit.DefaultRate, limit.DefaultBurst); a negative rate disables it.
	RateLimit float64
	RateBurst int
	// ContextCacheSize bounds the cached signed contexts (authn.DefaultCacheSize).
	ContextCacheSize int
	// InvokeTimeout bounds one tools/call (mcp.DefaultInvokeTimeout).
	InvokeTimeout time.Duration
	// ListChangedInterval is how often open notification streams' visible
	// sets are polled (mcp.DefaultListChangedInterval).
	ListChangedInterval time.Duration
	// Version is reported as the MCP server version.
	Version string
	Logger  *slog.Logger
}

// Service is a running edge.
type Service struct {
	cfg     Config
	cert    *tls.Certificate
	rt      *bus.Runtime
	ownsRT  bool
	mcp     *mcp.Handler
	handler http.Handler
	log     *slog.Logger
}

// New checks cfg, joins the bus with the edge's files and builds the
// service.
func New(cfg Config) (*Service, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := bus.Open(ctx, bus.RuntimeConfig{
		Service: bus.Edge, URL: cfg.NATSURL, PasswordFile: cfg.NATSPasswordFile,
		IdentityFile: cfg.IdentityFile, KeyringFile: cfg.KeyringFile, Logger: cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("join bus: %w", err)
	}
	s, err := build(cfg, rt)
	if err != nil {
		rt.Close()
		return nil, err
	}
	s.ownsRT = true
	return s, nil
}

// NewWithRuntime builds the service on a runtime the caller opened (and
// closes).
func NewWithRuntime(cfg Config, rt *bus.Runtime) (*Service, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if rt == nil || rt.Service != bus.Edge {
		return nil, errors.New("service: an edge runtime is required")
	}
	return build(cfg, rt)
}

func (cfg *Config) check() error {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return errors.New("both -tls-cert-file and -tls-key-file are needed for TLS")
	}
	tlsOn := cfg.TLSCertFile != ""
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	if cfg.Production && !tlsOn && !loopback(host) {
		return fmt.Errorf("production mode refuses plain HTTP on non-loopback address %q: configure -tls-cert-file and -tls-key-file", cfg.Listen)
	}
	if cfg.PublicURL == "" {
		scheme := "http"
		if tlsOn {
			scheme = "https"
		}
		cfg.PublicURL = scheme + "://" + cfg.Listen
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("public URL %q must be an absolute http(s) URL without query", cfg.PublicURL)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	return nil
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func build(cfg Config, rt *bus.Runtime) (*Service, error) {
	log := cfg.Logger.With("service", string(bus.Edge))
	// A call's arguments travel in one message: the MCP body limit must
	// leave room below the NATS maximum payload for the signed context and
	// headers.
	bodyLimit := cmp.Or(cfg.MCPBodyLimit, mcp.DefaultBodyLimit)
	if maxPayload := rt.Conn.MaxPayload(); maxPayload > 0 && bodyLimit+envelopeAllowance > maxPayload {
		return nil, fmt.Errorf("MCP body limit %d leaves no room below the NATS maximum payload %d", bodyLimit, maxPayload)
	}
	auth, err := authn.New(authn.Config{Caller: rt.Client, Keyring: rt.Keyring, CacheSize: cfg.ContextCacheSize, Logger: log})
	if err != nil {
		return nil, err
	}
	lim, err := limit.New(limit.Config{Rate: cfg.RateLimit, Burst: cfg.RateBurst})
	if err != nil {
		return nil, err
	}
	gate, err := ingress.NewGate(ingress.GateConfig{
		Authenticator: auth, Limiter: lim, Auditor: rt.Publisher,
		ResourceMetadataURL: cfg.PublicURL + ResourceMetadataPath, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	mh, err := mcp.New(mcp.Config{
		Gate: gate, Caller: rt.Client, BodyLimit: cfg.MCPBodyLimit, InvokeTimeout: cfg.InvokeTimeout,
		ListChangedInterval: cfg.ListChangedInterval, ServerVersion: cfg.Version, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	uploads, err := rt.JetStream.ObjectStore(ctx, bus.BucketUploads)
	if err != nil {
		return nil, fmt.Errorf("%w: object store %s: %v", bus.ErrNotProvisioned, bus.BucketUploads, err)
	}
	api, err := operatorapi.New(operatorapi.Config{
		Gate: gate, Caller: rt.Client, Uploads: uploads, Keyring: rt.Keyring,
		JSONLimit: cfg.JSONBodyLimit, UploadLimit: cfg.UploadLimit, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, rt: rt, mcp: mh, log: log}
	if cfg.TLSCertFile != "" {
		cert, err := loadKeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, err
		}
		s.cert = &cert
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", mh)
	mux.HandleFunc("GET "+ResourceMetadataPath, s.resourceMetadata)
	mux.HandleFunc("GET /healthz", s.health)
	api.Register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		ingress.WriteError(w, errcode.New(errcode.NotFound, "not found"))
	})
	s.handler = securityHeaders(mux)
	return s, nil
}

// Handler is the edge's HTTP handler (for tests and embedding). Callers
// serving it themselves call Start once.
func (s *Service) Handler() http.Handler { return s.handler }

// Start runs the background work — list-change polling and session
// expiry — until ctx ends.
func (s *Service) Start(ctx context.Context) { go s.mcp.Run(ctx) }

// Run listens on the configured address and serves until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then shuts down gracefully.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.Start(ctx)
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*s.cert}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("edge serving", "addr", ln.Addr().String(), "public_url", s.cfg.PublicURL, "tls", s.cert != nil)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	s.mcp.Close(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// loadKeyPair reads a PEM certificate and its private key; the key must be
// in a 0600 (or 0400) file.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read TLS certificate: %w", err)
	}
	key, err := secret.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read TLS key: %w", err)
	}
	defer key.Wipe()
	keyPEM := key.Reveal()
	defer clear(keyPEM)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, errors.New("TLS certificate and key do not form a valid pair")
	}
	return cert, nil
}

// Close releases the bus runtime when the service opened it.
func (s *Service) Close() {
	if s.ownsRT {
		s.rt.Close()
	}
}

// resourceMetadata serves the RFC 9728 protected resource metadata: the
// edge takes bearer credentials in the Authorization header and names no
// authorization server of its own.
func (s *Service) resourceMetadata(w http.ResponseWriter, _ *http.Request) {
	ingress.WriteJSON(w, http.StatusOK, struct {
		Resource               string   `json:"resource"`
		AuthorizationServers   []string `json:"authorization_servers"`
		BearerMethodsSupported []string `json:"bearer_methods_supported"`
	}{s.cfg.PublicURL, []string{}, []string{"header"}})
}

// health reports whether the edge can reach the bus; it gives no details.
func (s *Service) health(w http.ResponseWriter, _ *http.Request) {
	if !s.rt.Conn.IsConnected() {
		ingress.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	ingress.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// securityHeaders sets headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

var _ operatorapi.Uploads = jetstream.ObjectStore(nil)
