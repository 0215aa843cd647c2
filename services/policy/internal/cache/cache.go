// Package cache is policy's short-lived decision cache: entries live for a
// TTL at most and every entry of a tenant is dropped at once when a CONTROL
// event of that tenant is applied, so a grant, revocation, approval,
// selection, binding or key change takes effect on the next request.
package cache

import (
	"sync"
	"time"
)

// DefaultMaxEntries bounds a cache's size.
const DefaultMaxEntries = 100_000

// Config configures a Cache.
type Config struct {
	// TTL is how long an entry is served; zero or less disables caching.
	TTL time.Duration
	// MaxEntries bounds the number of entries (default DefaultMaxEntries).
	MaxEntries int
	// Now defaults to time.Now.
	Now func() time.Time
}

type entry[V any] struct {
	v       V
	expires time.Time
}

// Cache maps keys of type K, each belonging to a tenant, to values. It is
// safe for concurrent use.
//
// A value computed while an invalidation of its tenant happened is never
// stored: callers take the tenant's generation before computing and pass it
// to Put.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	tenants map[string]map[K]entry[V]
	size    int
	gens    map[string]uint64
}

// New returns an empty cache.
func New[K comparable, V any](cfg Config) *Cache[K, V] {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache[K, V]{ttl: cfg.TTL, max: cfg.MaxEntries, now: cfg.Now,
		tenants: map[string]map[K]entry[V]{}, gens: map[string]uint64{}}
}

// Get returns a live entry of tenant.
func (c *Cache[K, V]) Get(tenant string, k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tenants[tenant][k]
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Generation returns the tenant's current generation; take it before
// computing a value that Put will store.
func (c *Cache[K, V]) Generation(tenant string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gens[tenant]
}

// Put stores v for k (of tenant) unless the tenant was invalidated since gen
// was taken or caching is off. When the cache is full, expired entries are
// dropped first, then everything.
func (c *Cache[K, V]) Put(tenant string, k K, gen uint64, v V) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gens[tenant] != gen {
		return
	}
	now := c.now()
	if c.size >= c.max {
		c.sweep(now)
	}
	m := c.tenants[tenant]
	if m == nil {
		m = map[K]entry[V]{}
		c.tenants[tenant] = m
	}
	if _, ok := m[k]; !ok {
		c.size++
	}
	m[k] = entry[V]{v: v, expires: now.Add(c.ttl)}
}

func (c *Cache[K, V]) sweep(now time.Time) {
	for t, m := range c.tenants {
		for k, e := range m {
			if !now.Before(e.expires) {
				delete(m, k)
				c.size--
			}
		}
		if len(m) == 0 {
			delete(c.tenants, t)
		}
	}
	if c.size >= c.max {
		clear(c.tenants)
		c.size = 0
	}
}

// Invalidate drops every entry of tenant and moves its generation on.
func (c *Cache[K, V]) Invalidate(tenant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gens[tenant]++
	c.size -= len(c.tenants[tenant])
	delete(c.tenants, tenant)
}

// Len returns the number of stored entries (live or expired).
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
