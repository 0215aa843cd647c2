// Package flagenv is how every mcpgw service reads its configuration: each
// flag -some-name falls back to the environment variable MCPGW_SOME_NAME, a
// flag given on the command line wins, and MCPGW_ENV=production turns on
// production mode. It also registers the flags every service shares and
// builds the service's logger from them. Secrets never come from here: the
// flags name 0600 files.
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Prefix starts every environment variable that backs a flag.
const Prefix = "MCPGW_"

// EnvName returns the environment variable backing a flag:
// "nats-url" → "MCPGW_NATS_URL".
func EnvName(flagName string) string {
	return Prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Lookup reads an environment variable (os.LookupEnv in main).
type Lookup func(name string) (string, bool)

// Parse sets every flag of fs from its environment variable when that is
// set, then parses args (so the command line wins), and refuses positional
// arguments. An unparsable environment value is an error naming the
// variable, never its value.
func Parse(fs *flag.FlagSet, args []string, lookup Lookup) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvName(f.Name)
		if v, ok := lookup(name); ok && v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: invalid value for -%s", name, f.Name)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}

// Common holds the flags every service takes.
type Common struct {
	NATSURL          string
	NATSPasswordFile string
	IdentityFile     string
	KeyringFile      string
	LogLevel         string
	LogFormat        string
	Production       bool
}

// Register defines the common flags on fs. production is the default of
// -production (use Production(lookup) so MCPGW_ENV=production counts).
func (c *Common) Register(fs *flag.FlagSet, service string, production bool) {
	fs.StringVar(&c.NATSURL, "nats-url", "nats://127.0.0.1:4222", "NATS server URL")
	fs.StringVar(&c.NATSPasswordFile, "nats-password-file", "", "0600 file holding the "+service+" NATS user's password")
	fs.StringVar(&c.IdentityFile, "identity-file", "", "0600 file holding the "+service+" Ed25519 signing seed")
	fs.StringVar(&c.KeyringFile, "keyring-file", "", "JSON file with every service's public signing and sealing keys")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&c.Production, "production", production, "production mode (also MCPGW_ENV=production): refuse settings that only suit a laptop")
}

// Production reports whether MCPGW_ENV says production.
func Production(lookup Lookup) bool {
	v, _ := lookup(Prefix + "ENV")
	return v == "production"
}

// Logger builds the service's logger on w from -log-level and -log-format,
// with a "service" attribute.
func (c *Common) Logger(w io.Writer, service string) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, errors.New("-log-level must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch c.LogFormat {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, errors.New("-log-format must be text or json")
	}
	return slog.New(h).With("service", service), nil
}
