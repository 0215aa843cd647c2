package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/tools/client"
)

// Binding strategies the CLI creates.
var strategies = []string{"api_key", "bearer", "basic"}

func (r *run) bindingCommand() *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "binding",
		Short: "Manage credential bindings",
	})
	cmd.AddCommand(r.bindingCreateCommand(), r.bindingSlotsCommand())
	return cmd
}

func (r *run) bindingSlotsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "slots SOURCE_ID",
		Short: "Show what must be bound before a source's tools can run",
		Long: `Slots lists, for the source's approved version (or its latest version before
any approval), every upstream auth scheme its tools require: the kind and
placement the import detected, the tools that need it, the binding strategy
that can fill it, and the bindings that do. A slot no strategy serves yet, or
whose auth was not understood, blocks its tools.`,
		Example: `  mcpgw binding slots src_1234`,
		Args:    exactArgs("SOURCE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			res, err := c.Slots(cmd.Context(), r.tenant, args[0])
			if err != nil {
				return fmt.Errorf("binding slots: %w", err)
			}
			return r.emit(cmd, res, func(w io.Writer) error {
				state := "latest, not approved"
				if res.Approved {
					state = "approved"
				}
				fmt.Fprintf(w, "Source %s version %d (%s):\n", printable(args[0]), res.Version, state)
				t := newTable(w, "SCHEME", "KIND", "PLACEMENT", "STRATEGY", "TOOLS", "BOUND")
				for _, s := range res.Slots {
					bound := "-"
					if len(s.Bindings) > 0 {
						var ids []string
						for _, b := range s.Bindings {
							id := b.BindingID
							if b.Environment != "" {
								id += " (" + b.Environment + ")"
							}
							ids = append(ids, id)
						}
						bound = strings.Join(ids, ", ")
					} else if s.BlockedReason != "" {
						bound = "blocked: " + s.BlockedReason
					}
					t.row(printable(s.Scheme), printable(s.Kind), orDash(strings.TrimSpace(s.In+" "+s.Param)), orDash(s.Strategy),
						printable(strings.Join(s.Tools, ", ")), printable(bound))
				}
				return t.flush()
			})
		},
	}
}

func (r *run) bindingCreateCommand() *cobra.Command {
	var b client.Binding
	cmd := &cobra.Command{
		Use:   "create --name N --strategy api_key|bearer|basic --secret-ref REF --host H... --source-id S --scheme NAME",
		Short: "Bind a stored secret to a source's auth scheme",
		Long: `Create binds a stored secret (its reference, from mcpgw secret put) to an
auth scheme of a source. The gateway injects the credential only into
requests to the hosts listed with --host (repeatable), which you confirm
here; the agent never sees it.

Strategies and their placement:
  api_key  --in header|query (default header) and --param NAME (required):
           the secret is sent as that header or query parameter.
  bearer   the secret is sent as "Authorization: Bearer <secret>";
           --param names another header.
  basic    the secret holds "user:password", sent as HTTP basic auth.

--environment limits the binding to callers in that deployment environment.`,
		Example: `  mcpgw binding create --name messages-key --strategy api_key --in header --param X-API-Key \
    --secret-ref local://demo/demo-messages-key#v1 --host api.example.com \
    --source-id src_1234 --scheme ApiKeyAuth`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct{ flag, val string }{
				{"name", b.Name}, {"strategy", b.Strategy}, {"secret-ref", b.SecretRef}, {"source-id", b.SourceID}, {"scheme", b.Scheme},
			} {
				if f.val == "" {
					return usagef(cmd, "--%s is required", f.flag)
				}
			}
			if len(b.Hosts) == 0 {
				return usagef(cmd, "at least one --host is required")
			}
			switch b.Strategy {
			case "api_key":
				if b.Placement.In == "" {
					b.Placement.In = "header"
				}
				if b.Placement.In != "header" && b.Placement.In != "query" {
					return usagef(cmd, "--in must be header or query")
				}
				if b.Placement.Name == "" {
					return usagef(cmd, "--param is required for api_key")
				}
			case "bearer", "basic":
				if b.Placement.In != "" && b.Placement.In != "header" {
					return usagef(cmd, "--in must be header for %s", b.Strategy)
				}
			default:
				return usagef(cmd, "--strategy must be one of %s", strings.Join(strategies, ", "))
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			id, err := c.CreateBinding(cmd.Context(), r.tenant, b)
			if err != nil {
				return fmt.Errorf("create binding: %w", err)
			}
			return r.emit(cmd, map[string]string{"binding_id": id}, func(w io.Writer) error {
				fmt.Fprintf(w, "Created binding %s (%s", printable(id), b.Strategy)
				if b.Placement.In != "" || b.Placement.Name != "" {
					fmt.Fprintf(w, ", %s", strings.TrimSpace(printable(b.Placement.In+" "+b.Placement.Name)))
				}
				fmt.Fprintf(w, ") for hosts %s", printable(strings.Join(b.Hosts, ", ")))
				if b.Environment != "" {
					fmt.Fprintf(w, " in environment %s", printable(b.Environment))
				}
				_, err := fmt.Fprintln(w, ".")
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&b.Name, "name", "", "name of the binding (required)")
	f.StringVar(&b.Strategy, "strategy", "", "auth strategy: api_key, bearer or basic (required)")
	f.StringVar(&b.SecretRef, "secret-ref", "", "reference of the stored secret, from mcpgw secret put (required)")
	f.StringArrayVar(&b.Hosts, "host", nil, "upstream host[:port] the credential may be sent to (repeatable, required)")
	f.StringVar(&b.SourceID, "source-id", "", "source whose auth scheme this binding serves (required)")
	f.StringVar(&b.Scheme, "scheme", "", "name of the source's security scheme (required)")
	f.StringVar(&b.Placement.In, "in", "", "where the credential goes: header or query (api_key; default header)")
	f.StringVar(&b.Placement.Name, "param", "", "header or query parameter name (required for api_key)")
	f.StringVar(&b.Environment, "environment", "", "deployment environment the binding serves (default: any)")
	return cmd
}
