package analysis_test

import (
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// FuzzAnalyze holds Analyze to its contract on arbitrary input: it never
// panics, it returns either a result or one of the typed errors, and a result
// encodes as JSON.
func FuzzAnalyze(f *testing.F) {
	demo, err := os.ReadFile("testdata/demo-messages.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	for _, seed := range []string{
		"",
		"{}",
		"openapi: 3.0.0\n",
		`{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a/{b}":{"get":{"parameters":[{"name":"b","in":"path","required":true,"schema":{"$ref":"#/components/schemas/S"}}],"responses":{"200":{"description":"x"}}}}},"components":{"schemas":{"S":{"type":"object","properties":{"s":{"$ref":"#/components/schemas/S"}}}}}}`,
		"openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths: {}\nx-a: &a {p: *a}\n",
		"openapi: 3.0.0\ninfo: {title: t, version: '1'}\nsecurity: [{}, {k: [a]}]\npaths:\n  /x:\n    post:\n      requestBody: {content: {application/json: {schema: {type: array}}}}\n      responses: {}\n",
		`{"swagger":"2.0"}`,
		"swagger: '2.0'\ninfo: {title: t, version: '1'}\nhost: h.example\nsecurityDefinitions:\n  k: {type: apiKey, in: header, name: Authorization}\n  o: {type: oauth2, flow: accessCode, authorizationUrl: 'https://a/x', tokenUrl: 'https://a/t', scopes: {s: d}}\nsecurity: [{k: []}, {o: [s]}]\nparameters:\n  F: {name: token, in: formData, type: string, required: true}\ndefinitions:\n  D: {type: object, properties: {a: {items: [{$ref: '#/definitions/D'}, {type: 'null'}]}, b: {type: [string, 'null'], required: true}}}\npaths:\n  /a/{b}:\n    parameters: [{name: b, in: path, type: string, required: true}]\n    post:\n      security: []\n      consumes: [application/json, multipart/form-data]\n      parameters: [{$ref: '#/parameters/F'}, {name: f, in: formData, type: file}]\n      responses: {'200': {description: ok, schema: {$ref: '#/definitions/D'}}}\n",
		"openapi: 3.0.0\ninfo: {title: t, version: '1'}\npaths:\n  /a:\n    $ref: '#/paths/~1b'\n  /b:\n    $ref: '#/paths/~1a'\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := analysis.Analyze(data, analysis.Options{})
		if err != nil {
			if !errors.Is(err, analysis.ErrSyntax) && !errors.Is(err, analysis.ErrInvalid) &&
				!errors.Is(err, analysis.ErrLimit) && !errors.Is(err, analysis.ErrUnsupportedFormat) {
				t.Fatalf("untyped error %T: %v", err, err)
			}
			return
		}
		if _, err := json.Marshal(res); err != nil {
			t.Fatalf("result does not encode: %v", err)
		}
		for _, op := range res.Operations {
			if op.Name == "" || !json.Valid(op.InputSchema) {
				t.Fatalf("operation %s %s: name %q, schema %s", op.Method, op.Path, op.Name, op.InputSchema)
			}
		}
	})
}
