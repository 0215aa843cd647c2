// Package upstream builds and sends the HTTP request of one tool call.
//
// Build turns a tool's approved operation and the caller's validated
// arguments into a Request, and nothing else: the method, server, path,
// parameters and body come from the operation, values from the arguments,
// and no header a client sent ever reaches it. Path values are escaped and
// refused when they could change the path ("/", "..", control characters);
// header and cookie values are refused when they could split a header.
// Build does no I/O.
//
// Client sends a built Request through the guarded egress client with the
// credentials a binding resolved, following at most a few redirects itself
// and re-checking each target; credentials go along only to the original
// host. Errors never carry the URL or its query string.
package upstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
)

// UserAgent is the User-Agent of every upstream request.
const UserAgent = "mcpgw-adapter"

// ArgumentError is a refusal of the caller's arguments: Message is safe to
// show to the caller (it names the argument, never its value).
type ArgumentError struct {
	Message string
}

// Error returns the message.
func (e *ArgumentError) Error() string { return e.Message }

func argErr(format string, args ...any) error {
	return &ArgumentError{Message: fmt.Sprintf(format, args...)}
}

// SpecError is a tool operation the adapter cannot run (a malformed server
// URL, an unsupported body media type). Message names no secret.
type SpecError struct {
	Message string
}

// Error returns the message.
func (e *SpecError) Error() string { return e.Message }

// Request is a built upstream request. It holds the caller's argument values
// but never a credential; credentials are added by the sender.
type Request struct {
	Method string
	URL    *url.URL
	Header http.Header
	Body   []byte
}

// Size is the request's size on the wire, approximately: request line,
// headers and body.
func (r *Request) Size() int {
	n := len(r.Method) + len(r.URL.String()) + len(" HTTP/1.1\r\n")
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + len(r.Body)
}

// Host returns the request's host and port (the scheme's default when the
// URL names none).
func (r *Request) Host() (host, port string) { return HostPort(r.URL) }

// HostPort returns u's host name (no brackets) and port, defaulting the
// port to 443 for https and 80 for http.
func HostPort(u *url.URL) (host, port string) {
	host, port = u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return host, port
}

// ServerURL returns the operation's first server as an absolute http or
// https URL without user info, query or fragment, and without a trailing
// slash on its path.
func ServerURL(op *controlv1.OperationSpec) (*url.URL, error) {
	if len(op.GetServers()) == 0 {
		return nil, &SpecError{Message: "the tool's operation names no server"}
	}
	u, err := url.Parse(op.GetServers()[0])
	if err != nil {
		return nil, &SpecError{Message: "the tool's server URL is malformed"}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, &SpecError{Message: "the tool's server URL is not an absolute http or https URL"}
	case u.Host == "" || u.Hostname() == "":
		return nil, &SpecError{Message: "the tool's server URL has no host"}
	case u.User != nil:
		return nil, &SpecError{Message: "the tool's server URL carries user info"}
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return nil, &SpecError{Message: "the tool's server URL carries a query or fragment"}
	case strings.Contains(u.Host, "{"):
		return nil, &SpecError{Message: "the tool's server URL has unresolved variables"}
	}
	out := &url.URL{Scheme: u.Scheme, Host: strings.ToLower(u.Host)}
	out.Path = strings.TrimRight(u.Path, "/")
	out.RawPath = strings.TrimRight(u.EscapedPath(), "/")
	if out.RawPath == out.Path {
		out.RawPath = ""
	}
	return out, nil
}

// reservedHeaders are set by the adapter or by the transport, never from an
// argument.
var reservedHeaders = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Authorization": true, "Connection": true,
	"Content-Length": true, "Content-Type": true, "Cookie": true, "Expect": true,
	"Forwarded": true, "Host": true, "Keep-Alive": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Te": true, "Trailer": true, "Transfer-Encoding": true,
	"Upgrade": true, "User-Agent": true, "Via": true,
}

func reservedHeader(name string) bool {
	c := http.CanonicalHeaderKey(name)
	return reservedHeaders[c] || strings.HasPrefix(c, "Proxy-") || strings.HasPrefix(c, "X-Forwarded-") ||
		strings.HasPrefix(c, "Sec-")
}

var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

var pathVar = regexp.MustCompile(`\{([^{}/]+)\}`)

