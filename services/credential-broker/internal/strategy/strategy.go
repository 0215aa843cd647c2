// Package strategy is the broker's contract for binding strategies: how a
// binding places a credential on a request (its placement) and how the
// secret behind the binding becomes the material the adapter injects.
//
// Each strategy lives in a package of its own under strategy/ and implements
// [Strategy]; the composition root collects them in a [Set]. Strategies do no
// I/O. Their errors are *errcode.Error values of code invalid_argument whose
// messages never contain secret material.
package strategy

import (
	"fmt"
	"sort"
	"strings"

	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
)

// Placement locations.
const (
	InHeader = "header"
	InQuery  = "query"
	InCookie = "cookie"
)

// Strategy is one way of turning a binding's secret into upstream auth.
// Implementations are stateless and safe for concurrent use.
type Strategy interface {
	// Name is the strategy's name as bindings record it, e.g. "api_key".
	Name() string
	// Placement checks the placement an operator gave for a new binding and
	// returns the placement to record, with the strategy's defaults filled
	// in. It does not modify p; p may be nil.
	Placement(p *controlv1.Placement) (*controlv1.Placement, error)
	// Material turns the secret into the material to seal for the adapter:
	// Value and, for strategies that have one, Username. The caller sets the
	// binding fields and owns (and should clear) the returned bytes. An
	// error means the secret does not fit the strategy; it never contains
	// the secret.
	Material(v secret.Value) (*rpcv1.Material, error)
}

// Set is the strategies a broker supports, by name. It is immutable after
// NewSet and safe for concurrent use.
type Set struct {
	byName map[string]Strategy
	names  []string
}

// NewSet returns the set of the given strategies. Names must be distinct and
// non-empty.
func NewSet(strategies ...Strategy) (*Set, error) {
	s := &Set{byName: map[string]Strategy{}}
	for _, st := range strategies {
		if st == nil || st.Name() == "" {
			return nil, fmt.Errorf("strategy set: strategy without a name")
		}
		if _, dup := s.byName[st.Name()]; dup {
			return nil, fmt.Errorf("strategy set: %q given twice", st.Name())
		}
		s.byName[st.Name()] = st
		s.names = append(s.names, st.Name())
	}
	sort.Strings(s.names)
	return s, nil
}

// Names returns the supported strategy names, sorted.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Lookup returns the strategy called name, or an invalid_argument error that
// lists the supported ones.
func (s *Set) Lookup(name string) (Strategy, error) {
	if st, ok := s.byName[name]; ok {
		return st, nil
	}
	if name == "" {
		return nil, errcode.Errorf(errcode.InvalidArgument, "strategy is required; supported strategies: %s", strings.Join(s.names, ", "))
	}
	return nil, errcode.Errorf(errcode.InvalidArgument, "unsupported strategy %q; supported strategies: %s", Clip(name), strings.Join(s.names, ", "))
}

// MaxNameLen bounds a placement's header or parameter name.
const MaxNameLen = 128

// MaxPrefixLen bounds a placement's value prefix.
const MaxPrefixLen = 64

// CheckHeaderName checks that name is an HTTP field name (RFC 9110 token)
// of at most MaxNameLen bytes.
func CheckHeaderName(name string) error {
	if name == "" {
		return errcode.New(errcode.InvalidArgument, "placement name is required")
	}
	if len(name) > MaxNameLen {
		return errcode.Errorf(errcode.InvalidArgument, "placement name longer than %d bytes", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return errcode.Errorf(errcode.InvalidArgument, "placement name %q is not a valid HTTP header name", Clip(name))
		}
	}
	return nil
}

// CheckQueryName checks that name may be a query parameter name: non-empty,
// at most MaxNameLen bytes, printable ASCII without '&', '=', '#', '?' or
// space (the adapter escapes it, but a name that needs escaping is almost
// certainly a mistake).
func CheckQueryName(name string) error {
	if name == "" {
		return errcode.New(errcode.InvalidArgument, "placement name is required")
	}
	if len(name) > MaxNameLen {
		return errcode.Errorf(errcode.InvalidArgument, "placement name longer than %d bytes", MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("&=#?+%", c) >= 0 {
			return errcode.Errorf(errcode.InvalidArgument, "placement name %q is not a valid query parameter name", Clip(name))
		}
	}
	return nil
}

// CheckPrefix checks a placement's value prefix: at most MaxPrefixLen
// bytes of visible ASCII and spaces.
func CheckPrefix(prefix string) error {
	if len(prefix) > MaxPrefixLen {
		return errcode.Errorf(errcode.InvalidArgument, "placement prefix longer than %d bytes", MaxPrefixLen)
	}
	for i := 0; i < len(prefix); i++ {
		if c := prefix[i]; c < ' ' || c >= 0x7f {
			return errcode.New(errcode.InvalidArgument, "placement prefix holds a control or non-ASCII character")
		}
	}
	return nil
}

// CheckHeaderValue checks that b may be sent in an HTTP header field value:
// no control characters other than horizontal tab (so no CR or LF that
// would split the header), no DEL, and no leading or trailing whitespace. The
// message never shows b.
func CheckHeaderValue(what string, b []byte) error {
	if len(b) == 0 {
		return errcode.Errorf(errcode.InvalidArgument, "%s is empty", what)
	}
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return errcode.Errorf(errcode.InvalidArgument, "%s holds a control character and cannot be sent in a header", what)
		}
	}
	if b[0] == ' ' || b[0] == '\t' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t' {
		return errcode.Errorf(errcode.InvalidArgument, "%s starts or ends with whitespace", what)
	}
	return nil
}

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Clip shortens operator-supplied text before it goes into an error
// message.
func Clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
