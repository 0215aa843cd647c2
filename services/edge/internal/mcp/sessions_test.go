package mcp

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
)

func TestSessions(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newSessions(3, 2, time.Minute, func() time.Time { return now })
	id := s.Generate()
	if !strings.HasPrefix(id, sessionPrefix) || id == s.Generate() {
		t.Fatalf("session id %q", id)
	}
	if _, err := s.Validate(id); err == nil {
		t.Fatal("a minted but unregistered session is valid")
	}
	if _, ok := s.reserve("cred-a"); !ok {
		t.Fatal("no room in an empty registry")
	}
	s.add(id, "cred-a", "cli/1")
	if _, err := s.Validate(id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Validate(""); err != nil {
		t.Fatal("a request without a session is refused")
	}
	if _, ok := s.use(id, "cred-b"); ok {
		t.Fatal("a session is usable with another credential")
	}
	if ss, ok := s.use(id, "cred-a"); !ok || ss.surface != "cli/1" || s.surfaceOf(id) != "cli/1" {
		t.Fatal("owner cannot use its session")
	}

	// A credential at its maximum replaces its least recently used idle
	// session; one whose sessions all stream gets no room.
	now = now.Add(time.Second)
	s.add("s2", "cred-a", "")
	if evicted, ok := s.reserve("cred-a"); !ok || evicted != id {
		t.Fatalf("reserve evicted %q ok %v", evicted, ok)
	}
	s.add("s3", "cred-a", "")
	s.streamOpened("s2")
	s.streamOpened("s3")
	if _, ok := s.reserve("cred-a"); ok {
		t.Fatal("evicted a session with an open stream")
	}
	s.add("s4", "cred-b", "")
	if _, ok := s.reserve("cred-c"); ok {
		t.Fatal("registry overfilled")
	}

	// Idle sessions expire; streaming ones do not.
	now = now.Add(2 * time.Minute)
	gone := s.expire()
	if len(gone) != 1 || gone[0] != "s4" || s.count() != 2 {
		t.Fatalf("expired %v, left %d", gone, s.count())
	}
	s.streamClosed("s2")
	now = now.Add(2 * time.Minute)
	if gone := s.expire(); len(gone) != 1 || gone[0] != "s2" {
		t.Fatalf("expired %v", gone)
	}
	if _, err := s.Terminate("s3"); err != nil || s.count() != 0 {
		t.Fatal("terminate")
	}
}

func TestWatcher(t *testing.T) {
	var mu atomic.Value
	mu.Store([]*rpcv1.VisibleTool{{Name: "a"}})
	var failVisible, revoked atomic.Bool
	w := &watcher{
		interval: time.Hour, max: 2, log: slog.New(slog.DiscardHandler), subs: map[*subscriber]struct{}{},
		visible: func(context.Context, *authn.Principal) ([]*rpcv1.VisibleTool, error) {
			if failVisible.Load() {
				return nil, errors.New("policy down")
			}
			return mu.Load().([]*rpcv1.VisibleTool), nil
		},
		reauth: func(_ context.Context, p *authn.Principal) (*authn.Principal, error) {
			if revoked.Load() {
				return nil, errcode.New(errcode.Unauthenticated, "invalid credential")
			}
			return p, nil
		},
	}
	var n1, n2, n3 atomic.Int32
	p := &authn.Principal{CredentialKey: "k1"}
	s1 := &subscriber{principal: p, notify: func() bool { n1.Add(1); return true }}
	s2 := &subscriber{principal: p, notify: func() bool { n2.Add(1); return true }}
	s3 := &subscriber{principal: &authn.Principal{CredentialKey: "k3"}, notify: func() bool { n3.Add(1); return true }}
	ctx := context.Background()
	if !w.add(ctx, s1) || !w.add(ctx, s2) || w.add(ctx, s3) {
		t.Fatal("watcher bound not applied")
	}
	w.poll(ctx)
	if n1.Load()+n2.Load() != 0 {
		t.Fatal("notified without a change")
	}
	mu.Store([]*rpcv1.VisibleTool{{Name: "a"}, {Name: "b"}})
	failVisible.Store(true)
	w.poll(ctx)
	if n1.Load()+n2.Load() != 0 {
		t.Fatal("notified while the visible set was unknown")
	}
	failVisible.Store(false)
	w.poll(ctx)
	if n1.Load() != 1 || n2.Load() != 1 {
		t.Fatalf("notifications %d %d", n1.Load(), n2.Load())
	}
	w.poll(ctx)
	if n1.Load() != 1 {
		t.Fatal("notified twice for one change")
	}
	w.remove(s2)
	revoked.Store(true)
	w.poll(ctx)
	if w.size() != 0 {
		t.Fatal("streams of a credential that no longer authenticates are still watched")
	}
}
