package row_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpgw/mcpgw/libs/bus"
	auditv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/audit/v1"
	commonv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/common/v1"
	controlv1 "github.com/mcpgw/mcpgw/libs/gen/mcpgw/control/v1"

	"github.com/mcpgw/mcpgw/services/audit/internal/row"
)

// controlEventTypes lists every CONTROL event message: the messages of
// mcpgw.control.v1 that embed the shared metadata block.
func controlEventTypes(t *testing.T) []protoreflect.MessageDescriptor {
	t.Helper()
	var out []protoreflect.MessageDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("mcpgw.control.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Messages().Len(); i++ {
			md := fd.Messages().Get(i)
			if f := md.Fields().ByName("meta"); f != nil && f.Message() != nil && f.Message().FullName() == "mcpgw.common.v1.EventMeta" {
				out = append(out, md)
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no control event types registered")
	}
	return out
}

func newMessage(t *testing.T, name protoreflect.FullName) bus.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(name)
	if err != nil {
		t.Fatalf("find %s: %v", name, err)
	}
	m, ok := mt.New().Interface().(bus.Message)
	if !ok {
		t.Fatalf("%s is not an event", name)
	}
	return m
}

func TestEveryControlEventHasCode(t *testing.T) {
	seen := map[string]string{}
	for _, k := range bus.AuditKinds() {
		seen[k.Code] = string(k.Kind)
	}
	codeRE := regexp.MustCompile(`^CTL[0-9]{3}$`)
	types := map[string]bool{}
	for _, md := range controlEventTypes(t) {
		name := string(md.Name())
		types[name] = true
		code, ok := row.ControlCode(name)
		if !ok {
			t.Errorf("control event %s has no audit code: add it to the code table in control.go", name)
			continue
		}
		if !codeRE.MatchString(code) {
			t.Errorf("code %q of %s does not match %s", code, name, codeRE)
		}
		if other, dup := seen[code]; dup {
			t.Errorf("code %s used by %s and %s", code, other, name)
		}
		seen[code] = name
	}
	for _, c := range row.ControlCodes() {
		if !types[c.Event] {
			t.Errorf("code table names %s, which is not a control event", c.Event)
		}
	}
}

func TestEveryEventIsMapped(t *testing.T) {
	meta := &commonv1.EventMeta{Id: "evt_1", Tenant: "t1", Time: timestamppb.Now()}
	for _, k := range bus.AuditKinds() {
		t.Run(string(k.Kind), func(t *testing.T) {
			m := newMessage(t, protoreflect.FullName(k.Type))
			setMeta(m, meta, k.Type)
			r := row.FromAudit(&bus.Event{Subject: "audit.t1." + string(k.Kind), Seq: 3, Signer: k.Owner, Meta: m.GetMeta(), Msg: m})
			if r.Kind != string(k.Kind) || r.Code != k.Code {
				t.Errorf("kind, code = %q, %q; want %q, %q", r.Kind, r.Code, k.Kind, k.Code)
			}
			if strings.Contains(r.Detail, "unmapped") {
				t.Errorf("%s has no mapping function", k.Type)
			}
		})
	}
	for _, md := range controlEventTypes(t) {
		t.Run(string(md.Name()), func(t *testing.T) {
			m := newMessage(t, md.FullName())
			setMeta(m, meta, string(md.FullName()))
			r := row.FromControl(&bus.Event{Subject: "ctl.t1.x.y." + string(md.Name()), Seq: 3, Meta: m.GetMeta(), Msg: m})
			code, _ := row.ControlCode(string(md.Name()))
			if r.Kind != row.SnakeCase(string(md.Name())) || r.Code != code || code == "" {
				t.Errorf("kind, code = %q, %q", r.Kind, r.Code)
			}
			if strings.Contains(r.Detail, "unmapped") {
				t.Errorf("%s has no mapping", md.FullName())
			}
		})
	}
}

func setMeta(m bus.Message, meta *commonv1.EventMeta, typ string) {
	fd := m.ProtoReflect().Descriptor().Fields().ByName("meta")
	c := &commonv1.EventMeta{Id: meta.GetId(), Tenant: meta.GetTenant(), Time: meta.GetTime(), Type: typ}
	m.ProtoReflect().Set(fd, protoreflect.ValueOfMessage(c.ProtoReflect()))
}

