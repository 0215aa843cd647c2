package gate

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// maxSchemaErrors bounds the problems one message lists.
const maxSchemaErrors = 5

// schemas compiles input schemas once per (tenant, tool, digest) and keeps
// them, up to a bound, for later calls. It is safe for concurrent use.
type schemas struct {
	mu    sync.Mutex
	max   int
	cache map[string]*jsonschema.Schema
	print *message.Printer
}

func newSchemas(max int) *schemas {
	return &schemas{max: max, cache: map[string]*jsonschema.Schema{}, print: message.NewPrinter(language.English)}
}

// get returns the compiled schema of raw under key, compiling it when
// needed. No $ref may leave the schema: every loader is refused.
func (s *schemas) get(tenant, tool string, digest []byte, raw []byte) (*jsonschema.Schema, error) {
	key := tenant + "\x00" + tool + "\x00" + hex.EncodeToString(digest)
	s.mu.Lock()
	sch, ok := s.cache[key]
	s.mu.Unlock()
	if ok {
		return sch, nil
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = []byte(`{"type":"object"}`)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("decode input schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(jsonschema.SchemeURLLoader{})
	loc := "mem:///" + hex.EncodeToString(digest) + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("add input schema: %w", err)
	}
	sch, err = c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("compile input schema: %w", err)
	}
	s.mu.Lock()
	if len(s.cache) >= s.max {
		clear(s.cache)
	}
	s.cache[key] = sch
	s.mu.Unlock()
	return sch, nil
}

// problems lists the leaf validation errors of err as "location: problem"
// without repeating any argument value, and the first failing location.
func (s *schemas) problems(err error) (msg, first string) {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "arguments do not match the input schema", ""
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= maxSchemaErrors {
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		loc := pointer(e.InstanceLocation)
		if first == "" {
			first = loc
		}
		out = append(out, fmt.Sprintf("%s: %s", quoteLoc(loc), s.describe(e.ErrorKind)))
	}
	walk(ve)
	if len(out) == 0 {
		return "arguments do not match the input schema", ""
	}
	return "invalid arguments: " + strings.Join(out, "; "), first
}

// describe renders one problem; kinds whose library message would repeat
// the argument's value get a message of their own.
func (s *schemas) describe(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Pattern:
		return fmt.Sprintf("does not match the pattern %q", k.Want)
	case *kind.Format:
		return fmt.Sprintf("is not a valid %s", k.Want)
	case *kind.ContentEncoding:
		return fmt.Sprintf("is not %s encoded", k.Want)
	case *kind.ContentMediaType:
		return fmt.Sprintf("is not of media type %s", k.Want)
	case *kind.Enum, *kind.Const:
		// Schema values only; safe.
	}
	return k.LocalizedString(s.print)
}

func pointer(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

func quoteLoc(loc string) string {
	if loc == "" {
		return "arguments"
	}
	if len(loc) > 96 {
		loc = loc[:96] + "…"
	}
	return fmt.Sprintf("argument %q", loc)
}
