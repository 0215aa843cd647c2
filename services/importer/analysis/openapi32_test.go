package analysis_test

import (
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// TestOpenAPI32 reads a 3.2 document as far as kin-openapi reads it: the
// QUERY method and additionalOperations become tools like any other.
func TestOpenAPI32(t *testing.T) {
	doc := []byte(`openapi: 3.2.0
info: {title: Search API, version: "1"}
servers: [{url: "https://search.example.com"}]
components:
  securitySchemes:
    Key: {type: apiKey, in: header, name: X-API-Key}
security: [{Key: []}]
paths:
  /items:
    query:
      operationId: searchItems
      summary: Search items
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {text: {type: string}}}
      responses:
        "200": {description: ok}
    additionalOperations:
      PURGE:
        operationId: purgeItems
        responses:
          "204": {description: purged}
`)
	res, err := analysis.Analyze(doc, analysis.Options{})
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	if res.Format != analysis.FormatOpenAPI32 || len(res.Operations) != 2 {
		t.Fatalf("format %q, %d operations", res.Format, len(res.Operations))
	}
	byTool := map[string]analysis.Operation{}
	for _, op := range res.Operations {
		byTool[op.Tool.Name] = op
	}
	q, ok := byTool["search_items"]
	if !ok || q.Method != "QUERY" || q.Annotations.ReadOnlyHint == nil || !*q.Annotations.ReadOnlyHint {
		t.Fatalf("query operation: %+v", q)
	}
	if len(q.Auth) != 1 || q.Auth[0][0].Scheme != "Key" {
		t.Fatalf("query auth: %+v", q.Auth)
	}
	if p, ok := byTool["purge_items"]; !ok || p.Method != "PURGE" {
		t.Fatalf("additional operation: %+v", byTool)
	}
}
