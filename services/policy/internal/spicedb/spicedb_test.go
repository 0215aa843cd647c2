package spicedb_test

import (
	"testing"

	"github.com/mcpgw/mcpgw/libs/secret"
	"github.com/mcpgw/mcpgw/services/policy/internal/spicedb"
)

func TestLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.8.9.1": true, "::1": true, "localhost": true, "LOCALHOST": true,
		"10.0.0.1": false, "spicedb.internal": false, "0.0.0.0": false, "": false,
	} {
		if got := spicedb.Loopback(host); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestDial(t *testing.T) {
	key := secret.New([]byte("preshared-canary"))
	tests := []struct {
		name string
		addr string
		key  secret.Value
		ok   bool
	}{
		// Dialing is lazy: no connection is opened by these.
		{"loopback plaintext", "127.0.0.1:50051", key, true},
		{"remote over tls", "10.0.0.1:50051", key, true},
		{"no port", "127.0.0.1", key, false},
		{"no key", "127.0.0.1:50051", secret.Value{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := spicedb.Dial(tt.addr, tt.key, false)
			if (err == nil) != tt.ok {
				t.Fatalf("Dial = %v, want ok=%v", err, tt.ok)
			}
			if c != nil {
				_ = c.Close()
			}
		})
	}
	if _, err := spicedb.New(nil); err == nil {
		t.Fatal("New(nil) accepted")
	}
}

func TestObjectID(t *testing.T) {
	if got := spicedb.ObjectID("acme", "list_pets"); got != "acme/list_pets" {
		t.Fatalf("ObjectID = %q", got)
	}
}
