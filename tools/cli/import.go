package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/tools/client"
)

// review is the part of the importer's review (the analysis result) that
// the CLI summarizes. Unknown fields are ignored.
type review struct {
	Format     string `json:"format"`
	Title      string `json:"title"`
	Version    string `json:"version"`
	Operations []struct {
		Method       string                `json:"method"`
		Path         string                `json:"path"`
		Tool         string                `json:"tool"`
		Auth         [][]reviewRequirement `json:"auth"`
		InferredAuth []reviewRequirement   `json:"inferred_auth"`
		Unsupported  string                `json:"unsupported"`
	} `json:"operations"`
	Diagnostics []struct {
		Level string `json:"level"`
	} `json:"diagnostics"`
	Diff  *reviewDiff `json:"diff"`
	Slots []struct {
		Scheme        string `json:"scheme"`
		Kind          string `json:"kind"`
		Strategy      string `json:"strategy"`
		BlockedReason string `json:"blocked_reason"`
		Bindings      []struct {
			BindingID string `json:"binding_id"`
		} `json:"bindings"`
	} `json:"slots"`
}

// reviewRequirement is one auth requirement of an operation.
type reviewRequirement struct {
	Scheme string   `json:"scheme"`
	Kind   string   `json:"kind"`
	In     string   `json:"in"`
	Param  string   `json:"param"`
	Scopes []string `json:"scopes"`
}

