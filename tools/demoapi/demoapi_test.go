package demoapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/mcpgw/mcpgw/libs/secret"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/tools/demoapi"
)

// canaryKey is the configured key; no response body or log line may hold it.
const canaryKey = "canary-key-7f3c9a1e5b2d4086"

// harness is a demoapi Server behind a real HTTP listener on 127.0.0.1.
type harness struct {
	srv    *demoapi.Server
	url    string
	client *http.Client
	logs   *syncBuffer
	// bodies collects every response body, for the leak checks.
	mu     sync.Mutex
	bodies [][]byte
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a slog handler.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T, cfg demoapi.Config) *harness {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.APIKey.IsZero() {
		cfg.APIKey = secret.New([]byte(canaryKey))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := demoapi.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	if !strings.HasPrefix(ts.URL, "http://127.0.0.1:") {
		t.Fatalf("test server listens on %s; want 127.0.0.1", ts.URL)
	}
	return &harness{srv: srv, url: ts.URL, client: ts.Client(), logs: logs}
}

// response is what a request returned.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the given headers (nil values are omitted) and
// returns the response.
func (h *harness) do(t *testing.T, method, path string, header http.Header, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	h.mu.Lock()
	h.bodies = append(h.bodies, b)
	h.mu.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func keyHeader(key string) http.Header {
	return http.Header{demoapi.HeaderAPIKey: {key}, "Content-Type": {"application/json"}}
}

// wantJSONError checks the status, the content type and that the body is
// {"error": msg} with msg containing want.
func wantJSONError(t *testing.T, r response, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d; want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v (%s)", err, r.body)
	}
	msg, ok := e["error"].(string)
	if !ok || len(e) != 1 {
		t.Fatalf("error body = %s; want exactly {\"error\": string}", r.body)
	}
	if !strings.Contains(msg, want) {
		t.Errorf("error = %q; want it to contain %q", msg, want)
	}
}

var idPattern = regexp.MustCompile(`^msg_[0-9a-f]{24}$`)

func TestSendAndGetMessage(t *testing.T) {
	tests := []struct {
		name string
		body string
		want demoapi.Message
	}{
		{
			name: "with template",
			body: `{"to": "@alice", "body": "hello", "template_id": "tpl_welcome"}`,
			want: demoapi.Message{To: "@alice", Body: "hello", Status: "queued", TemplateID: "tpl_welcome"},
		},
		{
			name: "without template",
			body: `{"to": "bob@example.com", "body": "hi there"}`,
			want: demoapi.Message{To: "bob@example.com", Body: "hi there", Status: "queued"},
		},
		{
			name: "null template and longest body in multibyte characters",
			body: `{"to": "carol", "body": "` + strings.Repeat("é", demoapi.MaxMessageChars) + `", "template_id": null}`,
			want: demoapi.Message{To: "carol", Body: strings.Repeat("é", demoapi.MaxMessageChars), Status: "queued"},
		},
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := start(t, demoapi.Config{Now: func() time.Time { return now }})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), tt.body)
			if r.status != http.StatusCreated {
				t.Fatalf("POST status = %d; want 201 (body %s)", r.status, r.body)
			}
			var created map[string]any
			if err := json.Unmarshal(r.body, &created); err != nil {
				t.Fatalf("decode 201 body: %v", err)
			}
			id, _ := created["id"].(string)
			if !idPattern.MatchString(id) {
				t.Fatalf("id = %q; want msg_ and 24 hex digits", id)
			}
			wantCreated := map[string]any{"id": id, "to": tt.want.To, "status": "queued"}
			if tt.want.TemplateID != "" {
				wantCreated["template_id"] = tt.want.TemplateID
			}
			if fmt.Sprint(created) != fmt.Sprint(wantCreated) {
				t.Errorf("201 body = %v; want %v", created, wantCreated)
			}
			if loc := r.header.Get("Location"); loc != "/v1/messages/"+id {
				t.Errorf("Location = %q; want /v1/messages/%s", loc, id)
			}

			g := h.do(t, http.MethodGet, "/v1/messages/"+id, keyHeader(canaryKey), "")
			if g.status != http.StatusOK {
				t.Fatalf("GET status = %d; want 200 (body %s)", g.status, g.body)
			}
			var got demoapi.Message
			if err := json.Unmarshal(g.body, &got); err != nil {
				t.Fatalf("decode 200 body: %v", err)
			}
			want := tt.want
			want.ID, want.CreatedAt = id, now
			if got != want {
				t.Errorf("GET = %+v; want %+v", got, want)
			}
		})
	}
}

