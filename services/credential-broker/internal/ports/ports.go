// Package ports holds the broker's NATS handlers: rpc.broker.put_secret,
// rpc.broker.create_binding and rpc.broker.slots (operator commands, from
// the edge) and
// rpc.broker.resolve (from the adapter). Each handler decodes the request,
// authorizes it — policy's signed authorization of exactly this command, or
// policy's signed context of the call — calls the app, and maps any error
// into the reply's Error{code, message} through errcode.Public. Replies and
// logs carry codes, IDs and caller-safe messages only, never secret
// material; resolve's only payload is the sealed material.
package ports

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/app"
)

// Verifier checks policy's signatures; *reqctx.Verifier implements it.
type Verifier interface {
	Verify(sc *commonv1.SignedContext) (*commonv1.Context, error)
	VerifyCommand(cmd proto.Message, tenant string) (*commonv1.Authorization, error)
}

// Server registers handlers for verbs; *bus.Server implements it.
type Server interface {
	Handle(verb bus.Verb, h bus.Handler) error
}

// Config configures the handlers. App and Verifier are required.
type Config struct {
	App      *app.App
	Verifier Verifier
	// Logger defaults to slog.Default(); handlers add component=ports.
	Logger *slog.Logger
}

// Handlers serves the broker's verbs. It is safe for concurrent use.
type Handlers struct {
	app *app.App
	ver Verifier
	log *slog.Logger
}