func (r *run) importCommand() *cobra.Command {
	var name, sourceID, fromURL string
	var allowHosts, allowPrefixes []string
	cmd := &cobra.Command{
		Use:   "import (FILE | --url URL [--allow-host H]... [--allow-prefix P]...) --name NAME [--source-id ID]",
		Short: "Import an API description as a source (FILE - reads stdin)",
		Long: `Import uploads an OpenAPI or Postman description as a new source, or as a
new version of an existing source with --source-id. FILE - reads the
description from stdin.

With --url instead of FILE, the server fetches the description itself: an
http or https URL without credentials, fetched with a size cap and a
timeout, following redirects only to the same host. --allow-host names the
hosts the fetch may connect to, and the URL's host must be one of them;
--allow-prefix (a CIDR prefix) lets it reach a loopback or private address.
Remote $refs inside the description are refused even when their host is
allowed: the description must be self-contained.

It prints the source ID and version and a review: each generated tool with
the upstream auth it requires (always supplied by the gateway, never by the
caller) and the number of diagnostics. Nothing changes until the version is
approved (mcpgw approve).`,
		Example: `  mcpgw import petstore.yaml --name "Petstore"
  curl -s https://api.example.com/openapi.json | mcpgw import - --name Example --source-id src_1234
  mcpgw import --url https://api.example.com/openapi.json --allow-host api.example.com --name Example`,
		Args: func(cmd *cobra.Command, args []string) error {
			if fromURL != "" {
				if len(args) != 0 {
					return usagef(cmd, "FILE and --url are mutually exclusive")
				}
				return nil
			}
			if len(allowHosts) > 0 || len(allowPrefixes) > 0 {
				return usagef(cmd, "--allow-host and --allow-prefix need --url")
			}
			return exactArgs("FILE")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return usagef(cmd, "--name is required")
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			var res *client.ImportResult
			if fromURL != "" {
				res, err = c.ImportURL(cmd.Context(), r.tenant, name, sourceID, fromURL, allowHosts, allowPrefixes)
			} else {
				var doc io.Reader
				if args[0] == "-" {
					doc = r.cfg.Stdin
				} else {
					f, err := os.Open(args[0])
					if err != nil {
						return fmt.Errorf("open description: %w", err)
					}
					defer f.Close()
					doc = f
				}
				res, err = c.Import(cmd.Context(), r.tenant, name, sourceID, doc)
			}
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			out := struct {
				SourceID string          `json:"source_id"`
				Version  uint32          `json:"version"`
				Review   json.RawMessage `json:"review"`
			}{res.SourceID, res.Version, res.Review}
			if len(out.Review) == 0 {
				out.Review = json.RawMessage("null")
			}
			return r.emit(cmd, out, func(w io.Writer) error {
				return printReview(w, res.SourceID, res.Version, res.Review)
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name of the source (required)")
	cmd.Flags().StringVar(&sourceID, "source-id", "", "import as a new version of this source")
	cmd.Flags().StringVar(&fromURL, "url", "", "have the server fetch the description from this http or https URL (instead of FILE)")
	cmd.Flags().StringArrayVar(&allowHosts, "allow-host", nil, "host the fetch may connect to; the URL's host must be one (repeatable; with --url)")
	cmd.Flags().StringArrayVar(&allowPrefixes, "allow-prefix", nil, "CIDR prefix that lets the fetch reach a loopback or private address (repeatable; with --url)")
	return cmd
}

// printReview writes the human summary of an import.
func printReview(w io.Writer, sourceID string, version uint32, raw json.RawMessage) error {
	fmt.Fprintf(w, "Imported source %s version %d\n", printable(sourceID), version)
	return printReviewBody(w, sourceID, version, raw)
}

// printReviewBody writes the review of a new version and the next step,
// after a heading line.
func printReviewBody(w io.Writer, sourceID string, version uint32, raw json.RawMessage) error {
	var rv review
	if len(raw) == 0 || string(raw) == "null" {
		fmt.Fprintln(w, "The server returned no review.")
	} else if err := json.Unmarshal(raw, &rv); err != nil {
		fmt.Fprintln(w, "The server's review could not be read; see -o json.")
	} else {
		if rv.Title != "" || rv.Format != "" {
			about := printable(rv.Title)
			if rv.Version != "" {
				about += " " + printable(rv.Version)
			}
			if rv.Format != "" {
				about = strings.TrimSpace(about + " (" + printable(rv.Format) + ")")
			}
			fmt.Fprintf(w, "Description: %s\n", about)
		}
		fmt.Fprintf(w, "\nTools (%d):\n", len(rv.Operations))
		if len(rv.Operations) > 0 {
			t := newTable(w, "  TOOL", "OPERATION", "UPSTREAM AUTH (supplied by the gateway)")
			for _, op := range rv.Operations {
				auth := authSummary(op.Auth, op.InferredAuth)
				if op.Unsupported != "" {
					auth += "; unsupported: " + printable(op.Unsupported)
				}
				t.row("  "+orDash(op.Tool), printable(op.Method+" "+op.Path), auth)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
		if rv.Diff != nil {
			printDiff(w, rv.Diff)
		}
		if len(rv.Slots) > 0 {
			fmt.Fprintln(w, "\nBinding slots (what must be bound before the tools can run):")
			for _, sl := range rv.Slots {
				state := "unbound: bind it with mcpgw binding create --strategy " + printable(sl.Strategy)
				switch {
				case sl.BlockedReason != "":
					state = "blocked: " + printable(sl.BlockedReason)
				case len(sl.Bindings) > 0:
					ids := make([]string, len(sl.Bindings))
					for i, b := range sl.Bindings {
						ids[i] = printable(b.BindingID)
					}
					state = "bound by " + strings.Join(ids, ", ")
				}
				fmt.Fprintf(w, "  %s (%s): %s\n", printable(sl.Scheme), printable(sl.Kind), state)
			}
		}
		fmt.Fprintf(w, "\nDiagnostics: %s\n", diagnosticsSummary(rv))
	}
	_, err := fmt.Fprintf(w, "\nNext: review the tools, then run: mcpgw approve %s %d\n", printable(sourceID), version)
	return err
}

// authSummary renders an operation's requirement alternatives ("or") of
// requirements applied together ("+"), then inferred ones.
func authSummary(alts [][]reviewRequirement, inferred []reviewRequirement) string {
	var parts []string
	for _, alt := range alts {
		if len(alt) == 0 {
			parts = append(parts, "anonymous")
			continue
		}
		reqs := make([]string, len(alt))
		for i, q := range alt {
			reqs[i] = requirementSummary(q)
		}
		parts = append(parts, strings.Join(reqs, " + "))
	}
	s := strings.Join(parts, " or ")
	if s == "" {
		s = "none"
	}
	for _, q := range inferred {
		s += " + inferred " + requirementSummary(q)
	}
	return s
}

// requirementSummary renders one requirement, e.g.
// "apiKey header X-API-Key [ApiKeyAuth]".
func requirementSummary(q reviewRequirement) string {
	s := orDash(q.Kind)
	if q.In != "" || q.Param != "" {
		s += " " + strings.TrimSpace(printable(q.In+" "+q.Param))
	}
	if len(q.Scopes) > 0 {
		s += " scopes " + printable(strings.Join(q.Scopes, ","))
	}
	if q.Scheme != "" {
		s += " [" + printable(q.Scheme) + "]"
	}
	return s
}

// diagnosticsSummary counts diagnostics, by level.
func diagnosticsSummary(rv review) string {
	if len(rv.Diagnostics) == 0 {
		return "0"
	}
	counts := map[string]int{}
	var levels []string
	for _, d := range rv.Diagnostics {
		l := d.Level
		if l == "" {
			l = "unspecified"
		}
		if counts[l] == 0 {
			levels = append(levels, l)
		}
		counts[l]++
	}
	by := make([]string, len(levels))
	for i, l := range levels {
		by[i] = fmt.Sprintf("%d %s", counts[l], printable(l))
	}
	return fmt.Sprintf("%d (%s; see -o json)", len(rv.Diagnostics), strings.Join(by, ", "))
}

// reviewDiff is what a re-import changes against the previous version.
type reviewDiff struct {
	BaseVersion uint32 `json:"base_version"`
	Operations  struct {
		Added, Removed, Changed []struct {
			Tool         string   `json:"tool"`
			Method       string   `json:"method"`
			Path         string   `json:"path"`
			Changes      []string `json:"changes"`
			PreviousTool string   `json:"previous_tool"`
		}
		Unchanged uint32 `json:"unchanged"`
	} `json:"operations"`
	Auth struct {
		Added, Removed, Changed []struct {
			Name    string   `json:"name"`
			Kind    string   `json:"kind"`
			Changes []string `json:"changes"`
		}
	} `json:"auth"`
	Hosts struct {
		Added, Removed []string
	} `json:"hosts"`
	Omitted uint32 `json:"omitted"`
}

// printDiff renders a re-import's changes: what the approver must look at.
func printDiff(w io.Writer, d *reviewDiff) {
	fmt.Fprintf(w, "\nChanges against version %d (%d tools unchanged):\n", d.BaseVersion, d.Operations.Unchanged)
	for _, op := range d.Operations.Added {
		fmt.Fprintf(w, "  + tool %s (%s)\n", printable(op.Tool), printable(op.Method+" "+op.Path))
	}
	for _, op := range d.Operations.Removed {
		fmt.Fprintf(w, "  - tool %s (%s)\n", printable(op.Tool), printable(op.Method+" "+op.Path))
	}
	for _, op := range d.Operations.Changed {
		name := printable(op.Tool)
		if op.PreviousTool != "" {
			name += " (was " + printable(op.PreviousTool) + ")"
		}
		fmt.Fprintf(w, "  ~ tool %s: %s changed\n", name, printable(strings.Join(op.Changes, ", ")))
	}
	for _, sc := range d.Auth.Added {
		fmt.Fprintf(w, "  + auth %s (%s)\n", printable(sc.Name), printable(sc.Kind))
	}
	for _, sc := range d.Auth.Removed {
		fmt.Fprintf(w, "  - auth %s (%s)\n", printable(sc.Name), printable(sc.Kind))
	}
	for _, sc := range d.Auth.Changed {
		fmt.Fprintf(w, "  ~ auth %s: %s changed\n", printable(sc.Name), printable(strings.Join(sc.Changes, ", ")))
	}
	for _, h := range d.Hosts.Added {
		fmt.Fprintf(w, "  + host %s\n", printable(h))
	}
	for _, h := range d.Hosts.Removed {
		fmt.Fprintf(w, "  - host %s\n", printable(h))
	}
	if d.Omitted > 0 {
		fmt.Fprintf(w, "  … and %d more (see -o json)\n", d.Omitted)
	}
	fmt.Fprintln(w, "  Agents keep the approved version until this one is approved.")
}
