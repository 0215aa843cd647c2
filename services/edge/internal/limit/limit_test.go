package limit_test

import (
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/services/edge/internal/limit"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	tests := []struct {
		name string
		cfg  limit.Config
		// steps: advance, then expect Allow results for key "a".
		steps []struct {
			advance time.Duration
			want    []bool
		}
	}{
		{
			name: "burst then refill",
			cfg:  limit.Config{Rate: 1, Burst: 2},
			steps: []struct {
				advance time.Duration
				want    []bool
			}{
				{0, []bool{true, true, false}},
				{500 * time.Millisecond, []bool{false}},
				{500 * time.Millisecond, []bool{true, false}},
			},
		},
		{
			name: "disabled",
			cfg:  limit.Config{Rate: -1},
			steps: []struct {
				advance time.Duration
				want    []bool
			}{
				{0, []bool{true, true, true, true, true}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &clock{t: time.Unix(1000, 0)}
			tt.cfg.Now = c.now
			l, err := limit.New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				c.t = c.t.Add(s.advance)
				for j, want := range s.want {
					if got := l.Allow("a"); got != want {
						t.Fatalf("step %d request %d: Allow = %v, want %v", i, j, got, want)
					}
				}
			}
		})
	}
}

func TestLimiterKeysAreIndependent(t *testing.T) {
	l, err := limit.New(limit.Config{Rate: 1, Burst: 1, MaxKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Allow("a") || l.Allow("a") {
		t.Fatal("key a: want one request through")
	}
	if !l.Allow("b") {
		t.Fatal("key b limited by key a")
	}
}

func TestLimiterRefusesNegativeBurst(t *testing.T) {
	if _, err := limit.New(limit.Config{Burst: -1}); err == nil {
		t.Fatal("negative burst accepted")
	}
}
