package analysis

import (
	"regexp"
	"strings"
)

// pmParam is one named parameter of a request: a query parameter, a header
// or a form field. Its value is never kept.
type pmParam struct {
	name        string
	description string
	file        bool
}

// pmURL is a request URL split the way the gateway uses it. Every part is as
// written, {{variables}} included, except path, which is a template whose
// `:name` and {{name}} segments are {name} parameters.
type pmURL struct {
	protocol, host, port string
	path                 string
	query                []pmParam
	// pathDescriptions are the descriptions of path variables, by name.
	pathDescriptions map[string]string
	missing          bool
}

var urlProtocol = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*|\{\{[^{}]*\}\})://`)

// url reads a request URL: a string, or an object with raw and the parts.
func (p *postmanAnalyzer) url(v pmValue) (pmURL, error) {
	switch x := v.v.(type) {
	case nil:
		return pmURL{missing: true, path: "/"}, nil
	case string:
		if strings.TrimSpace(x) == "" {
			return pmURL{missing: true, path: "/"}, nil
		}
		return parseRawURL(x), nil
	case map[string]any:
	default:
		return pmURL{}, invalidAt(p.src, v.ptr, "a request URL must be a string or an object")
	}
	raw := ""
	if rv := v.at("raw"); !rv.absent() {
		s, ok := rv.v.(string)
		if !ok {
			return pmURL{}, invalidAt(p.src, rv.ptr, "url.raw must be a string")
		}
		raw = s
	}
	var u pmURL
	if v.has("host") || v.has("path") {
		var err error
		if u.protocol, err = p.scalarAt(v.at("protocol")); err != nil {
			return pmURL{}, err
		}
		if u.port, err = p.scalarAt(v.at("port")); err != nil {
			return pmURL{}, err
		}
		hostParts, err := p.segments(v.at("host"), ".")
		if err != nil {
			return pmURL{}, err
		}
		u.host = strings.Join(hostParts, ".")
		pathParts, err := p.segments(v.at("path"), "/")
		if err != nil {
			return pmURL{}, err
		}
		u.path = templatePath(pathParts)
		_, rawQuery, _ := strings.Cut(stripFragment(raw), "?")
		u.query = parseQuery(rawQuery)
	} else {
		if strings.TrimSpace(raw) == "" {
			return pmURL{missing: true, path: "/"}, nil
		}
		u = parseRawURL(raw)
	}
	if qv := v.at("query"); !qv.absent() {
		list, err := p.params(qv, "query parameter")
		if err != nil {
			return pmURL{}, err
		}
		u.query = list
	}
	if vv := v.at("variable"); !vv.absent() {
		list, ok := vv.list()
		if !ok {
			return pmURL{}, invalidAt(p.src, vv.ptr, "url.variable must be an array")
		}
		for i := range list {
			e := vv.index(i)
			if _, ok := e.object(); !ok {
				return pmURL{}, invalidAt(p.src, e.ptr, "a path variable must be an object")
			}
			key, _ := e.at("key").v.(string)
			if key == "" {
				key, _ = e.at("id").v.(string)
			}
			if d := strings.TrimSpace(e.at("description").text()); key != "" && d != "" {
				if u.pathDescriptions == nil {
					u.pathDescriptions = map[string]string{}
				}
				u.pathDescriptions[key] = d
			}
		}
	}
	return u, nil
}

// scalarAt reads an optional scalar.
func (p *postmanAnalyzer) scalarAt(v pmValue) (string, error) {
	if v.absent() {
		return "", nil
	}
	s, ok := v.scalar()
	if !ok {
		return "", invalidAt(p.src, v.ptr, "must be a string")
	}
	return strings.TrimSpace(s), nil
}

// segments reads url.host or url.path: a string (split on sep) or an array of
// strings or {value} objects.
func (p *postmanAnalyzer) segments(v pmValue, sep string) ([]string, error) {
	switch x := v.v.(type) {
	case nil:
		return nil, nil
	case string:
		if sep == "/" {
			return strings.Split(strings.TrimPrefix(x, "/"), "/"), nil
		}
		return []string{x}, nil
	case []any:
		out := make([]string, 0, len(x))
		for i := range x {
			e := v.index(i)
			if s, ok := e.scalar(); ok {
				out = append(out, s)
				continue
			}
			if s, ok := e.at("value").v.(string); ok {
				out = append(out, s)
				continue
			}
			if e.absent() {
				continue
			}
			return nil, invalidAt(p.src, e.ptr, "a URL segment must be a string")
		}
		return out, nil
	}
	return nil, invalidAt(p.src, v.ptr, "must be a string or an array of strings")
}

func stripFragment(raw string) string {
	if i := strings.IndexByte(raw, '#'); i >= 0 {
		return raw[:i]
	}
	return raw
}

