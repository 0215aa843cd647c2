package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
	"github.com/mcpgw/mcpgw/services/importer/internal/proposal"
)

// This file is the importer's second command: an operator maps an auth
// requirement that no binding strategy serves, or whose kind is unknown, to
// a kind one serves. The importer proposes the mapping as a new version of
// the source, built from the latest committed version's stored document by
// the same path as an import (naming, proposal, diff, review, events); the
// version becomes what agents see only once policy approves its digests.

// MaxParamBytes bounds a mapped credential parameter's name.
const MaxParamBytes = 256

// MapAuthCommand is one mapping, already authorized.
type MapAuthCommand struct {
	Tenant, SourceID string
	// Scheme is the scheme's name as the source's tools carry it (see
	// proposal.SchemeName).
	Scheme string
	// Kind is analysis.KindAPIKey, KindHTTPBearer or KindHTTPBasic.
	Kind string
	// In and Param place the credential: an apiKey names both (header,
	// query or cookie); bearer and basic go in the Authorization header
	// (In and Param may be left empty).
	In, Param              string
	Actor                  *commonv1.Actor
	RequestID, TraceParent string
}

// mapping is a validated placement of a scheme.
type mapping struct {
	kind  analysis.Kind
	in    analysis.Location
	param string
}

// MapAuth proposes a new version of cmd's source in which every requirement
// named cmd.Scheme, in every tool, has cmd's kind and placement; earlier
// operator mappings of the source's latest committed version are kept.
// Every requirement stays caller-hidden, and the review carries an info
// diagnostic for each operator-mapped scheme. A refused mapping (invalid
// kind or placement, a scheme the latest version does not carry, a
// parameter that is a tool input, no change) writes nothing. It returns
// only after the version was committed and applied locally, like Import.
func (im *Importer) MapAuth(ctx context.Context, cmd MapAuthCommand) (Result, error) {
	m, err := validateMapAuth(&cmd)
	if err != nil {
		return Result{}, err
	}
	if s, ok := im.cfg.Catalog.Source(cmd.Tenant, cmd.SourceID); !ok || !s.Visible() {
		return Result{}, errcode.New(errcode.NotFound, "source not found")
	}
	unlock := im.locks.lock(cmd.Tenant + "/" + cmd.SourceID)
	defer unlock()
	if err := im.refresh(ctx); err != nil {
		return Result{}, err
	}
	base, err := im.latest(cmd.Tenant, cmd.SourceID)
	if err != nil {
		return Result{}, err
	}
	prev := schemesByName(base.Tools)
	cur, ok := prev[cmd.Scheme]
	if !ok {
		return Result{}, errcode.Errorf(errcode.NotFound, "no tool of the source's latest version requires auth scheme %q", cmd.Scheme)
	}
	if cur.GetKind() == string(m.kind) && cur.GetIn() == string(m.in) && cur.GetParam() == m.param {
		return Result{}, errcode.Errorf(errcode.InvalidArgument, "auth scheme %q already has this kind and placement", cmd.Scheme)
	}
	res, doc, err := im.reanalyse(ctx, base, cmd.Scheme, &m)
	if err != nil {
		return Result{}, err
	}
	sourceID, version, pl, err := im.write(ctx, Command{Tenant: cmd.Tenant, SourceID: cmd.SourceID, Actor: cmd.Actor,
		RequestID: cmd.RequestID, TraceParent: cmd.TraceParent}, res, doc)
	if err != nil {
		return Result{}, err
	}
	return Result{SourceID: sourceID, Version: version, Review: pl.review, Tools: len(pl.prop.Tools)}, nil
}

