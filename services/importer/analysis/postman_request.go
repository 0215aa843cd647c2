package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const (
	// exampleNodeBudget bounds the schema nodes inferred from one example.
	exampleNodeBudget = 5000
	// exampleDepthBudget bounds how deep an inferred schema nests.
	exampleDepthBudget = 64
)

// prunedMethods are the methods whose body Postman drops unless
// protocolProfileBehavior.disableBodyPruning is set.
var prunedMethods = map[string]bool{"GET": true, "HEAD": true, "COPY": true, "PURGE": true, "UNLOCK": true}

// rawLanguages maps the language of a raw body to the media type Postman
// sends when no Content-Type header is set.
var rawLanguages = map[string]string{
	"json":       "application/json",
	"xml":        "application/xml",
	"html":       "text/html",
	"javascript": "application/javascript",
	"text":       "text/plain",
}

// params reads a list of {key, value, disabled, description, type} objects:
// query parameters, headers, form fields. Only names, descriptions and
// whether a form field is a file are kept.
func (p *postmanAnalyzer) params(v pmValue, what string) ([]pmParam, error) {
	list, ok := v.list()
	if !ok {
		return nil, invalidAt(p.src, v.ptr, "%ss must be an array", what)
	}
	out := make([]pmParam, 0, len(list))
	for i := range list {
		e := v.index(i)
		if e.absent() {
			continue
		}
		if _, ok := e.object(); !ok {
			return nil, invalidAt(p.src, e.ptr, "a %s must be an object", what)
		}
		key, _ := e.at("key").v.(string)
		if key = strings.TrimSpace(key); key == "" {
			continue
		}
		typ, _ := e.at("type").v.(string)
		out = append(out, pmParam{
			name:        key,
			description: strings.TrimSpace(e.at("description").text()),
			file:        strings.EqualFold(typ, "file"),
		})
	}
	return out, nil
}

// headers reads a request's headers (an array, or a string of "Key: value"
// lines) and the media type its enabled Content-Type header names, if any.
func (p *postmanAnalyzer) headers(v pmValue) ([]pmParam, string, error) {
	switch x := v.v.(type) {
	case nil:
		return nil, "", nil
	case string:
		var out []pmParam
		contentType := ""
		for line := range strings.SplitSeq(x, "\n") {
			line = strings.TrimSpace(line)
			disabled := strings.HasPrefix(line, "//")
			key, value, found := strings.Cut(strings.TrimPrefix(line, "//"), ":")
			if key = strings.TrimSpace(key); !found || key == "" {
				continue
			}
			if strings.EqualFold(key, "Content-Type") && !disabled {
				contentType = mediaTypeValue(value)
			}
			out = append(out, pmParam{name: key})
		}
		return out, contentType, nil
	}
	list, err := p.params(v, "header")
	if err != nil {
		return nil, "", err
	}
	contentType := ""
	entries, _ := v.list()
	for i := range entries {
		e := v.index(i)
		key, _ := e.at("key").v.(string)
		value, _ := e.at("value").v.(string)
		if strings.EqualFold(strings.TrimSpace(key), "Content-Type") && enabled(e) {
			contentType = mediaTypeValue(value)
		}
	}
	return list, contentType, nil
}

// enabled reports whether a key/value entry is sent: neither `disabled` nor
// an old-style `enabled: false`.
func enabled(e pmValue) bool {
	if e.at("disabled").truthy() {
		return false
	}
	if b, ok := e.at("enabled").v.(bool); ok && !b {
		return false
	}
	return true
}

// mediaTypeValue keeps a Content-Type value that names a media type, not a
// variable.
func mediaTypeValue(v string) string {
	v = strings.TrimSpace(v)
	if v == "" || strings.Contains(v, "{{") || len(v) > 200 {
		return ""
	}
	return v
}

// pmBuilder maps one Postman request to tool inputs.
type pmBuilder struct {
	p                *postmanAnalyzer
	auth             [][]Requirement
	method           string
	path             string
	pathDescriptions map[string]string
	query            []pmParam
	headers          []pmParam
	contentType      string
	body             pmValue
	keepBody         bool

	props    map[string]any
	required []string
	names    propertyNames
}

