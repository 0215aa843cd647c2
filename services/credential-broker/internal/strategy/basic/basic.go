// Package basic is the basic binding strategy (HTTP Basic authentication,
// RFC 7617): the secret holds "username:password"; the material carries the
// username and the password apart, and the adapter sends
// "Authorization: Basic base64(username:password)".
package basic

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
)

// Name is the strategy's name in bindings.
const Name = "basic"

// The one placement of this strategy.
const (
	Header = "Authorization"
	Prefix = "Basic "
)

// Strategy is the basic strategy. The zero value is ready to use.
type Strategy struct{}

var _ strategy.Strategy = Strategy{}

// New returns the basic strategy.
func New() Strategy { return Strategy{} }

// Name returns "basic".
func (Strategy) Name() string { return Name }

// Placement accepts only the Authorization header with the "Basic " prefix;
// empty fields take those values.
func (Strategy) Placement(p *controlv1.Placement) (*controlv1.Placement, error) {
	in, name, prefix := p.GetIn(), p.GetName(), p.GetPrefix()
	if in != "" && in != strategy.InHeader {
		return nil, errcode.Errorf(errcode.InvalidArgument, `basic placement "in" must be header, not %q`, strategy.Clip(in))
	}
	if name != "" && !strings.EqualFold(name, Header) {
		return nil, errcode.Errorf(errcode.InvalidArgument, "basic placement name must be %s, not %q", Header, strategy.Clip(name))
	}
	if prefix != "" && prefix != Prefix {
		return nil, errcode.Errorf(errcode.InvalidArgument, "basic placement prefix must be %q", Prefix)
	}
	return &controlv1.Placement{In: strategy.InHeader, Name: Header, Prefix: Prefix}, nil
}

// Material splits the secret at its first ':' into Username and Value (the
// password). The username must be non-empty UTF-8 without control
// characters; the password may be empty and hold any bytes but CR, LF and
// NUL (RFC 7617 forbids control characters in the user-pass).
func (Strategy) Material(v secret.Value) (*rpcv1.Material, error) {
	b := v.Reveal()
	defer clear(b)
	user, pass, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return nil, errcode.New(errcode.InvalidArgument, "basic secret must hold username:password")
	}
	if len(user) == 0 {
		return nil, errcode.New(errcode.InvalidArgument, "basic secret has an empty username")
	}
	if !utf8.Valid(user) || hasControl(user) {
		return nil, errcode.New(errcode.InvalidArgument, "basic secret's username holds a control character or invalid UTF-8")
	}
	if hasControl(pass) {
		return nil, errcode.New(errcode.InvalidArgument, "basic secret's password holds a control character")
	}
	return &rpcv1.Material{Username: string(user), Value: bytes.Clone(pass)}, nil
}

// hasControl reports whether b holds an ASCII control character or DEL.
func hasControl(b []byte) bool {
	for _, c := range b {
		if c < ' ' || c == 0x7f {
			return true
		}
	}
	return false
}
