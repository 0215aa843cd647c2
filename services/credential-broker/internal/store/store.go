// Package store is the broker's port to secret-store backends: a small
// contract (Put, Get, Delete) over tenant-scoped, versioned secrets addressed
// by opaque references.
//
// A reference ([Ref]) names the backend, the tenant it was written for, the
// secret's name and one version, in the text form
// "<backend>://<tenant>/<name>#<version>" (for example
// "local://acme/github-token#3"). A backend accepts a reference only for the
// tenant it was written for: [Store.Get] and [Store.Delete] with any other
// tenant fail with [ErrWrongTenant], and the backend also checks that the
// stored material belongs to that tenant, so a reference edited to name
// another tenant finds nothing of the first.
//
// Every backend passes the conformance suite in package storetest. Errors
// name tenants, names and references, never secret material.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mcpgw/mcpgw/libs/secret"
)

// MaxValueSize is the largest secret, in bytes, that every backend stores
// (the limit of AWS Secrets Manager). Put refuses a larger one with
// [ErrInvalid].
const MaxValueSize = 64 << 10

// Store keeps secrets per tenant, by name, in versions.
//
// Implementations are safe for concurrent use by multiple goroutines. Every
// method returns ctx.Err() (wrapped) when ctx is done before it starts.
type Store interface {
	// Put stores v as a new version of the secret name in tenant and returns
	// the reference of exactly that version. Putting an existing name adds a
	// version (rotation); earlier versions stay readable through their own
	// references until deleted. A reference, once returned, never names
	// other material: versions are never reused, not even after Delete. An
	// invalid tenant or name, an empty value, or one over [MaxValueSize] is
	// [ErrInvalid]. The store keeps its own copy of v.
	Put(ctx context.Context, tenant, name string, v secret.Value) (Ref, error)

	// Get returns the version of the secret that ref names. ref must have
	// been written for tenant ([ErrWrongTenant] otherwise) and by this
	// backend ([ErrInvalid] otherwise); a deleted or unknown version is
	// [ErrNotFound]; material that fails its integrity check is [ErrCorrupt].
	// The caller owns the returned Value and may wipe it.
	Get(ctx context.Context, tenant string, ref Ref) (secret.Value, error)

	// Delete removes the version that ref names, with the same checks as Get.
	// Deleting a version that does not exist (or no longer does) is
	// [ErrNotFound], which a caller retrying a delete treats as done. Other
	// versions of the same name are unaffected.
	Delete(ctx context.Context, tenant string, ref Ref) error
}

var (
	// ErrNotFound means the referenced version does not exist in the tenant.
	ErrNotFound = errors.New("secret not found")
	// ErrWrongTenant means a reference was used with a tenant other than the
	// one it was written for.
	ErrWrongTenant = errors.New("reference belongs to another tenant")
	// ErrInvalid means an argument is malformed: a tenant, name or reference
	// that does not validate, a reference of another backend, or an empty or
	// oversize value.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt means stored material failed its integrity check (altered,
	// moved between tenants or names, or encrypted under another key).
	ErrCorrupt = errors.New("stored secret failed its integrity check")
)

// Error describes a failed store operation. It matches its Kind and its Err
// with [errors.Is] and [errors.As]. It never holds secret material.
type Error struct {
	// Op is the operation: "put", "get" or "delete".
	Op string
	// Ref is the reference concerned, or for Put the tenant and name, as
	// text; it may be empty.
	Ref string
	// Kind is one of ErrNotFound, ErrWrongTenant, ErrInvalid, ErrCorrupt,
	// or nil for a failure of the backend itself.
	Kind error
	// Reason is a short lowercase explanation, or empty.
	Reason string
	// Err is the underlying cause, or nil.
	Err error
}

// Error returns "<op> <ref>: <kind>: <reason>: <err>", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("store ")
	b.WriteString(e.Op)
	if e.Ref != "" {
		fmt.Fprintf(&b, " %q", e.Ref)
	}
	for _, part := range []string{errText(e.Kind), e.Reason, errText(e.Err)} {
		if part != "" {
			b.WriteString(": ")
			b.WriteString(part)
		}
	}
	return b.String()
}

// Unwrap returns Kind and Err, those that are set.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ValidToken reports whether s may be a tenant, name or version:
// ^[a-z0-9][a-z0-9_-]{0,63}$ (no dots, slashes, wildcards or upper case, so
// it is safe in a file path and a NATS subject).
func ValidToken(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validBackend reports whether s may be a backend name: ^[a-z][a-z0-9]{0,15}$.
func validBackend(s string) bool {
	if len(s) == 0 || len(s) > 16 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// CheckPut validates the arguments of [Store.Put] as every backend must:
// tenant and name are valid tokens and v is neither empty nor over
// [MaxValueSize]. It returns nil or an *Error of kind [ErrInvalid].
func CheckPut(tenant, name string, v secret.Value) error {
	if !ValidToken(tenant) {
		return &Error{Op: "put", Kind: ErrInvalid, Reason: fmt.Sprintf("tenant %q does not match ^[a-z0-9][a-z0-9_-]{0,63}$", clip(tenant))}
	}
	if !ValidToken(name) {
		return &Error{Op: "put", Kind: ErrInvalid, Reason: fmt.Sprintf("name %q does not match ^[a-z0-9][a-z0-9_-]{0,63}$", clip(name))}
	}
	ref := tenant + "/" + name
	if v.IsZero() {
		return &Error{Op: "put", Ref: ref, Kind: ErrInvalid, Reason: "empty value"}
	}
	if v.Len() > MaxValueSize {
		return &Error{Op: "put", Ref: ref, Kind: ErrInvalid, Reason: fmt.Sprintf("value of %d bytes exceeds %d", v.Len(), MaxValueSize)}
	}
	return nil
}

// CheckRef validates the arguments of [Store.Get] or [Store.Delete] (op
// "get" or "delete") for the backend named backend, as every backend must:
// tenant is valid, ref is set and of this backend ([ErrInvalid] otherwise),
// and ref was written for tenant ([ErrWrongTenant] otherwise). It returns nil
// or an *Error.
func CheckRef(op, backend, tenant string, ref Ref) error {
	if !ValidToken(tenant) {
		return &Error{Op: op, Ref: ref.String(), Kind: ErrInvalid, Reason: fmt.Sprintf("tenant %q does not match ^[a-z0-9][a-z0-9_-]{0,63}$", clip(tenant))}
	}
	if ref.IsZero() {
		return &Error{Op: op, Kind: ErrInvalid, Reason: "empty reference"}
	}
	if ref.Backend() != backend {
		return &Error{Op: op, Ref: ref.String(), Kind: ErrInvalid, Reason: fmt.Sprintf("reference of backend %q, this store is %q", ref.Backend(), backend)}
	}
	if ref.Tenant() != tenant {
		return &Error{Op: op, Ref: ref.String(), Kind: ErrWrongTenant, Reason: fmt.Sprintf("used for tenant %q", tenant)}
	}
	return nil
}

// clip shortens an invalid caller-supplied string before it goes into an
// error message.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
