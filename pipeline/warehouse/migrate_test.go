package warehouse

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/testenv"
)

func TestAddedColumn(t *testing.T) {
	tests := []struct {
		stmt              string
		db, table, col    string
		ok                bool
		wantErrMentioning string
	}{
		{stmt: "ALTER TABLE d.subscribers ADD COLUMN bill_avg_fen Int64 DEFAULT 0 AFTER profile_tier",
			db: "d", table: "subscribers", col: "bill_avg_fen", ok: true},
		{stmt: "  alter table\n d.t add column\tx Decimal(18, 2) DEFAULT toDecimal64(0, 2)",
			db: "d", table: "t", col: "x", ok: true},
		{stmt: "ALTER TABLE d.t ADD COLUMN s String DEFAULT 'a, b'", db: "d", table: "t", col: "s", ok: true},
		{stmt: "ALTER TABLE d.t ADD COLUMN a UInt8, ADD COLUMN b UInt8", wantErrMentioning: "more than one column"},
		{stmt: "ALTER TABLE d.t ADD COLUMN IF NOT EXISTS a UInt8"},
		{stmt: "ALTER TABLE d.t DROP COLUMN a"},
		{stmt: "CREATE TABLE IF NOT EXISTS d.t (a UInt8, b String) ENGINE = Memory"},
	}
	for _, tt := range tests {
		t.Run(tt.stmt, func(t *testing.T) {
			db, table, col, ok, err := addedColumn(tt.stmt)
			if tt.wantErrMentioning != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrMentioning) {
					t.Errorf("error %v, want one mentioning %q", err, tt.wantErrMentioning)
				}
				return
			}
			if err != nil || ok != tt.ok || db != tt.db || table != tt.table || col != tt.col {
				t.Errorf("addedColumn = %q, %q, %q, %v, %v; want %q, %q, %q, %v, nil", db, table, col, ok, err,
					tt.db, tt.table, tt.col, tt.ok)
			}
		})
	}
}

// TestMigrateRerunsAddColumn runs every migration a second time, as after a
// migration interrupted before it was recorded: the ADD COLUMN is skipped
// and nothing fails.
func TestMigrateRerunsAddColumn(t *testing.T) {
	cfg, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	w, err := Open(ctx, cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	first, err := w.Migrate(ctx)
	if err != nil || len(first) == 0 {
		t.Fatalf("first Migrate = %v, %v", first, err)
	}
	if again, err := w.Migrate(ctx); err != nil || len(again) != 0 {
		t.Fatalf("second Migrate = %v, %v; want nothing applied", again, err)
	}
	if err := conn.Exec(ctx, fmt.Sprintf("DROP TABLE %s.schema_migrations", cfg.Database)); err != nil {
		t.Fatal(err)
	}
	if rerun, err := w.Migrate(ctx); err != nil || len(rerun) != len(first) {
		t.Fatalf("Migrate after losing schema_migrations = %v, %v; want %v again", rerun, err, first)
	}
	n := testenv.Count(t, conn, "SELECT count() FROM system.columns WHERE database = ? AND table = 'subscribers' AND name = 'bill_avg_fen'", cfg.Database)
	if n != 1 {
		t.Errorf("subscribers.bill_avg_fen: %d columns, want 1", n)
	}
	// A statement that is not a guarded ADD COLUMN still reports errors.
	if err := w.migrateStatement(ctx, fmt.Sprintf("ALTER TABLE %s.subscribers DROP COLUMN no_such_column", cfg.Database)); err == nil {
		t.Error("dropping a missing column succeeded, want an error")
	}
}
