package app

import (
	"context"
	"fmt"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/binding"
)

// CreateBinding validates a binding (see binding.Validate), checks that its
// secret reference exists in the command's tenant and fits the strategy,
// and records BindingCreated on the aggregate binding/<id> under a new ID
// "bnd_<hex>". auth is the command's verified authorization. The result's ID
// is the binding ID.
func (a *App) CreateBinding(ctx context.Context, cmd *rpcv1.CreateBinding, auth *commonv1.Authorization) (Result, error) {
	spec, err := binding.Validate(cmd, a.cfg.Strategies)
	if err != nil {
		return Result{}, err
	}
	v, err := a.cfg.Store.Get(ctx, spec.Tenant, spec.SecretRef)
	if err != nil {
		return Result{}, storeError(err, "secret "+spec.SecretRef.String())
	}
	m, err := spec.Strategy.Material(v)
	v.Wipe()
	if err != nil {
		return Result{}, errcode.Wrap(errcode.InvalidArgument,
			fmt.Sprintf("secret %s does not fit strategy %s: %s", spec.SecretRef, spec.Strategy.Name(), errcodeMessage(err)), err)
	}
	clear(m.GetValue())

	id := bus.NewID(binding.IDPrefix)
	appended, err := a.appendControl(ctx, spec.Tenant, bus.AggBinding, id, func() bus.Message {
		ev := spec.Event(id)
		ev.Meta = commandMeta(ctx, spec.Tenant, auth)
		return ev
	})
	if err != nil {
		return Result{}, fmt.Errorf("record binding %s/%s: %w", spec.Tenant, id, err)
	}
	a.log.Info("binding created", "tenant", spec.Tenant, "binding_id", id, "strategy", spec.Strategy.Name(),
		"source_id", spec.SourceID, "hosts", spec.Hosts)
	return Result{ID: id, Version: appended.Version}, nil
}

// errcodeMessage returns the caller-safe message of err.
func errcodeMessage(err error) string {
	_, msg := errcode.Public(err)
	return msg
}
