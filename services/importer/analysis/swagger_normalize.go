package analysis

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
)

// prefixItemsKey carries a tuple-form `items` through the conversion, which
// has no field for it, until applyPrefixItems turns it into prefixItems. A
// document's own value under this key is dropped by normalizeSwagger.
const prefixItemsKey = "x-mcpgw-prefix-items"

// swaggerMethods are the operations a Swagger 2.0 path item can hold.
var swaggerMethods = [...]string{"get", "put", "post", "delete", "options", "head", "patch"}

// normalizeSwagger rewrites, in place, what real Swagger 2.0 descriptions
// write but kin-openapi's Swagger model cannot decode, or openapi2conv would
// convert into something else than it means. It keeps the meaning where JSON
// Schema 2020-12 can say it and widens a constraint otherwise (it never
// narrows one):
//   - a tuple-form `items` array (JSON Schema draft 4, e.g. Slack's
//     `items: [{$ref: message}, {type: null}]`) becomes `prefixItems`, which
//     means the same in 2020-12;
//   - a `type` list keeps its string members; a list such as
//     ["null", "string"] stays, as 2020-12 reads it as written;
//   - `required: true` on a property schema (a common mistake) makes the
//     property required in its parent, as intended;
//   - numeric `exclusiveMinimum`/`exclusiveMaximum` (draft 6 style) become a
//     bound and the boolean flag;
//   - length and count bounds written as integral decimals (1.0) become
//     integers, and impossible ones (negative, fractional) are dropped;
//   - an OpenAPI 3 discriminator object becomes its property name;
//   - a query parameter that is a list without collectionFormat is
//     comma-separated, as Swagger 2.0 defines (csv), rather than repeated;
//   - the `swagger` version and the info's title and version written as
//     numbers (YAML's `version: 1.0`) are read as the text written;
//   - references to definitions are written as OpenAPI 3 references here,
//     since openapi2conv leaves those nested in an additionalProperties
//     schema as they were, and they would not resolve;
//   - extension keys (x-…) under `paths` and under `responses` are dropped:
//     they hold no operation and no response.
//
// Anything else kin-openapi cannot decode is refused by swaggerDecodeError,
// with its location.
func normalizeSwagger(root map[string]any, version string) {
	root["swagger"] = version
	if info, ok := root["info"].(map[string]any); ok {
		for _, key := range [...]string{"title", "version"} {
			switch v := info[key].(type) {
			case json.Number:
				info[key] = v.String()
			case bool:
				info[key] = strconv.FormatBool(v)
			}
		}
	}
	forEachValue(root, "definitions", normalizeSchema)
	forEachValue(root, "parameters", normalizeParameter)
	forEachValue(root, "responses", normalizeResponse)
	if paths, ok := root["paths"].(map[string]any); ok {
		for key, item := range paths {
			if strings.HasPrefix(key, "x-") {
				delete(paths, key)
				continue
			}
			normalizePathItem(item)
		}
	}
}

// forEachValue calls fn on every value of the object under key, if any.
func forEachValue(m map[string]any, key string, fn func(any)) {
	if sub, ok := m[key].(map[string]any); ok {
		for _, v := range sub {
			fn(v)
		}
	}
}

// forEachElement calls fn on every element of the array under key, if any.
func forEachElement(m map[string]any, key string, fn func(any)) {
	if list, ok := m[key].([]any); ok {
		for _, v := range list {
			fn(v)
		}
	}
}

func normalizePathItem(v any) {
	item, ok := v.(map[string]any)
	if !ok {
		return
	}
	forEachElement(item, "parameters", normalizeParameter)
	for _, method := range swaggerMethods {
		op, ok := item[method].(map[string]any)
		if !ok {
			continue
		}
		forEachElement(op, "parameters", normalizeParameter)
		if responses, ok := op["responses"].(map[string]any); ok {
			for code, r := range responses {
				if strings.HasPrefix(code, "x-") {
					delete(responses, code)
					continue
				}
				normalizeResponse(r)
			}
		}
	}
}

func normalizeParameter(v any) {
	p, ok := v.(map[string]any)
	if !ok {
		return
	}
	normalizeSchema(p["schema"])
	normalizeSimpleItems(p)
	normalizeBounds(p)
	// A query list is comma-separated unless collectionFormat says
	// otherwise; OpenAPI 3's default would repeat the parameter instead.
	if t, _ := p["type"].(string); t == "array" && p["in"] == "query" {
		if _, has := p["collectionFormat"]; !has {
			p["collectionFormat"] = "csv"
		}
	}
}

func normalizeResponse(v any) {
	r, ok := v.(map[string]any)
	if !ok {
		return
	}
	normalizeSchema(r["schema"])
	forEachValue(r, "headers", func(h any) {
		if hm, ok := h.(map[string]any); ok {
			normalizeSimpleItems(hm)
			normalizeBounds(hm)
		}
	})
}

