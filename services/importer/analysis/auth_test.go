package analysis_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

const schemesDoc = `paths:
  /x:
    get:
      responses:
        '200': {description: ok}
components:
  securitySchemes:
    HeaderKey: {type: apiKey, in: header, name: X-API-Key}
    QueryKey: {type: apiKey, in: query, name: api_key}
    CookieKey: {type: apiKey, in: cookie, name: session}
    AuthzKey: {type: apiKey, in: header, name: Authorization}
    Sigv4:
      type: apiKey
      in: header
      name: Authorization
      x-amazon-apigateway-authtype: awsSigv4
    Bearer: {type: http, scheme: bearer, bearerFormat: JWT}
    Basic: {type: http, scheme: basic}
    Digest: {type: http, scheme: Digest}
    DPoP: {type: http, scheme: DPoP}
    OAuth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.test/token
          scopes: {write: write things, read: read things}
        authorizationCode:
          authorizationUrl: https://auth.example.test/authorize
          tokenUrl: https://auth.example.test/token
          refreshUrl: https://auth.example.test/refresh
          scopes: {read: read things}
    OIDC: {type: openIdConnect, openIdConnectUrl: https://auth.example.test/.well-known/openid-configuration}
    MTLS: {type: mutualTLS}
`

func TestSchemeClassification(t *testing.T) {
	res := analyze(t, "openapi: 3.1.0\ninfo: {title: T, version: '1'}\n"+schemesDoc)
	byName := map[string]analysis.Scheme{}
	for _, s := range res.Schemes {
		byName[s.Name] = s
	}
	tests := []struct {
		name  string
		kind  analysis.Kind
		in    analysis.Location
		param string
	}{
		{"HeaderKey", analysis.KindAPIKey, analysis.LocationHeader, "X-API-Key"},
		{"QueryKey", analysis.KindAPIKey, analysis.LocationQuery, "api_key"},
		{"CookieKey", analysis.KindAPIKey, analysis.LocationCookie, "session"},
		{"AuthzKey", analysis.KindHTTPBearer, analysis.LocationHeader, "Authorization"},
		{"Sigv4", analysis.KindAWSSigV4, analysis.LocationHeader, "Authorization"},
		{"Bearer", analysis.KindHTTPBearer, analysis.LocationHeader, "Authorization"},
		{"Basic", analysis.KindHTTPBasic, analysis.LocationHeader, "Authorization"},
		{"Digest", analysis.KindHTTPDigest, analysis.LocationHeader, "Authorization"},
		{"DPoP", analysis.KindHTTPOther, analysis.LocationHeader, "Authorization"},
		{"OAuth", analysis.KindOAuth2, analysis.LocationHeader, "Authorization"},
		{"OIDC", analysis.KindOpenIDConnect, analysis.LocationHeader, "Authorization"},
		{"MTLS", analysis.KindMutualTLS, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := byName[tt.name]
			if !ok {
				t.Fatalf("scheme %q missing", tt.name)
			}
			if s.Kind != tt.kind || s.In != tt.in || s.Param != tt.param {
				t.Errorf("got kind=%s in=%s param=%s, want %s %s %s", s.Kind, s.In, s.Param, tt.kind, tt.in, tt.param)
			}
		})
	}
	t.Run("bearer format", func(t *testing.T) {
		if got := byName["Bearer"].BearerFormat; got != "JWT" {
			t.Errorf("bearer format = %q", got)
		}
	})
	t.Run("oauth2 flows", func(t *testing.T) {
		s := byName["OAuth"]
		want := []analysis.Flow{
			{Type: "clientCredentials", TokenURL: "https://auth.example.test/token", Scopes: []string{"read", "write"}},
			{Type: "authorizationCode", AuthorizationURL: "https://auth.example.test/authorize", TokenURL: "https://auth.example.test/token", RefreshURL: "https://auth.example.test/refresh", Scopes: []string{"read"}},
		}
		if !reflect.DeepEqual(s.Flows, want) {
			t.Errorf("flows = %+v", s.Flows)
		}
		if !reflect.DeepEqual(s.Scopes, []string{"read", "write"}) {
			t.Errorf("scopes = %v", s.Scopes)
		}
	})
	t.Run("openid connect url", func(t *testing.T) {
		if got := byName["OIDC"].OpenIDConnectURL; got != "https://auth.example.test/.well-known/openid-configuration" {
			t.Errorf("url = %q", got)
		}
	})
}

// authNames renders an operation's auth as scheme names; scopes alongside.
func authNames(op analysis.Operation) [][]string {
	out := [][]string{}
	for _, alt := range op.Auth {
		names := []string{}
		for _, r := range alt {
			names = append(names, r.Scheme)
		}
		out = append(out, names)
	}
	return out
}

