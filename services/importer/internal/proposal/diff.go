package proposal

import (
	"bytes"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/catalog"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// This file computes what a new version of a source changes against the
// version it replaces: tools added, removed and changed, auth schemes and
// proposed hosts. It names things and categories of change only; no schema,
// description or value of the document enters a diff.

// Base is the committed version a new version is compared against.
type Base struct {
	Version uint32
	// Tools by name.
	Tools map[string]*controlv1.ToolSpec
	Hosts []string
}

// Change categories of a tool (OperationChange.changes).
const (
	ChangeName         = "name"
	ChangeDescription  = "description"
	ChangeInputSchema  = "input_schema"
	ChangeOutputSchema = "output_schema"
	ChangeAnnotations  = "annotations"
	ChangeOperation    = "operation"
	ChangeAuth         = "auth"
)

// Change categories of an operation (OperationChange.operation_changes).
const (
	OpChangeOperationID = "operation_id"
	OpChangeMethod      = "method"
	OpChangePath        = "path"
	OpChangeServers     = "servers"
	OpChangeParams      = "params"
)

// Change categories of an auth scheme (AuthSchemeChange.changes).
const (
	SchemeChangeKind   = "kind"
	SchemeChangeIn     = "in"
	SchemeChangeParam  = "param"
	SchemeChangeScopes = "scopes"
)

// Diff compares the proposal's tools and hosts with the base version's. A
// tool of the proposal is matched to a base tool by Match (operation ID,
// else method and path); a matched pair whose catalog.ToolDigest differs is
// a change, with its categories. Lists are sorted: tools by name, schemes
// by name, hosts as strings.
func Diff(base Base, p *Proposal) (*controlv1.SourceDiff, error) {
	d := &controlv1.SourceDiff{BaseVersion: base.Version}
	keys := make([]OpKey, len(p.Tools))
	for i, s := range p.Tools {
		keys[i] = keyOf(s)
	}
	matched := Match(keys, base.Tools)
	seen := map[string]bool{}
	for i, spec := range p.Tools {
		old := base.Tools[matched[i]]
		if old == nil {
			d.AddedOperations = append(d.AddedOperations, opChange(spec))
			continue
		}
		seen[matched[i]] = true
		same, err := sameDigest(old, spec)
		if err != nil {
			return nil, err
		}
		if same {
			d.UnchangedOperations++
			continue
		}
		c := opChange(spec)
		c.Changes, c.OperationChanges = toolChanges(old, spec)
		if old.GetName() != spec.GetName() {
			c.PreviousTool = old.GetName()
		}
		d.ChangedOperations = append(d.ChangedOperations, c)
	}
	for _, n := range sortedNames(base.Tools) {
		if !seen[n] {
			d.RemovedOperations = append(d.RemovedOperations, opChange(base.Tools[n]))
		}
	}
	byName := func(s []*controlv1.OperationChange) {
		sort.Slice(s, func(i, j int) bool { return s[i].GetTool() < s[j].GetTool() })
	}
	byName(d.AddedOperations)
	byName(d.ChangedOperations)

	oldSchemes, newSchemes := schemesOf(base.Tools), schemesOf(toolMap(p.Tools))
	for _, n := range sortedNames(newSchemes) {
		cur, old := newSchemes[n], oldSchemes[n]
		switch {
		case old == nil:
			d.AddedSchemes = append(d.AddedSchemes, &controlv1.AuthSchemeChange{Name: n, Kind: cur.kind})
		default:
			if ch := old.changes(cur); len(ch) > 0 {
				c := &controlv1.AuthSchemeChange{Name: n, Kind: cur.kind, Changes: ch}
				if old.kind != cur.kind {
					c.PreviousKind = old.kind
				}
				d.ChangedSchemes = append(d.ChangedSchemes, c)
			}
		}
	}
	for _, n := range sortedNames(oldSchemes) {
		if newSchemes[n] == nil {
			d.RemovedSchemes = append(d.RemovedSchemes, &controlv1.AuthSchemeChange{Name: n, Kind: oldSchemes[n].kind})
		}
	}
	d.AddedHosts, d.RemovedHosts = setDiff(p.Hosts, base.Hosts), setDiff(base.Hosts, p.Hosts)
	return d, nil
}

func opChange(s *controlv1.ToolSpec) *controlv1.OperationChange {
	op := s.GetOperation()
	return &controlv1.OperationChange{Tool: s.GetName(), Method: op.GetMethod(), Path: op.GetPath(), OperationId: op.GetOperationId()}
}

func sameDigest(a, b *controlv1.ToolSpec) (bool, error) {
	da, err := catalog.ToolDigest(a)
	if err != nil {
		return false, err
	}
	db, err := catalog.ToolDigest(b)
	if err != nil {
		return false, err
	}
	return bytes.Equal(da, db), nil
}

// toolChanges lists what differs between two specs of one tool: every
// field of a ToolSpec falls in one category, so two specs with different
// digests always have at least one.
func toolChanges(old, cur *controlv1.ToolSpec) (changes, opChanges []string) {
	if old.GetName() != cur.GetName() {
		changes = append(changes, ChangeName)
	}
	if old.GetDescription() != cur.GetDescription() {
		changes = append(changes, ChangeDescription)
	}
	if !bytes.Equal(old.GetInputSchema(), cur.GetInputSchema()) {
		changes = append(changes, ChangeInputSchema)
	}
	if !bytes.Equal(old.GetOutputSchema(), cur.GetOutputSchema()) {
		changes = append(changes, ChangeOutputSchema)
	}
	if !proto.Equal(old.GetAnnotations(), cur.GetAnnotations()) {
		changes = append(changes, ChangeAnnotations)
	}
	if o, c := old.GetOperation(), cur.GetOperation(); !proto.Equal(o, c) {
		changes = append(changes, ChangeOperation)
		if o.GetOperationId() != c.GetOperationId() {
			opChanges = append(opChanges, OpChangeOperationID)
		}
		if o.GetMethod() != c.GetMethod() {
			opChanges = append(opChanges, OpChangeMethod)
		}
		if o.GetPath() != c.GetPath() {
			opChanges = append(opChanges, OpChangePath)
		}
		if !slices.Equal(o.GetServers(), c.GetServers()) {
			opChanges = append(opChanges, OpChangeServers)
		}
		if !paramsEqual(o, c) {
			opChanges = append(opChanges, OpChangeParams)
		}
	}
	if !slices.EqualFunc(old.GetAuth(), cur.GetAuth(), func(a, b *controlv1.AuthAlternative) bool { return proto.Equal(a, b) }) {
		changes = append(changes, ChangeAuth)
	}
	return changes, opChanges
}

func paramsEqual(a, b *controlv1.OperationSpec) bool {
	return a.GetContentType() == b.GetContentType() && a.GetBodyProperty() == b.GetBodyProperty() &&
		slices.EqualFunc(a.GetParams(), b.GetParams(), func(x, y *controlv1.ParamMapping) bool { return proto.Equal(x, y) })
}

// schemeInfo is an auth scheme as a version's tools require it.
type schemeInfo struct {
	kind, in, param string
	scopes          map[string]bool
}

func (s *schemeInfo) changes(cur *schemeInfo) []string {
	var out []string
	if s.kind != cur.kind {
		out = append(out, SchemeChangeKind)
	}
	if s.in != cur.in {
		out = append(out, SchemeChangeIn)
	}
	if s.param != cur.param {
		out = append(out, SchemeChangeParam)
	}
	if !sameSet(s.scopes, cur.scopes) {
		out = append(out, SchemeChangeScopes)
	}
	return out
}

// schemesOf collects the schemes the tools require, by name: kind and
// placement as the first tool (by name) states them, scopes over all.
func schemesOf(tools map[string]*controlv1.ToolSpec) map[string]*schemeInfo {
	out := map[string]*schemeInfo{}
	for _, n := range sortedNames(tools) {
		for _, alt := range tools[n].GetAuth() {
			for _, s := range alt.GetSchemes() {
				info := out[s.GetName()]
				if info == nil {
					info = &schemeInfo{kind: s.GetKind(), in: s.GetIn(), param: s.GetParam(), scopes: map[string]bool{}}
					out[s.GetName()] = info
				}
				for _, sc := range s.GetScopes() {
					info.scopes[sc] = true
				}
			}
		}
	}
	return out
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// setDiff returns the strings of a that b lacks, sorted and deduplicated.
func setDiff(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
			in[s] = true
		}
	}
	sort.Strings(out)
	return out
}

