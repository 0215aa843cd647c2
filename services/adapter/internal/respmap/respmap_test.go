package respmap_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/services/adapter/internal/respmap"
)

func TestResponse(t *testing.T) {
	forms := [][]byte{[]byte("SECRET"), []byte("U0VDUkVU")}
	tests := []struct {
		name       string
		status     int
		body       string
		max        int
		isError    bool
		structured bool
		text       string
		tooLarge   bool
		scrubbed   bool
	}{
		{"json object", 200, `{"id":1,"n":12345678901234567890}`, 0, false, true, `{"id":1,"n":12345678901234567890}`, false, false},
		{"json array is text only", 200, `[1,2]`, 0, false, false, `[1,2]`, false, false},
		{"plain text", 201, `done <ok> & fine`, 0, false, false, `done <ok> & fine`, false, false},
		{"error status", 404, `{"error":"nope"}`, 0, true, true, `upstream answered HTTP 404: {"error":"nope"}`, false, false},
		{"empty body", 204, ``, 0, false, false, `upstream answered HTTP 204 with an empty body`, false, false},
		{"binary", 200, "\xff\xfe\x00", 0, false, false, `3 bytes of binary content`, false, false},
		{"echo scrubbed", 200, `{"k":"SECRET","b":"x U0VDUkVU y"}`, 0, false, true, `{"k":"[redacted]","b":"x [redacted] y"}`, false, true},
		{"too large", 200, `{"blob":"` + strings.Repeat("x", 2000) + `"}`, 1024, true, false, `result too large`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := respmap.Response(tt.status, []byte(tt.body), forms, tt.max)
			var r respmap.Result
			if err := json.Unmarshal(m.JSON, &r); err != nil {
				t.Fatal(err)
			}
			if r.IsError != tt.isError || m.IsError != tt.isError || m.TooLarge != tt.tooLarge || m.Scrubbed != tt.scrubbed {
				t.Fatalf("mapped = %s (%+v)", m.JSON, m)
			}
			if (r.StructuredContent != nil) != tt.structured {
				t.Fatalf("structuredContent = %v", r.StructuredContent)
			}
			if len(r.Content) != 1 || r.Content[0].Type != "text" || !strings.Contains(r.Content[0].Text, tt.text) {
				t.Fatalf("content = %+v", r.Content)
			}
			if strings.Contains(string(m.JSON), "SECRET") || strings.Contains(string(m.JSON), "U0VDUkVU") {
				t.Fatal("a credential form survived")
			}
		})
	}
}

func TestErrorResult(t *testing.T) {
	var r respmap.Result
	if err := json.Unmarshal(respmap.ErrorResult(`bad "input" <here>`), &r); err != nil {
		t.Fatal(err)
	}
	if !r.IsError || r.Content[0].Text != `bad "input" <here>` {
		t.Fatalf("result = %+v", r)
	}
}