func (b *pmBuilder) addField(r *builtRequest, f Field, schema any) {
	r.request.Fields = append(r.request.Fields, f)
	b.props[f.Property] = schema
	if f.Required {
		b.required = append(b.required, f.Property)
	}
}

// describe returns a string schema with a description.
func (b *pmBuilder) describe(schema map[string]any, description string) map[string]any {
	if description != "" {
		schema["description"] = trimTo(description, b.p.opts.DescriptionBudget)
	}
	return schema
}

func (b *pmBuilder) build() (builtRequest, error) {
	r := builtRequest{
		request:  Request{Body: BodyNone, Fields: []Field{}},
		excluded: []ExcludedParam{},
		inferred: []Requirement{},
	}
	b.props, b.names = map[string]any{}, propertyNames{}

	for _, v := range templateVars(b.path) {
		f := Field{Property: b.names.take(v, LocationPath), In: LocationPath, Name: v, Required: true, Style: "simple", Explode: boolPtr(false)}
		b.addField(&r, f, b.describe(map[string]any{"type": "string"}, b.pathDescriptions[v]))
	}
	seen := map[string]bool{}
	for _, q := range b.query {
		if seen["q:"+q.name] {
			continue
		}
		seen["q:"+q.name] = true
		if b.credential(&r, q.name, LocationQuery) {
			continue
		}
		f := Field{Property: b.names.take(q.name, LocationQuery), In: LocationQuery, Name: q.name, Style: "form", Explode: boolPtr(true)}
		b.addField(&r, f, b.describe(map[string]any{"type": "string"}, q.description))
	}
	for _, h := range b.headers {
		key := "h:" + strings.ToLower(h.name)
		if seen[key] {
			continue
		}
		seen[key] = true
		if isGatewayHeader(h.name) {
			r.excluded = append(r.excluded, ExcludedParam{Name: h.name, In: LocationHeader, Reason: ExcludedGatewayHeader})
			continue
		}
		if b.credential(&r, h.name, LocationHeader) {
			continue
		}
		f := Field{Property: b.names.take(h.name, LocationHeader), In: LocationHeader, Name: h.name, Style: "simple", Explode: boolPtr(false)}
		b.addField(&r, f, b.describe(map[string]any{"type": "string"}, h.description))
	}
	if err := b.bodyFields(&r); err != nil {
		return builtRequest{}, err
	}

	root := map[string]any{"type": "object", "properties": b.props, "additionalProperties": false}
	if len(b.required) > 0 {
		root["required"] = b.required
	}
	raw, err := marshalSchema(root)
	if err != nil {
		raw = json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`)
		if r.unsupported == "" {
			r.unsupported = "the input schema could not be encoded"
		}
	}
	r.inputSchema = raw
	return r, nil
}

// credential excludes a parameter that carries a credential: of the scheme
// of the effective auth, or one that merely looks like a credential
// (inferred). It reports whether it did.
func (b *pmBuilder) credential(r *builtRequest, name string, in Location) bool {
	for _, alt := range b.auth {
		for _, req := range alt {
			if s := b.p.schemeByName[req.Scheme]; s != nil && postmanCovers(s, name, in) {
				r.excluded = append(r.excluded, ExcludedParam{Name: name, In: in, Reason: ExcludedSchemeCredential, Scheme: s.Name})
				return true
			}
		}
	}
	if kind, ok := classifyCredential(name, in); ok {
		r.excluded = append(r.excluded, ExcludedParam{Name: name, In: in, Reason: ExcludedInferredCredential})
		req := Requirement{Kind: kind, In: in, Param: name}
		if kind == KindAWSSigV4 {
			req.Param = ""
		}
		r.addInferred(req)
		return true
	}
	return false
}

// bodyFields maps the request body: a raw JSON body through a schema
// inferred from the example, form fields one by one, text as one string;
// other modes make the operation unsupported.
func (b *pmBuilder) bodyFields(r *builtRequest) error {
	bv := b.body
	if bv.absent() {
		return nil
	}
	if _, ok := bv.object(); !ok {
		return invalidAt(b.p.src, bv.ptr, "a request body must be an object")
	}
	if bv.at("disabled").truthy() {
		return nil
	}
	mode := ""
	if mv := bv.at("mode"); !mv.absent() {
		s, ok := mv.v.(string)
		if !ok {
			return invalidAt(b.p.src, mv.ptr, "a body mode must be a string")
		}
		mode = strings.TrimSpace(s)
	}
	if mode == "" {
		return nil
	}
	if prunedMethods[b.method] && !b.keepBody {
		// Postman sends no body with these methods; neither does the tool.
		return nil
	}
	switch mode {
	case "raw":
		return b.rawBody(r, bv)
	case "urlencoded", "formdata":
		list, err := b.p.params(bv.at(mode), "form field")
		if err != nil {
			return err
		}
		if len(list) == 0 {
			return nil
		}
		r.request.ContentType = "application/x-www-form-urlencoded"
		if mode == "formdata" {
			r.request.ContentType = "multipart/form-data"
		}
		b.formBody(r, list)
	case "file":
		r.request.ContentType = b.contentType
		r.unsupported = `request body mode "file" (the bytes of a file) is not supported`
	case "graphql":
		r.request.ContentType = "application/json"
		r.unsupported = `request body mode "graphql" is not supported`
	default:
		r.unsupported = fmt.Sprintf("request body mode %q is not supported", sanitizeKey(trimTo(mode, 32), 32))
	}
	return nil
}

func (b *pmBuilder) rawBody(r *builtRequest, bv pmValue) error {
	rv := bv.at("raw")
	if rv.absent() {
		return nil
	}
	raw, ok := rv.v.(string)
	if !ok {
		return invalidAt(b.p.src, rv.ptr, "a raw body must be a string")
	}
	if strings.TrimSpace(raw) == "" {
		return nil
	}
	ct := b.contentType
	if ct == "" {
		language, _ := bv.at("options").at("raw").at("language").v.(string)
		ct = rawLanguages[strings.ToLower(strings.TrimSpace(language))]
		if ct == "" {
			ct = "text/plain"
		}
	}
	r.request.ContentType = ct
	switch mediaKind(ct) {
	case contentJSON:
		example, ok := decodeExample(raw)
		if !ok {
			r.diagnostics = append(r.diagnostics, Diagnostic{Level: LevelWarning, Pointer: rv.ptr,
				Message: "the raw JSON body example does not parse; the body is taken as any JSON value"})
			b.placeBody(r, map[string]any{})
			return nil
		}
		inf := &inferer{}
		schema := inf.schema(example, 0)
		if inf.truncated {
			r.diagnostics = append(r.diagnostics, Diagnostic{Level: LevelWarning, Pointer: rv.ptr,
				Message: "the raw JSON body example is too large or too deep; its schema is cut short"})
		}
		b.placeBody(r, schema)
	case contentForm:
		b.formBody(r, parseQuery(raw))
	case contentText:
		b.wholeBody(r, map[string]any{"type": "string"})
	default:
		r.unsupported = fmt.Sprintf("request body media type %q is not supported", trimTo(ct, 100))
	}
	return nil
}

// formBody maps form fields, files as binary strings.
func (b *pmBuilder) formBody(r *builtRequest, list []pmParam) {
	props := map[string]any{}
	for _, f := range list {
		if _, dup := props[f.name]; dup {
			continue
		}
		s := map[string]any{"type": "string"}
		if f.file {
			s["format"] = "binary"
		}
		props[f.name] = b.describe(s, f.description)
	}
	b.placeBody(r, map[string]any{"type": "object", "properties": props})
}

// placeBody maps a body schema: credential properties out, then the other
// properties as tool inputs when none collides with a parameter, else the
// whole body as one input.
func (b *pmBuilder) placeBody(r *builtRequest, schema map[string]any) {
	props, isObject := schema["properties"].(map[string]any)
	if !isObject || schema["type"] != "object" || len(props) == 0 {
		b.wholeBody(r, schema)
		return
	}
	credentials := map[string]bool{}
	for _, name := range sortedKeys(props) {
		if b.credential(r, name, LocationBody) {
			credentials[name] = true
		}
	}
	var bodyProps []string
	seen := map[string]bool{}
	collides := false
	for _, name := range sortedKeys(props) {
		if credentials[name] {
			continue
		}
		prop := sanitizeKey(name, maxPropertyName)
		if prop == "" || b.names[prop] || seen[prop] {
			collides = true
			break
		}
		seen[prop] = true
		bodyProps = append(bodyProps, name)
	}
	if !collides {
		r.request.Body = BodyProperties
		for _, name := range bodyProps {
			prop := sanitizeKey(name, maxPropertyName)
			b.names[prop] = true
			b.addField(r, Field{Property: prop, In: LocationBody, Name: name}, props[name])
		}
		return
	}
	for name := range credentials {
		delete(props, name)
	}
	b.wholeBody(r, schema)
}

// wholeBody maps the entire body to one input.
func (b *pmBuilder) wholeBody(r *builtRequest, schema map[string]any) {
	r.request.Body = BodyWhole
	prop := "body"
	for i := 1; b.names[prop]; i++ {
		prop = "request_body"
		if i > 1 {
			prop += "_" + strconv.Itoa(i)
		}
	}
	b.names[prop] = true
	b.addField(r, Field{Property: prop, In: LocationBody, WholeBody: true, Required: true}, schema)
}

// decodeExample decodes a JSON example. Unquoted {{variables}}, which Postman
// substitutes before sending, read as null.
func decodeExample(raw string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(nullVariables(raw)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false
	}
	return v, true
}

// nullVariables replaces every {{variable}} outside a JSON string with null.
func nullVariables(raw string) string {
	if !strings.Contains(raw, "{{") {
		return raw
	}
	var out strings.Builder
	inString, escaped := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			out.WriteByte(c)
			continue
		}
		if c == '"' {
			inString = true
		}
		if c == '{' && strings.HasPrefix(raw[i:], "{{") {
			if end := strings.Index(raw[i+2:], "}}"); end >= 0 {
				out.WriteString("null")
				i += end + 3
				continue
			}
		}
		out.WriteByte(c)
	}
	return out.String()
}

// inferer infers a JSON Schema from an example value: types and property
// names only, never a value.
type inferer struct {
	nodes     int
	truncated bool
}

func (in *inferer) schema(v any, depth int) map[string]any {
	in.nodes++
	if in.nodes > exampleNodeBudget || depth > exampleDepthBudget {
		in.truncated = true
		return map[string]any{}
	}
	switch x := v.(type) {
	case bool:
		return map[string]any{"type": "boolean"}
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return map[string]any{"type": "number"}
		}
		return map[string]any{"type": "integer"}
	case string:
		return map[string]any{"type": "string"}
	case []any:
		s := map[string]any{"type": "array"}
		for _, e := range x {
			if e != nil {
				s["items"] = in.schema(e, depth+1)
				break
			}
		}
		return s
	case map[string]any:
		props := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			props[k] = in.schema(x[k], depth+1)
		}
		return map[string]any{"type": "object", "properties": props}
	}
	return map[string]any{}
}

// output infers the tool's output schema from the first saved 2xx response
// whose body is JSON. A body that is not an object is wrapped under
// "result".
func (p *postmanAnalyzer) output(v pmValue) (json.RawMessage, Response) {
	list, ok := v.list()
	if !ok {
		return nil, Response{}
	}
	for i := range list {
		rv := v.index(i)
		codeText, _ := rv.at("code").scalar()
		code, err := strconv.Atoi(codeText)
		if err != nil || code < 200 || code > 299 {
			continue
		}
		body, _ := rv.at("body").v.(string)
		if strings.TrimSpace(body) == "" {
			continue
		}
		ct := ""
		if _, ok := rv.at("header").list(); ok {
			_, ct, _ = p.headers(rv.at("header"))
		}
		if ct != "" && mediaKind(ct) != contentJSON {
			continue
		}
		if ct == "" {
			if lang, _ := rv.at("_postman_previewlanguage").v.(string); lang != "" && !strings.EqualFold(lang, "json") {
				continue
			}
			ct = "application/json"
		}
		example, ok := decodeExample(body)
		if !ok {
			continue
		}
		switch example.(type) {
		case map[string]any, []any:
		default:
			continue
		}
		inf := &inferer{}
		schema := inf.schema(example, 0)
		wrap := ""
		if _, isObject := example.(map[string]any); !isObject {
			wrap = "result"
			schema = map[string]any{"type": "object", "properties": map[string]any{wrap: schema}, "required": []string{wrap}}
		}
		raw, err := marshalSchema(schema)
		if err != nil {
			return nil, Response{}
		}
		return raw, Response{Status: strconv.Itoa(code), ContentType: ct, WrapProperty: wrap}
	}
	return nil, Response{}
}
