package command_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	"github.com/mcpgw/mcpgw/libs/catalog"
	"github.com/mcpgw/mcpgw/libs/errcode"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"
	rpcv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/rpc/v1"
	"github.com/mcpgw/mcpgw/services/policy/internal/command"
)

func apply(t *testing.T, c *catalog.Catalog, tenant string, msgs ...bus.Message) {
	t.Helper()
	for _, m := range msgs {
		m.GetMeta().Tenant = tenant
		if err := c.Apply(context.Background(), &bus.Event{Meta: m.GetMeta(), Msg: m}); err != nil {
			t.Fatal(err)
		}
	}
}

func meta() *commonv1.EventMeta { return &commonv1.EventMeta{} }

func importVersion(t *testing.T, c *catalog.Catalog, tenant, src string, v uint32, hosts []string, tools ...string) {
	t.Helper()
	apply(t, c, tenant, &controlv1.SourceVersionStarted{Meta: meta(), SourceId: src, Version: v, Name: src, Slug: src, ProposedHosts: hosts})
	for _, n := range tools {
		apply(t, c, tenant, &controlv1.ToolProposed{Meta: meta(), SourceId: src, Version: v,
			Tool: &controlv1.ToolSpec{Name: n, Description: "does " + n, Operation: &controlv1.OperationSpec{Method: "GET", Path: "/" + n}}})
	}
	apply(t, c, tenant, &controlv1.SourceVersionCommitted{Meta: meta(), SourceId: src, Version: v, ToolCount: uint32(len(tools))})
}

func code(err error) errcode.Code {
	if err == nil {
		return ""
	}
	return errcode.CodeOf(err)
}

func approveIn(t *testing.T, c *catalog.Catalog, tenant string, cmd *rpcv1.ApproveSourceVersion) command.Plan {
	t.Helper()
	p, err := command.Approve(c, cmd)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	apply(t, c, tenant, p.Events...)
	return p
}

func TestApprove(t *testing.T) {
	c := catalog.New()
	importVersion(t, c, "demo", "src_a", 1, []string{"api.example.com"}, "list_pets", "get_pet")
	importVersion(t, c, "demo", "src_b", 1, nil, "list_pets", "other")
	importVersion(t, c, "demo", "src_dots", 1, nil, "bad.name")

	t.Run("digests and default hosts", func(t *testing.T) {
		p := approveIn(t, c, "demo", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 1, AllowedPrefixes: []string{"10.1.2.3/8"}})
		if p.Aggregate != bus.AggSourcePolicy || p.AggregateID != "src_a" || len(p.Events) != 2 {
			t.Fatalf("plan %+v", p)
		}
		ap := p.Events[0].(*controlv1.SourceVersionApproved)
		v, _ := c.Version("demo", "src_a", 1)
		if len(ap.GetTools()) != 2 {
			t.Fatalf("tools %v", ap.GetTools())
		}
		for _, tl := range ap.GetTools() {
			want, _ := catalog.ToolDigest(v.Tools[tl.GetName()])
			if string(tl.GetDigest()) != string(want) {
				t.Errorf("digest of %s does not match", tl.GetName())
			}
		}
		allow := p.Events[1].(*controlv1.HostAllowlistSet)
		if strings.Join(ap.GetAllowedHosts(), ",") != "api.example.com" || strings.Join(allow.GetHosts(), ",") != "api.example.com" {
			t.Errorf("hosts %v %v", ap.GetAllowedHosts(), allow.GetHosts())
		}
		if strings.Join(allow.GetAllowedPrefixes(), ",") != "10.0.0.0/8" {
			t.Errorf("prefixes %v", allow.GetAllowedPrefixes())
		}
		if tl, ok := c.Tool("demo", "get_pet"); !ok || !tl.Approved {
			t.Errorf("tool not approved in the catalog: %+v", tl)
		}
	})
	t.Run("re-approving the same source is no collision", func(t *testing.T) {
		if _, err := command.Approve(c, &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 1}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("collision names the tools", func(t *testing.T) {
		_, err := command.Approve(c, &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_b", Version: 1})
		if code(err) != errcode.Conflict || !strings.HasSuffix(err.Error(), ": list_pets") {
			t.Fatalf("collision: %v", err)
		}
	})
	bad := []struct {
		name string
		cmd  *rpcv1.ApproveSourceVersion
		want errcode.Code
	}{
		{"unknown source", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_x", Version: 1}, errcode.NotFound},
		{"unknown version", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 9}, errcode.NotFound},
		{"no version", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a"}, errcode.InvalidArgument},
		{"bad tenant", &rpcv1.ApproveSourceVersion{Tenant: "Demo.*", SourceId: "src_a", Version: 1}, errcode.InvalidID},
		{"bad source", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "a.b", Version: 1}, errcode.InvalidID},
		{"uppercase host", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 1, AllowedHosts: []string{"API.example.com"}}, errcode.InvalidArgument},
		{"url as host", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 1, AllowedHosts: []string{"https://api.example.com/"}}, errcode.InvalidArgument},
		{"bad port", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 1, AllowedHosts: []string{"api.example.com:99999"}}, errcode.InvalidArgument},
		{"bad prefix", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 1, AllowedPrefixes: []string{"10.0.0.0"}}, errcode.InvalidArgument},
		{"tool name unfit for grants", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_dots", Version: 1}, errcode.InvalidArgument},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := command.Approve(c, tt.cmd); code(err) != tt.want {
				t.Fatalf("Approve = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	for h, ok := range map[string]bool{
		"api.example.com": true, "api.example.com:8443": true, "127.0.0.1": true, "127.0.0.1:8080": true,
		"[::1]:443": true, "::1": true, "localhost": true,
		"": false, "API.example.com": false, "api.example.com:0": false, "api.example.com:x": false,
		"-bad.example.com": false, "a..b": false, "a/b": false, "[::1]": false, "host:1:2": false, "fe80::1%eth0": false,
	} {
		_, err := command.Hosts("allowed_hosts", []string{h})
		if (err == nil) != ok {
			t.Errorf("Hosts(%q) = %v, want ok=%v", h, err, ok)
		}
	}
	got, err := command.Hosts("allowed_hosts", []string{"b.example.com", "a.example.com", "b.example.com"})
	if err != nil || strings.Join(got, ",") != "a.example.com,b.example.com" {
		t.Errorf("Hosts sorted/deduplicated = %v %v", got, err)
	}
}

