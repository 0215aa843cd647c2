package analysis

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

// Options bound what Analyze produces. Zero values take the defaults.
type Options struct {
	// ToolNameBudget is the longest tool name, in characters (default 48,
	// at least 16).
	ToolNameBudget int
	// DescriptionBudget is the longest tool description, in bytes (default
	// 1024).
	DescriptionBudget int
	// MaxDocumentBytes is the largest document accepted (default 50 MiB).
	MaxDocumentBytes int64
	// External holds remote documents the caller already fetched, keyed by
	// absolute http(s) URL without fragment (as ExternalRefs lists them).
	// An OpenAPI 3.x $ref to one of them is resolved from it; any other
	// external $ref is refused. At most MaxExternalDocuments documents of at
	// most MaxDocumentBytes in all. Analyze only reads the map.
	External map[string][]byte
}

// Defaults of Options.
const (
	DefaultToolNameBudget    = 48
	DefaultDescriptionBudget = 1024
	DefaultMaxDocumentBytes  = 50 << 20
)

const (
	// maxDiagnostics bounds the diagnostics of one result.
	maxDiagnostics = 200
	// maxValidatorDiagnostics bounds how many of them the validator may fill.
	maxValidatorDiagnostics = 100
	// schemeDescriptionBudget bounds a scheme's description, in bytes.
	schemeDescriptionBudget = 512
	// titleBudget bounds a tool annotation title, in bytes.
	titleBudget = 128
)

func (o Options) withDefaults() Options {
	if o.ToolNameBudget <= 0 {
		o.ToolNameBudget = DefaultToolNameBudget
	}
	o.ToolNameBudget = max(o.ToolNameBudget, minToolNameBudget)
	if o.DescriptionBudget <= 0 {
		o.DescriptionBudget = DefaultDescriptionBudget
	}
	if o.MaxDocumentBytes <= 0 {
		o.MaxDocumentBytes = DefaultMaxDocumentBytes
	}
	return o
}

// Analyze parses an OpenAPI 3.0/3.1 or Swagger 2.0 document (JSON or YAML) or
// a Postman Collection v2.0/v2.1 and returns its
// operations, auth requirements and tools. It reads nothing but doc and
// opts.External: other external references are refused. Errors are *SyntaxError, *InvalidError, *LimitError
// or *UnsupportedFormatError (matched by ErrSyntax, ErrInvalid, ErrLimit and
// ErrUnsupportedFormat). Analyze is safe for concurrent use and never panics.
func Analyze(doc []byte, opts Options) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, &InvalidError{Msg: "the document could not be analysed"}
		}
	}()
	opts = opts.withDefaults()
	src, err := inspect(doc, opts)
	if err != nil {
		return nil, err
	}
	var loaded *openapi3.T
	switch src.format {
	case FormatOpenAPI30, FormatOpenAPI31, FormatOpenAPI32:
		loaded, err = load(src, opts)
	case FormatSwagger2:
		loaded, err = loadSwagger2(src)
	case FormatPostman20, FormatPostman21:
		return analyzePostman(src, opts)
	default:
		return nil, &UnsupportedFormatError{Format: src.format}
	}
	if err != nil {
		return nil, err
	}
	a := &analyzer{opts: opts, doc: loaded, schemes: map[string]*Scheme{}}
	return a.run(src), nil
}

// analyzer holds the state of one Analyze call.
type analyzer struct {
	opts        Options
	doc         *openapi3.T
	schemes     map[string]*Scheme
	schemeList  []*Scheme
	diagnostics []Diagnostic
	omitted     int
}

func (a *analyzer) warn(pointer, format string, args ...any) {
	a.add(Diagnostic{Level: LevelWarning, Message: trimMessage(fmt.Sprintf(format, args...)), Pointer: pointer})
}

func (a *analyzer) add(d Diagnostic) {
	if len(a.diagnostics) >= maxDiagnostics {
		a.omitted++
		return
	}
	a.diagnostics = append(a.diagnostics, d)
}

