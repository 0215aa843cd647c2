package analysis_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

func TestParameterMapping(t *testing.T) {
	res := analyze(t, doc30(`paths:
  /items/{id}:
    parameters:
      - {name: id, in: path, required: true, description: Item ID., schema: {type: integer}}
      - {name: verbose, in: query, schema: {type: boolean}}
    get:
      parameters:
        - {name: verbose, in: query, description: Overridden., schema: {type: string}}
        - {name: tags, in: query, style: spaceDelimited, explode: false, schema: {type: array, items: {type: string}}}
        - {name: filter, in: query, content: {application/json: {schema: {type: object}}}}
        - {name: X-Request-Id, in: header, required: true, schema: {type: string}}
        - {name: lang, in: cookie, schema: {type: string}}
        - {name: id, in: header, schema: {type: string}}
      responses: {'200': {description: ok}}
`))
	op := operation(t, res, "GET /items/{id}")
	tr, fa := true, false
	want := []analysis.Field{
		{Property: "id", In: analysis.LocationPath, Name: "id", Required: true, Style: "simple", Explode: &fa},
		{Property: "verbose", In: analysis.LocationQuery, Name: "verbose", Style: "form", Explode: &tr},
		{Property: "tags", In: analysis.LocationQuery, Name: "tags", Style: "spaceDelimited", Explode: &fa},
		{Property: "filter", In: analysis.LocationQuery, Name: "filter", ContentType: "application/json"},
		{Property: "X-Request-Id", In: analysis.LocationHeader, Name: "X-Request-Id", Required: true, Style: "simple", Explode: &fa},
		{Property: "header_id", In: analysis.LocationHeader, Name: "id", Style: "simple", Explode: &fa},
		{Property: "lang", In: analysis.LocationCookie, Name: "lang", Style: "form", Explode: &tr},
	}
	if !reflect.DeepEqual(op.Request.Fields, want) {
		got, _ := json.MarshalIndent(op.Request.Fields, "", " ")
		t.Errorf("fields = %s", got)
	}
	if op.Request.Body != analysis.BodyNone {
		t.Errorf("body = %s", op.Request.Body)
	}
	t.Run("descriptions and overrides kept", func(t *testing.T) {
		if got := property(t, op, "id")["description"]; got != "Item ID." {
			t.Errorf("id description = %v", got)
		}
		verbose := property(t, op, "verbose")
		if verbose["description"] != "Overridden." || verbose["type"] != "string" {
			t.Errorf("verbose = %v", verbose)
		}
	})
	t.Run("required list", func(t *testing.T) {
		if got := inputSchema(t, op)["required"]; !reflect.DeepEqual(got, []any{"id", "X-Request-Id"}) {
			t.Errorf("required = %v", got)
		}
	})
	t.Run("object schema closed", func(t *testing.T) {
		s := inputSchema(t, op)
		if s["type"] != "object" || s["additionalProperties"] != false {
			t.Errorf("schema = %v", s)
		}
	})
}

func TestPathTemplateChecks(t *testing.T) {
	res := analyze(t, doc30(`paths:
  /a/{x}/{y}:
    get:
      parameters:
        - {name: x, in: path, required: true, schema: {type: string}}
        - {name: z, in: path, required: true, schema: {type: string}}
      responses: {'200': {description: ok}}
`))
	op := operation(t, res, "GET /a/{x}/{y}")
	if f := field(t, op, "y"); f.In != analysis.LocationPath || !f.Required {
		t.Errorf("synthesized y = %+v", f)
	}
	if got := excludedNames(op)["path:z"]; got != analysis.ExcludedUndeclaredPathParam {
		t.Errorf("z reason = %q", got)
	}
	if !hasDiagnostic(res, `"y" is not declared`) || !hasDiagnostic(res, `"z" does not appear`) {
		t.Errorf("diagnostics = %+v", res.Diagnostics)
	}
}

