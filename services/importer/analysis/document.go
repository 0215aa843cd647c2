package analysis

import (
	"bytes"
	"encoding/json"
)

// Document is the review of one description: what `mcpgw inspect -o json`
// prints and what the operator API's import review returns (the latter with
// a "diff" object beside it on a re-import). It is built from a Result by
// NewDocument.
//
// Every key the review's specification names is always present: lists
// encode as [] rather than null, a string that does not apply is "", and
// servers are URL strings. The Result's further fields follow the required
// ones. Like a Result, a Document holds no secret: it records the kind,
// placement and parameter name of each credential, never a value.
type Document struct {
	Format      Format `json:"format"`
	SpecVersion string `json:"spec_version"`
	Title       string `json:"title"`
	Version     string `json:"version"`
	// Servers are the document's base URLs, variables set to their defaults.
	Servers     []string             `json:"servers"`
	Schemes     []DocumentScheme     `json:"schemes"`
	Operations  []DocumentOperation  `json:"operations"`
	Diagnostics []DocumentDiagnostic `json:"diagnostics"`
}

// DocumentScheme is a declared security scheme. In and Param are "" where
// no placement applies (mutualTLS); Flows and Scopes are [] when none.
type DocumentScheme struct {
	Name             string         `json:"name"`
	Kind             Kind           `json:"kind"`
	In               Location       `json:"in"`
	Param            string         `json:"param"`
	Flows            []DocumentFlow `json:"flows"`
	Scopes           []string       `json:"scopes"`
	Type             string         `json:"type"`
	HTTPScheme       string         `json:"http_scheme,omitempty"`
	BearerFormat     string         `json:"bearer_format,omitempty"`
	OpenIDConnectURL string         `json:"openid_connect_url,omitempty"`
	Description      string         `json:"description,omitempty"`
}

// DocumentFlow is one OAuth 2.0 flow of a scheme, its URLs as declared.
type DocumentFlow struct {
	Type             string   `json:"type"`
	AuthorizationURL string   `json:"authorization_url,omitempty"`
	TokenURL         string   `json:"token_url,omitempty"`
	RefreshURL       string   `json:"refresh_url,omitempty"`
	Scopes           []string `json:"scopes"`
}

// DocumentRequirement is one credential an operation needs, always supplied
// by the gateway (CallerVisible is false). In and Param are "" where no
// placement applies; Scopes is [] when none.
type DocumentRequirement struct {
	Scheme        string   `json:"scheme"`
	Kind          Kind     `json:"kind"`
	In            Location `json:"in"`
	Param         string   `json:"param"`
	Scopes        []string `json:"scopes"`
	CallerVisible bool     `json:"caller_visible"`
	Inferred      bool     `json:"inferred,omitempty"`
}

// DocumentOperation is one operation and the tool generated for it.
type DocumentOperation struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	OperationID string `json:"operation_id"`
	Tool        string `json:"tool"`
	// Auth lists alternatives (any one suffices), each a list of
	// requirements applied together; [] means no auth, an empty alternative
	// anonymous access.
	Auth         [][]DocumentRequirement `json:"auth"`
	InferredAuth []DocumentRequirement   `json:"inferred_auth"`
	// InputSchema is the tool's input schema; an operation without inputs
	// has an empty object schema.
	InputSchema json.RawMessage `json:"input_schema"`
	// Unsupported says why the gateway cannot execute the operation, or is "".
	Unsupported  string          `json:"unsupported"`
	Description  string          `json:"description"`
	AuthSource   AuthSource      `json:"auth_source"`
	OutputSchema json.RawMessage `json:"output_schema,omitempty"`
	Annotations  Annotations     `json:"annotations"`
	// Servers are the operation's effective base URLs.
	Servers    []string        `json:"servers"`
	Request    Request         `json:"request"`
	Response   Response        `json:"response"`
	Excluded   []ExcludedParam `json:"excluded"`
	Deprecated bool            `json:"deprecated,omitempty"`
	Tags       []string        `json:"tags,omitempty"`
}

// DocumentDiagnostic is a finding that did not stop the analysis; Pointer
// is "" when no location is known.
type DocumentDiagnostic struct {
	Level   Level  `json:"level"`
	Message string `json:"message"`
	Pointer string `json:"pointer"`
}

