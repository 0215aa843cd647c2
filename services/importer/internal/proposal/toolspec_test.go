package proposal

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

func TestToolSpec(t *testing.T) {
	yes, no := true, false
	apiKey := analysis.Requirement{Scheme: "ApiKeyAuth", Kind: analysis.KindAPIKey, In: analysis.LocationHeader, Param: "X-API-Key", Scopes: []string{}}
	oauth := analysis.Requirement{Scheme: "oauth", Kind: analysis.KindOAuth2, In: analysis.LocationHeader, Param: "Authorization", Scopes: []string{"read", "write"}}
	inferred := analysis.Requirement{Kind: analysis.KindAPIKey, In: analysis.LocationQuery, Param: "api_key", Scopes: []string{}, Inferred: true}
	sigv4 := analysis.Requirement{Kind: analysis.KindAWSSigV4, In: analysis.LocationHeader, Scopes: []string{}, Inferred: true}
	apiKeySpec := &controlv1.AuthScheme{Name: "ApiKeyAuth", Kind: "apiKey", In: "header", Param: "X-API-Key"}
	oauthSpec := &controlv1.AuthScheme{Name: "oauth", Kind: "oauth2", In: "header", Param: "Authorization", Scopes: []string{"read", "write"}}
	inferredSpec := &controlv1.AuthScheme{Name: "inferred:query:api_key", Kind: "apiKey", In: "query", Param: "api_key", Inferred: true}
	sigv4Spec := &controlv1.AuthScheme{Name: "inferred:awsSigV4", Kind: "awsSigV4", In: "header", Inferred: true}

	base := func(mod func(*analysis.Operation)) analysis.Operation {
		op := analysis.Operation{
			Method: "GET", Path: "/v1/messages/{id}", OperationID: "getMessage",
			Tool: analysis.Tool{
				Name: "get_message", Description: "Get a message",
				InputSchema:  json.RawMessage(`{ "type": "object", "required": ["id"], "properties": {"id": {"type": "string", "maxLength": 1e3}}, "additionalProperties": false }`),
				OutputSchema: json.RawMessage(`{"type":"object","properties":{"b":{"type":"string"},"a":{"description":"<a&b>"}}}`),
				Annotations:  analysis.Annotations{Title: "Get a message", ReadOnlyHint: &yes, IdempotentHint: &yes, OpenWorldHint: &yes, DestructiveHint: &no},
			},
			Auth:    [][]analysis.Requirement{{apiKey}},
			Servers: []analysis.Server{{URL: "https://api.example.com/v1", Template: "https://{host}/v1"}},
			Request: analysis.Request{Body: analysis.BodyNone, Fields: []analysis.Field{
				{Property: "id", In: analysis.LocationPath, Name: "id", Required: true, Style: "simple", Explode: &no},
			}},
		}
		if mod != nil {
			mod(&op)
		}
		return op
	}
	baseSpec := func(mod func(*controlv1.ToolSpec)) *controlv1.ToolSpec {
		s := &controlv1.ToolSpec{
			Name: "get_message", Description: "Get a message",
			InputSchema:  []byte(`{"additionalProperties":false,"properties":{"id":{"maxLength":1e3,"type":"string"}},"required":["id"],"type":"object"}`),
			OutputSchema: []byte(`{"properties":{"a":{"description":"<a&b>"},"b":{"type":"string"}},"type":"object"}`),
			Annotations:  &controlv1.ToolAnnotations{Title: "Get a message", ReadOnly: true, Idempotent: true, OpenWorld: true},
			Operation: &controlv1.OperationSpec{
				OperationId: "getMessage", Method: "GET", Path: "/v1/messages/{id}",
				Servers: []string{"https://api.example.com/v1"},
				Params:  []*controlv1.ParamMapping{{Property: "id", In: "path", Name: "id", Required: true, Style: "simple"}},
			},
			Auth: []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{apiKeySpec}}},
		}
		if mod != nil {
			mod(s)
		}
		return s
	}

	tests := []struct {
		name    string
		op      analysis.Operation
		want    *controlv1.ToolSpec
		wantErr string
	}{
		{name: "path parameter, canonical schemas, declared api key", op: base(nil), want: baseSpec(nil)},
		{
			name: "body properties and query parameter with explode",
			op: base(func(op *analysis.Operation) {
				op.Method, op.Path, op.OperationID, op.Name = "POST", "/v1/messages", "sendMessage", "send_message"
				op.Annotations = analysis.Annotations{ReadOnlyHint: &no, OpenWorldHint: &yes}
				op.OutputSchema = nil
				op.Request = analysis.Request{ContentType: "application/json", Body: analysis.BodyProperties, Fields: []analysis.Field{
					{Property: "tags", In: analysis.LocationQuery, Name: "tag", Style: "form", Explode: &yes},
					{Property: "to", In: analysis.LocationBody, Name: "to", Required: true},
					{Property: "body_", In: analysis.LocationBody, Name: "body"},
				}}
			}),
			want: baseSpec(func(s *controlv1.ToolSpec) {
				s.Name, s.OutputSchema = "send_message", nil
				s.Annotations = &controlv1.ToolAnnotations{OpenWorld: true}
				s.Operation = &controlv1.OperationSpec{
					OperationId: "sendMessage", Method: "POST", Path: "/v1/messages", ContentType: "application/json",
					Servers: []string{"https://api.example.com/v1"},
					Params: []*controlv1.ParamMapping{
						{Property: "tags", In: "query", Name: "tag", Style: "form", Explode: true},
						{Property: "to", In: "body", Name: "to", Required: true},
						{Property: "body_", In: "body", Name: "body"},
					},
				}
			}),
		},
		{
			name: "whole body goes to body_property",
			op: base(func(op *analysis.Operation) {
				op.Request = analysis.Request{ContentType: "application/json", Body: analysis.BodyWhole, Fields: []analysis.Field{
					{Property: "id", In: analysis.LocationPath, Name: "id", Required: true, Style: "simple"},
					{Property: "body", In: analysis.LocationBody, WholeBody: true, Required: true},
				}}
			}),
			want: baseSpec(func(s *controlv1.ToolSpec) {
				s.Operation.ContentType, s.Operation.BodyProperty = "application/json", "body"
			}),
		},
		{
			name: "no auth at all",
			op:   base(func(op *analysis.Operation) { op.Auth = [][]analysis.Requirement{} }),
			want: baseSpec(func(s *controlv1.ToolSpec) { s.Auth = nil }),
		},
		{
			name: "alternatives, anonymous one kept empty",
			op:   base(func(op *analysis.Operation) { op.Auth = [][]analysis.Requirement{{apiKey, oauth}, {}} }),
			want: baseSpec(func(s *controlv1.ToolSpec) {
				s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{apiKeySpec, oauthSpec}}, {}}
			}),
		},
		{
			name: "inferred credentials join every alternative",
			op: base(func(op *analysis.Operation) {
				op.Auth = [][]analysis.Requirement{{apiKey}, {oauth}}
				op.InferredAuth = []analysis.Requirement{inferred}
			}),
			want: baseSpec(func(s *controlv1.ToolSpec) {
				s.Auth = []*controlv1.AuthAlternative{
					{Schemes: []*controlv1.AuthScheme{apiKeySpec, inferredSpec}},
					{Schemes: []*controlv1.AuthScheme{oauthSpec, inferredSpec}},
				}
			}),
		},
		{
			name: "inferred only, without parameter",
			op: base(func(op *analysis.Operation) {
				op.Auth = nil
				op.InferredAuth = []analysis.Requirement{sigv4}
			}),
			want: baseSpec(func(s *controlv1.ToolSpec) {
				s.Auth = []*controlv1.AuthAlternative{{Schemes: []*controlv1.AuthScheme{sigv4Spec}}}
			}),
		},
		{
			name: "relative server kept as written",
			op:   base(func(op *analysis.Operation) { op.Servers = []analysis.Server{{URL: "/"}} }),
			want: baseSpec(func(s *controlv1.ToolSpec) { s.Operation.Servers = []string{"/"} }),
		},
		{
			name: "credential header as input is refused",
			op: base(func(op *analysis.Operation) {
				op.Request.Fields = append(op.Request.Fields, analysis.Field{Property: "key", In: analysis.LocationHeader, Name: "x-api-key", Style: "simple"})
			}),
			wantErr: `credential parameter of scheme "ApiKeyAuth" is a tool input`,
		},
		{
			name:    "undecodable input schema",
			op:      base(func(op *analysis.Operation) { op.InputSchema = json.RawMessage(`{"type":`) }),
			wantErr: "input schema",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ToolSpec(tc.op)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(tc.want, got) {
				t.Fatalf("spec mismatch\nwant: %s\n got: %s", prototext.Format(tc.want), prototext.Format(got))
			}
			for _, alt := range got.GetAuth() {
				for _, s := range alt.GetSchemes() {
					if s.GetCallerVisible() {
						t.Fatalf("scheme %q is caller-visible", s.GetName())
					}
				}
			}
			again, err := ToolSpec(tc.op)
			if err != nil || !proto.Equal(got, again) {
				t.Fatalf("mapping is not deterministic: %v", err)
			}
		})
	}
}
