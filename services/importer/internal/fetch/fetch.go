// Package fetch downloads an API description from a URL an operator named,
// for the importer. Every connection goes through the guarded egress dialer
// of libs/egress under rules built from the operator's allowlist: the URL's
// own host must be listed, and an address in a special-purpose range
// (loopback, private, link-local, metadata) needs an explicitly allowed
// prefix. A fetch is bounded in size and time, follows redirects only to the
// same host (a few times, each target checked again), and never reports the
// URL's path or query string in an error or a log line.
//
// It fetches one document per call; the importer fetches the documents a
// description's remote $refs point to separately (ingest/refs.go), only from
// hosts the import's allowlist names.
package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/libs/egress"
)

// Defaults for the zero fields of Config, and fixed bounds.
const (
	// DefaultMaxBytes is the largest document fetched (50 MiB, the
	// importer's largest description).
	DefaultMaxBytes = 50 << 20
	// DefaultTimeout bounds a whole fetch, redirects included.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxRedirects is how many same-host redirects are followed.
	DefaultMaxRedirects = 3
	// MaxURLBytes bounds the URL.
	MaxURLBytes = 8 << 10
	// MaxAllowed bounds the host patterns and the prefixes of one request.
	MaxAllowed = 64
)

// Config configures a Fetcher. Zero fields take the defaults above.
type Config struct {
	// MaxBytes caps the document; a larger one is an error with
	// CodeTooLarge.
	MaxBytes int64
	// Timeout bounds one Fetch, from the first request to the last byte of
	// the final response.
	Timeout time.Duration
	// MaxRedirects bounds the same-host redirects followed; a negative
	// value follows none.
	MaxRedirects int
	// Resolver resolves host names; nil means the system resolver.
	Resolver egress.Resolver
	// Dialer opens connections to the addresses the guarded dialer checked;
	// nil means the egress default.
	Dialer egress.ContextDialer
	// TLSConfig is the base TLS configuration (root CAs); nil means the
	// system roots. One that skips verification is refused.
	TLSConfig *tls.Config
	// Logger receives refusals and fetches by host and size, never a URL;
	// nil discards.
	Logger *slog.Logger
}

// Request is one fetch.
type Request struct {
	// URL is an http or https URL without user info.
	URL string
	// AllowedHosts are egress host patterns; the URL's host must match one.
	AllowedHosts []string
	// AllowedPrefixes are CIDR prefixes that lift the ban on
	// special-purpose addresses.
	AllowedPrefixes []string
}

// Document is a fetched description.
type Document struct {
	Body []byte
	// SHA256 is the lowercase hex SHA-256 of Body.
	SHA256 string
	// Host is the host the document came from (lowercase, no port).
	Host string
	// Redirects is how many redirects were followed.
	Redirects int
}

// Code says why a fetch failed. Codes never change meaning.
type Code string

// The error codes.
const (
	// CodeInvalidURL: the URL does not parse, is not http or https, has no
	// host, carries user info or is too long.
	CodeInvalidURL Code = "invalid_url"
	// CodeInvalidRules: an allowed host pattern or prefix is invalid.
	CodeInvalidRules Code = "invalid_rules"
	// CodeNotAllowed: the host matches no allowed pattern, or it is or
	// resolves to an address no rule allows.
	CodeNotAllowed Code = "not_allowed"
	// CodeRedirect: a redirect to another host, a downgrade from https, an
	// unusable Location, or too many redirects.
	CodeRedirect Code = "redirect"
	// CodeStatus: the server answered with a status other than 2xx.
	CodeStatus Code = "status"
	// CodeTooLarge: the document exceeds MaxBytes.
	CodeTooLarge Code = "too_large"
	// CodeTimeout: the fetch took longer than Timeout.
	CodeTimeout Code = "timeout"
	// CodeCanceled: the caller's context ended.
	CodeCanceled Code = "canceled"
	// CodeUnreachable: name resolution, connection, TLS or protocol failed.
	CodeUnreachable Code = "unreachable"
)

// Error is the one error type of Fetch. Its message names the code, the
// host and a fixed phrase (or the status code): never the URL's path or
// query string, a Location, a header or anything the server sent. The
// wrapped cause is an *egress.Error when there is one, whose message is
// equally bounded.
type Error struct {
	Code Code
	// Host is the host concerned (lowercase, no port), when known.
	Host string
	// Status is the HTTP status for CodeStatus.
	Status int

	detail string
	err    error
}

