package proposal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// This file is the one mapping from an analysed operation to the ToolSpec
// that policy approves by digest and the adapter runs.

// ToolSpec maps one analysed operation to its ToolSpec. Schemas are
// re-encoded canonically (object keys sorted, numbers as written, no HTML
// escaping), so the same operation always yields the same bytes and the same
// digest. Every auth scheme is caller-hidden. It fails when a scheme's
// credential parameter would be a tool input: such a tool is never proposed.
func ToolSpec(op analysis.Operation) (*controlv1.ToolSpec, error) {
	in, err := canonicalJSON(op.InputSchema)
	if err != nil {
		return nil, fmt.Errorf("tool %q: input schema: %w", op.Name, err)
	}
	out, err := canonicalJSON(op.OutputSchema)
	if err != nil {
		return nil, fmt.Errorf("tool %q: output schema: %w", op.Name, err)
	}
	spec := &controlv1.ToolSpec{
		Name:         op.Name,
		Description:  op.Description,
		InputSchema:  in,
		OutputSchema: out,
		Annotations:  annotations(op.Annotations),
		Operation:    operation(op),
		Auth:         authAlternatives(op),
	}
	if err := checkHidden(spec); err != nil {
		return nil, fmt.Errorf("tool %q: %w", op.Name, err)
	}
	return spec, nil
}

// canonicalJSON re-encodes a JSON document deterministically: object keys
// sorted, numbers kept as written, no HTML escaping. Empty input stays nil.
func canonicalJSON(raw json.RawMessage) ([]byte, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode: trailing data")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func annotations(a analysis.Annotations) *controlv1.ToolAnnotations {
	deref := func(b *bool) bool { return b != nil && *b }
	return &controlv1.ToolAnnotations{
		Title:       a.Title,
		ReadOnly:    deref(a.ReadOnlyHint),
		Destructive: deref(a.DestructiveHint),
		Idempotent:  deref(a.IdempotentHint),
		OpenWorld:   deref(a.OpenWorldHint),
	}
}

// operation maps the request side: servers as resolved URLs, one parameter
// mapping per input property, and the property that carries a whole body.
func operation(op analysis.Operation) *controlv1.OperationSpec {
	spec := &controlv1.OperationSpec{
		OperationId: op.OperationID,
		Method:      op.Method,
		Path:        op.Path,
		ContentType: op.Request.ContentType,
	}
	for _, s := range op.Servers {
		spec.Servers = append(spec.Servers, s.URL)
	}
	for _, f := range op.Request.Fields {
		if f.WholeBody {
			spec.BodyProperty = f.Property
			continue
		}
		spec.Params = append(spec.Params, &controlv1.ParamMapping{
			Property: f.Property,
			In:       string(f.In),
			Name:     f.Name,
			Required: f.Required,
			Style:    f.Style,
			Explode:  f.Explode != nil && *f.Explode,
		})
	}
	return spec
}

// authAlternatives maps the effective requirement (OR of ANDs) and adds the
// inferred credentials to every alternative, since each is needed in
// addition to the declared ones. No requirement at all maps to no
// alternative; an empty declared alternative (anonymous access) stays empty
// unless inferred credentials apply.
func authAlternatives(op analysis.Operation) []*controlv1.AuthAlternative {
	alts := op.Auth
	if len(alts) == 0 && len(op.InferredAuth) > 0 {
		alts = [][]analysis.Requirement{nil}
	}
	var out []*controlv1.AuthAlternative
	for _, alt := range alts {
		a := &controlv1.AuthAlternative{}
		for _, r := range alt {
			a.Schemes = append(a.Schemes, scheme(r))
		}
		for _, r := range op.InferredAuth {
			a.Schemes = append(a.Schemes, scheme(r))
		}
		out = append(out, a)
	}
	return out
}

// scheme maps one requirement. A requirement inferred from a parameter that
// no declared scheme describes gets the stable name
// "inferred:<in>:<param>" ("inferred:<kind>" without a parameter), so that a
// binding can name it.
func scheme(r analysis.Requirement) *controlv1.AuthScheme {
	return &controlv1.AuthScheme{
		Name:          SchemeName(r),
		Kind:          string(r.Kind),
		In:            string(r.In),
		Param:         r.Param,
		Scopes:        append([]string(nil), r.Scopes...),
		Inferred:      r.Inferred,
		CallerVisible: false,
	}
}

// SchemeName is the name a requirement's scheme carries in a ToolSpec: the
// declared scheme's name, else "inferred:<in>:<param>" ("inferred:<kind>"
// without a parameter).
func SchemeName(r analysis.Requirement) string {
	switch {
	case r.Scheme != "":
		return r.Scheme
	case r.Param != "":
		return "inferred:" + string(r.In) + ":" + r.Param
	default:
		return "inferred:" + string(r.Kind)
	}
}

// checkHidden refuses a spec in which a credential parameter of one of its
// schemes is mapped from a tool input: the caller would supply it.
func checkHidden(spec *controlv1.ToolSpec) error {
	for _, alt := range spec.GetAuth() {
		for _, s := range alt.GetSchemes() {
			if s.GetParam() == "" {
				continue
			}
			for _, p := range spec.GetOperation().GetParams() {
				if p.GetIn() != s.GetIn() {
					continue
				}
				same := p.GetName() == s.GetParam()
				if s.GetIn() == string(analysis.LocationHeader) {
					same = strings.EqualFold(p.GetName(), s.GetParam())
				}
				if same {
					return fmt.Errorf("credential parameter of scheme %q is a tool input", s.GetName())
				}
			}
		}
	}
	return nil
}
