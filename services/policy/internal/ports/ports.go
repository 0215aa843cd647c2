// Package ports serves policy's NATS verbs: each handler decodes the
// request, authorizes it (policy's signed context or command authorization),
// calls the application and maps errors into the reply's Error with a stable
// code and a caller-safe message. Handlers never log or echo a credential.
package ports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/policy/internal/app"
	"github.com/mcpgw/mcpgw/services/policy/internal/command"
	"github.com/mcpgw/mcpgw/services/policy/internal/decide"
)

// Server registers handlers; *bus.Server implements it.
type Server interface {
	Handle(verb bus.Verb, h bus.Handler) error
}

// Config configures the handlers.
type Config struct {
	App     *app.App
	Catalog command.Catalog
	Keys    command.KeyIndex
	Logger  *slog.Logger
	// NewID generates object IDs (default bus.NewID).
	NewID func(prefix string) string
	Now   func() time.Time
}

// Handlers are policy's RPC handlers.
type Handlers struct {
	cfg Config
	log *slog.Logger
}

// New returns the handlers.
func New(cfg Config) (*Handlers, error) {
	if cfg.App == nil || cfg.Catalog == nil || cfg.Keys == nil {
		return nil, errors.New("ports: App, Catalog and Keys are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NewID == nil {
		cfg.NewID = bus.NewID
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handlers{cfg: cfg, log: cfg.Logger.With("component", "ports")}, nil
}

// Register subscribes every policy verb on s.
func (h *Handlers) Register(s Server) error {
	for _, r := range []struct {
		verb bus.Verb
		h    bus.Handler
	}{
		{bus.PolicyAuthenticate, h.authenticate},
		{bus.PolicyAuthorize, h.authorize},
		{bus.PolicyCheck, h.check},
		{bus.PolicyVisible, h.visible},
		{bus.PolicyApprove, h.approve},
		{bus.PolicySelect, h.selectOps},
		{bus.PolicyGrant, h.grant},
		{bus.PolicyRevokeGrant, h.revokeGrant},
		{bus.PolicyIssueKey, h.issueKey},
		{bus.PolicyRevokeKey, h.revokeKey},
	} {
		if err := s.Handle(r.verb, r.h); err != nil {
			return fmt.Errorf("register %s: %w", r.verb.Subject(), err)
		}
	}
	return nil
}

// replyError maps an error to the reply's Error: its stable code and
// caller-safe message (errcode.Public), logging internal ones.
func (h *Handlers) replyError(ctx context.Context, verb string, err error) *rpcv1.Error {
	code, msg := errcode.Public(err)
	if code == errcode.Internal || code == errcode.Unavailable {
		h.log.Error("request failed", "verb", verb, "request_id", bus.MetaFrom(ctx).RequestID, "code", code, "err", err)
	}
	return &rpcv1.Error{Code: string(code), Message: msg}
}

func decode(data []byte, m proto.Message) error {
	if err := proto.Unmarshal(data, m); err != nil {
		return errcode.New(errcode.InvalidArgument, "undecodable request")
	}
	return nil
}

func (h *Handlers) authenticate(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.AuthenticateRequest
	if err := decode(req.Data, &in); err != nil {
		return &rpcv1.AuthenticateReply{Error: h.replyError(ctx, "authenticate", err)}, nil
	}
	sc, err := h.cfg.App.Authenticate(ctx, &in)
	clear(in.SealedCredential)
	if err != nil {
		return &rpcv1.AuthenticateReply{Error: h.replyError(ctx, "authenticate", err)}, nil
	}
	return &rpcv1.AuthenticateReply{Context: sc}, nil
}

func (h *Handlers) authorize(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.AuthorizeRequest
	if err := decode(req.Data, &in); err != nil {
		return &rpcv1.AuthorizeReply{Error: h.replyError(ctx, "authorize", err)}, nil
	}
	sa, err := h.cfg.App.Authorize(ctx, &in)
	if err != nil {
		return &rpcv1.AuthorizeReply{Error: h.replyError(ctx, "authorize", err)}, nil
	}
	return &rpcv1.AuthorizeReply{Authorization: sa}, nil
}

func (h *Handlers) check(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.CheckRequest
	if err := decode(req.Data, &in); err != nil {
		return &rpcv1.CheckReply{Error: h.replyError(ctx, "check", err), Outcome: string(decide.Denied)}, nil
	}
	c, err := h.cfg.App.VerifyContext(in.GetContext())
	if err != nil {
		_, msg := errcode.Public(err)
		return &rpcv1.CheckReply{Error: h.replyError(ctx, "check", err), Outcome: string(decide.Denied), Reason: msg}, nil
	}
	out, reason := h.cfg.App.Check(ctx, c, in.GetTool())
	return &rpcv1.CheckReply{Outcome: string(out), Reason: reason}, nil
}

func (h *Handlers) visible(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var in rpcv1.VisibleRequest
	if err := decode(req.Data, &in); err != nil {
		return &rpcv1.VisibleReply{Error: h.replyError(ctx, "visible", err)}, nil
	}
	c, err := h.cfg.App.VerifyContext(in.GetContext())
	if err != nil {
		return &rpcv1.VisibleReply{Error: h.replyError(ctx, "visible", err)}, nil
	}
	tools, err := h.cfg.App.Visible(ctx, c)
	if err != nil {
		return &rpcv1.VisibleReply{Error: h.replyError(ctx, "visible", err)}, nil
	}
	return &rpcv1.VisibleReply{Tools: tools}, nil
}

// runCommand decodes an operator command into cmd, verifies its
// authorization, and executes the plan.
func (h *Handlers) runCommand(ctx context.Context, verb string, data []byte, cmd app.Command, plan func() (command.Plan, error)) *rpcv1.CommandReply {
	if err := decode(data, cmd); err != nil {
		return &rpcv1.CommandReply{Error: h.replyError(ctx, verb, err)}
	}
	auth, err := h.cfg.App.VerifyCommand(ctx, cmd)
	if err != nil {
		return &rpcv1.CommandReply{Error: h.replyError(ctx, verb, err)}
	}
	res, err := h.cfg.App.Execute(ctx, auth, plan)
	if err != nil {
		return &rpcv1.CommandReply{Error: h.replyError(ctx, verb, err)}
	}
	h.log.Info("command applied", "verb", verb, "tenant", cmd.GetTenant(), "id", res.ID, "version", res.Version,
		"request_id", bus.MetaFrom(ctx).RequestID)
	return &rpcv1.CommandReply{Id: res.ID, Version: res.Version}
}

func (h *Handlers) approve(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.ApproveSourceVersion
	return h.runCommand(ctx, "approve", req.Data, &cmd, func() (command.Plan, error) {
		return command.Approve(h.cfg.Catalog, &cmd)
	}), nil
}

func (h *Handlers) selectOps(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.SelectOperations
	return h.runCommand(ctx, "select", req.Data, &cmd, func() (command.Plan, error) {
		return command.Select(h.cfg.Catalog, &cmd)
	}), nil
}

func (h *Handlers) grant(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.AddGrant
	return h.runCommand(ctx, "grant", req.Data, &cmd, func() (command.Plan, error) {
		return command.Grant(h.cfg.Catalog, &cmd, func() string { return h.cfg.NewID("grt_") })
	}), nil
}

func (h *Handlers) revokeGrant(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.RevokeGrant
	return h.runCommand(ctx, "revoke_grant", req.Data, &cmd, func() (command.Plan, error) {
		return command.RevokeGrant(h.cfg.Catalog, &cmd)
	}), nil
}

func (h *Handlers) issueKey(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.IssueAgentKey
	return h.runCommand(ctx, "issue_key", req.Data, &cmd, func() (command.Plan, error) {
		return command.IssueKey(h.cfg.Catalog, &cmd, h.cfg.Now(), func() string { return h.cfg.NewID("key_") })
	}), nil
}

func (h *Handlers) revokeKey(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.RevokeAgentKey
	return h.runCommand(ctx, "revoke_key", req.Data, &cmd, func() (command.Plan, error) {
		return command.RevokeKey(h.cfg.Keys, &cmd)
	}), nil
}
