// Package proposal turns an analysis result into what the importer proposes
// for one source version: the tool specs (one file, toolspec.go, holds that
// mapping), the tools' final names within the tenant (naming.go), the hosts
// the operations call, the digest the commit event carries, the diff against
// the source's previous version (diff.go), the source's slug, and the review
// returned to the operator. It performs no I/O and is deterministic: the
// same inputs give the same bytes.
package proposal

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/catalog"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// Proposal is what one source version proposes.
type Proposal struct {
	// Tools are sorted by name; operations marked unsupported have none.
	Tools []*controlv1.ToolSpec
	// Hosts are the host[:port] of every operation's absolute servers,
	// lowercased, sorted and deduplicated.
	Hosts []string
	// ToolsDigest is SHA-256 over the concatenated catalog.ToolDigest of
	// Tools, in name order.
	ToolsDigest []byte
	// Unsupported counts the operations that produced no tool.
	Unsupported int
}

// Build maps an analysis result to its proposal. It fails when a tool
// cannot be mapped safely (see ToolSpec) or two operations share a name.
func Build(res *analysis.Result) (*Proposal, error) {
	p := &Proposal{}
	hosts := map[string]bool{}
	names := map[string]bool{}
	for _, op := range res.Operations {
		for _, s := range op.Servers {
			if h := hostOf(s.URL); h != "" {
				hosts[h] = true
			}
		}
		if op.Unsupported != "" {
			p.Unsupported++
			continue
		}
		if names[op.Name] {
			return nil, fmt.Errorf("tool name %q is not unique", op.Name)
		}
		names[op.Name] = true
		spec, err := ToolSpec(op)
		if err != nil {
			return nil, err
		}
		p.Tools = append(p.Tools, spec)
	}
	sort.Slice(p.Tools, func(i, j int) bool { return p.Tools[i].GetName() < p.Tools[j].GetName() })
	for h := range hosts {
		p.Hosts = append(p.Hosts, h)
	}
	sort.Strings(p.Hosts)
	d, err := ToolsDigest(p.Tools)
	if err != nil {
		return nil, err
	}
	p.ToolsDigest = d
	return p, nil
}

// ToolsDigest is SHA-256 over the concatenated catalog.ToolDigest of specs
// taken in name order, whatever order they are given in.
func ToolsDigest(specs []*controlv1.ToolSpec) ([]byte, error) {
	sorted := append([]*controlv1.ToolSpec(nil), specs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].GetName() < sorted[j].GetName() })
	h := sha256.New()
	for _, s := range sorted {
		d, err := catalog.ToolDigest(s)
		if err != nil {
			return nil, err
		}
		h.Write(d)
	}
	return h.Sum(nil), nil
}

// hostOf returns the lowercased host[:port] of an absolute URL, or "" for a
// relative one or one that does not parse.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Host)
}

// MaxSlug is the longest slug.
const MaxSlug = 32

