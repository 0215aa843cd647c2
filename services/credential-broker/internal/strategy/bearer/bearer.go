// Package bearer is the bearer binding strategy: the secret is a token sent
// as "Authorization: Bearer <token>" (header name and prefix may be
// changed for upstreams that expect another form).
package bearer

import (
	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
)

// Name is the strategy's name in bindings.
const Name = "bearer"

// Defaults of the placement.
const (
	DefaultHeader = "Authorization"
	DefaultPrefix = "Bearer "
)

// Strategy is the bearer strategy. The zero value is ready to use.
type Strategy struct{}

var _ strategy.Strategy = Strategy{}

// New returns the bearer strategy.
func New() Strategy { return Strategy{} }

// Name returns "bearer".
func (Strategy) Name() string { return Name }

// Placement accepts only a header placement; an empty location, name or
// prefix takes the default (header, "Authorization", "Bearer ").
func (Strategy) Placement(p *controlv1.Placement) (*controlv1.Placement, error) {
	in, name, prefix := p.GetIn(), p.GetName(), p.GetPrefix()
	if in != "" && in != strategy.InHeader {
		return nil, errcode.Errorf(errcode.InvalidArgument, `bearer placement "in" must be header, not %q`, strategy.Clip(in))
	}
	if name == "" {
		name = DefaultHeader
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := strategy.CheckHeaderName(name); err != nil {
		return nil, err
	}
	if err := strategy.CheckPrefix(prefix); err != nil {
		return nil, err
	}
	return &controlv1.Placement{In: strategy.InHeader, Name: name, Prefix: prefix}, nil
}

// Material returns the token as the value; it must be fit for a header
// value.
func (Strategy) Material(v secret.Value) (*rpcv1.Material, error) {
	b := v.Reveal()
	if err := strategy.CheckHeaderValue("bearer token", b); err != nil {
		clear(b)
		return nil, err
	}
	return &rpcv1.Material{Value: b}, nil
}
