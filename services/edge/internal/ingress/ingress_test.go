package ingress_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/errcode"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
)

func TestValidTraceParent(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nX: y", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := ingress.ValidTraceParent(tt.in); got != tt.want {
				t.Fatalf("ValidTraceParent(%q) = %v", tt.in, got)
			}
		})
	}
}

func TestBearerCredential(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   string
	}{
		{"bearer", []string{"Bearer mgw_abc"}, "mgw_abc"},
		{"case-insensitive scheme", []string{"bearer mgw_abc"}, "mgw_abc"},
		{"extra spaces", []string{"  Bearer   mgw_abc  "}, "mgw_abc"},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, ""},
		{"empty", []string{"Bearer "}, ""},
		{"two tokens", []string{"Bearer a b"}, ""},
		{"two headers", []string{"Bearer a", "Bearer b"}, ""},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Authorization", v)
			}
			if got := string(ingress.BearerCredential(h)); got != tt.want {
				t.Fatalf("BearerCredential = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := map[errcode.Code]int{
		errcode.InvalidArgument:  400,
		errcode.InvalidID:        400,
		errcode.Unauthenticated:  401,
		errcode.PermissionDenied: 403,
		errcode.NotFound:         404,
		errcode.Conflict:         409,
		errcode.TooLarge:         413,
		errcode.Unavailable:      503,
		errcode.ToolNotPermitted: 500,
		errcode.BadSignature:     500,
		errcode.Replayed:         500,
		errcode.IDTaken:          500,
		errcode.Internal:         500,
	}
	for code, want := range tests {
		t.Run(string(code), func(t *testing.T) {
			if got := ingress.HTTPStatus(code); got != want {
				t.Fatalf("HTTPStatus(%s) = %d, want %d", code, got, want)
			}
		})
	}
}

func TestWriteErrorShowsOnlyThePublicMessage(t *testing.T) {
	w := httptest.NewRecorder()
	ingress.WriteError(w, errcode.Wrap(errcode.Unavailable, "service unavailable", errors.New("dial nats://user:secret@10.0.0.1")))
	if w.Code != 503 || strings.Contains(w.Body.String(), "secret") ||
		strings.TrimSpace(w.Body.String()) != `{"error":{"code":"unavailable","message":"service unavailable"}}` {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	ingress.WriteError(w, errors.New("plain failure with detail"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "detail") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

func TestDecodeJSON(t *testing.T) {
	type body struct {
		Name string `json:"name"`
	}
	tests := []struct {
		name string
		in   string
		code errcode.Code
	}{
		{"ok", `{"name":"x"}`, ""},
		{"unknown field", `{"name":"x","extra":1}`, errcode.InvalidArgument},
		{"trailing value", `{"name":"x"}{}`, errcode.InvalidArgument},
		{"wrong type", `{"name":1}`, errcode.InvalidArgument},
		{"empty", ``, errcode.InvalidArgument},
		{"too large", `{"name":"` + strings.Repeat("x", 100) + `"}`, errcode.TooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.in))
			var b body
			err := ingress.DecodeJSON(r, 64, &b)
			if tt.code == "" {
				if err != nil || b.Name != "x" {
					t.Fatalf("DecodeJSON: %v, %+v", err, b)
				}
				return
			}
			if errcode.CodeOf(err) != tt.code {
				t.Fatalf("DecodeJSON error %v, want %s", err, tt.code)
			}
		})
	}
}

func TestTrim(t *testing.T) {
	if got := ingress.Trim(" curl/8.0\r\n\x00 ", 64); got != "curl/8.0" {
		t.Fatalf("Trim = %q", got)
	}
	if got := ingress.Trim(strings.Repeat("a", 200), 10); got != strings.Repeat("a", 10) {
		t.Fatalf("Trim = %q", got)
	}
}
