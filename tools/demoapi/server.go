// Package demoapi is a small in-memory "messages" HTTP API guarded by an
// X-API-Key header. The local stack seeds it as its demo source, and tests
// use it as the upstream behind the gateway: its Recorder shows exactly which
// requests, headers and key reached it.
//
// The API: POST /v1/messages queues a message, GET /v1/messages/{id} returns
// one; OpenAPI returns the OpenAPI 3.0.3 description of both. The configured
// key is compared in constant time and never logged or echoed.
package demoapi

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/mcpgw/mcpgw/libs/secret"
	"io"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"
)

const (
	// HeaderAPIKey is the request header that carries the API key.
	HeaderAPIKey = "X-API-Key"
	// MaxBodyBytes is the largest request body accepted; larger bodies get 413.
	MaxBodyBytes = 64 << 10
	// MaxMessageChars is the largest message body, in characters.
	MaxMessageChars = 2000
)

// Config configures a Server.
type Config struct {
	// APIKey is the key every request must present in X-API-Key. Required.
	// It must be usable as an HTTP header value (no control characters, no
	// leading or trailing space). It redacts itself when printed or logged.
	APIKey secret.Value
	// Logger receives one line per request, never a header, body or key.
	// Defaults to a logger that discards everything.
	Logger *slog.Logger
	// MessageLimit bounds the messages kept; the oldest are evicted first.
	// Defaults to DefaultMessageLimit.
	MessageLimit int
	// RecordLimit bounds the requests the Recorder keeps. Defaults to
	// DefaultRecordLimit.
	RecordLimit int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Server is the demo messages API. It is safe for concurrent use.
type Server struct {
	keyHash [sha256.Size]byte
	log     *slog.Logger
	now     func() time.Time
	store   *store
	rec     *Recorder
	mux     *http.ServeMux
}

// New validates cfg and returns a Server. It keeps only a SHA-256 digest of
// the key, not the key itself.
func New(cfg Config) (*Server, error) {
	key := cfg.APIKey.Reveal()
	defer clear(key)
	if len(key) == 0 {
		return nil, errors.New("new demoapi: api key is required")
	}
	if !validHeaderValue(key) {
		return nil, errors.New("new demoapi: api key must be printable ascii without leading or trailing space")
	}
	if cfg.MessageLimit < 0 || cfg.RecordLimit < 0 {
		return nil, errors.New("new demoapi: limits must not be negative")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MessageLimit == 0 {
		cfg.MessageLimit = DefaultMessageLimit
	}
	if cfg.RecordLimit == 0 {
		cfg.RecordLimit = DefaultRecordLimit
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{
		keyHash: sha256.Sum256(key),
		log:     cfg.Logger.With(slog.String("component", "demoapi")),
		now:     cfg.Now,
		store:   newStore(cfg.MessageLimit),
		rec:     newRecorder(cfg.RecordLimit),
		mux:     http.NewServeMux(),
	}
	s.mux.HandleFunc("POST /v1/messages", s.sendMessage)
	s.mux.HandleFunc("GET /v1/messages/{id}", s.getMessage)
	s.mux.HandleFunc("/v1/messages", methodNotAllowed(http.MethodPost))
	s.mux.HandleFunc("/v1/messages/{id}", methodNotAllowed(http.MethodGet+", "+http.MethodHead))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})
	return s, nil
}

// validHeaderValue reports whether k can travel as an HTTP header value
// unchanged: visible ASCII and inner spaces only.
func validHeaderValue(k []byte) bool {
	if k[0] == ' ' || k[len(k)-1] == ' ' {
		return false
	}
	for _, c := range k {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

// Recorder returns the Recorder that sees every request this Server
// receives, authenticated or not.
func (s *Server) Recorder() *Recorder { return s.rec }

// Handler returns the HTTP handler of the API. Every request is recorded,
// then refused with 401 unless it carries exactly one X-API-Key header equal
// to the configured key; bodies over MaxBodyBytes get 413. Errors are JSON
// objects {"error": "..."} that never repeat a presented key.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	sw := &statusWriter{ResponseWriter: w}
	rec := Recorded{
		Method:     r.Method,
		Path:       r.URL.Path,
		RawQuery:   r.URL.RawQuery,
		Header:     r.Header,
		KeyMatched: s.keyMatches(r.Header),
		Time:       start,
	}
	defer func() {
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", r.Pattern),
			slog.Int("status", sw.status()),
			slog.Bool("key_matched", rec.KeyMatched),
			slog.Duration("duration", s.now().Sub(start)),
		}
		if sw.messageID != "" {
			attrs = append(attrs, slog.String("message_id", sw.messageID))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	}()
	if !rec.KeyMatched {
		s.rec.add(rec)
		writeError(sw, http.StatusUnauthorized, "invalid api key")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		s.rec.add(rec)
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(sw, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body exceeds %d bytes", MaxBodyBytes))
			return
		}
		writeError(sw, http.StatusBadRequest, "could not read request body")
		return
	}
	rec.Body = body
	s.rec.add(rec)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mux.ServeHTTP(sw, r)
}

// keyMatches reports whether h holds exactly one X-API-Key equal to the
// configured key. Comparing digests keeps the time independent of both the
// content and the length of the presented key.
func (s *Server) keyMatches(h http.Header) bool {
	vals := h.Values(HeaderAPIKey)
	if len(vals) != 1 {
		return false
	}
	got := sha256.Sum256([]byte(vals[0]))
	return subtle.ConstantTimeCompare(got[:], s.keyHash[:]) == 1
}

// sendRequest is the accepted body of POST /v1/messages.
type sendRequest struct {
	To         string
	Body       string
	TemplateID string
}

// sendResponse is the 201 body of POST /v1/messages.
type sendResponse struct {
	ID         string `json:"id"`
	To         string `json:"to"`
	Status     string `json:"status"`
	TemplateID string `json:"template_id,omitempty"`
}

func (s *Server) sendMessage(w http.ResponseWriter, r *http.Request) {
	req, problem := decodeSendRequest(r.Body)
	if problem != "" {
		writeError(w, http.StatusBadRequest, problem)
		return
	}
	m := Message{
		ID:         newMessageID(),
		To:         req.To,
		Body:       req.Body,
		Status:     StatusQueued,
		TemplateID: req.TemplateID,
		CreatedAt:  s.now().UTC(),
	}
	s.store.put(m)
	if sw, ok := w.(*statusWriter); ok {
		sw.messageID = m.ID
	}
	w.Header().Set("Location", "/v1/messages/"+m.ID)
	writeJSON(w, http.StatusCreated, sendResponse{
		ID: m.ID, To: m.To, Status: m.Status, TemplateID: m.TemplateID,
	})
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	m, ok := s.store.get(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "message not found")
		return
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.messageID = m.ID
	}
	writeJSON(w, http.StatusOK, m)
}

// decodeSendRequest parses and validates a send request. It returns a
// problem description for the client, which never repeats client input.
func decodeSendRequest(body io.Reader) (sendRequest, string) {
	dec := json.NewDecoder(body)
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return sendRequest{}, "request body must be a JSON object"
		}
		return sendRequest{}, "request body is not valid JSON"
	}
	if raw == nil {
		return sendRequest{}, "request body must be a JSON object"
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return sendRequest{}, "request body must hold a single JSON object"
	}
	var req sendRequest
	fields := []struct {
		name string
		dst  *string
	}{
		{"to", &req.To},
		{"body", &req.Body},
		{"template_id", &req.TemplateID},
	}
	for _, f := range fields {
		v, ok := raw[f.name]
		if !ok {
			continue
		}
		delete(raw, f.name)
		if string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return sendRequest{}, fmt.Sprintf("field %q must be a string", f.name)
		}
	}
	if len(raw) > 0 {
		return sendRequest{}, "request body has an unknown field; accepted fields are to, body and template_id"
	}
	switch {
	case req.To == "":
		return sendRequest{}, `field "to" is required`
	case req.Body == "":
		return sendRequest{}, `field "body" is required`
	case utf8.RuneCountInString(req.Body) > MaxMessageChars:
		return sendRequest{}, fmt.Sprintf(`field "body" must be at most %d characters`, MaxMessageChars)
	}
	return req, ""
}

// newMessageID returns "msg_" and 96 random bits in hex.
func newMessageID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it aborts the process instead
	return "msg_" + hex.EncodeToString(b[:])
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own plain structs are encoded; this cannot happen.
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// statusWriter remembers the status code and the message a request touched,
// for the request log line.
type statusWriter struct {
	http.ResponseWriter
	code      int
	messageID string
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) status() int {
	if w.code == 0 {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
