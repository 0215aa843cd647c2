package proposal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// This file names a source version's tools within its tenant. The analysis
// names tools uniquely within one description; here a name becomes stable
// across versions of the source and unique among the tools that policy
// approved in the tenant's other sources.

// minNameBudget is the analysis's floor for Options.ToolNameBudget.
const minNameBudget = 16

// NameBudget is the effective tool name budget for a configured one: the
// analysis default when 0, never below the analysis's floor.
func NameBudget(configured int) int {
	if configured <= 0 {
		configured = analysis.DefaultToolNameBudget
	}
	return max(configured, minNameBudget)
}

// NameContext is what naming a source version's tools takes into account.
type NameContext struct {
	// Slug is the source's slug: the prefix of a tool whose name another
	// source of the tenant has approved.
	Slug string
	// Budget is the longest name generated here (see NameBudget).
	Budget int
	// Approved are the tools of this source that policy approved (nil when
	// none): an operation matched to one keeps its name, whatever other
	// sources hold.
	Approved map[string]*controlv1.ToolSpec
	// Previous are the tools of the source's latest committed version (nil
	// for a new source): an operation matched to one keeps its name unless
	// another source of the tenant has had that name approved since.
	Previous map[string]*controlv1.ToolSpec
	// Taken are the tool names that other sources of the tenant have
	// approved.
	Taken map[string]bool
}

// Name returns a copy of res whose operations carry their final tool names,
// and res is left unchanged. An operation is matched to a tool of another
// version by operation ID, else by method and path (see Match); in order of
// precedence it is named:
//
//  1. as the approved tool it matches;
//  2. as the previous version's tool it matches, unless another source has
//     that name approved;
//  3. by its previous name or else the analysis's, prefixed with "<slug>_"
//     when another source has that name approved (within the budget, cut
//     with a digest suffix);
//
// and any name that another operation of the source already holds gets a
// suffix derived from its method and path. Every name that differs from the
// analysis's is explained by an info diagnostic naming the operation. Names
// stay within [a-zA-Z0-9_-] and unique within the result.
func Name(res *analysis.Result, nc NameContext) *analysis.Result {
	out := *res
	out.Operations = append([]analysis.Operation(nil), res.Operations...)
	out.Diagnostics = append([]analysis.Diagnostic{}, res.Diagnostics...)
	budget := NameBudget(nc.Budget)

	keys := make([]OpKey, len(out.Operations))
	for i, op := range out.Operations {
		keys[i] = OpKey{OperationID: op.OperationID, Method: op.Method, Path: op.Path}
	}
	approved := Match(keys, nc.Approved)
	previous := Match(keys, nc.Previous)

	final := make([]string, len(keys))
	held := map[string]bool{}
	for i, n := range approved {
		if n != "" && !held[n] {
			final[i], held[n] = n, true
		}
	}
	for i, n := range previous {
		if final[i] == "" && n != "" && !held[n] && !nc.Taken[n] {
			final[i], held[n] = n, true
		}
	}
	used := func(n string) bool { return held[n] || nc.Taken[n] }
	notes := make([]string, len(keys))
	for i, op := range out.Operations {
		switch {
		case final[i] == "":
		case final[i] == op.Name:
			continue
		case final[i] == approved[i]:
			notes[i] = fmt.Sprintf("keeps its approved tool name %q (derived name %q)", final[i], op.Name)
			continue
		default:
			notes[i] = fmt.Sprintf("keeps its tool name %q of the previous version (derived name %q)", final[i], op.Name)
			continue
		}
		// The previous name, when the operation matched one that nothing
		// of this source holds, is not kept only because another source
		// has it approved: the tool then takes the prefix.
		name := op.Name
		if n := previous[i]; n != "" && !held[n] {
			name = n
		}
		var why []string
		if nc.Taken[name] {
			why = append(why, fmt.Sprintf("tool name %q is approved in another source of this tenant", name))
			name = prefixed(nc.Slug, name, budget)
		}
		if used(name) {
			why = append(why, fmt.Sprintf("tool name %q is held by another tool", name))
			name = disambiguate(name, keys[i].route(), budget, used)
		}
		final[i], held[name] = name, true
		if name != op.Name {
			notes[i] = fmt.Sprintf("is named %q: %s", name, strings.Join(why, "; "))
		}
	}
	for i := range out.Operations {
		out.Operations[i].Name = final[i]
		if notes[i] != "" {
			msg := fmt.Sprintf("operation %s %s %s", out.Operations[i].Method, out.Operations[i].Path, notes[i])
			out.Diagnostics = append(out.Diagnostics, analysis.Diagnostic{Level: analysis.LevelInfo, Message: trimMessage(msg)})
		}
	}
	return &out
}

