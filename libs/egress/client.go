package egress

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultTimeout               = 30 * time.Second
	DefaultDialTimeout           = 10 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerHost   = 16
	DefaultMaxResponseBytes      = 10 << 20
	DefaultMaxTransports         = 1024
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// Dialer opens connections to addresses the guarded dialer has checked;
	// nil means a *net.Dialer that checks the socket address once more.
	Dialer ContextDialer
	// TLSConfig is the base TLS configuration (root CAs, for instance). It is
	// cloned; MinVersion is raised to TLS 1.2 and InsecureSkipVerify is
	// refused. nil means the system roots.
	TLSConfig *tls.Config
	// Timeout bounds one Do call, from the host check to the last byte of the
	// response body.
	Timeout time.Duration
	// DialTimeout bounds name resolution and connecting together.
	DialTimeout time.Duration
	// TLSHandshakeTimeout bounds the TLS handshake.
	TLSHandshakeTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for response headers once the
	// request is written.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout is how long an idle keep-alive connection is kept.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost bounds the idle connections kept per host in each
	// transport.
	MaxIdleConnsPerHost int
	// MaxResponseBytes caps a response body; a larger one is an error with
	// CodeResponseTooLarge.
	MaxResponseBytes int64
	// MaxTransports bounds the pool of transports (one per rules key and pool
	// key); the least recently used one is evicted and its idle connections
	// closed (a connection still in use when its transport is evicted closes
	// after IdleConnTimeout at the latest).
	MaxTransports int
	// Logger receives transport lifecycle events and refusals; nil discards.
	// Nothing logged carries a URL, a query string, a header or a body.
	Logger *slog.Logger
}

// Client sends HTTP requests to the hosts a Rules value allows. It is safe
// for concurrent use; every transport it keeps is private to one rules key
// and pool key.
type Client struct {
	cfg  Config
	tls  *tls.Config
	log  *slog.Logger
	mu   sync.Mutex
	pool map[poolKey]*list.Element // of *pooled
	lru  *list.List                // front is the most recently used
}

type poolKey struct{ rules, pool string }

type pooled struct {
	key poolKey
	t   *http.Transport
}

