package warehouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

// TestRefreshPendingInRounds: a refresh whose pending rows exceed a round
// recomputes them in several rounds, each moving the marks, and misses
// none: every subscriber-day of the 23 pending rows (3 partitions, some
// rows repeated by a replay) ends with its calls counted.
func TestRefreshPendingInRounds(t *testing.T) {
	w, ch, conn := migratedWarehouse(t)
	ctx := context.Background()
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	var rows []CDRRow
	var pending []PendingDay
	for i := 0; i < 20; i++ {
		msisdn := fmt.Sprintf("138000000%02d", i)
		prov := Provenance{Partition: int32(i % 3), Offset: int64(i)}
		rows = append(rows, CDRRow{CDR: schemas.CDR{EventID: fmt.Sprintf("r%d", i), MSISDN: msisdn, Peer: "13900000000",
			Direction: schemas.DirectionMO, StartTime: day.Add(time.Hour), DurationS: 60}, Network: "CMCC", Day: day, Provenance: prov})
		pending = append(pending, PendingDay{DayKey: DayKey{MSISDN: msisdn, Day: day}, Partition: prov.Partition, Offset: prov.Offset})
	}
	pending = append(pending, pending[3], pending[4], pending[5]) // a replay's copies
	if err := w.InsertCDR(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := w.InsertPendingDays(ctx, "p.cdr.voice", pending); err != nil {
		t.Fatal(err)
	}
	res, err := w.refreshPending(ctx, DailyRules{HomeNetwork: "CMCC"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Sorted by partition and offset, the 8, 8 and 7 rows of partitions 0,
	// 1 and 2 make rounds of 4, 4, 4, 4, 4 and 3 rows.
	if res.Partitions != 3 || res.Rounds != 6 || res.Days < 20 {
		t.Errorf("refresh in rounds of 4: %+v, want 3 partitions, 6 rounds and at least 20 subscriber-days", res)
	}
	if n := testenv.Count(t, conn, "SELECT count() FROM "+ch.Database+".subscriber_daily FINAL WHERE calls = 1"); n != 20 {
		t.Errorf("%d subscriber-days counted, want 20", n)
	}
	if n, err := w.PendingDays(ctx); err != nil || n != 0 {
		t.Errorf("%d pending rows left (err %v), want 0", n, err)
	}
}

// TestRefreshInParallelRanges: keys cut into ranges of MSISDNs, recomputed
// side by side, each count the subscriber-days of their own range and
// together every one: 30 subscribers over two days, 60 subscriber-days in
// four ranges of 15.
func TestRefreshInParallelRanges(t *testing.T) {
	w, ch, conn := migratedWarehouse(t)
	ctx := context.Background()
	var rows []CDRRow
	var keys []DayKey
	for i := 0; i < 30; i++ {
		msisdn := fmt.Sprintf("139000000%02d", i)
		for d := 0; d < 2; d++ {
			day := time.Date(2026, 11, 20+d, 0, 0, 0, 0, time.UTC)
			for c := 0; c <= d; c++ { // one call on the first day, two on the second
				rows = append(rows, CDRRow{CDR: schemas.CDR{EventID: fmt.Sprintf("p%d-%d-%d", i, d, c), MSISDN: msisdn,
					Peer: "13800000000", Direction: schemas.DirectionMO, StartTime: day.Add(time.Duration(c+1) * time.Hour),
					DurationS: 60}, Network: "CMCC", Day: day})
			}
			keys = append(keys, DayKey{MSISDN: msisdn, Day: day})
		}
	}
	if err := w.InsertCDR(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := w.refreshInParallel(ctx, keys, DailyRules{HomeNetwork: "CMCC"}, 7); err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]uint64{"2026-11-20": 1, "2026-11-21": 2} {
		if n := testenv.Count(t, conn, "SELECT count() FROM "+ch.Database+".subscriber_daily FINAL WHERE day = '"+d+"' AND calls = "+fmt.Sprint(want)); n != 30 {
			t.Errorf("%s: %d subscribers with %d calls, want 30", d, n, want)
		}
	}
}

// migratedWarehouse opens a warehouse on a fresh scratch database with the
// schema applied.
func migratedWarehouse(t testing.TB) (*Warehouse, config.ClickHouse, driver.Conn) {
	t.Helper()
	ch, conn := testenv.ClickHouse(t)
	w, err := Open(context.Background(), ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return w, ch, conn
}
