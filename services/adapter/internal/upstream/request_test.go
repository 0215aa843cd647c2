package upstream_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/adapter/internal/upstream"
)

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func op(method, path string, params ...*controlv1.ParamMapping) *controlv1.OperationSpec {
	return &controlv1.OperationSpec{Method: method, Path: path, Servers: []string{"https://API.example.com/base/"}, Params: params}
}

func pm(prop, in, name string, style string, explode bool) *controlv1.ParamMapping {
	return &controlv1.ParamMapping{Property: prop, In: in, Name: name, Style: style, Explode: explode}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		op      *controlv1.OperationSpec
		args    string
		url     string
		headers map[string]string
		body    string
	}{
		{"path simple", op("get", "/items/{id}", pm("id", "path", "id", "", false)), `{"id":"a b"}`,
			"https://api.example.com/base/items/a%20b", nil, ""},
		{"path number", op("GET", "/items/{id}", pm("id", "path", "id", "simple", false)), `{"id":12345678901234567890}`,
			"https://api.example.com/base/items/12345678901234567890", nil, ""},
		{"path label array", op("GET", "/items/{ids}", pm("ids", "path", "ids", "label", true)), `{"ids":["a","b"]}`,
			"https://api.example.com/base/items/.a.b", nil, ""},
		{"path matrix", op("GET", "/items/{id}", pm("id", "path", "id", "matrix", false)), `{"id":"x"}`,
			"https://api.example.com/base/items/;id=x", nil, ""},
		{"path reserved characters escaped", op("GET", "/items/{id}", pm("id", "path", "id", "", false)), `{"id":"a?b#c%d"}`,
			"https://api.example.com/base/items/a%3Fb%23c%25d", nil, ""},
		{"query form explode", op("GET", "/s", pm("tags", "query", "tag", "form", true), pm("q", "query", "q", "", false)), `{"tags":["a","b c"],"q":"x&y=z"}`,
			"https://api.example.com/base/s?tag=a&tag=b+c&q=x%26y%3Dz", nil, ""},
		{"query default explode", op("GET", "/s", pm("tags", "query", "tag", "", false)), `{"tags":["a","b"]}`,
			"https://api.example.com/base/s?tag=a&tag=b", nil, ""},
		{"query form no explode", op("GET", "/s", pm("tags", "query", "tag", "form", false)), `{"tags":["a","b"]}`,
			"https://api.example.com/base/s?tag=a,b", nil, ""},
		{"query pipe", op("GET", "/s", pm("tags", "query", "tag", "pipeDelimited", false)), `{"tags":["a","b"]}`,
			"https://api.example.com/base/s?tag=a%7Cb", nil, ""},
		{"query deepObject", op("GET", "/s", pm("f", "query", "filter", "deepObject", true)), `{"f":{"b":"2","a":true}}`,
			"https://api.example.com/base/s?filter%5Ba%5D=true&filter%5Bb%5D=2", nil, ""},
		{"null skips optional", op("GET", "/s", pm("q", "query", "q", "", false)), `{"q":null}`,
			"https://api.example.com/base/s", nil, ""},
		{"header and cookie", op("GET", "/s", pm("v", "header", "X-Version", "", false), pm("s", "cookie", "session_hint", "", false)), `{"v":"2","s":"abc"}`,
			"https://api.example.com/base/s", map[string]string{"X-Version": "2", "Cookie": "session_hint=abc", "Accept": "application/json", "User-Agent": "mcpgw-adapter"}, ""},
		{"json body properties", &controlv1.OperationSpec{Method: "POST", Path: "/m", Servers: []string{"http://127.0.0.1:8080"}, ContentType: "application/json",
			Params: []*controlv1.ParamMapping{pm("to", "body", "to", "", false), pm("n", "body", "count", "", false), pm("x", "query", "x", "", false)}},
			`{"to":"<b>","n":1.50,"x":"1","ignored":"zzz"}`, "http://127.0.0.1:8080/m?x=1", map[string]string{"Content-Type": "application/json"}, `{"count":1.50,"to":"<b>"}`},
		{"whole body", &controlv1.OperationSpec{Method: "PUT", Path: "/m", Servers: []string{"http://h.example"}, ContentType: "application/merge-patch+json", BodyProperty: "body"},
			`{"body":[1,2]}`, "http://h.example/m", map[string]string{"Content-Type": "application/merge-patch+json"}, `[1,2]`},
		{"form body", &controlv1.OperationSpec{Method: "POST", Path: "/f", Servers: []string{"http://h.example"}, ContentType: "application/x-www-form-urlencoded",
			Params: []*controlv1.ParamMapping{pm("a", "body", "a", "", false), pm("b", "body", "b", "", false)}},
			`{"a":"x y","b":["1","2"]}`, "http://h.example/f", nil, `a=x+y&b=1&b=2`},
		{"empty body object when mapped", &controlv1.OperationSpec{Method: "POST", Path: "/m", Servers: []string{"http://h.example"},
			Params: []*controlv1.ParamMapping{pm("a", "body", "a", "", false)}}, `{}`, "http://h.example/m", map[string]string{"Content-Type": "application/json"}, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := upstream.Build(tt.op, decode(t, tt.args))
			if err != nil {
				t.Fatal(err)
			}
			if got := req.URL.String(); got != tt.url {
				t.Fatalf("url = %s, want %s", got, tt.url)
			}
			for k, v := range tt.headers {
				if got := req.Header.Get(k); got != v {
					t.Fatalf("header %s = %q, want %q", k, got, v)
				}
			}
			if string(req.Body) != tt.body {
				t.Fatalf("body = %s, want %s", req.Body, tt.body)
			}
			if req.Size() < len(tt.url)+len(tt.body) {
				t.Fatalf("size %d too small", req.Size())
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	pathOp := op("GET", "/items/{id}", pm("id", "path", "id", "", false))
	tests := []struct {
		name string
		op   *controlv1.OperationSpec
		args string
		arg  bool // an *ArgumentError (else a *SpecError)
		want string
	}{
		{"slash in path", pathOp, `{"id":"a/b"}`, true, "slash"},
		{"backslash in path", pathOp, `{"id":"a\\b"}`, true, "slash"},
		{"dot dot in path", pathOp, `{"id":".."}`, true, "'..'"},
		{"single dot", pathOp, `{"id":"."}`, true, "'.'"},
		{"CR LF in path", pathOp, `{"id":"a\r\nb"}`, true, "line breaks"},
		{"NUL in path", pathOp, `{"id":"a\u0000b"}`, true, "NUL"},
		{"empty path value", pathOp, `{"id":""}`, true, "empty"},
		{"missing path value", pathOp, `{}`, true, "missing required argument"},
		{"object as path array element", pathOp, `{"id":[{"a":1}]}`, true, "scalar"},
		{"CR LF in header", op("GET", "/s", pm("v", "header", "X-V", "", false)), `{"v":"a\r\nX-Evil: 1"}`, true, "line breaks"},
		{"control char in header", op("GET", "/s", pm("v", "header", "X-V", "", false)), `{"v":"a\u0007"}`, true, "control"},
		{"semicolon in cookie", op("GET", "/s", pm("v", "cookie", "c", "", false)), `{"v":"a; admin=1"}`, true, "cookie"},
		{"deepObject of a scalar", op("GET", "/s", pm("f", "query", "f", "deepObject", true)), `{"f":"x"}`, true, "object"},
		{"required query missing", op("GET", "/s", &controlv1.ParamMapping{Property: "q", In: "query", Name: "q", Required: true}), `{}`, true, "missing required"},
		{"text body not a string", &controlv1.OperationSpec{Method: "POST", Path: "/t", Servers: []string{"http://h.example"}, ContentType: "text/plain", BodyProperty: "b"}, `{"b":1}`, true, "string"},
		{"Authorization mapped from an argument", op("GET", "/s", pm("a", "header", "authorization", "", false)), `{"a":"Bearer x"}`, false, "controls"},
		{"Host mapped from an argument", op("GET", "/s", pm("a", "header", "Host", "", false)), `{"a":"evil.example"}`, false, "controls"},
		{"X-Forwarded-For from an argument", op("GET", "/s", pm("a", "header", "X-Forwarded-For", "", false)), `{"a":"1.2.3.4"}`, false, "controls"},
		{"no server", &controlv1.OperationSpec{Method: "GET", Path: "/s"}, `{}`, false, "no server"},
		{"relative server", &controlv1.OperationSpec{Method: "GET", Path: "/s", Servers: []string{"/v1"}}, `{}`, false, "absolute"},
		{"server with user info", &controlv1.OperationSpec{Method: "GET", Path: "/s", Servers: []string{"https://u:p@h.example"}}, `{}`, false, "user info"},
		{"server variables", &controlv1.OperationSpec{Method: "GET", Path: "/s", Servers: []string{"https://{region}.h.example"}}, `{}`, false, ""},
		{"bad method", &controlv1.OperationSpec{Method: "GET X", Path: "/s", Servers: []string{"https://h.example"}}, `{}`, false, "method"},
		{"template dot dot", &controlv1.OperationSpec{Method: "GET", Path: "/a/../b", Servers: []string{"https://h.example"}}, `{}`, false, "malformed"},
		{"unsupported media type", &controlv1.OperationSpec{Method: "POST", Path: "/u", Servers: []string{"https://h.example"}, ContentType: "application/xml", BodyProperty: "b"}, `{"b":"x"}`, false, "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := upstream.Build(tt.op, decode(t, tt.args))
			if err == nil {
				t.Fatal("Build accepted it")
			}
			var ae *upstream.ArgumentError
			var se *upstream.SpecError
			if tt.arg && !errors.As(err, &ae) || !tt.arg && !errors.As(err, &se) {
				t.Fatalf("error %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// FuzzBuild feeds arbitrary arguments through Build: it never panics, and
// whatever it builds goes to the tool's server only, with no line break in
// a header and no argument-chosen path segment "..".
func FuzzBuild(f *testing.F) {
	f.Add(`{"id":"a","q":"b","h":"c","c":"d","b":"e"}`)
	f.Add(`{"id":["a",1,true],"q":{"x":"y"},"h":null}`)
	f.Add(`{"id":"..","q":"\r\n"}`)
	o := &controlv1.OperationSpec{Method: "POST", Path: "/x/{id}/y", Servers: []string{"https://h.example/base"}, Params: []*controlv1.ParamMapping{
		pm("id", "path", "id", "", false), pm("q", "query", "q", "", false), pm("h", "header", "X-H", "", false),
		pm("c", "cookie", "c", "", false), pm("b", "body", "b", "", false),
	}}
	f.Fuzz(func(t *testing.T, s string) {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var args map[string]any
		if dec.Decode(&args) != nil || args == nil {
			return
		}
		req, err := upstream.Build(o, args)
		if err != nil {
			return
		}
		if req.URL.Host != "h.example" || req.URL.Scheme != "https" || !strings.HasPrefix(req.URL.Path, "/base/x/") {
			t.Fatalf("request escaped its server: %s://%s%s", req.URL.Scheme, req.URL.Host, req.URL.Path)
		}
		for _, seg := range strings.Split(req.URL.Path, "/") {
			if seg == ".." || seg == "." {
				t.Fatal("dot segment in path")
			}
		}
		for _, vs := range req.Header {
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatal("line break in a header")
				}
			}
		}
		if bytes.Contains(req.Body, []byte("\n")) && !json.Valid(req.Body) {
			t.Fatal("invalid body")
		}
	})
}
