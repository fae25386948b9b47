package warehouse

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

// testCluster is the cluster deploy/local/cluster.sh defines: one shard,
// replicas ch1 and ch2.
const testCluster = "churnwatch_cluster"

// localCluster returns the native addresses of the two servers of the local
// cluster, starting it with deploy/local/cluster.sh when they do not answer
// (as make test starts it). It never touches the single server of the
// other tests.
func localCluster(t *testing.T) (ch1, ch2 string) {
	t.Helper()
	port := func(env, def string) string {
		if v := os.Getenv(env); v != "" {
			return v
		}
		return def
	}
	ch1 = "127.0.0.1:" + port("CHURNWATCH_CLUSTER_CH1_PORT", "19100")
	ch2 = "127.0.0.1:" + port("CHURNWATCH_CLUSTER_CH2_PORT", "19200")
	if answers(ch1) && answers(ch2) {
		return ch1, ch2
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "deploy", "local", "cluster.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, script, "start").CombinedOutput()
	if err != nil {
		t.Fatalf("the local ClickHouse cluster is not running and %s start failed (%v):\n%s", script, err, out)
	}
	t.Logf("started the local cluster in %s", time.Since(start).Round(10*time.Millisecond))
	return ch1, ch2
}

func answers(addr string) bool {
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: time.Second})
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return conn.Ping(ctx) == nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// TestClusterMigrateWriteOneReadOther is issue 8's cluster DDL test on a real
// two-server cluster: migrate --cluster through ch1 creates the schema on
// both servers; CDRs written through the Distributed table on ch1 are read,
// through the Distributed table and from the replica, on ch2; a duplicated
// event counts once under FINAL; the daily aggregate recompute runs through
// the Distributed tables; and migrate is idempotent on the cluster.
func TestClusterMigrateWriteOneReadOther(t *testing.T) {
	addr1, addr2 := localCluster(t)
	ctx := context.Background()
	db := "test_cluster_" + testenv.Suffix()
	open := func(addr string) *Warehouse {
		t.Helper()
		w, err := Open(ctx, config.ClickHouse{Addr: addr, Database: db, User: config.DefaultClickHouseUser, Cluster: testCluster}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	w1, w2 := open(addr1), open(addr2)
	t.Cleanup(func() {
		if err := w1.conn.Exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s ON CLUSTER %s", db, testCluster)); err != nil {
			t.Logf("drop %s: %v", db, err)
		}
	})

	start := time.Now()
	applied, err := w1.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate on %s through %s: %v", testCluster, addr1, err)
	}
	t.Logf("migrated the cluster in %s", time.Since(start).Round(10*time.Millisecond))
	single, err := schemas.Migrations(db)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != len(single) {
		t.Fatalf("Migrate applied %v, want all %d migrations", applied, len(single))
	}

	// Both servers have every table twice (replicated local, Distributed)
	// and the column the guarded ADD COLUMN adds, on both.
	for addr, w := range map[string]*Warehouse{addr1: w1, addr2: w2} {
		for _, table := range []string{"cdr", "billing_events", "crm_events", "subscribers", "subscriber_daily",
			"dead_letters", "warnings", "tier_snapshots", "tasks", "hotline_calls", "schema_migrations"} {
			if got := engine(t, w.conn, db, table+schemas.LocalSuffix); !strings.HasPrefix(got, "Replicated") {
				t.Errorf("%s: %s%s has engine %q, want a Replicated one", addr, table, schemas.LocalSuffix, got)
			}
			if got := engine(t, w.conn, db, table); got != "Distributed" {
				t.Errorf("%s: %s has engine %q, want Distributed", addr, table, got)
			}
		}
		for _, view := range []string{"snapshot_retention", "tasks_current", "task_outcomes"} {
			if got := engine(t, w.conn, db, view); got != "View" {
				t.Errorf("%s: %s has engine %q, want View", addr, view, got)
			}
		}
		n := testenv.Count(t, w.conn, "SELECT count() FROM system.columns WHERE database = ? AND table IN ('subscribers', 'subscribers_local') AND name = 'bill_avg_fen'", db)
		if n != 2 {
			t.Errorf("%s: bill_avg_fen is in %d of subscribers and subscribers_local, want both", addr, n)
		}
	}
	var create string
	if err := w2.conn.QueryRow(ctx, "SELECT engine_full FROM system.tables WHERE database = ? AND name = 'cdr'", db).Scan(&create); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Distributed(%s, %s, cdr_local, cityHash64(msisdn))", testCluster, db); create != want {
		t.Errorf("cdr on %s: %s, want %s", addr2, create, want)
	}

	// Merges stay off on both replicas while the duplicate is checked, so
	// that FINAL, not a background merge, is what makes it count once.
	for _, w := range []*Warehouse{w1, w2} {
		if err := w.conn.Exec(ctx, fmt.Sprintf("SYSTEM STOP MERGES %s.cdr_local", db)); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	cdr := func(id, msisdn string, dir schemas.Direction, offset int64) CDRRow {
		r := CDRRow{Network: "CUCC", Day: day, Provenance: Provenance{Partition: 0, Offset: offset}}
		r.EventID, r.MSISDN, r.Peer, r.Direction = id, msisdn, "13100000009", dir
		r.StartTime, r.DurationS, r.CellID = day.Add(time.Duration(offset)*time.Minute), 60, "c1"
		return r
	}
	// Two batches of different make-up: the replicated table's insert
	// deduplication (whole identical blocks) does not drop the duplicate
	// e2; only ReplacingMergeTree under FINAL does.
	first := []CDRRow{cdr("e1", "13800000001", "MO", 1), cdr("e2", "13800000001", "MT", 2), cdr("e3", "13800000002", "MO", 3)}
	second := []CDRRow{cdr("e2", "13800000001", "MT", 2), cdr("e4", "13800000002", "MO", 4)}
	for _, batch := range [][]CDRRow{first, second} {
		if err := w1.InsertCDR(ctx, batch); err != nil {
			t.Fatalf("InsertCDR through %s: %v", addr1, err)
		}
	}

	// Read on the other server: through its Distributed table, and from
	// its own replica (so the rows were replicated, not only read back
	// from ch1).
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, table := range []string{"cdr", "cdr_local"} {
			n, err := testenv.TryCount(w2.conn, fmt.Sprintf("SELECT count() FROM %s.%s", db, table))
			if err != nil {
				return err
			}
			if n != 5 {
				return fmt.Errorf("%s.%s on %s has %d rows, want the 5 written on %s", db, table, addr2, n, addr1)
			}
		}
		return nil
	})
	if n := testenv.Count(t, w2.conn, fmt.Sprintf("SELECT count() FROM %s.cdr FINAL", db)); n != 4 {
		t.Errorf("cdr FINAL on %s: %d rows, want 4 (e2 once)", addr2, n)
	}
	if n := testenv.Count(t, w2.conn, fmt.Sprintf("SELECT count() FROM %s.cdr FINAL WHERE event_id = 'e2'", db)); n != 1 {
		t.Errorf("cdr FINAL on %s: e2 counted %d times, want once", addr2, n)
	}
	var ids []string
	if err := w2.conn.QueryRow(ctx, fmt.Sprintf("SELECT groupArray(event_id) FROM (SELECT event_id FROM %s.cdr FINAL ORDER BY event_id)", db)).Scan(&ids); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ids, ","); got != "e1,e2,e3,e4" {
		t.Errorf("cdr FINAL on %s: events %s, want e1,e2,e3,e4", addr2, got)
	}
	for _, w := range []*Warehouse{w1, w2} {
		if err := w.conn.Exec(ctx, fmt.Sprintf("SYSTEM START MERGES %s.cdr_local", db)); err != nil {
			t.Fatal(err)
		}
	}

	// The per-subscriber recompute reads cdr FINAL and writes
	// subscriber_daily through the Distributed tables; ch2 sees the result.
	keys := []DayKey{{MSISDN: "13800000001", Day: day}, {MSISDN: "13800000002", Day: day}}
	if err := w1.RefreshDaily(ctx, keys, DailyRules{HomeNetwork: "CMCC", HotlineNumbers: []string{"10086"}, CompetitorHotlines: []string{"10010"}}); err != nil {
		t.Fatalf("RefreshDaily through %s: %v", addr1, err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		n, err := testenv.TryCount(w2.conn, fmt.Sprintf("SELECT sum(calls) FROM %s.subscriber_daily FINAL", db))
		if err == nil && n != 4 {
			err = fmt.Errorf("subscriber_daily on %s counts %d calls, want 4", addr2, n)
		}
		return err
	})

	// Pending subscriber-days written through ch1 are refreshed through
	// ch2; a refreshed day recorded long ago is dropped on every server.
	rules := DailyRules{HomeNetwork: "CMCC", HotlineNumbers: []string{"10086"}, CompetitorHotlines: []string{"10010"}}
	if err := w1.InsertPendingDays(ctx, "p.cdr.voice", []PendingDay{{DayKey: keys[0], Partition: 0, Offset: 1},
		{DayKey: keys[1], Partition: 0, Offset: 2}}); err != nil {
		t.Fatal(err)
	}
	old, err := w1.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO %s.subscriber_daily_pending (topic, kafka_partition, kafka_offset, msisdn, day, recorded_at)", db))
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Append("p.cdr.voice", int32(0), int64(1), keys[0].MSISDN, day, time.Now().AddDate(0, 0, -3)); err != nil {
		t.Fatal(err)
	}
	if err := old.Send(); err != nil {
		t.Fatal(err)
	}
	pendingRows := func() error {
		n, err := testenv.TryCount(w2.conn, fmt.Sprintf("SELECT count() FROM %s.subscriber_daily_pending", db))
		if err == nil && n != 3 {
			err = fmt.Errorf("subscriber_daily_pending on %s has %d rows, want 3", addr2, n)
		}
		return err
	}
	testenv.Eventually(t, 30*time.Second, pendingRows)
	if res, err := w2.RefreshPendingDaily(ctx, rules); err != nil || res.Days != 2 {
		t.Fatalf("RefreshPendingDaily through %s = %+v, %v; want 2 subscriber-days", addr2, res, err)
	}
	if n, err := w2.DropRefreshedPending(ctx); err != nil || n != 1 {
		t.Fatalf("DropRefreshedPending through %s = %d, %v; want 1 day dropped", addr2, n, err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		for addr, w := range map[string]*Warehouse{addr1: w1, addr2: w2} {
			n, err := testenv.TryCount(w.conn, fmt.Sprintf("SELECT count() FROM %s.subscriber_daily_pending_local", db))
			if err == nil && n != 2 {
				err = fmt.Errorf("subscriber_daily_pending_local on %s has %d rows, want the 2 of today", addr, n)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})

	// Idempotent on the cluster: nothing to apply from the other server;
	// with the log lost, every migration runs again (the guarded ADD
	// COLUMN finds the column on every server) and nothing fails.
	if again, err := w2.Migrate(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Migrate through %s = %v, %v; want nothing applied", addr2, again, err)
	}
	for _, table := range []string{"schema_migrations", "schema_migrations_local"} {
		if err := w2.conn.Exec(ctx, fmt.Sprintf("DROP TABLE %s.%s ON CLUSTER %s", db, table, testCluster)); err != nil {
			t.Fatal(err)
		}
	}
	if rerun, err := w2.Migrate(ctx); err != nil || len(rerun) != len(single) {
		t.Fatalf("Migrate after losing schema_migrations = %v, %v; want all %d again", rerun, err, len(single))
	}
	// The log written on ch2's replica reaches ch1's by replication.
	testenv.Eventually(t, 30*time.Second, func() error {
		if v, err := w1.SchemaVersion(ctx); err != nil || v != single[len(single)-1].Version {
			return fmt.Errorf("SchemaVersion through %s = %d, %v; want %d", addr1, v, err, single[len(single)-1].Version)
		}
		return nil
	})
}

func engine(t *testing.T, conn driver.Conn, db, table string) string {
	t.Helper()
	var e string
	err := conn.QueryRow(context.Background(), "SELECT engine FROM system.tables WHERE database = ? AND name = ?", db, table).Scan(&e)
	if err != nil {
		return "(missing: " + err.Error() + ")"
	}
	return e
}

// TestClusterConfig: clickhouse.cluster comes from the environment and a
// name that cannot be a cluster's is refused before any connection.
func TestClusterConfig(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	cfg, err := config.Load("", env(map[string]string{"CHURNWATCH_CLICKHOUSE_CLUSTER": "prod-cluster"}))
	if err != nil || cfg.ClickHouse.Cluster != "prod-cluster" {
		t.Errorf("Load with CHURNWATCH_CLICKHOUSE_CLUSTER = %q, %v; want prod-cluster", cfg.ClickHouse.Cluster, err)
	}
	if cfg, err := config.Load("", env(nil)); err != nil || cfg.ClickHouse.Cluster != "" {
		t.Errorf("default clickhouse.cluster = %q, %v; want empty (a single server)", cfg.ClickHouse.Cluster, err)
	}
	if _, err := config.Load("", env(map[string]string{"CHURNWATCH_CLICKHOUSE_CLUSTER": "a b"})); err == nil || !strings.Contains(err.Error(), "clickhouse.cluster") {
		t.Errorf("cluster name %q: error %v, want one naming clickhouse.cluster", "a b", err)
	}
}

// TestClusterMigrateRefusesSingleServerSchema: a database that holds the
// single-server schema is not silently taken for a cluster's.
func TestClusterMigrateRefusesSingleServerSchema(t *testing.T) {
	addr1, _ := localCluster(t)
	ctx := context.Background()
	cfg := config.ClickHouse{Addr: addr1, Database: "test_single_" + testenv.Suffix(), User: config.DefaultClickHouseUser}
	single, err := Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	t.Cleanup(func() { single.conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database) })
	if _, err := single.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.Cluster = testCluster
	w, err := Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "single-server schema") {
		t.Errorf("cluster Migrate over a single-server schema: %v, want an error saying so", err)
	}
	cfg.Cluster = "no_such_cluster"
	w2, err := Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if _, err := w2.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "not defined on the ClickHouse server") {
		t.Errorf("Migrate on an unknown cluster: %v, want an error saying it is not defined", err)
	}
}
