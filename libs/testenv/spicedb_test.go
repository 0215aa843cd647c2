package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/authzed/authzed-go/proto/authzed/api/v1"

	"github.com/mcpgw/mcpgw/deploy"
	"github.com/mcpgw/mcpgw/libs/testenv"
)

func TestSpiceDBSchema(t *testing.T) {
	s := testenv.SpiceDB(t)
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Errorf("Addr = %q, want a 127.0.0.1 address", s.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := s.Client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: deploy.SpiceDBSchema()}); err != nil {
		t.Fatalf("write schema: %v\n%s", err, s.LogTail())
	}
	read, err := s.Client.ReadSchema(ctx, &v1.ReadSchemaRequest{})
	if err != nil {
		t.Fatalf("read schema: %v", err)
	}
	for _, def := range []string{"definition user", "definition agent", "definition tool"} {
		if !strings.Contains(read.GetSchemaText(), def) {
			t.Errorf("schema read back lacks %q", def)
		}
	}

	grant := func(subjectType, subjectID string) *v1.RelationshipUpdate {
		return &v1.RelationshipUpdate{
			Operation: v1.RelationshipUpdate_OPERATION_TOUCH,
			Relationship: &v1.Relationship{
				Resource: &v1.ObjectReference{ObjectType: "tool", ObjectId: "demo/list_pets"},
				Relation: "invoker",
				Subject:  &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: subjectType, ObjectId: subjectID}},
			},
		}
	}
	write, err := s.Client.WriteRelationships(ctx, &v1.WriteRelationshipsRequest{
		Updates: []*v1.RelationshipUpdate{grant("agent", "demo/a1"), grant("user", "demo/u1")},
	})
	if err != nil {
		t.Fatalf("write relationships: %v", err)
	}

	tests := []struct {
		name        string
		subjectType string
		subjectID   string
		tool        string
		want        v1.CheckPermissionResponse_Permissionship
	}{
		{name: "granted agent", subjectType: "agent", subjectID: "demo/a1", tool: "demo/list_pets", want: v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION},
		{name: "granted user", subjectType: "user", subjectID: "demo/u1", tool: "demo/list_pets", want: v1.CheckPermissionResponse_PERMISSIONSHIP_HAS_PERMISSION},
		{name: "other agent", subjectType: "agent", subjectID: "demo/a2", tool: "demo/list_pets", want: v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION},
		{name: "other tenant", subjectType: "agent", subjectID: "other/a1", tool: "demo/list_pets", want: v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION},
		{name: "same id in another tenant's tool", subjectType: "agent", subjectID: "demo/a1", tool: "other/list_pets", want: v1.CheckPermissionResponse_PERMISSIONSHIP_NO_PERMISSION},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := s.Client.CheckPermission(ctx, &v1.CheckPermissionRequest{
				Consistency: &v1.Consistency{Requirement: &v1.Consistency_AtLeastAsFresh{AtLeastAsFresh: write.GetWrittenAt()}},
				Resource:    &v1.ObjectReference{ObjectType: "tool", ObjectId: tt.tool},
				Permission:  "invoke",
				Subject:     &v1.SubjectReference{Object: &v1.ObjectReference{ObjectType: tt.subjectType, ObjectId: tt.subjectID}},
			})
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if resp.GetPermissionship() != tt.want {
				t.Errorf("permissionship = %s, want %s", resp.GetPermissionship(), tt.want)
			}
		})
	}

	key := string(s.PresharedKey.Reveal())
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s)} {
		if strings.Contains(out, key) {
			t.Errorf("formatted server shows the key: %s", out)
		}
	}
}

func TestSpiceDBServersAreIsolated(t *testing.T) {
	a := testenv.SpiceDB(t)
	b := testenv.SpiceDB(t)
	if a.Addr == b.Addr {
		t.Fatalf("two calls returned the same address %q", a.Addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := a.Client.WriteSchema(ctx, &v1.WriteSchemaRequest{Schema: deploy.SpiceDBSchema()}); err != nil {
		t.Fatalf("write schema: %v", err)
	}
	if _, err := b.Client.ReadSchema(ctx, &v1.ReadSchemaRequest{}); err == nil {
		t.Error("second server has the first one's schema")
	}
}
