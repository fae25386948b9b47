package warehouse_test

import (
	"context"
	"testing"
	"time"

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
	got := map[string]uint64{}
	r, err := conn.Query(ctx, "SELECT msisdn, toString(day), calls FROM "+db+".subscriber_daily FINAL")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for r.Next() {
		var msisdn, day string
		var calls uint64
		if err := r.Scan(&msisdn, &day, &calls); err != nil {
			t.Fatal(err)
		}
		got[msisdn+" "+day] = calls
	}
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