func TestIDsAreDistinct(t *testing.T) {
	h := start(t, demoapi.Config{})
	seen := map[string]bool{}
	for range 50 {
		r := h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), `{"to":"a","body":"b"}`)
		var m demoapi.Message
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("decode: %v", err)
		}
		if seen[m.ID] {
			t.Fatalf("id %s issued twice", m.ID)
		}
		seen[m.ID] = true
	}
}

func TestUnauthorized(t *testing.T) {
	const valid = `{"to":"a","body":"b"}`
	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
	}{
		{"missing key", http.MethodPost, "/v1/messages", http.Header{"Content-Type": {"application/json"}}},
		{"wrong key", http.MethodPost, "/v1/messages", keyHeader("wrong-key-0a1b2c")},
		{"key with a different case", http.MethodPost, "/v1/messages", keyHeader(strings.ToUpper(canaryKey))},
		{"key prefix", http.MethodPost, "/v1/messages", keyHeader(canaryKey[:10])},
		{"key with suffix", http.MethodPost, "/v1/messages", keyHeader(canaryKey + "x")},
		{"empty key", http.MethodPost, "/v1/messages", keyHeader("")},
		{"right and wrong key together", http.MethodPost, "/v1/messages",
			http.Header{demoapi.HeaderAPIKey: {"client-key-9z8y", canaryKey}}},
		{"key as bearer token", http.MethodPost, "/v1/messages",
			http.Header{"Authorization": {"Bearer " + canaryKey}}},
		{"key in query", http.MethodGet, "/v1/messages/msg_000000000000000000000000?api_key=" + canaryKey, nil},
		{"wrong key on get", http.MethodGet, "/v1/messages/msg_000000000000000000000000", keyHeader("wrong-key-0a1b2c")},
		{"wrong key on unknown path", http.MethodGet, "/nowhere", keyHeader("wrong-key-0a1b2c")},
	}
	h := start(t, demoapi.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(t, tt.method, tt.path, tt.header, valid)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status = %d; want 401 (body %s)", r.status, r.body)
			}
			if got := strings.TrimSpace(string(r.body)); got != `{"error":"invalid api key"}` {
				t.Errorf("body = %s; want {\"error\":\"invalid api key\"}", got)
			}
			for _, vs := range tt.header {
				for _, v := range vs {
					if v != "" && strings.Contains(string(r.body), v) {
						t.Errorf("401 body echoes a presented header value")
					}
				}
			}
		})
	}
}

func TestSendBadRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"missing to", `{"body":"hello"}`, `field "to" is required`},
		{"empty to", `{"to":"","body":"hello"}`, `field "to" is required`},
		{"null to", `{"to":null,"body":"hello"}`, `field "to" is required`},
		{"missing body", `{"to":"@alice"}`, `field "body" is required`},
		{"body too long", `{"to":"@alice","body":"` + strings.Repeat("x", demoapi.MaxMessageChars+1) + `"}`, "at most 2000 characters"},
		{"to not a string", `{"to":42,"body":"hello"}`, `field "to" must be a string`},
		{"body not a string", `{"to":"a","body":{"text":"hello"}}`, `field "body" must be a string`},
		{"template not a string", `{"to":"a","body":"b","template_id":["x"]}`, `field "template_id" must be a string`},
		{"unknown field", `{"to":"a","body":"b","priority":"high"}`, "unknown field"},
		{"not JSON", `to=a&body=b`, "not valid JSON"},
		{"truncated JSON", `{"to":"a","body":`, "not valid JSON"},
		{"array", `[{"to":"a","body":"b"}]`, "must be a JSON object"},
		{"string", `"hello"`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"two objects", `{"to":"a","body":"b"}{"to":"c","body":"d"}`, "single JSON object"},
		{"trailing garbage", `{"to":"a","body":"b"} x`, "single JSON object"},
		{"no body", ``, "not valid JSON"},
	}
	h := start(t, demoapi.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), tt.body)
			wantJSONError(t, r, http.StatusBadRequest, tt.want)
		})
	}
}

