package analysis

import (
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// schemaMode says which side of the call a schema describes.
type schemaMode int

const (
	// modeInput describes what the caller sends: readOnly properties are
	// dropped.
	modeInput schemaMode = iota
	// modeOutput describes what the upstream returns: writeOnly properties
	// are dropped.
	modeOutput
)

const (
	// inlineNodeBudget bounds the schema objects one tool schema may inline;
	// past it the tool's schemas are rebuilt with every reference in $defs.
	inlineNodeBudget = 2000
	// inlineDepthBudget bounds how deep inlined references may nest before the
	// same fallback applies.
	inlineDepthBudget = 48
	// hardDepth stops any conversion that nests deeper, whatever the mode.
	hardDepth = 2 * maxDepth
)

// converter turns OpenAPI schemas (3.0 or 3.1, references resolved by the
// loader) into JSON Schema 2020-12 values: a map[string]any, or a bool for a
// boolean schema. References are inlined, except a reference back to a schema
// being expanded (recursion), which becomes a $ref into $defs; with allDefs
// every reference does. One converter serves one tool schema, whose root
// carries the collected $defs.
type converter struct {
	mode    schemaMode
	allDefs bool

	// expanding holds the referenced schemas being inlined.
	expanding map[*openapi3.Schema]bool
	depth     int
	nodes     int
	overflow  bool

	defNames  map[string]string
	nameTaken map[string]bool
	defs      map[string]any
	pending   []pendingDef
}

type pendingDef struct {
	name   string
	schema *openapi3.Schema
}

func newConverter(mode schemaMode, allDefs bool) *converter {
	return &converter{
		mode:      mode,
		allDefs:   allDefs,
		expanding: map[*openapi3.Schema]bool{},
		defNames:  map[string]string{},
		nameTaken: map[string]bool{},
		defs:      map[string]any{},
	}
}

// convert converts one schema reference.
func (c *converter) convert(ref *openapi3.SchemaRef) any {
	if ref == nil || ref.Value == nil {
		return map[string]any{}
	}
	s := ref.Value
	if ref.Ref == "" {
		return c.convertValue(s)
	}
	if c.allDefs || c.expanding[s] {
		return map[string]any{"$ref": "#/$defs/" + c.defFor(ref.Ref, s)}
	}
	var out any
	c.within(s, func() { out = c.convertValue(s) })
	return out
}

// within runs fn with s marked as being expanded, so that a reference back
// to s inside fn becomes a $ref.
func (c *converter) within(s *openapi3.Schema, fn func()) {
	if c.expanding[s] {
		fn()
		return
	}
	c.expanding[s] = true
	defer delete(c.expanding, s)
	fn()
}

// finish converts the definitions that references asked for and returns
// them; nil when there are none.
func (c *converter) finish() map[string]any {
	for len(c.pending) > 0 {
		next := c.pending[0]
		c.pending = c.pending[1:]
		c.within(next.schema, func() { c.defs[next.name] = c.convertValue(next.schema) })
	}
	if len(c.defs) == 0 {
		return nil
	}
	return c.defs
}

// defFor names the definition of a reference, scheduling its conversion the
// first time.
func (c *converter) defFor(ref string, s *openapi3.Schema) string {
	if name, ok := c.defNames[ref]; ok {
		return name
	}
	_, fragment, _ := strings.Cut(ref, "#")
	if fragment == "" {
		fragment = ref
	}
	last := fragment[strings.LastIndexByte(fragment, '/')+1:]
	last = strings.ReplaceAll(strings.ReplaceAll(last, "~1", "/"), "~0", "~")
	base := sanitizeKey(last, 64)
	if base == "" {
		base = "schema"
	}
	name := base
	for i := 2; c.nameTaken[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	c.nameTaken[name] = true
	c.defNames[ref] = name
	c.pending = append(c.pending, pendingDef{name: name, schema: s})
	return name
}

func (c *converter) convertValue(s *openapi3.Schema) any {
	if s.Always != nil {
		return *s.Always
	}
	if c.depth > hardDepth {
		// Only a loop that no reference names gets here.
		return map[string]any{}
	}
	c.nodes++
	if !c.allDefs && (c.nodes > inlineNodeBudget || c.depth > inlineDepthBudget) {
		c.overflow = true
		return map[string]any{}
	}
	c.depth++
	defer func() { c.depth-- }()

	out := map[string]any{}
	if types := s.Type.Slice(); len(types) > 0 {
		ts := slices.Clone(types)
		if s.Nullable && !slices.Contains(ts, "null") {
			ts = append(ts, "null")
		}
		if len(ts) == 1 {
			out["type"] = ts[0]
		} else {
			out["type"] = ts
		}
	}
	setString(out, "title", s.Title)
	setString(out, "description", s.Description)
	setString(out, "format", s.Format)
	if len(s.Enum) > 0 {
		enum := slices.Clone(s.Enum)
		if s.Nullable && !slices.Contains(enum, any(nil)) {
			enum = append(enum, nil)
		}
		out["enum"] = enum
	}
	if s.Default != nil {
		out["default"] = s.Default
	}
	if s.Const != nil {
		out["const"] = s.Const
	}
	switch {
	case len(s.Examples) > 0:
		out["examples"] = s.Examples
	case s.Example != nil:
		out["examples"] = []any{s.Example}
	}
	if s.Deprecated {
		out["deprecated"] = true
	}
	if s.ReadOnly {
		out["readOnly"] = true
	}
	if s.WriteOnly {
		out["writeOnly"] = true
	}

	// Numbers: OpenAPI 3.0's boolean exclusive bounds become 2020-12 numbers.
	switch {
	case s.ExclusiveMin.Value != nil:
		out["exclusiveMinimum"] = *s.ExclusiveMin.Value
		if s.Min != nil {
			out["minimum"] = *s.Min
		}
	case s.ExclusiveMin.IsTrue() && s.Min != nil:
		out["exclusiveMinimum"] = *s.Min
	case s.Min != nil:
		out["minimum"] = *s.Min
	}
	switch {
	case s.ExclusiveMax.Value != nil:
		out["exclusiveMaximum"] = *s.ExclusiveMax.Value
		if s.Max != nil {
			out["maximum"] = *s.Max
		}
	case s.ExclusiveMax.IsTrue() && s.Max != nil:
		out["exclusiveMaximum"] = *s.Max
	case s.Max != nil:
		out["maximum"] = *s.Max
	}
	if s.MultipleOf != nil {
		out["multipleOf"] = *s.MultipleOf
	}

	// Strings.
	if s.MinLength > 0 {
		out["minLength"] = s.MinLength
	}
	if s.MaxLength != nil {
		out["maxLength"] = *s.MaxLength
	}
	setString(out, "pattern", s.Pattern)
	setString(out, "contentMediaType", s.ContentMediaType)
	setString(out, "contentEncoding", s.ContentEncoding)
	if s.ContentSchema != nil {
		out["contentSchema"] = c.convert(s.ContentSchema)
	}

	// Arrays.
	if s.Items != nil {
		out["items"] = c.convert(s.Items)
	}
	if len(s.PrefixItems) > 0 {
		out["prefixItems"] = c.convertList(s.PrefixItems)
	}
	if s.MinItems > 0 {
		out["minItems"] = s.MinItems
	}
	if s.MaxItems != nil {
		out["maxItems"] = *s.MaxItems
	}
	if s.UniqueItems {
		out["uniqueItems"] = true
	}
	if s.Contains != nil {
		out["contains"] = c.convert(s.Contains)
	}
	if s.MinContains != nil {
		out["minContains"] = *s.MinContains
	}
	if s.MaxContains != nil {
		out["maxContains"] = *s.MaxContains
	}
	if v, ok := c.boolSchema(s.UnevaluatedItems); ok {
		out["unevaluatedItems"] = v
	}

	// Objects.
	if len(s.Properties) > 0 {
		props := map[string]any{}
		dropped := map[string]bool{}
		for _, name := range sortedKeys(s.Properties) {
			p := s.Properties[name]
			if c.hidden(p) {
				dropped[name] = true
				continue
			}
			props[name] = c.convert(p)
		}
		out["properties"] = props
		if required := withoutNames(s.Required, dropped); len(required) > 0 {
			out["required"] = required
		}
	} else if len(s.Required) > 0 {
		out["required"] = slices.Clone(s.Required)
	}
	if s.MinProps > 0 {
		out["minProperties"] = s.MinProps
	}
	if s.MaxProps != nil {
		out["maxProperties"] = *s.MaxProps
	}
	if v, ok := c.boolSchema(s.AdditionalProperties); ok {
		out["additionalProperties"] = v
	}
	if len(s.PatternProperties) > 0 {
		out["patternProperties"] = c.convertMap(s.PatternProperties)
	}
	if s.PropertyNames != nil {
		out["propertyNames"] = c.convert(s.PropertyNames)
	}
	if len(s.DependentRequired) > 0 {
		out["dependentRequired"] = s.DependentRequired
	}
	if len(s.DependentSchemas) > 0 {
		out["dependentSchemas"] = c.convertMap(s.DependentSchemas)
	}
	if v, ok := c.boolSchema(s.UnevaluatedProperties); ok {
		out["unevaluatedProperties"] = v
	}

	// Composition.
	if len(s.AllOf) > 0 {
		out["allOf"] = c.convertList(s.AllOf)
	}
	if len(s.AnyOf) > 0 {
		out["anyOf"] = c.convertList(s.AnyOf)
	}
	if len(s.OneOf) > 0 {
		out["oneOf"] = c.convertList(s.OneOf)
	}
	if s.Not != nil {
		out["not"] = c.convert(s.Not)
	}
	if s.If != nil {
		out["if"] = c.convert(s.If)
	}
	if s.Then != nil {
		out["then"] = c.convert(s.Then)
	}
	if s.Else != nil {
		out["else"] = c.convert(s.Else)
	}
	return out
}

// hidden reports whether a property is left out on this side of the call.
func (c *converter) hidden(p *openapi3.SchemaRef) bool {
	if p == nil || p.Value == nil {
		return false
	}
	if c.mode == modeInput {
		return p.Value.ReadOnly
	}
	return p.Value.WriteOnly
}

func (c *converter) convertList(refs openapi3.SchemaRefs) []any {
	out := make([]any, 0, len(refs))
	for _, r := range refs {
		out = append(out, c.convert(r))
	}
	return out
}

func (c *converter) convertMap(m openapi3.Schemas) map[string]any {
	out := make(map[string]any, len(m))
	for _, k := range sortedKeys(m) {
		out[k] = c.convert(m[k])
	}
	return out
}

func (c *converter) boolSchema(bs openapi3.BoolSchema) (any, bool) {
	switch {
	case bs.Schema != nil:
		return c.convert(bs.Schema), true
	case bs.Has != nil:
		return *bs.Has, true
	}
	return nil, false
}

func setString(out map[string]any, key, value string) {
	if value != "" {
		out[key] = value
	}
}

func withoutNames(names []string, drop map[string]bool) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !drop[n] {
			out = append(out, n)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isObjectSchema reports whether a schema plainly describes a JSON object.
func isObjectSchema(s *openapi3.Schema) bool {
	if s == nil || s.Always != nil {
		return false
	}
	if s.Type.Is("object") {
		return true
	}
	return s.Type == nil && (len(s.Properties) > 0 || s.AdditionalProperties.Schema != nil || s.AdditionalProperties.Has != nil) &&
		len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) == 0 && s.Not == nil
}

// sanitizeKey keeps [A-Za-z0-9_.-] of s, replacing anything else with '_',
// and cuts it to max bytes.
func sanitizeKey(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= max {
			break
		}
	}
	return b.String()
}