// normalizeSimpleItems normalises the `items` of a non-body parameter or a
// header, which describe the elements of a serialized list. There is no
// tuple form for those: a list of one schema is that schema, a longer list
// is dropped (any element).
func normalizeSimpleItems(m map[string]any) {
	switch items := m["items"].(type) {
	case map[string]any:
		normalizeSimpleItems(items)
		normalizeBounds(items)
	case []any:
		only, ok := map[string]any(nil), len(items) == 1
		if ok {
			only, ok = items[0].(map[string]any)
		}
		if !ok {
			delete(m, "items")
			break
		}
		m["items"] = only
		normalizeSimpleItems(only)
		normalizeBounds(only)
	case nil:
	default:
		delete(m, "items")
	}
	normalizeType(m)
}

// normalizeSchema normalises a schema object and every schema inside it.
func normalizeSchema(v any) {
	s, ok := v.(map[string]any)
	if !ok {
		return
	}
	delete(s, prefixItemsKey)
	if ref, ok := s["$ref"].(string); ok {
		if name, ok := strings.CutPrefix(ref, "#/definitions/"); ok {
			s["$ref"] = "#/components/schemas/" + name
		}
	}
	normalizeType(s)
	normalizeBounds(s)

	switch items := s["items"].(type) {
	case map[string]any:
		normalizeSchema(items)
	case []any:
		tuple := make([]any, 0, len(items))
		for _, e := range items {
			if em, ok := e.(map[string]any); ok {
				normalizeSchema(em)
				tuple = append(tuple, em)
			} else {
				// A non-object element (a boolean schema) constrains nothing
				// kin-openapi can hold: any value at that position.
				tuple = append(tuple, map[string]any{})
			}
		}
		delete(s, "items")
		if len(tuple) > 0 {
			s[prefixItemsKey] = tuple
		}
	case nil:
	default:
		// `items: true` allows any element; `items: false` (no element) is
		// widened to any element rather than refused.
		delete(s, "items")
	}

	if props, ok := s["properties"].(map[string]any); ok {
		var required []string
		for name, p := range props {
			pm, ok := p.(map[string]any)
			if !ok {
				// A boolean schema: true allows anything; false is widened.
				props[name] = map[string]any{}
				continue
			}
			if r, ok := pm["required"].(bool); ok {
				if r {
					required = append(required, name)
				}
				delete(pm, "required")
			}
			normalizeSchema(pm)
		}
		if len(required) > 0 {
			have, _ := s["required"].([]any)
			slices.Sort(required)
			for _, name := range required {
				if !slices.Contains(have, any(name)) {
					have = append(have, name)
				}
			}
			s["required"] = have
		}
	} else if _, has := s["properties"]; has {
		delete(s, "properties")
	}
	switch r := s["required"].(type) {
	case []any:
		names := r[:0]
		for _, n := range r {
			if _, ok := n.(string); ok {
				names = append(names, n)
			}
		}
		s["required"] = names
	case nil:
	default:
		delete(s, "required")
	}

	switch d := s["discriminator"].(type) {
	case string, nil:
	case map[string]any:
		// An OpenAPI 3 discriminator object: Swagger 2.0 names the property.
		if name, ok := d["propertyName"].(string); ok {
			s["discriminator"] = name
		} else {
			delete(s, "discriminator")
		}
	default:
		delete(s, "discriminator")
	}

	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		normalizeSchema(ap)
	}
	normalizeSchema(s["not"])
	forEachElement(s, "allOf", normalizeSchema)
}

// normalizeType keeps the string members of a `type` list and drops a
// `type` that is neither a string nor a list.
func normalizeType(m map[string]any) {
	switch t := m["type"].(type) {
	case string, nil:
	case []any:
		types := make([]any, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok && !slices.Contains(types, any(s)) {
				types = append(types, s)
			}
		}
		switch len(types) {
		case 0:
			delete(m, "type")
		case 1:
			m["type"] = types[0]
		default:
			m["type"] = types
		}
	default:
		delete(m, "type")
	}
}

