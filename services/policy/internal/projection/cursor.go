package projection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpgw/mcpgw/libs/bus"
)

// CursorKey is the key of the cursor in policy's KV bucket.
const CursorKey = "spicedb_cursor"

// maxAggregatesBytes bounds the encoded cursor below the bucket's message
// size; beyond it the aggregate states are left out (the cursor's sequence
// alone still decides which SpiceDB writes to skip).
const maxAggregatesBytes = 768 << 10

// KVCursor stores the cursor in a JetStream KV bucket
// (bus.BucketPolicyState). It is safe for concurrent use.
type KVCursor struct {
	kv jetstream.KeyValue
}

// NewKVCursor looks up policy's state bucket (provisioned by the launcher or
// deploy/).
func NewKVCursor(ctx context.Context, js jetstream.JetStream) (*KVCursor, error) {
	kv, err := js.KeyValue(ctx, bus.BucketPolicyState)
	if err != nil {
		return nil, fmt.Errorf("%w: look up bucket %s: %v", bus.ErrNotProvisioned, bus.BucketPolicyState, err)
	}
	return &KVCursor{kv: kv}, nil
}

type cursorJSON struct {
	Seq        uint64               `json:"seq"`
	Aggregates map[string][2]uint64 `json:"aggregates,omitempty"`
	// Partial is true when the aggregate states were left out.
	Partial bool `json:"partial,omitempty"`
}

// Load returns the stored cursor.
func (c *KVCursor) Load(ctx context.Context) (Cursor, bool, error) {
	e, err := c.kv.Get(ctx, CursorKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Cursor{}, false, nil
	}
	if err != nil {
		return Cursor{}, false, fmt.Errorf("read cursor: %w", err)
	}
	var j cursorJSON
	if err := json.Unmarshal(e.Value(), &j); err != nil {
		return Cursor{}, false, fmt.Errorf("decode cursor: %w", err)
	}
	out := Cursor{Seq: j.Seq, Aggregates: map[string]bus.AggregateState{}}
	for k, v := range j.Aggregates {
		out.Aggregates[k] = bus.AggregateState{LastSeq: v[0], Version: v[1]}
	}
	return out, true, nil
}

// Save stores the cursor.
func (c *KVCursor) Save(ctx context.Context, cur Cursor) error {
	j := cursorJSON{Seq: cur.Seq, Aggregates: make(map[string][2]uint64, len(cur.Aggregates))}
	for k, v := range cur.Aggregates {
		j.Aggregates[k] = [2]uint64{v.LastSeq, v.Version}
	}
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode cursor: %w", err)
	}
	if len(b) > maxAggregatesBytes {
		b, err = json.Marshal(cursorJSON{Seq: cur.Seq, Partial: true})
		if err != nil {
			return fmt.Errorf("encode cursor: %w", err)
		}
	}
	if _, err := c.kv.Put(ctx, CursorKey, b); err != nil {
		return fmt.Errorf("store cursor: %w", err)
	}
	return nil
}
