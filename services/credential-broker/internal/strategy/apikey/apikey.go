// Package apikey is the api_key binding strategy: the secret is sent as is
// (after an optional prefix) in a header or a query parameter that the
// binding names.
package apikey

import (
	"strings"

	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
)

// Name is the strategy's name in bindings.
const Name = "api_key"

// Strategy is the api_key strategy. The zero value is ready to use.
type Strategy struct{}

var _ strategy.Strategy = Strategy{}

// New returns the api_key strategy.
func New() Strategy { return Strategy{} }

// Name returns "api_key".
func (Strategy) Name() string { return Name }

// Placement requires `in` to be "header" or "query" and a name valid for
// that location; an optional prefix is kept.
func (Strategy) Placement(p *controlv1.Placement) (*controlv1.Placement, error) {
	in, name, prefix := p.GetIn(), p.GetName(), p.GetPrefix()
	switch in {
	case strategy.InHeader:
		if err := strategy.CheckHeaderName(name); err != nil {
			return nil, err
		}
	case strategy.InQuery:
		if err := strategy.CheckQueryName(name); err != nil {
			return nil, err
		}
	case "":
		return nil, errcode.New(errcode.InvalidArgument, `api_key placement needs "in": header or query`)
	default:
		return nil, errcode.Errorf(errcode.InvalidArgument, `api_key placement "in" must be header or query, not %q`, strategy.Clip(in))
	}
	if err := strategy.CheckPrefix(prefix); err != nil {
		return nil, err
	}
	if in == strategy.InHeader && strings.TrimLeft(prefix, " ") != prefix {
		return nil, errcode.New(errcode.InvalidArgument, "api_key header prefix must not start with a space")
	}
	return &controlv1.Placement{In: in, Name: name, Prefix: prefix}, nil
}

// Material returns the secret as the value. The secret must be fit for a
// header value (no control characters, no surrounding whitespace); the
// same rule holds for query placement, so that a key never changes meaning
// with its placement.
func (Strategy) Material(v secret.Value) (*rpcv1.Material, error) {
	b := v.Reveal()
	if err := strategy.CheckHeaderValue("api key", b); err != nil {
		clear(b)
		return nil, err
	}
	return &rpcv1.Material{Value: b}, nil
}
