package warehouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestRefreshDailyAcrossDaysAndMonths: one refresh of keys on the first and
// last day of two month partitions, and a day between, counts every touched
// subscriber-day from its facts (the day bounds of the query include both
// ends), and leaves the subscriber-days it was not given alone.
func TestRefreshDailyAcrossDaysAndMonths(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	ctx := context.Background()
	loc := time.FixedZone("CST", 8*3600)
	var rows []warehouse.CDRRow
	call := func(msisdn, day string, n int) {
		for i := 0; i < n; i++ {
			start := date(day).Add(time.Duration(10+i) * time.Hour).Add(-8 * time.Hour).In(loc)
			rows = append(rows, warehouse.CDRRow{
				CDR: schemas.CDR{EventID: msisdn + day + string(rune('a'+i)), MSISDN: msisdn, Peer: "13900000000",
					Direction: schemas.DirectionMO, StartTime: start, DurationS: 60},
				Network: "CMCC", Day: warehouse.LocalDay(start, loc),
			})
		}
	}
	call("13800000001", "2026-10-31", 1)
	call("13800000001", "2026-11-01", 2)
	call("13800000002", "2026-11-15", 3)
	call("13800000002", "2026-11-30", 4)
	call("13800000003", "2026-11-20", 5) // stored, but not given to the refresh
	if err := wh.InsertCDR(ctx, rows); err != nil {
		t.Fatal(err)
	}
	keys := []warehouse.DayKey{
		{MSISDN: "13800000002", Day: date("2026-11-30")}, {MSISDN: "13800000001", Day: date("2026-11-01")},
		{MSISDN: "13800000001", Day: date("2026-10-31")}, {MSISDN: "13800000002", Day: date("2026-11-15")},
	}
	if err := wh.RefreshDaily(ctx, keys, warehouse.DailyRules{HomeNetwork: "CMCC"}); err != nil {
		t.Fatal(err)
	}
	got := dailyCalls(t, conn, db)
	want := map[string]uint64{"13800000001 2026-10-31": 1, "13800000001 2026-11-01": 2,
		"13800000002 2026-11-15": 3, "13800000002 2026-11-30": 4}
	if len(got) != len(want) {
		t.Errorf("subscriber_daily has %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %d calls, want %d (all rows %v)", k, got[k], n, got)
		}
	}
}

