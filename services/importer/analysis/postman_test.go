package analysis_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

const (
	schema20 = "https://schema.getpostman.com/json/collection/v2.0.0/collection.json"
	schema21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
)

// collection encodes a Postman collection built from Go values.
func collection(t *testing.T, schema string, fields map[string]any) string {
	t.Helper()
	doc := map[string]any{"info": map[string]any{"name": "Test", "_postman_id": "0000", "schema": schema}}
	for k, v := range fields {
		doc[k] = v
	}
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// pmOperation finds a Postman operation by its folder path and name.
func pmOperation(t *testing.T, res *analysis.Result, id string) analysis.Operation {
	t.Helper()
	for _, op := range res.Operations {
		if op.OperationID == id {
			return op
		}
	}
	t.Fatalf("operation %q not found", id)
	return analysis.Operation{}
}

// request builds a request item.
func request(name string, req map[string]any) map[string]any {
	return map[string]any{"name": name, "request": req}
}

// authParams writes auth parameters in the style of a schema version: an
// object for v2.0, an array of {key, value} for v2.1.
func authParams(v21 bool, params map[string]any) any {
	if !v21 {
		return params
	}
	out := []any{}
	for _, k := range sortedMapKeys(params) {
		out = append(out, map[string]any{"key": k, "value": params[k], "type": "string"})
	}
	return out
}

func sortedMapKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func auth(v21 bool, typ string, params map[string]any) map[string]any {
	a := map[string]any{"type": typ}
	if params != nil {
		a[typ] = authParams(v21, params)
	}
	return a
}

func TestPostmanAuthTypes(t *testing.T) {
	tests := []struct {
		typ    string
		params map[string]any
		kind   analysis.Kind
		in     analysis.Location
		param  string
		flows  []string
	}{
		{"apikey", map[string]any{"key": "X-API-Key", "value": "v", "in": "header"}, analysis.KindAPIKey, analysis.LocationHeader, "X-API-Key", nil},
		{"apikey", map[string]any{"key": "api_key", "value": "v", "in": "query"}, analysis.KindAPIKey, analysis.LocationQuery, "api_key", nil},
		{"apikey", map[string]any{"key": "Authorization", "value": "v"}, analysis.KindHTTPBearer, analysis.LocationHeader, "Authorization", nil},
		{"bearer", map[string]any{"token": "t"}, analysis.KindHTTPBearer, analysis.LocationHeader, "Authorization", nil},
		{"basic", map[string]any{"username": "u", "password": "p"}, analysis.KindHTTPBasic, analysis.LocationHeader, "Authorization", nil},
		{"digest", map[string]any{"username": "u", "password": "p"}, analysis.KindHTTPDigest, analysis.LocationHeader, "Authorization", nil},
		{"oauth1", map[string]any{"consumerKey": "k", "addParamsToHeader": true}, analysis.KindOAuth1, analysis.LocationHeader, "Authorization", nil},
		{"oauth1", map[string]any{"consumerKey": "k", "addParamsToHeader": false}, analysis.KindOAuth1, analysis.LocationQuery, "", nil},
		{"oauth2", map[string]any{"accessToken": "t", "addTokenTo": "header", "grant_type": "client_credentials"}, analysis.KindOAuth2, analysis.LocationHeader, "Authorization", []string{"clientCredentials"}},
		{"oauth2", map[string]any{"accessToken": "t", "addTokenTo": "queryParams"}, analysis.KindOAuth2, analysis.LocationQuery, "access_token", nil},
		{"hawk", map[string]any{"authId": "i", "authKey": "k"}, analysis.KindHMAC, analysis.LocationHeader, "Authorization", nil},
		{"edgegrid", map[string]any{"accessToken": "a", "clientToken": "c"}, analysis.KindHMAC, analysis.LocationHeader, "Authorization", nil},
		{"akamai", map[string]any{"accessToken": "a"}, analysis.KindHMAC, analysis.LocationHeader, "Authorization", nil},
		{"ntlm", map[string]any{"username": "u", "password": "p"}, analysis.KindHTTPOther, analysis.LocationHeader, "Authorization", nil},
		{"jwt", map[string]any{"secret": "s"}, analysis.KindHTTPOther, analysis.LocationHeader, "Authorization", nil},
		{"jwt", map[string]any{"secret": "s", "addTokenTo": "queryParam", "queryParamKey": "jwt_token"}, analysis.KindHTTPOther, analysis.LocationQuery, "jwt_token", nil},
		{"asap", map[string]any{"privateKey": "k"}, analysis.KindHTTPOther, analysis.LocationHeader, "Authorization", nil},
		{"awsv4", map[string]any{"accessKey": "a", "secretKey": "s"}, analysis.KindAWSSigV4, analysis.LocationHeader, "Authorization", nil},
		{"awsv4", map[string]any{"accessKey": "a", "addAuthDataToQuery": true}, analysis.KindAWSSigV4, analysis.LocationQuery, "", nil},
		{"mystery", map[string]any{"x": "y"}, analysis.KindUnknown, "", "", nil},
	}
	for _, v21 := range []bool{false, true} {
		schema, style := schema20, "v2.0"
		if v21 {
			schema, style = schema21, "v2.1"
		}
		for i, tt := range tests {
			t.Run(style+"/"+tt.typ+"/"+strconv.Itoa(i), func(t *testing.T) {
				res := analyze(t, collection(t, schema, map[string]any{"item": []any{
					request("r", map[string]any{"method": "GET", "url": "https://api.test/x", "auth": auth(v21, tt.typ, tt.params)}),
				}}))
				op := res.Operations[0]
				if len(op.Auth) != 1 || len(op.Auth[0]) != 1 {
					t.Fatalf("auth = %+v, want one requirement", op.Auth)
				}
				r := op.Auth[0][0]
				if r.Kind != tt.kind || r.In != tt.in || r.Param != tt.param || r.Scheme != tt.typ || r.CallerVisible {
					t.Errorf("requirement = %+v, want %s %s %s %q", r, tt.typ, tt.kind, tt.in, tt.param)
				}
				if op.AuthSource != analysis.AuthFromOperation {
					t.Errorf("auth source = %q", op.AuthSource)
				}
				if len(res.Schemes) != 1 || res.Schemes[0].Name != tt.typ || res.Schemes[0].Kind != tt.kind || res.Schemes[0].Type != tt.typ {
					t.Fatalf("schemes = %+v", res.Schemes)
				}
				var flows []string
				for _, f := range res.Schemes[0].Flows {
					flows = append(flows, f.Type)
				}
				if !slices.Equal(flows, tt.flows) {
					t.Errorf("flows = %v, want %v", flows, tt.flows)
				}
				if tt.kind == analysis.KindUnknown && !hasDiagnostic(res, "not recognised") {
					t.Errorf("no diagnostic for an unknown auth type: %+v", res.Diagnostics)
				}
			})
		}
	}
}

func TestPostmanAuthInheritance(t *testing.T) {
	v21 := true
	doc := collection(t, schema21, map[string]any{
		"auth": auth(v21, "apikey", map[string]any{"key": "X-Key", "value": "{{k}}", "in": "header"}),
		"item": []any{
			map[string]any{"name": "A", "item": []any{
				request("A1", map[string]any{"url": "https://api.test/a1"}),
			}},
			map[string]any{"name": "B", "auth": auth(v21, "bearer", map[string]any{"token": "{{t}}"}), "item": []any{
				map[string]any{"name": "C", "auth": map[string]any{"type": "inherit"}, "item": []any{
					request("C1", map[string]any{"url": "https://api.test/c1"}),
					request("C2", map[string]any{"url": "https://api.test/c2", "auth": map[string]any{"type": "noauth"}}),
				}},
			}},
			map[string]any{"name": "D", "auth": map[string]any{"type": "noauth"}, "item": []any{
				request("D1", map[string]any{"url": "https://api.test/d1"}),
				request("D2", map[string]any{"url": "https://api.test/d2", "auth": auth(v21, "basic", map[string]any{"username": "{{u}}"})}),
				map[string]any{"name": "E", "item": []any{
					request("E1", map[string]any{"url": "https://api.test/e1", "auth": map[string]any{"type": "inherit"}}),
				}},
			}},
			request("F", map[string]any{"url": "https://api.test/f", "auth": map[string]any{"type": "inherit"}}),
			request("G", map[string]any{"url": "https://api.test/g", "auth": nil}),
		},
	})
	res := analyze(t, doc)
	tests := []struct {
		id     string
		scheme string
		source analysis.AuthSource
	}{
		{"A/A1", "apikey", analysis.AuthFromDocument},
		{"B/C/C1", "bearer", analysis.AuthFromFolder},
		{"B/C/C2", "", analysis.AuthFromOperation},
		{"D/D1", "", analysis.AuthFromFolder},
		{"D/D2", "basic", analysis.AuthFromOperation},
		{"D/E/E1", "", analysis.AuthFromFolder},
		{"F", "apikey", analysis.AuthFromDocument},
		{"G", "apikey", analysis.AuthFromDocument},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			op := pmOperation(t, res, tt.id)
			var want [][]string
			if tt.scheme != "" {
				want = [][]string{{tt.scheme}}
			}
			if got := effectiveNames(op); !reflect.DeepEqual(got, want) || op.AuthSource != tt.source {
				t.Errorf("auth = %v from %q, want %v from %q", got, op.AuthSource, want, tt.source)
			}
			if op.Auth == nil {
				t.Error("auth is nil; want [] for no auth")
			}
		})
	}

	bare := analyze(t, collection(t, schema21, map[string]any{"item": []any{request("r", map[string]any{"url": "https://api.test/r"})}}))
	if op := bare.Operations[0]; len(op.Auth) != 0 || op.AuthSource != analysis.AuthNone {
		t.Errorf("no auth anywhere: auth = %+v from %q", op.Auth, op.AuthSource)
	}
}

