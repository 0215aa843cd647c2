package analysis_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// doc20 wraps the rest of a Swagger 2.0 YAML document.
func doc20(rest string) string {
	return "swagger: '2.0'\ninfo:\n  title: Test\n  version: '1'\n" + rest
}

func TestSwaggerResult(t *testing.T) {
	res := analyze(t, doc20(`host: api.example.com
basePath: /v1
schemes: [https, http]
paths:
  /items:
    get:
      operationId: listItems
      responses:
        '200': {description: ok}
`))
	if res.Format != analysis.FormatSwagger2 || res.SpecVersion != "2.0" || res.Title != "Test" || res.Version != "1" {
		t.Errorf("format %q, spec version %q, title %q, version %q", res.Format, res.SpecVersion, res.Title, res.Version)
	}
	want := []analysis.Server{{URL: "https://api.example.com/v1"}, {URL: "http://api.example.com/v1"}}
	if !reflect.DeepEqual(res.Servers, want) {
		t.Errorf("servers = %+v, want %+v", res.Servers, want)
	}
	if op := operation(t, res, "GET /items"); op.Name != "list_items" || !reflect.DeepEqual(op.Servers, want) {
		t.Errorf("tool %q, servers %+v", op.Name, op.Servers)
	}
}

func TestSwaggerVersionsWrittenAsNumbers(t *testing.T) {
	for _, doc := range []string{
		"swagger: 2.0\ninfo: {title: 2024, version: 1.10}\npaths: {}\n",
		`{"swagger": 2.0, "info": {"title": 2024, "version": 1.10}, "paths": {}}`,
	} {
		res := analyze(t, doc)
		if res.Format != analysis.FormatSwagger2 || res.SpecVersion != "2.0" || res.Title != "2024" || res.Version != "1.10" {
			t.Errorf("format %q, spec version %q, title %q, version %q", res.Format, res.SpecVersion, res.Title, res.Version)
		}
	}
}

