package schemas

import (
	"fmt"
	"regexp"
	"strings"
)

// LocalSuffix names the per-server table behind a Distributed table in the
// cluster schema: table T stores its rows in T_local on every server.
const LocalSuffix = "_local"

// ZooKeeperPath is where a replicated local table keeps its replication
// state; {shard} is the server's macro, {db} and {table} are filled in.
const ZooKeeperPath = "/clickhouse/tables/{shard}/{db}/{table}"

var clusterNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// ValidClusterName reports whether name can name a cluster of the server's
// remote_servers section in the generated DDL: letters, digits, '_', '.'
// and '-'.
func ValidClusterName(name string) bool { return clusterNameRe.MatchString(name) }

// ClusterDDL rewrites the single-node DDL of this package for a ClickHouse
// cluster, so that both come from the same .sql files:
//
//   - CREATE TABLE T (...) ENGINE = XMergeTree(args) ... becomes a local table
//     T_local ON CLUSTER with engine ReplicatedXMergeTree(path, '{replica}',
//     args) and the same PARTITION BY / ORDER BY, plus a Distributed table T
//     ON CLUSTER with the same columns over it, sharded by cityHash64(msisdn)
//     when the table has an msisdn column (a subscriber's rows, and the
//     duplicates among them, meet on one shard, where FINAL merges them),
//     else by cityHash64 of its sorting key (duplicates share it), else by
//     rand();
//   - CREATE VIEW runs ON CLUSTER over the Distributed names;
//   - CREATE MATERIALIZED VIEW ... TO runs ON CLUSTER and reads and writes
//     the local tables (it sees the inserts of its own server);
//   - ALTER TABLE ... ADD/DROP/MODIFY/RENAME/COMMENT COLUMN applies ON CLUSTER
//     to the local table and then the Distributed one; other ALTERs (data
//     mutations, partitions) to the local table only;
//   - DROP TABLE drops both tables, DROP of a view the view;
//   - INSERT INTO T ... SELECT (a backfill) runs once, on the server the
//     migration runs on, as written: it reads and writes the Distributed
//     tables, which reach every shard. A Distributed table may deliver its
//     rows to the shards after the statement returns.
//
// Any other statement is refused: a migration that cannot be rewritten
// fails in the golden test rather than on a production cluster. A ClusterDDL
// remembers the tables it has seen, so statements must come in migration
// order.
type ClusterDDL struct {
	database string
	cluster  string // as written in DDL: bare, or backquoted
	tables   map[string]bool
	views    map[string]bool
}

// NewClusterDDL returns a rewriter for database on cluster (a name from the
// servers' remote_servers section).
func NewClusterDDL(database, cluster string) (*ClusterDDL, error) {
	if !ValidDatabaseName(database) {
		return nil, fmt.Errorf("database name %q: use letters, digits and underscores, starting with a letter", database)
	}
	if !ValidClusterName(cluster) {
		return nil, fmt.Errorf("cluster name %q: use letters, digits, '_', '.' and '-'", cluster)
	}
	quoted := cluster
	if !identRe.MatchString(cluster) {
		quoted = "`" + cluster + "`"
	}
	return &ClusterDDL{database: database, cluster: quoted, tables: map[string]bool{}, views: map[string]bool{}}, nil
}

// ClusterMigrations returns the migrations of Migrations(database),
// rewritten for cluster. The versions and names are the same, so a
// cluster's schema_migrations reads like a single server's.
func ClusterMigrations(database, cluster string) ([]Migration, error) {
	c, err := NewClusterDDL(database, cluster)
	if err != nil {
		return nil, err
	}
	return c.Migrations()
}

// Migrations rewrites every migration of Migrations for the cluster.
func (c *ClusterDDL) Migrations() ([]Migration, error) {
	single, err := Migrations(c.database)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, 0, len(single))
	for _, m := range single {
		cm := Migration{Version: m.Version, Name: m.Name}
		for _, stmt := range m.Statements {
			rewritten, err := c.Rewrite(stmt)
			if err != nil {
				return nil, fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
			}
			cm.Statements = append(cm.Statements, rewritten...)
		}
		out = append(out, cm)
	}
	return out, nil
}

// CreateDatabase returns the statement that creates the database on every
// server of the cluster.
func (c *ClusterDDL) CreateDatabase() string {
	return fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s ON CLUSTER %s", c.database, c.cluster)
}

const ident = `[A-Za-z_][A-Za-z0-9_]*`

