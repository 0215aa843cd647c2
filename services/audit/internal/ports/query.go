// Package ports holds the audit service's NATS handlers. Each decodes the
// request, checks policy's authorization of the command, calls the query
// service and maps the outcome into the reply; caller-facing errors go
// inside the reply as stable codes with caller-safe messages.
package ports

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"

	"github.com/mcpgw/mcpgw/services/audit/internal/query"
	"github.com/mcpgw/mcpgw/services/audit/internal/row"
)

// CommandVerifier checks policy's authorization of an operator command for
// a tenant (reqctx.Verifier).
type CommandVerifier interface {
	VerifyCommand(cmd proto.Message, tenant string) (*commonv1.Authorization, error)
}

// Querier runs a query (query.Service).
type Querier interface {
	Run(ctx context.Context, f query.Filter) ([]row.Row, error)
}

// QueryConfig configures a Query handler.
type QueryConfig struct {
	Verifier CommandVerifier
	Queries  Querier
	Logger   *slog.Logger
}

// Query serves rpc.audit.query. It is safe for concurrent use.
type Query struct {
	verifier CommandVerifier
	queries  Querier
	log      *slog.Logger
}

// NewQuery returns the rpc.audit.query handler.
func NewQuery(cfg QueryConfig) (*Query, error) {
	if cfg.Verifier == nil || cfg.Queries == nil {
		return nil, errors.New("ports: Verifier and Queries are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Query{verifier: cfg.Verifier, queries: cfg.Queries, log: cfg.Logger.With("component", "ports", "verb", bus.AuditQuery.Subject())}, nil
}

// Handle is the bus.Handler of rpc.audit.query. It answers only a
// QueryAudit that carries policy's authorization of exactly that command
// for the tenant it names, and returns only that tenant's rows, newest
// first. Every refusal is a reply with an error code, never a transport
// error.
func (h *Query) Handle(ctx context.Context, req *bus.Request) (proto.Message, error) {
	log := h.log.With("caller", req.Caller, "request_id", req.Meta.RequestID)
	var cmd rpcv1.QueryAudit
	if err := proto.Unmarshal(req.Data, &cmd); err != nil {
		return refuse(log, "", errcode.New(errcode.InvalidArgument, "undecodable QueryAudit")), nil
	}
	tenant := cmd.GetTenant()
	if err := bus.CheckToken("tenant", tenant); err != nil {
		return refuse(log, "", err), nil
	}
	auth, err := h.verifier.VerifyCommand(&cmd, tenant)
	if err != nil {
		return refuse(log, tenant, err), nil
	}
	rows, err := h.queries.Run(ctx, query.Filter{
		Tenant: tenant, RequestID: cmd.GetRequestId(), BindingID: cmd.GetBindingId(), Limit: int(cmd.GetLimit()),
	})
	if err != nil {
		return refuse(log, tenant, err), nil
	}
	reply := &rpcv1.QueryAuditReply{Rows: make([]*rpcv1.AuditRow, 0, len(rows))}
	for _, r := range rows {
		reply.Rows = append(reply.Rows, toProto(r))
	}
	log.Info("audit query answered", "tenant", tenant, "actor", actorID(auth), "authorization_id", auth.GetAuthorizationId(), "rows", len(rows))
	return reply, nil
}

// refuse logs a refusal by code and returns the reply that carries it.
func refuse(log *slog.Logger, tenant string, err error) *rpcv1.QueryAuditReply {
	code, msg := errcode.Public(err)
	if code == errcode.Unavailable || code == errcode.Internal {
		log.Error("audit query failed", "tenant", tenant, "code", code, "err", err)
	} else {
		log.Warn("audit query refused", "tenant", tenant, "code", code, "reason", msg)
	}
	return &rpcv1.QueryAuditReply{Error: &rpcv1.Error{Code: string(code), Message: msg}}
}

// actorID names who asked: the user, else the agent, else "admin" for the
// platform admin.
func actorID(a *commonv1.Authorization) string {
	switch act := a.GetActor(); {
	case act.GetUser() != "":
		return act.GetUser()
	case act.GetAgent() != "":
		return act.GetAgent()
	default:
		return "admin"
	}
}

func toProto(r row.Row) *rpcv1.AuditRow {
	return &rpcv1.AuditRow{
		EventId:          r.EventID,
		Time:             timestamppb.New(r.Time),
		Tenant:           r.Tenant,
		Kind:             r.Kind,
		Code:             r.Code,
		Service:          r.Service,
		RequestId:        r.RequestID,
		Actor:            r.Actor,
		AgentId:          r.AgentID,
		UserId:           r.UserID,
		Surface:          r.Surface,
		ReportedSurface:  r.ReportedSurface,
		Environment:      r.Environment,
		Tool:             r.Tool,
		SourceId:         r.SourceID,
		BindingId:        r.BindingID,
		Gate:             r.Gate,
		Reason:           r.Reason,
		CredentialStatus: r.CredentialStatus,
		PolicyOutcome:    r.PolicyOutcome,
		AdapterOutcome:   r.AdapterOutcome,
		UpstreamStatus:   uint32(r.UpstreamStatus),
		LatencyUs:        r.LatencyUS,
		Subject:          r.Subject,
	}
}
