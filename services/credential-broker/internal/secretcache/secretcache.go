// Package secretcache keeps secrets read from a store in memory for a short
// time, so that a busy binding does not read its backend on every call.
//
// A [Cache] is a [store.Store] decorator: Get answers from memory while an
// entry is younger than the TTL and otherwise reads through; Put and Delete
// go to the backend (Delete also forgets the entry). Entries are keyed by
// reference, which names one immutable version of a tenant's secret, so a
// cached value is never stale in content, only in existence (a version
// deleted elsewhere stays readable here for at most the TTL). Values live
// only in memory and are wiped when evicted.
package secretcache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
)

// DefaultTTL is how long a value is kept when Config.TTL is zero.
const DefaultTTL = 30 * time.Second

// DefaultMaxEntries bounds the cache when Config.MaxEntries is zero.
const DefaultMaxEntries = 4096

// Config configures a Cache.
type Config struct {
	// Store is the backend. Required.
	Store store.Store
	// TTL is how long a value read from Store is served from memory
	// (default DefaultTTL). A negative TTL disables caching.
	TTL time.Duration
	// MaxEntries bounds the number of cached values (default
	// DefaultMaxEntries).
	MaxEntries int
	// Now defaults to time.Now.
	Now func() time.Time
}

// Cache is a store.Store that caches Get. It is safe for concurrent use.
type Cache struct {
	backend store.Store
	ttl     time.Duration
	max     int
	now     func() time.Time

	mu      sync.Mutex
	entries map[store.Ref]entry
}

type entry struct {
	v       secret.Value
	expires time.Time
}

var _ store.Store = (*Cache)(nil)

// New returns a Cache over cfg.Store.
func New(cfg Config) (*Cache, error) {
	if cfg.Store == nil {
		return nil, errors.New("secret cache: Store is required")
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{backend: cfg.Store, ttl: cfg.TTL, max: cfg.MaxEntries, now: cfg.Now, entries: map[store.Ref]entry{}}, nil
}

// Put stores v in the backend; it does not cache v.
func (c *Cache) Put(ctx context.Context, tenant, name string, v secret.Value) (store.Ref, error) {
	return c.backend.Put(ctx, tenant, name, v)
}

// Get returns a copy of the cached value of ref when it is fresh, and reads
// the backend otherwise. The reference must have been written for tenant
// (store.ErrWrongTenant otherwise, checked before the cache is consulted).
// Errors are never cached.
func (c *Cache) Get(ctx context.Context, tenant string, ref store.Ref) (secret.Value, error) {
	if err := ctx.Err(); err != nil {
		return secret.Value{}, &store.Error{Op: "get", Ref: ref.String(), Err: err}
	}
	if err := store.CheckRef("get", ref.Backend(), tenant, ref); err != nil {
		return secret.Value{}, err
	}
	if c.ttl < 0 {
		return c.backend.Get(ctx, tenant, ref)
	}
	now := c.now()
	c.mu.Lock()
	if e, ok := c.entries[ref]; ok {
		if now.Before(e.expires) {
			v := copyOf(e.v)
			c.mu.Unlock()
			return v, nil
		}
		delete(c.entries, ref)
		e.v.Wipe()
	}
	c.mu.Unlock()

	v, err := c.backend.Get(ctx, tenant, ref)
	if err != nil {
		return secret.Value{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.makeRoom(now)
	if old, ok := c.entries[ref]; ok {
		old.v.Wipe()
	}
	c.entries[ref] = entry{v: copyOf(v), expires: now.Add(c.ttl)}
	return v, nil
}

// Delete deletes ref in the backend and forgets its cached value.
func (c *Cache) Delete(ctx context.Context, tenant string, ref store.Ref) error {
	err := c.backend.Delete(ctx, tenant, ref)
	if ref.Tenant() == tenant {
		c.forget(ref)
	}
	return err
}

// Len returns the number of cached values, fresh or not.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Purge wipes and forgets every cached value.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ref, e := range c.entries {
		e.v.Wipe()
		delete(c.entries, ref)
	}
}

func (c *Cache) forget(ref store.Ref) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[ref]; ok {
		e.v.Wipe()
		delete(c.entries, ref)
	}
}

// makeRoom drops expired entries when the cache is full, then, if it is
// still full, the entry that expires first. c.mu must be held.
func (c *Cache) makeRoom(now time.Time) {
	if len(c.entries) < c.max {
		return
	}
	var oldest store.Ref
	var oldestAt time.Time
	for ref, e := range c.entries {
		if !now.Before(e.expires) {
			e.v.Wipe()
			delete(c.entries, ref)
			continue
		}
		if oldest.IsZero() || e.expires.Before(oldestAt) {
			oldest, oldestAt = ref, e.expires
		}
	}
	if len(c.entries) >= c.max && !oldest.IsZero() {
		c.entries[oldest].v.Wipe()
		delete(c.entries, oldest)
	}
}

// copyOf returns an independent copy of v.
func copyOf(v secret.Value) secret.Value {
	b := v.Reveal()
	defer clear(b)
	return secret.New(b)
}
