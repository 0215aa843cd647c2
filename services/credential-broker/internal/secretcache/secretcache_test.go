package secretcache_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/secretcache"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/local"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store/storetest"
)

// counting is a store that counts the Gets that reach the backend.
type counting struct {
	store.Store
	gets atomic.Int64
}

func (c *counting) Get(ctx context.Context, tenant string, ref store.Ref) (secret.Value, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, tenant, ref)
}

func newLocal(t *testing.T) store.Store {
	t.Helper()
	dir := t.TempDir()
	s, err := local.New(local.Config{Dir: filepath.Join(dir, "secrets"), MasterKeyFile: filepath.Join(dir, "keys", "master.key")})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		c, err := secretcache.New(secretcache.Config{Store: newLocal(t)})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

func newCache(t *testing.T, ttl time.Duration, max int) (*secretcache.Cache, *counting, *clock) {
	t.Helper()
	backend := &counting{Store: newLocal(t)}
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	c, err := secretcache.New(secretcache.Config{Store: backend, TTL: ttl, MaxEntries: max, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return c, backend, clk
}

func mustGet(t *testing.T, c store.Store, tenant string, ref store.Ref, want string) {
	t.Helper()
	v, err := c.Get(t.Context(), tenant, ref)
	if err != nil {
		t.Fatalf("Get(%s): %v", ref, err)
	}
	if string(v.Reveal()) != want {
		t.Fatalf("Get(%s) returned other bytes", ref)
	}
	v.Wipe() // the caller owns the value: wiping it must not touch the cache
}

func TestTTL(t *testing.T) {
	c, backend, clk := newCache(t, 30*time.Second, 0)
	ref, err := c.Put(t.Context(), "acme", "token", secret.New([]byte(storetest.Canary)))
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "acme", ref, storetest.Canary)
	mustGet(t, c, "acme", ref, storetest.Canary)
	clk.Advance(29 * time.Second)
	mustGet(t, c, "acme", ref, storetest.Canary)
	if n := backend.gets.Load(); n != 1 {
		t.Fatalf("backend read %d times within the TTL, want 1", n)
	}
	clk.Advance(time.Second)
	mustGet(t, c, "acme", ref, storetest.Canary)
	if n := backend.gets.Load(); n != 2 {
		t.Fatalf("backend read %d times after the TTL, want 2", n)
	}
}

func TestWrongTenantIsRefusedEvenWhenCached(t *testing.T) {
	c, backend, _ := newCache(t, time.Minute, 0)
	ref, err := c.Put(t.Context(), "acme", "token", secret.New([]byte(storetest.Canary)))
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "acme", ref, storetest.Canary)
	v, err := c.Get(t.Context(), "globex", ref)
	if !errors.Is(err, store.ErrWrongTenant) || !v.IsZero() {
		t.Fatalf("Get with another tenant = %v", err)
	}
	if n := backend.gets.Load(); n != 1 {
		t.Fatalf("backend read %d times, want 1", n)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c, backend, _ := newCache(t, time.Minute, 0)
	ref, err := store.NewRef(local.Backend, "acme", "missing", "1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := c.Get(t.Context(), "acme", ref); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get = %v, want ErrNotFound", err)
		}
	}
	if n := backend.gets.Load(); n != 2 {
		t.Fatalf("backend read %d times, want 2", n)
	}
}

func TestDisabled(t *testing.T) {
	c, backend, _ := newCache(t, -1, 0)
	ref, err := c.Put(t.Context(), "acme", "token", secret.New([]byte(storetest.Canary)))
	if err != nil {
		t.Fatal(err)
	}
	mustGet(t, c, "acme", ref, storetest.Canary)
	mustGet(t, c, "acme", ref, storetest.Canary)
	if n := backend.gets.Load(); n != 2 || c.Len() != 0 {
		t.Fatalf("backend read %d times with %d cached, want 2 and 0", n, c.Len())
	}
}

func TestEvictionAndPurge(t *testing.T) {
	c, _, clk := newCache(t, time.Minute, 2)
	var refs []store.Ref
	for _, name := range []string{"a", "b", "c"} {
		ref, err := c.Put(t.Context(), "acme", name, secret.New([]byte(storetest.Canary+name)))
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
		mustGet(t, c, "acme", ref, storetest.Canary+name)
		clk.Advance(time.Second)
		if c.Len() > 2 {
			t.Fatalf("cache holds %d values, max 2", c.Len())
		}
	}
	if err := c.Delete(t.Context(), "acme", refs[2]); err != nil {
		t.Fatal(err)
	}
	if c.Len() != 1 {
		t.Fatalf("cache holds %d values after Delete, want 1", c.Len())
	}
	if _, err := c.Get(t.Context(), "acme", refs[2]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatalf("cache holds %d values after Purge", c.Len())
	}
	mustGet(t, c, "acme", refs[1], storetest.Canary+"b")
}

func TestNewNeedsStore(t *testing.T) {
	if _, err := secretcache.New(secretcache.Config{}); err == nil {
		t.Fatal("New without a store succeeded")
	}
}