// reanalyse reads base's stored description and analyses it again, with
// every auth scheme that an operator mapped in base placed as base's tools
// carry it, and, when m is set, the scheme named mapped placed as m says
// (applyMappings refuses it when no requirement has that name). It is the
// path every version proposed from the stored description, rather than
// from a new one, takes.
func (im *Importer) reanalyse(ctx context.Context, base latestVersion, mapped string, m *mapping) (*analysis.Result, []byte, error) {
	doc, err := im.readStored(ctx, base.Document)
	if err != nil {
		return nil, nil, err
	}
	res, err := analysis.Analyze(doc, analysis.Options{ToolNameBudget: im.cfg.ToolNameBudget, MaxDocumentBytes: im.cfg.MaxDocumentBytes})
	if err != nil {
		return nil, nil, errcode.Wrap(errcode.Internal, "analyse the stored description", err)
	}
	placed := map[string]mapping{}
	for name, s := range schemesByName(base.Tools) {
		placed[name] = mapping{kind: analysis.Kind(s.GetKind()), in: analysis.Location(s.GetIn()), param: s.GetParam()}
	}
	if m != nil {
		placed[mapped] = *m
	} else {
		mapped = ""
	}
	if err := applyMappings(res, placed, mapped); err != nil {
		return nil, nil, err
	}
	return res, doc, nil
}

// validateMapAuth checks the command and returns its mapping, with bearer
// and basic placed in the Authorization header.
func validateMapAuth(cmd *MapAuthCommand) (mapping, error) {
	if err := bus.CheckToken("tenant", cmd.Tenant); err != nil {
		return mapping{}, err
	}
	if err := bus.CheckToken("source ID", cmd.SourceID); err != nil {
		return mapping{}, err
	}
	if cmd.Scheme == "" || len(cmd.Scheme) > MaxParamBytes+32 || !printableASCII(cmd.Scheme) {
		return mapping{}, errcode.New(errcode.InvalidArgument, "invalid auth scheme name")
	}
	m := mapping{kind: analysis.Kind(cmd.Kind), in: analysis.Location(cmd.In), param: cmd.Param}
	switch m.kind {
	case analysis.KindAPIKey:
		switch m.in {
		case analysis.LocationHeader, analysis.LocationQuery, analysis.LocationCookie:
		default:
			return mapping{}, errcode.New(errcode.InvalidArgument, "an apiKey goes in a header, a query parameter or a cookie")
		}
		if m.param == "" {
			return mapping{}, errcode.New(errcode.InvalidArgument, "an apiKey needs the parameter that carries it")
		}
		if len(m.param) > MaxParamBytes || !tokenChars(m.param) {
			return mapping{}, errcode.Errorf(errcode.InvalidArgument, "invalid parameter name: at most %d bytes of letters, digits and !#$%%&'*+-.^_`|~", MaxParamBytes)
		}
	case analysis.KindHTTPBearer, analysis.KindHTTPBasic:
		if m.in != "" && m.in != analysis.LocationHeader || m.param != "" && !strings.EqualFold(m.param, "Authorization") {
			return mapping{}, errcode.Errorf(errcode.InvalidArgument, "%s goes in the Authorization header", m.kind)
		}
		m.in, m.param = analysis.LocationHeader, "Authorization"
	default:
		return mapping{}, errcode.Errorf(errcode.InvalidArgument, "kind must be %s, %s or %s", analysis.KindAPIKey, analysis.KindHTTPBearer, analysis.KindHTTPBasic)
	}
	return m, nil
}

// tokenChars reports an HTTP token (RFC 9110), which also suits query and
// cookie names.
func tokenChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// latestVersion is the latest committed version of a source, with its
// stored document.
type latestVersion struct {
	Number   uint32
	Document *controlv1.DocumentRef
	Tools    map[string]*controlv1.ToolSpec
}

func (im *Importer) latest(tenant, sourceID string) (latestVersion, error) {
	base := im.base(tenant, sourceID)
	if base == nil {
		return latestVersion{}, errcode.New(errcode.NotFound, "source not found")
	}
	v, ok := im.cfg.Tools.Version(tenant, sourceID, base.Version)
	if !ok || v.Document.GetObject() == "" {
		return latestVersion{}, errcode.New(errcode.Unavailable, "the latest version's description is not recorded")
	}
	return latestVersion{Number: base.Version, Document: v.Document, Tools: base.Tools}, nil
}

