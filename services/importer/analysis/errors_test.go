package analysis_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

func TestRefusals(t *testing.T) {
	billionLaughs := "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\n" +
		"x-a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f", "g", "h", "i"} {
		billionLaughs += "x-" + name + ": &" + name + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+", ", 9), ", ") + "]\n"
		prev = name
	}
	deepJSON := `{"openapi":"3.0.0","info":{"title":"t","version":"1"},"paths":{},"x":` + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "}"
	deepYAML := "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\nx: " + strings.Repeat("[", 300) + strings.Repeat("]", 300) + "\n"

	tests := []struct {
		name     string
		doc      string
		opts     analysis.Options
		sentinel error
		check    func(t *testing.T, err error)
	}{
		{
			name:     "json syntax error has line and column",
			doc:      "{\n  \"openapi\": \"3.0.0\",\n  \"info\": {,}\n}",
			sentinel: analysis.ErrSyntax,
			check: func(t *testing.T, err error) {
				var se *analysis.SyntaxError
				if !errors.As(err, &se) || se.Line != 3 || se.Column == 0 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "yaml syntax error has a line",
			doc:      "openapi: 3.0.0\ninfo:\n  title: t\n version: 1\n  - x\n",
			sentinel: analysis.ErrSyntax,
			check: func(t *testing.T, err error) {
				var se *analysis.SyntaxError
				if !errors.As(err, &se) || se.Line == 0 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{name: "empty document", doc: " \n", sentinel: analysis.ErrSyntax},
		{
			name:     "wrong type has a pointer and line",
			doc:      "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      parameters: nope\n      responses: {}\n",
			sentinel: analysis.ErrInvalid,
			check: func(t *testing.T, err error) {
				var ie *analysis.InvalidError
				if !errors.As(err, &ie) || ie.Pointer != "/paths/~1a/get/parameters" || ie.Line != 6 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "unresolvable reference has the referring pointer (json)",
			doc:      `{"openapi":"3.0.0","info":{"title":"t","version":"1"},"paths":{"/a":{"get":{"parameters":[{"$ref":"#/components/parameters/nope"}],"responses":{}}}}}`,
			sentinel: analysis.ErrInvalid,
			check: func(t *testing.T, err error) {
				var ie *analysis.InvalidError
				if !errors.As(err, &ie) || ie.Pointer != "/paths/~1a/get/parameters/0" || ie.Line != 1 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "unresolvable reference has the referring pointer (yaml)",
			doc:      "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    get:\n      responses:\n        '200':\n          description: x\n          content:\n            application/json:\n              schema: {$ref: '#/components/schemas/Nope'}\n",
			sentinel: analysis.ErrInvalid,
			check: func(t *testing.T, err error) {
				var ie *analysis.InvalidError
				if !errors.As(err, &ie) || ie.Pointer != "/paths/~1a/get/responses/200/content/application~1json/schema" || ie.Line != 11 {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "external reference refused, never fetched",
			doc:      "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n    A: {$ref: 'http://127.0.0.1:1/other.yaml#/A'}\n",
			sentinel: analysis.ErrInvalid,
			check: func(t *testing.T, err error) {
				var ie *analysis.InvalidError
				if !errors.As(err, &ie) || ie.Pointer != "/components/schemas/A" || !strings.Contains(ie.Msg, "not allowed") {
					t.Errorf("err = %#v", err)
				}
			},
		},
		{
			name:     "file reference refused",
			doc:      "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n    A: {$ref: '/etc/passwd'}\n",
			sentinel: analysis.ErrInvalid,
		},
		{
			name:     "document too large",
			doc:      doc30("paths: {}\n"),
			opts:     analysis.Options{MaxDocumentBytes: 10},
			sentinel: analysis.ErrLimit,
		},
		{
			name:     "yaml alias bomb",
			doc:      billionLaughs,
			sentinel: analysis.ErrLimit,
		},
		{
			name:     "yaml alias cycle",
			doc:      "openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\nx-a: &a {p: *a}\n",
			sentinel: analysis.ErrSyntax,
		},
		{name: "deep json", doc: deepJSON, sentinel: analysis.ErrLimit},
		{name: "deep invalid json", doc: strings.Repeat("[", 20000), sentinel: analysis.ErrLimit},
		{name: "deep yaml", doc: deepYAML, sentinel: analysis.ErrLimit},
		{
			name:     "swagger 3.0",
			doc:      `{"swagger":"3.0","info":{"title":"t","version":"1"},"paths":{}}`,
			sentinel: analysis.ErrUnsupportedFormat,
			check:    wantFormat("swagger3"),
		},
		{
			name:     "postman 1.0",
			doc:      `{"info":{"name":"c","schema":"https://schema.getpostman.com/json/collection/v1.0.0/collection.json"},"item":[]}`,
			sentinel: analysis.ErrUnsupportedFormat,
			check:    wantFormat(analysis.FormatPostman10),
		},
		{
			name:     "asyncapi",
			doc:      "asyncapi: 2.6.0\ninfo: {title: t, version: '1'}\n",
			sentinel: analysis.ErrUnsupportedFormat,
			check:    wantFormat(analysis.FormatAsyncAPI),
		},
		{
			name:     "openapi 3.3",
			doc:      "openapi: 3.3.0\ninfo: {title: t, version: '1'}\n",
			sentinel: analysis.ErrUnsupportedFormat,
			check:    wantFormat("openapi3.3"),
		},
		{
			name:     "not a description",
			doc:      "[1, 2, 3]",
			sentinel: analysis.ErrUnsupportedFormat,
			check:    wantFormat(analysis.FormatUnknown),
		},
		{
			name:     "yaml scalar",
			doc:      "hello",
			sentinel: analysis.ErrUnsupportedFormat,
			check:    wantFormat(analysis.FormatUnknown),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := analysis.Analyze([]byte(tt.doc), tt.opts)
			if err == nil {
				t.Fatalf("no error; result has %d operations", len(res.Operations))
			}
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v (%T), want %v", err, err, tt.sentinel)
			}
			if err.Error() == "" {
				t.Error("empty message")
			}
			if tt.check != nil {
				tt.check(t, err)
			}
		})
	}
}

func wantFormat(f analysis.Format) func(*testing.T, error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var ufe *analysis.UnsupportedFormatError
		if !errors.As(err, &ufe) || ufe.Format != f {
			t.Errorf("err = %#v, want format %q", err, f)
		}
	}
}

func TestModestAliasesAccepted(t *testing.T) {
	res := analyze(t, `openapi: 3.0.0
info: {title: t, version: '1'}
paths:
  /a:
    get:
      responses: &ok
        '200': {description: ok}
  /b:
    get:
      responses: *ok
`)
	if len(res.Operations) != 2 {
		t.Errorf("operations = %d", len(res.Operations))
	}
}
