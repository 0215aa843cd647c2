package analysis

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// postmanAnalyzer holds the state of one Postman collection's analysis.
type postmanAnalyzer struct {
	src  *source
	opts Options
	// vars are the collection variables that have a value; only URL hosts
	// are resolved from them.
	vars       map[string]string
	warnedVars map[string]bool

	schemeByKey  map[string]*Scheme
	schemeByName map[string]*Scheme
	// schemeVars are the variable names each scheme's auth objects refer to.
	schemeVars map[string]map[string]bool

	// objectStyle and arrayStyle count auth parameters written as objects
	// (v2.0) and as arrays (v2.1), to tell the version of a collection that
	// names no schema.
	objectStyle, arrayStyle int

	diagnostics []Diagnostic
	omitted     int
	ops         []pmOperation
}

// pmOperation is an operation before naming, with its request's name.
type pmOperation struct {
	op   Operation
	name string
}

func (p *postmanAnalyzer) warn(pointer, format string, args ...any) {
	p.add(Diagnostic{Level: LevelWarning, Message: trimMessage(fmt.Sprintf(format, args...)), Pointer: pointer})
}

func (p *postmanAnalyzer) add(d Diagnostic) {
	if len(p.diagnostics) >= maxDiagnostics {
		p.omitted++
		return
	}
	p.diagnostics = append(p.diagnostics, d)
}

var (
	postmanSchemaVersion = regexp.MustCompile(`/collection/v(\d+(?:\.\d+){0,2})/`)
	httpMethod           = regexp.MustCompile(`^[A-Z][A-Z0-9_-]{0,31}$`)
)

// analyzePostman analyses a Postman Collection v2.0 or v2.1 (parameters of
// either style are read in both). Every request (an item with a request, in
// folders at any depth) becomes an operation whose OperationID is its folder
// names and its own name joined by "/", whose Tags are its folder names, and
// whose tool is named after the request. Auth is inherited collection →
// folder → request; each auth type is a scheme named after the type. No auth
// value is ever read: only the type, its placement, its parameter name and
// the names of the variables it refers to; no other value of a request
// (header, query, form or example values) reaches the result either, except
// collection variables that resolve a URL's host. Result.Servers is the union
// of the operations' servers; SpecVersion is the version the schema URL
// names, empty when the collection names none and the version is inferred.
func analyzePostman(src *source, opts Options) (*Result, error) {
	root, err := decodePostman(src)
	if err != nil {
		return nil, err
	}
	p := &postmanAnalyzer{
		src:          src,
		opts:         opts,
		vars:         map[string]string{},
		warnedVars:   map[string]bool{},
		schemeByKey:  map[string]*Scheme{},
		schemeByName: map[string]*Scheme{},
		schemeVars:   map[string]map[string]bool{},
	}
	if err := p.variables(root); err != nil {
		return nil, err
	}
	collectionAuth, err := p.auth(root.at("auth"))
	if err != nil {
		return nil, err
	}
	items := root.at("item")
	if items.absent() {
		return nil, invalidAt(src, "/item", "a collection must have an item array")
	}
	effective := pmEffective{source: AuthNone}.inherit(collectionAuth, AuthFromDocument)
	if err := p.walk(items, nil, effective, bodyPruningDisabled(root, false)); err != nil {
		return nil, err
	}

	res := &Result{Format: src.format, Schemes: p.finishSchemes()}
	info := root.at("info")
	res.Title = strings.TrimSpace(info.at("name").text())
	if res.Title == "" {
		res.Title = strings.TrimSpace(root.at("name").text())
	}
	res.Title = trimTo(res.Title, titleBudget)
	res.Version = trimTo(collectionVersion(info.at("version")), 64)
	schemaURL, _ := info.at("schema").v.(string)
	if m := postmanSchemaVersion.FindStringSubmatch(schemaURL); m != nil {
		res.SpecVersion = m[1]
	}
	if src.specVersion == "" {
		res.Format = FormatPostman21
		how := "no auth parameters say otherwise"
		switch {
		case p.objectStyle > p.arrayStyle:
			res.Format = FormatPostman20
			how = "auth parameters are written as objects"
		case p.arrayStyle > 0:
			how = "auth parameters are written as arrays"
		}
		pointer := ""
		if !info.absent() {
			pointer = "/info"
		}
		p.add(Diagnostic{Level: LevelInfo, Pointer: pointer, Message: "the collection names no schema; " + string(res.Format) + " assumed: " + how})
	}

	sort.SliceStable(p.ops, func(i, j int) bool {
		a, b := p.ops[i].op, p.ops[j].op
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		ri, rj := methodRank(a.Method), methodRank(b.Method)
		if ri != rj {
			return ri < rj
		}
		return ri == len(methodOrder) && a.Method < b.Method
	})
	cands := make([]nameCandidate, len(p.ops))
	res.Operations = make([]Operation, len(p.ops))
	for i, o := range p.ops {
		base, fromID := baseToolName(o.name, o.op.Method, o.op.Path, opts.ToolNameBudget)
		cands[i] = nameCandidate{base: base, fromID: fromID, identity: o.op.Method + " " + o.op.OperationID}
		res.Operations[i] = o.op
	}
	for i, name := range assignToolNames(cands, opts.ToolNameBudget) {
		res.Operations[i].Name = name
	}
	res.Servers = unionServers(res.Operations)
	if p.omitted > 0 {
		p.diagnostics = append(p.diagnostics, Diagnostic{Level: LevelInfo, Message: fmt.Sprintf("%d further diagnostics omitted", p.omitted)})
	}
	res.Diagnostics = p.diagnostics
	if res.Diagnostics == nil {
		res.Diagnostics = []Diagnostic{}
	}
	return res, nil
}