// readStored reads a version's stored description and checks it against
// the SHA-256 its start event recorded.
func (im *Importer) readStored(ctx context.Context, ref *controlv1.DocumentRef) ([]byte, error) {
	obj, err := im.cfg.Sources.Get(ctx, ref.GetObject())
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, errcode.New(errcode.Unavailable, "the latest version's description is missing from its bucket")
	}
	if err != nil {
		return nil, errcode.Wrap(errcode.Unavailable, "read stored description", err)
	}
	defer obj.Close()
	doc, err := io.ReadAll(io.LimitReader(obj, im.cfg.MaxDocumentBytes+1))
	if err != nil {
		return nil, errcode.Wrap(errcode.Unavailable, "read stored description", err)
	}
	if int64(len(doc)) > im.cfg.MaxDocumentBytes {
		return nil, im.tooLarge()
	}
	sum := sha256.Sum256(doc)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), ref.GetSha256()) {
		return nil, errcode.New(errcode.Internal, "the stored description does not match its SHA-256")
	}
	return doc, nil
}

// schemesByName collects the auth schemes of tools by name.
func schemesByName(tools map[string]*controlv1.ToolSpec) map[string]*controlv1.AuthScheme {
	out := map[string]*controlv1.AuthScheme{}
	for _, t := range tools {
		for _, alt := range t.GetAuth() {
			for _, s := range alt.GetSchemes() {
				if _, ok := out[s.GetName()]; !ok {
					out[s.GetName()] = s
				}
			}
		}
	}
	return out
}

// applyMappings places every requirement of res whose scheme name maps
// differently from its analysis (the scheme being mapped, and those an
// operator mapped in earlier versions) as maps says, in the operations and
// in the declared schemes, and notes each in an info diagnostic (mapped is
// empty when no scheme is being mapped). It refuses
// a mapping whose parameter is an input of one of the tools that need it.
func applyMappings(res *analysis.Result, placed map[string]mapping, mapped string) error {
	changed := map[string]bool{}
	place := func(r *analysis.Requirement) {
		name := proposal.SchemeName(*r)
		m, ok := placed[name]
		if !ok || (r.Kind == m.kind && r.In == m.in && r.Param == m.param && name != mapped) {
			return
		}
		r.Scheme, r.Kind, r.In, r.Param, r.CallerVisible = name, m.kind, m.in, m.param, false
		changed[name] = true
	}
	for i := range res.Operations {
		op := &res.Operations[i]
		touched := map[string]bool{}
		for _, alt := range op.Auth {
			for j := range alt {
				place(&alt[j])
				touched[alt[j].Scheme] = true
			}
		}
		for j := range op.InferredAuth {
			place(&op.InferredAuth[j])
			touched[op.InferredAuth[j].Scheme] = true
		}
		for name := range touched {
			m, ok := placed[name]
			if !ok || !changed[name] {
				continue
			}
			for _, f := range op.Request.Fields {
				if f.WholeBody || f.In != m.in {
					continue
				}
				if f.Name == m.param || m.in == analysis.LocationHeader && strings.EqualFold(f.Name, m.param) {
					return errcode.Errorf(errcode.InvalidArgument, "parameter %q of %s %s is a tool input: it cannot carry the credential of auth scheme %q",
						m.param, op.Method, op.Path, name)
				}
			}
		}
	}
	if mapped != "" && !changed[mapped] {
		return errcode.Errorf(errcode.NotFound, "no operation of the stored description requires auth scheme %q", mapped)
	}
	for i := range res.Schemes {
		s := &res.Schemes[i]
		if m, ok := placed[s.Name]; ok && changed[s.Name] {
			s.Kind, s.In, s.Param = m.kind, m.in, m.param
		}
	}
	for _, name := range sortedKeys(changed) {
		m := placed[name]
		res.Diagnostics = append(res.Diagnostics, analysis.Diagnostic{Level: analysis.LevelInfo,
			Message: fmt.Sprintf("auth scheme %q mapped by an operator: kind %s, in %s, param %q", name, m.kind, m.in, m.param)})
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
