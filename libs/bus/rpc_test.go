package bus_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
)

// serveCheck runs policy's rpc.policy.check with a handler that counts calls.
func serveCheck(t *testing.T, f *fixture, calls *atomic.Int32) {
	t.Helper()
	nc := f.n.Connect(t, bus.Policy)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	nonces, err := bus.NewKVNonceStore(ctx(t), js, bus.Policy)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := bus.NewServer(bus.ServerConfig{Conn: nc, Identity: f.keys.ID[bus.Policy], Keyring: f.keys.Keyring, Nonces: nonces})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	err = srv.Handle(bus.PolicyCheck, func(ctx context.Context, req *bus.Request) (proto.Message, error) {
		calls.Add(1)
		var in rpcv1.CheckRequest
		if err := proto.Unmarshal(req.Data, &in); err != nil {
			return nil, err
		}
		if in.GetTool() == "boom" {
			return nil, errcode.New(errcode.Unavailable, "spicedb unavailable")
		}
		return &rpcv1.CheckReply{Outcome: "allowed", Reason: bus.MetaFrom(ctx).RequestID}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func client(t *testing.T, f *fixture, s bus.Service) *bus.Client {
	t.Helper()
	c, err := bus.NewClient(bus.ClientConfig{Conn: f.n.Connect(t, s), Identity: f.keys.ID[s], Keyring: f.keys.Keyring, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRPCRoundTrip(t *testing.T) {
	f := newFixture(t)
	var calls atomic.Int32
	serveCheck(t, f, &calls)
	c := client(t, f, bus.Adapter)
	var reply rpcv1.CheckReply
	rc := bus.WithMeta(ctx(t), bus.Meta{RequestID: "req_42", Tenant: "demo"})
	if err := c.Call(rc, bus.PolicyCheck, &rpcv1.CheckRequest{Tool: "send_message"}, &reply); err != nil {
		t.Fatal(err)
	}
	if reply.GetOutcome() != "allowed" || reply.GetReason() != "req_42" {
		t.Fatalf("reply %+v", &reply)
	}
	err := c.Call(rc, bus.PolicyCheck, &rpcv1.CheckRequest{Tool: "boom"}, &reply)
	if !errors.Is(err, &errcode.Error{Code: errcode.Unavailable}) {
		t.Fatalf("handler error: %v", err)
	}
	// The client refuses to call a verb its service may not call.
	if err := client(t, f, bus.Edge).Call(ctx(t), bus.PolicyCheck, &rpcv1.CheckRequest{}, &reply); err == nil {
		t.Fatal("edge called rpc.policy.check")
	}
}

// rawRequest sends a hand-made request as the given NATS user and reports
// whether any reply came back within a short bound.
func rawRequest(t *testing.T, f *fixture, as bus.Service, m *nats.Msg) (*nats.Msg, error) {
	t.Helper()
	nc := f.n.Connect(t, as)
	return nc.RequestMsg(m, 500*time.Millisecond)
}

func signedCheck(t *testing.T, f *fixture, caller bus.Service, tool string) *nats.Msg {
	t.Helper()
	data, _ := proto.Marshal(&rpcv1.CheckRequest{Tool: tool})
	m, err := bus.SignRequest(f.keys.ID[caller], bus.PolicyCheck.Subject(), data, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRPCRejectsForgedAndReplayed(t *testing.T) {
	f := newFixture(t)
	var calls atomic.Int32
	serveCheck(t, f, &calls)

	// A valid request from the adapter is answered once...
	valid := signedCheck(t, f, bus.Adapter, "send_message")
	if _, err := rawRequest(t, f, bus.Adapter, valid); err != nil {
		t.Fatalf("valid request: %v", err)
	}
	// ...and its replay is not.
	replay := nats.NewMsg(valid.Subject)
	replay.Header, replay.Data = valid.Header, valid.Data
	if _, err := rawRequest(t, f, bus.Adapter, replay); err == nil {
		t.Fatal("replayed request answered")
	}
	// A request signed by a service that may not call the verb.
	if _, err := rawRequest(t, f, bus.Adapter, signedCheck(t, f, bus.Importer, "x")); err == nil {
		t.Fatal("request signed by importer answered")
	}
	// A request claiming to be the adapter, signed with another key.
	forged := signedCheck(t, f, bus.Edge, "x")
	forged.Header.Set(bus.HeaderCaller, string(bus.Adapter))
	if _, err := rawRequest(t, f, bus.Adapter, forged); err == nil {
		t.Fatal("forged request answered")
	}
	// A stale request.
	data, _ := proto.Marshal(&rpcv1.CheckRequest{Tool: "x"})
	stale, _ := bus.SignRequest(f.keys.ID[bus.Adapter], bus.PolicyCheck.Subject(), data, time.Now().Add(-time.Hour))
	if _, err := rawRequest(t, f, bus.Adapter, stale); err == nil {
		t.Fatal("stale request answered")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestRPCRejectsForgedReply(t *testing.T) {
	f := newFixture(t)
	// An impostor (here the admin user) answers rpc.policy.check with an
	// unsigned reply.
	sub, err := f.n.Admin.Subscribe(bus.PolicyCheck.Subject(), func(m *nats.Msg) {
		out := nats.NewMsg(m.Reply)
		out.Header.Set(bus.HeaderResponder, string(bus.Policy))
		out.Data, _ = proto.Marshal(&rpcv1.CheckReply{Outcome: "allowed"})
		_ = m.RespondMsg(out)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	_ = f.n.Admin.Flush()
	var reply rpcv1.CheckReply
	err = client(t, f, bus.Adapter).Call(ctx(t), bus.PolicyCheck, &rpcv1.CheckRequest{Tool: "x"}, &reply)
	if !errors.Is(err, &errcode.Error{Code: errcode.BadSignature}) {
		t.Fatalf("forged reply: %v (reply %+v)", err, &reply)
	}
}
