package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
	"github.com/mcpgw/mcpgw/services/edge/internal/ingress"
)

// answer serves tools/list and tools/call.
func (h *Handler) answer(w http.ResponseWriter, r *http.Request, req *ingress.Request, p *authn.Principal, env envelope, prm params, paramsOK bool, e era) {
	if !env.isRequest() {
		// A notification named tools/list or tools/call asks for nothing.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if env.JSONRPC != mcpgo.JSONRPC_VERSION || !env.validID() {
		writeRPCError(w, nil, e.modern, mcpgo.INVALID_REQUEST, "invalid JSON-RPC request", nil)
		return
	}
	if !paramsOK {
		writeRPCError(w, env.ID, e.modern, mcpgo.INVALID_PARAMS, "invalid params", nil)
		return
	}
	if e.modern {
		if code, msg, data := validateModern(r.Header, e, env.Method, env.Params, prm); code != 0 {
			writeRPCError(w, env.ID, true, code, msg, data)
			return
		}
	} else if v := e.headerVersion; v != "" && !mcpgo.IsValidProtocolVersion(v) {
		ingress.WriteError(w, errcode.New(errcode.InvalidArgument, "unsupported protocol version"))
		return
	}
	switch env.Method {
	case string(mcpgo.MethodToolsList):
		h.list(w, r, req, p, env, prm, e)
	case string(mcpgo.MethodToolsCall):
		h.call(w, r, req, p, env, prm, e)
	}
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, req *ingress.Request, p *authn.Principal, env envelope, prm params, e era) {
	if prm.Cursor != "" {
		// The visible set is answered whole; there is no next page.
		writeRPCError(w, env.ID, e.modern, mcpgo.INVALID_PARAMS, "invalid cursor", nil)
		return
	}
	tools, err := h.visible(r.Context(), req, p)
	if err != nil {
		// Fail closed: never an empty or unfiltered list.
		h.log.Warn("visible set unavailable", "request_id", req.ID, "code", errcode.CodeOf(err))
		h.forgetIfRefused(p, errcode.CodeOf(err))
		writeRPCError(w, env.ID, e.modern, mcpgo.INTERNAL_ERROR, "tool list unavailable", nil)
		return
	}
	res := mcpgo.ListToolsResult{Tools: make([]mcpgo.Tool, 0, len(tools))}
	for _, t := range tools {
		res.Tools = append(res.Tools, toMCPTool(t))
	}
	if e.modern {
		res.SetResultType(mcpgo.ResultTypeComplete)
		res.EnsureResultMeta().SetServerInfo(h.info)
		res.SetCacheHints(0, mcpgo.CacheScopePrivate)
	}
	writeResult(w, env.ID, res)
}

func (h *Handler) call(w http.ResponseWriter, r *http.Request, req *ingress.Request, p *authn.Principal, env envelope, prm params, e era) {
	if prm.Name == "" {
		writeRPCError(w, env.ID, e.modern, mcpgo.INVALID_PARAMS, "missing tool name", nil)
		return
	}
	args := bytes.TrimSpace(prm.Arguments)
	if len(args) == 0 || string(args) == "null" {
		args = []byte("{}")
	} else if args[0] != '{' {
		writeRPCError(w, env.ID, e.modern, mcpgo.INVALID_PARAMS, "arguments must be a JSON object", nil)
		return
	}
	ctx, cancel := context.WithTimeout(req.Context(r.Context(), p.Tenant()), h.invokeTimeout)
	defer cancel()
	var reply rpcv1.InvokeReply
	err := h.caller.Call(ctx, bus.AdapterInvoke, &rpcv1.InvokeRequest{
		Context: p.Signed, Tool: prm.Name, Arguments: args, RequestId: req.ID,
	}, &reply)
	if err != nil {
		// A timeout or an unreachable adapter is an error, never a result.
		h.log.Warn("invoke failed", "request_id", req.ID, "code", errcode.CodeOf(err))
		writeRPCError(w, env.ID, e.modern, mcpgo.INTERNAL_ERROR, "tool call could not be completed", nil)
		return
	}
	if re := reply.GetError(); re != nil && re.GetCode() != "" {
		h.forgetIfRefused(p, errcode.Code(re.GetCode()))
		if errcode.Code(re.GetCode()) == errcode.ToolNotPermitted {
			writeRPCError(w, env.ID, e.modern, mcpgo.INVALID_PARAMS, MessageNotPermitted, nil)
			return
		}
		writeRPCError(w, env.ID, e.modern, mcpgo.INTERNAL_ERROR, publicMessage(re.GetMessage()), nil)
		return
	}
	result, ok := resultObject(reply.GetResult(), e.modern, h.info)
	if !ok {
		h.log.Error("adapter returned an unusable result", "request_id", req.ID)
		writeRPCError(w, env.ID, e.modern, mcpgo.INTERNAL_ERROR, "tool call could not be completed", nil)
		return
	}
	writeResult(w, env.ID, result)
}