// TestPostmanCredentialsNeverRecorded plants a canary in every auth value of
// every auth type, in both parameter styles and at every level, and in every
// other value a request carries; none may reach the result.
func TestPostmanCredentialsNeverRecorded(t *testing.T) {
	const canary = "CANARY-5e1f"
	n := 0
	secret := func() string { n++; return canary + strconv.Itoa(n) }
	params := map[string][]string{
		"apikey":   {"value", "in"},
		"bearer":   {"token"},
		"basic":    {"username", "password", "showPassword"},
		"digest":   {"username", "password", "realm", "nonce", "algorithm", "qop", "nonceCount", "clientNonce", "opaque"},
		"oauth1":   {"consumerKey", "consumerSecret", "token", "tokenSecret", "signatureMethod", "timestamp", "nonce", "version", "realm", "callback", "verifier", "privateKey", "addParamsToHeader"},
		"oauth2":   {"accessToken", "tokenType", "clientId", "clientSecret", "password", "username", "refreshToken", "grant_type", "accessTokenUrl", "authUrl", "scope", "state", "redirect_uri", "headerPrefix", "addTokenTo", "tokenName"},
		"hawk":     {"authId", "authKey", "algorithm", "user", "nonce", "extraData", "app", "delegation", "timestamp"},
		"edgegrid": {"accessToken", "clientToken", "clientSecret", "nonce", "timestamp", "baseURL", "headersToSign"},
		"akamai":   {"accessToken", "clientToken", "clientSecret"},
		"ntlm":     {"username", "password", "domain", "workstation"},
		"jwt":      {"secret", "privateKey", "payload", "algorithm", "headerPrefix", "addTokenTo"},
		"asap":     {"issuer", "subject", "audience", "kid", "privateKey", "claims", "algorithm", "expiry"},
		"awsv4":    {"accessKey", "secretKey", "sessionToken", "region", "service", "addAuthDataToQuery"},
		"custom":   {"signingKey", "anything"},
	}
	authFor := func(v21 bool, typ string) map[string]any {
		p := map[string]any{}
		for _, k := range params[typ] {
			p[k] = secret()
		}
		// A value that mixes a literal with a variable: only the name is kept.
		p["mixed"] = secret() + "{{var_" + typ + "}}" + secret()
		switch typ {
		case "apikey":
			p["key"] = "X-Named-Key"
		case "jwt":
			p["queryParamKey"] = "jwt_param"
		case "oauth2":
			p["authRequestParams"] = []any{map[string]any{"key": "audience", "value": secret(), "enabled": true}}
		}
		return auth(v21, typ, p)
	}
	requestWith := func(v21 bool, typ string) map[string]any {
		return request("call "+typ, map[string]any{
			"method": "POST",
			"url": map[string]any{
				"raw":      "https://user:" + secret() + "@api.test/things/:id?q=" + secret(),
				"protocol": "https",
				"host":     []any{"user:" + secret() + "@api", "test"},
				"path":     []any{"things", ":id"},
				"query":    []any{map[string]any{"key": "q", "value": secret()}, map[string]any{"key": "api_key", "value": secret()}},
				"variable": []any{map[string]any{"key": "id", "value": secret()}},
			},
			"header": []any{
				map[string]any{"key": "Authorization", "value": "Bearer " + secret()},
				map[string]any{"key": "X-Trace", "value": secret()},
				map[string]any{"key": "Content-Type", "value": "application/json"},
			},
			"body": map[string]any{"mode": "raw", "raw": `{"name": "` + secret() + `", "client_secret": "` + secret() + `", "nested": {"k": "` + secret() + `"}}`},
			"auth": authFor(v21, typ),
		})
	}
	for _, v21 := range []bool{false, true} {
		schema := schema20
		if v21 {
			schema = schema21
		}
		var items []any
		for typ := range params {
			items = append(items, requestWith(v21, typ))
		}
		items = append(items,
			map[string]any{"name": "folder", "auth": authFor(v21, "basic"), "item": []any{
				request("form", map[string]any{"method": "POST", "url": "{{base}}/form", "body": map[string]any{"mode": "urlencoded", "urlencoded": []any{
					map[string]any{"key": "field", "value": secret()}, map[string]any{"key": "password", "value": secret()},
				}}}),
				request("multipart", map[string]any{"method": "POST", "url": "{{tokenVar}}/m", "body": map[string]any{"mode": "formdata", "formdata": []any{
					map[string]any{"key": "file", "type": "file", "src": secret()}, map[string]any{"key": "note", "value": secret(), "type": "text"},
				}}}),
			}},
			map[string]any{"name": "with response", "request": map[string]any{"url": "https://api.test/r"},
				"response": []any{map[string]any{"code": 200, "header": []any{map[string]any{"key": "Content-Type", "value": "application/json"}},
					"body": `{"access_token": "` + secret() + `", "n": 1}`}}},
		)
		doc := collection(t, schema, map[string]any{
			"auth": authFor(v21, "oauth2"),
			"variable": []any{
				map[string]any{"key": "base", "value": "https://api.test"},
				map[string]any{"key": "tokenVar", "value": secret(), "type": "secret"},
				map[string]any{"key": "secretVar", "value": secret()},
			},
			"item": items,
		})
		if !strings.Contains(doc, canary) {
			t.Fatal("the test collection carries no canary")
		}
		res := analyze(t, doc)
		out, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.Index(string(out), canary); i >= 0 {
			t.Fatalf("%s: a planted value reached the result: …%s…", schema, string(out)[max(0, i-200):min(len(out), i+40)])
		}
		if len(res.Operations) != len(params)+3 {
			t.Errorf("operations = %d, want %d", len(res.Operations), len(params)+3)
		}
		byName := map[string]analysis.Scheme{}
		for _, s := range res.Schemes {
			byName[s.Name] = s
		}
		if s := byName["apikey"]; s.Param != "X-Named-Key" {
			t.Errorf("apikey parameter name = %q, want X-Named-Key", s.Param)
		}
		if s := byName["jwt"]; s.In != analysis.LocationHeader || s.Param != "Authorization" {
			t.Errorf("jwt placement = %s %q, want the Authorization header", s.In, s.Param)
		}
		if s := byName["hawk"]; !strings.Contains(s.Description, "var_hawk") {
			t.Errorf("hawk scheme description %q does not name its variable", s.Description)
		}
		for _, op := range res.Operations {
			for _, f := range op.Request.Fields {
				if strings.EqualFold(f.Name, "Authorization") || f.Name == "api_key" || f.Name == "client_secret" {
					t.Errorf("%s: credential %s (%s) is a tool input", op.OperationID, f.Name, f.In)
				}
			}
		}
		if !hasDiagnostic(res, "literal credential values") {
			t.Error("no diagnostic reports literal credentials in auth")
		}
	}
}

