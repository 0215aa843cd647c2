package analysis

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
)

// swaggerPart names the Swagger 2.0 objects a decode error is narrowed to.
type swaggerPart int

const (
	partDocument swaggerPart = iota
	partSchema
	partParameter
	partResponse
	partPathItem
	partOperation
	partSecurityScheme
	partHeader
)

// decodeSwaggerPart decodes a generic value as one Swagger 2.0 object.
func decodeSwaggerPart(part swaggerPart, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var target any
	switch part {
	case partDocument:
		target = &openapi2.T{}
	case partSchema:
		target = &openapi2.SchemaRef{}
	case partParameter:
		target = &openapi2.Parameter{}
	case partResponse:
		target = &openapi2.Response{}
	case partPathItem:
		target = &openapi2.PathItem{}
	case partOperation:
		target = &openapi2.Operation{}
	case partSecurityScheme:
		target = &openapi2.SecurityScheme{}
	case partHeader:
		target = &openapi2.Header{}
	}
	return json.Unmarshal(data, target)
}

// swaggerChild is an object nested in another, at tokens below it.
type swaggerChild struct {
	tokens []string
	part   swaggerPart
	value  any
}

// swaggerChildren lists the objects nested in a Swagger 2.0 object, in a
// fixed order.
func swaggerChildren(part swaggerPart, v any) []swaggerChild {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	var out []swaggerChild
	mapOf := func(key string, p swaggerPart, skipExtensions bool) {
		sub, ok := m[key].(map[string]any)
		if !ok {
			return
		}
		for _, name := range sortedKeys(sub) {
			if skipExtensions && strings.HasPrefix(name, "x-") {
				continue
			}
			out = append(out, swaggerChild{tokens: []string{key, name}, part: p, value: sub[name]})
		}
	}
	listOf := func(key string, p swaggerPart) {
		list, ok := m[key].([]any)
		if !ok {
			return
		}
		for i, e := range list {
			out = append(out, swaggerChild{tokens: []string{key, fmt.Sprint(i)}, part: p, value: e})
		}
	}
	one := func(key string, p swaggerPart) {
		if sub, ok := m[key].(map[string]any); ok {
			out = append(out, swaggerChild{tokens: []string{key}, part: p, value: sub})
		}
	}
	switch part {
	case partDocument:
		mapOf("definitions", partSchema, false)
		mapOf("parameters", partParameter, false)
		mapOf("responses", partResponse, false)
		mapOf("securityDefinitions", partSecurityScheme, false)
		mapOf("paths", partPathItem, true)
	case partPathItem:
		listOf("parameters", partParameter)
		for _, method := range swaggerMethods {
			one(method, partOperation)
		}
	case partOperation:
		listOf("parameters", partParameter)
		mapOf("responses", partResponse, true)
	case partParameter:
		one("schema", partSchema)
		one("items", partSchema)
	case partResponse:
		one("schema", partSchema)
		mapOf("headers", partHeader, false)
	case partHeader:
		one("items", partSchema)
	case partSchema:
		mapOf("properties", partSchema, false)
		one("items", partSchema)
		listOf("allOf", partSchema)
		one("additionalProperties", partSchema)
		one("not", partSchema)
	}
	return out
}

// locateSwaggerError narrows a value that does not decode to the innermost
// object that does not, then to its first member that does not: the
// reference tokens of that member and its error.
func locateSwaggerError(part swaggerPart, v any, at []string) ([]string, error) {
	for _, c := range swaggerChildren(part, v) {
		if err := decodeSwaggerPart(c.part, c.value); err != nil {
			return locateSwaggerError(c.part, c.value, append(append([]string{}, at...), c.tokens...))
		}
	}
	// The object's own members, narrowed through nested objects (info,
	// externalDocs, …) to the innermost member that does not decode alone.
	tokens := append([]string{}, at...)
	var rel []string
	var found error
	for cur := v; ; {
		m, ok := cur.(map[string]any)
		if !ok {
			break
		}
		next := false
		for _, key := range sortedKeys(m) {
			if err := decodeSwaggerPart(part, nested(append(rel, key), m[key])); err != nil {
				rel, cur, found, next = append(rel, key), m[key], err, true
				break
			}
		}
		if !next {
			break
		}
	}
	if found != nil {
		return append(tokens, rel...), found
	}
	return tokens, decodeSwaggerPart(part, v)
}

// nested wraps v in one object per token: {t0: {t1: v}}.
func nested(tokens []string, v any) any {
	for i := len(tokens) - 1; i >= 0; i-- {
		v = map[string]any{tokens[i]: v}
	}
	return v
}

// swaggerDecodeError explains why a normalised document does not decode as
// Swagger 2.0, with the location of the offending value.
func swaggerDecodeError(root map[string]any, src *source) error {
	tokens, err := locateSwaggerError(partDocument, root, nil)
	msg := "the value does not have the type Swagger 2.0 expects here"
	if err != nil {
		msg = describeDecodeError(err)
	}
	return swaggerInvalid(src, tokens, msg)
}

var unmarshalTypeMessage = regexp.MustCompile(`cannot unmarshal (\w+)(?: \S+)? into .*?(?:of )?type ([\w.\[\]*]+)`)

// describeDecodeError says what a JSON decode error found and expected,
// without quoting the document's values or Go type names.
func describeDecodeError(err error) string {
	m := unmarshalTypeMessage.FindStringSubmatch(err.Error())
	if m == nil {
		return "the value does not have the type Swagger 2.0 expects here"
	}
	found := m[1]
	switch found {
	case "array":
		found = "a list"
	case "object":
		found = "an object"
	case "bool":
		found = "a boolean"
	default:
		found = "a " + found
	}
	expected := expectedKind(m[2])
	if found == "a number" && (expected == "a number" || expected == "a non-negative integer") {
		// A number too large, or a fraction or negative where a count goes.
		return fmt.Sprintf("found a number out of range where %s is expected", expected)
	}
	return fmt.Sprintf("found %s where %s is expected", found, expected)
}

func expectedKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"), strings.HasSuffix(goType, "Requirements"), strings.HasSuffix(goType, "Parameters"), goType == "openapi3.Tags":
		return "a list"
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "a boolean"
	case strings.HasPrefix(goType, "uint"):
		return "a non-negative integer"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "an object"
}
