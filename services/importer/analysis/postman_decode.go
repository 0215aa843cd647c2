package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// pmValue is one decoded value of a Postman collection and its JSON pointer.
// Decoded values are what encoding/json produces with UseNumber (maps,
// slices, strings, json.Number, bools, nil); a YAML collection is normalised
// to the same shapes.
type pmValue struct {
	v   any
	ptr string
}

// at is the value of key in an object; absent when v is not an object or has
// no such key.
func (v pmValue) at(key string) pmValue {
	child := pmValue{ptr: v.ptr + "/" + escapePointer(key)}
	if m, ok := v.v.(map[string]any); ok {
		child.v = m[key]
	}
	return child
}

// index is element i of an array.
func (v pmValue) index(i int) pmValue {
	child := pmValue{ptr: v.ptr + "/" + strconv.Itoa(i)}
	if l, ok := v.v.([]any); ok && i < len(l) {
		child.v = l[i]
	}
	return child
}

func (v pmValue) absent() bool { return v.v == nil }

func (v pmValue) object() (map[string]any, bool) {
	m, ok := v.v.(map[string]any)
	return m, ok
}

func (v pmValue) list() ([]any, bool) {
	l, ok := v.v.([]any)
	return l, ok
}

// has reports whether an object holds key with a non-null value.
func (v pmValue) has(key string) bool { return !v.at(key).absent() }

// scalar renders a string, number or boolean as a string; ok is false for
// anything else (objects, arrays, null).
func (v pmValue) scalar() (string, bool) {
	switch x := v.v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// truthy reads a Postman boolean setting, which exports write as a boolean or
// as the string "true".
func (v pmValue) truthy() bool {
	switch x := v.v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(strings.TrimSpace(x), "true")
	}
	return false
}

// text reads a Postman description: a string, or an object whose content is
// one. Anything else reads as empty.
func (v pmValue) text() string {
	if s, ok := v.v.(string); ok {
		return s
	}
	if s, ok := v.at("content").v.(string); ok {
		return s
	}
	return ""
}

// decodePostman decodes a collection whose syntax and bounds inspect checked.
func decodePostman(src *source) (pmValue, error) {
	var v any
	if src.root == nil {
		dec := json.NewDecoder(bytes.NewReader(src.data))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return pmValue{}, &InvalidError{Msg: "the collection could not be decoded"}
		}
	} else {
		if len(src.root.Content) == 0 {
			return pmValue{}, &InvalidError{Msg: "the collection is empty"}
		}
		if err := src.root.Content[0].Decode(&v); err != nil {
			return pmValue{}, &InvalidError{Msg: "the collection could not be decoded: " + cleanLoaderMessage(err.Error())}
		}
		v = jsonValue(v)
	}
	if _, ok := v.(map[string]any); !ok {
		return pmValue{}, &InvalidError{Msg: "a collection must be an object"}
	}
	return pmValue{v: v}, nil
}

// invalidAt builds the error that refuses a malformed collection, locating
// the offending value by JSON pointer and, where it can be found, line.
func invalidAt(src *source, pointer, format string, args ...any) error {
	return &InvalidError{Pointer: pointer, Line: pointerLine(src, pointer), Msg: trimMessage(fmt.Sprintf(format, args...))}
}

// pointerLine returns the 1-based line of the value a JSON pointer names, or
// 0 when it cannot be found.
func pointerLine(src *source, pointer string) int {
	tokens := splitPointer(pointer)
	if src.root != nil {
		return yamlPointerLine(src.root, tokens)
	}
	return jsonPointerLine(src.data, tokens)
}

func splitPointer(pointer string) []string {
	if pointer == "" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(p, "~1", "/"), "~0", "~")
	}
	return parts
}

func yamlPointerLine(doc *yaml.Node, tokens []string) int {
	n := doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return 0
		}
		n = n.Content[0]
	}
	for _, tok := range tokens {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					next = n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(tok); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			return 0
		}
		n = next
	}
	return n.Line
}

// jsonPointerLine walks valid JSON token by token to the value a pointer
// names and returns the line where that value starts.
func jsonPointerLine(data []byte, tokens []string) int {
	if len(tokens) == 0 {
		line, _ := position(data, int64(len(data)-len(bytes.TrimLeft(data, " \t\r\n"))))
		return line
	}
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
	matches := func() bool {
		if len(stack) != len(tokens) {
			return false
		}
		for i, f := range stack {
			tok := f.key
			if !f.object {
				tok = strconv.Itoa(f.index)
			}
			if tok != tokens[i] {
				return false
			}
		}
		return true
	}
	afterValue := func() {
		if len(stack) == 0 {
			return
		}
		top := stack[len(stack)-1]
		if top.object {
			top.wantKey = true
		} else {
			top.index++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil {
			return 0
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.object && top.wantKey {
				if _, ok := tok.(json.Delim); ok { // '}'
					stack = stack[:len(stack)-1]
					afterValue()
					continue
				}
				top.key, _ = tok.(string)
				top.wantKey = false
				continue
			}
			if d, ok := tok.(json.Delim); ok && d == ']' {
				stack = stack[:len(stack)-1]
				afterValue()
				continue
			}
		}
		if matches() {
			line, _ := position(data, dec.InputOffset())
			return line
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				stack = append(stack, &frame{object: true, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			}
			continue
		}
		afterValue()
	}
}