// forgetIfRefused drops p's cached context when a service refused it (a
// revoked credential, say), so the next request asks policy again.
func (h *Handler) forgetIfRefused(p *authn.Principal, code errcode.Code) {
	if code == errcode.Unauthenticated {
		h.auth.Forget(p)
	}
}

// visible asks policy for the tools p may see and invoke. Any failure is an
// error: callers fail closed.
func (h *Handler) visible(ctx context.Context, req *ingress.Request, p *authn.Principal) ([]*rpcv1.VisibleTool, error) {
	ctx, cancel := context.WithTimeout(req.Context(ctx, p.Tenant()), h.policyTimeout)
	defer cancel()
	var reply rpcv1.VisibleReply
	if err := h.caller.Call(ctx, bus.PolicyVisible, &rpcv1.VisibleRequest{Context: p.Signed}, &reply); err != nil {
		return nil, err
	}
	if err := ingress.ReplyError(reply.GetError()); err != nil {
		return nil, err
	}
	return reply.GetTools(), nil
}

// toMCPTool renders a visible tool. Hints are only stated when set, so an
// unset one keeps MCP's cautious default (e.g. destructive, open world).
func toMCPTool(t *rpcv1.VisibleTool) mcpgo.Tool {
	tool := mcpgo.Tool{Name: t.GetName(), Description: t.GetDescription(), RawInputSchema: json.RawMessage(`{"type":"object"}`)}
	if s := t.GetInputSchema(); len(s) > 0 && json.Valid(s) {
		tool.RawInputSchema = json.RawMessage(s)
	}
	if s := t.GetOutputSchema(); len(s) > 0 && json.Valid(s) {
		tool.RawOutputSchema = json.RawMessage(s)
	}
	if a := t.GetAnnotations(); a != nil {
		yes := func(b bool) *bool {
			if !b {
				return nil
			}
			return &b
		}
		tool.Annotations = mcpgo.ToolAnnotation{
			Title: a.GetTitle(), ReadOnlyHint: yes(a.GetReadOnly()), DestructiveHint: yes(a.GetDestructive()),
			IdempotentHint: yes(a.GetIdempotent()), OpenWorldHint: yes(a.GetOpenWorld()),
		}
	}
	return tool
}

// resultObject returns the adapter's CallToolResult JSON as the response
// result. For 2026-07-28 requests it adds what that version requires of
// every result when missing (resultType, serverInfo); otherwise it is passed
// as is.
func resultObject(raw []byte, modern bool, info mcpgo.Implementation) (json.RawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return nil, false
	}
	if !modern {
		return json.RawMessage(raw), true
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, false
	}
	if _, ok := fields["resultType"]; !ok {
		fields["resultType"] = json.RawMessage(`"` + string(mcpgo.ResultTypeComplete) + `"`)
	}
	meta := map[string]json.RawMessage{}
	if m, ok := fields["_meta"]; ok {
		if err := json.Unmarshal(m, &meta); err != nil {
			return nil, false
		}
	}
	if _, ok := meta[mcpgo.MetaKeyServerInfo]; !ok {
		b, err := json.Marshal(info)
		if err != nil {
			return nil, false
		}
		meta[mcpgo.MetaKeyServerInfo] = b
		mb, err := json.Marshal(meta)
		if err != nil {
			return nil, false
		}
		fields["_meta"] = mb
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, false
	}
	return out, true
}

// publicMessage keeps a service's caller-safe message short.
func publicMessage(s string) string {
	if s = ingress.Trim(s, 300); s == "" {
		return "tool call failed"
	}
	return s
}
