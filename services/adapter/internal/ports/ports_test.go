package ports_test

import (
	"context"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/adapter/internal/invoke"
	"github.com/mcpgw/mcpgw/services/adapter/internal/ports"
)

// app records whether it was called and answers uniformly.
type app struct{ calls int }

func (a *app) Invoke(context.Context, invoke.Call) invoke.Outcome {
	a.calls++
	return invoke.Outcome{Uniform: true}
}

func (a *app) Explain(context.Context, invoke.Call) invoke.Explanation {
	a.calls++
	return invoke.Explanation{Gate: "policy", Reason: "denied"}
}

func TestHandlers(t *testing.T) {
	valid, _ := proto.Marshal(&rpcv1.InvokeRequest{Tool: "t"})
	tests := []struct {
		name   string
		caller bus.Service
		data   []byte
		code   errcode.Code
		called bool
	}{
		{"edge", bus.Edge, valid, errcode.ToolNotPermitted, true},
		{"not the edge", bus.Importer, valid, errcode.PermissionDenied, false},
		{"undecodable", bus.Edge, []byte{0xff, 0xff}, errcode.InvalidArgument, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{}
			h, err := ports.New(a, nil)
			if err != nil {
				t.Fatal(err)
			}
			m, err := h.Invoke(context.Background(), &bus.Request{Verb: bus.AdapterInvoke, Caller: tt.caller, Data: tt.data})
			if err != nil {
				t.Fatal(err)
			}
			r := m.(*rpcv1.InvokeReply)
			if r.GetError().GetCode() != string(tt.code) || (a.calls > 0) != tt.called {
				t.Fatalf("reply %v, app called %d times", r, a.calls)
			}
			x, err := h.Explain(context.Background(), &bus.Request{Verb: bus.AdapterExplain, Caller: tt.caller, Data: tt.data})
			if err != nil {
				t.Fatal(err)
			}
			xr := x.(*rpcv1.ExplainReply)
			if tt.called && (xr.GetGate() != "policy" || xr.GetAllowed()) || !tt.called && xr.GetError() == nil {
				t.Fatalf("explain reply %v", xr)
			}
		})
	}
}