func TestSwaggerServers(t *testing.T) {
	tests := []struct {
		name, head string
		want       []string
	}{
		{"host without schemes is https", "host: api.example.com\n", []string{"https://api.example.com/"}},
		{"host and port with base path", "host: api.example.com:8443\nbasePath: /api\nschemes: [https]\n", []string{"https://api.example.com:8443/api"}},
		{"base path alone is relative", "basePath: /v2\n", []string{"/v2"}},
		{"neither", "", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyze(t, doc20(tt.head+"paths: {}\n"))
			got := []string{}
			for _, s := range res.Servers {
				got = append(got, s.URL)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("servers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSwaggerSchemes(t *testing.T) {
	res := analyze(t, doc20(`paths: {}
securityDefinitions:
  key_header: {type: apiKey, in: header, name: X-API-Key}
  key_query: {type: apiKey, in: query, name: api_key}
  bearer_as_key: {type: apiKey, in: header, name: Authorization, description: 'Bearer token'}
  sigv4:
    type: apiKey
    in: header
    name: Authorization
    x-amazon-apigateway-authtype: awsSigv4
  basic: {type: basic}
  implicit:
    type: oauth2
    flow: implicit
    authorizationUrl: https://auth.example.com/authorize
    scopes: {write: Write, read: Read}
  password:
    type: oauth2
    flow: password
    tokenUrl: https://auth.example.com/token
    scopes: {read: Read}
  application:
    type: oauth2
    flow: application
    tokenUrl: https://auth.example.com/token
    scopes: {}
  accessCode:
    type: oauth2
    flow: accessCode
    authorizationUrl: https://auth.example.com/authorize
    tokenUrl: https://auth.example.com/token
    scopes: {admin: Admin}
  odd_flow: {type: oauth2, flow: device, tokenUrl: https://auth.example.com/token}
  odd_type: {type: hawk}
`))
	want := map[string]analysis.Scheme{
		"key_header":    {Kind: analysis.KindAPIKey, Type: "apiKey", In: analysis.LocationHeader, Param: "X-API-Key"},
		"key_query":     {Kind: analysis.KindAPIKey, Type: "apiKey", In: analysis.LocationQuery, Param: "api_key"},
		"bearer_as_key": {Kind: analysis.KindHTTPBearer, Type: "apiKey", In: analysis.LocationHeader, Param: "Authorization", Description: "Bearer token"},
		"sigv4":         {Kind: analysis.KindAWSSigV4, Type: "apiKey", In: analysis.LocationHeader, Param: "Authorization"},
		"basic":         {Kind: analysis.KindHTTPBasic, Type: "http", HTTPScheme: "basic", In: analysis.LocationHeader, Param: "Authorization"},
		"implicit": {Kind: analysis.KindOAuth2, Type: "oauth2", In: analysis.LocationHeader, Param: "Authorization",
			Flows:  []analysis.Flow{{Type: "implicit", AuthorizationURL: "https://auth.example.com/authorize", Scopes: []string{"read", "write"}}},
			Scopes: []string{"read", "write"}},
		"password": {Kind: analysis.KindOAuth2, Type: "oauth2", In: analysis.LocationHeader, Param: "Authorization",
			Flows:  []analysis.Flow{{Type: "password", TokenURL: "https://auth.example.com/token", Scopes: []string{"read"}}},
			Scopes: []string{"read"}},
		"application": {Kind: analysis.KindOAuth2, Type: "oauth2", In: analysis.LocationHeader, Param: "Authorization",
			Flows:  []analysis.Flow{{Type: "clientCredentials", TokenURL: "https://auth.example.com/token", Scopes: []string{}}},
			Scopes: []string{}},
		"accessCode": {Kind: analysis.KindOAuth2, Type: "oauth2", In: analysis.LocationHeader, Param: "Authorization",
			Flows:  []analysis.Flow{{Type: "authorizationCode", AuthorizationURL: "https://auth.example.com/authorize", TokenURL: "https://auth.example.com/token", Scopes: []string{"admin"}}},
			Scopes: []string{"admin"}},
		"odd_flow": {Kind: analysis.KindOAuth2, Type: "oauth2", In: analysis.LocationHeader, Param: "Authorization", Scopes: []string{}},
		"odd_type": {Kind: analysis.KindUnknown, Type: "hawk"},
	}
	if len(res.Schemes) != len(want) {
		t.Errorf("%d schemes, want %d", len(res.Schemes), len(want))
	}
	for _, s := range res.Schemes {
		w, ok := want[s.Name]
		if !ok {
			t.Errorf("unexpected scheme %q", s.Name)
			continue
		}
		w.Name = s.Name
		if !reflect.DeepEqual(s, w) {
			t.Errorf("scheme %q:\n got %+v\nwant %+v", s.Name, s, w)
		}
	}
	if !hasDiagnostic(res, `security scheme "odd_type" has an unknown type`) {
		t.Errorf("no diagnostic for the unknown scheme type: %+v", res.Diagnostics)
	}
}

func TestSwaggerEffectiveAuth(t *testing.T) {
	res := analyze(t, doc20(`securityDefinitions:
  key: {type: apiKey, in: header, name: X-API-Key}
  oauth: {type: oauth2, flow: application, tokenUrl: 'https://auth.example.com/token', scopes: {read: Read, write: Write}}
  basic: {type: basic}
security:
  - key: []
paths:
  /inherit:
    get: {responses: {'200': {description: ok}}}
  /override:
    get:
      security: [{oauth: [read]}]
      responses: {'200': {description: ok}}
  /public:
    get:
      security: []
      responses: {'200': {description: ok}}
  /either:
    get:
      security: [{key: []}, {oauth: [write]}]
      responses: {'200': {description: ok}}
  /both:
    get:
      security: [{key: [], basic: []}]
      responses: {'200': {description: ok}}
  /optional:
    get:
      security: [{}, {oauth: [read]}]
      responses: {'200': {description: ok}}
`))
	type req struct {
		scheme string
		kind   analysis.Kind
		scopes []string
	}
	tests := []struct {
		key    string
		source analysis.AuthSource
		want   [][]req
	}{
		{"GET /inherit", analysis.AuthFromDocument, [][]req{{{"key", analysis.KindAPIKey, nil}}}},
		{"GET /override", analysis.AuthFromOperation, [][]req{{{"oauth", analysis.KindOAuth2, []string{"read"}}}}},
		{"GET /public", analysis.AuthFromOperation, [][]req{}},
		{"GET /either", analysis.AuthFromOperation, [][]req{{{"key", analysis.KindAPIKey, nil}}, {{"oauth", analysis.KindOAuth2, []string{"write"}}}}},
		{"GET /both", analysis.AuthFromOperation, [][]req{{{"basic", analysis.KindHTTPBasic, nil}, {"key", analysis.KindAPIKey, nil}}}},
		{"GET /optional", analysis.AuthFromOperation, [][]req{{}, {{"oauth", analysis.KindOAuth2, []string{"read"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			op := operation(t, res, tt.key)
			if op.AuthSource != tt.source {
				t.Errorf("auth source = %q, want %q", op.AuthSource, tt.source)
			}
			got := [][]req{}
			for _, alt := range op.Auth {
				g := []req{}
				for _, r := range alt {
					if r.CallerVisible {
						t.Errorf("requirement %q is caller-visible", r.Scheme)
					}
					var scopes []string
					if len(r.Scopes) > 0 {
						scopes = r.Scopes
					}
					g = append(g, req{r.Scheme, r.Kind, scopes})
				}
				got = append(got, g)
			}
			want := tt.want
			for i := range want {
				if want[i] == nil {
					want[i] = []req{}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("auth = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSwaggerSigV4Operation(t *testing.T) {
	res := analyze(t, doc20(`securityDefinitions:
  iam:
    type: apiKey
    in: header
    name: Authorization
    x-amazon-apigateway-authtype: awsSigv4
security: [{iam: []}]
paths:
  /query:
    post:
      parameters:
        - {name: X-Amz-Date, in: header, type: string}
        - {name: X-Amz-Security-Token, in: header, type: string}
        - {name: Authorization, in: header, type: string}
        - {name: limit, in: query, type: integer}
      responses: {'200': {description: ok}}
`))
	op := operation(t, res, "POST /query")
	if len(op.Auth) != 1 || len(op.Auth[0]) != 1 || op.Auth[0][0].Kind != analysis.KindAWSSigV4 || op.Auth[0][0].Scheme != "iam" {
		t.Fatalf("auth = %+v", op.Auth)
	}
	for _, name := range []string{"X-Amz-Date", "X-Amz-Security-Token", "Authorization"} {
		if !excluded(op, name, analysis.LocationHeader, analysis.ExcludedSchemeCredential) {
			t.Errorf("%s not excluded as the SigV4 scheme's: %+v", name, op.Excluded)
		}
	}
	if props := properties(t, op); len(props) != 1 || props["limit"] == nil {
		t.Errorf("inputs = %v, want only limit", props)
	}
}

func TestSwaggerFormData(t *testing.T) {
	res := analyze(t, doc20(`consumes: [application/json]
parameters:
  Channel: {name: channel, in: formData, type: string, required: true}
paths:
  /chat.postMessage:
    post:
      consumes: [application/x-www-form-urlencoded, application/json]
      parameters:
        - $ref: '#/parameters/Channel'
        - {name: text, in: formData, type: string}
        - {name: token, in: formData, type: string, required: true, default: xoxb-literal-token-value}
        - {name: client_secret, in: formData, type: string}
      responses: {'200': {description: ok}}
  /default-form:
    post:
      parameters:
        - {name: note, in: formData, type: string}
      responses: {'200': {description: ok}}
  /files.upload:
    parameters:
      - {name: title, in: formData, type: string}
    post:
      consumes: [application/x-www-form-urlencoded, multipart/form-data]
      parameters:
        - {name: file, in: formData, type: file, required: true}
      responses: {'200': {description: ok}}
  /file-only:
    put:
      consumes: [application/octet-stream]
      parameters:
        - {name: file, in: formData, type: file}
      responses: {'200': {description: ok}}
`))
	post := operation(t, res, "POST /chat.postMessage")
	if post.Request.ContentType != "application/x-www-form-urlencoded" || post.Request.Body != analysis.BodyProperties || post.Unsupported != "" {
		t.Errorf("request = %+v, unsupported %q", post.Request, post.Unsupported)
	}
	if f := field(t, post, "channel"); f.In != analysis.LocationBody || f.Name != "channel" || !f.Required {
		t.Errorf("channel field = %+v", f)
	}
	if _, has := property(t, post, "channel")["required"]; has {
		t.Errorf("form field schema lists itself as required: %v", property(t, post, "channel"))
	}
	if f := field(t, post, "text"); f.In != analysis.LocationBody || f.Required {
		t.Errorf("text field = %+v", f)
	}
	props := properties(t, post)
	for _, name := range []string{"token", "client_secret"} {
		if _, has := props[name]; has {
			t.Errorf("credential form field %q is a tool input", name)
		}
		if !excluded(post, name, analysis.LocationBody, analysis.ExcludedInferredCredential) {
			t.Errorf("form field %q not excluded as an inferred credential: %+v", name, post.Excluded)
		}
	}
	if len(post.InferredAuth) != 2 || post.InferredAuth[0].In != analysis.LocationBody {
		t.Errorf("inferred auth = %+v", post.InferredAuth)
	}
	if encoded, err := json.Marshal(res); err != nil || strings.Contains(string(encoded), "xoxb-literal-token-value") {
		t.Errorf("the credential's default value reaches the result (err %v)", err)
	}

	if ct := operation(t, res, "POST /default-form").Request.ContentType; ct != "application/x-www-form-urlencoded" {
		t.Errorf("form without consumes: content type %q", ct)
	}

	upload := operation(t, res, "POST /files.upload")
	if upload.Request.ContentType != "multipart/form-data" || upload.Request.Body != analysis.BodyProperties {
		t.Errorf("upload request = %+v", upload.Request)
	}
	if p := property(t, upload, "file"); p["type"] != "string" || p["format"] != "binary" {
		t.Errorf("file property = %v", p)
	}
	if f := field(t, upload, "title"); f.In != analysis.LocationBody {
		t.Errorf("path-level form field = %+v", f)
	}
	if ct := operation(t, res, "PUT /file-only").Request.ContentType; ct != "multipart/form-data" {
		t.Errorf("file without a form media type: content type %q", ct)
	}
}

func excluded(op analysis.Operation, name string, in analysis.Location, reason analysis.ExclusionReason) bool {
	for _, e := range op.Excluded {
		if e.Name == name && e.In == in && e.Reason == reason {
			return true
		}
	}
	return false
}

func TestSwaggerBodyAndMediaTypes(t *testing.T) {
	res := analyze(t, doc20(`produces: [application/json]
definitions:
  Pet:
    type: object
    required: [name]
    properties:
      name: {type: string}
      id: {type: integer, readOnly: true}
paths:
  /pets:
    post:
      parameters:
        - {name: pet, in: body, required: true, schema: {$ref: '#/definitions/Pet'}}
      responses:
        '201': {description: created, schema: {$ref: '#/definitions/Pet'}}
  /pets/{id}:
    put:
      consumes: [application/merge-patch+json]
      parameters:
        - {name: id, in: path, type: integer, required: true}
        - {name: pet, in: body, schema: {$ref: '#/definitions/Pet'}}
      responses:
        '200': {description: ok, schema: {$ref: '#/definitions/Pet'}}
  /pets.xml:
    get:
      produces: [application/xml]
      responses:
        '200': {description: ok, schema: {$ref: '#/definitions/Pet'}}
  /search:
    get:
      parameters:
        - {name: tags, in: query, type: array, items: {type: string}}
        - {name: ids, in: query, type: array, items: {type: integer}, collectionFormat: multi}
        - {name: codes, in: query, type: array, items: [{type: integer, minimum: 1}], collectionFormat: pipes}
      responses: {'200': {description: ok}}
`))
	post := operation(t, res, "POST /pets")
	if post.Request.ContentType != "application/json" || post.Request.Body != analysis.BodyProperties {
		t.Errorf("body without consumes: request %+v", post.Request)
	}
	if f := field(t, post, "name"); !f.Required || f.In != analysis.LocationBody {
		t.Errorf("name field = %+v", f)
	}
	if _, has := properties(t, post)["id"]; has {
		t.Error("readOnly body property is a tool input")
	}
	if post.Response.Status != "201" || post.Response.ContentType != "application/json" || len(post.OutputSchema) == 0 {
		t.Errorf("response = %+v, output schema %s", post.Response, post.OutputSchema)
	}
	if ct := operation(t, res, "PUT /pets/{id}").Request.ContentType; ct != "application/merge-patch+json" {
		t.Errorf("operation consumes: content type %q", ct)
	}
	if xml := operation(t, res, "GET /pets.xml"); len(xml.OutputSchema) != 0 || xml.Response.Status != "" {
		t.Errorf("XML-only response has an output schema: %+v", xml.Response)
	}
	search := operation(t, res, "GET /search")
	if f := field(t, search, "tags"); f.Style != "form" || f.Explode == nil || *f.Explode {
		t.Errorf("query list without collectionFormat = %+v, want comma-separated (form, explode false)", f)
	}
	if f := field(t, search, "ids"); f.Style != "form" || f.Explode == nil || !*f.Explode {
		t.Errorf("multi query list = %+v, want repeated (form, explode true)", f)
	}
	if f := field(t, search, "codes"); f.Style != "pipeDelimited" {
		t.Errorf("pipes query list = %+v", f)
	}
	if items, _ := property(t, search, "codes")["items"].(map[string]any); items["type"] != "integer" || items["minimum"] != 1.0 {
		t.Errorf("list items written as a one-element list: %v", property(t, search, "codes"))
	}
}

func TestSwaggerUndeclaredAuth(t *testing.T) {
	res := analyze(t, doc20(`securityDefinitions:
  oauth: {type: oauth2, flow: accessCode, authorizationUrl: 'https://a.example.com/auth', tokenUrl: 'https://a.example.com/token', scopes: {}}
paths:
  /payments:
    post:
      security: [{oauth: []}]
      parameters:
        - {name: Authorization, in: header, type: string, required: true}
        - {name: x-jws-signature, in: header, type: string, required: true}
        - {name: x-fapi-interaction-id, in: header, type: string}
        - {name: body, in: body, schema: {type: object, properties: {amount: {type: number}}}}
      responses: {'201': {description: ok}}
  /legacy:
    get:
      parameters:
        - {name: api_key, in: query, type: string, x-example: literal-example-key}
      responses: {'200': {description: ok}}
`))
	pay := operation(t, res, "POST /payments")
	if !excluded(pay, "Authorization", analysis.LocationHeader, analysis.ExcludedSchemeCredential) {
		t.Errorf("Authorization not excluded as the scheme's credential: %+v", pay.Excluded)
	}
	if !excluded(pay, "x-jws-signature", analysis.LocationHeader, analysis.ExcludedInferredCredential) {
		t.Errorf("x-jws-signature not excluded: %+v", pay.Excluded)
	}
	if len(pay.InferredAuth) != 1 || pay.InferredAuth[0].Kind != analysis.KindHMAC || !pay.InferredAuth[0].Inferred {
		t.Errorf("inferred auth = %+v", pay.InferredAuth)
	}
	props := properties(t, pay)
	if _, has := props["x-fapi-interaction-id"]; !has {
		t.Errorf("business header missing from inputs: %v", props)
	}
	legacy := operation(t, res, "GET /legacy")
	if len(legacy.Auth) != 0 || len(legacy.InferredAuth) != 1 || legacy.InferredAuth[0].Kind != analysis.KindAPIKey ||
		legacy.InferredAuth[0].In != analysis.LocationQuery || legacy.InferredAuth[0].Param != "api_key" {
		t.Errorf("auth %+v, inferred %+v", legacy.Auth, legacy.InferredAuth)
	}
	if encoded, _ := json.Marshal(res); strings.Contains(string(encoded), "literal-example-key") {
		t.Error("an example credential value reaches the result")
	}
}

// TestSwaggerNormalisation covers what kin-openapi's Swagger model cannot
// decode as written, in JSON as real descriptions (Slack's) write it.
func TestSwaggerNormalisation(t *testing.T) {
	res := analyze(t, `{"swagger": "2.0", "info": {"title": "t", "version": "1"},
 "definitions": {
  "message": {"type": "object", "properties": {"text": {"type": "string"}}},
  "channel": {"type": "object", "properties": {
    "latest": {"items": [{"$ref": "#/definitions/message"}, {"type": "null"}]},
    "topic": {"type": ["null", "string"], "required": true},
    "members": {"type": "array", "items": {"type": "string"}, "minItems": 1.0, "maxItems": -1},
    "score": {"type": "number", "exclusiveMinimum": 0},
    "kind": {"type": "string", "discriminator": {"propertyName": "x"}}
  }}
 },
 "paths": {
  "x-generator": "tool",
  "/channels": {
   "post": {
    "parameters": [{"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/channel"}}],
    "responses": {"x-note": "n", "200": {"description": "ok", "schema": {"$ref": "#/definitions/channel"}}}
   }
  }
 }}`)
	if len(res.Operations) != 1 {
		t.Fatalf("operations = %d", len(res.Operations))
	}
	op := res.Operations[0]
	var out struct {
		Properties map[string]map[string]any `json:"properties"`
		Required   []string                  `json:"required"`
	}
	if err := json.Unmarshal(op.OutputSchema, &out); err != nil {
		t.Fatal(err)
	}
	latest, _ := json.Marshal(out.Properties["latest"])
	if want := `{"prefixItems":[{"properties":{"text":{"type":"string"}},"type":"object"},{"type":"null"}]}`; string(latest) != want {
		t.Errorf("tuple items: %s, want %s", latest, want)
	}
	if topic, _ := json.Marshal(out.Properties["topic"]); string(topic) != `{"type":["null","string"]}` {
		t.Errorf("type list: %s", topic)
	}
	if !reflect.DeepEqual(out.Required, []string{"topic"}) {
		t.Errorf("required = %v, want [topic] from the property's required: true", out.Required)
	}
	if members, _ := json.Marshal(out.Properties["members"]); string(members) != `{"items":{"type":"string"},"minItems":1,"type":"array"}` {
		t.Errorf("bounds: %s", members)
	}
	if score, _ := json.Marshal(out.Properties["score"]); string(score) != `{"exclusiveMinimum":0,"type":"number"}` {
		t.Errorf("numeric exclusive bound: %s", score)
	}
	if f := field(t, op, "topic"); !f.Required || f.In != analysis.LocationBody {
		t.Errorf("topic input = %+v", f)
	}
}

func TestSwaggerYAMLAnchorsAndMerges(t *testing.T) {
	res := analyze(t, doc20(`x-common: &common
  responses:
    '200': {description: ok, schema: {type: object, properties: {id: {type: integer}}}}
paths:
  /a:
    get:
      <<: *common
      operationId: getA
  /b:
    get:
      <<: *common
      operationId: getB
      responses:
        '204': {description: empty}
`))
	if a := operation(t, res, "GET /a"); a.Response.Status != "200" || a.OperationID != "getA" {
		t.Errorf("merged operation: %+v %q", a.Response, a.OperationID)
	}
	if b := operation(t, res, "GET /b"); b.Response.Status != "" {
		t.Errorf("a key written beside a merge must win: %+v", b.Response)
	}
}

func TestSwaggerRefusals(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		pointer string
		line    int
		msg     string
	}{
		{
			name:    "wrong type in yaml",
			doc:     doc20("paths:\n  /a:\n    get:\n      parameters: nope\n      responses: {}\n"),
			pointer: "/paths/~1a/get/parameters", line: 8, msg: "found a string where a list is expected",
		},
		{
			name: "wrong type in json",
			doc: "{\"swagger\": \"2.0\",\n \"info\": {\"title\": \"t\", \"version\": \"1\"},\n \"definitions\": {\n  \"A\": {\"type\": \"object\",\n" +
				"   \"properties\": {\"n\": {\"pattern\": 5}}}\n }, \"paths\": {}}",
			pointer: "/definitions/A/properties/n/pattern", line: 5, msg: "found a number where a string is expected",
		},
		{
			name:    "number out of range",
			doc:     "{\"swagger\": \"2.0\", \"info\": {\"title\": \"t\", \"version\": \"1\"},\n \"paths\": {\"/a\": {\"get\": {\"parameters\": [\n  {\"name\": \"n\", \"in\": \"query\", \"type\": \"number\",\n   \"maximum\": 1e999}], \"responses\": {}}}}}",
			pointer: "/paths/~1a/get/parameters/0/maximum", line: 4, msg: "found a number out of range where a number is expected",
		},
		{
			name:    "two body parameters",
			doc:     doc20("paths:\n  /a:\n    post:\n      parameters:\n        - {name: a, in: body, schema: {type: object}}\n        - {name: b, in: body, schema: {type: object}}\n      responses: {}\n"),
			pointer: "/paths/~1a/post/parameters", line: 9, msg: "more than one body parameter",
		},
		{
			name:    "body beside form fields",
			doc:     doc20("paths:\n  /a:\n    parameters:\n      - {name: f, in: formData, type: string}\n    post:\n      parameters:\n        - {name: b, in: body, schema: {type: object}}\n      responses: {}\n"),
			pointer: "/paths/~1a/post/parameters", line: 11, msg: "body parameter and formData",
		},
		{
			name:    "unresolvable reference",
			doc:     doc20("paths:\n  /a:\n    get:\n      responses:\n        '200': {description: ok, schema: {$ref: '#/definitions/Missing'}}\n"),
			pointer: "/paths/~1a/get/responses/200/schema", line: 9, msg: `"#/definitions/Missing"`,
		},
		{
			name:    "external reference",
			doc:     doc20("paths:\n  /a:\n    get:\n      responses:\n        '200': {description: ok, schema: {$ref: 'other.yaml#/Pet'}}\n"),
			pointer: "/paths/~1a/get/responses/200/schema", line: 9, msg: "must be self-contained",
		},
		{
			name:    "host with a scheme",
			doc:     doc20("host: https://api.example.com\npaths: {}\n"),
			pointer: "/host", line: 5, msg: "without a scheme",
		},
		{
			name:    "wrong type inside info",
			doc:     "swagger: '2.0'\ninfo:\n  title: t\n  version: '1'\n  contact: {name: [a, b]}\npaths: {}\n",
			pointer: "/info/contact/name", line: 5, msg: "found a list where a string is expected",
		},
		{
			name: "not an object",
			doc:  `{"swagger": "2.0", "info": [], "paths": {}}`, pointer: "/info", line: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := analysis.Analyze([]byte(tt.doc), analysis.Options{})
			if err == nil {
				t.Fatalf("no error; %d operations", len(res.Operations))
			}
			var ie *analysis.InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, analysis.ErrInvalid) {
				t.Fatalf("err = %v (%T), want an *InvalidError", err, err)
			}
			if ie.Pointer != tt.pointer || ie.Line != tt.line {
				t.Errorf("location = %q line %d, want %q line %d (%v)", ie.Pointer, ie.Line, tt.pointer, tt.line, err)
			}
			if !strings.Contains(ie.Msg, tt.msg) {
				t.Errorf("message %q does not contain %q", ie.Msg, tt.msg)
			}
		})
	}
}

func TestSwaggerNestedReferences(t *testing.T) {
	res := analyze(t, doc20(`definitions:
  A: {type: object, properties: {n: {type: string}}}
  M:
    type: object
    additionalProperties:
      type: object
      properties:
        a: {$ref: '#/definitions/A'}
paths:
  /x:
    get:
      responses:
        '200': {description: ok, schema: {$ref: '#/definitions/M'}}
`))
	want := `{"additionalProperties":{"properties":{"a":{"properties":{"n":{"type":"string"}},"type":"object"}},"type":"object"},"type":"object"}`
	if got := string(operation(t, res, "GET /x").OutputSchema); got != want {
		t.Errorf("output schema = %s, want %s", got, want)
	}
}