// Slug derives a source's slug from its name: lowercase ASCII letters and
// digits, every other run of characters one '-', no leading or trailing
// '-', at most MaxSlug characters; "source" when nothing is left.
func Slug(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			sep := dash && b.Len() > 0
			if sep && b.Len()+2 > MaxSlug || b.Len()+1 > MaxSlug {
				break
			}
			if sep {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	if b.Len() == 0 {
		return "source"
	}
	return b.String()
}

// Review encodes the review of res for the operator, within budget bytes:
// the analysis.Document of res (the document `mcpgw inspect -o json`
// prints, byte for byte once compacted) with diff, when not nil, beside it
// as its "diff" object (see ReviewDiff). When the full encoding is larger it
// drops the operations' input and output schemas (input_schema becomes
// null), then trailing operations, and says so in an info diagnostic; when
// even that does not fit, it drops trailing diff entries too (counted in the
// diff's "omitted"). It does not modify res. The events always carry every
// tool in full.
func Review(res *analysis.Result, diff *controlv1.SourceDiff, budget int) ([]byte, error) {
	return ReviewWithSlots(res, diff, nil, budget)
}

// ReviewWithSlots is Review with the version's binding slots beside the
// document as its "slots" object: per auth scheme, the strategy that can
// fill it (or why none can) and the bindings that already do — what must be
// bound before the tools can run.
func ReviewWithSlots(res *analysis.Result, diff *controlv1.SourceDiff, slots []catalog.Slot, budget int) ([]byte, error) {
	doc := analysis.NewDocument(res)
	js := reviewSlots(slots)
	for {
		b, err := review(doc, diff, js, budget)
		if !errors.Is(err, errReviewTooLarge) || DiffEntries(diff) == 0 {
			return b, err
		}
		diff = TrimDiff(diff, proto.Size(diff)/2)
	}
}

// errReviewTooLarge: the review does not fit even without operations.
var errReviewTooLarge = errors.New("review exceeds the reply budget")

// reviewDoc is the review: the document with the diff and the binding
// slots beside it.
type reviewDoc struct {
	*analysis.Document
	Diff  *JSONDiff  `json:"diff,omitempty"`
	Slots []JSONSlot `json:"slots,omitempty"`
}

// JSONSlot is one binding slot in a review.
type JSONSlot struct {
	Scheme        string            `json:"scheme"`
	Kind          string            `json:"kind"`
	In            string            `json:"in,omitempty"`
	Param         string            `json:"param,omitempty"`
	Inferred      bool              `json:"inferred,omitempty"`
	Tools         []string          `json:"tools"`
	Strategy      string            `json:"strategy,omitempty"`
	BlockedReason string            `json:"blocked_reason,omitempty"`
	Bindings      []JSONSlotBinding `json:"bindings"`
}

// JSONSlotBinding is a binding filling a slot.
type JSONSlotBinding struct {
	BindingID   string   `json:"binding_id"`
	Environment string   `json:"environment,omitempty"`
	Hosts       []string `json:"hosts,omitempty"`
}

func reviewSlots(slots []catalog.Slot) []JSONSlot {
	var out []JSONSlot
	for _, s := range slots {
		js := JSONSlot{Scheme: s.Scheme, Kind: s.Kind, In: s.In, Param: s.Param, Inferred: s.Inferred, Tools: s.Tools,
			Strategy: s.Strategy, BlockedReason: s.BlockedReason, Bindings: []JSONSlotBinding{}}
		for _, b := range s.Bindings {
			js.Bindings = append(js.Bindings, JSONSlotBinding{BindingID: b.ID, Environment: b.Environment, Hosts: b.Hosts})
		}
		out = append(out, js)
	}
	return out
}

func review(doc *analysis.Document, diff *controlv1.SourceDiff, slots []JSONSlot, budget int) ([]byte, error) {
	jd := ReviewDiff(diff)
	full, err := json.Marshal(reviewDoc{doc, jd, slots})
	if err != nil {
		return nil, fmt.Errorf("encode review: %w", err)
	}
	if len(full) <= budget {
		return full, nil
	}
	short := *doc
	short.Operations = make([]analysis.DocumentOperation, len(doc.Operations))
	for i, op := range doc.Operations {
		op.InputSchema, op.OutputSchema = nil, nil
		short.Operations[i] = op
	}
	note := func(omitted int) analysis.DocumentDiagnostic {
		msg := "review shortened to fit a reply: operation schemas omitted"
		if omitted > 0 {
			msg += fmt.Sprintf("; %d of %d operations omitted", omitted, len(doc.Operations))
		}
		return analysis.DocumentDiagnostic{Level: analysis.LevelInfo, Message: msg}
	}
	encode := func(n int) ([]byte, error) {
		d := short
		d.Operations = short.Operations[:n]
		d.Diagnostics = append(append([]analysis.DocumentDiagnostic{}, doc.Diagnostics...), note(len(doc.Operations)-n))
		return json.Marshal(reviewDoc{&d, jd, slots})
	}
	// The largest prefix of operations that fits, by binary search.
	lo, hi := 0, len(short.Operations)
	for lo < hi {
		mid := (lo + hi + 1) / 2
		b, err := encode(mid)
		if err != nil {
			return nil, fmt.Errorf("encode review: %w", err)
		}
		if len(b) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	b, err := encode(lo)
	if err != nil {
		return nil, fmt.Errorf("encode review: %w", err)
	}
	if len(b) > budget {
		return nil, fmt.Errorf("%w: %d bytes even without operations, over %d", errReviewTooLarge, len(b), budget)
	}
	return b, nil
}
