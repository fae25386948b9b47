package warehouse_test

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
)

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func span(from, to string) warehouse.DayRange {
	return warehouse.DayRange{From: date(from), To: date(to)}
}

func openWarehouse(t testing.TB) (*warehouse.Warehouse, driver.Conn, string) {
	t.Helper()
	ch, conn := testenv.ClickHouse(t)
	return openWarehouseWith(t, ch), conn, ch.Database
}

// openWarehouseWith opens a warehouse with ch and applies the schema.
func openWarehouseWith(t testing.TB, ch config.ClickHouse) *warehouse.Warehouse {
	t.Helper()
	wh, err := warehouse.Open(context.Background(), ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	if _, err := wh.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return wh
}

type dailyFixture struct {
	msisdn, day                   string
	calls                         uint64
	minutes, moMinutes, offnetMin float64
	payments                      uint64
	version                       uint64
}

func insertDaily(t *testing.T, conn driver.Conn, db string, rows ...dailyFixture) {
	t.Helper()
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+
		".subscriber_daily (msisdn, day, calls, minutes, mo_minutes, offnet_minutes, payments, version)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		v := r.version
		if v == 0 {
			v = 10
		}
		if err := b.Append(r.msisdn, date(r.day), r.calls, r.minutes, r.moMinutes, r.offnetMin, r.payments, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// ranges22 are the default windows of 2026-11-22 (see daily.Ranges).
var ranges22 = warehouse.DailyRanges{
	Day:               span("2026-11-22", "2026-11-22"),
	OffnetRecent:      span("2026-11-16", "2026-11-22"),
	OffnetBaseline:    span("2026-10-19", "2026-11-15"),
	UsageRecent:       span("2026-11-16", "2026-11-22"),
	UsageBaseline:     span("2026-10-19", "2026-11-15"),
	PeriodRecent:      span("2026-10-24", "2026-11-22"),
	PeriodPrevious:    span("2026-09-24", "2026-10-23"),
	PeriodYearEarlier: span("2025-10-24", "2025-11-22"),
	PaymentsRecent:    span("2026-08-25", "2026-11-22"),
	PaymentsPrevious:  span("2026-05-27", "2026-08-24"),
	SilentBaseline:    span("2026-10-25", "2026-11-21"),
}

// TestScanDailySums puts rows on both sides of every window edge and checks
// that each sum counts exactly the days of its window, reads FINAL, and
// rounds minutes to whole seconds.
func TestScanDailySums(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	const a = "13800000001"
	insertDaily(t, conn, db,
		dailyFixture{a, "2026-11-22", 9, 999, 999, 999, 9, 1}, // superseded by the version below
		dailyFixture{a, "2026-11-22", 2, 1.5, 1, 0.5, 1, 20},
		dailyFixture{a, "2026-11-23", 50, 50, 50, 50, 50, 0}, // after the day
		dailyFixture{a, "2026-11-16", 1, 2, 2, 1, 0, 0},
		dailyFixture{a, "2026-11-15", 3, 4, 4, 2, 0, 0},
		dailyFixture{a, "2026-10-19", 5, 8, 8, 4, 0, 0},
		dailyFixture{a, "2026-10-18", 7, 16, 16, 8, 0, 0},
		dailyFixture{a, "2026-09-23", 1, 32, 32, 16, 1, 0},
		dailyFixture{a, "2026-08-25", 0, 0, 0, 0, 1, 0},
		dailyFixture{a, "2026-08-24", 0, 0, 0, 0, 1, 0},
		dailyFixture{a, "2026-05-27", 0, 0, 0, 0, 1, 0},
		dailyFixture{a, "2026-05-26", 0, 0, 0, 0, 1, 0},
		dailyFixture{a, "2025-11-23", 1, 100, 100, 0, 0, 0},
		dailyFixture{a, "2025-11-22", 1, 2, 2, 0, 0, 0},
		dailyFixture{a, "2025-11-01", 0, 0, 0, 0, 1, 0}, // a payment, no call: not a day of call data
		dailyFixture{a, "2025-10-24", 1, 1, 1, 0, 0, 0},
		dailyFixture{a, "2025-10-23", 1, 100, 100, 0, 0, 0},
		// 7 s and 13 s, stored as minutes: exact seconds again.
		dailyFixture{"13800000002", "2026-11-20", 2, 20.0 / 60, 7.0 / 60, 13.0 / 60, 0, 0},
		// Rows only outside every window: not returned at all.
		dailyFixture{"13800000003", "2026-11-23", 1, 1, 1, 1, 0, 0},
		dailyFixture{"13800000003", "2026-03-01", 1, 1, 1, 1, 0, 0},
	)
	got := map[string]warehouse.DailySums{}
	err := wh.ScanDailySums(context.Background(), ranges22, func(s *warehouse.DailySums) error {
		got[s.MSISDN] = *s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]warehouse.DailySums{
		a: {MSISDN: a,
			OffnetRecentMOSeconds: 60 + 120, OffnetRecentOffnetSeconds: 30 + 60,
			OffnetBaselineMOSeconds: 240 + 480, OffnetBaselineOffnetSeconds: 120 + 240,
			UsageRecentSeconds: 90 + 120, UsageBaselineSeconds: 240 + 480,
			PeriodRecentSeconds: 90 + 120 + 240, PeriodPreviousSeconds: 480 + 960, PeriodYearEarlierSeconds: 120 + 60,
			PeriodYearEarlierDays: 2,
			PaymentsRecent:        1 + 1 + 1, PaymentsPrevious: 1 + 1,
			CallsDay: 2, CallsBaseline: 1 + 3},
		"13800000002": {MSISDN: "13800000002", OffnetRecentMOSeconds: 7, OffnetRecentOffnetSeconds: 13,
			UsageRecentSeconds: 20, PeriodRecentSeconds: 20, CallsBaseline: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sums\n%+v\nwant\n%+v", got, want)
	}

	stop := errors.New("stop")
	n := 0
	err = wh.ScanDailySums(context.Background(), ranges22, func(*warehouse.DailySums) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("an error from fn must stop the scan and be returned: %v after %d rows", err, n)
	}
}

func TestScanProfileDates(t *testing.T) {
	wh, conn, db := openWarehouse(t)
	b, err := conn.PrepareBatch(context.Background(), "INSERT INTO "+db+".subscribers (msisdn, birthday, promo_end, status, version)")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][]any{
		{"13800000001", "1985-11-25", "", "active", uint64(1)},
		{"13800000001", "1985-01-01", "", "active", uint64(0)}, // older version
		{"13800000002", "1985-03-03", "2026-12-22", "active", uint64(1)},
		{"13800000003", "1985-03-03", "2026-12-23", "active", uint64(1)},
		{"13800000004", "", "", "deactivated", uint64(1)},
		{"13800000005", "1990-11-26", "2026-11-22", "active", uint64(1)},
		{"13800000006", "bad", "soon", "", uint64(1)},
	} {
		if err := b.Append(r...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	promo := span("2026-11-23", "2026-12-22")
	q := warehouse.ProfileQuery{PromoEnd: &promo, BirthdayMonthDays: []string{"11-23", "11-24", "11-25"}, Statuses: []string{"deactivated"}}
	var got []string
	err = wh.ScanProfileDates(context.Background(), q, func(p warehouse.ProfileDates) error {
		got = append(got, p.MSISDN+" "+p.Birthday+" "+p.PromoEnd+" "+p.Status)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	want := []string{"13800000001 1985-11-25  active", "13800000002 1985-03-03 2026-12-22 active", "13800000004   deactivated"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("profiles %q, want %q", got, want)
	}
	called := false
	if err := wh.ScanProfileDates(context.Background(), warehouse.ProfileQuery{}, func(warehouse.ProfileDates) error {
		called = true
		return nil
	}); err != nil || called {
		t.Errorf("an empty query selects nothing: called %v, %v", called, err)
	}
}