// Build builds the request of op from args (a decoded JSON object whose
// numbers are json.Number). Argument problems are *ArgumentError, problems
// of the operation itself *SpecError.
func Build(op *controlv1.OperationSpec, args map[string]any) (*Request, error) {
	base, err := ServerURL(op)
	if err != nil {
		return nil, err
	}
	method := strings.ToUpper(op.GetMethod())
	if !tokenRE.MatchString(method) {
		return nil, &SpecError{Message: "the tool's operation has an invalid method"}
	}
	if !strings.HasPrefix(op.GetPath(), "/") {
		return nil, &SpecError{Message: "the tool's operation path does not start with /"}
	}
	req := &Request{Method: method, Header: http.Header{}}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", UserAgent)

	pathValues := map[string]string{}
	var query []string
	var cookies []string
	bodyProps := map[string]any{}
	hasBodyMapping := false
	for _, pm := range op.GetParams() {
		v, present := args[pm.GetProperty()]
		if present && v == nil {
			present = false
		}
		in := strings.ToLower(pm.GetIn())
		if !present {
			if pm.GetRequired() || in == "path" {
				return nil, argErr("missing required argument %q", trim(pm.GetProperty()))
			}
			if in == "body" {
				hasBodyMapping = true
			}
			continue
		}
		switch in {
		case "path":
			s, err := pathValue(pm, v)
			if err != nil {
				return nil, err
			}
			pathValues[pm.GetName()] = s
		case "query":
			q, err := queryPairs(pm, v)
			if err != nil {
				return nil, err
			}
			query = append(query, q...)
		case "header":
			if !tokenRE.MatchString(pm.GetName()) || reservedHeader(pm.GetName()) {
				return nil, &SpecError{Message: fmt.Sprintf("the tool maps argument %q to a header the adapter controls", trim(pm.GetProperty()))}
			}
			s, err := headerValue(pm, v)
			if err != nil {
				return nil, err
			}
			req.Header.Add(pm.GetName(), s)
		case "cookie":
			if !tokenRE.MatchString(pm.GetName()) {
				return nil, &SpecError{Message: "the tool maps an argument to an invalid cookie name"}
			}
			s, err := cookieValue(pm, v)
			if err != nil {
				return nil, err
			}
			cookies = append(cookies, pm.GetName()+"="+s)
		case "body":
			hasBodyMapping = true
			bodyProps[pm.GetName()] = v
		default:
			return nil, &SpecError{Message: fmt.Sprintf("the tool maps argument %q to an unsupported location", trim(pm.GetProperty()))}
		}
	}
	if len(cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(cookies, "; "))
	}

	rawPath, err := expandPath(op.GetPath(), pathValues)
	if err != nil {
		return nil, err
	}
	u := *base
	u.RawPath = base.EscapedPath() + rawPath
	u.Path, err = url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, &SpecError{Message: "the tool's operation path is malformed"}
	}
	if u.EscapedPath() != u.RawPath {
		return nil, &SpecError{Message: "the tool's operation path is malformed"}
	}
	u.RawQuery = strings.Join(query, "&")
	if u.Host != base.Host || u.Scheme != base.Scheme {
		return nil, &SpecError{Message: "the request does not go to the tool's server"}
	}
	req.URL = &u

	var body any
	hasBody := false
	if bp := op.GetBodyProperty(); bp != "" {
		if v, ok := args[bp]; ok && v != nil {
			body, hasBody = v, true
		}
	} else if hasBodyMapping {
		body, hasBody = bodyProps, true
	}
	if hasBody {
		ct := op.GetContentType()
		if ct == "" {
			ct = "application/json"
		}
		b, err := encodeBody(ct, body)
		if err != nil {
			return nil, err
		}
		req.Body = b
		req.Header.Set("Content-Type", ct)
	}
	return req, nil
}

// expandPath substitutes the escaped path values into the template.
func expandPath(tmpl string, values map[string]string) (string, error) {
	var missing string
	out := pathVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[1 : len(m)-1]
		v, ok := values[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", &SpecError{Message: fmt.Sprintf("the tool's path parameter %q has no argument", trim(missing))}
	}
	if strings.ContainsAny(out, "{}?#") {
		return "", &SpecError{Message: "the tool's operation path is malformed"}
	}
	for _, seg := range strings.Split(out, "/") {
		if seg == "." || seg == ".." {
			return "", &SpecError{Message: "the tool's operation path is malformed"}
		}
	}
	return out, nil
}

// scalar renders a JSON scalar as a parameter value.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "true", true
		}
		return "false", true
	case float64:
		return json.Number(fmt.Sprint(x)).String(), true
	}
	return "", false
}

