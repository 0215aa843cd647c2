package cache_test

import (
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/services/policy/internal/cache"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestCache(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := cache.New[string, int](cache.Config{TTL: 2 * time.Second, Now: clk.now, MaxEntries: 3})

	t.Run("put and get", func(t *testing.T) {
		c.Put("a", "k", c.Generation("a"), 1)
		if v, ok := c.Get("a", "k"); !ok || v != 1 {
			t.Fatalf("Get = %v %v", v, ok)
		}
		if _, ok := c.Get("b", "k"); ok {
			t.Fatal("entry visible under another tenant")
		}
	})
	t.Run("expires after TTL", func(t *testing.T) {
		clk.t = clk.t.Add(2 * time.Second)
		if _, ok := c.Get("a", "k"); ok {
			t.Fatal("expired entry served")
		}
	})
	t.Run("invalidation drops the tenant only", func(t *testing.T) {
		c.Put("a", "k", c.Generation("a"), 1)
		c.Put("b", "k", c.Generation("b"), 2)
		c.Invalidate("a")
		if _, ok := c.Get("a", "k"); ok {
			t.Fatal("invalidated entry served")
		}
		if v, ok := c.Get("b", "k"); !ok || v != 2 {
			t.Fatal("other tenant's entry dropped")
		}
	})
	t.Run("stale computation not stored", func(t *testing.T) {
		gen := c.Generation("a")
		c.Invalidate("a") // an event arrives while the value is computed
		c.Put("a", "k", gen, 3)
		if _, ok := c.Get("a", "k"); ok {
			t.Fatal("value computed before an invalidation was stored")
		}
	})
	t.Run("bounded", func(t *testing.T) {
		for i, k := range []string{"1", "2", "3", "4", "5"} {
			c.Put("c", k, c.Generation("c"), i)
		}
		if n := c.Len(); n > 3 {
			t.Fatalf("Len = %d, want at most 3", n)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		off := cache.New[string, int](cache.Config{TTL: -1})
		off.Put("a", "k", 0, 1)
		if _, ok := off.Get("a", "k"); ok {
			t.Fatal("disabled cache stored a value")
		}
	})
}
