package operatorapi

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewAgentKey(t *testing.T) {
	a, err := NewAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewAgentKey()
	if a == b || !strings.HasPrefix(a, KeyPrefix) {
		t.Fatalf("keys %q %q", a, b)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(a, KeyPrefix))
	if err != nil || len(raw) != 32 {
		t.Fatalf("key body: %v, %d bytes", err, len(raw))
	}
	// The display prefix reveals 8 of 43 key characters: not usable.
	if KeyPrefixLen-len(KeyPrefix) > 8 {
		t.Fatal("prefix reveals too much of the key")
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"Pets API", true},
		{"Zahlungs-API für Händler", true},
		{"", false},
		{" padded", false},
		{"line\nbreak", false},
		{"nul\x00", false},
		{strings.Repeat("x", maxNameLen+1), false},
		{"\xff\xfe", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if err := checkName("name", tt.in); (err == nil) != tt.ok {
				t.Fatalf("checkName(%q) = %v", tt.in, err)
			}
		})
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, s := range []string{"aGVsbG8=", "aGVsbG8", "aGV-bG8_"} {
		if _, err := decodeBase64(s); err != nil {
			t.Fatalf("decodeBase64(%q): %v", s, err)
		}
	}
	if _, err := decodeBase64("!!"); err == nil {
		t.Fatal("accepted !!")
	}
}