// OpKey identifies an operation across versions of a source.
type OpKey struct {
	OperationID, Method, Path string
}

func (k OpKey) route() string { return strings.ToUpper(k.Method) + " " + k.Path }

// keyOf is the OpKey of a tool spec.
func keyOf(s *controlv1.ToolSpec) OpKey {
	op := s.GetOperation()
	return OpKey{OperationID: op.GetOperationId(), Method: op.GetMethod(), Path: op.GetPath()}
}

// Match pairs each key with a tool of tools (by name) and returns the
// matched names, "" where none matched. A key with an operation ID matches
// the tool of that operation ID first; every key left matches the tool of
// its method and path. Each tool is matched at most once; among tools that
// share an operation ID or a route, the first by name is the candidate.
func Match(keys []OpKey, tools map[string]*controlv1.ToolSpec) []string {
	out := make([]string, len(keys))
	if len(tools) == 0 {
		return out
	}
	names := make([]string, 0, len(tools))
	for n := range tools {
		names = append(names, n)
	}
	sort.Strings(names)
	byID, byRoute := map[string]string{}, map[string]string{}
	for _, n := range names {
		k := keyOf(tools[n])
		if _, ok := byID[k.OperationID]; k.OperationID != "" && !ok {
			byID[k.OperationID] = n
		}
		if _, ok := byRoute[k.route()]; !ok {
			byRoute[k.route()] = n
		}
	}
	taken := map[string]bool{}
	for i, k := range keys {
		if n, ok := byID[k.OperationID]; k.OperationID != "" && ok && !taken[n] {
			out[i], taken[n] = n, true
		}
	}
	for i, k := range keys {
		if out[i] != "" {
			continue
		}
		if n, ok := byRoute[k.route()]; ok && !taken[n] {
			out[i], taken[n] = n, true
		}
	}
	return out
}

// prefixed is "<slug>_<name>", cut to budget with a suffix derived from the
// whole so that two long names stay apart.
func prefixed(slug, name string, budget int) string {
	full := slug + "_" + name
	if slug == "" {
		full = "source_" + name
	}
	if len(full) <= budget {
		return full
	}
	return withSuffix(full, hexDigest(full)[:6], budget)
}

// disambiguate appends to name a suffix derived from the operation's route,
// as short as keeps it unused, else a counter.
func disambiguate(name, route string, budget int, used func(string) bool) string {
	h := hexDigest(route)
	for n := 6; n <= len(h); n += 2 {
		if c := withSuffix(name, h[:n], budget); !used(c) {
			return c
		}
	}
	for k := 2; ; k++ {
		if c := withSuffix(name, strconv.Itoa(k), budget); !used(c) {
			return c
		}
	}
}

// withSuffix appends "_"+suffix to name, cutting name so that the result
// fits in budget.
func withSuffix(name, suffix string, budget int) string {
	keep := max(budget-len(suffix)-1, 1)
	if len(name) > keep {
		name = strings.TrimRight(name[:keep], "_-")
	}
	return name + "_" + suffix
}

func hexDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// maxMessageBytes bounds a diagnostic message added here.
const maxMessageBytes = 512

// trimMessage cuts a message to maxMessageBytes on a character boundary.
func trimMessage(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxMessageBytes {
		return s
	}
	cut := maxMessageBytes - len("…")
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
