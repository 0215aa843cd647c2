// Package ports holds the importer's NATS handlers: each decodes the
// request, checks policy's authorization of the operator command, calls the
// import, and maps the outcome to the reply. Caller-facing errors travel
// inside the reply (rpcv1.Error with a stable errcode code and a message
// that never carries a secret, a URL or a payload); handlers never return a
// transport error for a refused or failed command.
package ports

import (
	"context"
	"errors"
	"log/slog"
	"regexp"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/importer/internal/ingest"
)

// Authorizer verifies policy's authorization carried by an operator
// command; *reqctx.Verifier implements it.
type Authorizer interface {
	VerifyCommand(cmd proto.Message, tenant string) (*commonv1.Authorization, error)
}

// Importer runs authorized imports and auth mappings; *ingest.Importer
// implements it.
type Importer interface {
	Import(ctx context.Context, cmd ingest.Command) (ingest.Result, error)
	MapAuth(ctx context.Context, cmd ingest.MapAuthCommand) (ingest.Result, error)
}

// Config configures the handlers.
type Config struct {
	Authorizer Authorizer
	Importer   Importer
	Logger     *slog.Logger
}

// Handlers serve the importer's verbs. They are safe for concurrent use.
type Handlers struct {
	auth Authorizer
	imp  Importer
	log  *slog.Logger
}

// New returns the handlers.
func New(cfg Config) (*Handlers, error) {
	if cfg.Authorizer == nil || cfg.Importer == nil {
		return nil, errors.New("ports: Authorizer and Importer are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Handlers{auth: cfg.Authorizer, imp: cfg.Importer, log: cfg.Logger.With("component", "ports")}, nil
}

// Import serves rpc.importer.import (bus.ImporterImport). It refuses a
// command without policy's authorization of exactly this command in its
// tenant before it reads anything, and replies ImportReply.
func (h *Handlers) Import(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.ImportSource
	if err := proto.Unmarshal(req.Data, &cmd); err != nil {
		return h.refuse(req, errcode.New(errcode.InvalidArgument, "undecodable request")), nil
	}
	authz, err := h.auth.VerifyCommand(&cmd, cmd.GetTenant())
	if err != nil {
		return h.refuse(req, err), nil
	}
	requestID, trace := correlation(req, authz)
	res, err := h.imp.Import(ctx, ingest.Command{
		Tenant:               cmd.GetTenant(),
		Name:                 cmd.GetName(),
		SourceID:             cmd.GetSourceId(),
		Upload:               cmd.GetUpload(),
		URL:                  cmd.GetUrl(),
		FetchAllowedHosts:    cmd.GetFetchAllowedHosts(),
		FetchAllowedPrefixes: cmd.GetFetchAllowedPrefixes(),
		Actor:                Actor(authz),
		RequestID:            requestID,
		TraceParent:          trace,
	})
	if err != nil {
		return h.refuse(req, err), nil
	}
	return &rpcv1.ImportReply{SourceId: res.SourceID, Version: res.Version, Review: res.Review}, nil
}

// MapAuth serves rpc.importer.map_auth (bus.ImporterMapAuth): it refuses a
// command without policy's authorization of exactly this command in its
// tenant before it reads anything, and replies ImportReply with the new
// version the mapping proposes.
func (h *Handlers) MapAuth(ctx context.Context, req *bus.Request) (proto.Message, error) {
	var cmd rpcv1.MapAuth
	if err := proto.Unmarshal(req.Data, &cmd); err != nil {
		return h.refuse(req, errcode.New(errcode.InvalidArgument, "undecodable request")), nil
	}
	authz, err := h.auth.VerifyCommand(&cmd, cmd.GetTenant())
	if err != nil {
		return h.refuse(req, err), nil
	}
	requestID, trace := correlation(req, authz)
	res, err := h.imp.MapAuth(ctx, ingest.MapAuthCommand{
		Tenant:      cmd.GetTenant(),
		SourceID:    cmd.GetSourceId(),
		Scheme:      cmd.GetScheme(),
		Kind:        cmd.GetKind(),
		In:          cmd.GetIn(),
		Param:       cmd.GetParam(),
		Actor:       Actor(authz),
		RequestID:   requestID,
		TraceParent: trace,
	})
	if err != nil {
		return h.refuse(req, err), nil
	}
	return &rpcv1.ImportReply{SourceId: res.SourceID, Version: res.Version, Review: res.Review}, nil
}

// correlation is the request ID (the authorization's, else the request's
// when well formed) and the trace parent (when well formed) recorded on a
// command's events.
func correlation(req *bus.Request, authz *commonv1.Authorization) (requestID, trace string) {
	requestID = authz.GetRequestId()
	if requestID == "" && requestIDRE.MatchString(req.Meta.RequestID) {
		requestID = req.Meta.RequestID
	}
	if traceParentRE.MatchString(req.Meta.TraceParent) {
		trace = req.Meta.TraceParent
	}
	return requestID, trace
}

// refuse logs a refusal by code and request ID (never its input) and
// builds the reply.
func (h *Handlers) refuse(req *bus.Request, err error) *rpcv1.ImportReply {
	code, msg := errcode.Public(err)
	attrs := []any{"verb", req.Verb.Name, "request_id", req.Meta.RequestID, "code", code}
	switch code {
	case errcode.Internal, errcode.Unavailable:
		h.log.Error("import failed", append(attrs, "err", err)...)
	default:
		h.log.Info("import refused", attrs...)
	}
	return &rpcv1.ImportReply{Error: &rpcv1.Error{Code: string(code), Message: msg}}
}

// Actor is the actor recorded on the events of an authorized command: the
// operator (its user, or "admin" for the platform admin token) and the
// surface it acted through, via the importer.
func Actor(a *commonv1.Authorization) *commonv1.Actor {
	id := a.GetActor().GetUser()
	if id == "" {
		id = "admin"
	}
	return &commonv1.Actor{Kind: "operator", Id: id, Surface: a.GetActor().GetSurface(), Via: string(bus.Importer)}
}

var (
	requestIDRE   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	traceParentRE = regexp.MustCompile(`^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$`)
)