func TestOversizeBody(t *testing.T) {
	h := start(t, demoapi.Config{})
	big := `{"to":"a","body":"` + strings.Repeat("x", demoapi.MaxBodyBytes) + `"}`
	r := h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), big)
	wantJSONError(t, r, http.StatusRequestEntityTooLarge, "exceeds 65536 bytes")

	reqs := h.srv.Recorder().Requests()
	if len(reqs) != 1 {
		t.Fatalf("recorded %d requests; want 1", len(reqs))
	}
	if !reqs[0].KeyMatched || reqs[0].Body != nil {
		t.Errorf("recorded KeyMatched=%v, %d body bytes; want true and no body", reqs[0].KeyMatched, len(reqs[0].Body))
	}

	// A body of exactly the limit is read, then judged on its content.
	exact := `{"to":"a","body":"` + strings.Repeat("x", demoapi.MaxBodyBytes-len(`{"to":"a","body":""}`)) + `"}`
	if len(exact) != demoapi.MaxBodyBytes {
		t.Fatalf("test body is %d bytes; want %d", len(exact), demoapi.MaxBodyBytes)
	}
	r = h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), exact)
	wantJSONError(t, r, http.StatusBadRequest, "at most 2000 characters")
}

func TestRoutingErrors(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		path      string
		status    int
		want      string
		wantAllow string
	}{
		{"unknown message", http.MethodGet, "/v1/messages/msg_000000000000000000000000", http.StatusNotFound, "message not found", ""},
		{"unknown path", http.MethodGet, "/v2/messages", http.StatusNotFound, "not found", ""},
		{"nested path", http.MethodGet, "/v1/messages/a/b", http.StatusNotFound, "not found", ""},
		{"get collection", http.MethodGet, "/v1/messages", http.StatusMethodNotAllowed, "method not allowed", "POST"},
		{"delete message", http.MethodDelete, "/v1/messages/msg_000000000000000000000000", http.StatusMethodNotAllowed, "method not allowed", "GET, HEAD"},
	}
	h := start(t, demoapi.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(t, tt.method, tt.path, keyHeader(canaryKey), "")
			wantJSONError(t, r, tt.status, tt.want)
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow = %q; want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestMessageLimitEvictsOldest(t *testing.T) {
	h := start(t, demoapi.Config{MessageLimit: 2})
	var ids []string
	for i := range 3 {
		r := h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), fmt.Sprintf(`{"to":"a","body":"m%d"}`, i))
		var m demoapi.Message
		if err := json.Unmarshal(r.body, &m); err != nil {
			t.Fatalf("decode: %v", err)
		}
		ids = append(ids, m.ID)
	}
	for i, want := range []int{http.StatusNotFound, http.StatusOK, http.StatusOK} {
		if r := h.do(t, http.MethodGet, "/v1/messages/"+ids[i], keyHeader(canaryKey), ""); r.status != want {
			t.Errorf("GET message %d: status %d; want %d", i, r.status, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  demoapi.Config
	}{
		{"no key", demoapi.Config{}},
		{"empty key", demoapi.Config{APIKey: secret.Value{}}},
		{"key with newline", demoapi.Config{APIKey: secret.New([]byte("abc\ndef"))}},
		{"key with leading space", demoapi.Config{APIKey: secret.New([]byte(" abcdef"))}},
		{"key with non-ascii", demoapi.Config{APIKey: secret.New([]byte("abcdé"))}},
		{"negative message limit", demoapi.Config{APIKey: secret.New([]byte(canaryKey)), MessageLimit: -1}},
		{"negative record limit", demoapi.Config{APIKey: secret.New([]byte(canaryKey)), RecordLimit: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := demoapi.New(tt.cfg)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", srv)
			}
			if k := tt.cfg.APIKey.Reveal(); len(k) > 0 && strings.Contains(err.Error(), string(k)) {
				t.Errorf("error %q contains the key", err)
			}
		})
	}
}