func TestPostmanRequestMapping(t *testing.T) {
	doc := collection(t, schema21, map[string]any{
		"variable": []any{map[string]any{"key": "baseUrl", "value": "https://api.shop.test/v1/"}},
		"item": []any{
			request("Get order", map[string]any{
				"method": "GET",
				"url": map[string]any{
					"raw":      "{{baseUrl}}/orders/:orderId/lines/{{lineId}}?expand=items&api_key={{key}}",
					"host":     []any{"{{baseUrl}}"},
					"path":     []any{"orders", ":orderId", "lines", "{{lineId}}"},
					"query":    []any{map[string]any{"key": "expand", "value": "items", "description": "Related objects"}, map[string]any{"key": "api_key", "value": "{{key}}"}},
					"variable": []any{map[string]any{"key": "orderId", "value": "42", "description": "The order"}},
				},
				"header": []any{
					map[string]any{"key": "Accept-Language", "value": "en"},
					map[string]any{"key": "Content-Type", "value": "application/json"},
					map[string]any{"key": "X-API-Key", "value": "{{key}}"},
				},
				"body":        map[string]any{"mode": "raw", "raw": `{"ignored": true}`},
				"description": "Fetches one order.",
			}),
			request("Create order", map[string]any{
				"method": "post",
				"url":    "{{tenantHost}}/orders",
				"header": []any{map[string]any{"key": "Content-Type", "value": "application/json"}},
				"body":   map[string]any{"mode": "raw", "raw": `{"sku": "a-1", "qty": {{qty}}, "price": 1.5, "client_secret": "{{cs}}", "meta": {"tags": ["t"]}}`},
			}),
			request("Login", map[string]any{
				"method": "POST", "url": "https://auth.shop.test/login",
				"body": map[string]any{"mode": "urlencoded", "urlencoded": []any{
					map[string]any{"key": "user", "value": "u", "description": "Login name"},
					map[string]any{"key": "client_secret", "value": "s"},
				}},
			}),
			request("Upload", map[string]any{
				"method": "PUT", "url": "https://api.shop.test/v1/files",
				"body": map[string]any{"mode": "formdata", "formdata": []any{
					map[string]any{"key": "file", "type": "file", "src": "/tmp/x"},
					map[string]any{"key": "label", "value": "x", "type": "text"},
				}},
			}),
			request("Raw file", map[string]any{"method": "PUT", "url": "https://api.shop.test/v1/blob", "body": map[string]any{"mode": "file", "file": map[string]any{"src": "/tmp/x"}}}),
			request("Query", map[string]any{"method": "POST", "url": "https://api.shop.test/graphql", "body": map[string]any{"mode": "graphql", "graphql": map[string]any{"query": "{ a }"}}}),
			request("Xml", map[string]any{"method": "POST", "url": "https://api.shop.test/xml", "body": map[string]any{"mode": "raw", "raw": "<a/>", "options": map[string]any{"raw": map[string]any{"language": "xml"}}}}),
			request("Note", map[string]any{"method": "POST", "url": "https://api.shop.test/notes", "body": map[string]any{"mode": "raw", "raw": "hello"}}),
			request("Broken JSON", map[string]any{"method": "POST", "url": "https://api.shop.test/b", "body": map[string]any{"mode": "raw", "raw": "{oops", "options": map[string]any{"raw": map[string]any{"language": "json"}}}}),
			request("List", map[string]any{"method": "POST", "url": "https://api.shop.test/list", "body": map[string]any{"mode": "raw", "raw": `[1, 2]`, "options": map[string]any{"raw": map[string]any{"language": "json"}}}}),
			map[string]any{"name": "Search with body", "protocolProfileBehavior": map[string]any{"disableBodyPruning": true}, "request": map[string]any{
				"method": "GET", "url": "https://api.shop.test/search",
				"body": map[string]any{"mode": "urlencoded", "urlencoded": []any{map[string]any{"key": "term", "value": "x"}}},
			}},
			request("Plain", map[string]any{"url": "postman-echo.com:8080/get"}),
			request("With user", map[string]any{"url": "https://someone:pw@api.shop.test/me"}),
			map[string]any{"name": "Saved", "request": "https://api.shop.test/saved", "response": []any{
				map[string]any{"code": 404, "body": `{"error": "x"}`},
				map[string]any{"code": 200, "_postman_previewlanguage": "json", "body": `{"id": 7, "tags": ["a"], "ok": true}`},
			}},
		},
	})
	res := analyze(t, doc)

	get := pmOperation(t, res, "Get order")
	if get.Path != "/orders/{orderId}/lines/{lineId}" || get.Method != "GET" {
		t.Errorf("get: %s %s", get.Method, get.Path)
	}
	if len(get.Servers) != 1 || get.Servers[0].URL != "https://api.shop.test/v1" || get.Servers[0].Template != "{baseUrl}" ||
		len(get.Servers[0].Variables) != 1 || get.Servers[0].Variables[0].Default != "https://api.shop.test/v1" {
		t.Errorf("get servers = %+v", get.Servers)
	}
	if f := field(t, get, "orderId"); f.In != analysis.LocationPath || !f.Required {
		t.Errorf("orderId field = %+v", f)
	}
	if d := property(t, get, "orderId")["description"]; d != "The order" {
		t.Errorf("orderId description = %v", d)
	}
	if f := field(t, get, "lineId"); f.In != analysis.LocationPath {
		t.Errorf("lineId field = %+v", f)
	}
	if f := field(t, get, "expand"); f.In != analysis.LocationQuery || f.Required || f.Style != "form" {
		t.Errorf("expand field = %+v", f)
	}
	if d := property(t, get, "expand")["description"]; d != "Related objects" {
		t.Errorf("expand description = %v", d)
	}
	if f := field(t, get, "Accept-Language"); f.In != analysis.LocationHeader {
		t.Errorf("Accept-Language field = %+v", f)
	}
	if got := excludedNames(get); got["query:api_key"] != analysis.ExcludedInferredCredential || got["header:X-API-Key"] != analysis.ExcludedInferredCredential ||
		got["header:Content-Type"] != analysis.ExcludedGatewayHeader {
		t.Errorf("get excluded = %v", got)
	}
	if len(get.InferredAuth) != 2 {
		t.Errorf("get inferred auth = %+v", get.InferredAuth)
	}
	if get.Request.Body != analysis.BodyNone {
		t.Errorf("a GET body was kept: %+v", get.Request)
	}
	if get.Description != "Fetches one order." || get.Name != "get_order" || get.Annotations.ReadOnlyHint == nil || !*get.Annotations.ReadOnlyHint {
		t.Errorf("get tool = %q %q %+v", get.Name, get.Description, get.Annotations)
	}

	create := pmOperation(t, res, "Create order")
	if create.Method != "POST" || create.Request.Body != analysis.BodyProperties || create.Request.ContentType != "application/json" {
		t.Errorf("create = %s %+v", create.Method, create.Request)
	}
	if s := create.Servers[0]; s.URL != "{tenantHost}" || s.Template != "{tenantHost}" || len(s.Variables) != 1 || s.Variables[0].Name != "tenantHost" {
		t.Errorf("create server = %+v", s)
	}
	if !hasDiagnostic(res, `"tenantHost" has no value`) {
		t.Error("no diagnostic for an unresolved URL variable")
	}
	if got := property(t, create, "sku")["type"]; got != "string" {
		t.Errorf("sku type = %v", got)
	}
	if got := property(t, create, "price")["type"]; got != "number" {
		t.Errorf("price type = %v", got)
	}
	if _, has := property(t, create, "qty")["type"]; has {
		t.Errorf("qty (a variable in the example) has a type: %v", property(t, create, "qty"))
	}
	meta := property(t, create, "meta")
	if tags := meta["properties"].(map[string]any)["tags"].(map[string]any); tags["type"] != "array" || tags["items"].(map[string]any)["type"] != "string" {
		t.Errorf("meta = %v", meta)
	}
	if _, has := properties(t, create)["client_secret"]; has || excludedNames(create)["body:client_secret"] != analysis.ExcludedInferredCredential {
		t.Errorf("client_secret not excluded: %s", create.InputSchema)
	}
	for _, p := range properties(t, create) {
		if _, has := p.(map[string]any)["examples"]; has {
			t.Errorf("an example value reached the schema: %s", create.InputSchema)
		}
	}

	login := pmOperation(t, res, "Login")
	if login.Request.ContentType != "application/x-www-form-urlencoded" || field(t, login, "user").In != analysis.LocationBody {
		t.Errorf("login = %+v", login.Request)
	}
	if d := property(t, login, "user")["description"]; d != "Login name" {
		t.Errorf("user description = %v", d)
	}
	if _, has := properties(t, login)["client_secret"]; has {
		t.Error("client_secret form field is an input")
	}

	upload := pmOperation(t, res, "Upload")
	if upload.Request.ContentType != "multipart/form-data" || property(t, upload, "file")["format"] != "binary" || property(t, upload, "label")["type"] != "string" {
		t.Errorf("upload = %+v %s", upload.Request, upload.InputSchema)
	}

	for id, want := range map[string]string{"Raw file": `mode "file"`, "Query": `mode "graphql"`, "Xml": `"application/xml" is not supported`} {
		if op := pmOperation(t, res, id); !strings.Contains(op.Unsupported, want) {
			t.Errorf("%s: unsupported = %q, want it to say %s", id, op.Unsupported, want)
		}
	}
	if op := pmOperation(t, res, "Note"); op.Request.Body != analysis.BodyWhole || op.Request.ContentType != "text/plain" || property(t, op, "body")["type"] != "string" || op.Unsupported != "" {
		t.Errorf("note = %+v %s", op.Request, op.InputSchema)
	}
	if op := pmOperation(t, res, "Broken JSON"); op.Request.Body != analysis.BodyWhole || !hasDiagnostic(res, "does not parse") {
		t.Errorf("broken JSON = %+v", op.Request)
	}
	if op := pmOperation(t, res, "List"); op.Request.Body != analysis.BodyWhole || property(t, op, "body")["type"] != "array" {
		t.Errorf("list = %+v %s", op.Request, op.InputSchema)
	}
	if op := pmOperation(t, res, "Search with body"); field(t, op, "term").In != analysis.LocationBody {
		t.Errorf("disableBodyPruning: body dropped: %+v", op.Request)
	}
	if op := pmOperation(t, res, "Plain"); op.Servers[0].URL != "http://postman-echo.com:8080" || op.Path != "/get" {
		t.Errorf("plain = %+v %s", op.Servers, op.Path)
	}
	if op := pmOperation(t, res, "With user"); op.Servers[0].URL != "https://api.shop.test" || !hasDiagnostic(res, "user credentials") {
		t.Errorf("with user = %+v", op.Servers)
	}
	saved := pmOperation(t, res, "Saved")
	var out map[string]any
	if err := json.Unmarshal(saved.OutputSchema, &out); err != nil {
		t.Fatalf("saved output schema %s: %v", saved.OutputSchema, err)
	}
	if props, _ := out["properties"].(map[string]any); saved.Response.Status != "200" || props["id"].(map[string]any)["type"] != "integer" || props["ok"].(map[string]any)["type"] != "boolean" {
		t.Errorf("saved output = %s %+v", saved.OutputSchema, saved.Response)
	}

	urls := []string{}
	for _, s := range res.Servers {
		urls = append(urls, s.URL)
	}
	if !slices.IsSorted(urls) || !slices.Contains(urls, "https://auth.shop.test") || !slices.Contains(urls, "{tenantHost}") {
		t.Errorf("result servers = %v", urls)
	}
}

