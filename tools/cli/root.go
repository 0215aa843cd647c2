package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/tools/client"
)

// Output formats of -o.
const (
	outputText = "text"
	outputJSON = "json"
)

// usageTemplate is cobra's default, except that a command group (a command
// with subcommands) shows only "[command]" in its usage line.
const usageTemplate = `Usage:{{if and .Runnable (not .HasAvailableSubCommands)}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

func (r *run) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mcpgw",
		Short: "Operate an mcpgw gateway",
		Long: `mcpgw operates an mcpgw gateway through its operator API: import API
descriptions, approve and select their tools, store upstream secrets sealed
to the credential broker, bind them, grant tools to agents and users, issue
agent keys and query the audit trail.

The operator token is read from --token-file, MCPGW_TOKEN_FILE, MCPGW_TOKEN
or ./.mcpgw/admin.token, in that order; it is never a flag value and never
printed.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(flagError)
	groupCommand(root)

	pf := root.PersistentFlags()
	pf.StringVar(&r.tenant, "tenant", DefaultTenant, "tenant to operate on")
	pf.StringVar(&r.server, "server", DefaultServer, "base URL of the edge (env MCPGW_SERVER)")
	pf.StringVar(&r.tokenFile, "token-file", "", "file holding the operator token, mode 0600 (env MCPGW_TOKEN_FILE; default ./.mcpgw/admin.token when it exists)")
	pf.StringVarP(&r.output, "output", "o", outputText, "output format: text or json")

	root.AddCommand(
		r.importCommand(),
		r.mapAuthCommand(),
		r.inspectCommand(),
		r.approveCommand(),
		r.selectCommand(),
		r.secretCommand(),
		r.bindingCommand(),
		r.grantCommand(),
		r.agentCommand(),
		r.auditCommand(),
	)
	return root
}

// groupCommand makes cmd, a command with subcommands, show its help when
// called alone and refuse an unknown subcommand without echoing it (it may
// be a secret typed in the wrong place).
func groupCommand(cmd *cobra.Command) *cobra.Command {
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := "unknown command"
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			for i := range s {
				s[i] = cmd.CommandPath() + " " + s[i]
			}
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usagef(cmd, "%s", msg)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	return cmd
}

// flagError turns a flag parsing error into a usage error that names the
// flag but never the value given to it.
func flagError(cmd *cobra.Command, err error) error {
	var (
		notExist *pflag.NotExistError
		required *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
		syntax   *pflag.InvalidSyntaxError
	)
	switch {
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		if notExist.GetSpecifiedShortnames() != "" && name != "" {
			return usagef(cmd, "unknown flag -%c", []rune(name)[0])
		}
		if name == "token" {
			return usagef(cmd, "unknown flag --token: the token is never a flag value; use --token-file, MCPGW_TOKEN_FILE or MCPGW_TOKEN")
		}
		return usagef(cmd, "unknown flag --%s", name)
	case errors.As(err, &required):
		return usagef(cmd, "flag --%s needs a value", required.GetFlag().Name)
	case errors.As(err, &invalid):
		return usagef(cmd, "invalid value for --%s (want %s)", invalid.GetFlag().Name, invalid.GetFlag().Value.Type())
	case errors.As(err, &syntax):
		return usagef(cmd, "bad flag syntax")
	default:
		return usagef(cmd, "invalid flags")
	}
}

// exactArgs accepts exactly len(names) arguments, named in the error.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef(cmd, "want %d arguments (%s), got %d", len(names), strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// client returns an operator API client for the global options; brokerKey,
// when set, is the pinned key PutSecret seals to.
func (r *run) client(cmd *cobra.Command, brokerKey *seal.PublicKey) (*client.Client, error) {
	if err := r.checkOutput(cmd); err != nil {
		return nil, err
	}
	if r.tenant == "" {
		return nil, usagef(cmd, "--tenant must not be empty")
	}
	tok, err := r.token(cmd)
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{BaseURL: r.serverURL(cmd), Token: tok, HTTP: r.cfg.HTTP, BrokerKey: brokerKey})
	if err != nil {
		return nil, fmt.Errorf("%w (from --server or MCPGW_SERVER)", err)
	}
	return c, nil
}

// serverURL is --server, else MCPGW_SERVER, else the default, without a
// trailing slash.
func (r *run) serverURL(cmd *cobra.Command) string {
	s := r.server
	if !cmd.Flags().Changed("server") && r.cfg.Env.Server != "" {
		s = r.cfg.Env.Server
	}
	return strings.TrimRight(s, "/")
}

// checkOutput refuses an unknown -o before a command does any work.
func (r *run) checkOutput(cmd *cobra.Command) error {
	if r.output != outputText && r.output != outputJSON {
		return usagef(cmd, "output format must be text or json")
	}
	return nil
}
