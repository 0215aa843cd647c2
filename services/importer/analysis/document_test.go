package analysis_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

// TestNewDocumentEmpty checks that a Result with nothing set still encodes
// every key the review's specification names: lists as [], strings as "",
// and an empty object schema for an operation without inputs.
func TestNewDocumentEmpty(t *testing.T) {
	res := &analysis.Result{
		Schemes:     []analysis.Scheme{{Name: "mtls", Kind: analysis.KindMutualTLS, Type: "mutualTLS"}},
		Operations:  []analysis.Operation{{Method: "GET", Path: "/x", Tool: analysis.Tool{Name: "get_x"}, Auth: [][]analysis.Requirement{{}}}},
		Diagnostics: []analysis.Diagnostic{{Level: analysis.LevelWarning, Message: "m"}},
	}
	b, err := json.Marshal(analysis.NewDocument(res))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"format":"","spec_version":"","title":"","version":"","servers":[],` +
		`"schemes":[{"name":"mtls","kind":"mutualTLS","in":"","param":"","flows":[],"scopes":[],"type":"mutualTLS"}],` +
		`"operations":[{"method":"GET","path":"/x","operation_id":"","tool":"get_x","auth":[[]],"inferred_auth":[],` +
		`"input_schema":{"type":"object","properties":{}},"unsupported":"","description":"","auth_source":"","annotations":{},` +
		`"servers":[],"request":{"body":"","fields":[]},"response":{},"excluded":[]}],` +
		`"diagnostics":[{"level":"warning","message":"m","pointer":""}]}`
	if string(b) != want {
		t.Fatalf("document =\n%s\nwant\n%s", b, want)
	}

	b, err = json.Marshal(analysis.NewDocument(&analysis.Result{}))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"format":"","spec_version":"","title":"","version":"","servers":[],"schemes":[],"operations":[],"diagnostics":[]}`; string(b) != want {
		t.Fatalf("empty document = %s, want %s", b, want)
	}
}

const documentDoc = `openapi: 3.0.3
info: {title: Review, version: '3'}
servers:
  - url: https://{region}.api.example/v1
    variables:
      region: {default: eu, enum: [eu, us]}
components:
  securitySchemes:
    oauth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example/token
          scopes: {read: Read}
    key: {type: apiKey, in: header, name: X-API-Key}
security:
  - oauth: [read]
paths:
  /items:
    get:
      operationId: listItems
      parameters:
        - {name: X-API-Key, in: header, example: CANARY-SECRET-VALUE, schema: {type: string}}
        - {name: access_token, in: query, schema: {type: string, default: CANARY-SECRET-VALUE}}
        - {name: limit, in: query, schema: {type: integer}}
      security: [{key: []}, {oauth: [read]}]
      responses: {'200': {description: ok}}
  /public:
    get:
      operationId: getPublic
      security: []
      servers: [{url: 'https://public.example'}]
      responses: {'200': {description: ok}}
`