func TestSelectAndGrant(t *testing.T) {
	c := catalog.New()
	importVersion(t, c, "demo", "src_a", 1, nil, "list_pets", "get_pet")
	importVersion(t, c, "demo", "src_p", 1, nil, "pending")
	approveIn(t, c, "demo", &rpcv1.ApproveSourceVersion{Tenant: "demo", SourceId: "src_a", Version: 1})

	p, err := command.Select(c, &rpcv1.SelectOperations{Tenant: "demo", SourceId: "src_a", Tools: []string{"list_pets", "list_pets"}})
	if err != nil || len(p.Events) != 1 || strings.Join(p.Events[0].(*controlv1.OperationsSelected).GetTools(), ",") != "list_pets" {
		t.Fatalf("select: %v %+v", err, p)
	}
	if _, err := command.Select(c, &rpcv1.SelectOperations{Tenant: "demo", SourceId: "src_a", Tools: []string{"nope"}}); code(err) != errcode.NotFound {
		t.Fatalf("select of an unknown tool: %v", err)
	}
	if _, err := command.Select(c, &rpcv1.SelectOperations{Tenant: "demo", SourceId: "src_p", Tools: []string{"pending"}}); code(err) != errcode.NotFound {
		t.Fatalf("select in an unapproved source: %v", err)
	}

	ids := 0
	newID := func() string { ids++; return "grt_" + strings.Repeat("a", ids) }
	grants := []struct {
		name string
		cmd  *rpcv1.AddGrant
		want errcode.Code
	}{
		{"agent", &rpcv1.AddGrant{Tenant: "demo", Tool: "list_pets", SubjectType: "agent", SubjectId: "a1"}, ""},
		{"user", &rpcv1.AddGrant{Tenant: "demo", Tool: "list_pets", SubjectType: "user", SubjectId: "alice"}, ""},
		{"unapproved tool", &rpcv1.AddGrant{Tenant: "demo", Tool: "pending", SubjectType: "agent", SubjectId: "a1"}, errcode.NotFound},
		{"unknown tool", &rpcv1.AddGrant{Tenant: "demo", Tool: "nope", SubjectType: "agent", SubjectId: "a1"}, errcode.NotFound},
		{"other tenant", &rpcv1.AddGrant{Tenant: "other", Tool: "list_pets", SubjectType: "agent", SubjectId: "a1"}, errcode.NotFound},
		{"bad subject type", &rpcv1.AddGrant{Tenant: "demo", Tool: "list_pets", SubjectType: "group", SubjectId: "a1"}, errcode.InvalidArgument},
		{"bad subject", &rpcv1.AddGrant{Tenant: "demo", Tool: "list_pets", SubjectType: "user", SubjectId: "alice@example.com"}, errcode.InvalidID},
		{"bad tool", &rpcv1.AddGrant{Tenant: "demo", Tool: "a b", SubjectType: "user", SubjectId: "alice"}, errcode.InvalidArgument},
	}
	for _, tt := range grants {
		t.Run("grant "+tt.name, func(t *testing.T) {
			p, err := command.Grant(c, tt.cmd, newID)
			if code(err) != tt.want {
				t.Fatalf("Grant = %v, want %q", err, tt.want)
			}
			if err == nil {
				apply(t, c, "demo", p.Events...)
			}
		})
	}
	t.Run("same grant twice is one grant", func(t *testing.T) {
		p, err := command.Grant(c, &rpcv1.AddGrant{Tenant: "demo", Tool: "list_pets", SubjectType: "agent", SubjectId: "a1"}, newID)
		if err != nil || len(p.Events) != 0 || p.ReplyID != "grt_a" {
			t.Fatalf("second grant: %v %+v", err, p)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		p, err := command.RevokeGrant(c, &rpcv1.RevokeGrant{Tenant: "demo", GrantId: "grt_a"})
		if err != nil || len(p.Events) != 1 {
			t.Fatalf("revoke: %v", err)
		}
		apply(t, c, "demo", p.Events...)
		if p, err := command.RevokeGrant(c, &rpcv1.RevokeGrant{Tenant: "demo", GrantId: "grt_a"}); err != nil || len(p.Events) != 0 {
			t.Fatalf("second revoke: %v %+v", err, p)
		}
		if _, err := command.RevokeGrant(c, &rpcv1.RevokeGrant{Tenant: "other", GrantId: "grt_a"}); code(err) != errcode.NotFound {
			t.Fatalf("revoke in another tenant: %v", err)
		}
	})
}

type keyIndex map[string]struct {
	agent   string
	revoked bool
}

func (k keyIndex) Key(tenant, id string) (string, bool, bool) {
	e, ok := k[tenant+"/"+id]
	return e.agent, e.revoked, ok
}

func TestKeys(t *testing.T) {
	c := catalog.New()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	hash := make([]byte, 32)
	hash[0] = 1
	newID := func() string { return "key_1" }
	ok := &rpcv1.IssueAgentKey{Tenant: "demo", AgentId: "a1", User: "alice", Environment: "dev", Surface: "ci", KeyHash: hash, Prefix: "mgw_abcd1234",
		ExpiresAt: timestamppb.New(now.Add(time.Hour))}
	p, err := command.IssueKey(c, ok, now, newID)
	if err != nil || p.ReplyID != "key_1" || p.AggregateID != "a1" || p.Aggregate != bus.AggAgent {
		t.Fatalf("issue: %v %+v", err, p)
	}
	apply(t, c, "demo", p.Events...)
	mod := func(f func(*rpcv1.IssueAgentKey)) *rpcv1.IssueAgentKey {
		h := make([]byte, 32)
		h[0] = 2
		m := &rpcv1.IssueAgentKey{Tenant: "demo", AgentId: "a1", KeyHash: h, Prefix: "mgw_x"}
		f(m)
		return m
	}
	bad := []struct {
		name string
		cmd  *rpcv1.IssueAgentKey
		want errcode.Code
	}{
		{"hash registered", mod(func(m *rpcv1.IssueAgentKey) { m.KeyHash = hash }), errcode.Conflict},
		{"short hash", mod(func(m *rpcv1.IssueAgentKey) { m.KeyHash = hash[:16] }), errcode.InvalidArgument},
		{"long prefix", mod(func(m *rpcv1.IssueAgentKey) { m.Prefix = "mgw_0123456789abcdef" }), errcode.InvalidArgument},
		{"no prefix", mod(func(m *rpcv1.IssueAgentKey) { m.Prefix = "" }), errcode.InvalidArgument},
		{"past expiry", mod(func(m *rpcv1.IssueAgentKey) { m.ExpiresAt = timestamppb.New(now.Add(-time.Second)) }), errcode.InvalidArgument},
		{"bad agent", mod(func(m *rpcv1.IssueAgentKey) { m.AgentId = "A1" }), errcode.InvalidID},
		{"bad user", mod(func(m *rpcv1.IssueAgentKey) { m.User = "a.b" }), errcode.InvalidID},
		{"control character in workload", mod(func(m *rpcv1.IssueAgentKey) { m.Workload = "x\ny" }), errcode.InvalidArgument},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := command.IssueKey(c, tt.cmd, now, newID); code(err) != tt.want {
				t.Fatalf("IssueKey = %v, want %s", err, tt.want)
			}
		})
	}
	idx := keyIndex{"demo/key_1": {agent: "a1"}, "demo/key_2": {agent: "a2", revoked: true}}
	if p, err := command.RevokeKey(idx, &rpcv1.RevokeAgentKey{Tenant: "demo", KeyId: "key_1"}); err != nil || len(p.Events) != 1 || p.AggregateID != "a1" {
		t.Fatalf("revoke key: %v %+v", err, p)
	}
	if p, err := command.RevokeKey(idx, &rpcv1.RevokeAgentKey{Tenant: "demo", KeyId: "key_2"}); err != nil || len(p.Events) != 0 {
		t.Fatalf("revoke a revoked key: %v %+v", err, p)
	}
	if _, err := command.RevokeKey(idx, &rpcv1.RevokeAgentKey{Tenant: "other", KeyId: "key_1"}); !errors.Is(err, &errcode.Error{Code: errcode.NotFound}) {
		t.Fatalf("revoke another tenant's key: %v", err)
	}
}
