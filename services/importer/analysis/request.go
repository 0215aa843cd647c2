package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// maxPropertyName bounds tool input property names, which some model APIs
// limit to 64 characters of [A-Za-z0-9_.-].
const maxPropertyName = 64

// builtRequest is the request mapping of one operation and its tool inputs.
type builtRequest struct {
	request     Request
	inputSchema json.RawMessage
	excluded    []ExcludedParam
	inferred    []Requirement
	unsupported string
	diagnostics []Diagnostic
	overflow    bool
}

// requestBuilder maps one operation's parameters and body to tool inputs.
type requestBuilder struct {
	a       *analyzer
	op      *openapi3.Operation
	item    *openapi3.PathItem
	path    string
	pointer string
	auth    [][]Requirement
}

// paramField is a parameter kept as a tool input, before it is named.
type paramField struct {
	f Field
	p *openapi3.Parameter
}

type paramAt struct {
	p       *openapi3.Parameter
	pointer string
}

func (b *requestBuilder) warn(r *builtRequest, pointer, format string, args ...any) {
	r.diagnostics = append(r.diagnostics, Diagnostic{Level: LevelWarning, Message: trimMessage(fmt.Sprintf(format, args...)), Pointer: pointer})
}

// params merges path-item and operation parameters (the operation's win) and
// orders them path, query, header, cookie, keeping declaration order within
// each location.
func (b *requestBuilder) params(r *builtRequest) []paramAt {
	var out []paramAt
	index := map[string]int{}
	add := func(list openapi3.Parameters, pointer string) {
		for i, ref := range list {
			at := pointer + "/" + strconv.Itoa(i)
			if ref == nil || ref.Value == nil {
				b.warn(r, at, "parameter is empty")
				continue
			}
			p := ref.Value
			key := strings.ToLower(p.In) + ":" + p.Name
			if strings.EqualFold(p.In, "header") {
				key = "header:" + strings.ToLower(p.Name)
			}
			if j, ok := index[key]; ok {
				out[j] = paramAt{p: p, pointer: at}
				continue
			}
			index[key] = len(out)
			out = append(out, paramAt{p: p, pointer: at})
		}
	}
	add(b.item.Parameters, "/paths/"+escapePointer(b.path)+"/parameters")
	add(b.op.Parameters, b.pointer+"/parameters")
	rank := map[Location]int{LocationPath: 0, LocationQuery: 1, LocationHeader: 2, LocationCookie: 3}
	sort.SliceStable(out, func(i, j int) bool {
		ri, ok := rank[Location(strings.ToLower(out[i].p.In))]
		if !ok {
			ri = 4
		}
		rj, ok := rank[Location(strings.ToLower(out[j].p.In))]
		if !ok {
			rj = 4
		}
		return ri < rj
	})
	return out
}

var pathVariable = regexp.MustCompile(`\{([^{}/]+)\}`)