func TestEffectiveRequirement(t *testing.T) {
	doc := doc30(`security:
  - Key: []
paths:
  /inherit:
    get:
      responses: {'200': {description: ok}}
  /override:
    get:
      security:
        - OAuth: [read, write]
      responses: {'200': {description: ok}}
  /public:
    get:
      security: []
      responses: {'200': {description: ok}}
  /or:
    get:
      security:
        - Key: []
        - OAuth: [read]
      responses: {'200': {description: ok}}
  /and:
    get:
      security:
        - Key: []
          Project: []
      responses: {'200': {description: ok}}
  /anonymous:
    get:
      security:
        - {}
        - Key: []
      responses: {'200': {description: ok}}
  /undefined:
    get:
      security:
        - Missing: []
      responses: {'200': {description: ok}}
components:
  securitySchemes:
    Key: {type: apiKey, in: header, name: X-API-Key}
    Project: {type: apiKey, in: header, name: X-Project}
    OAuth:
      type: oauth2
      flows:
        clientCredentials:
          tokenUrl: https://auth.example.test/token
          scopes: {read: r, write: w}
`)
	res := analyze(t, doc)
	tests := []struct {
		path   string
		want   [][]string
		source analysis.AuthSource
	}{
		{"/inherit", [][]string{{"Key"}}, analysis.AuthFromDocument},
		{"/override", [][]string{{"OAuth"}}, analysis.AuthFromOperation},
		{"/public", [][]string{}, analysis.AuthFromOperation},
		{"/or", [][]string{{"Key"}, {"OAuth"}}, analysis.AuthFromOperation},
		{"/and", [][]string{{"Key", "Project"}}, analysis.AuthFromOperation},
		{"/anonymous", [][]string{{}, {"Key"}}, analysis.AuthFromOperation},
		{"/undefined", [][]string{{"Missing"}}, analysis.AuthFromOperation},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			op := operation(t, res, "GET "+tt.path)
			if got := authNames(op); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("auth = %v, want %v", got, tt.want)
			}
			if op.AuthSource != tt.source {
				t.Errorf("source = %s, want %s", op.AuthSource, tt.source)
			}
			for _, alt := range op.Auth {
				for _, r := range alt {
					if r.CallerVisible {
						t.Errorf("requirement %s is caller-visible", r.Scheme)
					}
				}
			}
		})
	}
	t.Run("scopes kept", func(t *testing.T) {
		op := operation(t, res, "GET /override")
		if got := op.Auth[0][0].Scopes; !reflect.DeepEqual(got, []string{"read", "write"}) {
			t.Errorf("scopes = %v", got)
		}
	})
	t.Run("undefined scheme is unknown with a diagnostic", func(t *testing.T) {
		op := operation(t, res, "GET /undefined")
		if op.Auth[0][0].Kind != analysis.KindUnknown {
			t.Errorf("kind = %s", op.Auth[0][0].Kind)
		}
		found := false
		for _, d := range res.Diagnostics {
			if d.Pointer == "/paths/~1undefined/get/security/0" && d.Level == analysis.LevelWarning {
				found = true
			}
		}
		if !found {
			t.Errorf("no diagnostic at the undefined reference: %+v", res.Diagnostics)
		}
	})
	t.Run("no security anywhere", func(t *testing.T) {
		res := analyze(t, doc30("paths:\n  /x:\n    get:\n      responses: {'200': {description: ok}}\n"))
		op := operation(t, res, "GET /x")
		if len(op.Auth) != 0 || op.AuthSource != analysis.AuthNone {
			t.Errorf("auth = %v from %s", op.Auth, op.AuthSource)
		}
	})
}

func excludedNames(op analysis.Operation) map[string]analysis.ExclusionReason {
	out := map[string]analysis.ExclusionReason{}
	for _, e := range op.Excluded {
		out[string(e.In)+":"+e.Name] = e.Reason
	}
	return out
}