// New returns the handlers.
func New(cfg Config) (*Handlers, error) {
	if cfg.App == nil || cfg.Verifier == nil {
		return nil, errors.New("ports: App and Verifier are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handlers{app: cfg.App, ver: cfg.Verifier, log: cfg.Logger.With("component", "ports")}, nil
}

// Register subscribes every handler on s.
func (h *Handlers) Register(s Server) error {
	for _, r := range []struct {
		verb bus.Verb
		h    bus.Handler
	}{
		{bus.BrokerPutSecret, h.PutSecret},
		{bus.BrokerCreate, h.CreateBinding},
		{bus.BrokerResolve, h.Resolve},
		{bus.BrokerSlots, h.Slots},
	} {
		if err := s.Handle(r.verb, r.h); err != nil {
			return err
		}
	}
	return nil
}

// PutSecret serves rpc.broker.put_secret: decode a PutSecret, verify its
// authorization, store the secret. The reply's ID is the new secret
// reference.
func (h *Handlers) PutSecret(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.PutSecret
	if err := proto.Unmarshal(req.Data, &cmd); err != nil {
		return commandError(errcode.Wrap(errcode.InvalidArgument, "undecodable PutSecret", err)), nil
	}
	auth, err := h.authorize(&cmd, cmd.GetTenant())
	if err != nil {
		return commandError(err), nil
	}
	res, err := h.app.PutSecret(ctx, &cmd, auth)
	if err != nil {
		h.refused(req, "put_secret", cmd.GetTenant(), err)
		return commandError(err), nil
	}
	return &rpcv1.CommandReply{Id: res.ID, Version: res.Version}, nil
}

// CreateBinding serves rpc.broker.create_binding: decode a CreateBinding,
// verify its authorization, create the binding. The reply's ID is the
// binding ID.
func (h *Handlers) CreateBinding(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.CreateBinding
	if err := proto.Unmarshal(req.Data, &cmd); err != nil {
		return commandError(errcode.Wrap(errcode.InvalidArgument, "undecodable CreateBinding", err)), nil
	}
	auth, err := h.authorize(&cmd, cmd.GetTenant())
	if err != nil {
		return commandError(err), nil
	}
	res, err := h.app.CreateBinding(ctx, &cmd, auth)
	if err != nil {
		h.refused(req, "create_binding", cmd.GetTenant(), err)
		return commandError(err), nil
	}
	return &rpcv1.CommandReply{Id: res.ID, Version: res.Version}, nil
}

// Slots serves rpc.broker.slots: decode a ListSlots, verify its
// authorization, list the source's binding slots.
func (h *Handlers) Slots(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.ListSlots
	if err := proto.Unmarshal(req.Data, &cmd); err != nil {
		return &rpcv1.ListSlotsReply{Error: replyError(errcode.Wrap(errcode.InvalidArgument, "undecodable ListSlots", err))}, nil
	}
	if _, err := h.authorize(&cmd, cmd.GetTenant()); err != nil {
		return &rpcv1.ListSlotsReply{Error: replyError(err)}, nil
	}
	out, err := h.app.Slots(ctx, cmd.GetTenant(), cmd.GetSourceId())
	if err != nil {
		return &rpcv1.ListSlotsReply{Error: replyError(err)}, nil
	}
	return out, nil
}

// Resolve serves rpc.broker.resolve: only the adapter may ask (the bus
// already refuses any other caller; this is checked again), and only with a
// context policy signed. The reply carries the material sealed to the
// request's recipient key, or an error and nothing else.
func (h *Handlers) Resolve(ctx context.Context, req *bus.Request) (proto.Message, error) {
	if req.Caller != bus.Adapter {
		h.log.Warn("resolve refused: caller is not the adapter", "caller", req.Caller)
		return &rpcv1.ResolveReply{Error: replyError(errcode.New(errcode.PermissionDenied, "only the adapter may resolve credentials"))}, nil
	}
	var r rpcv1.ResolveRequest
	if err := proto.Unmarshal(req.Data, &r); err != nil {
		return &rpcv1.ResolveReply{Error: replyError(errcode.Wrap(errcode.InvalidArgument, "undecodable ResolveRequest", err))}, nil
	}
	c, err := h.ver.Verify(r.GetContext())
	if err != nil {
		h.log.Warn("resolve refused: context not verified", "request_id", req.Meta.RequestID, "code", errcode.CodeOf(err), "err", err)
		return &rpcv1.ResolveReply{Error: replyError(err)}, nil
	}
	sealed, err := h.app.Resolve(ctx, c, &r)
	if err != nil {
		return &rpcv1.ResolveReply{Error: replyError(err)}, nil
	}
	return &rpcv1.ResolveReply{Sealed: sealed}, nil
}

// authorize verifies the authorization a command carries for tenant.
func (h *Handlers) authorize(cmd proto.Message, tenant string) (*commonv1.Authorization, error) {
	if err := bus.CheckToken("tenant", tenant); err != nil {
		return nil, err
	}
	auth, err := h.ver.VerifyCommand(cmd, tenant)
	if err != nil {
		h.log.Warn("command refused: authorization not verified", "command", reqName(cmd), "tenant", tenant,
			"code", errcode.CodeOf(err), "err", err)
		if errcode.CodeOf(err) == errcode.Internal {
			return nil, err
		}
		return nil, errcode.Wrap(errcode.PermissionDenied, "command not authorized: "+publicMessage(err), err)
	}
	return auth, nil
}

// refused logs a command the app refused.
func (h *Handlers) refused(req *bus.Request, verb, tenant string, err error) {
	code := errcode.CodeOf(err)
	level := slog.LevelInfo
	if code == errcode.Unavailable || code == errcode.Internal {
		level = slog.LevelError
	}
	h.log.Log(context.Background(), level, "command refused", "verb", verb, "tenant", tenant,
		"request_id", req.Meta.RequestID, "code", code, "err", err)
}

// commandError is the reply to a refused operator command.
func commandError(err error) *rpcv1.CommandReply {
	return &rpcv1.CommandReply{Error: replyError(err)}
}

// replyError maps err to the Error part of a reply.
func replyError(err error) *rpcv1.Error {
	code, msg := errcode.Public(err)
	return &rpcv1.Error{Code: string(code), Message: msg}
}

// publicMessage returns err's caller-safe message.
func publicMessage(err error) string {
	_, msg := errcode.Public(err)
	return msg
}

// reqName names a command message in logs.
func reqName(cmd proto.Message) string { return string(cmd.ProtoReflect().Descriptor().Name()) }