func TestBodyMapping(t *testing.T) {
	const components = `components:
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        id: {type: integer, readOnly: true}
        name: {type: string, description: Pet name.}
        secret: {type: string, writeOnly: true}
        kind: {type: string, enum: [cat, dog], default: cat}
`
	t.Run("object body becomes properties, readOnly dropped", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /pets:
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Pet'}
      responses:
        '201':
          description: created
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
`+components))
		op := operation(t, res, "POST /pets")
		if op.Request.Body != analysis.BodyProperties || op.Request.ContentType != "application/json" {
			t.Errorf("request = %+v", op.Request)
		}
		props := properties(t, op)
		if _, has := props["id"]; has || len(props) != 3 {
			t.Errorf("properties = %v, want kind, name, secret", props)
		}
		if f := field(t, op, "name"); f.In != analysis.LocationBody || f.Name != "name" || !f.Required {
			t.Errorf("name field = %+v", f)
		}
		kind := property(t, op, "kind")
		if kind["default"] != "cat" || !reflect.DeepEqual(kind["enum"], []any{"cat", "dog"}) {
			t.Errorf("kind = %v", kind)
		}
		var out map[string]any
		if err := json.Unmarshal(op.OutputSchema, &out); err != nil {
			t.Fatal(err)
		}
		outProps := out["properties"].(map[string]any)
		if _, has := outProps["secret"]; has {
			t.Errorf("writeOnly field in output schema: %v", outProps)
		}
		if _, has := outProps["id"]; !has {
			t.Errorf("readOnly field missing from output schema: %v", outProps)
		}
		if op.Response.Status != "201" || op.Response.WrapProperty != "" {
			t.Errorf("response = %+v", op.Response)
		}
	})

	t.Run("optional body makes no property required", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /pets:
    patch:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Pet'}
      responses: {'200': {description: ok}}
`+components))
		op := operation(t, res, "PATCH /pets")
		if _, has := inputSchema(t, op)["required"]; has {
			t.Errorf("required = %v", inputSchema(t, op)["required"])
		}
	})

	t.Run("array body is the whole body", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /pets:
    put:
      requestBody:
        required: true
        description: Pets to store.
        content:
          application/json:
            schema: {type: array, items: {$ref: '#/components/schemas/Pet'}}
      responses: {'200': {description: ok}}
`+components))
		op := operation(t, res, "PUT /pets")
		f := field(t, op, "body")
		if op.Request.Body != analysis.BodyWhole || !f.WholeBody || !f.Required || f.In != analysis.LocationBody {
			t.Errorf("request = %+v", op.Request)
		}
		if got := property(t, op, "body")["description"]; got != "Pets to store." {
			t.Errorf("description = %v", got)
		}
	})

	t.Run("names colliding with parameters make the whole body", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /pets/{name}:
    put:
      parameters:
        - {name: name, in: path, required: true, schema: {type: string}}
        - {name: body, in: query, schema: {type: string}}
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Pet'}
      responses: {'200': {description: ok}}
`+components))
		op := operation(t, res, "PUT /pets/{name}")
		if op.Request.Body != analysis.BodyWhole {
			t.Fatalf("body = %s", op.Request.Body)
		}
		f := field(t, op, "request_body")
		if !f.WholeBody {
			t.Errorf("field = %+v", f)
		}
		inner := property(t, op, "request_body")["properties"].(map[string]any)
		if _, has := inner["id"]; has {
			t.Errorf("readOnly id in whole body: %v", inner)
		}
	})

	t.Run("composed body is the whole body", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /pets:
    post:
      requestBody:
        content:
          application/json:
            schema:
              oneOf:
                - $ref: '#/components/schemas/Pet'
                - {type: string}
      responses: {'200': {description: ok}}
`+components))
		op := operation(t, res, "POST /pets")
		if op.Request.Body != analysis.BodyWhole {
			t.Errorf("body = %s", op.Request.Body)
		}
		if _, ok := property(t, op, "body")["oneOf"]; !ok {
			t.Errorf("oneOf lost: %s", op.InputSchema)
		}
	})

	t.Run("json preferred over other media types", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /pets:
    post:
      requestBody:
        content:
          application/xml: {schema: {type: object, properties: {a: {type: string}}}}
          application/json: {schema: {type: object, properties: {b: {type: string}}}}
          application/x-www-form-urlencoded: {schema: {type: object, properties: {c: {type: string}}}}
      responses: {'200': {description: ok}}
`))
		op := operation(t, res, "POST /pets")
		if op.Request.ContentType != "application/json" || properties(t, op)["b"] == nil {
			t.Errorf("request = %+v", op.Request)
		}
	})

	t.Run("text body is a string", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /notes:
    post:
      requestBody:
        content:
          text/plain: {}
      responses: {'200': {description: ok}}
`))
		op := operation(t, res, "POST /notes")
		if op.Request.Body != analysis.BodyWhole || property(t, op, "body")["type"] != "string" {
			t.Errorf("request = %+v schema %s", op.Request, op.InputSchema)
		}
	})

	t.Run("unsupported media type", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /upload:
    post:
      requestBody:
        content:
          application/octet-stream: {schema: {type: string, format: binary}}
      responses: {'200': {description: ok}}
`))
		op := operation(t, res, "POST /upload")
		if !strings.Contains(op.Unsupported, "application/octet-stream") {
			t.Errorf("unsupported = %q", op.Unsupported)
		}
		if op.Name == "" {
			t.Error("an unsupported operation still gets a tool name")
		}
	})
}

