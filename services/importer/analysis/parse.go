package analysis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

const (
	// maxDepth bounds the nesting of objects and arrays in a document, aliases
	// expanded. Real descriptions stay well under 100.
	maxDepth = 256
	// maxAliasExpansion bounds how many YAML nodes alias expansion may add to
	// a document beyond those written in it.
	maxAliasExpansion = 1_000_000
	// sizeSaturation keeps expansion counts of alias bombs from overflowing.
	sizeSaturation = int64(1) << 50
)

// source is a document whose syntax and bounds were checked and whose format
// was detected.
type source struct {
	data        []byte
	root        *yaml.Node // the YAML document node; nil for JSON input
	format      Format
	specVersion string
}

// inspect checks syntax and bounds and detects the format, without
// interpreting the document further.
func inspect(data []byte, opts Options) (*source, error) {
	if int64(len(data)) > opts.MaxDocumentBytes {
		return nil, &LimitError{Limit: "document size in bytes", Max: opts.MaxDocumentBytes}
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, &SyntaxError{Line: 1, Column: 1, Msg: "empty document"}
	}
	looksJSON := trimmed[0] == '{' || trimmed[0] == '['
	if looksJSON {
		if line, ok := jsonDepthWithin(data, maxDepth); !ok {
			return nil, &LimitError{Limit: "nesting depth", Max: maxDepth, Line: line}
		}
		if json.Valid(data) {
			return inspectJSON(data)
		}
	}
	src, err := inspectYAML(data)
	if err != nil && looksJSON && errors.Is(err, ErrSyntax) {
		// Meant as JSON: its own syntax error is the clearer one.
		return nil, jsonSyntaxError(data)
	}
	return src, err
}

