// Package query answers SOC analysts' questions about audit rows: the rows
// of one tenant for one request or one binding, newest first. It validates
// and normalizes a question and reads through a Reader; it does no I/O of
// its own.
package query

import (
	"context"
	"errors"
	"regexp"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"

	"github.com/mcpgw/mcpgw/services/audit/internal/row"
)

// Limits on the number of rows one query returns.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Filter selects rows of one tenant: those of a request, of a binding, or
// both (AND). Limit is between 1 and MaxLimit once Normalize accepted it.
type Filter struct {
	Tenant    string
	RequestID string
	BindingID string
	Limit     int
}

// requestIDRE bounds what a request ID may look like: it is matched as a
// bound parameter, never interpolated, but a bound keeps junk out of logs.
var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// Normalize validates f and applies the default limit: the tenant and the
// binding ID must be valid subject tokens, the request ID must match
// ^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$, one of them is required, and a limit
// of 0 becomes DefaultLimit while one above MaxLimit becomes MaxLimit.
// Errors are *errcode.Error with a caller-safe message.
func Normalize(f Filter) (Filter, error) {
	if err := bus.CheckToken("tenant", f.Tenant); err != nil {
		return Filter{}, err
	}
	if f.RequestID == "" && f.BindingID == "" {
		return Filter{}, errcode.New(errcode.InvalidArgument, "request_id or binding_id is required")
	}
	if f.RequestID != "" && !requestIDRE.MatchString(f.RequestID) {
		return Filter{}, errcode.New(errcode.InvalidArgument, "invalid request_id")
	}
	if f.BindingID != "" {
		if err := bus.CheckToken("binding_id", f.BindingID); err != nil {
			return Filter{}, err
		}
	}
	switch {
	case f.Limit < 0:
		return Filter{}, errcode.New(errcode.InvalidArgument, "limit must not be negative")
	case f.Limit == 0:
		f.Limit = DefaultLimit
	case f.Limit > MaxLimit:
		f.Limit = MaxLimit
	}
	return f, nil
}

// Reader reads deduplicated rows matching a normalized filter, newest first.
type Reader interface {
	Select(ctx context.Context, f Filter) ([]row.Row, error)
}

// Config configures a Service.
type Config struct {
	Reader Reader
}

// Service runs queries. It is safe for concurrent use when its Reader is.
type Service struct {
	r Reader
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Reader == nil {
		return nil, errors.New("query: Reader is required")
	}
	return &Service{r: cfg.Reader}, nil
}

// Run normalizes f and returns its rows, newest first. A store failure is
// errcode.Unavailable; the cause stays in the error chain for logs only.
func (s *Service) Run(ctx context.Context, f Filter) ([]row.Row, error) {
	f, err := Normalize(f)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.Select(ctx, f)
	if err != nil {
		return nil, errcode.Wrap(errcode.Unavailable, "audit store unavailable", err)
	}
	return rows, nil
}
