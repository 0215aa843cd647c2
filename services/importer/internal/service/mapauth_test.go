package service_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	libcatalog "github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/reqctx"
)

// signed needs an undeclared X-Sig signature header on one operation (an
// hmac signature no binding strategy serves) and a declared key on both.
const signed = `openapi: 3.0.3
info: {title: Signed API, version: "1"}
servers: [{url: "https://signed.example.com"}]
components:
  securitySchemes:
    key: {type: apiKey, in: header, name: X-API-Key}
security: [{key: []}]
paths:
  /orders:
    get:
      operationId: listOrders
      parameters: [{name: limit, in: query, schema: {type: integer}}]
      responses: {"200": {description: ok}}
    post:
      operationId: createOrder
      parameters:
        - {name: X-Sig, in: header, required: true, schema: {type: string}}
        - {name: note, in: query, schema: {type: string}}
      responses: {"201": {description: created}}
`

const sigScheme = "inferred:header:X-Sig"

// mapAuth builds a MapAuth command authorized by policy (mod may change the
// authorization; a nil authorization is left out when noAuth).
func (f *fixture) mapAuth(tnt, sourceID, scheme, kind, in, param string, mod func(*commonv1.Authorization)) *rpcv1.MapAuth {
	f.t.Helper()
	cmd := &rpcv1.MapAuth{Tenant: tnt, SourceId: sourceID, Scheme: scheme, Kind: kind, In: in, Param: param}
	digest, err := reqctx.CommandDigest(cmd)
	if err != nil {
		f.t.Fatal(err)
	}
	now := time.Now()
	a := &commonv1.Authorization{
		Actor: &commonv1.Context{Tenant: tnt, Surface: "cli", CredentialKind: "admin_token", CredentialId: "admin",
			PlatformAdmin: true, IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(time.Minute))},
		Tenant: tnt, Command: reqctx.CommandName(cmd), CommandDigest: digest, RequestId: bus.NewID("req_"),
		IssuedAt: timestamppb.New(now), ExpiresAt: timestamppb.New(now.Add(50 * time.Second)), AuthorizationId: bus.NewID("authz_"),
	}
	if mod != nil {
		mod(a)
	}
	if cmd.Authorization, err = reqctx.SignAuthorization(f.keys.ID[bus.Policy], a); err != nil {
		f.t.Fatal(err)
	}
	return cmd
}

func (f *fixture) callMapAuth(cmd *rpcv1.MapAuth) *rpcv1.ImportReply {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(bus.WithMeta(f.ctx, bus.Meta{RequestID: bus.NewID("req_"), Tenant: cmd.GetTenant()}), 30*time.Second)
	defer cancel()
	var reply rpcv1.ImportReply
	if err := f.edge.Client.Call(ctx, bus.ImporterMapAuth, cmd, &reply); err != nil {
		f.t.Fatalf("call map_auth: %v", err)
	}
	return &reply
}

// schemeOf returns the scheme named name of a tool's first alternative.
func schemeOf(spec *controlv1.ToolSpec, name string) *controlv1.AuthScheme {
	for _, alt := range spec.GetAuth() {
		for _, s := range alt.GetSchemes() {
			if s.GetName() == name {
				return s
			}
		}
	}
	return nil
}