func TestCredentialParametersHidden(t *testing.T) {
	t.Run("declared scheme parameters", func(t *testing.T) {
		res := analyze(t, doc30(`security:
  - Key: []
    Cookie: []
  - Bearer: []
paths:
  /x:
    get:
      parameters:
        - {name: x-api-key, in: header, required: true, schema: {type: string}}
        - {name: sid, in: cookie, schema: {type: string}}
        - {name: Authorization, in: header, schema: {type: string}}
        - {name: q, in: query, schema: {type: string}}
      responses: {'200': {description: ok}}
components:
  securitySchemes:
    Key: {type: apiKey, in: header, name: X-API-Key}
    Cookie: {type: apiKey, in: cookie, name: sid}
    Bearer: {type: http, scheme: bearer}
`))
		op := operation(t, res, "GET /x")
		want := map[string]analysis.ExclusionReason{
			"header:x-api-key":     analysis.ExcludedSchemeCredential,
			"cookie:sid":           analysis.ExcludedSchemeCredential,
			"header:Authorization": analysis.ExcludedSchemeCredential,
		}
		if got := excludedNames(op); !reflect.DeepEqual(got, want) {
			t.Errorf("excluded = %v", got)
		}
		if got := properties(t, op); len(got) != 1 || got["q"] == nil {
			t.Errorf("properties = %v, want only q", got)
		}
		if len(op.InferredAuth) != 0 {
			t.Errorf("inferred = %+v, want none", op.InferredAuth)
		}
	})

	t.Run("declared scheme outside the effective requirement", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /x:
    get:
      security:
        - Key: []
      parameters:
        - {name: X-Project, in: header, schema: {type: string}}
      responses: {'200': {description: ok}}
components:
  securitySchemes:
    Key: {type: apiKey, in: header, name: X-API-Key}
    Project: {type: apiKey, in: header, name: X-Project}
`))
		op := operation(t, res, "GET /x")
		if len(properties(t, op)) != 0 {
			t.Errorf("properties = %v", properties(t, op))
		}
		want := []analysis.Requirement{{Scheme: "Project", Kind: analysis.KindAPIKey, In: analysis.LocationHeader, Param: "X-Project", Scopes: []string{}, Inferred: true}}
		if !reflect.DeepEqual(op.InferredAuth, want) {
			t.Errorf("inferred = %+v", op.InferredAuth)
		}
	})

	t.Run("undeclared credentials", func(t *testing.T) {
		tests := []struct {
			name, in string
			kind     analysis.Kind
		}{
			{"Authorization", "header", analysis.KindHTTPBearer},
			{"X-API-Key", "header", analysis.KindAPIKey},
			{"api_key", "query", analysis.KindAPIKey},
			{"apikey", "query", analysis.KindAPIKey},
			{"api-key", "header", analysis.KindAPIKey},
			{"access_token", "query", analysis.KindAPIKey},
			{"token", "query", analysis.KindAPIKey},
			{"client_secret", "query", analysis.KindAPIKey},
			{"X-Auth-Token", "header", analysis.KindAPIKey},
			{"x-rapidapi-key", "header", analysis.KindAPIKey},
			{"key", "query", analysis.KindAPIKey},
			{"JSESSIONID", "cookie", analysis.KindAPIKey},
			{"connect.sid", "cookie", analysis.KindAPIKey},
			{"x-jws-signature", "header", analysis.KindHMAC},
			{"X-Hub-Signature-256", "header", analysis.KindHMAC},
			{"Proxy-Authorization", "header", analysis.KindUnknown},
		}
		for _, tt := range tests {
			t.Run(tt.in+"/"+tt.name, func(t *testing.T) {
				res := analyze(t, doc30(`paths:
  /x:
    get:
      parameters:
        - {name: '`+tt.name+`', in: `+tt.in+`, required: true, schema: {type: string}}
        - {name: q, in: query, schema: {type: string}}
      responses: {'200': {description: ok}}
`))
				op := operation(t, res, "GET /x")
				if _, has := properties(t, op)[tt.name]; has {
					t.Errorf("%s is a tool input", tt.name)
				}
				want := []analysis.Requirement{{Kind: tt.kind, In: analysis.Location(tt.in), Param: tt.name, Scopes: []string{}, Inferred: true}}
				if !reflect.DeepEqual(op.InferredAuth, want) {
					t.Errorf("inferred = %+v, want %+v", op.InferredAuth, want)
				}
				if got := excludedNames(op)[tt.in+":"+tt.name]; got != analysis.ExcludedInferredCredential {
					t.Errorf("exclusion reason = %q", got)
				}
			})
		}
	})

	t.Run("sigv4 signing parameters are one requirement", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /x:
    post:
      parameters:
        - {name: X-Amz-Date, in: header, schema: {type: string}}
        - {name: X-Amz-Signature, in: header, schema: {type: string}}
        - {name: X-Amz-Security-Token, in: header, schema: {type: string}}
        - {name: X-Amz-Target, in: header, schema: {type: string}}
      responses: {'200': {description: ok}}
`))
		op := operation(t, res, "POST /x")
		want := []analysis.Requirement{{Kind: analysis.KindAWSSigV4, In: analysis.LocationHeader, Scopes: []string{}, Inferred: true}}
		if !reflect.DeepEqual(op.InferredAuth, want) {
			t.Errorf("inferred = %+v", op.InferredAuth)
		}
		if props := properties(t, op); len(props) != 1 || props["X-Amz-Target"] == nil {
			t.Errorf("properties = %v, want only X-Amz-Target", props)
		}
	})

	t.Run("business names that merely contain token stay", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /x:
    get:
      parameters:
        - {name: next_page_token, in: query, schema: {type: string}}
        - {name: pageToken, in: query, schema: {type: string}}
        - {name: signatureType, in: query, schema: {type: string}}
        - {name: token, in: path, required: true, schema: {type: string}}
      responses: {'200': {description: ok}}
`))
		op := operation(t, res, "GET /x")
		if len(op.InferredAuth) != 0 {
			t.Errorf("inferred = %+v", op.InferredAuth)
		}
		if len(properties(t, op)) != 3 {
			t.Errorf("properties = %v", properties(t, op))
		}
	})

	t.Run("credential body fields", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /sms:
    post:
      requestBody:
        required: true
        content:
          application/x-www-form-urlencoded:
            schema:
              type: object
              required: [api_key, to]
              properties:
                api_key: {type: string}
                api_secret: {type: string}
                sig: {type: string}
                to: {type: string}
                text: {type: string}
      responses: {'200': {description: ok}}
`))
		op := operation(t, res, "POST /sms")
		props := properties(t, op)
		if len(props) != 2 || props["to"] == nil || props["text"] == nil {
			t.Errorf("properties = %v, want to and text", props)
		}
		kinds := map[string]analysis.Kind{}
		for _, r := range op.InferredAuth {
			if r.In != analysis.LocationBody || !r.Inferred {
				t.Errorf("requirement %+v", r)
			}
			kinds[r.Param] = r.Kind
		}
		want := map[string]analysis.Kind{"api_key": analysis.KindAPIKey, "api_secret": analysis.KindAPIKey, "sig": analysis.KindHMAC}
		if !reflect.DeepEqual(kinds, want) {
			t.Errorf("inferred kinds = %v", kinds)
		}
		if got := inputSchema(t, op)["required"]; !reflect.DeepEqual(got, []any{"to"}) {
			t.Errorf("required = %v", got)
		}
	})

	t.Run("credential field inside a whole body", func(t *testing.T) {
		res := analyze(t, doc30(`paths:
  /login/{to}:
    post:
      parameters:
        - {name: to, in: path, required: true, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/Login'}
      responses: {'200': {description: ok}}
components:
  schemas:
    Login:
      type: object
      required: [client_secret, to]
      properties:
        to: {type: string}
        client_secret: {type: string}
        user: {type: string}
`))
		op := operation(t, res, "POST /login/{to}")
		if op.Request.Body != analysis.BodyWhole {
			t.Fatalf("body = %s", op.Request.Body)
		}
		inner := property(t, op, "body")
		props := inner["properties"].(map[string]any)
		if _, has := props["client_secret"]; has || len(props) != 2 {
			t.Errorf("whole-body properties = %v", props)
		}
		if !reflect.DeepEqual(inner["required"], []any{"to"}) {
			t.Errorf("whole-body required = %v", inner["required"])
		}
		if len(op.InferredAuth) != 1 || op.InferredAuth[0].Param != "client_secret" || op.InferredAuth[0].In != analysis.LocationBody {
			t.Errorf("inferred = %+v", op.InferredAuth)
		}
	})

	t.Run("gateway-controlled headers", func(t *testing.T) {
		var params string
		headers := []string{"Host", "Content-Length", "Content-Type", "Accept-Encoding", "Connection", "Transfer-Encoding", "Cookie"}
		for _, h := range headers {
			params += "        - {name: " + h + ", in: header, schema: {type: string}}\n"
		}
		res := analyze(t, doc30("paths:\n  /x:\n    get:\n      parameters:\n"+params+"        - {name: Accept-Language, in: header, schema: {type: string}}\n      responses: {'200': {description: ok}}\n"))
		op := operation(t, res, "GET /x")
		if props := properties(t, op); len(props) != 1 || props["Accept-Language"] == nil {
			t.Errorf("properties = %v", props)
		}
		for _, h := range headers {
			if got := excludedNames(op)["header:"+h]; got != analysis.ExcludedGatewayHeader {
				t.Errorf("%s: reason %q", h, got)
			}
		}
		if len(op.InferredAuth) != 0 {
			t.Errorf("inferred = %+v", op.InferredAuth)
		}
	})
}

func TestRequirementsNeverCallerVisible(t *testing.T) {
	res := analyze(t, doc30(`security:
  - Key: []
paths:
  /x:
    get:
      parameters:
        - {name: access_token, in: query, schema: {type: string}}
      responses: {'200': {description: ok}}
components:
  securitySchemes:
    Key: {type: apiKey, in: header, name: X-API-Key}
`))
	for _, op := range res.Operations {
		all := slices.Clone(op.InferredAuth)
		for _, alt := range op.Auth {
			all = append(all, alt...)
		}
		if len(all) != 2 {
			t.Fatalf("requirements = %+v", all)
		}
		for _, r := range all {
			if r.CallerVisible {
				t.Errorf("%+v is caller-visible", r)
			}
		}
	}
}
