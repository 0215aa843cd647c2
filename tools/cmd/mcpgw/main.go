// Command mcpgw is the operator's command line for an mcpgw gateway; see
// docs/cli.md. It reads its environment here and runs package cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/tools/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	configDir := ""
	if d, err := os.UserConfigDir(); err == nil {
		configDir = filepath.Join(d, "mcpgw")
	}
	c, err := cli.New(cli.Config{
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Terminal: cli.StdinTerminal(os.Stdin, os.Stderr),
		Env: cli.Env{
			Server:    os.Getenv("MCPGW_SERVER"),
			TokenFile: os.Getenv("MCPGW_TOKEN_FILE"),
			Token:     secret.New([]byte(os.Getenv("MCPGW_TOKEN"))),
		},
		ConfigDir: configDir,
	})
	if err != nil {
		os.Stderr.WriteString("mcpgw: " + err.Error() + "\n")
		os.Exit(cli.ExitError)
	}
	code := c.Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
