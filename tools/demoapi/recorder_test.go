package demoapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/tools/demoapi"
)

func TestRecorderContents(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := start(t, demoapi.Config{Now: func() time.Time { return now }})
	rec := h.srv.Recorder()

	body := `{"to":"a","body":"b"}`
	hdr := keyHeader(canaryKey)
	hdr.Set("X-Trace", "t-1")
	h.do(t, http.MethodPost, "/v1/messages?dry=1&x=%20y", hdr, body)
	h.do(t, http.MethodGet, "/v1/messages/msg_1", http.Header{demoapi.HeaderAPIKey: {"wrong-key-1"}, "Authorization": {"Bearer client"}}, "")
	h.do(t, http.MethodGet, "/v1/messages/msg_2", nil, "")

	got := rec.Requests()
	tests := []struct {
		method, path, query string
		keyMatched          bool
		body                string
		header              map[string]string // must be present with these values
		absent              []string          // must not be present
	}{
		{http.MethodPost, "/v1/messages", "dry=1&x=%20y", true, body,
			map[string]string{demoapi.HeaderAPIKey: canaryKey, "X-Trace": "t-1", "Content-Type": "application/json"}, []string{"Authorization"}},
		{http.MethodGet, "/v1/messages/msg_1", "", false, "",
			map[string]string{demoapi.HeaderAPIKey: "wrong-key-1", "Authorization": "Bearer client"}, []string{"X-Trace"}},
		{http.MethodGet, "/v1/messages/msg_2", "", false, "",
			nil, []string{demoapi.HeaderAPIKey, "Authorization"}},
	}
	if len(got) != len(tests) {
		t.Fatalf("recorded %d requests; want %d", len(got), len(tests))
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d %s %s", i, tt.method, tt.path), func(t *testing.T) {
			r := got[i]
			if r.Method != tt.method || r.Path != tt.path || r.RawQuery != tt.query {
				t.Errorf("got %s %s ?%s; want %s %s ?%s", r.Method, r.Path, r.RawQuery, tt.method, tt.path, tt.query)
			}
			if r.KeyMatched != tt.keyMatched {
				t.Errorf("KeyMatched = %v; want %v", r.KeyMatched, tt.keyMatched)
			}
			if string(r.Body) != tt.body {
				t.Errorf("Body = %q; want %q", r.Body, tt.body)
			}
			if !r.Time.Equal(now) {
				t.Errorf("Time = %v; want %v", r.Time, now)
			}
			for k, v := range tt.header {
				if vs := r.Header.Values(k); len(vs) != 1 || vs[0] != v {
					t.Errorf("header %s = %q; want [%q]", k, vs, v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := r.Header[http.CanonicalHeaderKey(k)]; ok {
					t.Errorf("header %s present; want absent", k)
				}
			}
		})
	}

	// The result is a copy: changing it changes nothing recorded.
	got[0].Header.Set(demoapi.HeaderAPIKey, "changed")
	got[0].Body[0] = 'X'
	again := rec.Requests()
	if again[0].Header.Get(demoapi.HeaderAPIKey) != canaryKey || again[0].Body[0] != '{' {
		t.Errorf("changing a returned Recorded changed the Recorder")
	}

	rec.Reset()
	if n := len(rec.Requests()); n != 0 {
		t.Fatalf("after Reset: %d requests; want 0", n)
	}
	h.do(t, http.MethodGet, "/v1/messages/msg_3", keyHeader(canaryKey), "")
	if after := rec.Requests(); len(after) != 1 || after[0].Path != "/v1/messages/msg_3" {
		t.Errorf("after Reset and one request: %+v; want only /v1/messages/msg_3", after)
	}
}

func TestRecorderKeepsMostRecent(t *testing.T) {
	h := start(t, demoapi.Config{RecordLimit: 3})
	for round := range 3 { // also after a Reset of a full ring
		h.srv.Recorder().Reset()
		for i := range 7 {
			h.do(t, http.MethodGet, fmt.Sprintf("/r%d", i), keyHeader(canaryKey), "")
		}
		got := h.srv.Recorder().Requests()
		var paths []string
		for _, r := range got {
			paths = append(paths, r.Path)
		}
		if fmt.Sprint(paths) != "[/r4 /r5 /r6]" {
			t.Errorf("round %d: recorded %v; want [/r4 /r5 /r6]", round, paths)
		}
	}
}

func TestRecorderConcurrentUse(t *testing.T) {
	const workers, each, limit = 8, 20, 50
	h := start(t, demoapi.Config{RecordLimit: limit})
	rec := h.srv.Recorder()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				req, err := http.NewRequest(http.MethodPost, h.url+"/v1/messages",
					strings.NewReader(fmt.Sprintf(`{"to":"w%d","body":"%d"}`, w, i)))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header = keyHeader(canaryKey)
				resp, err := h.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				for _, r := range rec.Requests() {
					if !r.KeyMatched || r.Method != http.MethodPost {
						t.Errorf("recorded %s with KeyMatched %v; want POST with the key", r.Method, r.KeyMatched)
					}
				}
				if i == each/2 && w == 0 {
					rec.Reset()
				}
			}
		})
	}
	wg.Wait()
	if n := len(rec.Requests()); n > limit {
		t.Errorf("recorded %d requests; want at most %d", n, limit)
	}
	for range limit + 5 {
		h.do(t, http.MethodGet, "/v1/messages/msg_x", keyHeader(canaryKey), "")
	}
	if n := len(rec.Requests()); n != limit {
		t.Errorf("recorded %d requests; want the limit, %d", n, limit)
	}
}