// TestRefreshPendingDaily: the refresh recomputes the subscriber-days of the
// pending rows beyond each partition's mark and moves the marks, so the
// next refresh reads only what came after; rows a replay writes again at or
// below a mark are not read again, and each topic partition has its own
// mark.
func TestRefreshPendingDaily(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	ctx := context.Background()
	rules := warehouse.DailyRules{HomeNetwork: "CMCC"}
	var next int64
	store := func(partition int32, msisdn, day string, n int) []warehouse.PendingDay {
		var rows []warehouse.CDRRow
		var days []warehouse.PendingDay
		for i := 0; i < n; i++ {
			next++
			start := date(day).Add(time.Duration(next) * time.Minute)
			rows = append(rows, warehouse.CDRRow{
				CDR: schemas.CDR{EventID: fmt.Sprintf("e%d", next), MSISDN: msisdn, Peer: "13900000000",
					Direction: schemas.DirectionMO, StartTime: start, DurationS: 60},
				Network: "CMCC", Day: date(day), Provenance: warehouse.Provenance{Partition: partition, Offset: next},
			})
			days = append(days, warehouse.PendingDay{DayKey: warehouse.DayKey{MSISDN: msisdn, Day: date(day)}, Partition: partition, Offset: next})
		}
		if err := wh.InsertCDR(ctx, rows); err != nil {
			t.Fatal(err)
		}
		if err := wh.InsertPendingDays(ctx, "p.cdr.voice", days); err != nil {
			t.Fatal(err)
		}
		return days
	}
	calls := func() map[string]uint64 { return dailyCalls(t, conn, db) }
	refresh := func(wantDays int) {
		t.Helper()
		res, err := wh.RefreshPendingDaily(ctx, rules)
		if err != nil {
			t.Fatal(err)
		}
		if res.Days != wantDays {
			t.Errorf("refresh recomputed %d subscriber-days, want %d", res.Days, wantDays)
		}
		if n, err := wh.PendingDays(ctx); err != nil || n != 0 {
			t.Errorf("after the refresh %d pending rows (err %v), want 0", n, err)
		}
	}

	store(0, "13800000001", "2026-11-20", 2)
	store(1, "13800000002", "2026-11-20", 1)
	if n, err := wh.PendingDays(ctx); err != nil || n != 3 {
		t.Fatalf("%d pending rows (err %v), want 3", n, err)
	}
	refresh(2)
	if got := calls(); got["13800000001 2026-11-20"] != 2 || got["13800000002 2026-11-20"] != 1 || len(got) != 2 {
		t.Fatalf("after the first refresh subscriber_daily has %v", got)
	}

	// Later facts on partition 0 only: the next refresh reads them alone.
	store(0, "13800000001", "2026-11-20", 1)
	store(0, "13800000003", "2026-11-21", 1)
	refresh(2)
	if got := calls(); got["13800000001 2026-11-20"] != 3 || got["13800000003 2026-11-21"] != 1 || len(got) != 3 {
		t.Fatalf("after the second refresh subscriber_daily has %v", got)
	}

	// A replay of the first batch writes its pending rows again, at or
	// below the mark: nothing to recompute, the facts are counted once.
	if err := wh.InsertPendingDays(ctx, "p.cdr.voice", []warehouse.PendingDay{
		{DayKey: warehouse.DayKey{MSISDN: "13800000001", Day: date("2026-11-20")}, Partition: 0, Offset: 2}}); err != nil {
		t.Fatal(err)
	}
	refresh(0)

	// Another topic's partition 0 has its own mark.
	if err := wh.InsertPendingDays(ctx, "p.billing.events", []warehouse.PendingDay{
		{DayKey: warehouse.DayKey{MSISDN: "13800000002", Day: date("2026-11-20")}, Partition: 0, Offset: 1}}); err != nil {
		t.Fatal(err)
	}
	refresh(1)
	if got := calls(); got["13800000001 2026-11-20"] != 3 || got["13800000002 2026-11-20"] != 1 || len(got) != 3 {
		t.Fatalf("after the last refresh subscriber_daily has %v", got)
	}
}

// TestDropRefreshedPending: the days of subscriber_daily_pending recorded
// before yesterday go once every row of theirs is at or below its mark; a
// day with a row beyond a mark stays, and so do yesterday and today.
func TestDropRefreshedPending(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	ctx := context.Background()
	now := time.Now()
	record := func(offset int64, daysAgo int) {
		t.Helper()
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".subscriber_daily_pending (topic, kafka_partition, kafka_offset, msisdn, day, recorded_at)")
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Append("p.cdr.voice", int32(0), offset, "13800000001", date("2026-11-20"), now.AddDate(0, 0, -daysAgo)); err != nil {
			t.Fatal(err)
		}
		if err := batch.Send(); err != nil {
			t.Fatal(err)
		}
	}
	record(1, 3)
	record(2, 3)
	record(3, 4)
	record(4, 1)
	if _, err := wh.RefreshPendingDaily(ctx, warehouse.DailyRules{HomeNetwork: "CMCC"}); err != nil {
		t.Fatal(err)
	}
	record(5, 4) // recorded long ago, beyond the mark (4)
	record(6, 0)
	n, err := wh.DropRefreshedPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("dropped %d days, want 1 (three days ago)", n)
	}
	var offsets []int64
	if err := conn.QueryRow(ctx, "SELECT groupArray(kafka_offset) FROM (SELECT kafka_offset FROM "+db+".subscriber_daily_pending ORDER BY kafka_offset)").Scan(&offsets); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(offsets) != "[3 4 5 6]" {
		t.Errorf("left the rows of offsets %v, want [3 4 5 6]", offsets)
	}
}

// dailyCalls reads the calls of every subscriber-day in subscriber_daily,
// keyed "msisdn day".
func dailyCalls(t *testing.T, conn driver.Conn, db string) map[string]uint64 {
	t.Helper()
	got := map[string]uint64{}
	r, err := conn.Query(context.Background(), "SELECT msisdn, toString(day), calls FROM "+db+".subscriber_daily FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var msisdn, day string
		var n uint64
		if err := r.Scan(&msisdn, &day, &n); err != nil {
			t.Fatal(err)
		}
		got[msisdn+" "+day] = n
	}
	return got
}