func TestSchemaConversion(t *testing.T) {
	t.Run("openapi 3.0 keywords", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /x:
    get:
      parameters:
        - name: n
          in: query
          schema: {type: integer, format: int32, minimum: 1, exclusiveMinimum: true, maximum: 10, default: 5, nullable: true}
        - name: c
          in: query
          schema:
            allOf:
              - {type: object, properties: {a: {type: string}}}
              - {type: object, properties: {b: {type: string, example: hi}}}
        - name: u
          in: query
          schema:
            anyOf: [{type: string}, {type: integer}]
      responses: {'200': {description: ok}}
`))
		op := operation(t, res, "GET /x")
		n := property(t, op, "n")
		want := map[string]any{"type": []any{"integer", "null"}, "format": "int32", "exclusiveMinimum": 1.0, "maximum": 10.0, "default": 5.0}
		if !reflect.DeepEqual(n, want) {
			t.Errorf("n = %v, want %v", n, want)
		}
		if all, ok := property(t, op, "c")["allOf"].([]any); !ok || len(all) != 2 {
			t.Errorf("allOf = %v", property(t, op, "c"))
		}
		if !strings.Contains(string(op.InputSchema), `"examples":["hi"]`) {
			t.Errorf("example not kept as examples: %s", op.InputSchema)
		}
		if any, ok := property(t, op, "u")["anyOf"].([]any); !ok || len(any) != 2 {
			t.Errorf("anyOf = %v", property(t, op, "u"))
		}
	})

	t.Run("openapi 3.1 keywords", func(t *testing.T) {
		res := analyze(t, `openapi: 3.1.0
info: {title: T, version: '1'}
paths:
  /x:
    get:
      parameters:
        - name: n
          in: query
          schema: {type: [number, 'null'], exclusiveMinimum: 0, const: 3}
      responses: {'200': {description: ok}}
`)
		n := property(t, operation(t, res, "GET /x"), "n")
		want := map[string]any{"type": []any{"number", "null"}, "exclusiveMinimum": 0.0, "const": 3.0}
		if !reflect.DeepEqual(n, want) {
			t.Errorf("n = %v, want %v", n, want)
		}
	})

	t.Run("recursive schemas become $defs", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /tree:
    post:
      requestBody:
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Node'}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Node'}
components:
  schemas:
    Node:
      type: object
      properties:
        name: {type: string}
        children:
          type: array
          items: {$ref: '#/components/schemas/Node'}
`))
		op := operation(t, res, "POST /tree")
		s := inputSchema(t, op)
		defs, ok := s["$defs"].(map[string]any)
		if !ok || defs["Node"] == nil {
			t.Fatalf("no $defs.Node in %s", op.InputSchema)
		}
		items := property(t, op, "children")["items"].(map[string]any)
		if items["$ref"] != "#/$defs/Node" {
			t.Errorf("items = %v", items)
		}
		if !strings.Contains(string(op.OutputSchema), `"$ref":"#/$defs/Node"`) || !strings.Contains(string(op.OutputSchema), `"$defs"`) {
			t.Errorf("output schema = %s", op.OutputSchema)
		}
	})

	t.Run("mutually recursive schemas terminate", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /a:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/A'}
components:
  schemas:
    A: {type: object, properties: {b: {$ref: '#/components/schemas/B'}}}
    B: {type: object, properties: {a: {$ref: '#/components/schemas/A'}}}
`))
		op := operation(t, res, "GET /a")
		if !strings.Contains(string(op.OutputSchema), `"$ref":"#/$defs/A"`) {
			t.Errorf("output schema = %s", op.OutputSchema)
		}
	})

	t.Run("non-object response is wrapped", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /list:
    get:
      responses:
        '204': {description: none}
        '200':
          description: ok
          content:
            application/json:
              schema: {type: array, items: {type: string}}
`))
		op := operation(t, res, "GET /list")
		if op.Response.WrapProperty != "result" || op.Response.Status != "200" {
			t.Errorf("response = %+v", op.Response)
		}
		var out map[string]any
		if err := json.Unmarshal(op.OutputSchema, &out); err != nil {
			t.Fatal(err)
		}
		if out["type"] != "object" || out["properties"].(map[string]any)["result"] == nil {
			t.Errorf("output schema = %s", op.OutputSchema)
		}
	})

	t.Run("no JSON success response, no output schema", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /x:
    delete:
      responses:
        '204': {description: gone}
`))
		op := operation(t, res, "DELETE /x")
		if op.OutputSchema != nil || op.Response.Status != "" {
			t.Errorf("output = %s %+v", op.OutputSchema, op.Response)
		}
	})

	t.Run("large schemas fall back to $defs", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("components:\n  schemas:\n")
		for i := 0; i < 12; i++ {
			b.WriteString("    S" + string(rune('a'+i)) + ":\n      type: object\n      properties:\n")
			for j := 0; j < 4; j++ {
				next := "{type: string}"
				if i < 11 {
					next = "{$ref: '#/components/schemas/S" + string(rune('a'+i+1)) + "'}"
				}
				b.WriteString("        p" + string(rune('0'+j)) + ": " + next + "\n")
			}
		}
		res := analyze(t, doc30(`paths:
  /big:
    get:
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Sa'}
`+b.String()))
		op := operation(t, res, "GET /big")
		if len(op.OutputSchema) > 20000 || !strings.Contains(string(op.OutputSchema), `"$defs"`) {
			t.Errorf("output schema of %d bytes without $defs fallback", len(op.OutputSchema))
		}
	})
}

func TestServers(t *testing.T) {
	res := analyze(t, doc30(`servers:
  - url: https://{region}.api.example.test/{version}
    variables:
      region: {default: eu, enum: [eu, us]}
      version: {default: v2}
paths:
  /a:
    get:
      responses: {'200': {description: ok}}
  /b:
    servers:
      - url: http://127.0.0.1:9000
    get:
      responses: {'200': {description: ok}}
    post:
      servers:
        - url: http://127.0.0.1:9001
      responses: {'200': {description: ok}}
`))
	if got := res.Servers[0]; got.URL != "https://eu.api.example.test/v2" || got.Template != "https://{region}.api.example.test/{version}" || len(got.Variables) != 2 {
		t.Errorf("document server = %+v", got)
	}
	tests := map[string]string{
		"GET /a":  "https://eu.api.example.test/v2",
		"GET /b":  "http://127.0.0.1:9000",
		"POST /b": "http://127.0.0.1:9001",
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			if got := operation(t, res, key).Servers[0].URL; got != want {
				t.Errorf("server = %q, want %q", got, want)
			}
		})
	}
	t.Run("none declared", func(t *testing.T) {
		res := analyze(t, doc30("paths:\n  /x:\n    get:\n      responses: {'200': {description: ok}}\n"))
		if got := operation(t, res, "GET /x").Servers; len(got) != 1 || got[0].URL != "/" {
			t.Errorf("servers = %+v", got)
		}
	})
}

func TestToolNames(t *testing.T) {
	t.Run("snake case from operationId, else method and path", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /v1/messages:
    post:
      operationId: sendMessage
      responses: {'200': {description: ok}}
    get:
      operationId: listHTTPMessages2
      responses: {'200': {description: ok}}
  /v1/messages/{id}:
    get:
      responses: {'200': {description: ok}}
    delete:
      operationId: admin#delete.message
      responses: {'200': {description: ok}}
`))
		tests := map[string]string{
			"POST /v1/messages":        "send_message",
			"GET /v1/messages":         "list_http_messages2",
			"GET /v1/messages/{id}":    "get_v1_messages_id",
			"DELETE /v1/messages/{id}": "admin_delete_message",
		}
		for key, want := range tests {
			if got := operation(t, res, key).Name; got != want {
				t.Errorf("%s: name %q, want %q", key, got, want)
			}
		}
	})

	t.Run("budget, charset and uniqueness", func(t *testing.T) {
		long := strings.Repeat("veryLongOperationName", 5)
		doc := doc30(`paths:
  /a:
    get:
      operationId: ` + long + `
      responses: {'200': {description: ok}}
    post:
      operationId: ` + long + `X
      responses: {'200': {description: ok}}
  /b:
    get:
      operationId: get_thing
      responses: {'200': {description: ok}}
    post:
      operationId: getThing
      responses: {'200': {description: ok}}
  /c:
    get:
      operationId: Get-Thing
      responses: {'200': {description: ok}}
`)
		res, err := analysis.Analyze([]byte(doc), analysis.Options{ToolNameBudget: 30})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, op := range res.Operations {
			if len(op.Name) > 30 {
				t.Errorf("%q exceeds the budget", op.Name)
			}
			if strings.Trim(op.Name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
				t.Errorf("%q has characters outside [a-z0-9_]", op.Name)
			}
			if seen[op.Name] {
				t.Errorf("%q is not unique", op.Name)
			}
			seen[op.Name] = true
		}
		if got := operation(t, res, "GET /b").Name; got != "get_thing" {
			t.Errorf("first of the group keeps the base name, got %q", got)
		}
	})

	t.Run("stable across re-imports", func(t *testing.T) {
		before := analyze(t, doc30(`paths:
  /b:
    get:
      operationId: getThing
      responses: {'200': {description: ok}}
  /c:
    get:
      operationId: get_thing
      responses: {'200': {description: ok}}
`))
		after := analyze(t, doc30(`paths:
  /a:
    get:
      operationId: unrelated
      responses: {'200': {description: ok}}
  /b:
    get:
      operationId: getThing
      responses: {'200': {description: ok}}
  /c:
    get:
      operationId: get_thing
      responses: {'200': {description: ok}}
    post:
      operationId: getThing
      responses: {'200': {description: ok}}
`))
		for _, key := range []string{"GET /b", "GET /c"} {
			if b, a := operation(t, before, key).Name, operation(t, after, key).Name; a != b {
				t.Errorf("%s renamed from %q to %q", key, b, a)
			}
		}
	})
}

