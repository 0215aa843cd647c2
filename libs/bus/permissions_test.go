package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
)

// violations connects as a service and collects the permission violations
// the server reports asynchronously.
func violations(t *testing.T, f *fixture, s bus.Service) (*nats.Conn, <-chan string) {
	t.Helper()
	ch := make(chan string, 16)
	pass, err := bus.ReadSecretFile(f.n.PasswordFile(s))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(f.n.URL, nats.UserInfo(string(s), string(pass.Reveal())), nats.CustomInboxPrefix(s.InboxPrefix()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(err.Error(), "Permissions Violation") {
				select {
				case ch <- err.Error():
				default:
				}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, ch
}

func expectViolation(t *testing.T, ch <-chan string, what string) {
	t.Helper()
	select {
	case v := <-ch:
		if !strings.Contains(v, what) {
			t.Fatalf("violation %q, want one naming %q", v, what)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no permission violation for %s", what)
	}
}

func TestEdgeUserPermissions(t *testing.T) {
	f := newFixture(t)
	nc, ch := violations(t, f, bus.Edge)

	// The broker listens on rpc.broker.resolve; nothing from the edge arrives.
	broker := f.n.Connect(t, bus.Broker)
	got, err := broker.SubscribeSync(bus.BrokerResolve.Subject())
	if err != nil {
		t.Fatal(err)
	}
	_ = broker.Flush()
	if _, err := nc.Request(bus.BrokerResolve.Subject(), []byte("x"), 300*time.Millisecond); err == nil {
		t.Fatal("edge got a reply from rpc.broker.resolve")
	}
	expectViolation(t, ch, bus.BrokerResolve.Subject())
	if _, err := got.NextMsg(200 * time.Millisecond); err == nil {
		t.Fatal("broker received the edge's resolve request")
	}

	for _, subj := range []string{bus.PolicyCheck.Subject(), "_INBOX.>", "_INBOX.adapter.>", "ctl.>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		_ = nc.Flush()
		expectViolation(t, ch, subj)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Publish a CONTROL subject.
	if _, err := js.Publish(short(t), "ctl.demo.binding.bnd_1.BindingCreated", []byte("x"), jetstream.WithRetryAttempts(0)); err == nil {
		t.Fatal("edge published a control event")
	}
	expectViolation(t, ch, "ctl.demo.binding.bnd_1.BindingCreated")
	// Delete a CONTROL message (one exists).
	if _, err := f.publisher(t, bus.Broker).AppendControl(ctx(t), bus.AggBinding, "bnd_1", binding("bnd_1"), bus.Expect{}); err != nil {
		t.Fatal(err)
	}
	cs, err := js.Stream(ctx(t), bus.StreamControl)
	if err != nil {
		t.Fatalf("edge looks up CONTROL: %v", err)
	}
	if err := cs.DeleteMsg(short(t), 1); err == nil {
		t.Fatal("edge deleted a control message")
	}
	expectViolation(t, ch, "$JS.API.STREAM.MSG.DELETE.CONTROL")
	// Create a stream (which could capture rpc.broker.> or inboxes).
	if _, err := js.CreateStream(short(t), jetstream.StreamConfig{Name: "CAPTURE", Subjects: []string{"rpc.broker.>"}}); err == nil {
		t.Fatal("edge created a stream")
	}
	expectViolation(t, ch, "$JS.API.STREAM.CREATE.CAPTURE")
	// The control message is still there.
	if m := lastControl(t, f); m.Sequence != 1 {
		t.Fatalf("control stream changed: last seq %d", m.Sequence)
	}
}

func TestStreamsDenyDeleteEvenForAdmin(t *testing.T) {
	f := newFixture(t)
	if _, err := f.publisher(t, bus.Broker).AppendControl(ctx(t), bus.AggBinding, "bnd_1", binding("bnd_1"), bus.Expect{}); err != nil {
		t.Fatal(err)
	}
	s, err := f.n.JS.Stream(ctx(t), bus.StreamControl)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx(t), 1); err == nil {
		t.Fatal("admin deleted a control message")
	}
	if err := s.Purge(ctx(t)); err == nil {
		t.Fatal("admin purged CONTROL")
	}
}

func TestEveryServiceCanUseItsBus(t *testing.T) {
	f := newFixture(t)
	for _, s := range bus.Services {
		js := f.js(t, s)
		if _, err := js.Stream(ctx(t), bus.StreamControl); err != nil {
			t.Errorf("%s: look up CONTROL: %v", s, err)
		}
		if _, err := bus.NewKVNonceStore(ctx(t), js, s); err != nil {
			t.Errorf("%s: nonce bucket: %v", s, err)
		}
	}
}

// short bounds an operation the server is expected to refuse: a denied
// publish gets no acknowledgement, so the client would wait its full timeout.
func short(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	t.Cleanup(cancel)
	return c
}
