package ingest

import (
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/errcode"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

func TestValidateMapAuth(t *testing.T) {
	tests := []struct {
		name, scheme, kind, in, param string
		want                          mapping
		msg                           string
	}{
		{"apiKey header", "inferred:header:X-Sig", "apiKey", "header", "X-Sig", mapping{analysis.KindAPIKey, analysis.LocationHeader, "X-Sig"}, ""},
		{"apiKey cookie", "session", "apiKey", "cookie", "sid", mapping{analysis.KindAPIKey, analysis.LocationCookie, "sid"}, ""},
		{"bearer placed", "partner", "http-bearer", "", "", mapping{analysis.KindHTTPBearer, analysis.LocationHeader, "Authorization"}, ""},
		{"basic in the header", "partner", "http-basic", "header", "authorization", mapping{analysis.KindHTTPBasic, analysis.LocationHeader, "Authorization"}, ""},
		{"basic in a query", "partner", "http-basic", "query", "", mapping{}, "Authorization header"},
		{"unserved kind", "partner", "oauth2", "header", "Authorization", mapping{}, "kind must be"},
		{"apiKey in a body", "partner", "apiKey", "body", "key", mapping{}, "header, a query parameter or a cookie"},
		{"apiKey without a parameter", "partner", "apiKey", "query", "", mapping{}, "needs the parameter"},
		{"parameter with a space", "partner", "apiKey", "header", "X Sig", mapping{}, "invalid parameter name"},
		{"empty scheme", "", "apiKey", "header", "X-Sig", mapping{}, "invalid auth scheme name"},
		{"scheme with a newline", "a\nb", "apiKey", "header", "X-Sig", mapping{}, "invalid auth scheme name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := validateMapAuth(&MapAuthCommand{Tenant: "demo", SourceID: "src_1", Scheme: tc.scheme, Kind: tc.kind, In: tc.in, Param: tc.param})
			if tc.msg != "" {
				if errcode.CodeOf(err) != errcode.InvalidArgument || !containsMsg(err, tc.msg) {
					t.Fatalf("err = %v, want invalid_argument with %q", err, tc.msg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("mapping = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func containsMsg(err error, s string) bool {
	_, msg := errcode.Public(err)
	return err != nil && strings.Contains(msg, s)
}