// parseRawURL splits a URL as written in Postman: an optional protocol, a
// host (possibly a {{variable}}), a path and a query.
func parseRawURL(raw string) pmURL {
	base, rawQuery, _ := strings.Cut(stripFragment(strings.TrimSpace(raw)), "?")
	u := pmURL{query: parseQuery(rawQuery)}
	if m := urlProtocol.FindStringSubmatch(base); m != nil {
		u.protocol = m[1]
		base = base[len(m[0]):]
	}
	host, path := base, ""
	if i := strings.IndexByte(base, '/'); i >= 0 {
		host, path = base[:i], base[i:]
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "}") && isDigits(host[i+1:]) {
		host, u.port = host[:i], host[i+1:]
	}
	u.host = host
	u.path = templatePath(strings.Split(strings.TrimPrefix(path, "/"), "/"))
	return u
}

// parseQuery lists the parameter names of a query string; values are
// dropped.
func parseQuery(raw string) []pmParam {
	var out []pmParam
	for part := range strings.SplitSeq(raw, "&") {
		key, _, _ := strings.Cut(part, "=")
		if key = strings.TrimSpace(key); key != "" {
			out = append(out, pmParam{name: key})
		}
	}
	return out
}

// templatePath joins path segments into a template: a `:name` segment and
// every {{name}} become {name}.
func templatePath(segments []string) string {
	out := make([]string, len(segments))
	for i, seg := range segments {
		if len(seg) > 1 && seg[0] == ':' && !strings.ContainsAny(seg, "{}") {
			seg = "{" + seg[1:] + "}"
		}
		out[i] = postmanVariable.ReplaceAllStringFunc(seg, func(m string) string {
			return "{" + strings.TrimSpace(m[2:len(m)-2]) + "}"
		})
	}
	return "/" + strings.Join(out, "/")
}

// server builds the server a request goes to. Variables in the host part
// take their value from the collection variables when they have one and stay
// server variables otherwise. User credentials in the authority are dropped,
// and so is any query a variable's value carries (its parameter names are
// returned, to become query inputs).
func (p *postmanAnalyzer) server(u pmURL, pointer string) (Server, []pmParam) {
	host := u.host
	if i := strings.LastIndexByte(host, '@'); i >= 0 {
		host = host[i+1:]
		p.warn(pointer, "the URL carries user credentials; they are not recorded")
	}
	if strings.TrimSpace(host) == "" {
		return Server{URL: "/"}, nil
	}
	t := host
	if u.port != "" {
		t += ":" + u.port
	}
	switch {
	case u.protocol != "":
		t = u.protocol + "://" + t
	case !strings.HasPrefix(host, "{{"):
		t = "http://" + t
	}
	matches := postmanVariable.FindAllStringSubmatch(t, -1)
	if len(matches) == 0 {
		return Server{URL: t}, nil
	}
	var extra []pmParam
	values := map[string]string{}
	for _, m := range matches {
		name := strings.TrimSpace(m[1])
		if _, done := values[name]; done {
			continue
		}
		value, ok := p.vars[name]
		if !ok {
			values[name] = ""
			if !p.warnedVars[name] {
				p.warnedVars[name] = true
				p.warn(pointer, "URL variable %q has no value among the collection variables; it is kept as a server variable", trimTo(name, 64))
			}
			continue
		}
		value, q := p.serverValue(value, pointer)
		extra = append(extra, q...)
		values[name] = value
	}
	srv := Server{
		Template: postmanVariable.ReplaceAllStringFunc(t, func(m string) string {
			return "{" + strings.TrimSpace(m[2:len(m)-2]) + "}"
		}),
		URL: postmanVariable.ReplaceAllStringFunc(t, func(m string) string {
			name := strings.TrimSpace(m[2 : len(m)-2])
			if v := values[name]; v != "" {
				return v
			}
			return "{" + name + "}"
		}),
	}
	if !strings.Contains(srv.URL, "://") && !strings.HasPrefix(srv.URL, "{") {
		srv.URL = "http://" + srv.URL
	}
	for _, name := range sortedKeys(values) {
		srv.Variables = append(srv.Variables, ServerVariable{Name: name, Default: values[name]})
	}
	return srv, extra
}

// serverValue cleans a collection variable's value used as (part of) a base
// URL: no user credentials, no query, no fragment, no trailing slash.
func (p *postmanAnalyzer) serverValue(value, pointer string) (string, []pmParam) {
	value = strings.TrimSpace(stripFragment(value))
	value, rawQuery, _ := strings.Cut(value, "?")
	authority := value
	prefix := ""
	if i := strings.Index(value, "://"); i >= 0 {
		prefix, authority = value[:i+3], value[i+3:]
	}
	rest := ""
	if i := strings.IndexByte(authority, '/'); i >= 0 {
		authority, rest = authority[:i], authority[i:]
	}
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		authority = authority[i+1:]
		p.warn(pointer, "a URL variable's value carries user credentials; they are not recorded")
	}
	return strings.TrimRight(prefix+authority+rest, "/"), parseQuery(rawQuery)
}
