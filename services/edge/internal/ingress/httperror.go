package ingress

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/mcpgw/mcpgw/libs/errcode"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
)

// HTTPStatus is the one mapper from error codes to HTTP statuses.
func HTTPStatus(code errcode.Code) int {
	switch code {
	case errcode.InvalidArgument, errcode.InvalidID:
		return http.StatusBadRequest
	case errcode.Unauthenticated:
		return http.StatusUnauthorized
	case errcode.PermissionDenied:
		return http.StatusForbidden
	case errcode.NotFound:
		return http.StatusNotFound
	case errcode.Conflict:
		return http.StatusConflict
	case errcode.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errcode.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// ErrorBody is the JSON shape of every error the edge answers over HTTP:
// {"error": {"code": "...", "message": "..."}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and caller-safe message of an error.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteError answers err with its mapped status and public code and
// message (errcode.Public); nothing else of err reaches the caller.
func WriteError(w http.ResponseWriter, err error) {
	code, msg := errcode.Public(err)
	WriteJSON(w, HTTPStatus(code), ErrorBody{Error: ErrorDetail{Code: string(code), Message: msg}})
}

// ReplyError turns the error part of a service's reply into an error, or
// nil when there is none.
func ReplyError(e *rpcv1.Error) error {
	if e == nil || e.GetCode() == "" {
		return nil
	}
	return errcode.New(errcode.Code(e.GetCode()), e.GetMessage())
}

// WriteJSON writes v as JSON with status. Responses are never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// DecodeJSON reads one JSON object of at most limit bytes from r into v,
// refusing unknown fields and trailing data. Errors carry errcode codes
// (invalid_argument, too_large).
func DecodeJSON(r *http.Request, limit int64, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return errcode.Wrap(errcode.InvalidArgument, "unreadable request body", err)
	}
	if int64(len(body)) > limit {
		return errcode.Errorf(errcode.TooLarge, "request body exceeds %d bytes", limit)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errcode.Wrap(errcode.InvalidArgument, jsonMessage(err), err)
	}
	if dec.More() {
		return errcode.New(errcode.InvalidArgument, "request body holds more than one JSON value")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errcode.New(errcode.InvalidArgument, "request body holds more than one JSON value")
	}
	return nil
}

// jsonMessage describes a JSON decoding error without quoting input.
func jsonMessage(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("malformed JSON at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "request body is empty or truncated"
	default:
		// Unknown fields: encoding/json names the field, which is the
		// caller's own input and safe to repeat.
		return "invalid request body: " + Trim(err.Error(), 120)
	}
}