func toolMap(specs []*controlv1.ToolSpec) map[string]*controlv1.ToolSpec {
	m := make(map[string]*controlv1.ToolSpec, len(specs))
	for _, s := range specs {
		m[s.GetName()] = s
	}
	return m
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DiffEntries counts the entries of a diff's lists.
func DiffEntries(d *controlv1.SourceDiff) int {
	return len(d.GetAddedOperations()) + len(d.GetRemovedOperations()) + len(d.GetChangedOperations()) +
		len(d.GetAddedSchemes()) + len(d.GetRemovedSchemes()) + len(d.GetChangedSchemes()) +
		len(d.GetAddedHosts()) + len(d.GetRemovedHosts())
}

// TrimDiff returns d unchanged when its encoding fits in maxBytes, else a
// copy without as many trailing entries of its longest lists as it takes to
// fit, counted in Omitted. The counts (unchanged, omitted) and the base
// version are always kept; with every list empty the result may still
// exceed a tiny maxBytes.
func TrimDiff(d *controlv1.SourceDiff, maxBytes int) *controlv1.SourceDiff {
	if d == nil || proto.Size(d) <= maxBytes {
		return d
	}
	out := proto.Clone(d).(*controlv1.SourceDiff)
	for proto.Size(out) > maxBytes && DiffEntries(out) > 0 {
		excess := proto.Size(out) - maxBytes
		for excess > 0 && DiffEntries(out) > 0 {
			excess -= dropLongest(out)
			out.Omitted++
		}
	}
	return out
}

// dropLongest removes the last entry of d's longest list and returns about
// how many encoded bytes that saves.
func dropLongest(d *controlv1.SourceDiff) int {
	ops := []*[]*controlv1.OperationChange{&d.ChangedOperations, &d.AddedOperations, &d.RemovedOperations}
	schemes := []*[]*controlv1.AuthSchemeChange{&d.ChangedSchemes, &d.AddedSchemes, &d.RemovedSchemes}
	hosts := []*[]string{&d.AddedHosts, &d.RemovedHosts}
	longest := 0
	for _, l := range ops {
		longest = max(longest, len(*l))
	}
	for _, l := range schemes {
		longest = max(longest, len(*l))
	}
	for _, l := range hosts {
		longest = max(longest, len(*l))
	}
	const framing = 4 // a field tag and a length prefix
	for _, l := range ops {
		if n := len(*l); n == longest && n > 0 {
			size := proto.Size((*l)[n-1]) + framing
			*l = (*l)[:n-1]
			return size
		}
	}
	for _, l := range schemes {
		if n := len(*l); n == longest && n > 0 {
			size := proto.Size((*l)[n-1]) + framing
			*l = (*l)[:n-1]
			return size
		}
	}
	for _, l := range hosts {
		if n := len(*l); n == longest && n > 0 {
			size := len((*l)[n-1]) + framing
			*l = (*l)[:n-1]
			return size
		}
	}
	return 0
}

// JSONDiff is a diff as the review shows it: the "diff" object beside the
// analysis result. Lists encode as [] rather than null.
type JSONDiff struct {
	BaseVersion uint32 `json:"base_version"`
	Operations  struct {
		Added     []JSONOperationChange `json:"added"`
		Removed   []JSONOperationChange `json:"removed"`
		Changed   []JSONOperationChange `json:"changed"`
		Unchanged uint32                `json:"unchanged"`
	} `json:"operations"`
	Auth struct {
		Added   []JSONSchemeChange `json:"added"`
		Removed []JSONSchemeChange `json:"removed"`
		Changed []JSONSchemeChange `json:"changed"`
	} `json:"auth"`
	Hosts struct {
		Added   []string `json:"added"`
		Removed []string `json:"removed"`
	} `json:"hosts"`
	// Omitted counts entries left out to fit a message.
	Omitted uint32 `json:"omitted"`
}

// JSONOperationChange is one OperationChange in a review.
type JSONOperationChange struct {
	Tool             string   `json:"tool"`
	Method           string   `json:"method"`
	Path             string   `json:"path"`
	OperationID      string   `json:"operation_id"`
	Changes          []string `json:"changes,omitempty"`
	OperationChanges []string `json:"operation_changes,omitempty"`
	PreviousTool     string   `json:"previous_tool,omitempty"`
}

// JSONSchemeChange is one AuthSchemeChange in a review.
type JSONSchemeChange struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	PreviousKind string   `json:"previous_kind,omitempty"`
	Changes      []string `json:"changes,omitempty"`
}

