// Package limit holds the edge's per-credential token buckets. It does no
// I/O: callers pass a key (the SHA-256 of a credential, never the
// credential) and get a yes or no.
package limit

import (
	"errors"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// Defaults are generous: they stop a runaway client, not normal use.
const (
	DefaultRate    = 50.0
	DefaultBurst   = 100
	DefaultMaxKeys = 65536
)

// Config configures a Limiter.
type Config struct {
	// Rate is the sustained number of requests per second per key; a
	// negative rate disables limiting, zero means DefaultRate.
	Rate float64
	// Burst is the bucket size (DefaultBurst when 0).
	Burst int
	// MaxKeys bounds the number of buckets kept (least recently used are
	// dropped, which only ever forgives a client). DefaultMaxKeys when 0.
	MaxKeys int
	Now     func() time.Time
}

// Limiter keeps one token bucket per key. It is safe for concurrent use.
type Limiter struct {
	rate    rate.Limit
	burst   int
	off     bool
	buckets *lru.Cache[string, *rate.Limiter]
	now     func() time.Time
}

// New returns a Limiter.
func New(cfg Config) (*Limiter, error) {
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Burst < 0 {
		return nil, errors.New("limit: burst must not be negative")
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = DefaultMaxKeys
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	buckets, err := lru.New[string, *rate.Limiter](cfg.MaxKeys)
	if err != nil {
		return nil, err
	}
	return &Limiter{rate: rate.Limit(cfg.Rate), burst: cfg.Burst, off: cfg.Rate < 0, buckets: buckets, now: cfg.Now}, nil
}

// Allow takes one token from key's bucket and reports whether there was one.
func (l *Limiter) Allow(key string) bool {
	if l.off {
		return true
	}
	b, ok := l.buckets.Get(key)
	if !ok {
		b = rate.NewLimiter(l.rate, l.burst)
		if prev, found, _ := l.buckets.PeekOrAdd(key, b); found {
			b = prev
		}
	}
	return b.AllowN(l.now(), 1)
}
