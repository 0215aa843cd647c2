// Package deploy embeds the files operators deploy — the SpiceDB schema and
// the ClickHouse DDL — so that services and tests load exactly what
// production runs. It has no dependencies beyond the standard library.
package deploy

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

//go:embed spicedb/schema.zed
var spiceDBSchema string

//go:embed clickhouse/*.sql
var clickHouseFS embed.FS

// AuditEventsTable is the name of the audit table that ClickHouseDDL creates
// inside the database it is given.
const AuditEventsTable = "audit_events"

// databasePlaceholder is replaced in the DDL files by the database name.
const databasePlaceholder = "{database}"

var databaseName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]{0,63}$`)

// SpiceDBSchema returns the SpiceDB schema (deploy/spicedb/schema.zed) as
// written to SpiceDB with WriteSchema.
func SpiceDBSchema() string {
	return spiceDBSchema
}

// ValidateDatabaseName reports whether name may be used as a ClickHouse
// database name here: it must match ^[a-zA-Z_][a-zA-Z0-9_]{0,63}$, so it
// needs no quoting and cannot inject SQL.
func ValidateDatabaseName(name string) error {
	if !databaseName.MatchString(name) {
		return fmt.Errorf("invalid clickhouse database name %q: must match %s", name, databaseName)
	}
	return nil
}

// ClickHouseDDL returns the ClickHouse DDL statements, in the order they must
// run, with the database name substituted. Files under deploy/clickhouse run
// in lexical order; each statement is idempotent (IF NOT EXISTS), has no
// trailing semicolon and can be passed to Exec on its own. It fails when
// database is not a valid name (see ValidateDatabaseName).
func ClickHouseDDL(database string) ([]string, error) {
	if err := ValidateDatabaseName(database); err != nil {
		return nil, err
	}
	names, err := fs.Glob(clickHouseFS, "clickhouse/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list clickhouse ddl: %w", err)
	}
	sort.Strings(names)
	var stmts []string
	for _, name := range names {
		data, err := clickHouseFS.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		for _, stmt := range splitStatements(string(data)) {
			stmts = append(stmts, strings.ReplaceAll(stmt, databasePlaceholder, database))
		}
	}
	return stmts, nil
}

// splitStatements drops "--" comment lines and splits the rest on ";".
// The DDL files hold no string literals, so a ";" always ends a statement.
func splitStatements(sql string) []string {
	var b strings.Builder
	for line := range strings.Lines(sql) {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
	}
	var stmts []string
	for part := range strings.SplitSeq(b.String(), ";") {
		if stmt := strings.TrimSpace(part); stmt != "" {
			stmts = append(stmts, stmt)
		}
	}
	return stmts
}
