package mcp

import (
	"encoding/json"
	"net/http"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		parsed   bool
		method   string
		request  bool
		validID  bool
		paramsOK bool
		toolName string
	}{
		{"tools/call", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"a":1}}}`, true, "tools/call", true, true, true, "x"},
		{"string id", `{"jsonrpc":"2.0","id":"a","method":"tools/list"}`, true, "tools/list", true, true, true, ""},
		{"notification", `{"jsonrpc":"2.0","method":"tools/list"}`, true, "tools/list", false, false, true, ""},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"tools/list"}`, true, "tools/list", false, false, true, ""},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"tools/list"}`, true, "tools/list", true, false, true, ""},
		{"bad params", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":5}}`, true, "tools/call", true, true, false, ""},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`, false, "", false, false, true, ""},
		{"not json", `tools/list`, false, "", false, false, true, ""},
		{"duplicate method keeps the last, like mcp-go", `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}`, true, "tools/list", true, true, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parseEnvelope([]byte(tt.body))
			if ok != tt.parsed || e.Method != tt.method {
				t.Fatalf("parsed %v method %q", ok, e.Method)
			}
			if !ok {
				return
			}
			if e.isRequest() != tt.request || (tt.request && e.validID() != tt.validID) {
				t.Fatalf("request %v validID %v", e.isRequest(), e.validID())
			}
			p, pok := e.decodeParams()
			if pok != tt.paramsOK || p.Name != tt.toolName {
				t.Fatalf("params ok %v name %q", pok, p.Name)
			}
		})
	}
}

func TestResultObject(t *testing.T) {
	info := mcpgo.Implementation{Name: "mcpgw", Version: "test"}
	raw := []byte(`{"content":[{"type":"text","text":"hi"}],"isError":false}`)
	got, ok := resultObject(raw, false, info)
	if !ok || string(got) != string(raw) {
		t.Fatalf("legacy result changed: %s", got)
	}
	got, ok = resultObject(raw, true, info)
	var m map[string]json.RawMessage
	if !ok || json.Unmarshal(got, &m) != nil || string(m["resultType"]) != `"complete"` || string(m["isError"]) != "false" {
		t.Fatalf("modern result %s", got)
	}
	var meta map[string]mcpgo.Implementation
	if err := json.Unmarshal(m["_meta"], &meta); err != nil || meta[mcpgo.MetaKeyServerInfo].Name != info.Name {
		t.Fatalf("modern result meta %s", m["_meta"])
	}
	kept, _ := resultObject([]byte(`{"content":[],"resultType":"input_required","_meta":{"x":1}}`), true, info)
	if json.Unmarshal(kept, &m) != nil || string(m["resultType"]) != `"input_required"` {
		t.Fatalf("resultType overwritten: %s", kept)
	}
	for _, bad := range []string{``, `[]`, `"x"`, `{`, `null`} {
		if _, ok := resultObject([]byte(bad), false, info); ok {
			t.Fatalf("accepted result %q", bad)
		}
	}
}

func TestModernStatus(t *testing.T) {
	tests := map[int]int{
		mcpgo.INVALID_PARAMS:   http.StatusBadRequest,
		mcpgo.HEADER_MISMATCH:  http.StatusBadRequest,
		mcpgo.METHOD_NOT_FOUND: http.StatusNotFound,
		mcpgo.INTERNAL_ERROR:   http.StatusOK,
	}
	for code, want := range tests {
		if got := modernStatus(code); got != want {
			t.Fatalf("modernStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

func TestRefuseToolMethods(t *testing.T) {
	for _, m := range []string{"tools/list", "tools/call"} {
		if refuseToolMethods(nil, 1, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"`+m+`"}`)) == nil {
			t.Fatalf("%s would reach mcp-go's tool table", m)
		}
	}
	if err := refuseToolMethods(nil, 1, json.RawMessage(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)); err != nil {
		t.Fatal(err)
	}
}

// FuzzEnvelope checks that no input makes the edge's parsing panic and that
// the edge and mcp-go's dispatcher agree on which messages are tool methods.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":"1","method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
		`[]`, `{"method":1}`, `{"params":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, ok := parseEnvelope(body)
		var dispatcher struct {
			Method mcpgo.MCPMethod `json:"method"`
		}
		dok := json.Unmarshal(body, &dispatcher) == nil
		if dok && isToolMethod(string(dispatcher.Method)) && (!ok || !isToolMethod(e.Method)) {
			t.Fatalf("mcp-go would route %q as a tool method, the edge would not", body)
		}
		if !ok {
			return
		}
		_ = e.isRequest()
		_ = e.validID()
		p, _ := e.decodeParams()
		era := detectEra(http.Header{}, p)
		_, _, _ = validateModern(http.Header{"Mcp-Protocol-Version": {"2026-07-28"}}, era, e.Method, e.Params, p)
	})
}