// templateVars lists a path template's variables in order, once each.
func templateVars(path string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range pathVariable.FindAllStringSubmatch(path, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

// propertyNames hands out unique tool input property names.
type propertyNames map[string]bool

// take names a parameter's property: its sanitized wire name, else prefixed
// with its location, else numbered.
func (n propertyNames) take(wire string, in Location) string {
	base := sanitizeKey(wire, maxPropertyName)
	if base == "" {
		base = "param"
	}
	candidates := []string{base, sanitizeKey(string(in)+"_"+base, maxPropertyName)}
	for _, c := range candidates {
		if !n[c] {
			n[c] = true
			return c
		}
	}
	for i := 2; ; i++ {
		c := withSuffix(candidates[1], strconv.Itoa(i), maxPropertyName)
		if !n[c] {
			n[c] = true
			return c
		}
	}
}

func (b *requestBuilder) build(allDefs bool) builtRequest {
	r := builtRequest{
		request:  Request{Body: BodyNone, Fields: []Field{}},
		excluded: []ExcludedParam{},
		inferred: []Requirement{},
	}
	conv := newConverter(modeInput, allDefs)
	props := map[string]any{}
	var required []string
	names := propertyNames{}
	addField := func(f Field, schema any) {
		r.request.Fields = append(r.request.Fields, f)
		props[f.Property] = schema
		if f.Required {
			required = append(required, f.Property)
		}
	}

	vars := templateVars(b.path)
	inTemplate := map[string]bool{}
	for _, v := range vars {
		inTemplate[v] = true
	}
	declared := map[string]bool{}
	var fields []paramField
	for _, pa := range b.params(&r) {
		p := pa.p
		in := Location(strings.ToLower(p.In))
		switch in {
		case LocationPath:
			if !inTemplate[p.Name] {
				b.warn(&r, pa.pointer, "path parameter %q does not appear in the path template", trimTo(p.Name, 64))
				r.excluded = append(r.excluded, ExcludedParam{Name: p.Name, In: in, Reason: ExcludedUndeclaredPathParam})
				continue
			}
			declared[p.Name] = true
		case LocationQuery, LocationHeader, LocationCookie:
			if in == LocationHeader && isGatewayHeader(p.Name) {
				r.excluded = append(r.excluded, ExcludedParam{Name: p.Name, In: in, Reason: ExcludedGatewayHeader})
				continue
			}
			if b.credential(&r, p.Name, in) {
				continue
			}
		default:
			b.warn(&r, pa.pointer, "parameter %q has an unsupported location", trimTo(p.Name, 64))
			continue
		}
		f := Field{Name: p.Name, In: in, Required: p.Required || in == LocationPath}
		if len(p.Content) > 0 && p.Schema == nil {
			f.ContentType, _ = pickParamContent(p.Content)
		} else {
			f.Style, f.Explode = serialization(p, in)
			f.AllowReserved = p.AllowReserved && in == LocationQuery
		}
		fields = append(fields, paramField{f: f, p: p})
	}

	// Path variables first, in template order, then the other parameters.
	for _, v := range vars {
		found := false
		for _, fp := range fields {
			if fp.f.In == LocationPath && fp.f.Name == v {
				fp.f.Property = names.take(fp.f.Name, fp.f.In)
				addField(fp.f, b.paramSchema(conv, fp.p))
				found = true
				break
			}
		}
		if !found && !declared[v] {
			b.warn(&r, b.pointer, "path template variable %q is not declared as a parameter; it is taken as a required string", trimTo(v, 64))
			f := Field{Property: names.take(v, LocationPath), In: LocationPath, Name: v, Required: true, Style: "simple", Explode: boolPtr(false)}
			addField(f, map[string]any{"type": "string"})
		}
	}
	for _, fp := range fields {
		if fp.f.In == LocationPath {
			continue
		}
		fp.f.Property = names.take(fp.f.Name, fp.f.In)
		addField(fp.f, b.paramSchema(conv, fp.p))
	}

	b.body(&r, conv, names, addField)

	root := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		root["required"] = required
	}
	if defs := conv.finish(); defs != nil {
		root["$defs"] = defs
	}
	r.overflow = conv.overflow
	raw, err := marshalSchema(root)
	if err != nil {
		b.warn(&r, b.pointer, "input schema could not be encoded")
		raw = json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)
		if r.unsupported == "" {
			r.unsupported = "the input schema could not be encoded"
		}
	}
	r.inputSchema = raw
	return r
}