func TestToolDescriptionAndAnnotations(t *testing.T) {
	long := strings.Repeat("word ", 400)
	doc := doc30(`paths:
  /x:
    get:
      summary: Read x
      description: '` + long + `'
      responses: {'200': {description: ok}}
    put:
      responses: {'200': {description: ok}}
    delete:
      summary: Delete x
      responses: {'200': {description: ok}}
    post:
      responses: {'200': {description: ok}}
    head:
      responses: {'200': {description: ok}}
`)
	res, err := analysis.Analyze([]byte(doc), analysis.Options{DescriptionBudget: 100})
	if err != nil {
		t.Fatal(err)
	}
	get := operation(t, res, "GET /x")
	if len(get.Description) > 100 || !strings.HasPrefix(get.Description, "Read x\n\nword") {
		t.Errorf("description = %q", get.Description)
	}
	if got := operation(t, res, "PUT /x").Description; got != "PUT /x" {
		t.Errorf("fallback description = %q", got)
	}
	type hints struct{ readOnly, destructive, idempotent *bool }
	tr, fa := true, false
	tests := map[string]hints{
		"GET /x":    {&tr, nil, &tr},
		"HEAD /x":   {&tr, nil, &tr},
		"PUT /x":    {&fa, nil, &tr},
		"DELETE /x": {&fa, &tr, &tr},
		"POST /x":   {&fa, nil, nil},
	}
	for key, want := range tests {
		t.Run(key, func(t *testing.T) {
			a := operation(t, res, key).Annotations
			got := hints{a.ReadOnlyHint, a.DestructiveHint, a.IdempotentHint}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("annotations = %+v", a)
			}
		})
	}
}

