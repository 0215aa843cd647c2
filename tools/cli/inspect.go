package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

func (r *run) inspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE",
		Short: "Review an API description offline, without importing it (FILE - reads stdin)",
		Long: `Inspect runs the importer's analysis on an API description locally: no
server is contacted and no operator token is needed. FILE - reads the
description from stdin.

It prints the description's auth schemes, each tool the gateway would
generate with the upstream auth it requires (always supplied by the gateway,
never by the caller), and every diagnostic. With -o json it prints the
whole analysis as one JSON document.

A description that cannot be analysed (malformed, of an unsupported format,
over a limit) is refused with its location, and the exit code is 1.`,
		Example: `  mcpgw inspect petstore.yaml
  mcpgw inspect openapi.json -o json | jq '.operations[] | {tool, auth}'
  curl -s https://api.example.com/openapi.json | mcpgw inspect -`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.checkOutput(cmd); err != nil {
				return err
			}
			data, name, err := r.readDescription(args[0])
			if err != nil {
				return err
			}
			res, err := analysis.Analyze(data, analysis.Options{})
			if err != nil {
				return fmt.Errorf("inspect %s: %w", name, err)
			}
			doc := inspectDocument(res)
			return r.emit(cmd, doc, func(w io.Writer) error { return printInspection(w, doc) })
		},
	}
}

// readDescription reads FILE, or stdin for "-", up to one byte over the
// analysis' size limit so that Analyze refuses a larger document without
// the whole of it being held in memory. It returns the name to use in
// errors.
func (r *run) readDescription(path string) ([]byte, string, error) {
	name := path
	var in io.Reader
	if path == "-" {
		name, in = "stdin", r.cfg.Stdin
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, name, fmt.Errorf("open description: %w", err)
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, analysis.DefaultMaxDocumentBytes+1))
	if err != nil {
		return nil, name, fmt.Errorf("read description %s: %w", name, err)
	}
	return data, name, nil
}

// inspection is the document `mcpgw inspect -o json` prints. Every key the
// document's specification names is always present: lists are [] rather
// than null, and a string that does not apply is "". The analysis' further
// fields are kept beside them.
type inspection struct {
	Format      string `json:"format"`
	SpecVersion string `json:"spec_version"`
	Title       string `json:"title"`
	Version     string `json:"version"`
	// Servers are the document's base URLs, variables set to their defaults.
	Servers     []string              `json:"servers"`
	Schemes     []inspectedScheme     `json:"schemes"`
	Operations  []inspectedOperation  `json:"operations"`
	Diagnostics []inspectedDiagnostic `json:"diagnostics"`
}

// inspectedScheme is a declared security scheme.
type inspectedScheme struct {
	Name             string          `json:"name"`
	Kind             string          `json:"kind"`
	In               string          `json:"in"`
	Param            string          `json:"param"`
	Flows            []inspectedFlow `json:"flows"`
	Scopes           []string        `json:"scopes"`
	Type             string          `json:"type"`
	HTTPScheme       string          `json:"http_scheme,omitempty"`
	BearerFormat     string          `json:"bearer_format,omitempty"`
	OpenIDConnectURL string          `json:"openid_connect_url,omitempty"`
	Description      string          `json:"description,omitempty"`
}

// inspectedFlow is one OAuth 2.0 flow of a scheme.
type inspectedFlow struct {
	Type             string   `json:"type"`
	AuthorizationURL string   `json:"authorization_url,omitempty"`
	TokenURL         string   `json:"token_url,omitempty"`
	RefreshURL       string   `json:"refresh_url,omitempty"`
	Scopes           []string `json:"scopes"`
}

// inspectedRequirement is one credential an operation needs, always
// supplied by the gateway (caller_visible is false).
type inspectedRequirement struct {
	Scheme        string   `json:"scheme"`
	Kind          string   `json:"kind"`
	In            string   `json:"in"`
	Param         string   `json:"param"`
	Scopes        []string `json:"scopes"`
	CallerVisible bool     `json:"caller_visible"`
	Inferred      bool     `json:"inferred,omitempty"`
}

