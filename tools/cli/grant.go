package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func (r *run) grantCommand() *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "grant",
		Short: "Grant tools to agents and users, or revoke grants",
	})
	cmd.AddCommand(r.grantAddCommand(), r.grantRevokeCommand())
	return cmd
}

func (r *run) grantAddCommand() *cobra.Command {
	var agent, user string
	cmd := &cobra.Command{
		Use:   "add TOOL (--agent ID | --user ID)",
		Short: "Let an agent or a user invoke a tool",
		Long: `Add lets one agent (--agent) or one user (--user) see and invoke a tool,
and prints the grant's ID.`,
		Example: `  mcpgw grant add send_message --agent demo-agent
  mcpgw grant add list_messages --user alice`,
		Args: exactArgs("TOOL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			subjectType, subjectID := "agent", agent
			switch {
			case agent != "" && user != "":
				return usagef(cmd, "give either --agent or --user, not both")
			case user != "":
				subjectType, subjectID = "user", user
			case agent == "":
				return usagef(cmd, "--agent or --user is required")
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			id, err := c.AddGrant(cmd.Context(), r.tenant, args[0], subjectType, subjectID)
			if err != nil {
				return fmt.Errorf("add grant: %w", err)
			}
			return r.emit(cmd, map[string]string{"grant_id": id}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Granted %s to %s %s: grant %s\n", printable(args[0]), subjectType, printable(subjectID), printable(id))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&agent, "agent", "", "ID of the agent to grant the tool to")
	cmd.Flags().StringVar(&user, "user", "", "ID of the user to grant the tool to")
	return cmd
}

func (r *run) grantRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "revoke GRANT_ID",
		Short:   "Revoke a grant",
		Long:    `Revoke removes a grant: its agent or user can no longer see or invoke the tool.`,
		Example: `  mcpgw grant revoke grt_1234`,
		Args:    exactArgs("GRANT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			if err := c.RevokeGrant(cmd.Context(), r.tenant, args[0]); err != nil {
				return fmt.Errorf("revoke grant: %w", err)
			}
			return r.emit(cmd, map[string]any{"grant_id": args[0], "revoked": true}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Revoked grant %s.\n", printable(args[0]))
				return err
			})
		},
	}
}