// TestNewDocument checks the mapping of an analysed description: servers as
// URL strings, auth alternatives and inferred credentials, [] for no auth,
// and no credential value anywhere in the encoding.
func TestNewDocument(t *testing.T) {
	res := analyze(t, documentDoc)
	before, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	doc := analysis.NewDocument(res)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(res); !bytes.Equal(before, after) {
		t.Fatal("NewDocument modified its input")
	}
	if strings.Contains(string(b), "CANARY") {
		t.Fatalf("a credential value reached the document: %s", b)
	}
	if again, _ := json.Marshal(analysis.NewDocument(res)); !bytes.Equal(b, again) {
		t.Fatal("two encodings of the same result differ")
	}

	if doc.Format != analysis.FormatOpenAPI30 || doc.Title != "Review" || doc.Version != "3" || doc.SpecVersion != "3.0.3" {
		t.Errorf("about = %q %q %q %q", doc.Format, doc.Title, doc.Version, doc.SpecVersion)
	}
	if !slices.Equal(doc.Servers, []string{"https://eu.api.example/v1"}) {
		t.Errorf("servers = %q", doc.Servers)
	}
	if len(doc.Schemes) != 2 || doc.Schemes[1].Name != "oauth" || len(doc.Schemes[1].Flows) != 1 ||
		doc.Schemes[1].Flows[0].TokenURL != "https://auth.example/token" || !slices.Equal(doc.Schemes[1].Scopes, []string{"read"}) {
		t.Errorf("schemes = %+v", doc.Schemes)
	}
	if len(doc.Operations) != 2 {
		t.Fatalf("operations = %d, want 2", len(doc.Operations))
	}
	list, public := doc.Operations[0], doc.Operations[1]
	if list.OperationID != "listItems" || list.Tool != res.Operations[0].Name || list.Tool == "" {
		t.Errorf("listItems = %q %q", list.OperationID, list.Tool)
	}
	if len(list.Auth) != 2 || len(list.Auth[0]) != 1 || list.Auth[0][0].Scheme != "key" || list.Auth[0][0].In != analysis.LocationHeader ||
		list.Auth[0][0].Param != "X-API-Key" || list.Auth[1][0].Kind != analysis.KindOAuth2 || list.Auth[0][0].CallerVisible {
		t.Errorf("listItems auth = %+v", list.Auth)
	}
	if len(list.InferredAuth) != 1 || list.InferredAuth[0].Param != "access_token" || !list.InferredAuth[0].Inferred {
		t.Errorf("listItems inferred_auth = %+v", list.InferredAuth)
	}
	if !bytes.Equal(list.InputSchema, res.Operations[0].InputSchema) || bytes.Contains(list.InputSchema, []byte("access_token")) {
		t.Errorf("listItems input_schema = %s", list.InputSchema)
	}
	if public.Auth == nil || len(public.Auth) != 0 || !slices.Equal(public.Servers, []string{"https://public.example"}) {
		t.Errorf("getPublic auth = %#v, servers = %q", public.Auth, public.Servers)
	}
	if !strings.Contains(string(b), `"auth":[]`) {
		t.Errorf(`no "auth":[] in %s`, b)
	}
}

// TestDocumentDecodesIntoResult checks that a Document's encoding decodes
// into a Result, servers included, and that a Server still decodes from
// its object.
func TestDocumentDecodesIntoResult(t *testing.T) {
	res := analyze(t, documentDoc)
	b, err := json.Marshal(analysis.NewDocument(res))
	if err != nil {
		t.Fatal(err)
	}
	var got analysis.Result
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("document does not decode into a Result: %v", err)
	}
	if got.Title != "Review" || len(got.Servers) != 1 || got.Servers[0].URL != "https://eu.api.example/v1" ||
		len(got.Operations) != 2 || got.Operations[1].Servers[0].URL != "https://public.example" || got.Operations[0].Name != res.Operations[0].Name {
		t.Fatalf("decoded = %+v", got)
	}

	tests := []struct {
		name, in string
		want     analysis.Server
		wantErr  bool
	}{
		{name: "string", in: `"https://a.example"`, want: analysis.Server{URL: "https://a.example"}},
		{name: "object", in: `{"url":"https://eu.a.example","template":"https://{r}.a.example","variables":[{"name":"r","default":"eu"}]}`,
			want: analysis.Server{URL: "https://eu.a.example", Template: "https://{r}.a.example"}},
		{name: "null keeps the value", in: `null`, want: analysis.Server{URL: "https://kept.example"}},
		{name: "number", in: `3`, wantErr: true},
		{name: "bad string", in: `"\x"`, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := analysis.Server{URL: "https://kept.example"}
			err := s.UnmarshalJSON([]byte(tc.in))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("decoded %s as %+v", tc.in, s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.URL != tc.want.URL || s.Template != tc.want.Template {
				t.Fatalf("server = %+v, want %+v", s, tc.want)
			}
		})
	}
	var round []analysis.Server
	if err := json.Unmarshal([]byte(`[{"url":"https://x.example","variables":[{"name":"v","default":"d"}]}]`), &round); err != nil ||
		len(round) != 1 || len(round[0].Variables) != 1 || round[0].Variables[0].Default != "d" {
		t.Fatalf("object form = %+v, %v", round, err)
	}
}