// inspectedOperation is one operation and the tool generated for it.
type inspectedOperation struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	OperationID string `json:"operation_id"`
	Tool        string `json:"tool"`
	// Auth lists alternatives, each a list of requirements applied
	// together; [] means no auth.
	Auth         [][]inspectedRequirement `json:"auth"`
	InferredAuth []inspectedRequirement   `json:"inferred_auth"`
	InputSchema  json.RawMessage          `json:"input_schema"`
	Unsupported  string                   `json:"unsupported"`
	Description  string                   `json:"description"`
	AuthSource   string                   `json:"auth_source"`
	OutputSchema json.RawMessage          `json:"output_schema,omitempty"`
	Annotations  analysis.Annotations     `json:"annotations"`
	Servers      []string                 `json:"servers"`
	Request      analysis.Request         `json:"request"`
	Response     analysis.Response        `json:"response"`
	Excluded     []analysis.ExcludedParam `json:"excluded"`
	Deprecated   bool                     `json:"deprecated,omitempty"`
	Tags         []string                 `json:"tags,omitempty"`
}

// inspectedDiagnostic is a finding that did not stop the analysis.
type inspectedDiagnostic struct {
	Level   string `json:"level"`
	Message string `json:"message"`
	Pointer string `json:"pointer"`
}

// emptyObjectSchema is the input schema of an operation without inputs.
var emptyObjectSchema = json.RawMessage(`{"type":"object","properties":{}}`)

// inspectDocument maps an analysis result to the inspect document.
func inspectDocument(res *analysis.Result) inspection {
	doc := inspection{
		Format:      string(res.Format),
		SpecVersion: res.SpecVersion,
		Title:       res.Title,
		Version:     res.Version,
		Servers:     serverURLs(res.Servers),
		Schemes:     make([]inspectedScheme, 0, len(res.Schemes)),
		Operations:  make([]inspectedOperation, 0, len(res.Operations)),
		Diagnostics: make([]inspectedDiagnostic, 0, len(res.Diagnostics)),
	}
	for _, s := range res.Schemes {
		flows := make([]inspectedFlow, 0, len(s.Flows))
		for _, f := range s.Flows {
			flows = append(flows, inspectedFlow{Type: f.Type, AuthorizationURL: f.AuthorizationURL, TokenURL: f.TokenURL, RefreshURL: f.RefreshURL, Scopes: nonNil(f.Scopes)})
		}
		doc.Schemes = append(doc.Schemes, inspectedScheme{
			Name: s.Name, Kind: string(s.Kind), In: string(s.In), Param: s.Param, Flows: flows, Scopes: nonNil(s.Scopes),
			Type: s.Type, HTTPScheme: s.HTTPScheme, BearerFormat: s.BearerFormat, OpenIDConnectURL: s.OpenIDConnectURL, Description: s.Description,
		})
	}
	for _, op := range res.Operations {
		auth := make([][]inspectedRequirement, 0, len(op.Auth))
		for _, alt := range op.Auth {
			auth = append(auth, requirements(alt))
		}
		input := op.InputSchema
		if len(input) == 0 {
			input = emptyObjectSchema
		}
		req := op.Request
		if req.Fields == nil {
			req.Fields = []analysis.Field{}
		}
		excluded := op.Excluded
		if excluded == nil {
			excluded = []analysis.ExcludedParam{}
		}
		doc.Operations = append(doc.Operations, inspectedOperation{
			Method: op.Method, Path: op.Path, OperationID: op.OperationID, Tool: op.Name,
			Auth: auth, InferredAuth: requirements(op.InferredAuth), InputSchema: input, Unsupported: op.Unsupported,
			Description: op.Description, AuthSource: string(op.AuthSource), OutputSchema: op.OutputSchema, Annotations: op.Annotations,
			Servers: serverURLs(op.Servers), Request: req, Response: op.Response, Excluded: excluded, Deprecated: op.Deprecated, Tags: op.Tags,
		})
	}
	for _, d := range res.Diagnostics {
		doc.Diagnostics = append(doc.Diagnostics, inspectedDiagnostic{Level: string(d.Level), Message: d.Message, Pointer: d.Pointer})
	}
	return doc
}

