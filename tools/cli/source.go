package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func (r *run) approveCommand() *cobra.Command {
	var hosts, prefixes []string
	cmd := &cobra.Command{
		Use:   "approve SOURCE_ID VERSION [--allow-host H]... [--allow-prefix P]...",
		Short: "Approve a source version and confirm its host allowlist",
		Long: `Approve approves a version of a source: the gateway will run exactly the
tools, operations and auth requirements that version's review showed, and
only against the allowed hosts.

--allow-host (repeatable) confirms the upstream hosts (host or host:port);
without it, the hosts the import proposed are allowed. --allow-prefix
(repeatable, CIDR) allows addresses in private, loopback or link-local
ranges, which are refused unless allowlisted.`,
		Example: `  mcpgw approve src_1234 1
  mcpgw approve src_1234 2 --allow-host api.example.com --allow-host 127.0.0.1:9000 --allow-prefix 127.0.0.1/32`,
		Args: exactArgs("SOURCE_ID", "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := strconv.ParseUint(args[1], 10, 32)
			if err != nil || v == 0 {
				return usagef(cmd, "VERSION must be a positive integer")
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			res, err := c.Approve(cmd.Context(), r.tenant, args[0], uint32(v), hosts, prefixes)
			if err != nil {
				return fmt.Errorf("approve: %w", err)
			}
			return r.emit(cmd, res, func(w io.Writer) error {
				fmt.Fprintf(w, "Approved version %d of source %s.\n", v, printable(args[0]))
				if len(hosts) == 0 {
					fmt.Fprintln(w, "Allowed hosts: those the import proposed.")
				} else {
					fmt.Fprintf(w, "Allowed hosts: %s\n", printable(strings.Join(hosts, ", ")))
				}
				if len(prefixes) > 0 {
					fmt.Fprintf(w, "Allowed address prefixes: %s\n", printable(strings.Join(prefixes, ", ")))
				}
				_, err := fmt.Fprintf(w, "Next: mcpgw select %s TOOL...\n", printable(args[0]))
				return err
			})
		},
	}
	cmd.Flags().StringArrayVar(&hosts, "allow-host", nil, "allowed upstream host[:port] (repeatable)")
	cmd.Flags().StringArrayVar(&prefixes, "allow-prefix", nil, "allowed address prefix in CIDR notation (repeatable)")
	return cmd
}

func (r *run) selectCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "select SOURCE_ID TOOL...",
		Short: "Set the enabled tools of a source",
		Long: `Select sets the tools of a source that agents may be granted: exactly the
tools named, replacing the previous selection.`,
		Example: `  mcpgw select src_1234 send_message list_messages`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usagef(cmd, "want SOURCE_ID and at least one TOOL")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			tools := args[1:]
			res, err := c.Select(cmd.Context(), r.tenant, args[0], tools)
			if err != nil {
				return fmt.Errorf("select: %w", err)
			}
			return r.emit(cmd, res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Selected %d tool(s) of source %s: %s\n", len(tools), printable(args[0]), printable(strings.Join(tools, ", ")))
				return err
			})
		},
	}
	return cmd
}