// fill puts a distinct marker into every string and bytes field of m,
// recursively (one element in each repeated field), except meta.type, and
// returns marker → field path. Markers are valid subject tokens, so binding
// IDs are not filtered out.
func fill(m protoreflect.Message, prefix string, markers map[string]string) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		path := prefix + string(f.Name())
		if path == "meta.type" {
			continue
		}
		marker := func() string {
			mk := fmt.Sprintf("mk%dx", len(markers))
			markers[mk] = path
			return mk
		}
		switch {
		case f.IsMap():
			continue
		case f.IsList():
			l := m.Mutable(f).List()
			switch f.Kind() {
			case protoreflect.StringKind:
				l.Append(protoreflect.ValueOfString(marker()))
			case protoreflect.BytesKind:
				l.Append(protoreflect.ValueOfBytes([]byte(marker())))
			case protoreflect.MessageKind:
				el := l.NewElement()
				fill(el.Message(), path+".", markers)
				l.Append(el)
			}
		case f.Kind() == protoreflect.StringKind:
			m.Set(f, protoreflect.ValueOfString(marker()))
		case f.Kind() == protoreflect.BytesKind:
			m.Set(f, protoreflect.ValueOfBytes([]byte(marker())))
		case f.Kind() == protoreflect.MessageKind:
			if f.Message().FullName() == "google.protobuf.Timestamp" {
				m.Set(f, protoreflect.ValueOfMessage(timestamppb.New(time.Unix(1700000000, 0)).ProtoReflect()))
				continue
			}
			fill(m.Mutable(f).Message(), path+".", markers)
		}
	}
}

// rowText is every string a row records, detail decoded.
func rowText(t *testing.T, r row.Row) string {
	t.Helper()
	var d map[string]string
	if err := json.Unmarshal([]byte(r.Detail), &d); err != nil {
		t.Fatalf("detail is not a JSON object of strings: %v", err)
	}
	var b strings.Builder
	v := reflect.ValueOf(r)
	for i := 0; i < v.NumField(); i++ {
		if s, ok := v.Field(i).Interface().(string); ok {
			b.WriteString(s + "\n")
		}
	}
	for k, s := range d {
		b.WriteString(k + "=" + s + "\n")
	}
	return b.String()
}

var (
	auditMeta   = []string{"meta.id", "meta.tenant", "meta.request_id", "meta.actor.kind", "meta.actor.id", "meta.actor.via"}
	controlMeta = append(slices.Clone(auditMeta), "meta.actor.surface", "meta.aggregate", "meta.aggregate_id")
	principal   = []string{"principal.user", "principal.agent", "principal.workload", "principal.surface",
		"principal.reported_surface", "principal.environment", "principal.credential_fingerprint"}
	callBlock = []string{"call.tool", "call.source_id", "call.operation_id", "call.binding_ids", "call.gate", "call.reason",
		"call.credential_status", "call.policy_outcome", "call.adapter_outcome", "call.upstream_host"}
)

func join(parts ...[]string) []string { return slices.Concat(parts...) }

// copied lists, per event type, every field path whose value may appear in
// a row. Anything else an event carries (secret references, key hashes and
// prefixes, placements, schemas, document locations) must not.
var copied = map[string][]string{
	"mcpgw.audit.v1.EdgeRefused":          join(auditMeta, principal, callBlock, []string{"reason_code", "remote_addr", "method"}),
	"mcpgw.audit.v1.InvocationRefused":    join(auditMeta, principal, callBlock),
	"mcpgw.audit.v1.InvocationCompleted":  join(auditMeta, principal, callBlock),
	"mcpgw.audit.v1.CredentialUsed":       join(auditMeta, principal, callBlock),
	"mcpgw.audit.v1.CredentialResolved":   join(auditMeta, principal, callBlock),
	"mcpgw.audit.v1.CredentialDenied":     join(auditMeta, principal, callBlock),
	"mcpgw.audit.v1.AuthenticationFailed": join(auditMeta, principal, []string{"reason_code", "credential_kind"}),
	"mcpgw.audit.v1.CommandDenied":        join(auditMeta, principal, []string{"command", "reason"}),

	"mcpgw.control.v1.SourceVersionStarted":   join(controlMeta, []string{"source_id", "name", "format"}),
	"mcpgw.control.v1.ToolProposed":           join(controlMeta, []string{"source_id", "tool.name"}),
	"mcpgw.control.v1.SourceVersionCommitted": join(controlMeta, []string{"source_id"}),
	"mcpgw.control.v1.SourceVersionApproved":  join(controlMeta, []string{"source_id", "allowed_hosts"}),
	"mcpgw.control.v1.OperationsSelected":     join(controlMeta, []string{"source_id", "tools"}),
	"mcpgw.control.v1.HostAllowlistSet":       join(controlMeta, []string{"source_id", "hosts", "allowed_prefixes"}),
	"mcpgw.control.v1.GrantAdded":             join(controlMeta, []string{"grant_id", "tool", "subject_type", "subject_id"}),
	"mcpgw.control.v1.GrantRevoked":           join(controlMeta, []string{"grant_id"}),
	"mcpgw.control.v1.AgentKeyIssued":         join(controlMeta, []string{"agent_id", "key_id", "user", "environment", "surface", "workload"}),
	"mcpgw.control.v1.AgentKeyRevoked":        join(controlMeta, []string{"agent_id", "key_id"}),
	"mcpgw.control.v1.BindingCreated":         join(controlMeta, []string{"binding_id", "name", "strategy", "environment", "source_id", "scheme", "hosts"}),
	"mcpgw.control.v1.BindingDisabled":        join(controlMeta, []string{"binding_id"}),
	"mcpgw.control.v1.SecretWritten":          join(controlMeta, []string{"name"}),
}