// parts flattens a value into scalars: a scalar, an array of scalars, or
// an object of scalars (keys sorted).
type parts struct {
	kind   string // scalar, array, object
	values []string
	keys   []string
}

func flatten(prop string, v any) (parts, error) {
	if s, ok := scalar(v); ok {
		return parts{kind: "scalar", values: []string{s}}, nil
	}
	switch x := v.(type) {
	case []any:
		p := parts{kind: "array"}
		for _, e := range x {
			s, ok := scalar(e)
			if !ok {
				return parts{}, argErr("argument %q must hold scalar values only", trim(prop))
			}
			p.values = append(p.values, s)
		}
		return p, nil
	case map[string]any:
		p := parts{kind: "object"}
		for k := range x {
			p.keys = append(p.keys, k)
		}
		sort.Strings(p.keys)
		for _, k := range p.keys {
			s, ok := scalar(x[k])
			if !ok {
				return parts{}, argErr("argument %q must hold scalar values only", trim(prop))
			}
			p.values = append(p.values, s)
		}
		return p, nil
	}
	return parts{}, argErr("argument %q has an unsupported type", trim(prop))
}

// checkPathPart refuses a path value that could change the path.
func checkPathPart(prop, s string) error {
	switch {
	case strings.Contains(s, "/") || strings.Contains(s, `\`):
		return argErr("argument %q must not contain a slash", trim(prop))
	case strings.Contains(s, ".."):
		return argErr("argument %q must not contain '..'", trim(prop))
	case s == ".":
		return argErr("argument %q must not be '.'", trim(prop))
	case strings.ContainsAny(s, "\r\n\x00"):
		return argErr("argument %q must not contain line breaks or NUL", trim(prop))
	case hasControl(s):
		return argErr("argument %q must not contain control characters", trim(prop))
	case s == "":
		return argErr("argument %q must not be empty", trim(prop))
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// pathValue serializes a path parameter (styles simple, label, matrix),
// escaping each component.
func pathValue(pm *controlv1.ParamMapping, v any) (string, error) {
	prop := pm.GetProperty()
	p, err := flatten(prop, v)
	if err != nil {
		return "", err
	}
	for _, s := range append(append([]string(nil), p.values...), p.keys...) {
		if err := checkPathPart(prop, s); err != nil {
			return "", err
		}
	}
	esc := func(s string) string { return url.PathEscape(s) }
	style := pm.GetStyle()
	if style == "" {
		style = "simple"
	}
	name := esc(pm.GetName())
	switch style {
	case "simple":
		return joinParts(p, esc, ",", "=", pm.GetExplode()), nil
	case "label":
		sep := ","
		if pm.GetExplode() {
			sep = "."
		}
		return "." + joinParts(p, esc, sep, "=", pm.GetExplode()), nil
	case "matrix":
		switch {
		case p.kind == "scalar":
			return ";" + name + "=" + esc(p.values[0]), nil
		case p.kind == "array" && pm.GetExplode():
			var b strings.Builder
			for _, s := range p.values {
				b.WriteString(";" + name + "=" + esc(s))
			}
			return b.String(), nil
		case p.kind == "object" && pm.GetExplode():
			var b strings.Builder
			for i, k := range p.keys {
				b.WriteString(";" + esc(k) + "=" + esc(p.values[i]))
			}
			return b.String(), nil
		}
		return ";" + name + "=" + joinParts(p, esc, ",", ",", false), nil
	}
	return "", &SpecError{Message: fmt.Sprintf("the tool's path parameter %q has an unsupported style", trim(pm.GetName()))}
}

// joinParts joins values (and, for objects, keys) with sep; exploded
// objects pair key and value with kv, others with sep.
func joinParts(p parts, esc func(string) string, sep, kv string, explode bool) string {
	var out []string
	switch p.kind {
	case "object":
		for i, k := range p.keys {
			if explode {
				out = append(out, esc(k)+kv+esc(p.values[i]))
			} else {
				out = append(out, esc(k), esc(p.values[i]))
			}
		}
	default:
		for _, s := range p.values {
			out = append(out, esc(s))
		}
	}
	return strings.Join(out, sep)
}

// queryPairs serializes a query parameter as escaped name=value pairs
// (styles form, spaceDelimited, pipeDelimited, deepObject).
func queryPairs(pm *controlv1.ParamMapping, v any) ([]string, error) {
	p, err := flatten(pm.GetProperty(), v)
	if err != nil {
		return nil, err
	}
	name := url.QueryEscape(pm.GetName())
	esc := url.QueryEscape
	style := pm.GetStyle()
	if style == "" {
		style = "form"
	}
	explode := pm.GetExplode()
	if pm.GetStyle() == "" && !explode && p.kind != "scalar" {
		// The form default is explode: true; an unset style keeps it.
		explode = true
	}
	switch style {
	case "form":
		switch {
		case p.kind == "scalar":
			return []string{name + "=" + esc(p.values[0])}, nil
		case p.kind == "array" && explode:
			var out []string
			for _, s := range p.values {
				out = append(out, name+"="+esc(s))
			}
			return out, nil
		case p.kind == "object" && explode:
			var out []string
			for i, k := range p.keys {
				out = append(out, esc(k)+"="+esc(p.values[i]))
			}
			return out, nil
		}
		return []string{name + "=" + joinParts(p, esc, ",", ",", false)}, nil
	case "spaceDelimited", "pipeDelimited":
		if p.kind == "scalar" {
			return []string{name + "=" + esc(p.values[0])}, nil
		}
		sep := "%20"
		if style == "pipeDelimited" {
			sep = "%7C"
		}
		return []string{name + "=" + joinParts(p, esc, sep, sep, false)}, nil
	case "deepObject":
		if p.kind != "object" {
			return nil, argErr("argument %q must be an object", trim(pm.GetProperty()))
		}
		var out []string
		for i, k := range p.keys {
			out = append(out, name+"%5B"+esc(k)+"%5D="+esc(p.values[i]))
		}
		return out, nil
	}
	return nil, &SpecError{Message: fmt.Sprintf("the tool's query parameter %q has an unsupported style", trim(pm.GetName()))}
}

// headerValue serializes a header parameter (style simple), refusing
// anything that could split or fold a header.
func headerValue(pm *controlv1.ParamMapping, v any) (string, error) {
	p, err := flatten(pm.GetProperty(), v)
	if err != nil {
		return "", err
	}
	s := joinParts(p, func(s string) string { return s }, ",", "=", pm.GetExplode())
	if strings.ContainsAny(s, "\r\n\x00") || hasControl(strings.ReplaceAll(s, "\t", " ")) {
		return "", argErr("argument %q must not contain line breaks or control characters", trim(pm.GetProperty()))
	}
	return strings.TrimSpace(s), nil
}

// cookieValue serializes a cookie parameter (style form), refusing values
// that are not cookie octets.
func cookieValue(pm *controlv1.ParamMapping, v any) (string, error) {
	p, err := flatten(pm.GetProperty(), v)
	if err != nil {
		return "", err
	}
	s := joinParts(p, func(s string) string { return s }, ",", ",", false)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == 0x7f || c == '"' || c == ';' || c == '\\' || (c == ',' && p.kind == "scalar") {
			return "", argErr("argument %q contains a character a cookie cannot carry", trim(pm.GetProperty()))
		}
	}
	return s, nil
}

// encodeBody encodes the body for its media type: JSON (and +json), form
// URL-encoded, or text.
func encodeBody(ct string, body any) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, &SpecError{Message: "the tool's request media type is malformed"}
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(body); err != nil {
			return nil, argErr("arguments cannot be encoded as JSON")
		}
		return bytes.TrimRight(buf.Bytes(), "\n"), nil
	case mt == "application/x-www-form-urlencoded":
		obj, ok := body.(map[string]any)
		if !ok {
			return nil, argErr("the request body must be an object")
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var pairs []string
		for _, k := range keys {
			v := obj[k]
			if v == nil {
				continue
			}
			if s, ok := scalar(v); ok {
				pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(s))
				continue
			}
			if arr, ok := v.([]any); ok {
				for _, e := range arr {
					s, ok := scalar(e)
					if !ok {
						return nil, argErr("body field %q must hold scalar values only", trim(k))
					}
					pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(s))
				}
				continue
			}
			b, err := json.Marshal(v)
			if err != nil {
				return nil, argErr("body field %q cannot be encoded", trim(k))
			}
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(string(b)))
		}
		return []byte(strings.Join(pairs, "&")), nil
	case strings.HasPrefix(mt, "text/"):
		s, ok := body.(string)
		if !ok {
			return nil, argErr("the request body must be a string")
		}
		return []byte(s), nil
	}
	return nil, &SpecError{Message: "the tool's request media type is not supported by the adapter"}
}

// trim bounds caller- or description-controlled names in messages.
func trim(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
