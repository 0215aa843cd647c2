package analysis_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// TestPasswordsAreNeverInputs: a user's password (an OAuth password grant, a
// login form) and a refresh token carry credentials, so they are inferred
// auth and never tool inputs; the password blocks the tool (kind unknown)
// until an operator maps it.
func TestPasswordsAreNeverInputs(t *testing.T) {
	doc := []byte(`openapi: 3.0.3
info: {title: Login, version: "1"}
servers: [{url: "https://login.example.com"}]
paths:
  /token:
    post:
      operationId: getToken
      parameters:
        - {name: refresh_token, in: query, schema: {type: string}}
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              properties:
                grant_type: {type: string}
                username: {type: string}
                password: {type: string}
      responses:
        "200": {description: ok}
`)
	res, err := analysis.Analyze(doc, analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	op := res.Operations[0]
	schema := string(op.Tool.InputSchema)
	if strings.Contains(schema, `"password"`) || strings.Contains(schema, `"refresh_token"`) || !strings.Contains(schema, `"grant_type"`) {
		t.Fatalf("input schema %s", schema)
	}
	kinds := map[string]analysis.Kind{}
	for _, r := range op.InferredAuth {
		kinds[r.Param] = r.Kind
		if !r.Inferred || r.CallerVisible {
			t.Fatalf("requirement %+v", r)
		}
	}
	if kinds["password"] != analysis.KindUnknown || kinds["refresh_token"] != analysis.KindAPIKey {
		b, _ := json.Marshal(op.InferredAuth)
		t.Fatalf("inferred auth %s", b)
	}
}
