// Package storetest is the conformance suite that every secret-store backend
// of the broker must pass: a backend's test calls [Run] with a function that
// returns a fresh, empty store.
package storetest

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
)

// Canary is the secret the suite writes and then searches for in every error
// it receives. Backend tests may search their own storage for it too.
const Canary = "storetest-canary-5b1f0e2a9c"

// foreignBackend names a backend no store implements.
const foreignBackend = "storetestforeign"

// Run runs the conformance suite against the backend that newStore builds.
// newStore must return a fresh, empty store each time it is called; it may
// register cleanup with t.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	s := &suite{newStore: newStore}
	t.Run("PutGetRoundTrip", s.putGetRoundTrip)
	t.Run("BinaryValue", s.binaryValue)
	t.Run("RotationKeepsVersions", s.rotationKeepsVersions)
	t.Run("TenantsAreIsolated", s.tenantsAreIsolated)
	t.Run("WrongTenant", s.wrongTenant)
	t.Run("ForgedTenantFindsNothing", s.forgedTenantFindsNothing)
	t.Run("UnknownVersion", s.unknownVersion)
	t.Run("ForeignBackendRef", s.foreignBackendRef)
	t.Run("InvalidArguments", s.invalidArguments)
	t.Run("Delete", s.delete)
	t.Run("VersionsNotReusedAfterDelete", s.versionsNotReusedAfterDelete)
	t.Run("ValuesAreCopies", s.valuesAreCopies)
	t.Run("CanceledContext", s.canceledContext)
	t.Run("ConcurrentPuts", s.concurrentPuts)
}

type suite struct {
	newStore func(t *testing.T) store.Store
}

func (s *suite) putGetRoundTrip(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	ref := mustPut(t, st, "tenant-a", "github-token", Canary)
	if ref.IsZero() {
		t.Fatal("Put returned the zero Ref")
	}
	if ref.Tenant() != "tenant-a" || ref.Name() != "github-token" {
		t.Fatalf("Put returned %q, want tenant tenant-a and name github-token", ref)
	}
	parsed, err := store.ParseRef(ref.String())
	if err != nil {
		t.Fatalf("ParseRef(%q): %v", ref, err)
	}
	if parsed != ref {
		t.Fatalf("ParseRef(%q) = %q", ref, parsed)
	}
	assertNoCanary(t, ref.String())
	got, err := st.Get(ctx, "tenant-a", parsed)
	if err != nil {
		t.Fatalf("Get(%q): %v", parsed, err)
	}
	if string(got.Reveal()) != Canary {
		t.Fatal("Get returned other bytes than Put stored")
	}
}

func (s *suite) binaryValue(t *testing.T) {
	st := s.newStore(t)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := make([]byte, store.MaxValueSize)
	for i := range big {
		big[i] = byte(i * 7)
	}
	for name, v := range map[string][]byte{"every-byte": all, "max-size": big, "one-byte": {0}} {
		t.Run(name, func(t *testing.T) {
			ref, err := st.Put(t.Context(), "tenant-a", name, secret.New(v))
			if err != nil {
				t.Fatal(err)
			}
			got, err := st.Get(t.Context(), "tenant-a", ref)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(secret.New(v)) {
				t.Fatal("Get returned other bytes than Put stored")
			}
		})
	}
}

func (s *suite) rotationKeepsVersions(t *testing.T) {
	st := s.newStore(t)
	const n = 4
	refs := make([]store.Ref, n)
	seen := map[store.Ref]bool{}
	for i := range n {
		refs[i] = mustPut(t, st, "tenant-a", "api-key", fmt.Sprintf("%s-v%d", Canary, i))
		if seen[refs[i]] {
			t.Fatalf("Put returned %q twice", refs[i])
		}
		seen[refs[i]] = true
		if refs[i].Name() != "api-key" || refs[i].Tenant() != "tenant-a" {
			t.Fatalf("rotation changed tenant or name: %q", refs[i])
		}
	}
	for i, ref := range refs {
		assertValue(t, st, "tenant-a", ref, fmt.Sprintf("%s-v%d", Canary, i))
	}
}

func (s *suite) tenantsAreIsolated(t *testing.T) {
	st := s.newStore(t)
	ra := mustPut(t, st, "tenant-a", "shared-name", Canary+"-a")
	rb := mustPut(t, st, "tenant-b", "shared-name", Canary+"-b")
	if ra == rb {
		t.Fatalf("two tenants got the same reference %q", ra)
	}
	assertValue(t, st, "tenant-a", ra, Canary+"-a")
	assertValue(t, st, "tenant-b", rb, Canary+"-b")
}

func (s *suite) wrongTenant(t *testing.T) {
	st := s.newStore(t)
	ref := mustPut(t, st, "tenant-a", "github-token", Canary)
	got, err := st.Get(t.Context(), "tenant-b", ref)
	assertErr(t, err, store.ErrWrongTenant)
	if !got.IsZero() {
		t.Fatal("Get with another tenant returned a value")
	}
	assertErr(t, st.Delete(t.Context(), "tenant-b", ref), store.ErrWrongTenant)
	assertValue(t, st, "tenant-a", ref, Canary)
}

