// Package warehouse is the pipeline's only door to ClickHouse: it applies the
// schema migrations of package schemas, inserts batches of facts and dead
// letters over the native protocol with named columns, and recomputes the
// per-subscriber aggregates from the facts. It does not decide what a valid
// event is (package schemas) or when to write (package consumers).
package warehouse

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/schemas"
)

// Warehouse holds a connection pool to one ClickHouse database.
type Warehouse struct {
	conn driver.Conn
	db   string
	log  zerolog.Logger
	ver  versionClock
}

// Open connects to ClickHouse and checks the server answers. It does not
// create the database: Migrate does.
func Open(ctx context.Context, cfg config.ClickHouse, log zerolog.Logger) (*Warehouse, error) {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{cfg.Addr},
		Auth: clickhouse.Auth{Username: cfg.User, Password: cfg.Password},
		// 18.16 refuses string settings sent by the client, so send none.
		DialTimeout:     5 * time.Second,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
		Compression:     &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse at %s: %w", cfg.Addr, err)
	}
	w := &Warehouse{conn: conn, db: cfg.Database, log: log.With().Str("component", "warehouse").Logger()}
	if err := w.Ping(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return w, nil
}

// Ping checks that the server answers.
func (w *Warehouse) Ping(ctx context.Context) error {
	if err := w.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse is not reachable: %w (is it running? `make clickhouse` or deploy/local/clickhouse.sh start starts the local one)", err)
	}
	return nil
}

// Close closes the connection pool.
func (w *Warehouse) Close() error { return w.conn.Close() }

// Database returns the database this warehouse writes to.
func (w *Warehouse) Database() string { return w.db }

// Conn exposes the connection for read queries by tests and tools.
func (w *Warehouse) Conn() driver.Conn { return w.conn }

// Migrate creates the database and applies every migration not yet recorded
// in schema_migrations. Safe to run concurrently with itself and repeatedly:
// every statement is idempotent.
func (w *Warehouse) Migrate(ctx context.Context) (applied []int, err error) {
	migrations, err := schemas.Migrations(w.db)
	if err != nil {
		return nil, err
	}
	stmts := []string{
		fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s", w.db),
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_migrations
(version UInt32, name String, applied_at DateTime) ENGINE = ReplacingMergeTree ORDER BY version`, w.db),
	}
	for _, s := range stmts {
		if err := w.conn.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	done := map[int]bool{}
	rows, err := w.conn.Query(ctx, fmt.Sprintf("SELECT DISTINCT version FROM %s.schema_migrations", w.db))
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, err
		}
		done[int(v)] = true
	}
	rows.Close()
	for _, m := range migrations {
		if done[m.Version] {
			continue
		}
		for _, s := range m.Statements {
			if err := w.migrateStatement(ctx, s); err != nil {
				return applied, fmt.Errorf("migration %03d_%s: %w", m.Version, m.Name, err)
			}
		}
		// 18.16 waits forever for data on INSERT ... VALUES with bound
		// arguments; inserts always go through a batch.
		record := func(int) []any { return []any{uint32(m.Version), m.Name, time.Now()} }
		if err := w.insert(ctx, "schema_migrations", []string{"version", "name", "applied_at"}, 1, record); err != nil {
			return applied, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
		w.log.Info().Int("version", m.Version).Str("name", m.Name).Msg("schema migration applied")
	}
	return applied, nil
}

// addColumnRe matches the start of a migration statement that adds a column:
// ALTER TABLE db.table ADD COLUMN column ...
var addColumnRe = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s+ADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*)\s`)

// addedColumn returns the database, table and column an ALTER TABLE ... ADD
// COLUMN statement adds; ok is false for any other statement. It refuses a
// statement with more actions than one (a comma outside parentheses and
// quotes): only a single-column ALTER can be made idempotent.
func addedColumn(stmt string) (db, table, col string, ok bool, err error) {
	m := addColumnRe.FindStringSubmatchIndex(stmt)
	if m == nil || strings.EqualFold(stmt[m[6]:m[7]], "IF") {
		return "", "", "", false, nil
	}
	depth, quoted := 0, false
	for i, r := range stmt[m[1]:] {
		switch {
		case r == '\'' && (i == 0 || stmt[m[1]+i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case r == '(':
			depth++
		case r == ')':
			depth--
		case r == ',' && depth == 0:
			return "", "", "", false, fmt.Errorf("migration statement alters more than one column, write one ALTER TABLE per column: %.80s", stmt)
		}
	}
	return stmt[m[2]:m[3]], stmt[m[4]:m[5]], stmt[m[6]:m[7]], true, nil
}

// migrateStatement runs one migration statement. 18.16 has no ADD COLUMN IF
// NOT EXISTS, so a single-column ALTER TABLE ... ADD COLUMN runs only when
// system.columns does not list the column yet (and an error is ignored when a
// concurrent migration added it meanwhile): like every other statement, it
// can be run again.
func (w *Warehouse) migrateStatement(ctx context.Context, stmt string) error {
	db, table, col, ok, err := addedColumn(stmt)
	switch {
	case err != nil:
		return err
	case !ok:
		return w.conn.Exec(ctx, stmt)
	}
	exists := func() (bool, error) {
		var n uint64
		err := w.conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
			db, table, col).Scan(&n)
		return n > 0, err
	}
	if has, err := exists(); err != nil || has {
		return err
	}
	if err = w.conn.Exec(ctx, stmt); err != nil {
		if has, _ := exists(); has {
			return nil
		}
	}
	return err
}

// SchemaVersion returns the highest applied migration, 0 when none.
func (w *Warehouse) SchemaVersion(ctx context.Context) (int, error) {
	var v uint32
	row := w.conn.QueryRow(ctx, fmt.Sprintf("SELECT max(version) FROM %s.schema_migrations", w.db))
	if err := row.Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v), nil
}

// sql puts the database name into a query template.
func (w *Warehouse) sql(template string) string { return strings.ReplaceAll(template, "{db}", w.db) }
