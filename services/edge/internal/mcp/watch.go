package mcp

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/edge/internal/authn"
)

// subscriber is one open notification stream: a session's GET stream
// (2025-11-25) or a subscriptions/listen stream (2026-07-28) that asked for
// tools/list_changed.
type subscriber struct {
	principal *authn.Principal
	// notify delivers notifications/tools/list_changed; false when the
	// stream could not take it.
	notify func() bool

	digest [sha256.Size]byte
	primed bool
}

// watcher polls the visible set of every open notification stream's caller
// and notifies the stream when it changed. Streams of the same credential
// share one poll. The number of watched streams is bounded; it is safe for
// concurrent use.
type watcher struct {
	interval time.Duration
	max      int
	visible  func(ctx context.Context, p *authn.Principal) ([]*rpcv1.VisibleTool, error)
	reauth   func(ctx context.Context, p *authn.Principal) (*authn.Principal, error)
	log      *slog.Logger

	mu   sync.Mutex
	subs map[*subscriber]struct{}
}

// add starts watching s, priming it with the caller's current visible set.
// It returns false when the watcher is full (the stream stays open but gets
// no notifications).
func (w *watcher) add(ctx context.Context, s *subscriber) bool {
	w.mu.Lock()
	if len(w.subs) >= w.max {
		w.mu.Unlock()
		w.log.Warn("list_changed watcher full; stream not watched", "max", w.max)
		return false
	}
	w.subs[s] = struct{}{}
	w.mu.Unlock()
	w.log.Debug("stream watched", "fingerprint", s.principal.Fingerprint)
	if d, err := w.digest(ctx, s.principal); err == nil {
		w.mu.Lock()
		if !s.primed {
			s.digest, s.primed = d, true
		}
		w.mu.Unlock()
	}
	return true
}

// remove stops watching s.
func (w *watcher) remove(s *subscriber) {
	w.mu.Lock()
	delete(w.subs, s)
	w.mu.Unlock()
}

// size returns the number of watched streams.
func (w *watcher) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.subs)
}

// run polls until ctx ends.
func (w *watcher) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.poll(ctx)
		}
	}
}

// poll computes each watched caller's visible set once and notifies every
// stream of that caller whose last known set differs.
func (w *watcher) poll(ctx context.Context) {
	type group struct {
		principal *authn.Principal
		subs      []*subscriber
	}
	groups := map[string]*group{}
	w.mu.Lock()
	for s := range w.subs {
		k := s.principal.CredentialKey
		g, ok := groups[k]
		if !ok {
			g = &group{principal: s.principal}
			groups[k] = g
		}
		g.subs = append(g.subs, s)
	}
	w.mu.Unlock()
	for _, g := range groups {
		if ctx.Err() != nil {
			return
		}
		subs := g.subs
		pctx := bus.WithMeta(ctx, bus.Meta{RequestID: bus.NewID("req_"), Tenant: g.principal.Tenant()})
		p, err := w.reauth(pctx, g.principal)
		if err != nil {
			if errcode.CodeOf(err) == errcode.Unauthenticated {
				// The credential no longer authenticates: stop watching its
				// streams; their next request is refused anyway.
				for _, s := range subs {
					w.remove(s)
				}
			}
			continue
		}
		d, err := w.digest(pctx, p)
		if err != nil {
			continue
		}
		for _, s := range subs {
			w.mu.Lock()
			changed := s.primed && s.digest != d
			if !s.primed || changed {
				s.digest, s.primed = d, true
			}
			if _, still := w.subs[s]; still {
				s.principal = p
			}
			w.mu.Unlock()
			if changed && !s.notify() {
				w.log.Debug("list_changed not delivered: stream busy")
			}
		}
	}
}

// digest is SHA-256 over the caller's visible set as policy returned it.
func (w *watcher) digest(ctx context.Context, p *authn.Principal) ([sha256.Size]byte, error) {
	tools, err := w.visible(ctx, p)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, t := range tools {
		b, err := opts.Marshal(t)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		var n [8]byte
		for i, l := 0, uint64(len(b)); i < 8; i++ {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.Write(b)
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return d, nil
}
