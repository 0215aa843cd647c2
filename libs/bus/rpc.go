package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/errcode"
)

// DefaultRequestWindow is how far a request's time may be from the
// receiver's clock; it is wider than expected clock skew and shorter than the
// nonce bucket's TTL.
const DefaultRequestWindow = 30 * time.Second

// Meta is the routing metadata of a request: request ID, tenant and W3C
// trace context. It travels in NATS headers and is copied onto every message
// a handler sends; it is never trusted for authorization.
type Meta struct {
	RequestID   string
	Tenant      string
	TraceParent string
}

func (m Meta) inject(h nats.Header) {
	if m.RequestID != "" {
		h.Set(HeaderRequestID, m.RequestID)
	}
	if m.Tenant != "" {
		h.Set(HeaderTenant, m.Tenant)
	}
	if m.TraceParent != "" {
		h.Set(HeaderTrace, m.TraceParent)
	}
}

func metaFrom(h nats.Header) Meta {
	return Meta{RequestID: h.Get(HeaderRequestID), Tenant: h.Get(HeaderTenant), TraceParent: h.Get(HeaderTrace)}
}

type metaKey struct{}

// WithMeta returns ctx carrying request metadata.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the request metadata in ctx (zero when none).
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// ClientConfig configures an RPC client.
type ClientConfig struct {
	Conn     *nats.Conn
	Identity *Identity
	Keyring  *Keyring
	// Timeout bounds each request when ctx has no deadline (default 5s).
	Timeout time.Duration
	Now     func() time.Time
}

// Client sends authenticated requests as one service and accepts only
// replies the serving service signed over the request's nonce. It is safe for
// concurrent use.
type Client struct {
	nc      *nats.Conn
	id      *Identity
	keys    *Keyring
	timeout time.Duration
	now     func() time.Time
}

// NewClient returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Conn == nil || cfg.Identity == nil || cfg.Keyring == nil {
		return nil, errors.New("bus: client needs Conn, Identity and Keyring")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{nc: cfg.Conn, id: cfg.Identity, keys: cfg.Keyring, timeout: cfg.Timeout, now: cfg.Now}, nil
}

func newNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// Call sends req to verb and decodes the verified reply into reply. The
// routing metadata comes from ctx (WithMeta). Errors: errcode.Unavailable
// when nobody answers in time, errcode.BadSignature for a reply that is not
// the server's.
func (c *Client) Call(ctx context.Context, verb Verb, req, reply proto.Message) error {
	if !verb.MayCall(c.id.Service) {
		return fmt.Errorf("rpc: %s may not call %s", c.id.Service, verb.Subject())
	}
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc %s: encode: %w", verb.Name, err)
	}
	subject := verb.Subject()
	msg, err := SignRequest(c.id, subject, data, c.now())
	if err != nil {
		return err
	}
	nonce := msg.Header.Get(HeaderNonce)
	MetaFrom(ctx).inject(msg.Header)
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return errcode.Wrap(errcode.Unavailable, verb.Server.rpcToken()+" did not answer", err)
	}
	responder, code := Service(resp.Header.Get(HeaderResponder)), resp.Header.Get(HeaderError)
	if responder != verb.Server ||
		!c.keys.Verify(responder, replySigningInput(subject, responder, nonce, code, resp.Data), decodeSig(resp.Header.Get(HeaderSignature))) {
		return errcode.New(errcode.BadSignature, "reply not signed by "+string(verb.Server))
	}
	if code != "" {
		return errcode.New(errcode.Code(code), resp.Header.Get(HeaderErrorMsg))
	}
	if err := proto.Unmarshal(resp.Data, reply); err != nil {
		return errcode.Wrap(errcode.Internal, "undecodable reply", err)
	}
	return nil
}

// SignRequest builds a request message for subject signed by id at time now
// with a fresh nonce. Clients use it; tests use it to act as a service.
func SignRequest(id *Identity, subject string, data []byte, now time.Time) (*nats.Msg, error) {
	msg := nats.NewMsg(subject)
	msg.Data = data
	ts, nonce := strconv.FormatInt(now.UnixNano(), 10), newNonce()
	msg.Header.Set(HeaderCaller, string(id.Service))
	msg.Header.Set(HeaderTime, ts)
	msg.Header.Set(HeaderNonce, nonce)
	msg.Header.Set(HeaderSignature, encodeSig(id.Sign(requestSigningInput(subject, id.Service, ts, nonce, data))))
	return msg, nil
}

// Request is an authenticated request as a handler sees it.
type Request struct {
	Verb   Verb
	Caller Service
	Meta   Meta
	Data   []byte
}

// Handler serves one verb: it decodes req.Data and returns the reply
// message. A returned error is logged and answered with a signed error reply
// carrying only its public code and message (errcode.Public); handlers put
// domain errors inside their reply message. Requests that fail
// authentication get no reply at all.
type Handler func(ctx context.Context, req *Request) (proto.Message, error)

// NonceStore remembers accepted nonces for at least the request window.
// Remember returns errcode.Replayed when nonce was recorded before.
type NonceStore interface {
	Remember(ctx context.Context, nonce string) error
}

// KVNonceStore keeps nonces in a JetStream KV bucket with a TTL, so that a
// replay is caught by any instance of the service.
type KVNonceStore struct {
	kv jetstream.KeyValue
}

// NewKVNonceStore looks up the service's nonce bucket (created by the
// launcher or deploy/).
func NewKVNonceStore(ctx context.Context, js jetstream.JetStream, s Service) (*KVNonceStore, error) {
	kv, err := js.KeyValue(ctx, NonceBucket(s))
	if err != nil {
		return nil, fmt.Errorf("look up nonce bucket %s: %w", NonceBucket(s), err)
	}
	return &KVNonceStore{kv: kv}, nil
}

