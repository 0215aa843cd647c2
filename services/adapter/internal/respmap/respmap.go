// Package respmap turns an upstream response into the MCP CallToolResult
// the edge returns to the client, and builds the tool-error results of the
// adapter's own refusals.
//
// Every credential form given is scrubbed from the body before it is
// mapped and from the encoded result again, so an upstream that echoes the
// credential (raw, base64, URL- or JSON-escaped) does not hand it to the
// agent. A result whose encoding exceeds the cap becomes an isError result.
// The package does no I/O.
package respmap

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Redacted replaces every scrubbed credential form.
const Redacted = "[redacted]"

// DefaultMaxResultBytes is the default cap on an encoded result: below the
// NATS maximum payload (1 MiB) with room for the reply envelope.
const DefaultMaxResultBytes = 900 << 10

// Result is an MCP CallToolResult.
type Result struct {
	Content           []Content      `json:"content"`
	StructuredContent map[string]any `json:"structuredContent,omitempty"`
	IsError           bool           `json:"isError"`
}

// Content is one MCP content block.
type Content struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Mapped is an encoded result with what audit needs to know about it.
type Mapped struct {
	JSON []byte
	// IsError is the result's isError.
	IsError bool
	// TooLarge: the result exceeded the cap and was replaced.
	TooLarge bool
	// Scrubbed: a credential form was found and removed.
	Scrubbed bool
}

// Scrub replaces every occurrence of every form in b with Redacted and
// reports whether it replaced any. It returns b itself when nothing
// matched.
func Scrub(b []byte, forms [][]byte) ([]byte, bool) {
	found := false
	for _, f := range forms {
		if len(f) == 0 || !bytes.Contains(b, f) {
			continue
		}
		b = bytes.ReplaceAll(b, f, []byte(Redacted))
		found = true
	}
	return b, found
}

// Response maps an upstream status and body: the (scrubbed) body as text
// content, as structuredContent when it is a JSON object, and isError when
// the status is 400 or above. maxBytes caps the encoded result (0 means
// DefaultMaxResultBytes).
func Response(status int, body []byte, forms [][]byte, maxBytes int) Mapped {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxResultBytes
	}
	body, scrubbed := Scrub(bytes.Clone(body), forms)
	r := Result{IsError: status >= 400}
	text := ""
	switch {
	case len(body) == 0:
		text = fmt.Sprintf("upstream answered HTTP %d with an empty body", status)
	case !utf8.Valid(body):
		text = fmt.Sprintf("upstream answered HTTP %d with %d bytes of binary content", status, len(body))
	default:
		text = string(body)
		if r.IsError {
			text = fmt.Sprintf("upstream answered HTTP %d: %s", status, body)
		}
		var obj map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if dec.Decode(&obj) == nil && obj != nil && !dec.More() {
			r.StructuredContent = obj
		}
	}
	r.Content = []Content{{Type: "text", Text: text}}
	out, err := encode(r)
	if err != nil {
		return Mapped{JSON: ErrorResult("upstream response cannot be encoded as a tool result"), IsError: true}
	}
	out, again := Scrub(out, forms)
	m := Mapped{JSON: out, IsError: r.IsError, Scrubbed: scrubbed || again}
	if len(out) > maxBytes {
		return Mapped{
			JSON:     ErrorResult(fmt.Sprintf("result too large: the upstream response maps to %d bytes, over the %d-byte limit", len(out), maxBytes)),
			IsError:  true,
			TooLarge: true,
			Scrubbed: m.Scrubbed,
		}
	}
	return m
}

// ErrorResult is an isError result with one text content: how refusals
// after the policy gate, and failures, reach the caller so a model can
// correct itself. msg must be safe to show (no secret, no URL).
func ErrorResult(msg string) []byte {
	out, err := encode(Result{Content: []Content{{Type: "text", Text: msg}}, IsError: true})
	if err != nil {
		return []byte(`{"content":[{"type":"text","text":"error"}],"isError":true}`)
	}
	return out
}

func encode(r Result) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
