package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/tools/client"
)

// printJSON writes v as indented JSON and a newline.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// emit writes v as JSON with -o json, else calls text.
func (r *run) emit(cmd *cobra.Command, v any, text func(w io.Writer) error) error {
	if r.output == outputJSON {
		return printJSON(cmd.OutOrStdout(), v)
	}
	return text(cmd.OutOrStdout())
}

// printable escapes control characters, invalid UTF-8 and bidirectional
// controls, so that text from a server or a description cannot move the
// cursor or reorder what the terminal shows.
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteByte(' ')
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// orDash returns s made printable, or "-" when s is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return printable(s)
}

// table writes aligned columns.
type table struct {
	tw *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row writes one row; cells are already printable.
func (t *table) row(cells ...string) { fmt.Fprintln(t.tw, strings.Join(cells, "\t")) }

func (t *table) flush() error { return t.tw.Flush() }

// describe renders an error for the operator, with a hint where one helps.
func describe(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		code := ae.Code
		if code == "" {
			code = strings.ToLower(strings.ReplaceAll(http.StatusText(ae.Status), " ", "_"))
		}
		msg := fmt.Sprintf("server refused (%d %s): %s", ae.Status, code, ae.Message)
		switch ae.Status {
		case http.StatusUnauthorized:
			msg += " (check the operator token: --token-file, MCPGW_TOKEN_FILE or MCPGW_TOKEN)"
		case http.StatusForbidden:
			msg += " (the token's operator may not do this in this tenant)"
		}
		return msg
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return err.Error() + " (is the edge running? start the local stack with make run, or pass --server)"
	}
	return err.Error()
}