// credential excludes a parameter that carries a credential: of a scheme in
// the effective requirement, of another declared scheme (inferred), or one
// that merely looks like a credential (inferred). It reports whether it did.
func (b *requestBuilder) credential(r *builtRequest, name string, in Location) bool {
	for _, alt := range b.auth {
		for _, req := range alt {
			if s := b.a.schemes[req.Scheme]; s != nil && coversParam(s, name, in) {
				r.excluded = append(r.excluded, ExcludedParam{Name: name, In: in, Reason: ExcludedSchemeCredential, Scheme: s.Name})
				return true
			}
		}
	}
	for _, s := range b.a.schemeList {
		if coversParam(s, name, in) {
			r.excluded = append(r.excluded, ExcludedParam{Name: name, In: in, Reason: ExcludedInferredCredential, Scheme: s.Name})
			r.addInferred(Requirement{Scheme: s.Name, Kind: s.Kind, In: s.In, Param: s.Param})
			return true
		}
	}
	if kind, ok := classifyCredential(name, in); ok {
		r.excluded = append(r.excluded, ExcludedParam{Name: name, In: in, Reason: ExcludedInferredCredential})
		req := Requirement{Kind: kind, In: in, Param: name}
		if kind == KindAWSSigV4 {
			// One signature covers every signing parameter.
			req.Param = ""
		}
		r.addInferred(req)
		return true
	}
	return false
}

// addInferred records an inferred requirement once.
func (r *builtRequest) addInferred(req Requirement) {
	req.Inferred = true
	req.CallerVisible = false
	if req.Scopes == nil {
		req.Scopes = []string{}
	}
	for _, have := range r.inferred {
		if have.Scheme == req.Scheme && have.Kind == req.Kind && have.In == req.In && strings.EqualFold(have.Param, req.Param) {
			return
		}
	}
	r.inferred = append(r.inferred, req)
}

// serialization returns a parameter's effective style and explode.
func serialization(p *openapi3.Parameter, in Location) (string, *bool) {
	style := p.Style
	if style == "" {
		switch in {
		case LocationQuery, LocationCookie:
			style = "form"
		default:
			style = "simple"
		}
	}
	explode := style == "form"
	if p.Explode != nil {
		explode = *p.Explode
	}
	return style, &explode
}

func boolPtr(v bool) *bool { return &v }

// paramSchema converts a parameter's schema, with the parameter's own
// description, deprecation and example.
func (b *requestBuilder) paramSchema(conv *converter, p *openapi3.Parameter) any {
	ref := p.Schema
	if ref == nil && len(p.Content) > 0 {
		_, mt := pickParamContent(p.Content)
		if mt != nil {
			ref = mt.Schema
		}
	}
	v := conv.convert(ref)
	m, ok := v.(map[string]any)
	if !ok {
		if v != true {
			return v
		}
		m = map[string]any{}
	}
	if d := strings.TrimSpace(p.Description); d != "" {
		m["description"] = trimTo(d, b.a.opts.DescriptionBudget)
	}
	if p.Deprecated {
		m["deprecated"] = true
	}
	if p.Example != nil {
		if _, has := m["examples"]; !has {
			m["examples"] = []any{jsonValue(p.Example)}
		}
	}
	return m
}

// pickParamContent picks the media type of a parameter declared with content.
func pickParamContent(content openapi3.Content) (string, *openapi3.MediaType) {
	keys := sortedKeys(content)
	for _, k := range keys {
		if mediaKind(k) == contentJSON {
			return k, content[k]
		}
	}
	if len(keys) == 0 {
		return "", nil
	}
	return keys[0], content[keys[0]]
}

type contentKind int

const (
	contentUnsupported contentKind = iota
	contentText
	contentMultipart
	contentForm
	contentJSON
)

// mediaKind classifies a media type by how the gateway can build it.
func mediaKind(mediaType string) contentKind {
	mt, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(mediaType)), ";")
	mt = strings.TrimSpace(mt)
	switch {
	case mt == "application/json", strings.HasSuffix(mt, "+json"), strings.HasSuffix(mt, "/json"),
		mt == "*/*", mt == "application/*":
		return contentJSON
	case mt == "application/x-www-form-urlencoded":
		return contentForm
	case mt == "multipart/form-data":
		return contentMultipart
	case strings.HasPrefix(mt, "text/"):
		return contentText
	}
	return contentUnsupported
}