func TestFormatTitleVersion(t *testing.T) {
	tests := []struct {
		name, doc string
		format    analysis.Format
	}{
		{"3.0 yaml", "openapi: 3.0.3\ninfo: {title: Yaml API, version: 2.1.0}\npaths: {}\n", analysis.FormatOpenAPI30},
		{"3.0 json", `{"openapi":"3.0.0","info":{"title":"Yaml API","version":"2.1.0"},"paths":{}}`, analysis.FormatOpenAPI30},
		{"3.1 yaml", "openapi: 3.1.0\ninfo: {title: Yaml API, version: 2.1.0}\n", analysis.FormatOpenAPI31},
		{"3.1 json", `{"openapi":"3.1.1","info":{"title":"Yaml API","version":"2.1.0"},"webhooks":{}}`, analysis.FormatOpenAPI31},
		{"yaml flow mapping", "{openapi: 3.0.1, info: {title: Yaml API, version: 2.1.0}, paths: {}}", analysis.FormatOpenAPI30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyze(t, tt.doc)
			if res.Format != tt.format || res.Title != "Yaml API" || res.Version != "2.1.0" {
				t.Errorf("got %s %q %q", res.Format, res.Title, res.Version)
			}
			if res.Operations == nil || res.Diagnostics == nil || res.Schemes == nil {
				t.Error("empty lists must encode as []")
			}
		})
	}
}

