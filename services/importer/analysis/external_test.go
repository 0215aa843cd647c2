package analysis_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

const (
	remoteSchemas = "http://schemas.example/v1/schemas.yaml"
	remotePet     = "Pet:\n  type: object\n  required: [name]\n  properties:\n    name: {type: string}\n    tag: {$ref: '#/Tag'}\nTag:\n  type: string\n  enum: [cat, dog]\n"
)

// petDoc is a description whose request body is a remote $ref.
func petDoc(ref string) string {
	return "openapi: 3.0.3\ninfo: {title: Pets, version: '1'}\npaths:\n  /pets:\n    post:\n      operationId: addPet\n" +
		"      requestBody:\n        content:\n          application/json:\n            schema: {$ref: '" + ref + "'}\n" +
		"      responses:\n        '201': {description: created}\n"
}

func TestExternalRefs(t *testing.T) {
	doc := petDoc(remoteSchemas+"#/Pet") + "components:\n  schemas:\n    A: {$ref: 'https://other.example/a.json#/A'}\n" +
		"    B: {$ref: '" + remoteSchemas + "#/Tag'}\n    C: {$ref: 'local.yaml#/C'}\n    D: {$ref: '#/components/schemas/A'}\n" +
		"    E: {$ref: 'file:///etc/passwd'}\n"
	got, err := analysis.ExternalRefs([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://schemas.example/v1/schemas.yaml", "https://other.example/a.json"}
	if !slices.Equal(got, want) {
		t.Errorf("ExternalRefs = %q, want %q", got, want)
	}

	jsonDoc := `{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{},"components":{"schemas":{"A":{"$ref":"https://x.example/s.json?v=2#/A"},"B":{"$ref":"#/components/schemas/A"}}}}`
	got, err = analysis.ExternalRefs([]byte(jsonDoc))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://x.example/s.json?v=2"}; !slices.Equal(got, want) {
		t.Errorf("ExternalRefs(JSON) = %q, want %q", got, want)
	}

	if _, err := analysis.ExternalRefs([]byte("openapi: 3.0.0\npaths: [\n")); !errors.Is(err, analysis.ErrSyntax) {
		t.Errorf("ExternalRefs(malformed) error = %v, want ErrSyntax", err)
	}
}

func TestExternalRefsTooMany(t *testing.T) {
	var b strings.Builder
	b.WriteString("openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\ncomponents:\n  schemas:\n")
	for i := range analysis.MaxExternalDocuments + 1 {
		fmt.Fprintf(&b, "    S%d: {$ref: 'https://h%d.example/s.yaml#/S'}\n", i, i)
	}
	_, err := analysis.ExternalRefs([]byte(b.String()))
	var le *analysis.LimitError
	if !errors.As(err, &le) || le.Max != analysis.MaxExternalDocuments {
		t.Errorf("ExternalRefs error = %v, want a LimitError of %d", err, analysis.MaxExternalDocuments)
	}

	external := map[string][]byte{}
	for i := range analysis.MaxExternalDocuments + 1 {
		external[fmt.Sprintf("https://h%d.example/s.yaml", i)] = []byte("S: {type: string}\n")
	}
	_, err = analysis.Analyze([]byte(petDoc(remoteSchemas+"#/Pet")), analysis.Options{External: external})
	if !errors.Is(err, analysis.ErrLimit) {
		t.Errorf("Analyze with %d documents: error = %v, want ErrLimit", len(external), err)
	}
}

func TestExternalResolved(t *testing.T) {
	res, err := analysis.Analyze([]byte(petDoc(remoteSchemas+"#/Pet")), analysis.Options{
		External: map[string][]byte{remoteSchemas: []byte(remotePet)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Operations) != 1 {
		t.Fatalf("operations = %d, want 1", len(res.Operations))
	}
	schema := string(res.Operations[0].InputSchema)
	for _, want := range []string{`"name"`, `"tag"`, `"dog"`} {
		if !strings.Contains(schema, want) {
			t.Errorf("input schema %s lacks %s", schema, want)
		}
	}
}

func TestExternalRefused(t *testing.T) {
	external := map[string][]byte{remoteSchemas: []byte(remotePet)}
	tests := []struct {
		name, ref, external string
		msg, notMsg         string
	}{
		{name: "not in the map", ref: "http://elsewhere.example/s.yaml#/Pet", msg: `external reference "http://elsewhere.example/s.yaml" is not allowed: a description must be self-contained`},
		{name: "relative", ref: "schemas.yaml#/Pet", msg: `external reference "schemas.yaml" is not allowed`},
		{name: "query string not shown", ref: "http://elsewhere.example/s.yaml?token=secret#/Pet", msg: `external reference "http://elsewhere.example/s.yaml" is not allowed`, notMsg: "secret"},
		{
			name: "second level", ref: remoteSchemas + "#/Pet",
			external: "Pet: {$ref: 'http://deeper.example/pet.yaml#/Pet'}\n",
			msg:      `external reference "http://deeper.example/pet.yaml" is not allowed`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ext := external
			if tt.external != "" {
				ext = map[string][]byte{remoteSchemas: []byte(tt.external)}
			}
			for _, opts := range []analysis.Options{{}, {External: ext}} {
				_, err := analysis.Analyze([]byte(petDoc(tt.ref)), opts)
				var ie *analysis.InvalidError
				if !errors.As(err, &ie) || !errors.Is(err, analysis.ErrInvalid) {
					t.Fatalf("External %d documents: error = %v, want an InvalidError", len(opts.External), err)
				}
				msg := tt.msg
				if tt.external != "" && len(opts.External) == 0 {
					msg = `external reference "` + remoteSchemas + `" is not allowed`
				}
				if !strings.Contains(ie.Msg, msg) || (tt.notMsg != "" && strings.Contains(err.Error(), tt.notMsg)) {
					t.Errorf("External %d documents: message %q, want it to contain %q", len(opts.External), ie.Msg, msg)
				}
				if tt.external == "" && ie.Pointer != "/paths/~1pets/post/requestBody/content/application~1json/schema" {
					t.Errorf("External %d documents: pointer %q", len(opts.External), ie.Pointer)
				}
			}
		})
	}
}

func TestExternalBounds(t *testing.T) {
	doc := []byte(petDoc(remoteSchemas + "#/Pet"))
	_, err := analysis.Analyze(doc, analysis.Options{MaxDocumentBytes: 1 << 10, External: map[string][]byte{remoteSchemas: []byte(strings.Repeat("#", 2<<10))}})
	if !errors.Is(err, analysis.ErrLimit) {
		t.Errorf("oversized remote document: error = %v, want ErrLimit", err)
	}
	_, err = analysis.Analyze(doc, analysis.Options{External: map[string][]byte{remoteSchemas: []byte("Pet: [\n")}})
	if !errors.Is(err, analysis.ErrInvalid) || !strings.Contains(err.Error(), "schemas.example/v1/schemas.yaml") {
		t.Errorf("malformed remote document: error = %v, want ErrInvalid naming it", err)
	}
	_, err = analysis.Analyze(doc, analysis.Options{External: map[string][]byte{remoteSchemas + "#/Pet": []byte(remotePet)}})
	if !errors.Is(err, analysis.ErrInvalid) {
		t.Errorf("key with a fragment: error = %v, want ErrInvalid", err)
	}
}
