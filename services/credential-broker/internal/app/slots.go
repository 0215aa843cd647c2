package app

import (
	"context"
	"sort"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
)

// Sources is the part of the read model the slots of a source come from;
// *catalog.Catalog implements it.
type Sources interface {
	Source(tenant, id string) (catalog.Source, bool)
	Version(tenant, sourceID string, n uint32) (*catalog.Version, bool)
	BindingsOf(tenant, sourceID, scheme string) []catalog.Binding
}

// strategyForKind names the binding strategy that serves a requirement
// kind; kinds with no strategy yet block their tools.
var strategyForKind = map[string]string{
	"apiKey":      "api_key",
	"http-bearer": "bearer",
	"http-basic":  "basic",
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
	slots := map[string]*rpcv1.Slot{}
	for name, spec := range ver.Tools {
		for _, alt := range spec.GetAuth() {
			for _, sc := range alt.GetSchemes() {
				s, ok := slots[sc.GetName()]
				if !ok {
					s = &rpcv1.Slot{Scheme: sc.GetName(), Kind: sc.GetKind(), In: sc.GetIn(), Param: sc.GetParam(), Inferred: sc.GetInferred()}
					s.Strategy = strategyForKind[sc.GetKind()]
					switch {
					case sc.GetKind() == "unknown":
						s.BlockedReason = "the auth requirement was not understood; an operator must map it before its tools can run"
					case s.Strategy == "":
						s.BlockedReason = "no binding strategy serves " + sc.GetKind() + " yet"
					}
					slots[sc.GetName()] = s
				}
				if !contains(s.Tools, name) {
					s.Tools = append(s.Tools, name)
				}
			}
		}
	}
	out := &rpcv1.ListSlotsReply{Version: n, Approved: approved}
	for _, s := range slots {
		sort.Strings(s.Tools)
		for _, b := range a.cfg.Sources.BindingsOf(tenant, sourceID, s.Scheme) {
			s.Bindings = append(s.Bindings, &rpcv1.SlotBinding{BindingId: b.ID, Name: b.Name, Environment: b.Environment, Hosts: b.Hosts})
		}
		out.Slots = append(out.Slots, s)
	}
	sort.Slice(out.Slots, func(i, j int) bool { return out.Slots[i].Scheme < out.Slots[j].Scheme })
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
