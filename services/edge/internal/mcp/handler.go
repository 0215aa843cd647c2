// Package mcp is the edge's MCP endpoint (Streamable HTTP at /mcp), built on
// mcp-go's transport.
//
// mcp-go serves the protocol itself: initialize and sessions (2025-11-25 and
// earlier, Mcp-Session-Id), the stateless 2026-07-28 core (server/discover,
// per-request _meta, subscriptions/listen), ping, notification streams. The
// edge answers tools/list and tools/call itself, before mcp-go sees them:
// mcp-go's tool table is one global table and would mix tenants, and its
// call path refuses unlisted tools, while every authenticated call must
// reach the adapter so that every refusal is audited there. tools/list comes
// from the caller's visible set (rpc.policy.visible) and fails closed;
// tools/call always goes to rpc.adapter.invoke.
//
// Every request is authenticated through policy first (see package
// ingress). A session is bound to the credential that created it, is
// registered before the initialize response that advertises it leaves the
// process, and is useless with any other credential. Open notification
// streams are watched: when the caller's visible set changes, the stream
// gets notifications/tools/list_changed.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
)

// Defaults of Config.
const (
	DefaultBodyLimit           = 512 << 10
	DefaultInvokeTimeout       = 30 * time.Second
	DefaultPolicyTimeout       = 5 * time.Second
	DefaultMaxSessions         = 10000
	DefaultMaxSessionsPerCred  = 64
	DefaultSessionIdleTimeout  = 30 * time.Minute
	DefaultListChangedInterval = 10 * time.Second
	DefaultMaxWatched          = 1000
)

// MessageNotPermitted is the uniform answer to a call of a tool the caller
// may not use or that does not exist.
const MessageNotPermitted = "unknown or not permitted tool"

// Caller sends one authenticated request over the bus; *bus.Client
// satisfies it.
type Caller interface {
	Call(ctx context.Context, verb bus.Verb, req, reply proto.Message) error
}

// Config configures a Handler.
type Config struct {
	// Gate authenticates and limits requests (required).
	Gate *ingress.Gate
	// Caller reaches policy and the adapter (required).
	Caller Caller
	// BodyLimit bounds a POST body (DefaultBodyLimit when 0); it must stay
	// below the NATS maximum payload, since a call's arguments travel in
	// one message.
	BodyLimit int64
	// InvokeTimeout bounds one tools/call (DefaultInvokeTimeout when 0); a
	// timeout is answered with an error, never a result.
	InvokeTimeout time.Duration
	// PolicyTimeout bounds one visible-set request (DefaultPolicyTimeout).
	PolicyTimeout time.Duration
	// MaxSessions bounds registered sessions (DefaultMaxSessions); an
	// initialize beyond it is answered 503.
	MaxSessions int
	// MaxSessionsPerCredential bounds one credential's sessions
	// (DefaultMaxSessionsPerCred): a new one replaces its least recently
	// used idle session, so one caller cannot fill the registry.
	MaxSessionsPerCredential int
	// SessionIdleTimeout forgets a session unused for this long with no
	// open stream (DefaultSessionIdleTimeout).
	SessionIdleTimeout time.Duration
	// ListChangedInterval is how often the visible set of each open
	// notification stream's caller is polled (DefaultListChangedInterval).
	ListChangedInterval time.Duration
	// MaxWatched bounds the streams watched for list changes
	// (DefaultMaxWatched).
	MaxWatched int
	// ServerVersion is reported in serverInfo.
	ServerVersion string
	Logger        *slog.Logger
	Now           func() time.Time
}

// Handler serves /mcp. It is safe for concurrent use; Run drives its
// background work (list-change polling, session expiry).
type Handler struct {
	gate          *ingress.Gate
	auth          *authn.Authenticator
	caller        Caller
	bodyLimit     int64
	invokeTimeout time.Duration
	policyTimeout time.Duration
	idle          time.Duration
	info          mcpgo.Implementation
	log           *slog.Logger

	server   *mcpserver.MCPServer
	http     *mcpserver.StreamableHTTPServer
	sessions *sessions
	watch    *watcher
}

