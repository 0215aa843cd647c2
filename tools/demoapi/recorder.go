package demoapi

import (
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"
)

// DefaultRecordLimit is how many requests a Recorder keeps when
// Config.RecordLimit is zero.
const DefaultRecordLimit = 1000

// Recorded is one request as the server received it, before any routing or
// validation. Header is a copy of every header that arrived, the X-API-Key
// value included: it exists so that tests can assert what an upstream saw.
// LogValue logs header names only.
type Recorded struct {
	// Method is the HTTP method.
	Method string
	// Path is the unescaped URL path.
	Path string
	// RawQuery is the encoded query string, without the '?'.
	RawQuery string
	// Header is a copy of the request headers.
	Header http.Header
	// KeyMatched reports whether exactly one X-API-Key header was presented
	// and it equals the configured key.
	KeyMatched bool
	// Body is a copy of the request body; nil when the key did not match
	// (the body is not read then) or the body exceeded MaxBodyBytes.
	Body []byte
	// Time is when the server received the request.
	Time time.Time
}

// LogValue logs the method, path, whether the key matched and the header
// names; it never logs header values, the query or the body.
func (r Recorded) LogValue() slog.Value {
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	return slog.GroupValue(
		slog.String("method", r.Method),
		slog.String("path", r.Path),
		slog.Bool("key_matched", r.KeyMatched),
		slog.Any("header_names", names),
		slog.Time("time", r.Time),
	)
}

// clone returns a deep copy, so that callers cannot change what was recorded.
func (r Recorded) clone() Recorded {
	r.Header = r.Header.Clone()
	r.Body = slices.Clone(r.Body)
	return r
}

// Recorder keeps the most recent requests a Server received, oldest first,
// up to its limit; older ones are dropped. It is safe for concurrent use.
// Obtain one from (*Server).Recorder.
type Recorder struct {
	mu    sync.Mutex
	limit int
	ring  []Recorded
	start int // index of the oldest entry in ring
	n     int // number of entries held
}

func newRecorder(limit int) *Recorder {
	return &Recorder{limit: limit, ring: make([]Recorded, 0, min(limit, 64))}
}

// add stores a copy of rec, dropping the oldest entry when full.
func (r *Recorder) add(rec Recorded) {
	rec = rec.clone()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n < r.limit {
		// Not full yet: start is 0 and the ring grows to its limit.
		r.ring = append(r.ring, rec)
		r.n++
		return
	}
	r.ring[r.start] = rec
	r.start = (r.start + 1) % r.limit
}

// Requests returns deep copies of the recorded requests, oldest first.
// Changing the result does not change the Recorder.
func (r *Recorder) Requests() []Recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Recorded, 0, r.n)
	for i := range r.n {
		out = append(out, r.ring[(r.start+i)%len(r.ring)].clone())
	}
	return out
}

// Reset forgets every recorded request.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.ring)
	r.ring = r.ring[:0]
	r.start, r.n = 0, 0
}