// pickBodyContent picks the request body media type the gateway builds best:
// JSON, then form, then multipart, then text.
func pickBodyContent(content openapi3.Content) (string, *openapi3.MediaType, contentKind) {
	bestKey, bestKind := "", contentUnsupported
	for _, k := range sortedKeys(content) {
		kind := mediaKind(k)
		if bestKey == "" || kind > bestKind || (kind == bestKind && kind == contentJSON && strings.EqualFold(k, "application/json")) {
			bestKey, bestKind = k, kind
		}
	}
	return bestKey, content[bestKey], bestKind
}

// body maps the request body: its properties as tool inputs when it is a
// plain object whose names do not collide with parameters, else the whole
// body as one input.
func (b *requestBuilder) body(r *builtRequest, conv *converter, names propertyNames, addField func(Field, any)) {
	ref := b.op.RequestBody
	if ref == nil || ref.Value == nil {
		return
	}
	rb := ref.Value
	pointer := b.pointer + "/requestBody"
	if len(rb.Content) == 0 {
		b.warn(r, pointer, "request body declares no media type")
		return
	}
	ct, mt, kind := pickBodyContent(rb.Content)
	r.request.ContentType = ct
	if kind == contentUnsupported {
		r.unsupported = fmt.Sprintf("request body media type %q is not supported", trimTo(ct, 100))
		return
	}
	var schemaRef *openapi3.SchemaRef
	if mt != nil {
		schemaRef = mt.Schema
	}
	var s *openapi3.Schema
	if schemaRef != nil {
		s = schemaRef.Value
	}

	// Credentials among the body's top-level fields.
	credentials := map[string]bool{}
	if kind != contentText && s != nil {
		for _, name := range sortedKeys(s.Properties) {
			if kindOf, ok := classifyCredential(name, LocationBody); ok {
				credentials[name] = true
				r.excluded = append(r.excluded, ExcludedParam{Name: name, In: LocationBody, Reason: ExcludedInferredCredential})
				r.addInferred(Requirement{Kind: kindOf, In: LocationBody, Param: name})
			}
		}
	}

	if kind != contentText && spreadable(s) {
		var bodyProps []string
		seen := map[string]bool{}
		collides := false
		for _, name := range sortedKeys(s.Properties) {
			if credentials[name] || conv.hidden(s.Properties[name]) {
				continue
			}
			prop := sanitizeKey(name, maxPropertyName)
			if prop == "" || names[prop] || seen[prop] {
				collides = true
				break
			}
			seen[prop] = true
			bodyProps = append(bodyProps, name)
		}
		if !collides {
			r.request.Body = BodyProperties
			requiredInBody := map[string]bool{}
			if rb.Required {
				for _, n := range s.Required {
					requiredInBody[n] = true
				}
			}
			conv.within(s, func() {
				for _, name := range bodyProps {
					prop := sanitizeKey(name, maxPropertyName)
					names[prop] = true
					addField(Field{Property: prop, In: LocationBody, Name: name, Required: requiredInBody[name]}, conv.convert(s.Properties[name]))
				}
			})
			return
		}
	}

	r.request.Body = BodyWhole
	prop := "body"
	for i := 1; names[prop]; i++ {
		prop = "request_body"
		if i > 1 {
			prop += "_" + strconv.Itoa(i)
		}
	}
	names[prop] = true
	var schema any
	switch {
	case s != nil:
		// The top level is inlined even when references go to $defs, so that
		// credential fields can be taken out of it.
		conv.within(s, func() { schema = conv.convertValue(s) })
	case schemaRef != nil:
		schema = conv.convert(schemaRef)
	case kind == contentText:
		schema = map[string]any{"type": "string"}
	default:
		schema = map[string]any{}
	}
	if m, ok := schema.(map[string]any); ok {
		if ps, ok := m["properties"].(map[string]any); ok && len(credentials) > 0 {
			for name := range credentials {
				delete(ps, name)
			}
			if req, ok := m["required"].([]string); ok {
				m["required"] = withoutNames(req, credentials)
			}
		}
		if d := strings.TrimSpace(rb.Description); d != "" {
			if _, has := m["description"]; !has {
				m["description"] = trimTo(d, b.a.opts.DescriptionBudget)
			}
		}
	}
	addField(Field{Property: prop, In: LocationBody, WholeBody: true, Required: rb.Required}, schema)
}

