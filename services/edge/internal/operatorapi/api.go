// Package operatorapi is the edge's operator HTTP API under /api/v1. Every
// request is authenticated exactly like an agent's (through policy, see
// package ingress). For each command the edge builds the command message,
// asks policy to authorize that exact command for the actor
// (rpc.policy.authorize over reqctx.CommandDigest), attaches policy's signed
// authorization and sends the command to its owning service, which verifies
// the authorization again. The edge itself decides nothing.
//
// Secrets arrive sealed to the broker's key and pass through opaque. Agent
// keys are generated here and leave the process only in the one response
// that issues them: policy receives their SHA-256 and a display prefix.
package operatorapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
)

// Defaults of Config.
const (
	DefaultJSONLimit     = 1 << 20
	DefaultUploadLimit   = 50 << 20
	DefaultTimeout       = 10 * time.Second
	DefaultImportTimeout = 2 * time.Minute
)

// Caller sends one authenticated request over the bus; *bus.Client
// satisfies it.
type Caller interface {
	Call(ctx context.Context, verb bus.Verb, req, reply proto.Message) error
}

// Uploads is the Object Store bucket uploaded descriptions are streamed
// into; jetstream.ObjectStore satisfies it.
type Uploads interface {
	Put(ctx context.Context, meta jetstream.ObjectMeta, r io.Reader) (*jetstream.ObjectInfo, error)
}

// Config configures an API.
type Config struct {
	Gate    *ingress.Gate
	Caller  Caller
	Uploads Uploads
	// Keyring holds the sealing keys served by GET /api/v1/keys.
	Keyring *bus.Keyring
	// JSONLimit bounds JSON request bodies (DefaultJSONLimit).
	JSONLimit int64
	// UploadLimit bounds an uploaded description (DefaultUploadLimit).
	UploadLimit int64
	// Timeout bounds one call to another service (DefaultTimeout);
	// ImportTimeout bounds an import (DefaultImportTimeout).
	Timeout       time.Duration
	ImportTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// API serves /api/v1. It is safe for concurrent use.
type API struct {
	gate          *ingress.Gate
	caller        Caller
	uploads       Uploads
	keys          *bus.Keyring
	jsonLimit     int64
	uploadLimit   int64
	timeout       time.Duration
	importTimeout time.Duration
	log           *slog.Logger
	now           func() time.Time
}

// New returns an API.
func New(cfg Config) (*API, error) {
	if cfg.Gate == nil || cfg.Caller == nil || cfg.Uploads == nil || cfg.Keyring == nil {
		return nil, errors.New("operatorapi: Gate, Caller, Uploads and Keyring are required")
	}
	if cfg.JSONLimit <= 0 {
		cfg.JSONLimit = DefaultJSONLimit
	}
	if cfg.UploadLimit <= 0 {
		cfg.UploadLimit = DefaultUploadLimit
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ImportTimeout <= 0 {
		cfg.ImportTimeout = DefaultImportTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &API{
		gate: cfg.Gate, caller: cfg.Caller, uploads: cfg.Uploads, keys: cfg.Keyring,
		jsonLimit: cfg.JSONLimit, uploadLimit: cfg.UploadLimit, timeout: cfg.Timeout, importTimeout: cfg.ImportTimeout,
		log: cfg.Logger.With("component", "operatorapi"), now: cfg.Now,
	}, nil
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	const t = "/api/v1/tenants/{t}"
	mux.Handle("POST "+t+"/sources", a.route(true, a.upload))
	mux.Handle("POST "+t+"/sources/{id}/versions/{v}/approve", a.route(true, a.approve))
	mux.Handle("POST "+t+"/sources/{id}/auth/{scheme}", a.route(true, a.mapAuth))
	mux.Handle("PUT "+t+"/sources/{id}/selection", a.route(true, a.selection))
	mux.Handle("POST "+t+"/secrets", a.route(true, a.putSecret))
	mux.Handle("POST "+t+"/bindings", a.route(true, a.createBinding))
	mux.Handle("POST "+t+"/grants", a.route(true, a.addGrant))
	mux.Handle("DELETE "+t+"/grants/{id}", a.route(true, a.revokeGrant))
	mux.Handle("POST "+t+"/agents/{agent}/keys", a.route(true, a.issueKey))
	mux.Handle("DELETE "+t+"/agents/{agent}/keys/{key}", a.route(true, a.revokeKey))
	mux.Handle("GET "+t+"/audit", a.route(true, a.audit))
	mux.Handle("GET "+t+"/sources/{id}/slots", a.route(true, a.slots))
	mux.Handle("GET /api/v1/keys", a.route(false, a.sealingKeys))
	mux.Handle("/api/v1/", a.route(false, func(http.ResponseWriter, *http.Request, *call) error {
		return errcode.New(errcode.NotFound, "no such endpoint")
	}))
}

// call is one admitted operator request.
type call struct {
	req    *ingress.Request
	p      *authn.Principal
	tenant string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// route admits a request (authentication, rate limit), validates the tenant
// in the path, runs fn and maps its error.
func (a *API) route(tenantScoped bool, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := a.gate.Begin(w, r, "api")
		tenant := ""
		if tenantScoped {
			tenant = r.PathValue("t")
		}
		hint := ""
		if bus.ValidToken(tenant) {
			hint = tenant
		}
		p, ok := a.gate.Admit(w, r, req, hint, ingress.Trim(r.UserAgent(), 128))
		if !ok {
			return
		}
		c := &call{req: req, p: p, tenant: tenant}
		err := func() error {
			if tenantScoped {
				if err := bus.CheckToken("tenant", tenant); err != nil {
					return err
				}
			}
			return fn(w, r, c)
		}()
		if err == nil {
			return
		}
		code := errcode.CodeOf(err)
		if code == errcode.Internal || code == errcode.Unavailable || code == errcode.BadSignature {
			a.log.Error("operator request failed", "request_id", req.ID, "route", r.Pattern, "code", code, "err", err)
		} else {
			a.log.Info("operator request refused", "request_id", req.ID, "route", r.Pattern, "code", code)
		}
		if code == errcode.TooLarge {
			a.gate.Refuse(w, r, req, hint, ingress.ReasonTooLarge, err)
			return
		}
		ingress.WriteError(w, err)
	})
}

// ctx returns a context for a call to another service on behalf of c.
func (c *call) ctx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.req.Context(ctx, c.tenant), timeout)
}