var (
	createTableRe = regexp.MustCompile(`(?is)^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(` + ident + `)\.(` + ident + `)\s*\(`)
	createViewRe  = regexp.MustCompile(`(?is)^CREATE\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(` + ident + `)\.(` + ident + `)\s+AS\s`)
	createMVRe    = regexp.MustCompile(`(?is)^CREATE\s+MATERIALIZED\s+VIEW\s+(IF\s+NOT\s+EXISTS\s+)?(` + ident + `)\.(` + ident + `)\s`)
	alterTableRe  = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+(` + ident + `)\.(` + ident + `)\s+(\S.*)$`)
	insertRe      = regexp.MustCompile(`(?is)^INSERT\s+INTO\s+(` + ident + `)\.(` + ident + `)\s*(?:\([^)]*\)\s*)?SELECT\s`)
	dropRe        = regexp.MustCompile(`(?is)^DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?(` + ident + `)\.(` + ident + `)\s*$`)
	engineRe      = regexp.MustCompile(`(?is)^\s*ENGINE\s*=\s*(` + ident + `)\s*`)
	columnAlterRe = regexp.MustCompile(`(?is)^(ADD|DROP|MODIFY|RENAME|COMMENT)\s+COLUMN\s`)
	orderByRe     = regexp.MustCompile(`(?is)\bORDER\s+BY\s`)
	clauseRe      = regexp.MustCompile(`(?is)\b(PRIMARY\s+KEY|SAMPLE\s+BY|SETTINGS|TTL)\b`)
	mvToRe        = regexp.MustCompile(`(?is)^\s*TO\s`)
	qualifiedRe   = regexp.MustCompile(`\b(` + ident + `)\.(` + ident + `)\b`)
)

// Rewrite returns the cluster statements for one single-node statement
// (with the database name already in it, as Migrations returns them).
func (c *ClusterDDL) Rewrite(stmt string) ([]string, error) {
	stmt = strings.TrimSpace(stmt)
	switch {
	case createTableRe.MatchString(stmt):
		return c.createTable(stmt)
	case createViewRe.MatchString(stmt):
		m := createViewRe.FindStringSubmatchIndex(stmt)
		if err := c.checkDatabase(stmt[m[4]:m[5]], stmt); err != nil {
			return nil, err
		}
		c.views[stmt[m[6]:m[7]]] = true
		return []string{c.onCluster(stmt, m[7])}, nil
	case createMVRe.MatchString(stmt):
		return c.createMaterializedView(stmt)
	case alterTableRe.MatchString(stmt):
		return c.alterTable(stmt)
	case dropRe.MatchString(stmt):
		return c.drop(stmt)
	case insertRe.MatchString(stmt):
		m := insertRe.FindStringSubmatch(stmt)
		if err := c.checkDatabase(m[1], stmt); err != nil {
			return nil, err
		}
		if c.tables[m[2]] {
			return []string{stmt}, nil
		}
	}
	return nil, fmt.Errorf("cluster DDL: cannot rewrite this statement for a cluster (known: CREATE TABLE, CREATE VIEW, CREATE MATERIALIZED VIEW ... TO, ALTER TABLE, DROP, INSERT INTO a table created by an earlier statement ... SELECT): %.80s", stmt)
}

// onCluster inserts ON CLUSTER after the table name that ends at end.
func (c *ClusterDDL) onCluster(stmt string, end int) string {
	return stmt[:end] + " ON CLUSTER " + c.cluster + stmt[end:]
}

func (c *ClusterDDL) checkDatabase(db, stmt string) error {
	if db != c.database {
		return fmt.Errorf("cluster DDL: statement names database %s, not %s: %.80s", db, c.database, stmt)
	}
	return nil
}

func (c *ClusterDDL) createTable(stmt string) ([]string, error) {
	m := createTableRe.FindStringSubmatchIndex(stmt)
	db, table := stmt[m[4]:m[5]], stmt[m[6]:m[7]]
	ifNotExists := ""
	if m[2] >= 0 {
		ifNotExists = "IF NOT EXISTS "
	}
	if err := c.checkDatabase(db, stmt); err != nil {
		return nil, err
	}
	open := m[1] - 1
	end := closingParen(stmt, open)
	if end < 0 {
		return nil, fmt.Errorf("cluster DDL: table %s: unbalanced parentheses in the column list", table)
	}
	columnsBlock := stmt[open : end+1]
	var columns []string
	for _, def := range splitTopLevel(stmt[open+1 : end]) {
		name := columnName(def)
		switch strings.ToUpper(name) {
		case "INDEX", "CONSTRAINT", "PROJECTION":
			return nil, fmt.Errorf("cluster DDL: table %s: %s definitions are not rewritten for a Distributed table yet", table, name)
		}
		columns = append(columns, name)
	}

	rest := stmt[end+1:]
	em := engineRe.FindStringSubmatchIndex(rest)
	if em == nil {
		return nil, fmt.Errorf("cluster DDL: table %s: no ENGINE = after the column list", table)
	}
	engine, args, tail := rest[em[2]:em[3]], "", rest[em[3]:]
	if strings.HasPrefix(rest[em[1]:], "(") {
		tail = rest[em[1]:]
		close := closingParen(tail, 0)
		if close < 0 {
			return nil, fmt.Errorf("cluster DDL: table %s: unbalanced parentheses in the engine arguments", table)
		}
		args, tail = strings.TrimSpace(tail[1:close]), tail[close+1:]
	}
	if !strings.HasSuffix(engine, "MergeTree") || strings.HasPrefix(engine, "Replicated") {
		return nil, fmt.Errorf("cluster DDL: table %s: engine %s has no replicated form; the cluster schema replicates *MergeTree tables only", table, engine)
	}
	local := table + LocalSuffix
	path := strings.NewReplacer("{db}", c.database, "{table}", local).Replace(ZooKeeperPath)
	replicatedArgs := fmt.Sprintf("'%s', '{replica}'", path)
	if args != "" {
		replicatedArgs += ", " + args
	}
	head := "CREATE TABLE " + ifNotExists
	localStmt := fmt.Sprintf("%s%s.%s ON CLUSTER %s\n%s\nENGINE = Replicated%s(%s)%s",
		head, c.database, local, c.cluster, columnsBlock, engine, replicatedArgs, strings.TrimRight(tail, " \t\n"))
	distStmt := fmt.Sprintf("%s%s.%s ON CLUSTER %s\n%s\nENGINE = Distributed(%s, %s, %s, %s)",
		head, c.database, table, c.cluster, columnsBlock, c.cluster, c.database, local, shardingKey(columns, tail))
	c.tables[table] = true
	return []string{localStmt, distStmt}, nil
}

// shardingKey picks the Distributed table's sharding expression: the
// subscriber when the table has one, else the sorting key (rows that
// ReplacingMergeTree must merge share it), else rand().
func shardingKey(columns []string, tail string) string {
	for _, col := range columns {
		if col == "msisdn" {
			return "cityHash64(msisdn)"
		}
	}
	if key := sortingKey(tail); len(key) > 0 {
		return "cityHash64(" + strings.Join(key, ", ") + ")"
	}
	return "rand()"
}

// sortingKey returns the expressions of the ORDER BY clause of a table's
// engine clauses, nil when there is none (or it is tuple()).
func sortingKey(tail string) []string {
	var loc []int
	for _, m := range orderByRe.FindAllStringIndex(tail, -1) {
		if depthAt(tail, m[0]) == 0 {
			loc = m
			break
		}
	}
	if loc == nil {
		return nil
	}
	expr := tail[loc[1]:]
	for _, m := range clauseRe.FindAllStringIndex(expr, -1) {
		if depthAt(expr, m[0]) == 0 {
			expr = expr[:m[0]]
			break
		}
	}
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "(") && closingParen(expr, 0) == len(expr)-1 {
		expr = expr[1 : len(expr)-1]
	}
	var out []string
	for _, e := range splitTopLevel(expr) {
		if e = strings.Join(strings.Fields(e), " "); e != "" && e != "tuple()" {
			out = append(out, e)
		}
	}
	return out
}

func (c *ClusterDDL) createMaterializedView(stmt string) ([]string, error) {
	m := createMVRe.FindStringSubmatchIndex(stmt)
	if err := c.checkDatabase(stmt[m[4]:m[5]], stmt); err != nil {
		return nil, err
	}
	rest := stmt[m[7]:]
	if !mvToRe.MatchString(rest) {
		return nil, fmt.Errorf("cluster DDL: materialized view %s: write it with TO a table of the schema (its inner table would not be replicated)", stmt[m[6]:m[7]])
	}
	// On a cluster an insert reaches one server's local table, so the view
	// reads and writes local tables; the target's replication does the rest.
	rest = qualifiedRe.ReplaceAllStringFunc(rest, func(q string) string {
		db, table, _ := strings.Cut(q, ".")
		if db == c.database && c.tables[table] {
			return q + LocalSuffix
		}
		return q
	})
	c.views[stmt[m[6]:m[7]]] = true
	return []string{stmt[:m[7]] + " ON CLUSTER " + c.cluster + rest}, nil
}

func (c *ClusterDDL) alterTable(stmt string) ([]string, error) {
	m := alterTableRe.FindStringSubmatch(stmt)
	db, table, action := m[1], m[2], m[3]
	if err := c.checkDatabase(db, stmt); err != nil {
		return nil, err
	}
	if !c.tables[table] {
		return nil, fmt.Errorf("cluster DDL: ALTER TABLE %s.%s: not a table created by an earlier statement: %.80s", db, table, stmt)
	}
	out := []string{fmt.Sprintf("ALTER TABLE %s.%s%s ON CLUSTER %s %s", db, table, LocalSuffix, c.cluster, action)}
	if columnAlterRe.MatchString(action) {
		out = append(out, fmt.Sprintf("ALTER TABLE %s.%s ON CLUSTER %s %s", db, table, c.cluster, action))
	}
	return out, nil
}

func (c *ClusterDDL) drop(stmt string) ([]string, error) {
	m := dropRe.FindStringSubmatch(stmt)
	kind, ifExists, db, name := strings.ToUpper(m[1]), strings.ToUpper(strings.Join(strings.Fields(m[2]), " ")), m[3], m[4]
	if err := c.checkDatabase(db, stmt); err != nil {
		return nil, err
	}
	if ifExists != "" {
		ifExists += " "
	}
	drop := func(n string) string {
		return fmt.Sprintf("DROP %s %s%s.%s ON CLUSTER %s", kind, ifExists, db, n, c.cluster)
	}
	switch {
	case c.tables[name]:
		delete(c.tables, name)
		return []string{drop(name), drop(name + LocalSuffix)}, nil
	case c.views[name]:
		delete(c.views, name)
		return []string{drop(name)}, nil
	}
	return nil, fmt.Errorf("cluster DDL: DROP %s.%s: not a table or view created by an earlier statement", db, name)
}

// columnName returns the first word of a column definition (unquoted).
func columnName(def string) string {
	def = strings.TrimSpace(def)
	if strings.HasPrefix(def, "`") {
		if end := strings.IndexByte(def[1:], '`'); end >= 0 {
			return def[1 : end+1]
		}
	}
	if i := strings.IndexFunc(def, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }); i >= 0 {
		return def[:i]
	}
	return def
}

