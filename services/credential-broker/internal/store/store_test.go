package store_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/credential-broker/internal/store"
)

func TestParseRef(t *testing.T) {
	tests := []struct {
		in                             string
		ok                             bool
		backend, tenant, name, version string
	}{
		{"local://acme/github-token#3", true, "local", "acme", "github-token", "3"},
		{"awssm://t_1/n-2#0f8fad5b-d9cb-469f-a165-70867728950e", true, "awssm", "t_1", "n-2", "0f8fad5b-d9cb-469f-a165-70867728950e"},
		{"local://" + strings.Repeat("a", 64) + "/n#1", true, "local", strings.Repeat("a", 64), "n", "1"},
		{"", false, "", "", "", ""},
		{"local://acme/github-token", false, "", "", "", ""},
		{"local://acme#3", false, "", "", "", ""},
		{"local:/acme/n#3", false, "", "", "", ""},
		{"acme/n#3", false, "", "", "", ""},
		{"Local://acme/n#3", false, "", "", "", ""},
		{"1local://acme/n#3", false, "", "", "", ""},
		{"local://Acme/n#3", false, "", "", "", ""},
		{"local://acme/n#", false, "", "", "", ""},
		{"local:///n#3", false, "", "", "", ""},
		{"local://acme/#3", false, "", "", "", ""},
		{"local://acme/../n#3", false, "", "", "", ""},
		{"local://acme/a/b#3", false, "", "", "", ""},
		{"local://acme/n#3#4", false, "", "", "", ""},
		{"local://acme/n.x#3", false, "", "", "", ""},
		{"local://-acme/n#3", false, "", "", "", ""},
		{"local://_acme/n#3", false, "", "", "", ""},
		{"local://ac*me/n#3", false, "", "", "", ""},
		{"local://ac>me/n#3", false, "", "", "", ""},
		{"local://" + strings.Repeat("a", 65) + "/n#1", false, "", "", "", ""},
		{"local://acme/n#3 ", false, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := store.ParseRef(tt.in)
			if !tt.ok {
				if !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("ParseRef error = %v, want ErrInvalid", err)
				}
				if !r.IsZero() {
					t.Fatal("ParseRef returned a non-zero Ref with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Backend() != tt.backend || r.Tenant() != tt.tenant || r.Name() != tt.name || r.Version() != tt.version {
				t.Fatalf("ParseRef = %q %q %q %q", r.Backend(), r.Tenant(), r.Name(), r.Version())
			}
			if r.String() != tt.in {
				t.Fatalf("String = %q, want %q", r.String(), tt.in)
			}
		})
	}
}

func TestRefText(t *testing.T) {
	r, err := store.NewRef("local", "acme", "github-token", "3")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(struct{ R store.Ref }{r})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"R":"local://acme/github-token#3"}` {
		t.Fatalf("json = %s", b)
	}
	var back struct{ R store.Ref }
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.R != r {
		t.Fatal("JSON round trip changed the Ref")
	}
	var zero store.Ref
	if err := zero.UnmarshalText(nil); err != nil || !zero.IsZero() || zero.String() != "" {
		t.Fatalf("empty text: %v %q", err, zero.String())
	}
	if err := zero.UnmarshalText([]byte("nope")); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("UnmarshalText(nope) = %v, want ErrInvalid", err)
	}
}

func TestCheckRef(t *testing.T) {
	r, err := store.NewRef("local", "acme", "n", "1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		backend string
		tenant  string
		ref     store.Ref
		want    error
	}{
		{"ok", "local", "acme", r, nil},
		{"other tenant", "local", "other", r, store.ErrWrongTenant},
		{"other backend", "awssm", "acme", r, store.ErrInvalid},
		{"invalid tenant", "local", "ACME", r, store.ErrInvalid},
		{"zero ref", "local", "acme", store.Ref{}, store.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := store.CheckRef("get", tt.backend, tt.tenant, tt.ref)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckRef = %v, want %v", err, tt.want)
			}
			var se *store.Error
			if !errors.As(err, &se) || se.Op != "get" {
				t.Fatalf("CheckRef error %v is not a *store.Error for op get", err)
			}
		})
	}
}

func TestCheckPut(t *testing.T) {
	v := secret.New([]byte("x"))
	tests := []struct {
		name         string
		tenant, item string
		v            secret.Value
		ok           bool
	}{
		{"ok", "acme", "github-token", v, true},
		{"max size", "acme", "n", secret.New(make([]byte, store.MaxValueSize)), true},
		{"over max size", "acme", "n", secret.New(make([]byte, store.MaxValueSize+1)), false},
		{"empty value", "acme", "n", secret.Value{}, false},
		{"bad tenant", "a.b", "n", v, false},
		{"bad name", "acme", "N", v, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := store.CheckPut(tt.tenant, tt.item, tt.v)
			if tt.ok != (err == nil) {
				t.Fatalf("CheckPut = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("CheckPut = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	cause := errors.New("disk on fire")
	err := &store.Error{Op: "get", Ref: "local://a/b#1", Kind: store.ErrCorrupt, Reason: "decrypt", Err: cause}
	want := `store get "local://a/b#1": stored secret failed its integrity check: decrypt: disk on fire`
	if err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, store.ErrCorrupt) || !errors.Is(err, cause) {
		t.Fatal("Error does not match its kind and cause")
	}
}