// spreadable reports whether a body schema is a plain object whose
// properties can become tool inputs one by one.
func spreadable(s *openapi3.Schema) bool {
	if s == nil || s.Always != nil || len(s.Properties) == 0 {
		return false
	}
	if len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.Not != nil || s.If != nil {
		return false
	}
	return s.Type == nil || s.Type.Includes("object")
}

// output builds the tool's output schema from the first 2xx response with a
// JSON body. A body that is not an object is wrapped under "result", as MCP
// structured content must be an object.
func (a *analyzer) output(op *openapi3.Operation) (json.RawMessage, Response) {
	if op.Responses == nil {
		return nil, Response{}
	}
	for _, code := range successCodes(op.Responses) {
		resp := op.Responses.Value(code)
		if resp == nil || resp.Value == nil {
			continue
		}
		var ct string
		var mt *openapi3.MediaType
		for _, k := range sortedKeys(resp.Value.Content) {
			if mediaKind(k) == contentJSON && resp.Value.Content[k] != nil {
				if mt == nil || strings.EqualFold(k, "application/json") {
					ct, mt = k, resp.Value.Content[k]
				}
			}
		}
		if mt == nil || mt.Schema == nil || mt.Schema.Value == nil {
			continue
		}
		root, wrap, overflow := buildOutput(mt.Schema, false)
		if overflow {
			root, wrap, _ = buildOutput(mt.Schema, true)
		}
		raw, err := marshalSchema(root)
		if err != nil {
			return nil, Response{Status: code, ContentType: ct}
		}
		return raw, Response{Status: code, ContentType: ct, WrapProperty: wrap}
	}
	return nil, Response{}
}

func buildOutput(ref *openapi3.SchemaRef, allDefs bool) (map[string]any, string, bool) {
	conv := newConverter(modeOutput, allDefs)
	v := conv.convert(ref)
	var root map[string]any
	wrap := ""
	if m, ok := v.(map[string]any); ok && isObjectSchema(ref.Value) {
		root = m
		root["type"] = "object"
	} else {
		wrap = "result"
		root = map[string]any{"type": "object", "properties": map[string]any{wrap: v}, "required": []string{wrap}}
	}
	if defs := conv.finish(); defs != nil {
		root["$defs"] = defs
	}
	return root, wrap, conv.overflow
}

// successCodes lists a response map's 2xx codes: exact codes ascending, then
// the 2XX range.
func successCodes(responses *openapi3.Responses) []string {
	var exact, ranges []string
	for _, code := range responses.Keys() {
		switch {
		case len(code) == 3 && code[0] == '2' && isDigits(code[1:]):
			exact = append(exact, code)
		case strings.EqualFold(code, "2XX"):
			ranges = append(ranges, code)
		}
	}
	sort.Strings(exact)
	sort.Strings(ranges)
	return append(exact, ranges...)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// marshalSchema encodes a schema deterministically (sorted keys, no HTML
// escaping), replacing values JSON cannot carry.
func marshalSchema(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(jsonValue(v)); err != nil {
		return nil, fmt.Errorf("encode schema: %w", err)
	}
	return json.RawMessage(bytes.TrimRight(buf.Bytes(), "\n")), nil
}

// jsonValue rewrites values decoded from YAML into values JSON can encode:
// maps with non-string keys get string keys, non-finite numbers become null.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil
		}
		return x
	case float32:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil
		}
		return x
	}
	return v
}