// New returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Gate == nil || cfg.Caller == nil {
		return nil, errors.New("mcp: Gate and Caller are required")
	}
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	if cfg.InvokeTimeout <= 0 {
		cfg.InvokeTimeout = DefaultInvokeTimeout
	}
	if cfg.PolicyTimeout <= 0 {
		cfg.PolicyTimeout = DefaultPolicyTimeout
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.MaxSessionsPerCredential <= 0 {
		cfg.MaxSessionsPerCredential = DefaultMaxSessionsPerCred
	}
	if cfg.SessionIdleTimeout <= 0 {
		cfg.SessionIdleTimeout = DefaultSessionIdleTimeout
	}
	if cfg.ListChangedInterval <= 0 {
		cfg.ListChangedInterval = DefaultListChangedInterval
	}
	if cfg.MaxWatched <= 0 {
		cfg.MaxWatched = DefaultMaxWatched
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{
		gate: cfg.Gate, auth: cfg.Gate.Authenticator(), caller: cfg.Caller, bodyLimit: cfg.BodyLimit,
		invokeTimeout: cfg.InvokeTimeout, policyTimeout: cfg.PolicyTimeout, idle: cfg.SessionIdleTimeout,
		info:     mcpgo.Implementation{Name: "mcpgw", Version: cfg.ServerVersion},
		log:      cfg.Logger.With("component", "mcp"),
		sessions: newSessions(cfg.MaxSessions, cfg.MaxSessionsPerCredential, cfg.SessionIdleTimeout, cfg.Now),
	}
	h.watch = &watcher{
		interval: cfg.ListChangedInterval, max: cfg.MaxWatched, log: h.log, subs: map[*subscriber]struct{}{},
		visible: func(ctx context.Context, p *authn.Principal) ([]*rpcv1.VisibleTool, error) {
			return h.visible(ctx, &ingress.Request{ID: bus.NewID("req_"), Surface: "mcp"}, p)
		},
		reauth: h.auth.Reauthenticate,
	}
	hooks := &mcpserver.Hooks{}
	hooks.AddOnRequestInitialization(refuseToolMethods)
	hooks.AddBeforeSubscriptionsListen(h.onListen)
	h.server = mcpserver.NewMCPServer(h.info.Name, h.info.Version,
		mcpserver.WithToolCapabilities(true),
		mcpserver.WithHooks(hooks),
	)
	h.http = mcpserver.NewStreamableHTTPServer(h.server,
		mcpserver.WithSessionIdManager(h.sessions),
		mcpserver.WithStreamableHTTPLogger(cfg.Logger.With("component", "mcp-transport")),
		mcpserver.WithHeartbeatInterval(25*time.Second),
	)
	return h, nil
}

// refuseToolMethods keeps mcp-go from ever answering tools/list or
// tools/call: the edge answers them before mcp-go sees a request, and should
// one reach it anyway the answer is an error, never mcp-go's global table.
func refuseToolMethods(_ context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok {
		return nil
	}
	if env, ok := parseEnvelope(raw); ok && isToolMethod(env.Method) {
		return errors.New("tool methods are served by the gateway")
	}
	return nil
}

func isToolMethod(m string) bool {
	return m == string(mcpgo.MethodToolsList) || m == string(mcpgo.MethodToolsCall)
}

// Run polls the visible sets of open notification streams and expires idle
// sessions until ctx ends.
func (h *Handler) Run(ctx context.Context) {
	go h.watch.run(ctx)
	t := time.NewTicker(max(min(h.idle/2, time.Minute), time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for _, id := range h.sessions.expire() {
				h.endSession(ctx, id)
			}
		}
	}
}

// endSession makes mcp-go forget a session the edge dropped (expired or
// replaced), through its own termination path, so no transport state is
// left behind.
func (h *Handler) endSession(ctx context.Context, id string) {
	r, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodDelete, "/mcp", nil)
	if err != nil {
		return
	}
	r.Header.Set(mcpserver.HeaderKeySessionID, id)
	r.Header.Set(mcpgo.HeaderProtocolVersion, mcpgo.LATEST_LEGACY_PROTOCOL_VERSION)
	h.http.ServeHTTP(&bufferedWriter{h: http.Header{}}, r)
}

