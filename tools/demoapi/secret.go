package demoapi

import (
	"fmt"
	"log/slog"
)

// redacted is what a Secret prints in place of its value.
const redacted = "[redacted]"

// Secret holds key material. It never prints its value: String, GoString,
// Format (every verb), LogValue, MarshalJSON and MarshalText all yield
// "[redacted]". Convert it to []byte explicitly where the raw bytes are needed.
type Secret []byte

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "[redacted]", so %#v does not print the bytes.
func (Secret) GoString() string { return redacted }

// Format writes "[redacted]" for every verb, including %x, %q and %v.
func (Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue makes slog record "[redacted]" instead of the value.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON encodes the secret as the JSON string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes the secret as "[redacted]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