func requirements(in []analysis.Requirement) []inspectedRequirement {
	out := make([]inspectedRequirement, 0, len(in))
	for _, q := range in {
		out = append(out, inspectedRequirement{
			Scheme: q.Scheme, Kind: string(q.Kind), In: string(q.In), Param: q.Param, Scopes: nonNil(q.Scopes),
			CallerVisible: q.CallerVisible, Inferred: q.Inferred,
		})
	}
	return out
}

func serverURLs(in []analysis.Server) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, s.URL)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// printInspection writes the human review of an inspected description.
func printInspection(w io.Writer, doc inspection) error {
	about := strings.TrimSpace(printable(doc.Title) + " " + printable(doc.Version))
	fmt.Fprintf(w, "Description: %s\n", strings.TrimSpace(about+" ("+printable(doc.Format)+")"))
	servers := make([]string, len(doc.Servers))
	for i, s := range doc.Servers {
		servers[i] = printable(s)
	}
	fmt.Fprintf(w, "Servers: %s\n", orDash(strings.Join(servers, ", ")))

	fmt.Fprintf(w, "\nAuth schemes (%d):", len(doc.Schemes))
	if len(doc.Schemes) == 0 {
		fmt.Fprintln(w, " none declared")
	} else {
		fmt.Fprintln(w)
		t := newTable(w, "  SCHEME", "KIND", "PLACEMENT", "DETAILS")
		for _, s := range doc.Schemes {
			t.row("  "+orDash(s.Name), orDash(s.Kind), orDash(strings.TrimSpace(s.In+" "+s.Param)), schemeDetails(s))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nTools (%d):", len(doc.Operations))
	if len(doc.Operations) == 0 {
		fmt.Fprintln(w, " none")
	} else {
		fmt.Fprintln(w)
		t := newTable(w, "  TOOL", "OPERATION", "UPSTREAM AUTH (supplied by the gateway)")
		for _, op := range doc.Operations {
			alts := make([][]reviewRequirement, len(op.Auth))
			for i, alt := range op.Auth {
				alts[i] = reviewRequirements(alt)
			}
			auth := authSummary(alts, reviewRequirements(op.InferredAuth))
			if op.Unsupported != "" {
				auth += "; unsupported: " + printable(op.Unsupported)
			}
			t.row("  "+orDash(op.Tool), printable(op.Method+" "+op.Path), auth)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}

	fmt.Fprintf(w, "\nDiagnostics (%d):", len(doc.Diagnostics))
	if len(doc.Diagnostics) == 0 {
		fmt.Fprintln(w, " none")
	} else {
		fmt.Fprintln(w)
		t := newTable(w, "  LEVEL", "WHERE", "MESSAGE")
		for _, d := range doc.Diagnostics {
			t.row("  "+orDash(d.Level), orDash(d.Pointer), printable(d.Message))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "\nNothing was imported. To propose these tools to the gateway, run: mcpgw import FILE --name NAME")
	return err
}

// schemeDetails summarizes what a scheme declares beyond its placement.
func schemeDetails(s inspectedScheme) string {
	var parts []string
	if s.HTTPScheme != "" && s.Kind == string(analysis.KindHTTPOther) {
		parts = append(parts, "scheme "+printable(s.HTTPScheme))
	}
	if s.BearerFormat != "" {
		parts = append(parts, "format "+printable(s.BearerFormat))
	}
	if len(s.Flows) > 0 {
		flows := make([]string, len(s.Flows))
		for i, f := range s.Flows {
			flows[i] = printable(f.Type)
		}
		parts = append(parts, "flows "+strings.Join(flows, ","))
	}
	if len(s.Scopes) > 0 {
		parts = append(parts, strconv.Itoa(len(s.Scopes))+" scopes")
	}
	if s.OpenIDConnectURL != "" {
		parts = append(parts, "discovery "+printable(s.OpenIDConnectURL))
	}
	return orDash(strings.Join(parts, "; "))
}

// reviewRequirements converts requirements to the shape of an import's
// review, whose summaries inspect prints too.
func reviewRequirements(in []inspectedRequirement) []reviewRequirement {
	out := make([]reviewRequirement, len(in))
	for i, q := range in {
		out[i] = reviewRequirement{Scheme: q.Scheme, Kind: q.Kind, In: q.In, Param: q.Param, Scopes: q.Scopes}
	}
	return out
}