func TestPostmanToolNames(t *testing.T) {
	items := []any{
		map[string]any{"name": "Users", "item": []any{request("List items", map[string]any{"url": "https://api.test/users"})}},
		map[string]any{"name": "Orders", "item": []any{request("List items", map[string]any{"url": "https://api.test/orders"})}},
		request("getUserByID", map[string]any{"url": "https://api.test/users/:id"}),
		map[string]any{"request": map[string]any{"method": "DELETE", "url": "https://api.test/users/:id"}},
		request("Same", map[string]any{"url": "https://api.test/same"}),
		request("Same", map[string]any{"url": "https://api.test/same"}),
	}
	res := analyze(t, collection(t, schema21, map[string]any{"item": items}))
	names := map[string]string{}
	seen := map[string]bool{}
	for _, op := range res.Operations {
		if seen[op.Name] {
			t.Errorf("tool name %q is not unique", op.Name)
		}
		seen[op.Name] = true
		names[op.Method+" "+op.OperationID+" "+op.Path] = op.Name
	}
	if got := names["GET getUserByID /users/{id}"]; got != "get_user_by_id" {
		t.Errorf("getUserByID → %q", got)
	}
	if got := names["DELETE  /users/{id}"]; got != "delete_users_id" {
		t.Errorf("unnamed request → %q", got)
	}
	if names["GET Orders/List items /orders"] != "list_items" || !strings.HasPrefix(names["GET Users/List items /users"], "list_items_") {
		t.Errorf("colliding names = %v", names)
	}

	// Adding a request leaves the existing names alone.
	more := append(slices.Clone(items), request("Health", map[string]any{"url": "https://api.test/health"}))
	again := analyze(t, collection(t, schema21, map[string]any{"item": more}))
	for _, op := range again.Operations {
		if want, ok := names[op.Method+" "+op.OperationID+" "+op.Path]; ok && op.Name != want && op.OperationID != "Same" {
			t.Errorf("%s: name %q changed to %q on re-import", op.OperationID, want, op.Name)
		}
	}
}