// normalizeBounds rewrites numeric exclusive bounds and non-integral counts.
func normalizeBounds(m map[string]any) {
	for _, b := range [...]struct{ exclusive, bound string }{
		{"exclusiveMinimum", "minimum"}, {"exclusiveMaximum", "maximum"},
	} {
		n, ok := number(m[b.exclusive])
		if !ok {
			continue
		}
		// Both bounds apply: the exclusive one replaces the inclusive one
		// when it is at least as strict.
		bound, hasBound := number(m[b.bound])
		lower := b.bound == "minimum"
		if !hasBound || (lower && n >= bound) || (!lower && n <= bound) {
			m[b.bound] = m[b.exclusive]
			m[b.exclusive] = true
		} else {
			delete(m, b.exclusive)
		}
	}
	for _, key := range [...]string{"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"} {
		v, has := m[key]
		if !has {
			continue
		}
		n, ok := number(v)
		switch {
		case !ok || n < 0 || n != math.Trunc(n) || n > 1<<53:
			delete(m, key)
		default:
			m[key] = json.Number(strconv.FormatUint(uint64(n), 10))
		}
	}
}

// number reads a JSON number.
func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// swaggerParam is a parameter of an operation, its $ref followed.
type swaggerParam struct {
	m   map[string]any
	in  string
	key string // identity within a path item: the $ref, else in and name
}

// resolveSwaggerParam follows a parameter's $ref into the document's
// `parameters`.
func resolveSwaggerParam(root map[string]any, v any) (swaggerParam, bool) {
	p, ok := v.(map[string]any)
	if !ok {
		return swaggerParam{}, false
	}
	if ref, ok := p["$ref"].(string); ok {
		key := ref
		if name, ok := strings.CutPrefix(ref, "#/parameters/"); ok {
			name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
			if params, ok := root["parameters"].(map[string]any); ok {
				if target, ok := params[name].(map[string]any); ok {
					p = target
				}
			}
		}
		in, _ := p["in"].(string)
		return swaggerParam{m: p, in: in, key: key}, true
	}
	in, _ := p["in"].(string)
	name, _ := p["name"].(string)
	return swaggerParam{m: p, in: in, key: in + " " + name}, true
}

// prepareSwaggerOperations refuses an operation the conversion cannot hold
// (two body parameters, or a body beside form fields) and settles the media
// type of each request body:
//   - formData parameters are sent as a form. A form media type the
//     operation consumes is kept (multipart/form-data only when a parameter
//     is a file); without one, the body is
//     application/x-www-form-urlencoded, or multipart/form-data for a file.
//     Other media types an operation lists beside a form (Slack lists
//     application/json) cannot carry form fields and are dropped.
//   - a body parameter without any `consumes` is sent as application/json.
func prepareSwaggerOperations(root map[string]any, src *source) error {
	paths, _ := root["paths"].(map[string]any)
	globalConsumes, _ := root["consumes"].([]any)
	for _, path := range sortedKeys(paths) {
		item, ok := paths[path].(map[string]any)
		if !ok {
			continue
		}
		pathParams, _ := item["parameters"].([]any)
		for _, method := range swaggerMethods {
			op, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			opParams, _ := op["parameters"].([]any)
			var params []swaggerParam
			overridden := map[string]bool{}
			for _, v := range opParams {
				if p, ok := resolveSwaggerParam(root, v); ok {
					params = append(params, p)
					overridden[p.key] = true
				}
			}
			for _, v := range pathParams {
				if p, ok := resolveSwaggerParam(root, v); ok && !overridden[p.key] {
					params = append(params, p)
				}
			}
			bodies, forms, files := 0, 0, false
			for _, p := range params {
				switch p.in {
				case "body":
					bodies++
				case "formData":
					forms++
					if isFileParam(p.m) {
						files = true
					}
				}
			}
			at := []string{"paths", path, method, "parameters"}
			switch {
			case bodies > 1:
				return swaggerInvalid(src, at, "the operation declares more than one body parameter")
			case bodies > 0 && forms > 0:
				return swaggerInvalid(src, at, "the operation declares both a body parameter and formData parameters")
			}
			consumes := globalConsumes
			if own, ok := op["consumes"].([]any); ok && len(own) > 0 {
				consumes = own
			}
			switch {
			case forms > 0:
				op["consumes"] = formMediaTypes(consumes, files)
			case bodies > 0 && len(consumes) == 0:
				op["consumes"] = []any{"application/json"}
			}
		}
	}
	return nil
}

func isFileParam(p map[string]any) bool {
	switch t := p["type"].(type) {
	case string:
		return t == "file"
	case []any:
		return slices.Contains(t, any("file"))
	}
	return false
}

// formMediaTypes keeps the form media types of consumes that can carry the
// fields, or names the one that can.
func formMediaTypes(consumes []any, files bool) []any {
	var out []any
	for _, v := range consumes {
		mt, _ := v.(string)
		switch mediaKind(mt) {
		case contentMultipart:
			out = append(out, mt)
		case contentForm:
			if !files {
				out = append(out, mt)
			}
		}
	}
	if len(out) > 0 {
		return out
	}
	if files {
		return []any{"multipart/form-data"}
	}
	return []any{"application/x-www-form-urlencoded"}
}
