package service

import (
	"context"
	"time"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
)

// policyClient asks policy for a decision over rpc.policy.check, bounded by
// a timeout; a reply error or no reply is an error (the gate denies).
type policyClient struct {
	c       *bus.Client
	timeout time.Duration
}

func (p *policyClient) Check(ctx context.Context, sc *commonv1.SignedContext, tool string) (string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	var reply rpcv1.CheckReply
	if err := p.c.Call(ctx, bus.PolicyCheck, &rpcv1.CheckRequest{Context: sc, Tool: tool}, &reply); err != nil {
		return "", "", err
	}
	if e := reply.GetError(); e != nil {
		return "", "", errcode.New(errcode.Code(e.GetCode()), e.GetMessage())
	}
	return reply.GetOutcome(), reply.GetReason(), nil
}

// brokerClient asks the broker for sealed material over
// rpc.broker.resolve, bounded by a timeout.
type brokerClient struct {
	c       *bus.Client
	timeout time.Duration
}

func (b *brokerClient) Resolve(ctx context.Context, req *rpcv1.ResolveRequest) (*rpcv1.ResolveReply, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var reply rpcv1.ResolveReply
	if err := b.c.Call(ctx, bus.BrokerResolve, req, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}