func TestMapAuth(t *testing.T) {
	f := newFixture(t, 1)
	pol := f.n.Runtime(t, f.keys, bus.Policy)
	src := f.importDoc(tenant, "Signed API", "", signed).GetSourceId()
	f.approve(pol, tenant, src, 1)
	v1, _ := f.cat.Version(tenant, src, 1)
	if s := schemeOf(v1.Tools["create_order"], sigScheme); s == nil || s.GetKind() != "hmac" {
		t.Fatalf("version 1 create_order's X-Sig scheme = %v, want kind hmac (no strategy serves it)", s)
	}

	refusals := []struct {
		name string
		cmd  *rpcv1.MapAuth
		code errcode.Code
		msg  string
	}{
		{"unknown scheme", f.mapAuth(tenant, src, "inferred:header:X-Other", "apiKey", "header", "X-Other", nil), errcode.NotFound, `"inferred:header:X-Other"`},
		{"kind no strategy serves", f.mapAuth(tenant, src, sigScheme, "hmac", "header", "X-Sig", nil), errcode.InvalidArgument, "kind must be"},
		{"apiKey without a parameter", f.mapAuth(tenant, src, sigScheme, "apiKey", "header", "", nil), errcode.InvalidArgument, "needs the parameter"},
		{"apiKey in a path", f.mapAuth(tenant, src, sigScheme, "apiKey", "path", "X-Sig", nil), errcode.InvalidArgument, "header, a query parameter or a cookie"},
		{"bearer elsewhere", f.mapAuth(tenant, src, sigScheme, "http-bearer", "query", "sig", nil), errcode.InvalidArgument, "Authorization header"},
		{"parameter that is a tool input", f.mapAuth(tenant, src, sigScheme, "apiKey", "query", "note", nil), errcode.InvalidArgument, "is a tool input"},
		{"another tenant's source", f.mapAuth("other", src, sigScheme, "apiKey", "header", "X-Sig", nil), errcode.NotFound, "source not found"},
		{"authorization of another command", f.mapAuth(tenant, src, sigScheme, "apiKey", "header", "X-Sig", func(a *commonv1.Authorization) {
			a.CommandDigest = make([]byte, len(a.CommandDigest))
		}), "", ""},
	}
	noAuth := &rpcv1.MapAuth{Tenant: tenant, SourceId: src, Scheme: sigScheme, Kind: "apiKey", In: "header", Param: "X-Sig"}
	before, objects := len(f.control()), f.storedObjects()
	for _, tc := range refusals {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			reply := f.callMapAuth(tc.cmd)
			if tc.code == "" {
				if reply.GetError() == nil || reply.GetVersion() != 0 {
					t.Fatalf("reply = %v, want a refusal", reply)
				}
				return
			}
			wantError(t, reply, tc.code, tc.msg)
		})
	}
	t.Run("refuses no authorization", func(t *testing.T) {
		reply := f.callMapAuth(noAuth)
		if reply.GetError() == nil || reply.GetVersion() != 0 {
			t.Fatalf("reply = %v, want a refusal", reply)
		}
	})
	if after := len(f.control()); after != before || f.storedObjects() != objects {
		t.Fatalf("refusals wrote: %d control messages (was %d), %d objects (was %d)", after, before, f.storedObjects(), objects)
	}

	reply := f.callMapAuth(f.mapAuth(tenant, src, sigScheme, "apiKey", "header", "X-Sig", nil))
	if reply.GetError() != nil || reply.GetSourceId() != src || reply.GetVersion() != 2 {
		t.Fatalf("map reply = %v", reply)
	}
	f.readerSees()
	v2, ok := f.cat.Version(tenant, src, 2)
	if !ok {
		t.Fatal("version 2 is not committed")
	}

	t.Run("the new version carries the mapped requirement", func(t *testing.T) {
		s := schemeOf(v2.Tools["create_order"], sigScheme)
		if s == nil || s.GetKind() != "apiKey" || s.GetIn() != "header" || s.GetParam() != "X-Sig" || s.GetCallerVisible() {
			t.Fatalf("create_order's X-Sig scheme = %v", s)
		}
		if k := schemeOf(v2.Tools["create_order"], "key"); k == nil || k.GetKind() != "apiKey" || k.GetParam() != "X-API-Key" {
			t.Fatalf("create_order's key scheme = %v", k)
		}
		for _, p := range v2.Tools["create_order"].GetOperation().GetParams() {
			if strings.EqualFold(p.GetName(), "X-Sig") {
				t.Fatal("X-Sig is a tool input")
			}
		}
		if strings.Contains(string(v2.Tools["create_order"].GetInputSchema()), "X-Sig") {
			t.Fatalf("input schema names X-Sig: %s", v2.Tools["create_order"].GetInputSchema())
		}
		d1, _ := libcatalog.ToolDigest(v1.Tools["create_order"])
		d2, _ := libcatalog.ToolDigest(v2.Tools["create_order"])
		if string(d1) == string(d2) {
			t.Fatal("create_order's digest did not change")
		}
		if !proto.Equal(v1.Tools["list_orders"], v2.Tools["list_orders"]) {
			t.Fatal("list_orders changed")
		}
	})

	t.Run("the diff and review list the changed auth", func(t *testing.T) {
		d := f.startedEvent(src, 2).GetDiff()
		if d.GetBaseVersion() != 1 || d.GetUnchangedOperations() != 1 || len(d.GetChangedOperations()) != 1 {
			t.Fatalf("diff = %v", d)
		}
		c := d.GetChangedOperations()[0]
		if c.GetTool() != "create_order" || strings.Join(c.GetChanges(), ",") != "auth" {
			t.Fatalf("changed operation = %v", c)
		}
		if len(d.GetChangedSchemes()) != 1 || d.GetChangedSchemes()[0].GetName() != sigScheme ||
			d.GetChangedSchemes()[0].GetKind() != "apiKey" || d.GetChangedSchemes()[0].GetPreviousKind() != "hmac" {
			t.Fatalf("changed schemes = %v", d.GetChangedSchemes())
		}
		r := decodeReview(t, reply)
		if !hasInfo(r, `auth scheme "inferred:header:X-Sig" mapped by an operator: kind apiKey, in header, param "X-Sig"`) {
			t.Fatalf("no operator-mapped diagnostic: %v", r.Diagnostics)
		}
		var diff struct {
			Auth struct {
				Changed []struct {
					Name, Kind, PreviousKind string
				} `json:"changed"`
			} `json:"auth"`
		}
		if err := json.Unmarshal(r.Diff, &diff); err != nil || len(diff.Auth.Changed) != 1 || diff.Auth.Changed[0].Name != sigScheme || diff.Auth.Changed[0].Kind != "apiKey" {
			t.Fatalf("review diff = %s (%v)", r.Diff, err)
		}
		for _, op := range r.Operations {
			for _, alt := range op.Auth {
				for _, req := range alt {
					if req.CallerVisible {
						t.Fatalf("%s: caller-visible requirement %v", op.Name, req)
					}
				}
			}
		}
	})

	t.Run("version 1 stays approved until policy approves version 2", func(t *testing.T) {
		tl, ok := f.cat.Tool(tenant, "create_order")
		if !ok || !tl.Approved || tl.Version != 1 {
			t.Fatalf("create_order: approved %v, version %d", tl.Approved, tl.Version)
		}
		f.approve(pol, tenant, src, 2)
		tl, ok = f.cat.Tool(tenant, "create_order")
		if !ok || !tl.Approved || tl.Version != 2 || schemeOf(tl.Spec, sigScheme).GetKind() != "apiKey" {
			t.Fatalf("after approval create_order: approved %v, version %d", tl.Approved, tl.Version)
		}
	})

	t.Run("a later mapping keeps the earlier one", func(t *testing.T) {
		reply := f.callMapAuth(f.mapAuth(tenant, src, "key", "http-bearer", "", "", nil))
		if reply.GetError() != nil || reply.GetVersion() != 3 {
			t.Fatalf("map reply = %v", reply)
		}
		f.readerSees()
		v3, _ := f.cat.Version(tenant, src, 3)
		if s := schemeOf(v3.Tools["create_order"], sigScheme); s.GetKind() != "apiKey" || s.GetParam() != "X-Sig" {
			t.Fatalf("X-Sig scheme in version 3 = %v", s)
		}
		if s := schemeOf(v3.Tools["list_orders"], "key"); s.GetKind() != "http-bearer" || s.GetParam() != "Authorization" {
			t.Fatalf("key scheme in version 3 = %v", s)
		}
		if again := f.callMapAuth(f.mapAuth(tenant, src, "key", "http-bearer", "header", "Authorization", nil)); again.GetError().GetCode() != string(errcode.InvalidArgument) {
			t.Fatalf("repeated mapping: %v", again)
		}
	})
}