func (a *analyzer) run(src *source) *Result {
	doc := a.doc
	res := &Result{
		Format:      src.format,
		SpecVersion: doc.OpenAPI,
		Schemes:     []Scheme{},
		Operations:  []Operation{},
	}
	if doc.Info != nil {
		res.Title, res.Version = doc.Info.Title, doc.Info.Version
	}
	a.validate()
	res.Servers = a.servers(doc.Servers, "/servers")
	a.classifySchemes()
	for _, s := range a.schemeList {
		res.Schemes = append(res.Schemes, *s)
	}

	var global [][]Requirement
	if len(doc.Security) > 0 {
		global = a.requirements(doc.Security, "/security")
	}

	var cands []nameCandidate
	if doc.Paths != nil {
		pathItems := doc.Paths.Map()
		for _, path := range sortedKeys(pathItems) {
			item := pathItems[path]
			if item == nil {
				continue
			}
			itemPointer := "/paths/" + escapePointer(path)
			for _, m := range methods(item) {
				pointer := itemPointer + "/" + strings.ToLower(m.method)
				op := a.operation(path, item, m.method, m.op, pointer, global)
				res.Operations = append(res.Operations, op)
				base, fromID := baseToolName(m.op.OperationID, m.method, path, a.opts.ToolNameBudget)
				cands = append(cands, nameCandidate{base: base, fromID: fromID, identity: m.method + " " + path})
			}
		}
	}
	for i, name := range assignToolNames(cands, a.opts.ToolNameBudget) {
		res.Operations[i].Name = name
	}

	if a.omitted > 0 {
		a.diagnostics = append(a.diagnostics, Diagnostic{Level: LevelInfo, Message: fmt.Sprintf("%d further diagnostics omitted", a.omitted)})
	}
	res.Diagnostics = a.diagnostics
	if res.Diagnostics == nil {
		res.Diagnostics = []Diagnostic{}
	}
	return res
}