func TestPostmanVersion(t *testing.T) {
	objectAuth := `"auth":{"type":"basic","basic":{"username":"u"}}`
	arrayAuth := `"auth":{"type":"basic","basic":[{"key":"username","value":"u"}]}`
	tests := []struct {
		name, doc   string
		format      analysis.Format
		specVersion string
		inferred    bool
	}{
		{"v2.0 schema", `{"info":{"name":"c","schema":"` + schema20 + `"},"item":[]}`, analysis.FormatPostman20, "2.0.0", false},
		{"v2.1 schema", `{"info":{"name":"c","schema":"` + schema21 + `"},"item":[]}`, analysis.FormatPostman21, "2.1.0", false},
		{"no schema, object params", `{"info":{"_postman_id":"x","name":"c"},` + objectAuth + `,"item":[]}`, analysis.FormatPostman20, "", true},
		{"no schema, array params", `{"info":{"_postman_id":"x","name":"c"},` + arrayAuth + `,"item":[]}`, analysis.FormatPostman21, "", true},
		{"no schema, no auth", `{"name":"c","item":[]}`, analysis.FormatPostman21, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := analyze(t, tt.doc)
			if res.Format != tt.format || res.SpecVersion != tt.specVersion || res.Title != "c" {
				t.Errorf("format %q version %q title %q, want %q %q", res.Format, res.SpecVersion, res.Title, tt.format, tt.specVersion)
			}
			if got := hasDiagnostic(res, "names no schema"); got != tt.inferred {
				t.Errorf("inference diagnostic = %v, want %v", got, tt.inferred)
			}
			if res.Operations == nil || res.Servers == nil || res.Schemes == nil || res.Diagnostics == nil {
				t.Errorf("nil slices in %+v", res)
			}
		})
	}

	yamlDoc := "info:\n  name: From YAML\n  schema: " + schema21 + "\n  version: {major: 1, minor: 2, patch: 3}\nitem:\n  - name: Ping\n    request:\n      method: GET\n      url: https://api.test/ping\n      auth: {type: bearer, bearer: [{key: token, value: '{{tok}}'}]}\n"
	res := analyze(t, yamlDoc)
	if res.Format != analysis.FormatPostman21 || res.Version != "1.2.3" || len(res.Operations) != 1 || effectiveNames(res.Operations[0])[0][0] != "bearer" {
		t.Errorf("YAML collection: %+v", res)
	}
}