// emptyObjectSchema is the input schema of an operation without inputs.
var emptyObjectSchema = json.RawMessage(`{"type":"object","properties":{}}`)

// NewDocument maps res to its review document. It does not modify res; the
// Document shares res's strings, schemas and scope lists, so neither may be
// modified while the other is in use. The mapping is deterministic: the same
// Result gives the same bytes once encoded.
func NewDocument(res *Result) *Document {
	doc := &Document{
		Format:      res.Format,
		SpecVersion: res.SpecVersion,
		Title:       res.Title,
		Version:     res.Version,
		Servers:     documentServers(res.Servers),
		Schemes:     make([]DocumentScheme, 0, len(res.Schemes)),
		Operations:  make([]DocumentOperation, 0, len(res.Operations)),
		Diagnostics: make([]DocumentDiagnostic, 0, len(res.Diagnostics)),
	}
	for _, s := range res.Schemes {
		flows := make([]DocumentFlow, 0, len(s.Flows))
		for _, f := range s.Flows {
			flows = append(flows, DocumentFlow{
				Type: f.Type, AuthorizationURL: f.AuthorizationURL, TokenURL: f.TokenURL, RefreshURL: f.RefreshURL,
				Scopes: documentStrings(f.Scopes),
			})
		}
		doc.Schemes = append(doc.Schemes, DocumentScheme{
			Name: s.Name, Kind: s.Kind, In: s.In, Param: s.Param, Flows: flows, Scopes: documentStrings(s.Scopes),
			Type: s.Type, HTTPScheme: s.HTTPScheme, BearerFormat: s.BearerFormat, OpenIDConnectURL: s.OpenIDConnectURL,
			Description: s.Description,
		})
	}
	for _, op := range res.Operations {
		auth := make([][]DocumentRequirement, 0, len(op.Auth))
		for _, alt := range op.Auth {
			auth = append(auth, documentRequirements(alt))
		}
		input := op.InputSchema
		if len(input) == 0 {
			input = emptyObjectSchema
		}
		req := op.Request
		if req.Fields == nil {
			req.Fields = []Field{}
		}
		excluded := op.Excluded
		if excluded == nil {
			excluded = []ExcludedParam{}
		}
		doc.Operations = append(doc.Operations, DocumentOperation{
			Method: op.Method, Path: op.Path, OperationID: op.OperationID, Tool: op.Name,
			Auth: auth, InferredAuth: documentRequirements(op.InferredAuth), InputSchema: input, Unsupported: op.Unsupported,
			Description: op.Description, AuthSource: op.AuthSource, OutputSchema: op.OutputSchema, Annotations: op.Annotations,
			Servers: documentServers(op.Servers), Request: req, Response: op.Response, Excluded: excluded,
			Deprecated: op.Deprecated, Tags: op.Tags,
		})
	}
	for _, d := range res.Diagnostics {
		doc.Diagnostics = append(doc.Diagnostics, DocumentDiagnostic{Level: d.Level, Message: d.Message, Pointer: d.Pointer})
	}
	return doc
}

func documentRequirements(in []Requirement) []DocumentRequirement {
	out := make([]DocumentRequirement, 0, len(in))
	for _, q := range in {
		out = append(out, DocumentRequirement{
			Scheme: q.Scheme, Kind: q.Kind, In: q.In, Param: q.Param, Scopes: documentStrings(q.Scopes),
			CallerVisible: q.CallerVisible, Inferred: q.Inferred,
		})
	}
	return out
}

func documentServers(in []Server) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, s.URL)
	}
	return out
}

// documentStrings returns s, or an empty list for nil so that it encodes
// as [].
func documentStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UnmarshalJSON decodes a Server from its object or from the bare URL
// string a Document carries, so that a Document decodes into a Result (with
// each Server's URL only).
func (s *Server) UnmarshalJSON(b []byte) error {
	if b = bytes.TrimSpace(b); len(b) > 0 && b[0] == '"' {
		var u string
		if err := json.Unmarshal(b, &u); err != nil {
			return err
		}
		*s = Server{URL: u}
		return nil
	}
	type plain Server
	p := plain(*s)
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = Server(p)
	return nil
}
