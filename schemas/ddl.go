package schemas

import (
	"embed"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

//go:embed clickhouse/*.sql
var ddlFiles embed.FS

// Migration is one numbered step of the ClickHouse schema. Its statements are
// idempotent, so a migration interrupted half way can be run again.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidDatabaseName reports whether name can be used as a database name
// without quoting; the pipeline refuses any other.
func ValidDatabaseName(name string) bool { return identRe.MatchString(name) }

// Migrations returns the schema steps in order, with {db} replaced by database.
func Migrations(database string) ([]Migration, error) {
	if !ValidDatabaseName(database) {
		return nil, fmt.Errorf("database name %q: use letters, digits and underscores, starting with a letter", database)
	}
	entries, err := ddlFiles.ReadDir("clickhouse")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: name must be NNN_description.sql", name)
		}
		body, err := ddlFiles.ReadFile(path.Join("clickhouse", name))
		if err != nil {
			return nil, err
		}
		m := Migration{Version: version, Name: rest}
		for _, stmt := range splitStatements(string(body)) {
			m.Statements = append(m.Statements, strings.ReplaceAll(stmt, "{db}", database))
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// splitStatements cuts a SQL file at semicolons that end a line and drops
// comment-only lines; the DDL files contain no semicolons inside strings.
func splitStatements(sql string) []string {
	var stmts []string
	var cur strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") || trimmed == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
	}
	return stmts
}
