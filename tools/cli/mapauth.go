package cli

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/tools/client"
)

func (r *run) mapAuthCommand() *cobra.Command {
	var m client.AuthMapping
	cmd := &cobra.Command{
		Use:   "map-auth SOURCE_ID SCHEME --kind K [--in I] [--param P]",
		Short: "Map an auth requirement no binding strategy serves (proposes a new version)",
		Long: `Map-auth gives an auth scheme of a source a kind that a binding strategy
serves: a scheme whose kind is unknown, or one no strategy serves yet
(an inferred request signature, for example), blocks its tools until it is
mapped. SCHEME is a declared scheme's name (shown in brackets in the
review), or "inferred:<in>:<param>" for a credential parameter the import
inferred (inferred:header:X-Sig).

--kind is apiKey, http-bearer or http-basic. An apiKey needs --in (header,
query or cookie) and --param (the parameter that carries it); bearer and
basic go in the Authorization header. The requirement stays supplied by
the gateway, never by the caller.

The server proposes the mapping as a new version of the source and prints
its review like an import. Nothing changes for agents until that version is
approved (mcpgw approve).`,
		Example: `  mcpgw map-auth src_1234 inferred:header:X-Sig --kind apiKey --in header --param X-Sig
  mcpgw map-auth src_1234 partnerAuth --kind http-bearer`,
		Args: exactArgs("SOURCE_ID", "SCHEME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if m.Kind == "" {
				return usagef(cmd, "--kind is required")
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			res, err := c.MapAuth(cmd.Context(), r.tenant, args[0], args[1], m)
			if err != nil {
				return fmt.Errorf("map-auth: %w", err)
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
				fmt.Fprintf(w, "Mapped auth scheme %s of source %s: proposed version %d\n", printable(args[1]), printable(res.SourceID), res.Version)
				return printReviewBody(w, res.SourceID, res.Version, res.Review)
			})
		},
	}
	cmd.Flags().StringVar(&m.Kind, "kind", "", "kind the scheme maps to: apiKey, http-bearer or http-basic (required)")
	cmd.Flags().StringVar(&m.In, "in", "", "where an apiKey goes: header, query or cookie")
	cmd.Flags().StringVar(&m.Param, "param", "", "parameter that carries an apiKey")
	return cmd
}
