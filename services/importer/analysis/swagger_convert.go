package analysis

import (
	"encoding/json"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
)

// applyPrefixItems turns the tuples normalizeSwagger set aside into
// prefixItems, once the document is converted and its references resolved.
func applyPrefixItems(doc *openapi3.T) {
	var schemas map[string]*openapi3.SchemaRef
	if doc.Components != nil {
		schemas = doc.Components.Schemas
	}
	seen := map[*openapi3.Schema]bool{}
	var visit func(ref *openapi3.SchemaRef)
	visit = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if raw, ok := s.Extensions[prefixItemsKey]; ok {
			delete(s.Extensions, prefixItemsKey)
			s.PrefixItems = tupleSchemas(raw, schemas)
		}
		for _, name := range sortedKeys(s.Properties) {
			visit(s.Properties[name])
		}
		visit(s.Items)
		visit(s.AdditionalProperties.Schema)
		visit(s.Not)
		for _, list := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf, s.PrefixItems} {
			for _, r := range list {
				visit(r)
			}
		}
	}
	visitContent := func(c openapi3.Content) {
		for _, mt := range sortedKeys(c) {
			if c[mt] != nil {
				visit(c[mt].Schema)
			}
		}
	}
	visitParams := func(ps openapi3.Parameters) {
		for _, p := range ps {
			if p != nil && p.Value != nil {
				visit(p.Value.Schema)
			}
		}
	}
	visitResponse := func(r *openapi3.ResponseRef) {
		if r == nil || r.Value == nil {
			return
		}
		visitContent(r.Value.Content)
		for _, h := range sortedKeys(r.Value.Headers) {
			if hr := r.Value.Headers[h]; hr != nil && hr.Value != nil {
				visit(hr.Value.Schema)
			}
		}
	}
	for _, name := range sortedKeys(schemas) {
		visit(schemas[name])
	}
	if doc.Components != nil {
		for _, name := range sortedKeys(doc.Components.Parameters) {
			if p := doc.Components.Parameters[name]; p != nil && p.Value != nil {
				visit(p.Value.Schema)
			}
		}
		for _, name := range sortedKeys(doc.Components.RequestBodies) {
			if rb := doc.Components.RequestBodies[name]; rb != nil && rb.Value != nil {
				visitContent(rb.Value.Content)
			}
		}
		for _, name := range sortedKeys(doc.Components.Responses) {
			visitResponse(doc.Components.Responses[name])
		}
	}
	if doc.Paths == nil {
		return
	}
	items := doc.Paths.Map()
	for _, path := range sortedKeys(items) {
		item := items[path]
		if item == nil {
			continue
		}
		visitParams(item.Parameters)
		for _, m := range methods(item) {
			visitParams(m.op.Parameters)
			if rb := m.op.RequestBody; rb != nil && rb.Value != nil {
				visitContent(rb.Value.Content)
			}
			if m.op.Responses != nil {
				for _, code := range m.op.Responses.Keys() {
					visitResponse(m.op.Responses.Value(code))
				}
			}
		}
	}
}

// tupleSchemas converts the elements of a tuple kept by normalizeSchema,
// resolving their references to definitions.
func tupleSchemas(raw any, schemas map[string]*openapi3.SchemaRef) openapi3.SchemaRefs {
	elems, _ := raw.([]any)
	out := make(openapi3.SchemaRefs, 0, len(elems))
	for _, e := range elems {
		ref := &openapi3.SchemaRef{Value: &openapi3.Schema{}}
		if data, err := json.Marshal(e); err == nil {
			var s2 openapi2.SchemaRef
			if json.Unmarshal(data, &s2) == nil {
				ref = openapi2conv.ToV3SchemaRef(&s2)
				resolveLocalRefs(ref, schemas, map[*openapi3.Schema]bool{})
			}
		}
		if ref.Ref == "" && ref.Value == nil {
			ref.Value = &openapi3.Schema{}
		}
		out = append(out, ref)
	}
	return out
}

// resolveLocalRefs points the unresolved references of a freshly converted
// schema at the document's definitions. A reference to anything else stays
// unresolved, which the analyzer reads as any value.
func resolveLocalRefs(ref *openapi3.SchemaRef, schemas map[string]*openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil {
		return
	}
	if ref.Ref != "" {
		if ref.Value == nil {
			if name, ok := strings.CutPrefix(ref.Ref, "#/components/schemas/"); ok {
				name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
				if target := schemas[name]; target != nil {
					ref.Value = target.Value
				}
			}
		}
		return
	}
	s := ref.Value
	if s == nil || seen[s] {
		return
	}
	seen[s] = true
	for _, r := range s.Properties {
		resolveLocalRefs(r, schemas, seen)
	}
	resolveLocalRefs(s.Items, schemas, seen)
	resolveLocalRefs(s.AdditionalProperties.Schema, schemas, seen)
	for _, r := range s.AllOf {
		resolveLocalRefs(r, schemas, seen)
	}
}

// formDataNameKey is the extension openapi2conv leaves on the schema of each
// form field it builds from a formData parameter.
const formDataNameKey = "x-formData-name"

// settleFormBodies finishes the form bodies openapi2conv builds from formData
// parameters: a body with a required field is itself required (otherwise
// the analyzer, as OpenAPI 3 says, requires none of its fields), and a field
// defined once under `parameters` no longer lists itself as required inside
// its own schema.
func settleFormBodies(doc *openapi3.T) {
	if doc.Paths == nil {
		return
	}
	for _, item := range doc.Paths.Map() {
		if item == nil {
			continue
		}
		for _, m := range methods(item) {
			rb := m.op.RequestBody
			if rb == nil || rb.Value == nil {
				continue
			}
			for _, mt := range rb.Value.Content {
				if mt == nil || mt.Schema == nil || mt.Schema.Ref != "" || mt.Schema.Value == nil {
					continue
				}
				form := false
				for name, p := range mt.Schema.Value.Properties {
					if p == nil || p.Value == nil {
						continue
					}
					if _, ok := p.Value.Extensions[formDataNameKey]; !ok {
						continue
					}
					form = true
					if len(p.Value.Required) == 1 && p.Value.Required[0] == name {
						p.Value.Required = nil
					}
				}
				if form && len(mt.Schema.Value.Required) > 0 {
					rb.Value.Required = true
				}
			}
		}
	}
}