// walk calls f for every byte of s outside quotes and comments, with the
// parenthesis depth before that byte; f returns false to stop.
func walk(s string, f func(i, depth int) bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\'' || ch == '"' || ch == '`':
			for i++; i < len(s) && s[i] != ch; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case ch == '-' && i+1 < len(s) && s[i+1] == '-':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		default:
			if !f(i, depth) {
				return
			}
			switch ch {
			case '(':
				depth++
			case ')':
				depth--
			}
		}
	}
}

// closingParen returns the index of the parenthesis closing the one at open,
// -1 when there is none.
func closingParen(s string, open int) int {
	found := -1
	walk(s[open:], func(i, depth int) bool {
		if s[open+i] == ')' && depth == 1 {
			found = open + i
			return false
		}
		return true
	})
	return found
}

// depthAt returns the parenthesis depth at index at of s.
func depthAt(s string, at int) int {
	d := 0
	walk(s, func(i, depth int) bool {
		d = depth
		return i < at
	})
	return d
}

// splitTopLevel splits s at commas outside parentheses, quotes and comments,
// and drops comments.
func splitTopLevel(s string) []string {
	var parts []string
	var cur strings.Builder
	last := 0
	flush := func(upto int) {
		cur.WriteString(stripComments(s[last:upto]))
		if p := strings.TrimSpace(cur.String()); p != "" {
			parts = append(parts, p)
		}
		cur.Reset()
	}
	walk(s, func(i, depth int) bool {
		if s[i] == ',' && depth == 0 {
			flush(i)
			last = i + 1
		}
		return true
	})
	flush(len(s))
	return parts
}

// stripComments removes -- comments (outside quotes) from s.
func stripComments(s string) string {
	if !strings.Contains(s, "--") {
		return s
	}
	var b strings.Builder
	prev, inQuote := 0, byte(0)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQuote != 0:
			if ch == '\\' {
				i++
			} else if ch == inQuote {
				inQuote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			inQuote = ch
		case ch == '-' && i+1 < len(s) && s[i+1] == '-':
			b.WriteString(s[prev:i])
			for i < len(s) && s[i] != '\n' {
				i++
			}
			prev = i
		}
	}
	b.WriteString(s[prev:])
	return b.String()
}
