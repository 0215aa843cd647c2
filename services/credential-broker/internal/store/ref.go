package store

import (
	"errors"
	"fmt"
	"strings"
)

// Ref is a reference to one version of one secret of one tenant in one
// backend. Its text form, "<backend>://<tenant>/<name>#<version>", is what a
// credential binding records; it holds no secret material. Backend is
// ^[a-z][a-z0-9]{0,15}$; tenant, name and version are
// ^[a-z0-9][a-z0-9_-]{0,63}$ (see [ValidToken]). A non-zero Ref is always
// valid; the zero Ref means "no reference". Refs are comparable with ==.
type Ref struct {
	backend, tenant, name, version string
}

// NewRef returns the reference with the given parts, or an error of kind
// [ErrInvalid] if a part does not validate. Backends call it with the version
// they assigned.
func NewRef(backend, tenant, name, version string) (Ref, error) {
	switch {
	case !validBackend(backend):
		return Ref{}, &Error{Op: "ref", Kind: ErrInvalid, Reason: fmt.Sprintf("backend %q does not match ^[a-z][a-z0-9]{0,15}$", clip(backend))}
	case !ValidToken(tenant):
		return Ref{}, &Error{Op: "ref", Kind: ErrInvalid, Reason: fmt.Sprintf("tenant %q does not match ^[a-z0-9][a-z0-9_-]{0,63}$", clip(tenant))}
	case !ValidToken(name):
		return Ref{}, &Error{Op: "ref", Kind: ErrInvalid, Reason: fmt.Sprintf("name %q does not match ^[a-z0-9][a-z0-9_-]{0,63}$", clip(name))}
	case !ValidToken(version):
		return Ref{}, &Error{Op: "ref", Kind: ErrInvalid, Reason: fmt.Sprintf("version %q does not match ^[a-z0-9][a-z0-9_-]{0,63}$", clip(version))}
	}
	return Ref{backend: backend, tenant: tenant, name: name, version: version}, nil
}

// ParseRef parses the text form "<backend>://<tenant>/<name>#<version>". It
// accepts exactly what [Ref.String] produces and returns an error of kind
// [ErrInvalid] for anything else.
func ParseRef(s string) (Ref, error) {
	bad := func(reason string) (Ref, error) {
		return Ref{}, &Error{Op: "parse ref", Ref: clip(s), Kind: ErrInvalid, Reason: reason}
	}
	backend, rest, ok := strings.Cut(s, "://")
	if !ok {
		return bad("want <backend>://<tenant>/<name>#<version>")
	}
	tenant, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("want <backend>://<tenant>/<name>#<version>")
	}
	name, version, ok := strings.Cut(rest, "#")
	if !ok {
		return bad("want <backend>://<tenant>/<name>#<version>")
	}
	r, err := NewRef(backend, tenant, name, version)
	if e := (*Error)(nil); errors.As(err, &e) {
		return bad(e.Reason)
	}
	return r, err
}

// Backend returns the name of the backend that wrote the secret ("local",
// "awssm", "env", …).
func (r Ref) Backend() string { return r.backend }

// Tenant returns the tenant the secret was written for.
func (r Ref) Tenant() string { return r.tenant }

// Name returns the secret's name within its tenant.
func (r Ref) Name() string { return r.name }

// Version returns the version the reference names.
func (r Ref) Version() string { return r.version }

// IsZero reports whether r is the zero Ref.
func (r Ref) IsZero() bool { return r == Ref{} }

// String returns the text form "<backend>://<tenant>/<name>#<version>", or ""
// for the zero Ref.
func (r Ref) String() string {
	if r.IsZero() {
		return ""
	}
	return r.backend + "://" + r.tenant + "/" + r.name + "#" + r.version
}

// MarshalText returns the text form of r.
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText sets r from its text form; empty text gives the zero Ref.
func (r *Ref) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*r = Ref{}
		return nil
	}
	p, err := ParseRef(string(text))
	if err != nil {
		return err
	}
	*r = p
	return nil
}