func TestKeyNeverLeaks(t *testing.T) {
	const wrongKey = "presented-wrong-key-4e6a"
	h := start(t, demoapi.Config{})

	// Exercise every outcome: success, each error, with right and wrong keys.
	r := h.do(t, http.MethodPost, "/v1/messages?x=1", keyHeader(canaryKey), `{"to":"a","body":"b","template_id":"t"}`)
	var m demoapi.Message
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("decode: %v", err)
	}
	h.do(t, http.MethodGet, "/v1/messages/"+m.ID, keyHeader(canaryKey), "")
	h.do(t, http.MethodGet, "/v1/messages/nope", keyHeader(canaryKey), "")
	h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), `{"to":"a"}`)
	h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), `{`)
	h.do(t, http.MethodPost, "/v1/messages", keyHeader(canaryKey), strings.Repeat("x", demoapi.MaxBodyBytes+1))
	h.do(t, http.MethodPut, "/v1/messages", keyHeader(canaryKey), "")
	h.do(t, http.MethodPost, "/v1/messages", keyHeader(wrongKey), `{"to":"a","body":"b"}`)
	h.do(t, http.MethodPost, "/v1/messages", http.Header{"Authorization": {"Bearer " + wrongKey}}, `{"to":"a","body":"b"}`)
	h.do(t, http.MethodGet, "/v1/messages/"+m.ID, http.Header{demoapi.HeaderAPIKey: {wrongKey, canaryKey}}, "")

	logs := h.logs.String()
	if n := strings.Count(logs, `"msg":"request"`); n != 10 {
		t.Errorf("logged %d request lines; want 10:\n%s", n, logs)
	}
	for _, secret := range []string{canaryKey, wrongKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("log output contains a key:\n%s", logs)
		}
		h.mu.Lock()
		for _, b := range h.bodies {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("a response body contains a key: %s", b)
			}
		}
		h.mu.Unlock()
	}
	// Recorded requests are logged by name only.
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("recorded", "requests", h.srv.Recorder().Requests()[0])
	if strings.Contains(buf.String(), canaryKey) {
		t.Errorf("logging a Recorded prints the key: %s", buf.String())
	}
}

func TestSecretRedacts(t *testing.T) {
	s := secret.New([]byte(canaryKey))
	cfg := demoapi.Config{APIKey: s}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("secret", "key", s, "cfg", cfg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("secret", "key", s)
	js, err := json.Marshal(struct{ Key secret.Value }{s})
	if err != nil {
		t.Fatalf("marshal secret: %v", err)
	}
	text, err := s.MarshalText()
	if err != nil {
		t.Fatalf("marshal text: %v", err)
	}
	outputs := map[string]string{
		"slog":          buf.String(),
		"json":          string(js),
		"text":          string(text),
		"String":        s.String(),
		"error wrapped": fmt.Errorf("key %v", s).Error(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs["secret "+verb] = fmt.Sprintf(verb, s)
		outputs["config "+verb] = fmt.Sprintf(verb, cfg)
		outputs["pointer "+verb] = fmt.Sprintf(verb, &cfg)
	}
	hexKey := fmt.Sprintf("%x", []byte(canaryKey))
	for name, out := range outputs {
		t.Run(name, func(t *testing.T) {
			if strings.Contains(out, canaryKey) || strings.Contains(strings.ToLower(out), hexKey) {
				t.Errorf("output holds the key: %s", out)
			}
		})
	}
	if s.String() != secret.Redacted {
		t.Errorf("String = %q; want %s", s.String(), secret.Redacted)
	}
}
