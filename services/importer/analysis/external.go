package analysis

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

// MaxExternalDocuments bounds the distinct remote documents that the $refs
// of one description may point to, and the documents Options.External may
// hold.
const MaxExternalDocuments = 64

// ExternalRefs lists the remote documents that the $refs of an OpenAPI 3.x
// description point to: absolute http and https URLs without their fragment,
// deduplicated and sorted. Relative references, references to files or other
// schemes, and URLs with user info are not listed (Analyze refuses them).
// Documents of other formats list nothing. It performs no I/O.
//
// Resolution is one level deep: only the $refs of doc itself are listed. A
// listed document may reference further documents; those are resolved only
// when doc references them too, and refused otherwise.
//
// More than MaxExternalDocuments distinct documents is a *LimitError; a
// document that cannot be inspected gives the errors of Analyze.
func ExternalRefs(doc []byte) ([]string, error) {
	src, err := inspect(doc, Options{}.withDefaults())
	if err != nil {
		return nil, err
	}
	if src.format != FormatOpenAPI30 && src.format != FormatOpenAPI31 {
		return nil, nil
	}
	seen := map[string]bool{}
	add := func(ref string) error {
		key, ok := externalKey(ref)
		if !ok || seen[key] {
			return nil
		}
		if len(seen) >= MaxExternalDocuments {
			return &LimitError{Limit: "remote documents referenced by $ref", Max: MaxExternalDocuments}
		}
		seen[key] = true
		return nil
	}
	if src.root != nil {
		err = yamlRefs(src.root, map[*yaml.Node]bool{}, add)
	} else {
		var v any
		if uerr := json.Unmarshal(src.data, &v); uerr != nil {
			return nil, jsonSyntaxError(src.data)
		}
		err = jsonRefs(v, add)
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// yamlRefs calls add with every $ref value under n, visiting each node once
// (aliases included).
func yamlRefs(n *yaml.Node, visited map[*yaml.Node]bool, add func(string) error) error {
	if n == nil || visited[n] {
		return nil
	}
	visited[n] = true
	switch n.Kind {
	case yaml.AliasNode:
		return yamlRefs(n.Alias, visited, add)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "$ref" && v.Kind == yaml.ScalarNode {
				if err := add(v.Value); err != nil {
					return err
				}
				continue
			}
			if err := yamlRefs(v, visited, add); err != nil {
				return err
			}
		}
	default:
		for _, c := range n.Content {
			if err := yamlRefs(c, visited, add); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonRefs calls add with every $ref value in v.
func jsonRefs(v any, add func(string) error) error {
	switch v := v.(type) {
	case map[string]any:
		for k, c := range v {
			if s, ok := c.(string); ok && k == "$ref" {
				if err := add(s); err != nil {
					return err
				}
				continue
			}
			if err := jsonRefs(c, add); err != nil {
				return err
			}
		}
	case []any:
		for _, c := range v {
			if err := jsonRefs(c, add); err != nil {
				return err
			}
		}
	}
	return nil
}

// externalKey is the key of Options.External for a reference: the absolute
// http or https URL without its fragment. ok is false for anything else.
func externalKey(ref string) (key string, ok bool) {
	u, err := url.Parse(ref)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", false
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String(), true
}

// redactedRef is a reference as an error may show it: without user info and
// query string.
func redactedRef(ref string) string {
	u, err := url.Parse(ref)
	if err != nil || (u.RawQuery == "" && !u.ForceQuery && u.User == nil) {
		return ref
	}
	u.User, u.RawQuery, u.ForceQuery = nil, "", false
	return u.String()
}

// checkExternal refuses an Options.External that exceeds the bounds: more
// than MaxExternalDocuments documents, more than MaxDocumentBytes in all, a
// key that is not an absolute http(s) URL, or a document that does not pass
// the syntax and bounds checks of a description.
func checkExternal(opts Options) error {
	if len(opts.External) > MaxExternalDocuments {
		return &LimitError{Limit: "remote documents referenced by $ref", Max: MaxExternalDocuments}
	}
	var total int64
	for key, data := range opts.External {
		total += int64(len(data))
		if total > opts.MaxDocumentBytes {
			return &LimitError{Limit: "total size in bytes of remote documents", Max: opts.MaxDocumentBytes}
		}
		if k, ok := externalKey(key); !ok || k != key {
			return &InvalidError{Msg: fmt.Sprintf("remote document %q is not named by an absolute http(s) URL without fragment", trimTo(redactedRef(key), 200))}
		}
		if _, err := inspect(data, opts); err != nil {
			return &InvalidError{Msg: fmt.Sprintf("remote document %s: %s", hostPath(key), trimMessage(err.Error())), Err: err}
		}
	}
	return nil
}

// hostPath is a URL's host and path, without scheme, user info, query and
// fragment.
func hostPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return trimTo(u.Host+u.EscapedPath(), 200)
}

// externalReader serves the loader's external references from docs only:
// anything else is a *openapi3.DisallowedExternalRefError, as when no
// document is given.
func externalReader(docs map[string][]byte) openapi3.ReadFromURIFunc {
	return func(_ *openapi3.Loader, location *url.URL) ([]byte, error) {
		if key, ok := externalKey(location.String()); ok {
			if data, ok := docs[key]; ok {
				return data, nil
			}
		}
		return nil, &openapi3.DisallowedExternalRefError{Ref: location.String()}
	}
}

// externalLoadError is loadError, except that a refused reference carrying
// a query string or user info is shown without them.
func externalLoadError(err error, src *source) error {
	var ext *openapi3.DisallowedExternalRefError
	if !errors.As(err, &ext) || redactedRef(ext.Ref) == ext.Ref {
		return loadError(err, src)
	}
	shown := redactedRef(ext.Ref)
	pointer, line := findRef(src, ext.Ref)
	return &InvalidError{Pointer: pointer, Line: line, Msg: fmt.Sprintf("external reference %q is not allowed: a description must be self-contained", trimTo(shown, 200)), Err: &openapi3.DisallowedExternalRefError{Ref: shown}}
}