// New returns a Client. Negative durations or limits and a TLS configuration
// that skips verification are errors.
func New(cfg Config) (*Client, error) {
	for _, d := range []time.Duration{cfg.Timeout, cfg.DialTimeout, cfg.TLSHandshakeTimeout,
		cfg.ResponseHeaderTimeout, cfg.IdleConnTimeout} {
		if d < 0 {
			return nil, errors.New("egress: negative timeout in config")
		}
	}
	if cfg.MaxIdleConnsPerHost < 0 || cfg.MaxResponseBytes < 0 || cfg.MaxTransports < 0 {
		return nil, errors.New("egress: negative limit in config")
	}
	if cfg.TLSConfig != nil && cfg.TLSConfig.InsecureSkipVerify {
		return nil, errors.New("egress: tls config must verify certificates")
	}
	setDefault(&cfg.Timeout, DefaultTimeout)
	setDefault(&cfg.DialTimeout, DefaultDialTimeout)
	setDefault(&cfg.TLSHandshakeTimeout, DefaultTLSHandshakeTimeout)
	setDefault(&cfg.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	setDefault(&cfg.IdleConnTimeout, DefaultIdleConnTimeout)
	setDefault(&cfg.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	setDefault(&cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	setDefault(&cfg.MaxTransports, DefaultMaxTransports)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tc := &tls.Config{}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	return &Client{
		cfg:  cfg,
		tls:  tc,
		log:  cfg.Logger.With(slog.String("component", "egress")),
		pool: make(map[poolKey]*list.Element),
		lru:  list.New(),
	}, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// CallOption adjusts one Do call.
type CallOption struct {
	poolKey string
}

// WithPoolKey separates the connections of one caller-defined scope (a
// credential binding ID, for instance) from every other scope under the same
// rules: connections are reused only between calls with the same rules key
// and pool key. The key is an identifier, not a secret; it may be logged.
func WithPoolKey(key string) CallOption { return CallOption{poolKey: key} }

// Response is an upstream response read in full. Body holds at most
// MaxResponseBytes. A Response may echo a credential, so it prints and logs
// only its status, protocol and size.
type Response struct {
	StatusCode int
	Proto      string
	Header     http.Header
	Body       []byte

	url *url.URL // the request URL, to resolve a relative Location
}

// String returns the status, protocol and body size only.
func (r *Response) String() string {
	if r == nil {
		return "egress.Response(nil)"
	}
	return fmt.Sprintf("egress.Response{status=%d proto=%s bytes=%d}", r.StatusCode, r.Proto, len(r.Body))
}

// GoString is String, so %#v prints no header or body.
func (r *Response) GoString() string { return r.String() }

// LogValue logs the status, protocol and body size only.
func (r *Response) LogValue() slog.Value {
	if r == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(slog.Int("status", r.StatusCode), slog.String("proto", r.Proto),
		slog.Int("bytes", len(r.Body)))
}

// Do sends req under rules and reads the whole response.
//
// Before anything is sent, the URL must be http or https without user info,
// and its host and port (and req.Host, if set) must pass rules.AllowsHost; an
// IP-literal host must pass rules.AllowsAddr. The connection is then opened
// by the guarded dialer (see Dialer) of a transport kept for rules.Key() and
// the pool key, so connections are reused across calls with the same rules
// and pool key only. Redirects are never followed: a 3xx comes back as is
// (see RedirectTarget). Proxy settings from the environment are ignored.
// HTTP/1.1 and HTTP/2 (over TLS 1.2 or later) are used.
//
// Config.Timeout bounds the whole call, ctx may end it sooner. A body larger
// than Config.MaxResponseBytes is an *Error with CodeResponseTooLarge. Do
// always closes req.Body and never modifies req. Every error is an *Error
// whose message names the host only.
func (c *Client) Do(ctx context.Context, req *http.Request, rules Rules, opts ...CallOption) (*Response, error) {
	host, err := c.check(req, rules)
	if err != nil {
		if req != nil && req.Body != nil {
			req.Body.Close()
		}
		c.log.LogAttrs(ctx, slog.LevelDebug, "egress request refused",
			slog.String("code", string(err.Code)), slog.String("host", err.Host))
		return nil, err
	}
	var key poolKey
	key.rules = rules.Key()
	for _, o := range opts {
		if o.poolKey != "" {
			key.pool = o.poolKey
		}
	}
	t, err2 := c.transport(key, rules)
	if err2 != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err2
	}

	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	out := req.WithContext(callCtx)
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	resp, rtErr := t.RoundTrip(out)
	if rtErr != nil {
		return nil, classify(ctx, host, rtErr)
	}
	defer resp.Body.Close()
	if resp.ContentLength > c.cfg.MaxResponseBytes {
		return nil, newError(CodeResponseTooLarge, host, "response body over the limit", nil)
	}
	body, rdErr := readCapped(resp.Body, c.cfg.MaxResponseBytes, resp.ContentLength)
	if rdErr != nil {
		if errors.Is(rdErr, errTooLarge) {
			return nil, newError(CodeResponseTooLarge, host, "response body over the limit", nil)
		}
		return nil, classify(ctx, host, rdErr)
	}
	u := *req.URL
	return &Response{
		StatusCode: resp.StatusCode,
		Proto:      resp.Proto,
		Header:     resp.Header,
		Body:       body,
		url:        &u,
	}, nil
}

// Check resolves u's host and reports whether Do could send a request to it
// under rules, without connecting: the host check, then every resolved
// address against rules.AllowsAddr. Errors are as for Do. A gate can call it
// before any credential is resolved; Do resolves and checks again when it
// dials, and that check is the one that holds.
func (c *Client) Check(ctx context.Context, u *url.URL, rules Rules) error {
	host, port, err := hostPort(u)
	if err != nil {
		return err
	}
	d, derr := c.dialer(rules)
	if derr != nil {
		return derr
	}
	_, rerr := d.Resolve(ctx, "tcp", host, port)
	return rerr
}

// CloseIdleConnections closes the idle connections of every pooled transport.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	ts := make([]*http.Transport, 0, c.lru.Len())
	for e := c.lru.Front(); e != nil; e = e.Next() {
		ts = append(ts, e.Value.(*pooled).t)
	}
	c.mu.Unlock()
	for _, t := range ts {
		t.CloseIdleConnections()
	}
}

// hostPort returns the host (without brackets) and port of an http or https
// URL, the port defaulting to the scheme's.
func hostPort(u *url.URL) (host, port string, err *Error) {
	if u == nil {
		return "", "", newError(CodeInvalidRequest, "", "no url", nil)
	}
	host = u.Hostname()
	var def string
	switch u.Scheme {
	case "https":
		def = "443"
	case "http":
		def = "80"
	default:
		return "", "", newError(CodeInvalidRequest, host, "scheme must be http or https", nil)
	}
	if u.User != nil {
		return "", "", newError(CodeInvalidRequest, host, "user info in url", nil)
	}
	if host == "" {
		return "", "", newError(CodeInvalidRequest, "", "no host in url", nil)
	}
	port = u.Port()
	if port == "" {
		port = def
	} else if !validPort(port) {
		return "", "", newError(CodeInvalidRequest, host, "invalid port", nil)
	}
	return host, port, nil
}

// check applies the rules to the request before anything is sent and returns
// the canonical host for errors.
func (c *Client) check(req *http.Request, rules Rules) (string, *Error) {
	if req == nil {
		return "", newError(CodeInvalidRequest, "", "no request", nil)
	}
	host, port, err := hostPort(req.URL)
	if err != nil {
		return "", err
	}
	canon, addr, ok := canonicalHost(host)
	if !ok {
		return "", newError(CodeHostNotAllowed, host, "host not allowed", nil)
	}
	if !rules.allowsCanonical(canon, port) {
		return "", newError(CodeHostNotAllowed, canon, "host not allowed", nil)
	}
	if req.Host != "" {
		h, p := req.Host, port
		if sh, sp, err := net.SplitHostPort(req.Host); err == nil {
			h, p = sh, sp
		} else if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
			h = h[1 : len(h)-1]
		}
		if !rules.AllowsHost(h, p) {
			return "", newError(CodeHostNotAllowed, canon, "host header not allowed", nil)
		}
	}
	if addr.IsValid() && !rules.AllowsAddr(addr) {
		return "", newError(CodeAddressBlocked, canon, "address in a blocked range", nil)
	}
	return canon, nil
}

func (c *Client) dialer(rules Rules) (*Dialer, error) {
	return NewDialer(DialerConfig{
		Rules:    rules,
		Resolver: c.cfg.Resolver,
		Dialer:   c.cfg.Dialer,
		Timeout:  c.cfg.DialTimeout,
		Logger:   c.log,
	})
}

// transport returns the pooled transport for key, creating it (and evicting
// the least recently used one beyond MaxTransports) as needed.
func (c *Client) transport(key poolKey, rules Rules) (*http.Transport, error) {
	c.mu.Lock()
	if e, ok := c.pool[key]; ok {
		c.lru.MoveToFront(e)
		t := e.Value.(*pooled).t
		c.mu.Unlock()
		return t, nil
	}
	c.mu.Unlock()

	d, err := c.dialer(rules)
	if err != nil {
		return nil, newError(CodeInvalidRequest, "", "dialer", err)
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	t := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSClientConfig:        c.tls.Clone(),
		TLSHandshakeTimeout:    c.cfg.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  c.cfg.ResponseHeaderTimeout,
		IdleConnTimeout:        c.cfg.IdleConnTimeout,
		MaxIdleConnsPerHost:    c.cfg.MaxIdleConnsPerHost,
		MaxResponseHeaderBytes: 1 << 20,
		ExpectContinueTimeout:  time.Second,
		ForceAttemptHTTP2:      true,
		Protocols:              protocols,
	}

	var evicted []*http.Transport
	c.mu.Lock()
	if e, ok := c.pool[key]; ok {
		// Another caller created it meanwhile; use theirs.
		c.lru.MoveToFront(e)
		existing := e.Value.(*pooled).t
		c.mu.Unlock()
		return existing, nil
	}
	c.pool[key] = c.lru.PushFront(&pooled{key: key, t: t})
	for c.lru.Len() > c.cfg.MaxTransports {
		back := c.lru.Back()
		p := c.lru.Remove(back).(*pooled)
		delete(c.pool, p.key)
		evicted = append(evicted, p.t)
	}
	size := c.lru.Len()
	c.mu.Unlock()

	c.log.LogAttrs(context.Background(), slog.LevelDebug, "egress transport created",
		slog.String("rules_key", key.rules[:16]), slog.String("pool_key", key.pool), slog.Int("transports", size))
	for _, old := range evicted {
		old.CloseIdleConnections()
		c.log.LogAttrs(context.Background(), slog.LevelDebug, "egress transport evicted")
	}
	return t, nil
}

var errTooLarge = errors.New("response body over the limit")

// readCapped reads r to the end, failing with errTooLarge past max bytes.
// Reading to the end lets the transport reuse the connection.
func readCapped(r io.Reader, max, contentLength int64) ([]byte, error) {
	if contentLength < 0 {
		b, err := io.ReadAll(io.LimitReader(r, max+1))
		if err != nil {
			return nil, err
		}
		if int64(len(b)) > max {
			return nil, errTooLarge
		}
		return b, nil
	}
	b := make([]byte, contentLength)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	// Read on to EOF so the connection goes back to the pool now; the
	// transport already refuses a body longer than its Content-Length.
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return nil, errTooLarge
		}
		if errors.Is(err, io.EOF) {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