func TestMappingCopiesOnlyListedFields(t *testing.T) {
	type eventType struct {
		name    protoreflect.FullName
		control bool
	}
	var types []eventType
	for _, k := range bus.AuditKinds() {
		types = append(types, eventType{protoreflect.FullName(k.Type), false})
	}
	for _, md := range controlEventTypes(t) {
		types = append(types, eventType{md.FullName(), true})
	}
	for _, et := range types {
		t.Run(string(et.name), func(t *testing.T) {
			want, ok := copied[string(et.name)]
			if !ok {
				t.Fatalf("no list of copied fields for %s: add one to this test", et.name)
			}
			m := newMessage(t, et.name)
			markers := map[string]string{}
			fill(m.ProtoReflect(), "", markers)
			m.GetMeta().Type = string(et.name)
			ev := &bus.Event{Subject: "s", Seq: 1, Meta: m.GetMeta(), Msg: m}
			var r row.Row
			if et.control {
				r = row.FromControl(ev)
			} else {
				r = row.FromAudit(ev)
			}
			text := rowText(t, r)
			var got []string
			for mk, path := range markers {
				if strings.Contains(text, mk) {
					got = append(got, path)
				}
			}
			sort.Strings(got)
			want = slices.Clone(want)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Errorf("copied fields:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestFromAuditColumns(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ev := &auditv1.CredentialUsed{
		Meta: &commonv1.EventMeta{Id: "evt_1", Type: "mcpgw.audit.v1.CredentialUsed", Time: timestamppb.New(now), Tenant: "t1", RequestId: "req_1"},
		Principal: &auditv1.Principal{User: "u1", Agent: "a1", Workload: "w1", Surface: "ci", ReportedSurface: "claude",
			Environment: "prod", CredentialFingerprint: "fp1"},
		Call: &auditv1.Call{Tool: "list_pets", SourceId: "src_1", SourceVersion: 2, OperationId: "listPets",
			BindingIds: []string{"bnd_a", "bnd_b", "Not.A.Token"}, CredentialStatus: "resolved", PolicyOutcome: "allowed",
			AdapterOutcome: "ok", UpstreamStatus: 70000, LatencyUs: 1234, UpstreamHost: "api.example.com"},
	}
	r := row.FromAudit(&bus.Event{Subject: "audit.t1.credential_used", Seq: 9, Signer: bus.Adapter, Meta: ev.Meta, Msg: ev})
	want := row.Row{
		Time: now, EventID: "evt_1", Tenant: "t1", Kind: "credential_used", Code: "ADP002", Service: "adapter",
		Subject: "audit.t1.credential_used", StreamSeq: 9, RequestID: "req_1", Surface: "ci", ReportedSurface: "claude",
		AgentID: "a1", UserID: "u1", Environment: "prod", Tool: "list_pets", SourceID: "src_1", OperationID: "listPets",
		BindingID: "bnd_a,bnd_b", CredentialStatus: "resolved", PolicyOutcome: "allowed", AdapterOutcome: "ok",
		UpstreamStatus: 65535, LatencyUS: 1234,
		Detail: `{"credential_fingerprint":"fp1","invalid_binding_ids":"1","source_version":"2","upstream_host":"api.example.com","workload":"w1"}`,
	}
	if r != want {
		t.Errorf("row:\n got %+v\nwant %+v", r, want)
	}
}

func TestFromControlColumns(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ev := &controlv1.BindingCreated{
		Meta: &commonv1.EventMeta{Id: "evt_2", Type: "mcpgw.control.v1.BindingCreated", Time: timestamppb.New(now), Tenant: "t1",
			RequestId: "req_2", Actor: &commonv1.Actor{Kind: "operator", Id: "admin", Surface: "cli", Via: "credential-broker"},
			Aggregate: "binding", AggregateId: "bnd_1", AggregateVersion: 1},
		BindingId: "bnd_1", Name: "petstore key", Strategy: "api_key", SecretRef: "local:t1/petstore",
		Placement: &controlv1.Placement{In: "header", Name: "X-Api-Key"}, Hosts: []string{"api.example.com", "b.example.com"},
		Environment: "prod", SourceId: "src_1", Scheme: "api_key",
	}
	r := row.FromControl(&bus.Event{Subject: "ctl.t1.binding.bnd_1.BindingCreated", Seq: 4, Signer: bus.Broker, Meta: ev.Meta, Msg: ev})
	want := row.Row{
		Time: now, EventID: "evt_2", Tenant: "t1", Kind: "binding_created", Code: "CTL011", Service: "credential-broker",
		Subject: "ctl.t1.binding.bnd_1.BindingCreated", StreamSeq: 4, RequestID: "req_2", Actor: "operator:admin", Surface: "cli",
		Environment: "prod", SourceID: "src_1", BindingID: "bnd_1",
		Detail: `{"actor_via":"credential-broker","aggregate":"binding","aggregate_id":"bnd_1","aggregate_version":"1",` +
			`"hosts":"api.example.com,b.example.com","name":"petstore key","scheme":"api_key","strategy":"api_key"}`,
	}
	if r != want {
		t.Errorf("row:\n got %+v\nwant %+v", r, want)
	}
}

func TestUserControlledStringsAreTrimmed(t *testing.T) {
	long := strings.Repeat("é", 1000)
	ev := &auditv1.InvocationRefused{
		Meta: &commonv1.EventMeta{Id: "evt_3", Type: "mcpgw.audit.v1.InvocationRefused", Tenant: "t1", RequestId: long},
		Call: &auditv1.Call{Tool: long, Reason: long, Gate: "schema", BindingIds: slices.Repeat([]string{strings.Repeat("b", 60)}, 100)},
	}
	r := row.FromAudit(&bus.Event{Subject: "audit.t1.invocation_refused", Meta: ev.Meta, Msg: ev})
	for name, s := range map[string]string{"tool": r.Tool, "reason": r.Reason, "request_id": r.RequestID} {
		if len(s) > row.TextBudget || !utf8.ValidString(s) || !strings.HasSuffix(s, "…") {
			t.Errorf("%s: %d bytes, valid %v, not marked as trimmed", name, len(s), utf8.ValidString(s))
		}
	}
	if len(r.BindingID) > row.ListBudget {
		t.Errorf("binding_id: %d bytes > %d", len(r.BindingID), row.ListBudget)
	}
}

func TestTrim(t *testing.T) {
	tests := []struct {
		in     string
		budget int
		want   string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijkl", 10, "abcdefg…"},
		{"ééééé", 8, "éé…"},
		{"bad\xffutf8", 20, "bad\uFFFDutf8"},
		{"abcdef", 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := row.Trim(tc.in, tc.budget); got != tc.want {
				t.Errorf("Trim(%q, %d) = %q, want %q", tc.in, tc.budget, got, tc.want)
			}
		})
	}
}

func TestSnakeCase(t *testing.T) {
	tests := map[string]string{
		"BindingCreated":       "binding_created",
		"SourceVersionStarted": "source_version_started",
		"X":                    "x",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := row.SnakeCase(in); got != want {
				t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
			}
		})
	}
}

func TestValuesMatchColumns(t *testing.T) {
	r := row.Row{Time: time.Date(2026, 1, 2, 23, 59, 59, 999, time.FixedZone("x", 3600))}
	v := r.Values()
	if len(v) != len(row.Columns) {
		t.Fatalf("%d values for %d columns", len(v), len(row.Columns))
	}
	if day := v[0].(time.Time); !day.Equal(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("event_date = %v", day)
	}
	if ts := v[1].(time.Time); ts.Nanosecond() != 0 || ts.Location() != time.UTC {
		t.Errorf("time = %v, want UTC seconds", ts)
	}
}
