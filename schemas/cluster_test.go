package schemas

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of the cluster DDL in testdata/cluster")

// TestClusterMigrationsGolden compares the cluster DDL generated from every
// migration with testdata/cluster/NNN_name.sql. After changing a migration
// or the rewriting, run `go test ./schemas -run ClusterMigrationsGolden
// -update` and review the diff.
func TestClusterMigrationsGolden(t *testing.T) {
	single, err := Migrations("churnwatch")
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := ClusterMigrations("churnwatch", "churnwatch_cluster")
	if err != nil {
		t.Fatal(err)
	}
	if len(cluster) != len(single) {
		t.Fatalf("%d cluster migrations, want %d", len(cluster), len(single))
	}
	dir := filepath.Join("testdata", "cluster")
	want := map[string]bool{}
	for i, m := range cluster {
		if m.Version != single[i].Version || m.Name != single[i].Name {
			t.Errorf("cluster migration %d is %03d_%s, want %03d_%s", i, m.Version, m.Name, single[i].Version, single[i].Name)
		}
		name := fmt.Sprintf("%03d_%s.sql", m.Version, m.Name)
		want[name] = true
		var b strings.Builder
		fmt.Fprintf(&b, "-- Generated from schemas/clickhouse/%s for database churnwatch on cluster churnwatch_cluster.\n", name)
		b.WriteString("-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update\n")
		for _, s := range m.Statements {
			b.WriteString("\n" + s + ";\n")
		}
		path := filepath.Join(dir, name)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run with -update to create it)", err)
			continue
		}
		if got := b.String(); got != string(golden) {
			t.Errorf("cluster DDL of %s differs from %s (run with -update and review the diff):\n%s", name, path, lineDiff(string(golden), got))
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !want[e.Name()] {
			if *update {
				os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
			t.Errorf("%s: no migration generates it any more (run with -update to remove it)", filepath.Join(dir, e.Name()))
		}
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  golden: %q\n  now:    %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

// TestClusterMigrationsShape checks what the golden files show, table by
// table: every table of the single-node schema has a replicated local table
// and a Distributed table under its own name, with the same columns.
func TestClusterMigrationsShape(t *testing.T) {
	cluster, err := ClusterMigrations("cw", "c1")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, m := range cluster {
		all = append(all, m.Statements...)
	}
	joined := strings.Join(all, ";\n")
	for _, s := range all {
		if !strings.Contains(s, " ON CLUSTER c1") && !strings.HasPrefix(s, "INSERT INTO ") {
			t.Errorf("statement without ON CLUSTER: %.80s", s)
		}
	}
	for table, key := range map[string]string{
		"cdr":              "cityHash64(msisdn)",
		"subscribers":      "cityHash64(msisdn)",
		"subscriber_daily": "cityHash64(msisdn)",
		"tasks":            "cityHash64(msisdn)",
		"dead_letters":     "cityHash64(topic, kafka_partition, kafka_offset)",
	} {
		local := fmt.Sprintf("CREATE TABLE IF NOT EXISTS cw.%s_local ON CLUSTER c1\n", table)
		dist := fmt.Sprintf("CREATE TABLE IF NOT EXISTS cw.%s ON CLUSTER c1\n", table)
		if !strings.Contains(joined, local) {
			t.Errorf("no local table for %s", table)
		}
		if !strings.Contains(joined, fmt.Sprintf("ENGINE = Distributed(c1, cw, %s_local, %s)", table, key)) {
			t.Errorf("no Distributed table for %s sharded by %s", table, key)
		}
		if !strings.Contains(joined, dist) {
			t.Errorf("no CREATE of the Distributed %s", table)
		}
	}
	if !strings.Contains(joined, "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/cw/subscribers_local', '{replica}', version)") {
		t.Error("subscribers_local: version column of ReplacingMergeTree(version) not kept")
	}
	for _, want := range []string{
		"ALTER TABLE cw.subscribers_local ON CLUSTER c1 ADD COLUMN bill_avg_fen",
		"ALTER TABLE cw.subscribers ON CLUSTER c1 ADD COLUMN bill_avg_fen",
		"CREATE VIEW IF NOT EXISTS cw.tasks_current ON CLUSTER c1 AS",
		"FROM cw.tier_snapshots FINAL", // views read the Distributed tables
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("cluster DDL lacks %q", want)
		}
	}
}

func TestClusterRewrite(t *testing.T) {
	tests := []struct {
		name    string
		stmts   []string // earlier statements, then the one under test
		want    []string
		wantErr string
	}{{
		name: "merge tree with arguments, comments and no msisdn",
		stmts: []string{`CREATE TABLE IF NOT EXISTS d.t
(
    a String, -- the key, (with a comma)
    ` + "`b c`" + ` Enum8('x, y' = 1, 'z' = 2),
    s Int8
)
ENGINE = CollapsingMergeTree(s)
PARTITION BY toYYYYMM(now())
ORDER BY (a, ` + "`b c`" + `)
SETTINGS index_granularity = 8192`},
		want: []string{`CREATE TABLE IF NOT EXISTS d.t_local ON CLUSTER c
(
    a String, -- the key, (with a comma)
    ` + "`b c`" + ` Enum8('x, y' = 1, 'z' = 2),
    s Int8
)
ENGINE = ReplicatedCollapsingMergeTree('/clickhouse/tables/{shard}/d/t_local', '{replica}', s)
PARTITION BY toYYYYMM(now())
ORDER BY (a, ` + "`b c`" + `)
SETTINGS index_granularity = 8192`, `CREATE TABLE IF NOT EXISTS d.t ON CLUSTER c
(
    a String, -- the key, (with a comma)
    ` + "`b c`" + ` Enum8('x, y' = 1, 'z' = 2),
    s Int8
)
ENGINE = Distributed(c, d, t_local, cityHash64(a, ` + "`b c`" + `))`},
	}, {
		name:  "no sorting key: rand()",
		stmts: []string{"CREATE TABLE d.t (a UInt8) ENGINE = MergeTree ORDER BY tuple()"},
		want: []string{
			"CREATE TABLE d.t_local ON CLUSTER c\n(a UInt8)\nENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/t_local', '{replica}') ORDER BY tuple()",
			"CREATE TABLE d.t ON CLUSTER c\n(a UInt8)\nENGINE = Distributed(c, d, t_local, rand())",
		},
	}, {
		name:  "single-expression sorting key",
		stmts: []string{"CREATE TABLE d.t (a UInt8, b UInt8) ENGINE = MergeTree PRIMARY KEY a ORDER BY intHash32(a) SAMPLE BY a"},
		want: []string{
			"CREATE TABLE d.t_local ON CLUSTER c\n(a UInt8, b UInt8)\nENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/d/t_local', '{replica}') PRIMARY KEY a ORDER BY intHash32(a) SAMPLE BY a",
			"CREATE TABLE d.t ON CLUSTER c\n(a UInt8, b UInt8)\nENGINE = Distributed(c, d, t_local, cityHash64(intHash32(a)))",
		},
	}, {
		name:  "materialized view reads and writes local tables",
		stmts: []string{"CREATE TABLE d.src (msisdn String) ENGINE = MergeTree ORDER BY msisdn", "CREATE TABLE d.dst (msisdn String, n UInt64) ENGINE = SummingMergeTree ORDER BY msisdn", "CREATE MATERIALIZED VIEW IF NOT EXISTS d.mv TO d.dst AS SELECT msisdn, count() AS n FROM d.src GROUP BY msisdn"},
		want:  []string{"CREATE MATERIALIZED VIEW IF NOT EXISTS d.mv ON CLUSTER c TO d.dst_local AS SELECT msisdn, count() AS n FROM d.src_local GROUP BY msisdn"},
	}, {
		name:  "data mutation: local table only",
		stmts: []string{"CREATE TABLE d.t (a UInt8) ENGINE = MergeTree ORDER BY a", "ALTER TABLE d.t DELETE WHERE a = 1"},
		want:  []string{"ALTER TABLE d.t_local ON CLUSTER c DELETE WHERE a = 1"},
	}, {
		name:  "column change: both tables",
		stmts: []string{"CREATE TABLE d.t (a UInt8) ENGINE = MergeTree ORDER BY a", "ALTER TABLE d.t MODIFY COLUMN a UInt16"},
		want:  []string{"ALTER TABLE d.t_local ON CLUSTER c MODIFY COLUMN a UInt16", "ALTER TABLE d.t ON CLUSTER c MODIFY COLUMN a UInt16"},
	}, {
		name:  "drop table: both tables",
		stmts: []string{"CREATE TABLE d.t (a UInt8) ENGINE = MergeTree ORDER BY a", "drop table if exists d.t"},
		want:  []string{"DROP TABLE IF EXISTS d.t ON CLUSTER c", "DROP TABLE IF EXISTS d.t_local ON CLUSTER c"},
	}, {
		name:  "drop view",
		stmts: []string{"CREATE VIEW d.v AS SELECT 1", "DROP TABLE d.v"},
		want:  []string{"DROP TABLE d.v ON CLUSTER c"},
	}, {
		name:    "engine without a replicated form",
		stmts:   []string{"CREATE TABLE d.t (a UInt8) ENGINE = Memory"},
		wantErr: "engine Memory has no replicated form",
	}, {
		name:    "already replicated",
		stmts:   []string{"CREATE TABLE d.t (a UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY a"},
		wantErr: "no replicated form",
	}, {
		name:    "materialized view with an inner table",
		stmts:   []string{"CREATE MATERIALIZED VIEW d.mv ENGINE = MergeTree ORDER BY a AS SELECT 1 AS a"},
		wantErr: "write it with TO",
	}, {
		name:    "alter of an unknown table",
		stmts:   []string{"ALTER TABLE d.nope ADD COLUMN a UInt8"},
		wantErr: "not a table created by an earlier statement",
	}, {
		name:    "other database",
		stmts:   []string{"CREATE TABLE other.t (a UInt8) ENGINE = MergeTree ORDER BY a"},
		wantErr: "names database other, not d",
	}, {
		name: "backfill through the Distributed tables, as written",
		stmts: []string{"CREATE TABLE d.src (msisdn String) ENGINE = MergeTree ORDER BY msisdn",
			"CREATE TABLE d.dst (msisdn String) ENGINE = MergeTree ORDER BY msisdn",
			"INSERT INTO d.dst (msisdn) SELECT msisdn FROM d.src WHERE msisdn != ''"},
		want: []string{"INSERT INTO d.dst (msisdn) SELECT msisdn FROM d.src WHERE msisdn != ''"},
	}, {
		name:    "unknown statement",
		stmts:   []string{"INSERT INTO d.t SELECT 1"},
		wantErr: "cannot rewrite this statement",
	}, {
		name:    "index in the column list",
		stmts:   []string{"CREATE TABLE d.t (a UInt8, INDEX i a TYPE minmax GRANULARITY 1) ENGINE = MergeTree ORDER BY a"},
		wantErr: "INDEX definitions",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClusterDDL("d", "c")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range tt.stmts {
				if got, err = c.Rewrite(s); err != nil {
					break
				}
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Rewrite =\n%s\nwant\n%s", strings.Join(got, "\n;;\n"), strings.Join(tt.want, "\n;;\n"))
			}
		})
	}
}

func TestClusterNames(t *testing.T) {
	c, err := NewClusterDDL("d", "prod-cluster.1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.CreateDatabase(), "CREATE DATABASE IF NOT EXISTS d ON CLUSTER `prod-cluster.1`"; got != want {
		t.Errorf("CreateDatabase = %q, want %q", got, want)
	}
	for _, bad := range []string{"", "a b", "a;DROP", "`x`", "-x"} {
		if _, err := NewClusterDDL("d", bad); err == nil {
			t.Errorf("cluster name %q accepted", bad)
		}
	}
	if _, err := NewClusterDDL("1d", "c"); err == nil {
		t.Error("database name 1d accepted")
	}
}
