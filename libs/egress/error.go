package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
)

// ErrorCode is a stable code for why an egress call failed. Codes never
// change meaning.
type ErrorCode string

// The error codes.
const (
	// CodeInvalidRules: a host pattern or prefix given to NewRules is invalid.
	CodeInvalidRules ErrorCode = "invalid_rules"
	// CodeInvalidRequest: the request cannot be sent (nil, no URL, a scheme
	// other than http or https, user info in the URL, a bad port).
	CodeInvalidRequest ErrorCode = "invalid_request"
	// CodeHostNotAllowed: the host or port matches no host pattern.
	CodeHostNotAllowed ErrorCode = "host_not_allowed"
	// CodeAddressBlocked: the host is, or resolved to, an address in a
	// special-purpose range that no allowed prefix covers.
	CodeAddressBlocked ErrorCode = "address_blocked"
	// CodeDNS: the host name could not be resolved.
	CodeDNS ErrorCode = "dns"
	// CodeConnect: no connection could be opened (refused, unreachable).
	CodeConnect ErrorCode = "connect"
	// CodeTLS: the TLS handshake failed (certificate, version, alert).
	CodeTLS ErrorCode = "tls"
	// CodeTimeout: a dial, handshake, response header or overall deadline
	// passed.
	CodeTimeout ErrorCode = "timeout"
	// CodeCanceled: the caller's context was canceled.
	CodeCanceled ErrorCode = "canceled"
	// CodeResponseTooLarge: the response body exceeds MaxResponseBytes.
	CodeResponseTooLarge ErrorCode = "response_too_large"
	// CodeProtocol: the connection broke or the upstream answered something
	// that is not valid HTTP.
	CodeProtocol ErrorCode = "protocol"
	// CodeNotRedirect: RedirectTarget was asked about a response that is not a
	// redirect with a usable Location.
	CodeNotRedirect ErrorCode = "not_redirect"
)

// Error is the one error type of this package. Code says what went wrong and
// Host names the host of the request (a name or IP literal, lowercase, no
// port), or for CodeInvalidRules the offending host pattern. The message is the code, the host and a fixed phrase: it never
// contains the URL path, the query string, a header value or anything the
// upstream sent. The wrapped cause (for errors.Is and errors.As) has any
// *url.Error stripped; for CodeProtocol it is reduced to a *net.OpError or
// io.ErrUnexpectedEOF, since net/http quotes a malformed status line, which
// an upstream may use to echo a credential.
//
// Match a code with errors.Is(err, &egress.Error{Code: egress.CodeTimeout})
// or read it after errors.As.
type Error struct {
	Code ErrorCode
	Host string

	detail string // fixed text chosen by this package
	err    error  // sanitised cause
}

// Error returns "egress: <code>" followed by the host and a fixed detail.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("egress: ")
	b.WriteString(string(e.Code))
	if e.Host != "" {
		b.WriteString(" host ")
		b.WriteString(quote(e.Host))
	}
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	return b.String()
}

// quote quotes a host for a message, cut to the longest a DNS name can be.
func quote(s string) string {
	if len(s) > 253 {
		s = s[:253]
	}
	return strconv.Quote(s)
}

// Unwrap returns the sanitised cause, so errors.Is(err,
// context.DeadlineExceeded) and errors.As for *net.OpError keep working.
func (e *Error) Unwrap() error { return e.err }

// Is reports whether target is an *Error with the same code and no host, or
// the same host.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Host == "" || t.Host == e.Host) && t.detail == "" && t.err == nil
}

func newError(code ErrorCode, host, detail string, cause error) *Error {
	return &Error{Code: code, Host: host, detail: detail, err: stripURL(cause)}
}

// stripURL removes every *url.Error from the top of err's chain: its message
// repeats the full URL, query string included.
func stripURL(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) {
			return err
		}
		err = ue.Err
	}
}

// classify turns any error met while sending a request or reading its
// response into an *Error. parent is the caller's context, which tells a
// cancellation by the caller from a deadline.
func classify(parent context.Context, host string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Host == "" {
			c := *e
			c.Host = host
			return &c
		}
		return e
	}
	if errors.Is(parent.Err(), context.Canceled) {
		return newError(CodeCanceled, host, "request canceled", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return newError(CodeTimeout, host, "deadline exceeded", err)
	}
	if errors.Is(err, context.Canceled) {
		return newError(CodeCanceled, host, "request canceled", err)
	}
	if isTLS(err) {
		return newError(CodeTLS, host, "tls handshake failed", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return newError(CodeTimeout, host, "timed out", err)
	}
	var op *net.OpError
	if (errors.As(err, &op) && op.Op == "dial") || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH) {
		return newError(CodeConnect, host, "connection failed", err)
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return newError(CodeDNS, host, "name resolution failed", err)
	}
	return newError(CodeProtocol, host, "connection or protocol error", protocolCause(err))
}

// protocolCause keeps only the parts of a protocol error that cannot carry
// upstream-controlled text: a malformed status line, for one, is quoted in
// net/http's message and may echo a credential.
func protocolCause(err error) error {
	var op *net.OpError
	switch {
	case errors.As(err, &op):
		return op
	case errors.Is(err, io.ErrUnexpectedEOF):
		return io.ErrUnexpectedEOF
	case errors.Is(err, io.EOF):
		return io.EOF
	}
	return nil
}

func isTLS(err error) bool {
	var (
		rh  tls.RecordHeaderError
		al  tls.AlertError
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		ci  x509.CertificateInvalidError
		ech *tls.ECHRejectionError
	)
	if errors.As(err, &rh) || errors.As(err, &al) || errors.As(err, &cv) || errors.As(err, &ua) ||
		errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &ech) {
		return true
	}
	// The tls package returns some handshake failures as plain errors whose
	// messages start with "tls: ".
	for e := err; e != nil; e = errors.Unwrap(e) {
		if strings.HasPrefix(e.Error(), "tls: ") {
			return true
		}
	}
	return false
}