// inspectJSON inspects a valid JSON document whose depth was checked.
func inspectJSON(data []byte) (*source, error) {
	var head struct {
		OpenAPI  json.RawMessage `json:"openapi"`
		Swagger  json.RawMessage `json:"swagger"`
		AsyncAPI json.RawMessage `json:"asyncapi"`
		Info     json.RawMessage `json:"info"`
		Item     json.RawMessage `json:"item"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		// Valid JSON whose top level is not an object.
		return nil, &UnsupportedFormatError{Format: FormatUnknown}
	}
	var info struct {
		PostmanID json.RawMessage `json:"_postman_id"`
		Schema    json.RawMessage `json:"schema"`
	}
	_ = json.Unmarshal(head.Info, &info) // an info that is not an object says nothing about the format
	format, version := classifyFormat(formatHints{
		openapi:   jsonScalar(head.OpenAPI),
		swagger:   jsonScalar(head.Swagger),
		asyncapi:  jsonScalar(head.AsyncAPI),
		postmanID: len(info.PostmanID) > 0,
		schema:    jsonScalar(info.Schema),
		items:     bytes.HasPrefix(bytes.TrimSpace(head.Item), []byte("[")),
	})
	return &source{data: data, format: format, specVersion: version}, nil
}

// jsonSyntaxError locates the first syntax error of invalid JSON.
func jsonSyntaxError(data []byte) error {
	var raw json.RawMessage
	err := json.Unmarshal(data, &raw)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(data, se.Offset)
		return &SyntaxError{Line: line, Column: col, Msg: strings.TrimPrefix(se.Error(), "json: ")}
	}
	if err == nil {
		err = errors.New("invalid JSON")
	}
	return &SyntaxError{Msg: trimMessage(err.Error())}
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	prefix := data[:offset]
	line = bytes.Count(prefix, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(prefix, '\n') + 1) + 1
	return line, col
}

// jsonDepthWithin reports whether JSON (or YAML flow style) nests at most
// max levels deep, and if not, the line where it goes deeper.
func jsonDepthWithin(data []byte, max int) (int, bool) {
	depth, line := 0, 1
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return line, false
			}
		case '}', ']':
			depth--
		case '\n':
			line++
		}
	}
	return 0, true
}

func jsonScalar(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
		return ""
	}
	if raw[0] == '{' || raw[0] == '[' || string(raw) == "null" {
		return ""
	}
	return string(raw)
}

func inspectYAML(data []byte) (*source, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlSyntaxError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &SyntaxError{Line: 1, Column: 1, Msg: "empty document"}
	}
	if err := checkYAMLBounds(&doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &UnsupportedFormatError{Format: FormatUnknown}
	}
	var hints formatHints
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, value := root.Content[i], root.Content[i+1]
		switch key.Value {
		case "openapi":
			hints.openapi = yamlScalar(value)
		case "swagger":
			hints.swagger = yamlScalar(value)
		case "asyncapi":
			hints.asyncapi = yamlScalar(value)
		case "item":
			hints.items = value.Kind == yaml.SequenceNode
		case "info":
			if value.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(value.Content); j += 2 {
				switch value.Content[j].Value {
				case "_postman_id":
					hints.postmanID = true
				case "schema":
					hints.schema = yamlScalar(value.Content[j+1])
				}
			}
		}
	}
	format, version := classifyFormat(hints)
	return &source{data: data, root: &doc, format: format, specVersion: version}, nil
}

func yamlScalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

var lineInMessage = regexp.MustCompile(`line (\d+)(?::|,)?\s*`)

func yamlSyntaxError(err error) error {
	var le *yaml.LoadError
	if errors.As(err, &le) {
		return &SyntaxError{Line: le.Mark.Line, Column: le.Mark.Column, Msg: trimMessage(le.Message)}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	se := &SyntaxError{Msg: msg}
	if m := lineInMessage.FindStringSubmatchIndex(msg); m != nil {
		se.Line, _ = strconv.Atoi(msg[m[2]:m[3]])
		se.Msg = msg[:m[0]] + msg[m[1]:]
	}
	se.Msg = trimMessage(se.Msg)
	return se
}

// yamlCost is what a YAML subtree costs once aliases are expanded.
type yamlCost struct {
	size   int64
	height int
}

// checkYAMLBounds refuses alias cycles, nesting deeper than maxDepth and
// alias expansion beyond maxAliasExpansion, without expanding anything:
// anchored subtrees are costed once and the cost reused at every alias.
func checkYAMLBounds(doc *yaml.Node) error {
	w := yamlWalker{memo: map[*yaml.Node]yamlCost{}, onPath: map[*yaml.Node]bool{}}
	cost, err := w.visit(doc, 0)
	if err != nil {
		return err
	}
	if cost.size-w.physical > maxAliasExpansion {
		return &LimitError{Limit: "YAML alias expansion in nodes", Max: maxAliasExpansion}
	}
	return nil
}

type yamlWalker struct {
	memo     map[*yaml.Node]yamlCost
	onPath   map[*yaml.Node]bool
	physical int64
}

func (w *yamlWalker) visit(n *yaml.Node, depth int) (yamlCost, error) {
	if depth > maxDepth {
		return yamlCost{}, &LimitError{Limit: "nesting depth", Max: maxDepth, Line: n.Line}
	}
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil {
			return yamlCost{size: 1}, nil
		}
		if w.onPath[target] {
			return yamlCost{}, &SyntaxError{Line: n.Line, Column: n.Column, Msg: "alias refers to a node that contains it"}
		}
		cost, ok := w.memo[target]
		if !ok {
			var err error
			if cost, err = w.visit(target, depth); err != nil {
				return yamlCost{}, err
			}
		}
		if depth+cost.height > maxDepth {
			return yamlCost{}, &LimitError{Limit: "nesting depth", Max: maxDepth, Line: n.Line}
		}
		return cost, nil
	}
	if cost, ok := w.memo[n]; ok {
		return cost, nil
	}
	w.physical++
	w.onPath[n] = true
	cost := yamlCost{size: 1}
	for _, c := range n.Content {
		cc, err := w.visit(c, depth+1)
		if err != nil {
			return yamlCost{}, err
		}
		cost.size = min(cost.size+cc.size, sizeSaturation)
		cost.height = max(cost.height, cc.height+1)
		if cost.size-w.physical > maxAliasExpansion {
			return yamlCost{}, &LimitError{Limit: "YAML alias expansion in nodes", Max: maxAliasExpansion, Line: c.Line}
		}
	}
	delete(w.onPath, n)
	if n.Anchor != "" {
		w.memo[n] = cost
	}
	return cost, nil
}

type formatHints struct {
	openapi, swagger, asyncapi, schema string
	postmanID, items                   bool
}

// classifyFormat names the format from the top-level fields that tell
// descriptions apart, and returns the version as written.
func classifyFormat(h formatHints) (Format, string) {
	switch {
	case h.openapi != "":
		major, minor, _ := strings.Cut(h.openapi, ".")
		minor, _, _ = strings.Cut(minor, ".")
		switch major + "." + minor {
		case "3.0":
			return FormatOpenAPI30, h.openapi
		case "3.1":
			return FormatOpenAPI31, h.openapi
		case "3.2":
			return FormatOpenAPI32, h.openapi
		}
		return Format("openapi" + sanitizeFormatVersion(major+"."+minor)), h.openapi
	case h.swagger != "":
		major, _, _ := strings.Cut(h.swagger, ".")
		if major == "2" {
			return FormatSwagger2, h.swagger
		}
		return Format("swagger" + sanitizeFormatVersion(major)), h.swagger
	case h.asyncapi != "":
		return FormatAsyncAPI, h.asyncapi
	case strings.Contains(h.schema, "/collection/v2.1"):
		return FormatPostman21, "2.1"
	case strings.Contains(h.schema, "/collection/v2.0"):
		return FormatPostman20, "2.0"
	case strings.Contains(h.schema, "/collection/v1"):
		return FormatPostman10, "1.0"
	case h.postmanID || h.items:
		// A collection without a recognised schema URL: the current version.
		return FormatPostman21, ""
	}
	return FormatUnknown, ""
}

// sanitizeFormatVersion keeps a version taken from a document to a short
// string of digits and dots, so that it can be echoed safely.
func sanitizeFormatVersion(v string) string {
	var b strings.Builder
	for _, r := range v {
		if (r >= '0' && r <= '9') || r == '.' {
			b.WriteRune(r)
		}
		if b.Len() >= 8 {
			break
		}
	}
	return b.String()
}

// load parses and resolves an OpenAPI 3.x document with kin-openapi. No I/O:
// an external reference is resolved from opts.External, or refused.
func load(src *source, opts Options) (doc *openapi3.T, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, &InvalidError{Msg: "the OpenAPI parser could not process this document"}
		}
	}()
	if err := checkExternal(opts); err != nil {
		return nil, err
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = len(opts.External) > 0
	loader.ReadFromURIFunc = externalReader(opts.External)
	doc, err = loader.LoadFromData(src.data)
	if err != nil {
		return nil, externalLoadError(err, src)
	}
	return doc, nil
}

var (
	yamlConstructError = regexp.MustCompile(`line (\d+): (.+?)(?: in (/\S*))?$`)
	unresolvedRef      = regexp.MustCompile(`(?:in URI|reference): "([^"]*)"`)
	backticked         = regexp.MustCompile("`[^`]*`")
)

// loadError turns a loader error into an *InvalidError with a location.
func loadError(err error, src *source) error {
	var ext *openapi3.DisallowedExternalRefError
	if errors.As(err, &ext) {
		pointer, line := findRef(src, ext.Ref)
		return &InvalidError{Pointer: pointer, Line: line, Msg: fmt.Sprintf("external reference %q is not allowed: a description must be self-contained", trimTo(ext.Ref, 200)), Err: ext}
	}
	msg := err.Error()
	if _, yamlPart, ok := strings.Cut(msg, "yaml error: "); ok {
		first, _, _ := strings.Cut(yamlPart, "\n")
		if m := yamlConstructError.FindStringSubmatch(first); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &InvalidError{Pointer: m[3], Line: line, Msg: cleanLoaderMessage(m[2])}
		}
		return &InvalidError{Msg: cleanLoaderMessage(first)}
	}
	if m := unresolvedRef.FindStringSubmatch(msg); m != nil {
		pointer, line := findRef(src, m[1])
		return &InvalidError{Pointer: pointer, Line: line, Msg: fmt.Sprintf("unresolvable reference %q", trimTo(m[1], 200))}
	}
	first, _, _ := strings.Cut(msg, "\n")
	return &InvalidError{Msg: cleanLoaderMessage(first)}
}

// cleanLoaderMessage drops quoted document values and Go type names from a
// parser message, and trims it.
func cleanLoaderMessage(msg string) string {
	msg = backticked.ReplaceAllString(msg, "a value")
	msg = strings.ReplaceAll(msg, "openapi3.", "")
	msg = strings.ReplaceAll(msg, "*", "")
	return trimMessage(msg)
}

func trimMessage(msg string) string { return trimTo(strings.TrimSpace(msg), 300) }

// findRef locates the first object whose $ref is ref (or ref with a
// fragment): its JSON pointer and line.
func findRef(src *source, ref string) (string, int) {
	if src.root != nil {
		return findYAMLRef(src.root, ref, nil)
	}
	return findJSONRef(src.data, ref)
}

func findYAMLRef(n *yaml.Node, ref string, path []string) (string, int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p, l := findYAMLRef(c, ref, path); l > 0 {
				return p, l
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "$ref" && v.Kind == yaml.ScalarNode && refMatches(v.Value, ref) {
				return pointerOf(path), k.Line
			}
			if p, l := findYAMLRef(v, ref, append(path, k.Value)); l > 0 {
				return p, l
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p, l := findYAMLRef(c, ref, append(path, strconv.Itoa(i))); l > 0 {
				return p, l
			}
		}
	}
	return "", 0
}

func findJSONRef(data []byte, ref string) (string, int) {
	type frame struct {
		object  bool
		wantKey bool
		key     string
		index   int
	}
	var stack []*frame
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
			return "", 0
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantKey {
			if _, ok := tok.(json.Delim); ok { // '}'
				stack = stack[:len(stack)-1]
				afterValue()
				continue
			}
			key, _ := tok.(string)
			top.key, top.wantKey = key, false
			continue
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{object: true, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			case ']', '}':
				stack = stack[:len(stack)-1]
				afterValue()
			}
			continue
		case string:
			if top != nil && top.object && top.key == "$ref" && refMatches(v, ref) {
				path := make([]string, 0, len(stack))
				for _, f := range stack[:len(stack)-1] {
					if f.object {
						path = append(path, f.key)
					} else {
						path = append(path, strconv.Itoa(f.index))
					}
				}
				line, _ := position(data, dec.InputOffset())
				return pointerOf(path), line
			}
		}
		afterValue()
	}
}

func refMatches(value, ref string) bool {
	return value == ref || strings.HasPrefix(value, ref+"#")
}

// pointerOf encodes reference tokens as a JSON pointer (RFC 6901).
func pointerOf(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(escapePointer(t))
	}
	return b.String()
}

func escapePointer(token string) string {
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}
