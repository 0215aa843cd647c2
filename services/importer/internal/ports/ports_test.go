package ports_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	"github.com/mcpgw/mcpgw/services/importer/internal/ports"
)

func TestActor(t *testing.T) {
	tests := []struct {
		name  string
		actor *commonv1.Context
		want  *commonv1.Actor
	}{
		{"platform admin", &commonv1.Context{PlatformAdmin: true, Surface: "cli"}, &commonv1.Actor{Kind: "operator", Id: "admin", Surface: "cli", Via: "importer"}},
		{"named operator", &commonv1.Context{User: "alice", Surface: "ui"}, &commonv1.Actor{Kind: "operator", Id: "alice", Surface: "ui", Via: "importer"}},
		{"no actor", nil, &commonv1.Actor{Kind: "operator", Id: "admin", Via: "importer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ports.Actor(&commonv1.Authorization{Actor: tc.actor})
			if !proto.Equal(got, tc.want) {
				t.Fatalf("actor = %v, want %v", got, tc.want)
			}
		})
	}
}
