package cli

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// maxSecret bounds a secret read from stdin, a prompt or a file.
const maxSecret = secret.MaxFileSize

// validName is the form of tenant and object IDs, secret names included.
var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

func (r *run) secretCommand() *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "secret",
		Short: "Store upstream secrets, sealed to the credential broker",
	})
	cmd.AddCommand(r.secretPutCommand())
	return cmd
}

func (r *run) secretPutCommand() *cobra.Command {
	var fromFile, keyFile string
	cmd := &cobra.Command{
		Use:   "put NAME [--from-file F]",
		Short: "Store an upstream secret and print its reference",
		Long: `Put stores an upstream secret (an API key, a token, "user:password" for
basic auth) under NAME and prints its secret reference, for
mcpgw binding create. Storing under an existing NAME adds a new version.

The secret is read from stdin when stdin is piped, from a prompt without
echo when stdin is a terminal, or from a file of mode 0600 or 0400 with
--from-file; never from an argument. One trailing line ending is removed.

The secret is sealed to the credential broker's public key before it is
sent, so the edge never sees it in clear. The key is pinned: the file
--broker-key-file (default ./.mcpgw/broker.seal.pub when present), else the
key the server offered the first time, kept per server in
$XDG_CONFIG_HOME/mcpgw/pins.json; a changed key is refused.`,
		Example: `  mcpgw secret put demo-messages-key < key.txt
  mcpgw secret put github-token                # prompts, without echo
  mcpgw secret put billing-basic --from-file ./billing.cred`,
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usagef(cmd, "want the secret's NAME")
			case len(args) > 1:
				return usagef(cmd, "a secret is never taken as an argument (it would stay in the shell history and the process list); pipe it on stdin, type it at the prompt, or use --from-file")
			case !validName.MatchString(args[0]):
				return usagef(cmd, "NAME must match ^[a-z0-9][a-z0-9_-]{0,63}$")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := r.checkOutput(cmd); err != nil {
				return err
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			v, err := r.readSecret(cmd, name, fromFile)
			if err != nil {
				return err
			}
			defer v.Wipe()
			r.keep(v)
			key, err := r.brokerKey(cmd.Context(), cmd, c, keyFile)
			if err != nil {
				return err
			}
			sealed, err := r.client(cmd, key)
			if err != nil {
				return err
			}
			ref, err := sealed.PutSecret(cmd.Context(), r.tenant, name, v)
			if err != nil {
				return fmt.Errorf("put secret: %w", err)
			}
			return r.emit(cmd, map[string]string{"secret_ref": ref}, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, printable(ref))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&fromFile, "from-file", "", "read the secret from this file (mode 0600 or 0400)")
	cmd.Flags().StringVar(&keyFile, "broker-key-file", "", "the broker's public sealing key (default ./.mcpgw/broker.seal.pub when present, else trust on first use)")
	return cmd
}

// readSecret reads the secret from --from-file, the terminal or stdin.
func (r *run) readSecret(cmd *cobra.Command, name, fromFile string) (secret.Value, error) {
	var (
		b   []byte
		err error
	)
	switch {
	case cmd.Flags().Changed("from-file"):
		if fromFile == "" {
			return secret.Value{}, usagef(cmd, "--from-file must not be empty")
		}
		v, err := secret.ReadFile(fromFile)
		if err != nil {
			return secret.Value{}, fmt.Errorf("secret file: %w", err)
		}
		b = v.Reveal()
		v.Wipe()
	case r.cfg.Terminal != nil:
		b, err = r.prompt(name)
		if err != nil {
			return secret.Value{}, err
		}
	default:
		b, err = io.ReadAll(io.LimitReader(r.cfg.Stdin, maxSecret+1))
		if err != nil {
			clear(b)
			return secret.Value{}, fmt.Errorf("read secret from stdin: %w", err)
		}
		if len(b) > maxSecret {
			clear(b)
			return secret.Value{}, fmt.Errorf("secret on stdin is larger than %d bytes", maxSecret)
		}
	}
	defer clear(b)
	b = trimLineEnding(b)
	if len(b) == 0 {
		return secret.Value{}, errors.New("the secret is empty (pipe it on stdin, type it at the prompt, or use --from-file)")
	}
	return secret.New(b), nil
}

// prompt asks for the secret twice on the terminal, without echo.
func (r *run) prompt(name string) ([]byte, error) {
	first, err := r.cfg.Terminal.ReadSecret(fmt.Sprintf("Secret for %s (input hidden): ", name))
	if err != nil {
		clear(first)
		return nil, fmt.Errorf("read secret from the terminal: %w", err)
	}
	again, err := r.cfg.Terminal.ReadSecret("Repeat it: ")
	defer clear(again)
	if err != nil {
		clear(first)
		return nil, fmt.Errorf("read secret from the terminal: %w", err)
	}
	if subtle.ConstantTimeCompare(first, again) != 1 {
		clear(first)
		return nil, errors.New("the two entries differ; nothing was stored")
	}
	return first, nil
}

// trimLineEnding removes one trailing "\n" or "\r\n".
func trimLineEnding(b []byte) []byte {
	if !bytes.HasSuffix(b, []byte("\n")) {
		return b
	}
	b = b[:len(b)-1]
	return bytes.TrimSuffix(b, []byte("\r"))
}

// terminal is a Terminal on a file descriptor.
type terminal struct {
	fd  int
	out io.Writer
}

// StdinTerminal returns a Terminal that prompts on out and reads from in
// without echo, or nil when in is not an interactive terminal.
func StdinTerminal(in *os.File, out io.Writer) Terminal {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		return nil
	}
	return &terminal{fd: fd, out: out}
}

// ReadSecret writes prompt to the terminal's output and reads a line
// without echo.
func (t *terminal) ReadSecret(prompt string) ([]byte, error) {
	fmt.Fprint(t.out, prompt)
	b, err := term.ReadPassword(t.fd)
	fmt.Fprintln(t.out)
	return b, err
}
