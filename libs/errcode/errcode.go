// Package errcode is the one registry of mcpgw's stable error codes. Services
// return *Error values; each transport (HTTP, JSON-RPC, NATS replies) maps a
// Code to its own status in one mapper at its port. Messages are safe to show
// to the caller: they never carry a secret, a URL or a payload.
package errcode

import (
	"errors"
	"fmt"
)

// Code is a stable, documented error code.
type Code string

// The registry. Codes never change meaning; new codes are added at the end of
// their group.
const (
	// Input.
	InvalidArgument Code = "invalid_argument"
	InvalidID       Code = "invalid_id"
	TooLarge        Code = "too_large"
	NotFound        Code = "not_found"
	Conflict        Code = "conflict"
	// Identity and authorization.
	Unauthenticated  Code = "unauthenticated"
	PermissionDenied Code = "permission_denied"
	// The uniform refusal of a tool call up to and including the policy gate.
	ToolNotPermitted Code = "tool_not_permitted"
	// Bus integrity.
	BadSignature Code = "bad_signature"
	Replayed     Code = "replayed"
	IDTaken      Code = "id_taken"
	// Dependencies.
	Unavailable Code = "unavailable"
	Internal    Code = "internal"
)

// Error is a typed error with a stable code and a caller-safe message. The
// wrapped cause is for logs and errors.Is/As; it is never sent to a caller.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error returns the code and message (and the cause, for logs).
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches another *Error by code, so errors.Is(err, &Error{Code: X}) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == "" && t.Err == nil
}

// New returns an *Error with a fixed message.
func New(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with a message and a cause.
func Wrap(code Code, msg string, err error) *Error { return &Error{Code: code, Message: msg, Err: err} }

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// Public returns the code and caller-safe message of err: the first *Error's
// message, or a generic one for any other error.
func Public(err error) (Code, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	return Internal, "internal error"
}