func TestValidatorFindingsAreWarnings(t *testing.T) {
	res := analyze(t, doc30(`paths:
  /x:
    get:
      parameters:
        - {name: p, in: query, schema: {type: string, pattern: '(?<=a)b'}}
      responses: {'200': {description: ok}}
`))
	found := false
	for _, d := range res.Diagnostics {
		if strings.HasPrefix(d.Message, "validator: ") {
			found = true
			if d.Level != analysis.LevelWarning {
				t.Errorf("level = %s", d.Level)
			}
		}
	}
	if !found {
		t.Errorf("no validator finding in %+v", res.Diagnostics)
	}
	if len(res.Operations) != 1 {
		t.Errorf("operations = %d", len(res.Operations))
	}
}

func TestDeterministic(t *testing.T) {
	data := []byte(doc30(`paths:
  /a/{id}:
    get:
      operationId: a
      parameters:
        - {name: id, in: path, required: true, schema: {type: string}}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/T'}
components:
  schemas:
    T: {type: object, properties: {x: {$ref: '#/components/schemas/T'}, y: {type: string}, z: {type: integer}}}
`))
	first, err := analysis.Analyze(data, analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(first)
	for i := 0; i < 5; i++ {
		res, err := analysis.Analyze(data, analysis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(res); string(got) != string(want) {
			t.Fatalf("run %d differs:\n%s\n%s", i, got, want)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	data := []byte(doc30(`paths:
  /x/{id}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: string, pattern: '^[a-z]+$'}}
        - {name: api_key, in: query, schema: {type: string}}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: object, properties: {a: {type: string, format: date-time}}}
`))
	want, err := analysis.Analyze(data, analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := json.Marshal(want)
	done := make(chan string, 8)
	for i := 0; i < cap(done); i++ {
		go func() {
			res, err := analysis.Analyze(data, analysis.Options{})
			if err != nil {
				done <- err.Error()
				return
			}
			got, _ := json.Marshal(res)
			if string(got) != string(wantJSON) {
				done <- "result differs"
				return
			}
			done <- ""
		}()
	}
	for i := 0; i < cap(done); i++ {
		if msg := <-done; msg != "" {
			t.Error(msg)
		}
	}
}