// validate records the OpenAPI validator's findings as warnings.
func (a *analyzer) validate() {
	var findings []string
	func() {
		defer func() {
			if r := recover(); r != nil {
				findings = append(findings, "validation stopped early: the validator could not process this document")
			}
		}()
		ctx := openapi3.WithValidationOptions(context.Background(), openapi3.EnableMultiError())
		err := a.doc.Validate(ctx)
		if err == nil {
			return
		}
		var multi openapi3.MultiError
		if errors.As(err, &multi) {
			for _, e := range multi {
				findings = append(findings, firstLine(e.Error()))
			}
			return
		}
		findings = append(findings, firstLine(err.Error()))
	}()
	sort.Strings(findings)
	for i, f := range findings {
		if i == maxValidatorDiagnostics {
			a.add(Diagnostic{Level: LevelInfo, Message: fmt.Sprintf("%d further validator findings omitted", len(findings)-i)})
			break
		}
		a.add(Diagnostic{Level: LevelWarning, Message: "validator: " + cleanLoaderMessage(f)})
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

type methodOp struct {
	method string
	op     *openapi3.Operation
}

// methods lists a path item's operations in a fixed order.
func methods(item *openapi3.PathItem) []methodOp {
	var out []methodOp
	for _, m := range []methodOp{
		{"GET", item.Get}, {"PUT", item.Put}, {"POST", item.Post}, {"DELETE", item.Delete},
		{"OPTIONS", item.Options}, {"HEAD", item.Head}, {"PATCH", item.Patch}, {"TRACE", item.Trace},
		{"QUERY", item.Query},
	} {
		if m.op != nil {
			out = append(out, m)
		}
	}
	// OpenAPI 3.2's additionalOperations, by method name.
	extra := make([]string, 0, len(item.AdditionalOperations))
	for name := range item.AdditionalOperations {
		extra = append(extra, name)
	}
	sort.Strings(extra)
	for _, name := range extra {
		if op := item.AdditionalOperations[name]; op != nil {
			out = append(out, methodOp{strings.ToUpper(name), op})
		}
	}
	return out
}

var serverVariable = regexp.MustCompile(`\{([^{}]*)\}`)

// servers resolves server URL templates to their defaults.
func (a *analyzer) servers(list openapi3.Servers, pointer string) []Server {
	out := make([]Server, 0, len(list))
	for i, s := range list {
		if s == nil {
			continue
		}
		srv := Server{URL: s.URL, Description: trimTo(s.Description, schemeDescriptionBudget)}
		for _, name := range sortedKeys(s.Variables) {
			v := s.Variables[name]
			if v == nil {
				continue
			}
			srv.Variables = append(srv.Variables, ServerVariable{Name: name, Default: v.Default, Enum: v.Enum, Description: trimTo(v.Description, schemeDescriptionBudget)})
		}
		if serverVariable.MatchString(s.URL) {
			srv.Template = s.URL
			srv.URL = serverVariable.ReplaceAllStringFunc(s.URL, func(m string) string {
				name := m[1 : len(m)-1]
				if v, ok := s.Variables[name]; ok && v != nil {
					return v.Default
				}
				a.warn(pointer+"/"+strconv.Itoa(i)+"/url", "server URL variable %q is not declared", trimTo(name, 64))
				return m
			})
		}
		out = append(out, srv)
	}
	return out
}

// classifySchemes classifies every declared security scheme.
func (a *analyzer) classifySchemes() {
	if a.doc.Components == nil {
		return
	}
	for _, name := range sortedKeys(a.doc.Components.SecuritySchemes) {
		ref := a.doc.Components.SecuritySchemes[name]
		pointer := "/components/securitySchemes/" + escapePointer(name)
		s := &Scheme{Name: name, Kind: KindUnknown}
		if ref == nil || ref.Value == nil {
			a.warn(pointer, "security scheme %q is empty", trimTo(name, 64))
		} else {
			a.classifyScheme(s, ref.Value, pointer)
		}
		a.schemes[name] = s
		a.schemeList = append(a.schemeList, s)
	}
}

func (a *analyzer) classifyScheme(s *Scheme, ss *openapi3.SecurityScheme, pointer string) {
	s.Type = ss.Type
	s.Description = trimTo(strings.TrimSpace(ss.Description), schemeDescriptionBudget)
	authorization := func() { s.In, s.Param = LocationHeader, "Authorization" }
	switch strings.ToLower(ss.Type) {
	case "apikey":
		in := Location(strings.ToLower(ss.In))
		switch in {
		case LocationHeader, LocationQuery, LocationCookie:
			s.In, s.Param = in, ss.Name
		default:
			a.warn(pointer, "apiKey scheme %q has no valid location (in)", trimTo(s.Name, 64))
			return
		}
		if ss.Name == "" {
			a.warn(pointer, "apiKey scheme %q has no parameter name", trimTo(s.Name, 64))
			return
		}
		s.Kind = KindAPIKey
		if in == LocationHeader && strings.EqualFold(ss.Name, "Authorization") {
			s.Kind = KindHTTPBearer
		}
	case "http":
		s.HTTPScheme = ss.Scheme
		authorization()
		switch strings.ToLower(strings.TrimSpace(ss.Scheme)) {
		case "bearer":
			s.Kind = KindHTTPBearer
			s.BearerFormat = ss.BearerFormat
		case "basic":
			s.Kind = KindHTTPBasic
		case "digest":
			s.Kind = KindHTTPDigest
		case "":
			a.warn(pointer, "http scheme %q names no authentication scheme", trimTo(s.Name, 64))
			s.Kind = KindUnknown
		default:
			s.Kind = KindHTTPOther
		}
	case "oauth2":
		s.Kind = KindOAuth2
		authorization()
		s.Flows, s.Scopes = oauthFlows(ss.Flows)
	case "openidconnect":
		s.Kind = KindOpenIDConnect
		authorization()
		s.OpenIDConnectURL = ss.OpenIdConnectUrl
	case "mutualtls":
		s.Kind = KindMutualTLS
	default:
		a.warn(pointer, "security scheme %q has an unknown type", trimTo(s.Name, 64))
	}
	if authType, ok := ss.Extensions["x-amazon-apigateway-authtype"].(string); ok && strings.EqualFold(authType, "awsSigv4") {
		s.Kind = KindAWSSigV4
		if s.In == "" {
			authorization()
		}
	}
}

func oauthFlows(flows *openapi3.OAuthFlows) ([]Flow, []string) {
	if flows == nil {
		return nil, nil
	}
	var out []Flow
	all := map[string]bool{}
	for _, f := range []struct {
		typ  string
		flow *openapi3.OAuthFlow
	}{
		{"implicit", flows.Implicit}, {"password", flows.Password},
		{"clientCredentials", flows.ClientCredentials}, {"authorizationCode", flows.AuthorizationCode},
	} {
		if f.flow == nil {
			continue
		}
		scopes := sortedKeys(f.flow.Scopes)
		for _, sc := range scopes {
			all[sc] = true
		}
		out = append(out, Flow{Type: f.typ, AuthorizationURL: f.flow.AuthorizationURL, TokenURL: f.flow.TokenURL, RefreshURL: f.flow.RefreshURL, Scopes: scopes})
	}
	return out, sortedKeys(all)
}

// requirements turns security requirement objects into alternatives of
// requirements; a reference to an undeclared scheme becomes KindUnknown.
func (a *analyzer) requirements(reqs openapi3.SecurityRequirements, pointer string) [][]Requirement {
	out := make([][]Requirement, 0, len(reqs))
	for i, alt := range reqs {
		group := make([]Requirement, 0, len(alt))
		for _, name := range sortedKeys(alt) {
			scopes := append([]string{}, alt[name]...)
			s, ok := a.schemes[name]
			if !ok {
				a.warn(pointer+"/"+strconv.Itoa(i), "security requirement names undeclared scheme %q", trimTo(name, 64))
				group = append(group, Requirement{Scheme: name, Kind: KindUnknown, Scopes: scopes})
				continue
			}
			group = append(group, Requirement{Scheme: name, Kind: s.Kind, In: s.In, Param: s.Param, Scopes: scopes})
		}
		out = append(out, group)
	}
	return out
}

// effectiveAuth is an operation's own requirement if it declares one (an
// empty one makes it public), else the document's.
func (a *analyzer) effectiveAuth(op *openapi3.Operation, pointer string, global [][]Requirement) ([][]Requirement, AuthSource) {
	if op.Security != nil {
		return a.requirements(*op.Security, pointer+"/security"), AuthFromOperation
	}
	if len(global) > 0 {
		return cloneAuth(global), AuthFromDocument
	}
	return [][]Requirement{}, AuthNone
}

func cloneAuth(in [][]Requirement) [][]Requirement {
	out := make([][]Requirement, len(in))
	for i, alt := range in {
		out[i] = make([]Requirement, len(alt))
		for j, r := range alt {
			r.Scopes = append([]string{}, r.Scopes...)
			out[i][j] = r
		}
	}
	return out
}

// operation builds one operation and its tool, except the tool's name.
func (a *analyzer) operation(path string, item *openapi3.PathItem, method string, op *openapi3.Operation, pointer string, global [][]Requirement) Operation {
	out := Operation{
		Method:      method,
		Path:        path,
		OperationID: op.OperationID,
		Deprecated:  op.Deprecated,
		Tags:        op.Tags,
	}
	out.Auth, out.AuthSource = a.effectiveAuth(op, pointer, global)

	switch {
	case op.Servers != nil && len(*op.Servers) > 0:
		out.Servers = a.servers(*op.Servers, pointer+"/servers")
	case len(item.Servers) > 0:
		out.Servers = a.servers(item.Servers, "/paths/"+escapePointer(path)+"/servers")
	case len(a.doc.Servers) > 0:
		out.Servers = a.servers(a.doc.Servers, "/servers")
	default:
		out.Servers = []Server{{URL: "/"}}
	}

	b := &requestBuilder{a: a, op: op, item: item, path: path, pointer: pointer, auth: out.Auth}
	built := b.build(false)
	if built.overflow {
		built = b.build(true)
	}
	for _, d := range built.diagnostics {
		a.add(d)
	}
	out.Request = built.request
	out.InputSchema = built.inputSchema
	out.Excluded = built.excluded
	out.InferredAuth = built.inferred
	out.Unsupported = built.unsupported

	out.OutputSchema, out.Response = a.output(op)
	out.Description = toolDescription(op.Summary, op.Description, method, path, a.opts.DescriptionBudget)
	out.Annotations = annotations(method, op.Summary)
	return out
}

// annotations derives MCP hints from the HTTP method.
func annotations(method, summary string) Annotations {
	yes, no := true, false
	ann := Annotations{Title: trimTo(strings.TrimSpace(firstLine(summary)), titleBudget), OpenWorldHint: &yes}
	switch method {
	case "GET", "HEAD", "QUERY":
		ann.ReadOnlyHint, ann.IdempotentHint = &yes, &yes
	case "DELETE":
		ann.ReadOnlyHint, ann.DestructiveHint, ann.IdempotentHint = &no, &yes, &yes
	case "PUT":
		ann.ReadOnlyHint, ann.IdempotentHint = &no, &yes
	default:
		ann.ReadOnlyHint = &no
	}
	return ann
}
