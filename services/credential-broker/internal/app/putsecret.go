package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/libs/seal"
	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
)

// MaxSealedSecret is the largest sealed value PutSecret opens: the largest
// secret a store keeps plus the sealing overhead.
const MaxSealedSecret = store.MaxValueSize + seal.Overhead

// PutSecret opens a secret the operator's client sealed to the broker's key
// (info seal.InfoSecret, bound to tenant and name), stores it as a new
// version in the secret store, and records SecretWritten{name, ref} on the
// aggregate secret/<name>. auth is the command's verified authorization. The
// result's ID is the new reference. The secret itself is never returned,
// logged or recorded; it cannot be read back through any verb.
func (a *App) PutSecret(ctx context.Context, cmd *rpcv1.PutSecret, auth *commonv1.Authorization) (Result, error) {
	tenant, name := cmd.GetTenant(), cmd.GetName()
	if err := bus.CheckToken("tenant", tenant); err != nil {
		return Result{}, err
	}
	if err := bus.CheckToken("name", name); err != nil {
		return Result{}, err
	}
	sealed := cmd.GetSealedValue()
	switch {
	case len(sealed) == 0:
		return Result{}, errcode.New(errcode.InvalidArgument, "sealed_value is required")
	case len(sealed) > MaxSealedSecret:
		return Result{}, errcode.Errorf(errcode.TooLarge, "sealed_value larger than %d bytes", MaxSealedSecret)
	}
	plaintext, err := seal.Open(a.cfg.SealKey, []byte(seal.InfoSecret), seal.SecretAAD(tenant, name), sealed)
	if err != nil {
		return Result{}, errcode.Wrap(errcode.InvalidArgument,
			"sealed_value does not open with the broker's key for this tenant and name (seal it to the broker's current public key)", err)
	}
	v := secret.New(plaintext)
	clear(plaintext)
	defer v.Wipe()
	if v.IsZero() {
		return Result{}, errcode.New(errcode.InvalidArgument, "secret is empty")
	}

	ref, err := a.cfg.Store.Put(ctx, tenant, name, v)
	if err != nil {
		return Result{}, storeError(err, "secret")
	}
	appended, err := a.appendControl(ctx, tenant, bus.AggSecret, name, func() bus.Message {
		return &controlv1.SecretWritten{Meta: commandMeta(ctx, tenant, auth), Name: name, SecretRef: ref.String()}
	})
	if err != nil {
		if !errors.Is(err, errNotApplied) {
			a.forget(tenant, ref)
		}
		return Result{}, fmt.Errorf("record secret %s/%s: %w", tenant, name, err)
	}
	a.log.Info("secret written", "tenant", tenant, "name", name, "ref", ref.String(), "version", appended.Version)
	return Result{ID: ref.String(), Version: appended.Version}, nil
}

// forget deletes a secret version whose SecretWritten event could not be
// appended, so that no unrecorded secret stays in the store.
func (a *App) forget(tenant string, ref store.Ref) {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RefreshTimeout)
	defer cancel()
	if err := a.cfg.Store.Delete(ctx, tenant, ref); err != nil {
		a.log.Warn("could not delete unrecorded secret version", "tenant", tenant, "ref", ref.String(), "err", err)
	}
}