// Close ends every open stream.
func (h *Handler) Close(ctx context.Context) { h.http.CloseSessions(ctx) }

// ServeHTTP serves one request to /mcp.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := h.gate.Begin(w, r, "mcp")
	if rebinding(r) {
		ingress.WriteError(w, errcode.New(errcode.PermissionDenied, "invalid Host header"))
		return
	}
	switch r.Method {
	case http.MethodPost:
		h.post(w, r, req)
	case http.MethodGet, http.MethodDelete:
		h.stream(w, r, req)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		ingress.WriteJSON(w, http.StatusMethodNotAllowed, ingress.ErrorBody{Error: ingress.ErrorDetail{Code: "method_not_allowed", Message: "method not allowed"}})
	}
}

func (h *Handler) post(w http.ResponseWriter, r *http.Request, req *ingress.Request) {
	body, ok := h.gate.ReadBody(w, r, req, h.bodyLimit, "")
	if !ok {
		return
	}
	env, parsed := parseEnvelope(body)
	p, paramsOK := params{}, true
	if parsed {
		p, paramsOK = env.decodeParams()
	}
	e := detectEra(r.Header, p)
	sid := r.Header.Get(mcpserver.HeaderKeySessionID)
	isInit := parsed && env.Method == string(mcpgo.MethodInitialize) && !e.modern
	surface := h.reportedSurface(r, env, p, e, sid, isInit)
	principal, ok := h.gate.Admit(w, r, req, "", surface)
	if !ok {
		return
	}
	if !e.modern && !isInit && sid != "" {
		if _, ok := h.sessions.use(sid, principal.CredentialKey); !ok {
			ingress.WriteError(w, errcode.New(errcode.NotFound, "session not found"))
			return
		}
	}
	if parsed && isToolMethod(env.Method) {
		h.answer(w, r, req, principal, env, p, paramsOK, e)
		return
	}
	r2 := h.forward(r, req, body)
	if isInit {
		h.initialize(w, r2, principal, surface)
		return
	}
	h.http.ServeHTTP(w, r2)
}

// initialize lets mcp-go run the handshake into a buffer, registers the
// session it minted, and only then sends the response that advertises it.
func (h *Handler) initialize(w http.ResponseWriter, r *http.Request, p *authn.Principal, surface string) {
	evicted, ok := h.sessions.reserve(p.CredentialKey)
	if !ok {
		ingress.WriteError(w, errcode.New(errcode.Unavailable, "too many sessions"))
		return
	}
	if evicted != "" {
		h.endSession(r.Context(), evicted)
	}
	bw := &bufferedWriter{h: http.Header{}}
	h.http.ServeHTTP(bw, r)
	if id := bw.h.Get(mcpserver.HeaderKeySessionID); id != "" && bw.code() == http.StatusOK {
		h.sessions.add(id, p.CredentialKey, surface)
	}
	bw.copyTo(w)
}

func (h *Handler) stream(w http.ResponseWriter, r *http.Request, req *ingress.Request) {
	sid := r.Header.Get(mcpserver.HeaderKeySessionID)
	surface := h.sessions.surfaceOf(sid)
	if surface == "" {
		surface = ingress.Trim(r.UserAgent(), 128)
	}
	principal, ok := h.gate.Admit(w, r, req, "", surface)
	if !ok {
		return
	}
	r2 := h.forward(r, req, nil)
	if mcpgo.IsModernProtocol(r.Header.Get(mcpgo.HeaderProtocolVersion)) {
		// mcp-go answers 405: the stateless core has no GET or DELETE.
		h.http.ServeHTTP(w, r2)
		return
	}
	if sid == "" {
		ingress.WriteError(w, errcode.New(errcode.InvalidArgument, "Mcp-Session-Id header required"))
		return
	}
	if _, ok := h.sessions.use(sid, principal.CredentialKey); !ok {
		ingress.WriteError(w, errcode.New(errcode.NotFound, "session not found"))
		return
	}
	if r.Method == http.MethodGet {
		h.sessions.streamOpened(sid)
		defer h.sessions.streamClosed(sid)
		sub := &subscriber{principal: principal, notify: func() bool {
			return h.server.SendNotificationToSpecificClient(sid, mcpgo.MethodNotificationToolsListChanged, nil) == nil
		}}
		if h.watch.add(r.Context(), sub) {
			defer h.watch.remove(sub)
		}
	}
	h.http.ServeHTTP(w, r2)
}

