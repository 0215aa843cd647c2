package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/tools/client"
)

// keyNotice follows a new agent key in the human output.
const keyNotice = "This key is shown only this once and cannot be retrieved again: store it now (for example in a file of mode 0600)."

func (r *run) agentCommand() *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "agent",
		Short: "Manage agents' keys",
	})
	key := groupCommand(&cobra.Command{
		Use:   "key",
		Short: "Issue and revoke agent keys",
	})
	key.AddCommand(r.agentKeyCreateCommand(), r.agentKeyRevokeCommand())
	cmd.AddCommand(key)
	return cmd
}

func (r *run) agentKeyCreateCommand() *cobra.Command {
	var (
		req       client.AgentKeyRequest
		expiresIn string
	)
	cmd := &cobra.Command{
		Use:   "create AGENT [--user U] [--environment E] [--surface S] [--expires-in DURATION]",
		Short: "Issue an agent key (shown once)",
		Long: `Create issues a key for AGENT, which the agent sends as
"Authorization: Bearer <key>" to the gateway's MCP endpoint. The attributes
given here (acting user, environment, client surface, workload, expiry) are
verified attributes of every call made with the key.

The key is printed once and cannot be retrieved again; the gateway keeps
only its hash and prefix. --expires-in takes a Go duration (90m, 12h) or a
number of days (30d).`,
		Example: `  mcpgw agent key create demo-agent --user demo-user --environment dev --surface mcp --expires-in 30d
  mcpgw agent key create ci-bot --surface ci -o json > key.json`,
		Args: exactArgs("AGENT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if expiresIn != "" {
				d, err := parseDuration(expiresIn)
				if err != nil || d < time.Second {
					return usagef(cmd, "--expires-in must be a duration of at least 1s, such as 90m, 12h or 30d")
				}
				req.ExpiresInSeconds = int64(d / time.Second)
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			k, err := c.CreateAgentKey(cmd.Context(), r.tenant, args[0], req)
			if err != nil {
				return fmt.Errorf("create agent key: %w", err)
			}
			defer k.Key.Wipe()
			plain := k.Key.Reveal()
			defer clear(plain)
			out := struct {
				Agent  string `json:"agent"`
				KeyID  string `json:"key_id"`
				Prefix string `json:"prefix"`
				Key    string `json:"key"`
			}{args[0], k.KeyID, k.Prefix, string(plain)}
			return r.emit(cmd, out, func(w io.Writer) error {
				fmt.Fprintf(w, "Agent key for %s (key ID %s, prefix %s):\n\n", printable(args[0]), printable(k.KeyID), printable(k.Prefix))
				fmt.Fprintf(w, "  %s\n\n", printable(string(plain)))
				_, err := fmt.Fprintln(w, keyNotice)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.User, "user", "", "user the agent acts for")
	f.StringVar(&req.Environment, "environment", "", "deployment environment the key is for")
	f.StringVar(&req.Surface, "surface", "", "client surface the key is issued for (e.g. mcp, ci)")
	f.StringVar(&req.Workload, "workload", "", "workload the agent runs as")
	f.StringVar(&expiresIn, "expires-in", "", "lifetime of the key, e.g. 12h or 30d (default: the server's)")
	return cmd
}

// maxDays bounds --expires-in in days, far below time.Duration's range.
const maxDays = 36500

// parseDuration parses a Go duration or a whole number of days ("30d").
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("parse days: %w", err)
		}
		if n < 0 || n > maxDays {
			return 0, fmt.Errorf("days out of range 0..%d", maxDays)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func (r *run) agentKeyRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke AGENT KEY_ID",
		Short: "Revoke an agent key",
		Long: `Revoke revokes one key of an agent: calls made with it are refused from
then on, including by services holding a context issued before.`,
		Example: `  mcpgw agent key revoke demo-agent key_1234`,
		Args:    exactArgs("AGENT", "KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			if err := c.RevokeAgentKey(cmd.Context(), r.tenant, args[0], args[1]); err != nil {
				return fmt.Errorf("revoke agent key: %w", err)
			}
			return r.emit(cmd, map[string]any{"agent": args[0], "key_id": args[1], "revoked": true}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Revoked key %s of agent %s.\n", printable(args[1]), printable(args[0]))
				return err
			})
		},
	}
}