// forgedTenantFindsNothing edits a reference to name another tenant: the
// store must look only in that tenant, never find the first tenant's secret.
func (s *suite) forgedTenantFindsNothing(t *testing.T) {
	st := s.newStore(t)
	ref := mustPut(t, st, "tenant-a", "github-token", Canary)
	forged, err := store.NewRef(ref.Backend(), "tenant-b", ref.Name(), ref.Version())
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(t.Context(), "tenant-b", forged)
	assertErr(t, err, store.ErrNotFound)
	if !got.IsZero() {
		t.Fatal("a forged reference returned a value")
	}
	assertErr(t, st.Delete(t.Context(), "tenant-b", forged), store.ErrNotFound)
	assertValue(t, st, "tenant-a", ref, Canary)
}

func (s *suite) unknownVersion(t *testing.T) {
	st := s.newStore(t)
	ref := mustPut(t, st, "tenant-a", "github-token", Canary)
	tests := map[string]store.Ref{
		"unknown name":    mustRef(t, ref.Backend(), "tenant-a", "never-written", ref.Version()),
		"unknown tenant":  mustRef(t, ref.Backend(), "tenant-z", "github-token", ref.Version()),
		"unknown version": mustRef(t, ref.Backend(), "tenant-a", "github-token", "999999999"),
	}
	for name, r := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := st.Get(t.Context(), r.Tenant(), r)
			assertErr(t, err, store.ErrNotFound)
			if !got.IsZero() {
				t.Fatal("Get of an unknown version returned a value")
			}
		})
	}
}

func (s *suite) foreignBackendRef(t *testing.T) {
	st := s.newStore(t)
	ref := mustPut(t, st, "tenant-a", "github-token", Canary)
	foreign := mustRef(t, foreignBackend, "tenant-a", ref.Name(), ref.Version())
	_, err := st.Get(t.Context(), "tenant-a", foreign)
	assertErr(t, err, store.ErrInvalid)
	assertErr(t, st.Delete(t.Context(), "tenant-a", foreign), store.ErrInvalid)
	_, err = st.Get(t.Context(), "tenant-a", store.Ref{})
	assertErr(t, err, store.ErrInvalid)
	assertValue(t, st, "tenant-a", ref, Canary)
}

func (s *suite) invalidArguments(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	bad := []string{"", "A", "Tenant", "a.b", "a/b", "../x", "..", "a*", "a>", "a b", "-a", "_a", "a\x00", "é", strings.Repeat("a", 65)}
	for _, b := range bad {
		t.Run(fmt.Sprintf("tenant %q", b), func(t *testing.T) {
			_, err := st.Put(ctx, b, "name", secret.New([]byte(Canary)))
			assertErr(t, err, store.ErrInvalid)
		})
		t.Run(fmt.Sprintf("name %q", b), func(t *testing.T) {
			_, err := st.Put(ctx, "tenant-a", b, secret.New([]byte(Canary)))
			assertErr(t, err, store.ErrInvalid)
		})
	}
	t.Run("empty value", func(t *testing.T) {
		_, err := st.Put(ctx, "tenant-a", "name", secret.Value{})
		assertErr(t, err, store.ErrInvalid)
	})
	t.Run("oversize value", func(t *testing.T) {
		_, err := st.Put(ctx, "tenant-a", "name", secret.New([]byte(strings.Repeat(Canary, store.MaxValueSize/len(Canary)+1))))
		assertErr(t, err, store.ErrInvalid)
	})
	t.Run("get with invalid tenant", func(t *testing.T) {
		ref := mustPut(t, st, "tenant-a", "name", Canary)
		_, err := st.Get(ctx, "Tenant-A", ref)
		assertErr(t, err, store.ErrInvalid)
		assertErr(t, st.Delete(ctx, "", ref), store.ErrInvalid)
	})
	t.Run("max length tenant and name", func(t *testing.T) {
		long := strings.Repeat("z", 64)
		ref := mustPut(t, st, long, long, Canary)
		assertValue(t, st, long, ref, Canary)
	})
}

func (s *suite) delete(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	r1 := mustPut(t, st, "tenant-a", "api-key", Canary+"-1")
	r2 := mustPut(t, st, "tenant-a", "api-key", Canary+"-2")
	if err := st.Delete(ctx, "tenant-a", r1); err != nil {
		t.Fatalf("Delete(%q): %v", r1, err)
	}
	got, err := st.Get(ctx, "tenant-a", r1)
	assertErr(t, err, store.ErrNotFound)
	if !got.IsZero() {
		t.Fatal("Get of a deleted version returned a value")
	}
	assertErr(t, st.Delete(ctx, "tenant-a", r1), store.ErrNotFound)
	assertValue(t, st, "tenant-a", r2, Canary+"-2")
}