// Error returns "fetch: " followed by a fixed detail and the host.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("fetch: ")
	b.WriteString(e.detail)
	if e.Host != "" {
		b.WriteString(" (host ")
		b.WriteString(strconv.Quote(trim(e.Host, 253)))
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the cause (an *egress.Error), if any.
func (e *Error) Unwrap() error { return e.err }

func newError(code Code, host, detail string, cause error) *Error {
	return &Error{Code: code, Host: host, detail: detail, err: cause}
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Fetcher fetches descriptions. It is safe for concurrent use; connections
// are pooled per allowlist by the egress client.
type Fetcher struct {
	cfg    Config
	client *egress.Client
	log    *slog.Logger
}

// New returns a Fetcher. Negative limits or timeouts and a TLS
// configuration that skips verification are errors.
func New(cfg Config) (*Fetcher, error) {
	if cfg.MaxBytes < 0 || cfg.Timeout < 0 {
		return nil, errors.New("fetch: negative limit or timeout in config")
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.MaxRedirects == 0:
		cfg.MaxRedirects = DefaultMaxRedirects
	case cfg.MaxRedirects < 0:
		cfg.MaxRedirects = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	log := cfg.Logger.With(slog.String("component", "fetch"))
	client, err := egress.New(egress.Config{
		Resolver:              cfg.Resolver,
		Dialer:                cfg.Dialer,
		TLSConfig:             cfg.TLSConfig,
		Timeout:               cfg.Timeout,
		DialTimeout:           min(cfg.Timeout, egress.DefaultDialTimeout),
		TLSHandshakeTimeout:   min(cfg.Timeout, egress.DefaultTLSHandshakeTimeout),
		ResponseHeaderTimeout: cfg.Timeout,
		MaxResponseBytes:      cfg.MaxBytes,
		// A fetch is rare: keep few transports, and idle connections briefly.
		MaxTransports:   16,
		IdleConnTimeout: 10 * time.Second,
		Logger:          cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	return &Fetcher{cfg: cfg, client: client, log: log}, nil
}

// MaxBytes is the largest document a Fetch returns.
func (f *Fetcher) MaxBytes() int64 { return f.cfg.MaxBytes }

// Close closes idle connections.
func (f *Fetcher) Close() { f.client.CloseIdleConnections() }

// Fetch downloads req.URL under req's allowlist and returns the body of the
// final 2xx response. Every error is an *Error.
func (f *Fetcher) Fetch(ctx context.Context, req Request) (*Document, error) {
	u, err := ParseURL(req.URL)
	if err != nil {
		return nil, err
	}
	rules, err := Rules(req.AllowedHosts, req.AllowedPrefixes)
	if err != nil {
		return nil, err
	}
	if !rules.AllowsHost(u.Hostname(), port(u)) {
		return nil, newError(CodeNotAllowed, strings.ToLower(u.Hostname()), "the URL's host is not in the fetch allowlist", nil)
	}
	fctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	origin := u
	for redirects := 0; ; redirects++ {
		host := strings.ToLower(u.Hostname())
		hreq, herr := http.NewRequestWithContext(fctx, http.MethodGet, u.String(), nil)
		if herr != nil {
			return nil, newError(CodeInvalidURL, host, "invalid URL", nil)
		}
		hreq.Header.Set("Accept", "application/json, application/yaml;q=0.9, text/yaml;q=0.9, */*;q=0.5")
		hreq.Header.Set("User-Agent", "mcpgw-importer")
		resp, derr := f.client.Do(fctx, hreq, rules)
		if derr != nil {
			e := f.egressError(ctx, fctx, host, derr)
			f.log.LogAttrs(ctx, slog.LevelInfo, "fetch failed", slog.String("code", string(e.Code)), slog.String("host", host))
			return nil, e
		}
		if resp.IsRedirect() {
			if redirects >= f.cfg.MaxRedirects {
				return nil, newError(CodeRedirect, host, fmt.Sprintf("more than %d redirects", f.cfg.MaxRedirects), nil)
			}
			next, rerr := egress.RedirectTarget(resp)
			if rerr != nil {
				return nil, newError(CodeRedirect, host, "redirect without a usable location", nil)
			}
			if next.User != nil {
				return nil, newError(CodeRedirect, host, "redirect to a URL with user info refused", nil)
			}
			if !strings.EqualFold(next.Hostname(), origin.Hostname()) {
				return nil, newError(CodeRedirect, host, "redirect to another host refused", nil)
			}
			if u.Scheme == "https" && next.Scheme != "https" {
				return nil, newError(CodeRedirect, host, "redirect from https to http refused", nil)
			}
			next.Fragment, next.RawFragment = "", ""
			u = next
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			e := newError(CodeStatus, host, fmt.Sprintf("the server answered status %d", resp.StatusCode), nil)
			e.Status = resp.StatusCode
			return nil, e
		}
		sum := sha256.Sum256(resp.Body)
		f.log.LogAttrs(ctx, slog.LevelInfo, "description fetched", slog.String("host", host),
			slog.Int("bytes", len(resp.Body)), slog.Int("redirects", redirects))
		return &Document{Body: resp.Body, SHA256: hex.EncodeToString(sum[:]), Host: host, Redirects: redirects}, nil
	}
}

// egressError maps an egress refusal or failure to an *Error. ctx is the
// caller's context and fctx the fetch's, which carries the timeout.
func (f *Fetcher) egressError(ctx, fctx context.Context, host string, err error) *Error {
	var ee *egress.Error
	if !errors.As(err, &ee) {
		return newError(CodeUnreachable, host, "the server could not be reached", nil)
	}
	switch {
	case ctx.Err() != nil:
		return newError(CodeCanceled, host, "fetch canceled", ee)
	case ee.Code == egress.CodeTimeout || errors.Is(fctx.Err(), context.DeadlineExceeded):
		return newError(CodeTimeout, host, fmt.Sprintf("no complete answer within %s", f.cfg.Timeout), ee)
	}
	switch ee.Code {
	case egress.CodeHostNotAllowed:
		return newError(CodeNotAllowed, host, "host not in the fetch allowlist", ee)
	case egress.CodeAddressBlocked:
		return newError(CodeNotAllowed, host, "the host is or resolves to a special-purpose address (loopback, private, link-local) that no allowed prefix covers", ee)
	case egress.CodeInvalidRequest:
		return newError(CodeInvalidURL, host, "invalid URL", ee)
	case egress.CodeResponseTooLarge:
		return newError(CodeTooLarge, host, fmt.Sprintf("the document exceeds %d bytes", f.cfg.MaxBytes), ee)
	case egress.CodeCanceled:
		return newError(CodeCanceled, host, "fetch canceled", ee)
	case egress.CodeDNS:
		return newError(CodeUnreachable, host, "the host name could not be resolved", ee)
	case egress.CodeTLS:
		return newError(CodeUnreachable, host, "the TLS handshake failed", ee)
	case egress.CodeConnect:
		return newError(CodeUnreachable, host, "the server could not be reached", ee)
	}
	return newError(CodeUnreachable, host, "connection or protocol error", ee)
}

// ParseURL checks a URL to fetch: at most MaxURLBytes, http or https, with
// a host, without user info. Errors are *Error values with
// CodeInvalidURL that never repeat the URL.
func ParseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, newError(CodeInvalidURL, "", "no URL", nil)
	}
	if len(raw) > MaxURLBytes {
		return nil, newError(CodeInvalidURL, "", fmt.Sprintf("URL longer than %d bytes", MaxURLBytes), nil)
	}
	// url.Parse quotes the whole URL in its errors: none is wrapped.
	u, err := url.Parse(raw)
	if err != nil {
		return nil, newError(CodeInvalidURL, "", "the URL does not parse", nil)
	}
	host := strings.ToLower(u.Hostname())
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, newError(CodeInvalidURL, host, "the URL must be http or https", nil)
	}
	if u.User != nil {
		return nil, newError(CodeInvalidURL, host, "the URL must not carry credentials (user:password@)", nil)
	}
	if host == "" || u.Opaque != "" {
		return nil, newError(CodeInvalidURL, "", "the URL has no host", nil)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, newError(CodeInvalidURL, host, "invalid port", nil)
		}
	}
	u.Fragment, u.RawFragment = "", ""
	return u, nil
}

// Rules builds the egress rules of an allowlist. Errors are *Error values
// with CodeInvalidRules.
func Rules(hosts, prefixes []string) (egress.Rules, error) {
	if len(hosts) > MaxAllowed || len(prefixes) > MaxAllowed {
		return egress.Rules{}, newError(CodeInvalidRules, "", fmt.Sprintf("at most %d allowed hosts and %d allowed prefixes", MaxAllowed, MaxAllowed), nil)
	}
	ps := make([]netip.Prefix, 0, len(prefixes))
	for _, s := range prefixes {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return egress.Rules{}, newError(CodeInvalidRules, "", fmt.Sprintf("invalid allowed prefix %q", trim(s, 64)), nil)
		}
		ps = append(ps, p)
	}
	rules, err := egress.NewRules(hosts, ps)
	if err != nil {
		var ee *egress.Error
		if errors.As(err, &ee) {
			return egress.Rules{}, newError(CodeInvalidRules, "", fmt.Sprintf("invalid allowed host %q", trim(ee.Host, 253)), nil)
		}
		return egress.Rules{}, newError(CodeInvalidRules, "", "invalid allowed host", nil)
	}
	return rules, nil
}

// port is the URL's port, defaulting to the scheme's.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}
