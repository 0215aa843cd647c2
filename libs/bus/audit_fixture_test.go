package bus_test

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/testenv"
)

// TestAuditKindFixtures keeps one fixture per audit kind (the public
// contract for integrators): each must exist, decode into the kind's
// message, and survive signing and verification unchanged. A kind without a
// fixture fails.
func TestAuditKindFixtures(t *testing.T) {
	keys := testenv.NewKeys(t)
	ver, err := bus.NewVerifier(keys.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range bus.AuditKinds() {
		t.Run(string(k.Kind), func(t *testing.T) {
			path := filepath.Join("testdata", "audit", string(k.Kind)+".json")
			mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(k.Type))
			if err != nil {
				t.Fatalf("type %s not registered", k.Type)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("audit kind %s has no fixture %s: write an example event of that kind there", k.Kind, path)
			}
			msg := mt.New().Interface()
			if err := protojson.Unmarshal(b, msg); err != nil {
				t.Fatalf("fixture %s: %v", path, err)
			}
			ev, ok := msg.(bus.Message)
			if !ok || ev.GetMeta() == nil || ev.GetMeta().GetType() != k.Type || ev.GetMeta().GetTenant() == "" {
				t.Fatalf("fixture %s lacks a metadata block of type %s", path, k.Type)
			}
			subject, err := bus.AuditSubject(ev.GetMeta().GetTenant(), k.Kind)
			if err != nil {
				t.Fatal(err)
			}
			m, err := bus.SignEvent(keys.ID[k.Owner], subject, ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ver.VerifyAudit(m.Subject, m.Header, m.Data)
			if err != nil {
				t.Fatalf("round trip: %v", err)
			}
			if !proto.Equal(got.Msg, ev) {
				t.Fatalf("round trip changed the event:\n got %v\nwant %v", got.Msg, ev)
			}
		})
	}
}
