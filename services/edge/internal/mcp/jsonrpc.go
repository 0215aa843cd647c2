package mcp

import (
	"encoding/json"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// envelope is the part of a JSON-RPC message the edge reads before deciding
// who answers it. Method detection decodes exactly the fields mcp-go's
// dispatcher decodes, so that no message the dispatcher would route as
// tools/list or tools/call escapes the edge's own handling.
type envelope struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	ID      json.RawMessage `json:"id,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// params is what the edge reads from the params of a request: the tool call
// and the protocol metadata.
type params struct {
	Meta       *mcpgo.Meta           `json:"_meta,omitempty"`
	ClientInfo *mcpgo.Implementation `json:"clientInfo,omitempty"`
	Name       string                `json:"name,omitempty"`
	Arguments  json.RawMessage       `json:"arguments,omitempty"`
	Cursor     string                `json:"cursor,omitempty"`
}

// parseEnvelope decodes the message's method and ID. ok is false for a body
// that is not a JSON object; such bodies go to mcp-go, which answers them
// with a parse error.
func parseEnvelope(body []byte) (envelope, bool) {
	var e envelope
	if err := json.Unmarshal(body, &e); err != nil {
		return envelope{}, false
	}
	return e, true
}

// isRequest reports whether the message is a request (has a usable ID);
// a message without one is a notification and gets no response.
func (e envelope) isRequest() bool {
	if len(e.ID) == 0 || string(e.ID) == "null" {
		return false
	}
	return true
}

// validID reports whether the ID is a string or a number, as JSON-RPC
// requires.
func (e envelope) validID() bool {
	var v any
	if err := json.Unmarshal(e.ID, &v); err != nil {
		return false
	}
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}

// decodeParams reads the params the edge needs; a malformed params object is
// reported as invalid params.
func (e envelope) decodeParams() (params, bool) {
	var p params
	if len(e.Params) == 0 || string(e.Params) == "null" {
		return p, true
	}
	if err := json.Unmarshal(e.Params, &p); err != nil {
		return params{}, false
	}
	return p, true
}

// response is a JSON-RPC response the edge writes itself. ID is echoed
// exactly as the client sent it.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// writeResult answers a request with a result.
func writeResult(w http.ResponseWriter, id json.RawMessage, result any) {
	writeMessage(w, http.StatusOK, response{JSONRPC: mcpgo.JSONRPC_VERSION, ID: id, Result: result})
}

// writeRPCError answers a request with a JSON-RPC error. Modern (2026-07-28)
// requests get the HTTP status that protocol version maps the code to.
func writeRPCError(w http.ResponseWriter, id json.RawMessage, modern bool, code int, msg string, data any) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	status := http.StatusOK
	if modern {
		status = modernStatus(code)
	}
	writeMessage(w, status, response{JSONRPC: mcpgo.JSONRPC_VERSION, ID: id, Error: &rpcError{Code: code, Message: msg, Data: data}})
}

// modernStatus is the HTTP status protocol version 2026-07-28 gives a
// JSON-RPC error code (as mcp-go's transport maps it).
func modernStatus(code int) int {
	switch code {
	case mcpgo.METHOD_NOT_FOUND:
		return http.StatusNotFound
	case mcpgo.HEADER_MISMATCH, mcpgo.MISSING_REQUIRED_CLIENT_CAPABILITY, mcpgo.UNSUPPORTED_PROTOCOL_VERSION,
		mcpgo.INVALID_REQUEST, mcpgo.INVALID_PARAMS, mcpgo.PARSE_ERROR:
		return http.StatusBadRequest
	default:
		return http.StatusOK
	}
}

func writeMessage(w http.ResponseWriter, status int, msg response) {
	b, err := json.Marshal(msg)
	if err != nil {
		status = http.StatusOK
		b, _ = json.Marshal(response{JSONRPC: mcpgo.JSONRPC_VERSION, ID: msg.ID, Error: &rpcError{Code: mcpgo.INTERNAL_ERROR, Message: "internal error"}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// era describes the protocol era of a POST, as mcp-go decides it: modern
// when the Mcp-Protocol-Version header or the body's _meta names 2026-07-28
// or later.
type era struct {
	modern        bool
	headerVersion string
	metaVersion   string
}

func detectEra(h http.Header, p params) era {
	e := era{headerVersion: h.Get(mcpgo.HeaderProtocolVersion)}
	if p.Meta != nil {
		e.metaVersion = p.Meta.ProtocolVersion()
	}
	e.modern = mcpgo.IsModernProtocol(e.headerVersion) || mcpgo.IsModernProtocol(e.metaVersion)
	return e
}

// validateModern applies the transport checks protocol version 2026-07-28
// requires of a request the edge answers itself (the same checks mcp-go
// applies to the requests it answers). It returns the JSON-RPC error code
// and message, or 0 when the request is acceptable.
func validateModern(h http.Header, e era, method string, rawParams json.RawMessage, p params) (int, string, any) {
	if h.Get(mcpgo.HeaderLastEventID) != "" {
		return mcpgo.HEADER_MISMATCH, "Last-Event-ID is not supported in protocol version " + mcpgo.ProtocolVersion20260728, nil
	}
	if e.headerVersion == "" {
		return mcpgo.HEADER_MISMATCH, mcpgo.HeaderProtocolVersion + " header is required for requests carrying " + mcpgo.MetaKeyProtocolVersion, nil
	}
	if e.metaVersion == "" {
		return mcpgo.INVALID_PARAMS, "missing or invalid _meta field " + mcpgo.MetaKeyProtocolVersion, nil
	}
	if e.headerVersion != e.metaVersion {
		return mcpgo.HEADER_MISMATCH, mcpgo.HeaderProtocolVersion + " header does not match the request's protocol version", nil
	}
	if !mcpgo.IsValidProtocolVersion(e.metaVersion) {
		u := mcpgo.UnsupportedProtocolVersionError{Version: e.metaVersion, Supported: mcpgo.ValidProtocolVersions}
		rpc := u.JSONRPCError()
		return rpc.Error.Code, rpc.Error.Message, rpc.Error.Data
	}
	if p.Meta.ClientCapabilities() == nil {
		return mcpgo.INVALID_PARAMS, "missing or invalid _meta field " + mcpgo.MetaKeyClientCapabilities, nil
	}
	if err := mcpgo.ValidateStandardHeaders(h.Get, e.metaVersion, mcpgo.MCPMethod(method), rawParams); err != nil {
		return mcpgo.HEADER_MISMATCH, err.Error(), nil
	}
	return 0, "", nil
}