func TestPostmanMalformed(t *testing.T) {
	wrap := func(item string) string {
		return "{\n\"info\": {\"name\": \"c\", \"schema\": \"" + schema21 + "\"},\n\"item\": [\n" + item + "\n]\n}"
	}
	req := func(fields string) string {
		return wrap(`{"name": "r", "request": {"url": "https://api.test/x", ` + fields + `}}`)
	}
	tests := []struct {
		name, doc, pointer, text string
	}{
		{"no item", `{"info": {"name": "c", "schema": "` + schema21 + `"}}`, "/item", "item array"},
		{"item not an array", `{"info": {"name": "c", "schema": "` + schema21 + `"}, "item": {}}`, "/item", "must be an array"},
		{"item not an object", wrap(`"x"`), "/item/0", "must be an object"},
		{"name not a string", wrap(`{"name": {}, "request": "https://a.test"}`), "/item/0/name", "name"},
		{"request a number", wrap(`{"name": "r", "request": 5}`), "/item/0/request", "URL string or an object"},
		{"method not a string", req(`"method": 5`), "/item/0/request/method", "method"},
		{"method not a token", req(`"method": "GE T"`), "/item/0/request/method", "method"},
		{"url a number", wrap(`{"name": "r", "request": {"url": 5}}`), "/item/0/request/url", "URL"},
		{"url host an object", wrap(`{"name": "r", "request": {"url": {"host": {}}}}`), "/item/0/request/url/host", "array of strings"},
		{"url query an object", wrap(`{"name": "r", "request": {"url": {"raw": "https://a.test", "query": {}}}}`), "/item/0/request/url/query", "must be an array"},
		{"headers an object", req(`"header": {}`), "/item/0/request/header", "must be an array"},
		{"header not an object", req(`"header": [3]`), "/item/0/request/header/0", "must be an object"},
		{"auth a string", req(`"auth": "basic"`), "/item/0/request/auth", "auth must be an object"},
		{"auth without type", req(`"auth": {"basic": {}}`), "/item/0/request/auth", "no type"},
		{"auth type a number", req(`"auth": {"type": 3}`), "/item/0/request/auth/type", "must be a string"},
		{"auth params a string", req(`"auth": {"type": "basic", "basic": "u:p"}`), "/item/0/request/auth/basic", "object or an array"},
		{"auth param not an object", req(`"auth": {"type": "basic", "basic": ["u"]}`), "/item/0/request/auth/basic/0", "key and a value"},
		{"body a string", req(`"method": "POST", "body": "x"`), "/item/0/request/body", "must be an object"},
		{"body mode a number", req(`"method": "POST", "body": {"mode": 1}`), "/item/0/request/body/mode", "must be a string"},
		{"raw body a number", req(`"method": "POST", "body": {"mode": "raw", "raw": 1}`), "/item/0/request/body/raw", "must be a string"},
		{"form fields an object", req(`"method": "POST", "body": {"mode": "urlencoded", "urlencoded": {}}`), "/item/0/request/body/urlencoded", "must be an array"},
		{"folder items a string", wrap(`{"name": "f", "item": "x"}`), "/item/0/item", "must be an array"},
		{"folder auth a list", wrap(`{"name": "f", "auth": [], "item": []}`), "/item/0/auth", "auth must be an object"},
		{"collection auth bad", `{"info": {"name": "c", "schema": "` + schema21 + `"}, "auth": {"type": []}, "item": []}`, "/auth/type", "must be a string"},
		{"variables an object", `{"info": {"name": "c", "schema": "` + schema21 + `"}, "variable": {}, "item": []}`, "/variable", "must be an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := analysis.Analyze([]byte(tt.doc), analysis.Options{})
			var inv *analysis.InvalidError
			if !errors.As(err, &inv) || !errors.Is(err, analysis.ErrInvalid) {
				t.Fatalf("err = %v (%T), want an *InvalidError", err, err)
			}
			if inv.Pointer != tt.pointer || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v, want pointer %s and %q", err, tt.pointer, tt.text)
			}
			if tt.name != "no item" && inv.Line == 0 {
				t.Errorf("err = %v has no line", err)
			}
		})
	}

	// The line is the line of the offending value.
	doc := "{\n  \"info\": {\"name\": \"c\", \"schema\": \"" + schema21 + "\"},\n  \"item\": [\n    {\"name\": \"ok\", \"request\": \"https://a.test\"},\n    {\"name\": \"bad\",\n     \"request\": {\"method\": 7}}\n  ]\n}"
	_, err := analysis.Analyze([]byte(doc), analysis.Options{})
	var inv *analysis.InvalidError
	if !errors.As(err, &inv) || inv.Line != 6 || inv.Pointer != "/item/1/request/method" {
		t.Errorf("err = %v, want line 6 at /item/1/request/method", err)
	}
	_, err = analysis.Analyze([]byte("info: {name: c, schema: '"+schema21+"'}\nitem:\n  - name: r\n    request:\n      method: [GET]\n"), analysis.Options{})
	if !errors.As(err, &inv) || inv.Line != 5 || inv.Pointer != "/item/0/request/method" {
		t.Errorf("YAML err = %v, want line 5 at /item/0/request/method", err)
	}
}