// Remember records nonce; a second Remember of the same nonce within the
// bucket's TTL fails with errcode.Replayed.
func (s *KVNonceStore) Remember(ctx context.Context, nonce string) error {
	_, err := s.kv.Create(ctx, nonce, nil)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return errcode.New(errcode.Replayed, "request replayed")
	}
	if err != nil {
		return errcode.Wrap(errcode.Unavailable, "record nonce", err)
	}
	return nil
}

// ServerConfig configures an RPC server.
type ServerConfig struct {
	Conn     *nats.Conn
	Identity *Identity
	Keyring  *Keyring
	Nonces   NonceStore
	Logger   *slog.Logger
	// Window is the accepted request age (default DefaultRequestWindow).
	Window time.Duration
	// HandlerTimeout bounds one handler run (default 2 minutes: an import
	// of a 50 MB description takes longer than the request window).
	HandlerTimeout time.Duration
	Now            func() time.Time
}

// Server serves the verbs of one service in its queue group. It checks
// every request: the caller may call the verb, the signature is the
// caller's, the time is within the window and the nonce is new. It signs
// every reply over the request's nonce.
type Server struct {
	cfg  ServerConfig
	mu   sync.Mutex
	subs []*nats.Subscription
}

// NewServer returns a Server.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Conn == nil || cfg.Identity == nil || cfg.Keyring == nil || cfg.Nonces == nil {
		return nil, errors.New("bus: server needs Conn, Identity, Keyring and Nonces")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultRequestWindow
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg}, nil
}

// Handle subscribes h to verb in the service's queue group. Each request is
// handled on its own goroutine.
func (s *Server) Handle(verb Verb, h Handler) error {
	if verb.Server != s.cfg.Identity.Service {
		return fmt.Errorf("rpc: %s does not serve %s", s.cfg.Identity.Service, verb.Subject())
	}
	sub, err := s.cfg.Conn.QueueSubscribe(verb.Subject(), string(verb.Server), func(m *nats.Msg) {
		go s.serve(verb, h, m)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", verb.Subject(), err)
	}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	return nil
}

// Close drains the server's subscriptions.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sub := range s.subs {
		_ = sub.Drain()
	}
	s.subs = nil
}

// Authenticate checks an incoming request message and returns it as a
// Request; it is exported so tests and tools can check what a server would
// accept.
func (s *Server) Authenticate(ctx context.Context, verb Verb, m *nats.Msg) (*Request, error) {
	caller := Service(m.Header.Get(HeaderCaller))
	if !verb.MayCall(caller) {
		return nil, errcode.Errorf(errcode.PermissionDenied, "%q may not call %s", caller, verb.Subject())
	}
	ts, nonce := m.Header.Get(HeaderTime), m.Header.Get(HeaderNonce)
	if len(nonce) != 32 {
		return nil, errcode.New(errcode.BadSignature, "missing nonce")
	}
	if !s.cfg.Keyring.Verify(caller, requestSigningInput(m.Subject, caller, ts, nonce, m.Data), decodeSig(m.Header.Get(HeaderSignature))) {
		return nil, errcode.New(errcode.BadSignature, "invalid request signature")
	}
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, errcode.New(errcode.BadSignature, "bad request time")
	}
	if d := s.cfg.Now().Sub(time.Unix(0, n)); d > s.cfg.Window || d < -s.cfg.Window {
		return nil, errcode.New(errcode.Replayed, "request outside its time window")
	}
	if err := s.cfg.Nonces.Remember(ctx, nonce); err != nil {
		return nil, err
	}
	return &Request{Verb: verb, Caller: caller, Meta: metaFrom(m.Header), Data: m.Data}, nil
}

func (s *Server) serve(verb Verb, h Handler, m *nats.Msg) {
	log := s.cfg.Logger.With("verb", verb.Subject())
	if m.Reply == "" {
		log.Warn("rpc request without reply subject dropped")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HandlerTimeout)
	defer cancel()
	req, err := s.Authenticate(ctx, verb, m)
	if err != nil {
		log.Warn("rpc request refused", "caller", m.Header.Get(HeaderCaller), "code", errcode.CodeOf(err))
		return
	}
	ctx = WithMeta(ctx, req.Meta)
	var data []byte
	var code errcode.Code
	var public string
	reply, err := s.call(ctx, h, req)
	if err == nil {
		data, err = proto.Marshal(reply)
	}
	if err != nil {
		log.Error("rpc handler failed", "caller", req.Caller, "request_id", req.Meta.RequestID, "err", err)
		code, public = errcode.Public(err)
		data = nil
	}
	out := nats.NewMsg(m.Reply)
	out.Data = data
	out.Header.Set(HeaderResponder, string(s.cfg.Identity.Service))
	if code != "" {
		out.Header.Set(HeaderError, string(code))
		out.Header.Set(HeaderErrorMsg, public)
	}
	out.Header.Set(HeaderSignature, encodeSig(s.cfg.Identity.Sign(replySigningInput(verb.Subject(), s.cfg.Identity.Service, m.Header.Get(HeaderNonce), string(code), data))))
	req.Meta.inject(out.Header)
	if err := s.cfg.Conn.PublishMsg(out); err != nil {
		log.Warn("rpc reply failed", "err", err)
	}
}

// call runs the handler, turning a panic into an error so one bad request
// cannot stop the service.
func (s *Server) call(ctx context.Context, h Handler, req *Request) (reply proto.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, req)
}
