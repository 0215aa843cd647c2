package inject_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/adapter/internal/inject"
)

const key = "s3cr3t+/=&key"

func request(t *testing.T) *http.Request {
	t.Helper()
	r, err := http.NewRequest(http.MethodGet, "https://h.example/p?a=1&api_key=evil&b=%20", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-API-Key", "evil")
	r.Header.Set("Authorization", "Bearer evil")
	r.Header.Set("Cookie", "sid=evil; theme=dark")
	return r
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		cred  inject.Credential
		check func(t *testing.T, r *http.Request)
	}{
		{"api key header replaces", inject.Credential{BindingID: "b1", Strategy: "api_key", Placement: &controlv1.Placement{In: "header", Name: "X-API-Key"}},
			func(t *testing.T, r *http.Request) {
				if v := r.Header.Values("X-API-Key"); len(v) != 1 || v[0] != key {
					t.Fatalf("X-API-Key = %v", v)
				}
			}},
		{"api key query replaces", inject.Credential{BindingID: "b1", Strategy: "api_key", Placement: &controlv1.Placement{In: "query", Name: "api_key"}},
			func(t *testing.T, r *http.Request) {
				q := r.URL.Query()
				if v := q["api_key"]; len(v) != 1 || v[0] != key || q.Get("a") != "1" || q.Get("b") != " " {
					t.Fatalf("query = %v", q)
				}
			}},
		{"api key cookie replaces", inject.Credential{BindingID: "b1", Strategy: "api_key", Placement: &controlv1.Placement{In: "cookie", Name: "sid"}},
			func(t *testing.T, r *http.Request) {
				if c := r.Header.Get("Cookie"); c != "theme=dark; sid="+key {
					t.Fatalf("cookie = %q", c)
				}
			}},
		{"bearer defaults to Authorization", inject.Credential{BindingID: "b1", Strategy: "bearer"},
			func(t *testing.T, r *http.Request) {
				if v := r.Header.Values("Authorization"); len(v) != 1 || v[0] != "Bearer "+key {
					t.Fatalf("Authorization = %v", v)
				}
			}},
		{"prefix from placement", inject.Credential{BindingID: "b1", Strategy: "api_key", Placement: &controlv1.Placement{In: "header", Name: "Authorization", Prefix: "Token "}},
			func(t *testing.T, r *http.Request) {
				if v := r.Header.Get("Authorization"); v != "Token "+key {
					t.Fatalf("Authorization = %q", v)
				}
			}},
		{"basic", inject.Credential{BindingID: "b1", Strategy: "basic", Username: "svc"},
			func(t *testing.T, r *http.Request) {
				if v := r.Header.Get("Authorization"); v != "Basic "+base64.StdEncoding.EncodeToString([]byte("svc:"+key)) {
					t.Fatalf("Authorization = %q", v)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(t)
			tt.cred.Value = secret.New([]byte(key))
			if err := inject.Apply(r, []inject.Credential{tt.cred}); err != nil {
				t.Fatal(err)
			}
			tt.check(t, r)
		})
	}
}

func TestApplyRefuses(t *testing.T) {
	tests := []struct {
		name  string
		cred  inject.Credential
		value string
	}{
		{"api key without placement", inject.Credential{BindingID: "b1", Strategy: "api_key"}, key},
		{"line break in a header", inject.Credential{BindingID: "b1", Strategy: "api_key", Placement: &controlv1.Placement{In: "header", Name: "X-K"}}, "a\r\nX-Evil: 1"},
		{"semicolon in a cookie", inject.Credential{BindingID: "b1", Strategy: "api_key", Placement: &controlv1.Placement{In: "cookie", Name: "c"}}, "a;b"},
		{"colon in a basic username", inject.Credential{BindingID: "b1", Strategy: "basic", Username: "a:b"}, key},
		{"empty value", inject.Credential{BindingID: "b1", Strategy: "bearer"}, ""},
		{"unknown placement", inject.Credential{BindingID: "b1", Strategy: "api_key", Placement: &controlv1.Placement{In: "body", Name: "k"}}, key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cred.Value = secret.New([]byte(tt.value))
			err := inject.Apply(request(t), []inject.Credential{tt.cred})
			if err == nil {
				t.Fatal("Apply accepted it")
			}
			if tt.value != "" && strings.Contains(err.Error(), tt.value) {
				t.Fatal("error repeats the credential")
			}
		})
	}
}

func TestCredentialRedacts(t *testing.T) {
	c := inject.FromMaterial(&rpcv1.ResolvedMaterial{Materials: []*rpcv1.Material{{BindingId: "b1", Strategy: "api_key", Value: []byte(key)}}})[0]
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "cred", c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), logs.String()} {
		if strings.Contains(s, key) || strings.Contains(s, url.QueryEscape(key)) {
			t.Fatalf("credential printed: %s", s)
		}
	}
}

func TestForms(t *testing.T) {
	creds := []inject.Credential{{BindingID: "b", Strategy: "basic", Username: "u", Value: secret.New([]byte(key))}}
	fs := inject.Forms(creds)
	want := []string{key, base64.StdEncoding.EncodeToString([]byte(key)), url.QueryEscape(key),
		base64.StdEncoding.EncodeToString([]byte("u:" + key)), `s3cr3t+/=\u0026key`}
	for _, w := range want {
		found := false
		for _, f := range fs {
			if string(f) == w {
				found = true
			}
		}
		if !found {
			t.Errorf("forms lack %q", w)
		}
	}
}