// ReviewDiff maps a diff to its review form; nil stays nil.
func ReviewDiff(d *controlv1.SourceDiff) *JSONDiff {
	if d == nil {
		return nil
	}
	ops := func(in []*controlv1.OperationChange) []JSONOperationChange {
		out := make([]JSONOperationChange, 0, len(in))
		for _, c := range in {
			out = append(out, JSONOperationChange{Tool: c.GetTool(), Method: c.GetMethod(), Path: c.GetPath(), OperationID: c.GetOperationId(),
				Changes: c.GetChanges(), OperationChanges: c.GetOperationChanges(), PreviousTool: c.GetPreviousTool()})
		}
		return out
	}
	schemes := func(in []*controlv1.AuthSchemeChange) []JSONSchemeChange {
		out := make([]JSONSchemeChange, 0, len(in))
		for _, c := range in {
			out = append(out, JSONSchemeChange{Name: c.GetName(), Kind: c.GetKind(), PreviousKind: c.GetPreviousKind(), Changes: c.GetChanges()})
		}
		return out
	}
	strs := func(in []string) []string { return append([]string{}, in...) }
	j := &JSONDiff{BaseVersion: d.GetBaseVersion(), Omitted: d.GetOmitted()}
	j.Operations.Added, j.Operations.Removed, j.Operations.Changed = ops(d.GetAddedOperations()), ops(d.GetRemovedOperations()), ops(d.GetChangedOperations())
	j.Operations.Unchanged = d.GetUnchangedOperations()
	j.Auth.Added, j.Auth.Removed, j.Auth.Changed = schemes(d.GetAddedSchemes()), schemes(d.GetRemovedSchemes()), schemes(d.GetChangedSchemes())
	j.Hosts.Added, j.Hosts.Removed = strs(d.GetAddedHosts()), strs(d.GetRemovedHosts())
	return j
}
