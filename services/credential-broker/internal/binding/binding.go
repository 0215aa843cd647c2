// Package binding is the broker's domain logic for credential bindings: the
// rules a new binding must satisfy (strategy and placement, a secret
// reference of the binding's own tenant, confirmed hosts, source and scheme)
// and the checks a binding must pass before its material is released for a
// request (tenant, active, environment, source, confirmed host). It does no
// I/O; every refusal is an *errcode.Error whose message names IDs and hosts,
// never secret material.
package binding

import (
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/strategy"
)

// IDPrefix starts every binding ID.
const IDPrefix = "bnd_"

// MaxTextLen bounds a binding's name and scheme.
const MaxTextLen = 128

// Spec is a validated CreateBinding command: everything the BindingCreated
// event records except the ID and metadata.
type Spec struct {
	Tenant      string
	Name        string
	Strategy    strategy.Strategy
	Placement   *controlv1.Placement
	SecretRef   store.Ref
	Hosts       []string
	Environment string
	SourceID    string
	Scheme      string
}

// Validate checks a CreateBinding command (its authorization is the port's
// business) against the supported strategies and returns its Spec. The
// secret reference must parse and have been written for the command's
// tenant; whether it exists and fits the strategy is for the caller to check
// with the store ([Spec.Strategy]'s Material).
func Validate(cmd *rpcv1.CreateBinding, strategies *strategy.Set) (Spec, error) {
	if err := bus.CheckToken("tenant", cmd.GetTenant()); err != nil {
		return Spec{}, err
	}
	if err := checkText("name", cmd.GetName(), false); err != nil {
		return Spec{}, err
	}
	st, err := strategies.Lookup(cmd.GetStrategy())
	if err != nil {
		return Spec{}, err
	}
	placement, err := st.Placement(cmd.GetPlacement())
	if err != nil {
		return Spec{}, err
	}
	if cmd.GetSecretRef() == "" {
		return Spec{}, errcode.New(errcode.InvalidArgument, "secret_ref is required")
	}
	ref, err := store.ParseRef(cmd.GetSecretRef())
	if err != nil {
		return Spec{}, errcode.Errorf(errcode.InvalidArgument, "secret_ref %q is not a secret reference (<backend>://<tenant>/<name>#<version>)", strategy.Clip(cmd.GetSecretRef()))
	}
	if ref.Tenant() != cmd.GetTenant() {
		return Spec{}, errcode.Errorf(errcode.PermissionDenied, "secret_ref was written for another tenant, not %q", cmd.GetTenant())
	}
	hosts, err := CheckHosts(cmd.GetHosts())
	if err != nil {
		return Spec{}, err
	}
	if env := cmd.GetEnvironment(); env != "" {
		if err := bus.CheckToken("environment", env); err != nil {
			return Spec{}, err
		}
	}
	if cmd.GetSourceId() == "" {
		return Spec{}, errcode.New(errcode.InvalidArgument, "source_id is required")
	}
	if err := bus.CheckToken("source_id", cmd.GetSourceId()); err != nil {
		return Spec{}, err
	}
	if err := checkText("scheme", cmd.GetScheme(), true); err != nil {
		return Spec{}, err
	}
	return Spec{
		Tenant: cmd.GetTenant(), Name: cmd.GetName(), Strategy: st, Placement: placement, SecretRef: ref,
		Hosts: hosts, Environment: cmd.GetEnvironment(), SourceID: cmd.GetSourceId(), Scheme: cmd.GetScheme(),
	}, nil
}

// Event returns the BindingCreated event (without metadata) for a binding
// with this spec and id.
func (s Spec) Event(id string) *controlv1.BindingCreated {
	return &controlv1.BindingCreated{
		BindingId: id, Name: s.Name, Strategy: s.Strategy.Name(), Placement: s.Placement,
		SecretRef: s.SecretRef.String(), Hosts: s.Hosts, Environment: s.Environment,
		SourceId: s.SourceID, Scheme: s.Scheme,
	}
}

// checkText checks a short human-readable field: valid UTF-8 without
// control characters, at most MaxTextLen bytes, and present when required.
func checkText(field, s string, required bool) error {
	if s == "" {
		if required {
			return errcode.Errorf(errcode.InvalidArgument, "%s is required", field)
		}
		return nil
	}
	if len(s) > MaxTextLen {
		return errcode.Errorf(errcode.InvalidArgument, "%s longer than %d bytes", field, MaxTextLen)
	}
	if !utf8.ValidString(s) {
		return errcode.Errorf(errcode.InvalidArgument, "%s is not valid UTF-8", field)
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return errcode.Errorf(errcode.InvalidArgument, "%s holds a control character", field)
		}
	}
	return nil
}

// Request is what a resolve request asks of one binding.
type Request struct {
	// Tenant and Environment come from the verified context.
	Tenant      string
	Environment string
	// SourceID is the source of the tool being called.
	SourceID string
	// Host is where the request will go.
	Host Host
}

// Check decides whether b's material may be released for r. b must have
// been found in r.Tenant; it must be active, serve r's environment (a
// binding without one serves every environment) and source, and confirm a
// host that covers r.Host. The secret reference must belong to the tenant
// too. It returns nil or a permission_denied error saying which check failed.
func Check(b catalog.Binding, r Request) error {
	switch {
	case b.Disabled:
		return errcode.Errorf(errcode.PermissionDenied, "binding %s is disabled", b.ID)
	case b.Environment != "" && b.Environment != r.Environment:
		return errcode.Errorf(errcode.PermissionDenied, "binding %s serves environment %q, not %q", b.ID, b.Environment, r.Environment)
	case b.SourceID != r.SourceID:
		return errcode.Errorf(errcode.PermissionDenied, "binding %s serves another source", b.ID)
	case !Covered(b.Hosts, r.Host):
		return errcode.Errorf(errcode.PermissionDenied, "host %s is not a confirmed host of binding %s", r.Host, b.ID)
	}
	ref, err := store.ParseRef(b.SecretRef)
	if err != nil || ref.Tenant() != r.Tenant {
		return errcode.Errorf(errcode.PermissionDenied, "binding %s has no secret reference of tenant %q", b.ID, r.Tenant)
	}
	return nil
}