// onListen watches a 2026-07-28 subscriptions/listen stream that asked for
// tools/list_changed, for as long as it stays open.
func (h *Handler) onListen(ctx context.Context, _ any, msg *mcpgo.SubscriptionsListenRequest) {
	if msg == nil || !msg.Params.Notifications.ToolsListChanged {
		return
	}
	req := ingress.FromContext(ctx)
	session := mcpserver.ClientSessionFromContext(ctx)
	if req == nil || req.Principal == nil || session == nil {
		return
	}
	sub := &subscriber{principal: req.Principal, notify: func() bool {
		select {
		case session.NotificationChannel() <- listChanged():
			return true
		default:
			return false
		}
	}}
	if h.watch.add(ctx, sub) {
		go func() {
			<-ctx.Done()
			h.watch.remove(sub)
		}()
	}
}

func listChanged() mcpgo.JSONRPCNotification {
	return mcpgo.JSONRPCNotification{
		JSONRPC:      mcpgo.JSONRPC_VERSION,
		Notification: mcpgo.Notification{Method: mcpgo.MethodNotificationToolsListChanged},
	}
}

// forward prepares r for mcp-go: it carries the admitted request in its
// context, the already-read body, and no credential.
func (h *Handler) forward(r *http.Request, req *ingress.Request, body []byte) *http.Request {
	r2 := r.WithContext(ingress.WithRequest(r.Context(), req))
	r2.Header = r.Header.Clone()
	r2.Header.Del("Authorization")
	if body != nil {
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.ContentLength = int64(len(body))
	}
	return r2
}

// reportedSurface is what the client says it is (audit only): clientInfo
// from initialize or from a 2026-07-28 request's _meta, the session's
// clientInfo, else the User-Agent.
func (h *Handler) reportedSurface(r *http.Request, env envelope, p params, e era, sid string, isInit bool) string {
	var info *mcpgo.Implementation
	switch {
	case isInit:
		info = p.ClientInfo
	case e.modern && p.Meta != nil:
		info = p.Meta.ClientInfo()
	case sid != "":
		if s := h.sessions.surfaceOf(sid); s != "" {
			return s
		}
	}
	if info != nil && info.Name != "" {
		s := info.Name
		if info.Version != "" {
			s += "/" + info.Version
		}
		return ingress.Trim(s, 128)
	}
	return ingress.Trim(r.UserAgent(), 128)
}

// rebinding reports a request that arrived on a loopback address with a
// Host that is not a loopback name: a DNS-rebinding attempt from a browser.
func rebinding(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && local != nil && isLoopback(local.String()) && !isLoopback(r.Host)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = strings.Trim(addr, "[]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// bufferedWriter holds a response until the edge has done what must happen
// before the client sees it.
type bufferedWriter struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

// Header returns the held response's headers.
func (b *bufferedWriter) Header() http.Header { return b.h }

// WriteHeader records the status (the first one wins, as in net/http).

func (b *bufferedWriter) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

// Write holds body bytes.
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.buf.Write(p)
}

func (b *bufferedWriter) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}

func (b *bufferedWriter) copyTo(w http.ResponseWriter) {
	for k, v := range b.h {
		w.Header()[k] = v
	}
	w.WriteHeader(b.code())
	_, _ = w.Write(b.buf.Bytes())
}
