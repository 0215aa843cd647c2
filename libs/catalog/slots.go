package catalog

import (
	"sort"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// StrategyForKind names the binding strategy that serves a requirement
// kind; a kind without one blocks its tools until an operator maps the
// requirement to a kind that has one.
var strategyForKind = map[string]string{
	"apiKey":      "api_key",
	"http-bearer": "bearer",
	"http-basic":  "basic",
}

// StrategyForKind returns the binding strategy serving kind, or "".
func StrategyForKind(kind string) string { return strategyForKind[kind] }

// Slot is one auth scheme a source's tools need bound before they can run:
// an unbound binding slot until an active binding fills it.
type Slot struct {
	Scheme, Kind, In, Param string
	Inferred                bool
	// Tools whose requirements name the scheme, sorted.
	Tools []string
	// Strategy that can fill the slot; empty when none serves the kind.
	Strategy string
	// BlockedReason says why nothing can fill the slot yet.
	BlockedReason string
	// Bindings are the active bindings filling it, in every environment.
	Bindings []Binding
}

// SlotsOf projects the slots of a set of tools (a source version), with
// the active bindings bindingsOf returns for each scheme. The result is
// sorted by scheme name; it holds metadata only.
func SlotsOf(tools []*controlv1.ToolSpec, bindingsOf func(scheme string) []Binding) []Slot {
	byName := map[string]*Slot{}
	for _, spec := range tools {
		for _, alt := range spec.GetAuth() {
			for _, sc := range alt.GetSchemes() {
				s, ok := byName[sc.GetName()]
				if !ok {
					s = &Slot{Scheme: sc.GetName(), Kind: sc.GetKind(), In: sc.GetIn(), Param: sc.GetParam(), Inferred: sc.GetInferred(),
						Strategy: strategyForKind[sc.GetKind()]}
					switch {
					case sc.GetKind() == "unknown":
						s.BlockedReason = "the auth requirement was not understood; an operator must map it (mcpgw map-auth) before its tools can run"
					case s.Strategy == "":
						s.BlockedReason = "no binding strategy serves " + sc.GetKind() + " yet; an operator can map it to one that does (mcpgw map-auth)"
					}
					byName[sc.GetName()] = s
				}
				if n := len(s.Tools); n == 0 || s.Tools[n-1] != spec.GetName() {
					s.Tools = append(s.Tools, spec.GetName())
				}
			}
		}
	}
	out := make([]Slot, 0, len(byName))
	for _, s := range byName {
		sort.Strings(s.Tools)
		s.Tools = dedupeSorted(s.Tools)
		if bindingsOf != nil {
			s.Bindings = bindingsOf(s.Scheme)
		}
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scheme < out[j].Scheme })
	return out
}

func dedupeSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