var methodOrder = []string{"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}

// methodRank orders methods as OpenAPI operations are ordered; other methods
// come last.
func methodRank(m string) int {
	for i, known := range methodOrder {
		if m == known {
			return i
		}
	}
	return len(methodOrder)
}

// unionServers lists the distinct servers of the operations, sorted by URL.
func unionServers(ops []Operation) []Server {
	seen := map[string]bool{}
	out := []Server{}
	for _, op := range ops {
		for _, s := range op.Servers {
			key := s.URL + "\x00" + s.Template
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, s)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].URL != out[j].URL {
			return out[i].URL < out[j].URL
		}
		return out[i].Template < out[j].Template
	})
	return out
}

// collectionVersion renders info.version: a string, or {major, minor, patch}.
func collectionVersion(v pmValue) string {
	if s, ok := v.scalar(); ok {
		return strings.TrimSpace(s)
	}
	if _, ok := v.object(); !ok {
		return ""
	}
	var parts []string
	for _, k := range []string{"major", "minor", "patch"} {
		s, ok := v.at(k).scalar()
		if !ok {
			break
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ".")
}

// variables reads the collection variables (`variable`, or `variables` in
// older exports). Disabled variables and secret-typed ones are left out:
// their values resolve nothing.
func (p *postmanAnalyzer) variables(root pmValue) error {
	v := root.at("variable")
	if v.absent() {
		v = root.at("variables")
	}
	if v.absent() {
		return nil
	}
	list, ok := v.list()
	if !ok {
		return invalidAt(p.src, v.ptr, "collection variables must be an array")
	}
	for i := range list {
		e := v.index(i)
		if e.absent() {
			continue
		}
		if _, ok := e.object(); !ok {
			return invalidAt(p.src, e.ptr, "a collection variable must be an object")
		}
		key, _ := e.at("key").v.(string)
		if key == "" {
			key, _ = e.at("id").v.(string)
		}
		typ, _ := e.at("type").v.(string)
		if key == "" || e.at("disabled").truthy() || strings.EqualFold(typ, "secret") {
			continue
		}
		if value, ok := e.at("value").scalar(); ok && strings.TrimSpace(value) != "" {
			p.vars[strings.TrimSpace(key)] = strings.TrimSpace(value)
		}
	}
	return nil
}

// bodyPruningDisabled reads protocolProfileBehavior.disableBodyPruning, which
// folders pass down to their requests.
func bodyPruningDisabled(v pmValue, inherited bool) bool {
	if b, ok := v.at("protocolProfileBehavior").at("disableBodyPruning").v.(bool); ok {
		return b
	}
	return inherited
}

// walk analyses the items of a collection or folder.
func (p *postmanAnalyzer) walk(items pmValue, folders []string, effective pmEffective, keepBody bool) error {
	list, ok := items.list()
	if !ok {
		return invalidAt(p.src, items.ptr, "item must be an array")
	}
	for i := range list {
		it := items.index(i)
		if _, ok := it.object(); !ok {
			return invalidAt(p.src, it.ptr, "an item must be an object")
		}
		name := ""
		if nv := it.at("name"); !nv.absent() {
			s, ok := nv.scalar()
			if !ok {
				return invalidAt(p.src, nv.ptr, "an item name must be a string")
			}
			name = s
		}
		switch {
		case it.has("item"):
			if it.has("request") {
				p.warn(it.ptr, "item has both a request and items; it is taken as a folder")
			}
			own, err := p.auth(it.at("auth"))
			if err != nil {
				return err
			}
			path := append(append([]string{}, folders...), name)
			if err := p.walk(it.at("item"), path, effective.inherit(own, AuthFromFolder), bodyPruningDisabled(it, keepBody)); err != nil {
				return err
			}
		case it.has("request"):
			op, err := p.request(it, folders, name, effective, bodyPruningDisabled(it, keepBody))
			if err != nil {
				return err
			}
			p.ops = append(p.ops, pmOperation{op: op, name: name})
		default:
			p.warn(it.ptr, "item has neither a request nor items; it is skipped")
		}
	}
	return nil
}

// request builds the operation of one request item, except its tool name.
func (p *postmanAnalyzer) request(it pmValue, folders []string, name string, effective pmEffective, keepBody bool) (Operation, error) {
	rv := it.at("request")
	urlValue := rv
	method := "GET"
	header, body := pmValue{ptr: rv.ptr + "/header"}, pmValue{ptr: rv.ptr + "/body"}
	switch rv.v.(type) {
	case string:
	case map[string]any:
		urlValue, header, body = rv.at("url"), rv.at("header"), rv.at("body")
		if mv := rv.at("method"); !mv.absent() {
			s, ok := mv.v.(string)
			if !ok {
				return Operation{}, invalidAt(p.src, mv.ptr, "a request method must be a string")
			}
			if s = strings.ToUpper(strings.TrimSpace(s)); s != "" {
				method = s
			}
			if !httpMethod.MatchString(method) {
				return Operation{}, invalidAt(p.src, mv.ptr, "the request method is not an HTTP method token")
			}
		}
		own, err := p.auth(rv.at("auth"))
		if err != nil {
			return Operation{}, err
		}
		effective = effective.inherit(own, AuthFromOperation)
	default:
		return Operation{}, invalidAt(p.src, rv.ptr, "a request must be a URL string or an object")
	}

	u, err := p.url(urlValue)
	if err != nil {
		return Operation{}, err
	}
	headers, contentType, err := p.headers(header)
	if err != nil {
		return Operation{}, err
	}

	itemPath := append(append([]string{}, folders...), name)
	op := Operation{
		Method:      method,
		Path:        u.path,
		OperationID: strings.Join(itemPath, "/"),
		Auth:        effective.requirements(),
		AuthSource:  effective.source,
	}
	for _, f := range folders {
		if f = strings.TrimSpace(f); f != "" {
			op.Tags = append(op.Tags, f)
		}
	}
	srv, extraQuery := p.server(u, urlValue.ptr)
	op.Servers = []Server{srv}

	b := &pmBuilder{
		p:                p,
		auth:             op.Auth,
		method:           method,
		path:             u.path,
		pathDescriptions: u.pathDescriptions,
		query:            append(u.query, extraQuery...),
		headers:          headers,
		contentType:      contentType,
		body:             body,
		keepBody:         keepBody,
	}
	built, err := b.build()
	if err != nil {
		return Operation{}, err
	}
	for _, d := range built.diagnostics {
		p.add(d)
	}
	op.Request = built.request
	op.InputSchema = built.inputSchema
	op.Excluded = built.excluded
	op.InferredAuth = built.inferred
	op.Unsupported = built.unsupported
	if u.missing {
		op.Unsupported = "the request has no URL"
		p.warn(rv.ptr, "the request has no URL")
	}

	op.OutputSchema, op.Response = p.output(it.at("response"))
	description := strings.TrimSpace(rv.at("description").text())
	if description == "" {
		description = strings.TrimSpace(it.at("description").text())
	}
	if description != "" {
		op.Description = toolDescription("", description, method, u.path, p.opts.DescriptionBudget)
	} else {
		op.Description = toolDescription(name, "", method, u.path, p.opts.DescriptionBudget)
	}
	op.Annotations = annotations(method, name)
	return op, nil
}
