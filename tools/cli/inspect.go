package cli

import (
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
			doc := analysis.NewDocument(res)
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

// printInspection writes the human review of an inspected description.
func printInspection(w io.Writer, doc *analysis.Document) error {
	about := strings.TrimSpace(printable(doc.Title) + " " + printable(doc.Version))
	fmt.Fprintf(w, "Description: %s\n", strings.TrimSpace(about+" ("+printable(string(doc.Format))+")"))
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
			t.row("  "+orDash(s.Name), orDash(string(s.Kind)), orDash(strings.TrimSpace(string(s.In)+" "+s.Param)), schemeDetails(s))
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
			t.row("  "+orDash(string(d.Level)), orDash(d.Pointer), printable(d.Message))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "\nNothing was imported. To propose these tools to the gateway, run: mcpgw import FILE --name NAME")
	return err
}

// schemeDetails summarizes what a scheme declares beyond its placement.
func schemeDetails(s analysis.DocumentScheme) string {
	var parts []string
	if s.HTTPScheme != "" && s.Kind == analysis.KindHTTPOther {
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
func reviewRequirements(in []analysis.DocumentRequirement) []reviewRequirement {
	out := make([]reviewRequirement, len(in))
	for i, q := range in {
		out[i] = reviewRequirement{Scheme: q.Scheme, Kind: string(q.Kind), In: string(q.In), Param: q.Param, Scopes: q.Scopes}
	}
	return out
}
