package analysis_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// analyze runs Analyze on an inline document and fails the test on error.
func analyze(t *testing.T, doc string) *analysis.Result {
	t.Helper()
	res, err := analysis.Analyze([]byte(doc), analysis.Options{})
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	return res
}

// operation finds an operation by "METHOD path".
func operation(t *testing.T, res *analysis.Result, key string) analysis.Operation {
	t.Helper()
	for _, op := range res.Operations {
		if op.Method+" "+op.Path == key {
			return op
		}
	}
	t.Fatalf("operation %q not found", key)
	return analysis.Operation{}
}

// inputSchema decodes an operation's input schema.
func inputSchema(t *testing.T, op analysis.Operation) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(op.InputSchema, &m); err != nil {
		t.Fatalf("decode input schema of %s %s: %v", op.Method, op.Path, err)
	}
	return m
}

// properties lists the property names of an operation's input schema.
func properties(t *testing.T, op analysis.Operation) map[string]any {
	t.Helper()
	props, _ := inputSchema(t, op)["properties"].(map[string]any)
	return props
}

// property returns one property schema of an operation's input schema.
func property(t *testing.T, op analysis.Operation, name string) map[string]any {
	t.Helper()
	p, ok := properties(t, op)[name].(map[string]any)
	if !ok {
		t.Fatalf("%s %s: no input property %q in %s", op.Method, op.Path, name, op.InputSchema)
	}
	return p
}

// field returns the request field of an input property.
func field(t *testing.T, op analysis.Operation, prop string) analysis.Field {
	t.Helper()
	for _, f := range op.Request.Fields {
		if f.Property == prop {
			return f
		}
	}
	t.Fatalf("%s %s: no field for property %q", op.Method, op.Path, prop)
	return analysis.Field{}
}

// hasDiagnostic reports whether a diagnostic contains text.
func hasDiagnostic(res *analysis.Result, text string) bool {
	for _, d := range res.Diagnostics {
		if strings.Contains(d.Message, text) {
			return true
		}
	}
	return false
}

// doc30 wraps paths and components in a minimal OpenAPI 3.0 YAML document.
func doc30(rest string) string {
	return "openapi: 3.0.3\ninfo:\n  title: Test\n  version: '1'\n" + rest
}
