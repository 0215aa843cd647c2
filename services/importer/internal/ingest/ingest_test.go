package ingest

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/libs/errcode"
	"github.com/mcpgw/mcpgw/services/importer/analysis"
)

func TestTitle(t *testing.T) {
	long := strings.Repeat("é", maxTitleBytes) // two bytes each
	tests := []struct {
		name, in string
		wantLen  int
	}{
		{"short", "Demo API", 8},
		{"cut on a character boundary", long, maxTitleBytes},
		{"odd cut backs off", "x" + long, maxTitleBytes - 1},
		{"invalid UTF-8 replaced", "a\xffb", 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := title(&analysis.Result{Title: tc.in})
			if len(got) != tc.wantLen || !utf8.ValidString(got) {
				t.Fatalf("title = %q (%d bytes), want %d valid bytes", got, len(got), tc.wantLen)
			}
		})
	}
}

func TestAnalysisError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code errcode.Code
		msg  string
	}{
		{"syntax", &analysis.SyntaxError{Line: 3, Column: 7, Msg: "unexpected end"}, errcode.InvalidArgument, "malformed description: syntax error at line 3, column 7"},
		{"invalid", &analysis.InvalidError{Pointer: "/paths/~1x", Line: 9, Msg: "bad ref"}, errcode.InvalidArgument, "at /paths/~1x (line 9)"},
		{"limit", &analysis.LimitError{Limit: "depth", Max: 64, Line: 2}, errcode.TooLarge, "depth limit of 64"},
		{"unsupported", &analysis.UnsupportedFormatError{Format: analysis.FormatPostman21}, errcode.InvalidArgument, "postman2.1"},
		{"other", errors.New("boom"), errcode.InvalidArgument, "malformed description"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := errcode.Public(analysisError(tc.err))
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %s %q, want %s with %q", code, msg, tc.code, tc.msg)
			}
		})
	}
}

func TestKeyedMutex(t *testing.T) {
	k := keyedMutex{m: map[string]*lockEntry{}}
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			unlock := k.lock("t/src_a")
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once", most.Load())
	}
	if len(k.m) != 0 {
		t.Fatalf("%d lock entries left", len(k.m))
	}
	k.lock("")() // the empty key never blocks
}