func TestPostmanLenientParts(t *testing.T) {
	res := analyze(t, collection(t, schema21, map[string]any{"item": []any{
		map[string]any{"name": "empty"},
		map[string]any{"name": "both", "request": "https://a.test/x", "item": []any{request("inner", map[string]any{"url": "https://a.test/in"})}},
		request("no url", map[string]any{"method": "GET"}),
		request("string headers", map[string]any{"url": "https://a.test/h", "header": "X-One: 1\n// X-Off: 2\nAuthorization: Bearer x\n"}),
	}}))
	if len(res.Operations) != 3 {
		t.Fatalf("operations = %d, want 3", len(res.Operations))
	}
	if !hasDiagnostic(res, "neither a request nor items") || !hasDiagnostic(res, "taken as a folder") {
		t.Errorf("diagnostics = %+v", res.Diagnostics)
	}
	if op := pmOperation(t, res, "no url"); op.Unsupported == "" {
		t.Error("a request without a URL is not reported unsupported")
	}
	op := pmOperation(t, res, "string headers")
	if field(t, op, "X-One").In != analysis.LocationHeader || field(t, op, "X-Off").In != analysis.LocationHeader || excludedNames(op)["header:Authorization"] != analysis.ExcludedInferredCredential {
		t.Errorf("string headers = %+v excluded %v", op.Request.Fields, op.Excluded)
	}
}

