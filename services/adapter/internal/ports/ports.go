// Package ports serves the adapter's NATS verbs, rpc.adapter.invoke and
// rpc.adapter.explain: decode the request, check that the edge sent it, run
// the call, and map the outcome onto the reply. Caller-facing errors travel
// inside the reply's Error with codes from libs/errcode; nothing logged here
// carries an argument, a context or a result.
package ports

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/adapter/internal/invoke"
)

// App is the application the handlers call; *invoke.Service implements it.
type App interface {
	Invoke(ctx context.Context, c invoke.Call) invoke.Outcome
	Explain(ctx context.Context, c invoke.Call) invoke.Explanation
}

// Server registers handlers; *bus.Server implements it.
type Server interface {
	Handle(verb bus.Verb, h bus.Handler) error
}

// Handlers are the adapter's RPC handlers. They are safe for concurrent use.
type Handlers struct {
	app App
	log *slog.Logger
}

// New returns the handlers of app.
func New(app App, log *slog.Logger) (*Handlers, error) {
	if app == nil {
		return nil, errors.New("ports: handlers need an app")
	}
	if log == nil {
		log = slog.Default()
	}
	return &Handlers{app: app, log: log.With("component", "ports")}, nil
}

// Register serves both verbs on s.
func (h *Handlers) Register(s Server) error {
	if err := s.Handle(bus.AdapterInvoke, h.Invoke); err != nil {
		return err
	}
	return s.Handle(bus.AdapterExplain, h.Explain)
}

func replyError(code errcode.Code, msg string) *rpcv1.Error {
	return &rpcv1.Error{Code: string(code), Message: msg}
}

// call decodes an InvokeRequest sent by the edge.
func (h *Handlers) call(req *bus.Request) (invoke.Call, *rpcv1.Error) {
	if req.Caller != bus.Edge {
		return invoke.Call{}, replyError(errcode.PermissionDenied, "only the edge may call the adapter")
	}
	var in rpcv1.InvokeRequest
	if err := proto.Unmarshal(req.Data, &in); err != nil {
		return invoke.Call{}, replyError(errcode.InvalidArgument, "undecodable request")
	}
	return invoke.Call{Context: in.GetContext(), Tool: in.GetTool(), Arguments: in.GetArguments(),
		RequestID: in.GetRequestId(), Meta: req.Meta}, nil
}

// Invoke serves rpc.adapter.invoke: the uniform tool_not_permitted error up
// to and including the policy gate, otherwise a CallToolResult.
func (h *Handlers) Invoke(ctx context.Context, req *bus.Request) (proto.Message, error) {
	c, e := h.call(req)
	if e != nil {
		h.log.Warn("invoke refused", "caller", req.Caller, "code", e.GetCode(), "request_id", req.Meta.RequestID)
		return &rpcv1.InvokeReply{Error: e}, nil
	}
	out := h.app.Invoke(ctx, c)
	if out.Uniform {
		return &rpcv1.InvokeReply{Error: replyError(errcode.ToolNotPermitted, invoke.UniformMessage)}, nil
	}
	return &rpcv1.InvokeReply{Result: out.Result}, nil
}

// Explain serves rpc.adapter.explain: which gate would refuse the call and
// why, without resolving a credential or calling the upstream.
func (h *Handlers) Explain(ctx context.Context, req *bus.Request) (proto.Message, error) {
	c, e := h.call(req)
	if e != nil {
		return &rpcv1.ExplainReply{Error: e}, nil
	}
	x := h.app.Explain(ctx, c)
	return &rpcv1.ExplainReply{Gate: string(x.Gate), Reason: x.Reason, Allowed: x.Allowed}, nil
}
