package analysis

import (
	"errors"
	"fmt"
)

// Sentinel errors, matched with errors.Is. Each typed error below matches
// exactly one of them.
var (
	// ErrUnsupportedFormat: the document is a description this package does
	// not analyse (OpenAPI 3.2, Postman 1.0, AsyncAPI, …) or none at all.
	ErrUnsupportedFormat = errors.New("unsupported description format")
	// ErrSyntax: the bytes are not well-formed JSON or YAML.
	ErrSyntax = errors.New("description syntax error")
	// ErrInvalid: well-formed, but not an OpenAPI document that can be
	// understood (wrong types, unresolvable or external references).
	ErrInvalid = errors.New("invalid description")
	// ErrLimit: the document exceeds a bound (size, depth, alias expansion).
	ErrLimit = errors.New("description exceeds a limit")
)

// UnsupportedFormatError refuses a document of a format Analyze does not
// analyse. Format names what was detected, FormatUnknown if nothing was.
type UnsupportedFormatError struct {
	Format Format
}

// Error implements error.
func (e *UnsupportedFormatError) Error() string {
	return fmt.Sprintf("unsupported description format %q", e.Format)
}

// Is matches ErrUnsupportedFormat.
func (e *UnsupportedFormatError) Is(target error) bool { return target == ErrUnsupportedFormat }

// SyntaxError refuses bytes that are not well-formed JSON or YAML. Line and
// Column are 1-based; zero when unknown.
type SyntaxError struct {
	Line   int
	Column int
	Msg    string
}

// Error implements error.
func (e *SyntaxError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("syntax error at line %d, column %d: %s", e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("syntax error at line %d: %s", e.Line, e.Msg)
	}
	return "syntax error: " + e.Msg
}

// Is matches ErrSyntax.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

// InvalidError refuses a well-formed document that cannot be understood.
// Pointer is the JSON pointer of the offending value and Line its line, when
// known.
type InvalidError struct {
	Pointer string
	Line    int
	Msg     string
	Err     error
}

// Error implements error.
func (e *InvalidError) Error() string {
	var at string
	switch {
	case e.Pointer != "" && e.Line > 0:
		at = fmt.Sprintf(" at %s (line %d)", e.Pointer, e.Line)
	case e.Pointer != "":
		at = " at " + e.Pointer
	case e.Line > 0:
		at = fmt.Sprintf(" at line %d", e.Line)
	}
	return "invalid description" + at + ": " + e.Msg
}

// Is matches ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the underlying error, if any.
func (e *InvalidError) Unwrap() error { return e.Err }

// LimitError refuses a document that exceeds a bound. Limit names the bound,
// Max its value; Line is where it was exceeded, when known.
type LimitError struct {
	Limit string
	Max   int64
	Line  int
}

// Error implements error.
func (e *LimitError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("description exceeds the %s limit of %d at line %d", e.Limit, e.Max, e.Line)
	}
	return fmt.Sprintf("description exceeds the %s limit of %d", e.Limit, e.Max)
}

// Is matches ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }
