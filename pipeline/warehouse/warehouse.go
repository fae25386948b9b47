// Package warehouse is the pipeline's only door to ClickHouse: it applies the
// schema migrations of package schemas, inserts batches of facts and dead
// letters over the native protocol with named columns, and recomputes the
// per-subscriber aggregates from the facts. It does not decide what a valid
// event is (package schemas) or when to write (package consumers).
package warehouse

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	// refreshing serialises RefreshSubscribers (see there); it guards
	// refreshed too.
	refreshing sync.Mutex
	refreshed  refreshedSubscribers
	// awaiting are the subscribers of inserts whose refresh is still to
	// come (SubscribersInserted), by ticket; inserting counts the inserts
	// of such events still running (SubscribersInserting), and inserted is
	// closed when the last of them ends.
	awaitingMu sync.Mutex
	awaiting   map[uint64][]string
	inserting  int
	inserted   chan struct{}
	// cluster, when set, is the cluster Migrate creates the schema on; auth
	// reaches its other servers.
	cluster string
	auth    clickhouse.Auth
	tls     *tls.Config
}

// Open connects to ClickHouse and checks the server answers. It does not
// create the database: Migrate does.
func Open(ctx context.Context, cfg config.ClickHouse, log zerolog.Logger) (*Warehouse, error) {
	tlsConfig, err := cfg.TLS.Config()
	if err != nil {
		return nil, &RefusedError{Addr: cfg.Addr, Err: err, Hint: "clickhouse.tls: cannot load the TLS files"}
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr: []string{cfg.Addr},
		Auth: clickhouse.Auth{Username: cfg.User, Password: cfg.Password},
		TLS:  tlsConfig,
		// 18.16 refuses string settings sent by the client, so send none.
		DialTimeout:     5 * time.Second,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
		Compression:     compression(cfg),
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse at %s: %w", cfg.Addr, err)
	}
	w := &Warehouse{conn: conn, db: cfg.Database, log: log.With().Str("component", "warehouse").Logger(),
		cluster: cfg.Cluster, auth: clickhouse.Auth{Username: cfg.User, Password: cfg.Password}, tls: tlsConfig}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		if r := refusal(cfg, err); Refused(r) {
			return nil, r
		}
		return nil, unreachable(err)
	}
	return w, nil
}

// ClickHouse's error codes for a login it refuses.
const (
	codeUnknownUser          = 192
	codeWrongPassword        = 193
	codeRequiredPassword     = 194
	codeIPAddressNotAllowed  = 195
	codeAuthenticationFailed = 516 // newer servers, for all of the above
)

// RefusedError is a connection ClickHouse refused: wrong credentials or an
// untrusted certificate. Retrying does not help; the configuration must
// change.
type RefusedError struct {
	Addr, Hint string
	Err        error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("clickhouse at %s refused the connection: %s (%v)", e.Addr, e.Hint, e.Err)
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Refused says whether err (of Open) is a refusal rather than an outage.
func Refused(err error) bool {
	var r *RefusedError
	return errors.As(err, &r)
}

// refusal turns a failed Open into a RefusedError that says what to fix
// when the server refused the login or its certificate is not trusted.
func refusal(cfg config.ClickHouse, err error) error {
	var (
		ex        *clickhouse.Exception
		unknownCA *x509.UnknownAuthorityError
		hostname  x509.HostnameError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &ex) && slices.Contains([]int32{codeUnknownUser, codeWrongPassword, codeRequiredPassword,
		codeIPAddressNotAllowed, codeAuthenticationFailed}, ex.Code):
		return &RefusedError{Addr: cfg.Addr, Err: err, Hint: fmt.Sprintf("authentication of user %q failed: check "+
			"CHURNWATCH_CLICKHOUSE_USER and the password (CHURNWATCH_CLICKHOUSE_PASSWORD or CHURNWATCH_CLICKHOUSE_PASSWORD_FILE)", cfg.User)}
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &verify):
		return &RefusedError{Addr: cfg.Addr, Err: err, Hint: "the server's TLS certificate is not trusted: set " +
			"CHURNWATCH_CLICKHOUSE_TLS_CA_FILE to the CA that signed it (and CHURNWATCH_CLICKHOUSE_TLS_SERVER_NAME if it names another host)"}
	case errors.As(err, &record):
		return &RefusedError{Addr: cfg.Addr, Err: err, Hint: "the server does not speak TLS on this port: " +
			"use its secure native port (tcp_port_secure, usually 9440), or set CHURNWATCH_CLICKHOUSE_TLS_ENABLED=false"}
	}
	return err
}

// compression is how blocks travel to the server (config.ClickHouse.Compressed).
func compression(cfg config.ClickHouse) *clickhouse.Compression {
	if cfg.Compressed() {
		return &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	return &clickhouse.Compression{Method: clickhouse.CompressionNone}
}

// Ping checks that the server answers.
func (w *Warehouse) Ping(ctx context.Context) error {
	if err := w.conn.Ping(ctx); err != nil {
		return unreachable(err)
	}
	return nil
}

func unreachable(err error) error {
	return fmt.Errorf("clickhouse is not reachable: %w (is it running? `make clickhouse` or deploy/local/clickhouse.sh start starts the local one)", err)
}

// Close closes the connection pool.
func (w *Warehouse) Close() error { return w.conn.Close() }

// Database returns the database this warehouse writes to.
func (w *Warehouse) Database() string { return w.db }

// Conn exposes the connection for read queries by tests and tools.
func (w *Warehouse) Conn() driver.Conn { return w.conn }

// Migrate creates the database and applies every migration not yet recorded
// in schema_migrations. Safe to run concurrently with itself and repeatedly:
// every statement is idempotent. With a cluster configured it runs the
// cluster form of the same migrations (schemas.ClusterDDL): replicated
// local tables and Distributed tables ON CLUSTER, schema_migrations
// included.
func (w *Warehouse) Migrate(ctx context.Context) (applied []int, err error) {
	migrations, err := schemas.Migrations(w.db)
	if err != nil {
		return nil, err
	}
	createLog := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s.schema_migrations
(version UInt32, name String, applied_at DateTime) ENGINE = ReplacingMergeTree ORDER BY version`, w.db)
	stmts := []string{fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s", w.db), createLog}
	logTable := "schema_migrations"
	if w.cluster != "" {
		if _, err := w.clusterHosts(ctx); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		var engine string
		if err := w.conn.QueryRow(ctx, "SELECT any(engine) FROM system.tables WHERE database = ? AND name = 'schema_migrations'",
			w.db).Scan(&engine); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		if engine != "" && engine != "Distributed" {
			return nil, fmt.Errorf("migrate: database %s on this server has a single-server schema (schema_migrations is a %s table, not Distributed): create the cluster schema in a new database, or move the data over by hand (docs/cluster.md)", w.db, engine)
		}
		ddl, err := schemas.NewClusterDDL(w.db, w.cluster)
		if err != nil {
			return nil, err
		}
		clusterLog, err := ddl.Rewrite(createLog)
		if err != nil {
			return nil, err
		}
		stmts = append([]string{ddl.CreateDatabase()}, clusterLog...)
		if migrations, err = ddl.Migrations(); err != nil {
			return nil, err
		}
		// Recorded on this server's replica (synchronously, unlike an
		// insert through the Distributed table) and read through the
		// Distributed table, as one log for the whole cluster.
		logTable += schemas.LocalSuffix
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
		if err := w.insert(ctx, logTable, []string{"version", "name", "applied_at"}, 1, record); err != nil {
			return applied, fmt.Errorf("record migration %d: %w", m.Version, err)
		}
		applied = append(applied, m.Version)
		w.log.Info().Int("version", m.Version).Str("name", m.Name).Msg("schema migration applied")
	}
	return applied, nil
}

// addColumnRe matches the start of a migration statement that adds a column:
// ALTER TABLE db.table [ON CLUSTER name] ADD COLUMN column ...
var addColumnRe = regexp.MustCompile(`(?is)^\s*ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)\s+(?:ON\s+CLUSTER\s+(?:[A-Za-z0-9_.-]+|` + "`[^`]*`" + `)\s+)?ADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*)\s`)

// onClusterRe matches the ON CLUSTER clause of a statement.
var onClusterRe = regexp.MustCompile(`(?is)\s+ON\s+CLUSTER\s+(?:[A-Za-z0-9_.-]+|` + "`[^`]*`" + `)`)

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
	case w.cluster != "":
		return w.addColumnOnCluster(ctx, stmt, db, table, col)
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

// addColumnOnCluster is migrateStatement's guarded ADD COLUMN on a cluster:
// it runs only when some server of the cluster lacks the column. ClickHouse
// before 20.3 refuses ALTER ... ON CLUSTER of a table that is not replicated
// (the Distributed one) when the cluster's shards use internal_replication
// (code 371, ClickHouse issue 3268); the ALTER then runs on each server that
// lacks the column, one by one.
func (w *Warehouse) addColumnOnCluster(ctx context.Context, stmt, db, table, col string) error {
	lacking := func() ([]string, error) {
		hosts, err := w.clusterHosts(ctx)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, addr := range hosts {
			err := w.onHost(ctx, addr, func(conn driver.Conn) error {
				var n uint64
				err := conn.QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = ? AND table = ? AND name = ?",
					db, table, col).Scan(&n)
				if err == nil && n == 0 {
					out = append(out, addr)
				}
				return err
			})
			if err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	missing, err := lacking()
	if err != nil || len(missing) == 0 {
		return err
	}
	err = w.conn.Exec(ctx, stmt)
	var exc *clickhouse.Exception
	if errors.As(err, &exc) && exc.Code == 371 {
		local := onClusterRe.ReplaceAllString(stmt, "")
		for _, addr := range missing {
			if err := w.onHost(ctx, addr, func(conn driver.Conn) error { return conn.Exec(ctx, local) }); err != nil {
				if still, lerr := lacking(); lerr == nil && !slices.Contains(still, addr) {
					continue // a concurrent migration added it
				}
				return fmt.Errorf("on %s: %w", addr, err)
			}
		}
		return nil
	}
	if err != nil {
		if still, lerr := lacking(); lerr == nil && len(still) == 0 {
			return nil // a concurrent migration added it
		}
	}
	return err
}

// clusterHosts returns host:port of every server of the cluster, as the
// connected server's remote_servers lists them.
func (w *Warehouse) clusterHosts(ctx context.Context) ([]string, error) {
	rows, err := w.conn.Query(ctx, "SELECT DISTINCT host_name, port FROM system.clusters WHERE cluster = ?", w.cluster)
	if err != nil {
		return nil, fmt.Errorf("read system.clusters: %w", err)
	}
	defer rows.Close()
	var hosts []string
	for rows.Next() {
		var host string
		var port uint16
		if err := rows.Scan(&host, &port); err != nil {
			return nil, err
		}
		hosts = append(hosts, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("cluster %q is not defined on the ClickHouse server (its remote_servers section); see docs/cluster.md", w.cluster)
	}
	return hosts, nil
}

// onHost runs f with a connection of its own to one server of the cluster.
func (w *Warehouse) onHost(ctx context.Context, addr string, f func(driver.Conn) error) error {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: w.auth, TLS: w.tls,
		DialTimeout: 5 * time.Second, MaxOpenConns: 1})
	if err != nil {
		return fmt.Errorf("clickhouse at %s: %w", addr, err)
	}
	defer conn.Close()
	return f(conn)
}

// DropDatabase drops the warehouse's database and everything in it; the
// scratch runs of eval and bench clean up with it. It does not depend on ctx
// being alive, only bounded by timeout.
func (w *Warehouse) DropDatabase(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	return w.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+w.db)
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
