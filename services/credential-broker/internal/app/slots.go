package app

import (
	"context"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
)

// Sources is the part of the read model the slots of a source come from;
// *catalog.Catalog implements it.
type Sources interface {
	Source(tenant, id string) (catalog.Source, bool)
	Version(tenant, sourceID string, n uint32) (*catalog.Version, bool)
	BindingsOf(tenant, sourceID, scheme string) []catalog.Binding
}

// Slots lists the binding slots of a source: one per auth scheme the tools
// of its approved version (or, before any approval, of its latest committed
// version) require, each with the strategy that can fill it and the active
// bindings that do. It reads metadata only.
func (a *App) Slots(ctx context.Context, tenant, sourceID string) (*rpcv1.ListSlotsReply, error) {
	if err := bus.CheckToken("tenant", tenant); err != nil {
		return nil, err
	}
	if err := bus.CheckToken("source ID", sourceID); err != nil {
		return nil, err
	}
	if err := a.refresh(ctx); err != nil {
		return nil, err
	}
	src, ok := a.cfg.Sources.Source(tenant, sourceID)
	if !ok {
		return nil, errcode.New(errcode.NotFound, "source not found")
	}
	var n uint32
	approved := src.Approval != nil
	if approved {
		n = src.Approval.Version
	} else {
		for v, ver := range src.Versions {
			if ver.Committed && v > n {
				n = v
			}
		}
	}
	ver, ok := a.cfg.Sources.Version(tenant, sourceID, n)
	if !ok {
		return nil, errcode.New(errcode.NotFound, "source has no committed version")
	}
	tools := make([]*controlv1.ToolSpec, 0, len(ver.Tools))
	for _, spec := range ver.Tools {
		tools = append(tools, spec)
	}
	out := &rpcv1.ListSlotsReply{Version: n, Approved: approved}
	for _, sl := range catalog.SlotsOf(tools, func(scheme string) []catalog.Binding {
		return a.cfg.Sources.BindingsOf(tenant, sourceID, scheme)
	}) {
		s := &rpcv1.Slot{Scheme: sl.Scheme, Kind: sl.Kind, In: sl.In, Param: sl.Param, Inferred: sl.Inferred,
			Tools: sl.Tools, Strategy: sl.Strategy, BlockedReason: sl.BlockedReason}
		for _, b := range sl.Bindings {
			s.Bindings = append(s.Bindings, &rpcv1.SlotBinding{BindingId: b.ID, Name: b.Name, Environment: b.Environment, Hosts: b.Hosts})
		}
		out.Slots = append(out.Slots, s)
	}
	return out, nil
}