func TestPostmanDeterministic(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(corpusDir, "A34__newman-echo-v2.postman_collection.json"))
	if err != nil {
		t.Fatal(err)
	}
	var first []byte
	for range 3 {
		res, err := analysis.Analyze(data, analysis.Options{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = out
		} else if string(out) != string(first) {
			t.Fatal("two analyses of the same collection differ")
		}
	}
}

// FuzzPostman holds Analyze to its contract on collection-shaped input.
func FuzzPostman(f *testing.F) {
	for _, name := range []string{"A35__newman-hawk-auth-test.postman_collection.json", "A37__newman-oauth1-var-in-url-params.postman_collection.json"} {
		data, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		`{"info":{"schema":"` + schema21 + `"},"item":[]}`,
		`{"info":{"schema":"` + schema20 + `"},"item":[{"name":"f","auth":{"type":"noauth"},"item":[{"name":"r","request":{"url":{"raw":"{{b}}/a/:id?x=1","host":["{{b}}"],"path":["a",":id"]},"auth":{"type":"apikey","apikey":{"key":"k","in":"query"}}}}]}]}`,
		`{"_postman_id":"x","item":[{"request":{"method":"POST","url":"a.test","body":{"mode":"raw","raw":"{\"a\":{{v}}}"}}}]}`,
		`{"info":{"schema":"` + schema21 + `"},"item":[{"request":{"url":"h","body":{"mode":"formdata","formdata":[{"key":"f","type":"file"}]}},"response":[{"code":200,"body":"[1]"}]}]}`,
		`{"info":{"schema":"` + schema21 + `"},"variable":[{"key":"b","value":"https://u:p@x.test/v?q=1"}],"item":[{"request":"{{b}}/p"}]}`,
		`{"info":{"schema":"` + schema21 + `"},"item":[{"request":{"url":5}}]}`,
		"info: {schema: '" + schema21 + "'}\nitem: [{request: {url: 'https://a.test', auth: {type: awsv4, awsv4: [{key: accessKey, value: x}]}}}]\n",
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
			if op.Name == "" || !json.Valid(op.InputSchema) || op.Auth == nil {
				t.Fatalf("operation %s %s: name %q, schema %s, auth %v", op.Method, op.Path, op.Name, op.InputSchema, op.Auth)
			}
			for _, alt := range op.Auth {
				for _, r := range alt {
					if r.CallerVisible {
						t.Fatalf("requirement %q is caller-visible", r.Scheme)
					}
				}
			}
		}
	})
}
