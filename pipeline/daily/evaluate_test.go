package daily

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// fakeSource serves fixed sums and profiles, applying the profile query's
// filters like ClickHouse would.
type fakeSource struct {
	sums     []warehouse.DailySums
	profiles []warehouse.ProfileDates
	calls    int
	gate     chan struct{} // when set, ScanDailySums waits for it
	started  chan struct{} // when set, receives a value as ScanDailySums starts
	mu       sync.Mutex
	days     []warehouse.DayRange
	failures int // the first failures scans fail
}

func (f *fakeSource) ScanDailySums(ctx context.Context, r warehouse.DailyRanges, fn func(*warehouse.DailySums) error) error {
	f.mu.Lock()
	f.calls++
	f.days = append(f.days, r.Day)
	fail := f.failures > 0
	if fail {
		f.failures--
	}
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errors.New("clickhouse is not reachable")
	}
	for i := range f.sums {
		s := f.sums[i]
		if err := fn(&s); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeSource) ScanProfileDates(_ context.Context, q warehouse.ProfileQuery, fn func(warehouse.ProfileDates) error) error {
	for _, p := range f.profiles {
		match := false
		if q.PromoEnd != nil && p.PromoEnd >= day(q.PromoEnd.From) && p.PromoEnd <= day(q.PromoEnd.To) {
			match = true
		}
		for _, md := range q.BirthdayMonthDays {
			match = match || (len(p.Birthday) == 10 && p.Birthday[5:] == md)
		}
		for _, s := range q.Statuses {
			match = match || p.Status == s
		}
		if match {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return nil
}

type fakePublisher struct {
	mu      sync.Mutex
	batches [][]warehouse.WarningRow
}

func (p *fakePublisher) Publish(_ context.Context, rows []warehouse.WarningRow) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.batches = append(p.batches, append([]warehouse.WarningRow(nil), rows...))
	return nil
}

func (p *fakePublisher) rows() []warehouse.WarningRow {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []warehouse.WarningRow
	for _, b := range p.batches {
		out = append(out, b...)
	}
	return out
}

var shanghai = mustLoad("Asia/Shanghai")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func testConfig() Config {
	return Config{Thresholds: signals.DefaultThresholds(), Location: shanghai}
}

// population: one subscriber per signal, one firing two, a quiet one and a
// departed one whose usage dropped.
func population() *fakeSource {
	const minute = 60
	return &fakeSource{
		sums: []warehouse.DailySums{
			{MSISDN: "13800000009", UsageRecentSeconds: 0, UsageBaselineSeconds: 28 * 20 * minute, CallsDay: 0, CallsBaseline: 28 * 4,
				PeriodRecentSeconds: 23 * 20 * minute, PeriodPreviousSeconds: 30 * 20 * minute},
			{MSISDN: "13800000001", OffnetRecentMOSeconds: 1000, OffnetRecentOffnetSeconds: 600, OffnetBaselineMOSeconds: 1000,
				OffnetBaselineOffnetSeconds: 100, UsageRecentSeconds: 7 * 20 * minute, UsageBaselineSeconds: 28 * 20 * minute,
				CallsDay: 3, CallsBaseline: 90},
			{MSISDN: "13800000002", PaymentsRecent: 1, PaymentsPrevious: 3, CallsDay: 1},
			{MSISDN: "13800000003", CallsDay: 5, CallsBaseline: 140, UsageRecentSeconds: 7 * 20 * minute, UsageBaselineSeconds: 28 * 20 * minute},
			{MSISDN: "13800000004", UsageRecentSeconds: 0, UsageBaselineSeconds: 28 * 20 * minute, CallsBaseline: 28 * 4},
		},
		profiles: []warehouse.ProfileDates{
			{MSISDN: "13800000001", Birthday: "1985-11-25", PromoEnd: "2027-06-01", Status: "active"},
			{MSISDN: "13800000005", Birthday: "1990-01-01", PromoEnd: "2026-12-22", Status: "active"},
			{MSISDN: "13800000004", Birthday: "1990-11-24", Status: StatusDeactivated},
		},
	}
}

type key struct{ msisdn, signal string }

func keys(rows []warehouse.WarningRow) map[key]bool {
	out := map[key]bool{}
	for _, r := range rows {
		out[key{r.MSISDN, r.Signal}] = true
	}
	return out
}

func TestEvaluate(t *testing.T) {
	src, pub := population(), &fakePublisher{}
	cfg := testConfig()
	cfg.BatchSize = 1
	res, err := Evaluate(context.Background(), d("2026-11-22"), src, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rows := pub.rows()
	want := map[key]bool{
		{"13800000001", signals.OffnetShareRise}: true,
		{"13800000001", signals.Birthday}:        true,
		{"13800000002", signals.PaymentFreqDrop}: true,
		{"13800000005", signals.PromoExpiry}:     true,
		{"13800000009", signals.UsageDropDaily}:  true,
		{"13800000009", signals.SilentYesterday}: true,
	}
	if got := keys(rows); !reflect.DeepEqual(got, want) || len(rows) != len(want) {
		t.Fatalf("warnings %v, want %v", got, want)
	}
	if res.Published != 6 || res.Subscribers != 5 || res.Warnings[signals.SilentYesterday] != 1 ||
		res.Warnings[signals.UsageDropPeriod] != 0 || len(res.Warnings) != 7 {
		t.Errorf("result %+v", res)
	}
	// Batches of one still keep a subscriber's warnings together, in MSISDN order.
	var order []string
	for _, b := range pub.batches {
		for _, r := range b[1:] {
			if r.MSISDN != b[0].MSISDN {
				t.Errorf("a batch mixes subscribers: %s and %s", b[0].MSISDN, r.MSISDN)
			}
		}
		order = append(order, b[0].MSISDN)
		if b[0].MSISDN == "13800000009" && len(b) != 2 {
			t.Errorf("13800000009's two warnings were split over batches")
		}
	}
	if want := []string{"13800000001", "13800000002", "13800000005", "13800000009"}; !reflect.DeepEqual(order, want) {
		t.Errorf("batches in order %v, want %v", order, want)
	}

	endOf22 := time.Date(2026, 11, 22, 23, 59, 59, 0, shanghai)
	for _, r := range rows {
		info, _ := signals.Lookup(r.Signal)
		if r.Severity != info.Severity || r.Source != warehouse.SourceDaily || r.SourceTopic != "" ||
			r.Partition != -1 || r.Offset != -1 || r.Tier != "" || r.Evidence == nil {
			t.Errorf("%s %s: row %+v", r.MSISDN, r.Signal, r)
		}
		switch r.Signal {
		case signals.SilentYesterday:
			if !r.DetectedAt.Equal(endOf22) || !r.WindowStart.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, shanghai)) ||
				!r.WindowEnd.Equal(endOf22) || r.WarningID != signals.WarningID(r.MSISDN, r.Signal, "2026-11-22") {
				t.Errorf("silent_yesterday: detected %v window %v-%v", r.DetectedAt, r.WindowStart, r.WindowEnd)
			}
		case signals.UsageDropDaily:
			if !r.DetectedAt.Equal(endOf22) || !r.WindowStart.Equal(time.Date(2026, 11, 16, 0, 0, 0, 0, shanghai)) {
				t.Errorf("usage_drop_daily: detected %v window %v-%v", r.DetectedAt, r.WindowStart, r.WindowEnd)
			}
		case signals.PromoExpiry:
			// Came into range on 22 November (30 days before 22 December).
			if !r.DetectedAt.Equal(endOf22) || !r.WindowEnd.Equal(time.Date(2026, 12, 22, 23, 59, 59, 0, shanghai)) ||
				r.WarningID != signals.WarningID(r.MSISDN, r.Signal, "2026-12-22") {
				t.Errorf("promo_expiry: %+v", r)
			}
		case signals.Birthday:
			// 25 November came into range on the 22nd (3 days ahead).
			if !r.DetectedAt.Equal(endOf22) || r.WarningID != signals.WarningID(r.MSISDN, r.Signal, "2026-11-25") ||
				r.Severity != schemas.SeverityInfo {
				t.Errorf("birthday: %+v", r)
			}
		}
	}

	// The next day: the birthday and the promotion are the same occasions,
	// so the same rows; the day's own signals are new warnings.
	pub2 := &fakePublisher{}
	if _, err := Evaluate(context.Background(), d("2026-11-23"), src, pub2, testConfig()); err != nil {
		t.Fatal(err)
	}
	next := map[key]warehouse.WarningRow{}
	for _, r := range pub2.rows() {
		next[key{r.MSISDN, r.Signal}] = r
	}
	for _, r := range rows {
		n, ok := next[key{r.MSISDN, r.Signal}]
		occasion := r.Signal == signals.Birthday || r.Signal == signals.PromoExpiry
		if occasion && !reflect.DeepEqual(n, r) {
			t.Errorf("%s %s on the next day:\n%+v\nwant the same row\n%+v", r.MSISDN, r.Signal, n, r)
		}
		if !occasion && ok && n.WarningID == r.WarningID {
			t.Errorf("%s %s on the next day reuses the id of the day before", r.MSISDN, r.Signal)
		}
	}
}

func TestEvaluateTwiceGivesTheSameRows(t *testing.T) {
	src := population()
	a, b := &fakePublisher{}, &fakePublisher{}
	for _, p := range []*fakePublisher{a, b} {
		if _, err := Evaluate(context.Background(), d("2026-11-22"), src, p, testConfig()); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(a.rows(), b.rows()) {
		t.Errorf("a rerun produced different rows:\n%+v\n%+v", a.rows(), b.rows())
	}
}

func TestEvaluateRefusesBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Thresholds.UsageDropDaily.MaxRatio = 2
	if _, err := Evaluate(context.Background(), d("2026-11-22"), population(), &fakePublisher{}, cfg); err == nil {
		t.Error("a ratio above 1 must be refused")
	}
	cfg = testConfig()
	cfg.Location = nil
	if _, err := Evaluate(context.Background(), d("2026-11-22"), population(), &fakePublisher{}, cfg); err == nil {
		t.Error("a missing time zone must be refused")
	}
}