// authorize asks policy to authorize cmd for c's actor and attaches the
// signed authorization to cmd. Policy unreachable means no authorization.
func (a *API) authorize(ctx context.Context, c *call, cmd proto.Message) error {
	digest, err := reqctx.CommandDigest(cmd)
	if err != nil {
		return err
	}
	cctx, cancel := c.ctx(ctx, a.timeout)
	defer cancel()
	var reply rpcv1.AuthorizeReply
	if err := a.caller.Call(cctx, bus.PolicyAuthorize, &rpcv1.AuthorizeRequest{
		Actor: c.p.Signed, Tenant: c.tenant, Command: reqctx.CommandName(cmd), CommandDigest: digest,
	}, &reply); err != nil {
		return errcode.Wrap(errcode.Unavailable, "authorization unavailable", err)
	}
	if err := ingress.ReplyError(reply.GetError()); err != nil {
		return err
	}
	if reply.GetAuthorization() == nil {
		return errcode.New(errcode.PermissionDenied, "command not authorized")
	}
	fd := cmd.ProtoReflect().Descriptor().Fields().ByName(reqctx.AuthorizationField)
	cmd.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(reply.GetAuthorization().ProtoReflect()))
	return nil
}

// command authorizes cmd and sends it to verb, returning the service's
// CommandReply.
func (a *API) command(ctx context.Context, c *call, verb bus.Verb, cmd proto.Message) (*rpcv1.CommandReply, error) {
	if err := a.authorize(ctx, c, cmd); err != nil {
		return nil, err
	}
	var reply rpcv1.CommandReply
	if err := a.send(ctx, c, verb, cmd, &reply, a.timeout); err != nil {
		return nil, err
	}
	if err := ingress.ReplyError(reply.GetError()); err != nil {
		return nil, err
	}
	return &reply, nil
}

// send calls verb on behalf of c.
func (a *API) send(ctx context.Context, c *call, verb bus.Verb, req, reply proto.Message, timeout time.Duration) error {
	cctx, cancel := c.ctx(ctx, timeout)
	defer cancel()
	if err := a.caller.Call(cctx, verb, req, reply); err != nil {
		if errcode.CodeOf(err) == errcode.Unavailable {
			return errcode.Wrap(errcode.Unavailable, "service unavailable", err)
		}
		return err
	}
	return nil
}
