package query_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/libs/errcode"

	"github.com/mcpgw/mcpgw/services/audit/internal/query"
	"github.com/mcpgw/mcpgw/services/audit/internal/row"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   query.Filter
		want query.Filter
		code errcode.Code
	}{
		{"default limit", query.Filter{Tenant: "t1", RequestID: "req_1"}, query.Filter{Tenant: "t1", RequestID: "req_1", Limit: 100}, ""},
		{"limit capped", query.Filter{Tenant: "t1", BindingID: "bnd_1", Limit: 5000}, query.Filter{Tenant: "t1", BindingID: "bnd_1", Limit: 1000}, ""},
		{"limit kept", query.Filter{Tenant: "t1", RequestID: "0af7651916cd43dd8448eb211c80319c", Limit: 7},
			query.Filter{Tenant: "t1", RequestID: "0af7651916cd43dd8448eb211c80319c", Limit: 7}, ""},
		{"uuid request", query.Filter{Tenant: "t1", RequestID: "3F2504E0-4F89-11D3-9A0C-0305E82C3301"},
			query.Filter{Tenant: "t1", RequestID: "3F2504E0-4F89-11D3-9A0C-0305E82C3301", Limit: 100}, ""},
		{"negative limit", query.Filter{Tenant: "t1", RequestID: "req_1", Limit: -1}, query.Filter{}, errcode.InvalidArgument},
		{"no tenant", query.Filter{RequestID: "req_1"}, query.Filter{}, errcode.InvalidID},
		{"bad tenant", query.Filter{Tenant: "t1.>", RequestID: "req_1"}, query.Filter{}, errcode.InvalidID},
		{"neither request nor binding", query.Filter{Tenant: "t1"}, query.Filter{}, errcode.InvalidArgument},
		{"bad binding", query.Filter{Tenant: "t1", BindingID: "bnd_1,bnd_2"}, query.Filter{}, errcode.InvalidID},
		{"bad request", query.Filter{Tenant: "t1", RequestID: "req'1"}, query.Filter{}, errcode.InvalidArgument},
		{"long request", query.Filter{Tenant: "t1", RequestID: strings.Repeat("a", 129)}, query.Filter{}, errcode.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := query.Normalize(tc.in)
			if tc.code != "" {
				if errcode.CodeOf(err) != tc.code {
					t.Fatalf("err = %v, want code %s", err, tc.code)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Normalize = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

type reader struct {
	got  query.Filter
	rows []row.Row
	err  error
}

func (r *reader) Select(_ context.Context, f query.Filter) ([]row.Row, error) {
	r.got = f
	return r.rows, r.err
}

func TestRun(t *testing.T) {
	r := &reader{rows: []row.Row{{EventID: "evt_1"}}}
	s, err := query.New(query.Config{Reader: r})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := s.Run(context.Background(), query.Filter{Tenant: "t1", RequestID: "req_1"})
	if err != nil || len(rows) != 1 || r.got.Limit != query.DefaultLimit {
		t.Errorf("run: %v, %d rows, reader saw %+v", err, len(rows), r.got)
	}

	r.err = errors.New("dial tcp 127.0.0.1:9000: connection refused")
	_, err = s.Run(context.Background(), query.Filter{Tenant: "t1", RequestID: "req_1"})
	if code, msg := errcode.Public(err); code != errcode.Unavailable || strings.Contains(msg, "127.0.0.1") {
		t.Errorf("store failure = %s %q, want unavailable without the cause", code, msg)
	}

	if _, err := query.New(query.Config{}); err == nil {
		t.Error("New without Reader succeeded")
	}
}
