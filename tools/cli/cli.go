// Package cli is the mcpgw command line: the operator's commands over the
// operator API (/api/v1) of the edge, built on tools/client.
//
// A CLI runs one command line per call to [CLI.Run] and reports the outcome
// as an exit code: 0 on success, 1 when the command failed, 2 when the
// command line itself was wrong. Errors are written to stderr as one line
// each. Output is human-readable by default and JSON with `-o json`.
//
// Secrets never appear in any output of the CLI: the operator's token is read
// from a file or the environment (never from a flag), is sent only in the
// Authorization header, and is scrubbed from every error message; an upstream
// secret given to `secret put` is read from stdin, a terminal prompt without
// echo or a 0600 file (never from an argument) and is sealed to the
// credential broker's pinned public key before it leaves the process. The one
// exception is `agent key create`, whose output is the new key, shown once.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// Defaults of the global options.
const (
	// DefaultServer is the edge of the local stack.
	DefaultServer = "http://127.0.0.1:8080"
	// DefaultTenant is the local stack's demo tenant.
	DefaultTenant = "demo"
	// StateDir is the local stack's state directory, relative to the
	// working directory; the CLI finds its admin token and the broker's
	// public key there.
	StateDir = ".mcpgw"
	// AdminTokenFile is the name of the local stack's admin token file in
	// StateDir.
	AdminTokenFile = "admin.token"
	// BrokerKeyFile is the name of the broker's public sealing key file in
	// StateDir.
	BrokerKeyFile = "broker.seal.pub"
	// PinsFile is the name of the trust-on-first-use store of broker keys
	// in Config.ConfigDir.
	PinsFile = "pins.json"
)

// Exit codes of [CLI.Run].
const (
	// ExitOK: the command succeeded.
	ExitOK = 0
	// ExitError: the command failed (the server refused, a file could not
	// be read, the server could not be reached).
	ExitError = 1
	// ExitUsage: the command line was wrong; nothing was sent.
	ExitUsage = 2
)

// Env holds the settings main read from the environment. Nothing below main
// reads the environment.
type Env struct {
	// Server is MCPGW_SERVER: the edge's base URL when --server is not given.
	Server string
	// TokenFile is MCPGW_TOKEN_FILE: the token file when --token-file is not
	// given.
	TokenFile string
	// Token is MCPGW_TOKEN: the token itself, used when neither --token-file
	// nor MCPGW_TOKEN_FILE is set.
	Token secret.Value
}

// Terminal reads a secret from the operator's terminal without echoing it.
type Terminal interface {
	// ReadSecret writes prompt and reads one line, without echo and without
	// its line ending. The caller owns the bytes and clears them.
	ReadSecret(prompt string) ([]byte, error)
}

// Config configures a CLI.
type Config struct {
	// Stdin, Stdout and Stderr are required.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal is set when Stdin is an interactive terminal: `secret put`
	// then prompts for the secret on it. When nil, `secret put` reads the
	// secret from Stdin (piped).
	Terminal Terminal
	// Env holds the environment's settings.
	Env Env
	// WorkDir is where ./.mcpgw/ is looked for; it defaults to ".".
	WorkDir string
	// ConfigDir is the CLI's configuration directory ($XDG_CONFIG_HOME/mcpgw),
	// holding pins.json. When empty, trust on first use is unavailable and
	// `secret put` needs --broker-key-file (or ./.mcpgw/broker.seal.pub).
	ConfigDir string
	// HTTP is the HTTP client used to reach the edge; nil gives the client
	// package's default (60 s timeout, no redirects).
	HTTP *http.Client
	// Now defaults to time.Now; it stamps new pins.
	Now func() time.Time
}

// CLI runs mcpgw command lines. It is safe for concurrent use: each Run
// builds its own command tree.
type CLI struct {
	cfg Config
}

// New returns a CLI.
func New(cfg Config) (*CLI, error) {
	if cfg.Stdin == nil || cfg.Stdout == nil || cfg.Stderr == nil {
		return nil, errors.New("cli: stdin, stdout and stderr are required")
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = "."
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CLI{cfg: cfg}, nil
}

// Run runs one command line (without the program name) and returns its exit
// code. Output goes to Config.Stdout; errors go to Config.Stderr as one line,
// from which the token and any secret read during the run are scrubbed.
func (c *CLI) Run(ctx context.Context, args []string) int {
	r := &run{cli: c, cfg: c.cfg}
	root := r.rootCommand()
	root.SetArgs(args)
	root.SetIn(c.cfg.Stdin)
	root.SetOut(c.cfg.Stdout)
	root.SetErr(c.cfg.Stderr)
	err := root.ExecuteContext(ctx)
	defer r.wipe()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(c.cfg.Stderr, "mcpgw: "+r.errorLine(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitError
}

// run is the state of one Run: the global options and the secrets to scrub
// from errors.
type run struct {
	cli *CLI
	cfg Config

	tenant    string
	server    string
	tokenFile string
	output    string

	// scrub holds every secret this run read; errorLine removes them.
	scrub []secret.Value
}

// usageError is a mistake in the command line (exit code 2).
type usageError struct {
	msg  string
	path string
}

func (e *usageError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return fmt.Sprintf("%s (see %s --help)", e.msg, e.path)
}

func usagef(cmd *cobra.Command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), path: cmd.CommandPath()}
}

// errorLine renders err as one line with every known secret replaced.
func (r *run) errorLine(err error) string {
	msg := describe(err)
	for _, v := range r.scrub {
		msg = scrubSecret(msg, v)
	}
	return oneLine(msg)
}

// keep registers a copy of a secret, to be scrubbed from error messages
// even after the caller wiped v.
func (r *run) keep(v secret.Value) {
	if v.IsZero() {
		return
	}
	b := v.Reveal()
	r.scrub = append(r.scrub, secret.New(b))
	clear(b)
}

// wipe clears the copies kept for scrubbing.
func (r *run) wipe() {
	for _, v := range r.scrub {
		v.Wipe()
	}
	r.scrub = nil
}

// scrubSecret replaces v, and each of its lines of 4 bytes or more, in msg.
func scrubSecret(msg string, v secret.Value) string {
	b := v.Reveal()
	defer clear(b)
	if len(b) == 0 {
		return msg
	}
	msg = strings.ReplaceAll(msg, string(b), secret.Redacted)
	for _, part := range strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if len(part) >= 4 {
			msg = strings.ReplaceAll(msg, part, secret.Redacted)
		}
	}
	return msg
}

// oneLine folds a message onto one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	s = strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ").Replace(s)
	return printable(s)
}

// statePath returns a path inside ./.mcpgw/ of the working directory.
func (r *run) statePath(name string) string {
	return filepath.Join(r.cfg.WorkDir, StateDir, name)
}
