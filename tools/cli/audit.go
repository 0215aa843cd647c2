package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpgw/mcpgw/tools/client"
)

// maxAuditLimit bounds --limit.
const maxAuditLimit = 10000

// auditColumns are the columns of the audit table: a header and the row
// field (snake_case; camelCase is accepted too) it shows.
var auditColumns = []struct{ header, field string }{
	{"TIME", "time"},
	{"KIND", "kind"},
	{"GATE", "gate"},
	{"REASON", "reason"},
	{"CREDENTIAL", "credential_status"},
	{"POLICY", "policy_outcome"},
	{"ADAPTER", "adapter_outcome"},
	{"BINDING", "binding_id"},
}

func (r *run) auditCommand() *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "audit",
		Short: "Query the audit trail",
	})
	cmd.AddCommand(r.auditQueryCommand())
	return cmd
}

func (r *run) auditQueryCommand() *cobra.Command {
	var q client.AuditQuery
	cmd := &cobra.Command{
		Use:   "query (--request-id ID | --binding-id ID) [--limit N]",
		Short: "Show the audit rows of a request or of a binding",
		Long: `Query shows the audit rows of one request (--request-id) or of one
credential binding (--binding-id), newest first: time, kind, the gate that
refused (if any) and why, the credential status, the policy outcome, the
adapter outcome and the binding. Audit rows never hold secrets.`,
		Example: `  mcpgw audit query --request-id req_1234
  mcpgw audit query --binding-id bnd_1234 --limit 20 -o json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case q.RequestID != "" && q.BindingID != "":
				return usagef(cmd, "give either --request-id or --binding-id, not both")
			case q.RequestID == "" && q.BindingID == "":
				return usagef(cmd, "--request-id or --binding-id is required")
			case q.Limit < 1 || q.Limit > maxAuditLimit:
				return usagef(cmd, "--limit must be between 1 and %d", maxAuditLimit)
			}
			c, err := r.client(cmd, nil)
			if err != nil {
				return err
			}
			rows, err := c.Audit(cmd.Context(), r.tenant, q)
			if err != nil {
				return fmt.Errorf("query audit: %w", err)
			}
			if rows == nil {
				rows = []client.AuditRow{}
			}
			return r.emit(cmd, map[string]any{"rows": rows}, func(w io.Writer) error {
				if len(rows) == 0 {
					_, err := fmt.Fprintln(w, "No audit rows.")
					return err
				}
				headers := make([]string, len(auditColumns))
				for i, col := range auditColumns {
					headers[i] = col.header
				}
				t := newTable(w, headers...)
				for _, row := range rows {
					cells := make([]string, len(auditColumns))
					for i, col := range auditColumns {
						if col.field == "time" {
							cells[i] = auditTime(field(row, col.field))
						} else {
							cells[i] = orDash(auditString(field(row, col.field)))
						}
					}
					t.row(cells...)
				}
				return t.flush()
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.RequestID, "request-id", "", "show the rows of this request")
	f.StringVar(&q.BindingID, "binding-id", "", "show the rows of this credential binding")
	f.IntVar(&q.Limit, "limit", 50, "at most this many rows")
	return cmd
}

// field returns a row's value under its snake_case name or its camelCase
// form.
func field(row client.AuditRow, snake string) any {
	if v, ok := row[snake]; ok {
		return v
	}
	parts := strings.Split(snake, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return row[strings.Join(parts, "")]
}

// auditString renders a scalar cell.
func auditString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// auditTime renders a time as RFC 3339 in UTC, to the second. It accepts an
// RFC 3339 string, Unix seconds, or a {"seconds": N} object.
func auditTime(v any) string {
	var t time.Time
	switch x := v.(type) {
	case string:
		p, err := time.Parse(time.RFC3339Nano, x)
		if err != nil {
			return orDash(x)
		}
		t = p
	case float64:
		if x <= 0 || x > math.MaxInt32*4 {
			return orDash(auditString(x))
		}
		t = time.Unix(int64(x), 0)
	case map[string]any:
		s, ok := x["seconds"]
		if !ok {
			return orDash(auditString(x))
		}
		return auditTime(toNumber(s))
	default:
		return orDash(auditString(x))
	}
	return t.UTC().Truncate(time.Second).Format(time.RFC3339)
}

// toNumber turns a JSON number, or a number in a string (as protojson writes
// 64-bit integers), into a float64.
func toNumber(v any) any {
	if s, ok := v.(string); ok {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	}
	return v
}