func (s *suite) versionsNotReusedAfterDelete(t *testing.T) {
	st := s.newStore(t)
	ctx := t.Context()
	r1 := mustPut(t, st, "tenant-a", "api-key", Canary+"-1")
	if err := st.Delete(ctx, "tenant-a", r1); err != nil {
		t.Fatal(err)
	}
	r2 := mustPut(t, st, "tenant-a", "api-key", Canary+"-2")
	if r2 == r1 {
		t.Fatalf("Put after Delete reused the reference %q", r1)
	}
	_, err := st.Get(ctx, "tenant-a", r1)
	assertErr(t, err, store.ErrNotFound)
	assertValue(t, st, "tenant-a", r2, Canary+"-2")
}

func (s *suite) valuesAreCopies(t *testing.T) {
	st := s.newStore(t)
	v := secret.New([]byte(Canary))
	ref, err := st.Put(t.Context(), "tenant-a", "api-key", v)
	if err != nil {
		t.Fatal(err)
	}
	v.Wipe()
	got, err := st.Get(t.Context(), "tenant-a", ref)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Reveal()) != Canary {
		t.Fatal("wiping the value given to Put changed the stored secret")
	}
	got.Wipe()
	assertValue(t, st, "tenant-a", ref, Canary)
}

func (s *suite) canceledContext(t *testing.T) {
	st := s.newStore(t)
	ref := mustPut(t, st, "tenant-a", "api-key", Canary)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.Put(ctx, "tenant-a", "api-key", secret.New([]byte(Canary))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a canceled context: error = %v, want context.Canceled", err)
	}
	if _, err := st.Get(ctx, "tenant-a", ref); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a canceled context: error = %v, want context.Canceled", err)
	}
	if err := st.Delete(ctx, "tenant-a", ref); !errors.Is(err, context.Canceled) {
		t.Fatalf("Delete with a canceled context: error = %v, want context.Canceled", err)
	}
	assertValue(t, st, "tenant-a", ref, Canary)
}

func (s *suite) concurrentPuts(t *testing.T) {
	st := s.newStore(t)
	const workers, each = 8, 4
	type result struct {
		ref   store.Ref
		value string
		err   error
	}
	results := make(chan result, workers*each)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				value := fmt.Sprintf("%s-%d-%d", Canary, w, i)
				ref, err := st.Put(t.Context(), "tenant-a", "rotated", secret.New([]byte(value)))
				results <- result{ref, value, err}
			}
		})
	}
	wg.Wait()
	close(results)
	seen := map[store.Ref]string{}
	for r := range results {
		if r.err != nil {
			assertNoCanary(t, r.err.Error())
			t.Fatalf("concurrent Put: %v", r.err)
		}
		if prev, dup := seen[r.ref]; dup {
			t.Fatalf("concurrent Puts of %q and %q both returned %q", prev, r.value, r.ref)
		}
		seen[r.ref] = r.value
	}
	for ref, value := range seen {
		assertValue(t, st, "tenant-a", ref, value)
	}
}

func mustPut(t *testing.T, st store.Store, tenant, name, value string) store.Ref {
	t.Helper()
	ref, err := st.Put(t.Context(), tenant, name, secret.New([]byte(value)))
	if err != nil {
		assertNoCanary(t, err.Error())
		t.Fatalf("Put(%q, %q): %v", tenant, name, err)
	}
	return ref
}

func mustRef(t *testing.T, backend, tenant, name, version string) store.Ref {
	t.Helper()
	r, err := store.NewRef(backend, tenant, name, version)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func assertValue(t *testing.T, st store.Store, tenant string, ref store.Ref, want string) {
	t.Helper()
	got, err := st.Get(t.Context(), tenant, ref)
	if err != nil {
		assertNoCanary(t, err.Error())
		t.Fatalf("Get(%q, %q): %v", tenant, ref, err)
	}
	if string(got.Reveal()) != want {
		t.Fatalf("Get(%q, %q) returned other bytes than Put stored", tenant, ref)
	}
}

// assertErr checks that err matches want, is a *store.Error, and shows no
// secret.
func assertErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	var se *store.Error
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *store.Error", err)
	}
	assertNoCanary(t, err.Error())
	assertNoCanary(t, fmt.Sprintf("%+v %#v", err, err))
}

// assertNoCanary fails if s shows the canary raw, hex-, base64- or
// URL-encoded.
func assertNoCanary(t *testing.T, s string) {
	t.Helper()
	for _, form := range Encodings(Canary) {
		if strings.Contains(s, form) {
			t.Fatalf("output shows the secret: %s", s)
		}
	}
}

// Encodings returns the forms of a secret to search for in output or
// storage: raw, hex (both cases), standard and URL base64 at each of the
// three alignments the secret can have in a longer encoded stream (the
// characters that depend on neighbouring bytes trimmed off), URL query
// escaping, and Go's %v of the bytes.
func Encodings(s string) []string {
	b := []byte(s)
	forms := []string{
		s,
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		url.QueryEscape(s),
		strings.Trim(fmt.Sprint(b), "[]"),
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for shift := range 3 {
			e := enc.EncodeToString(append(make([]byte, shift), b...))
			if shift > 0 {
				e = e[4:]
			}
			forms = append(forms, e[:len(e)-4])
		}
	}
	return forms
}
