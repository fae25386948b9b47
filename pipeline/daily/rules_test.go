package daily

import (
	"reflect"
	"testing"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
)

func d(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

func rng(from, to string) warehouse.DayRange { return warehouse.DayRange{From: d(from), To: d(to)} }

func TestRanges(t *testing.T) {
	r := Ranges(time.Date(2026, 11, 22, 23, 0, 0, 0, time.FixedZone("CST", 8*3600)), signals.DefaultThresholds())
	want := warehouse.DailyRanges{
		Day:               rng("2026-11-22", "2026-11-22"),
		OffnetRecent:      rng("2026-11-16", "2026-11-22"),
		OffnetBaseline:    rng("2026-10-19", "2026-11-15"),
		UsageRecent:       rng("2026-11-16", "2026-11-22"),
		UsageBaseline:     rng("2026-10-19", "2026-11-15"),
		PeriodRecent:      rng("2026-10-24", "2026-11-22"),
		PeriodPrevious:    rng("2026-09-24", "2026-10-23"),
		PeriodYearEarlier: rng("2025-10-24", "2025-11-22"),
		PaymentsRecent:    rng("2026-08-25", "2026-11-22"),
		PaymentsPrevious:  rng("2026-05-27", "2026-08-24"),
		SilentBaseline:    rng("2026-10-25", "2026-11-21"),
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("Ranges(2026-11-22) =\n%+v\nwant\n%+v", r, want)
	}

	th := signals.DefaultThresholds()
	th.OffnetShareRise.RecentDays, th.OffnetShareRise.BaselineDays = 14, 56
	th.UsageDropPeriod.Days = 7
	r = Ranges(d("2026-11-22"), th)
	if r.OffnetRecent != rng("2026-11-09", "2026-11-22") || r.OffnetBaseline != rng("2026-09-14", "2026-11-08") {
		t.Errorf("configured 14/56 days: recent %v baseline %v", r.OffnetRecent, r.OffnetBaseline)
	}
	if r.PeriodRecent.Days() != 7 || r.PeriodYearEarlier != rng("2025-11-16", "2025-11-22") {
		t.Errorf("configured 7 days: recent %v year earlier %v", r.PeriodRecent, r.PeriodYearEarlier)
	}

	for _, tt := range []struct{ day, yearEarlierTo string }{
		{"2028-02-29", "2027-02-28"}, // leap day: the same 30 days end on 28 February
		{"2027-03-01", "2026-03-01"},
		{"2027-01-05", "2026-01-05"},
	} {
		r := Ranges(d(tt.day), signals.DefaultThresholds())
		if r.PeriodYearEarlier.To != d(tt.yearEarlierTo) || r.PeriodYearEarlier.Days() != 30 {
			t.Errorf("day %s: year-earlier window %v, want 30 days ending %s", tt.day, r.PeriodYearEarlier, tt.yearEarlierTo)
		}
	}
}

var day22 = Ranges(d("2026-11-22"), signals.DefaultThresholds())

func TestOffnetShareRise(t *testing.T) {
	th := signals.DefaultThresholds().OffnetShareRise
	tests := []struct {
		name                   string
		moR, offR, moB, offB   uint64
		want                   bool
		recentShare, baseShare float64
	}{
		{"share and ratio well over", 1000, 520, 1000, 200, true, 0.52, 0.2},
		{"share exactly 40%", 1000, 400, 1000, 200, true, 0.4, 0.2},
		{"share just under 40%", 1000, 399, 1000, 200, false, 0, 0},
		{"ratio exactly 1.5", 1000, 450, 1000, 300, true, 0.45, 0.3},
		{"ratio just under 1.5", 1000, 449, 1000, 300, false, 0, 0},
		{"high share that was always high", 1000, 900, 1000, 800, false, 0, 0},
		{"baseline had no off-net minutes", 600, 300, 2000, 0, true, 0.5, 0},
		{"no MO minutes in the baseline: no history", 1000, 900, 0, 0, false, 0, 0},
		{"no MO minutes recently", 0, 0, 1000, 100, false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &warehouse.DailySums{OffnetRecentMOSeconds: tt.moR, OffnetRecentOffnetSeconds: tt.offR,
				OffnetBaselineMOSeconds: tt.moB, OffnetBaselineOffnetSeconds: tt.offB}
			ev, ok := offnetShareRise(s, day22, th)
			if ok != tt.want {
				t.Fatalf("fires = %v, want %v (evidence %v)", ok, tt.want, ev)
			}
			if ok && (ev["recent_share"] != tt.recentShare || ev["baseline_share"] != tt.baseShare) {
				t.Errorf("evidence shares %v / %v, want %v / %v", ev["recent_share"], ev["baseline_share"], tt.recentShare, tt.baseShare)
			}
		})
	}
	ev, _ := offnetShareRise(&warehouse.DailySums{OffnetRecentMOSeconds: 1000, OffnetRecentOffnetSeconds: 520,
		OffnetBaselineMOSeconds: 1000, OffnetBaselineOffnetSeconds: 200}, day22, th)
	want := evidence{"recent_share": 0.52, "baseline_share": 0.2, "min_share": 0.4, "min_ratio": 1.5,
		"recent_days": 7, "baseline_days": 28, "from": "2026-11-16", "to": "2026-11-22",
		"baseline_from": "2026-10-19", "baseline_to": "2026-11-15", "recent_offnet_minutes": 8.7,
		"recent_mo_minutes": 16.7, "baseline_offnet_minutes": 3.3, "baseline_mo_minutes": 16.7}
	if !reflect.DeepEqual(ev, want) {
		t.Errorf("evidence\n%v\nwant\n%v", ev, want)
	}

	// A minimum volume: 16.7 MO minutes recently are not enough for 17, are for 16.
	sums := &warehouse.DailySums{OffnetRecentMOSeconds: 1000, OffnetRecentOffnetSeconds: 520,
		OffnetBaselineMOSeconds: 1000, OffnetBaselineOffnetSeconds: 200}
	th.MinRecentMinutes = 17
	if ev, ok := offnetShareRise(sums, day22, th); ok {
		t.Errorf("fires with 16.7 recent MO minutes under a minimum of 17: %v", ev)
	}
	th.MinRecentMinutes = 16
	if ev, ok := offnetShareRise(sums, day22, th); !ok || ev["min_recent_mo_minutes"] != 16.0 {
		t.Errorf("with a minimum of 16: fires %v, evidence %v", ok, ev)
	}
}

func TestUsageDropDaily(t *testing.T) {
	th := signals.DefaultThresholds().UsageDropDaily // 7 vs 28 days, ≤ 50%, baseline ≥ 10 min/day
	const minute = 60
	tests := []struct {
		name         string
		recent, base uint64 // seconds
		want         bool
	}{
		{"halved exactly", 7 * 10 * minute, 28 * 20 * minute, true},
		{"just over half", 7*10*minute + 1, 28 * 20 * minute, false},
		{"stopped calling", 0, 28 * 20 * minute, true},
		{"baseline exactly 10 min/day", 0, 28 * 10 * minute, true},
		{"baseline just under 10 min/day", 0, 28*10*minute - 1, false},
		{"steady", 7 * 20 * minute, 28 * 20 * minute, false},
		{"no history", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := usageDropDaily(&warehouse.DailySums{UsageRecentSeconds: tt.recent, UsageBaselineSeconds: tt.base}, day22, th)
			if ok != tt.want {
				t.Fatalf("fires = %v, want %v (evidence %v)", ok, tt.want, ev)
			}
		})
	}
	ev, _ := usageDropDaily(&warehouse.DailySums{UsageRecentSeconds: 7 * 5 * minute, UsageBaselineSeconds: 28 * 20 * minute}, day22, th)
	if ev["recent_avg_minutes"] != 5.0 || ev["baseline_avg_minutes"] != 20.0 || ev["ratio"] != 0.25 ||
		ev["from"] != "2026-11-16" || ev["baseline_from"] != "2026-10-19" || ev["baseline_to"] != "2026-11-15" ||
		ev["min_baseline_minutes_per_day"] != 10.0 || ev["max_ratio"] != 0.5 {
		t.Errorf("evidence %v", ev)
	}
}

func TestUsageDropPeriod(t *testing.T) {
	th := signals.DefaultThresholds().UsageDropPeriod // 30 days, ≤ 50%
	tests := []struct {
		name                      string
		recent, previous, yearAgo uint64
		yearAgoDays               uint64
		want                      bool
		baseline                  string
	}{
		{"half of a year earlier", 9000, 0, 18000, 30, true, baselineYearEarlier},
		{"just over half of a year earlier", 9001, 0, 18000, 30, false, ""},
		{"a year earlier wins over the previous period", 9001, 100000, 18000, 30, false, ""},
		{"one day of data a year earlier is enough", 100, 100000, 600, 1, true, baselineYearEarlier},
		{"no data a year earlier: previous period", 9000, 18000, 0, 0, true, baselinePrevious},
		{"no data a year earlier, just over half of the previous period", 9001, 18000, 0, 0, false, ""},
		{"calls of zero seconds a year earlier: nothing to drop from", 0, 18000, 0, 3, false, ""},
		{"no history at all", 0, 0, 0, 0, false, ""},
		{"stopped calling", 0, 18000, 0, 0, true, baselinePrevious},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &warehouse.DailySums{PeriodRecentSeconds: tt.recent, PeriodPreviousSeconds: tt.previous,
				PeriodYearEarlierSeconds: tt.yearAgo, PeriodYearEarlierDays: tt.yearAgoDays}
			ev, ok := usageDropPeriod(s, day22, th)
			if ok != tt.want {
				t.Fatalf("fires = %v, want %v (evidence %v)", ok, tt.want, ev)
			}
			if !ok {
				return
			}
			if ev["baseline"] != tt.baseline {
				t.Errorf("baseline %v, want %v", ev["baseline"], tt.baseline)
			}
			wantFrom := map[string]string{baselineYearEarlier: "2025-10-24", baselinePrevious: "2026-09-24"}[tt.baseline]
			if ev["baseline_from"] != wantFrom || ev["from"] != "2026-10-24" || ev["to"] != "2026-11-22" {
				t.Errorf("ranges in evidence: %v", ev)
			}
		})
	}
}

func TestPaymentFreqDrop(t *testing.T) {
	th := signals.DefaultThresholds().PaymentFreqDrop // 90 vs 90 days, ≤ 50%, ≥ 2 before
	tests := []struct {
		name           string
		recent, before uint64
		want           bool
	}{
		{"2 then 1", 1, 2, true},
		{"3 then 1", 1, 3, true},
		{"3 then 2", 2, 3, false},
		{"4 then 2", 2, 4, true},
		{"1 then 0: too few before", 0, 1, false},
		{"none ever", 0, 0, false},
		{"more than before", 5, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := paymentFreqDrop(&warehouse.DailySums{PaymentsRecent: tt.recent, PaymentsPrevious: tt.before}, day22, th)
			if ok != tt.want {
				t.Fatalf("fires = %v, want %v (evidence %v)", ok, tt.want, ev)
			}
			if ok && (ev["from"] != "2026-08-25" || ev["baseline_from"] != "2026-05-27" || ev["baseline_to"] != "2026-08-24") {
				t.Errorf("ranges in evidence: %v", ev)
			}
		})
	}
}

func TestSilentYesterday(t *testing.T) {
	th := signals.DefaultThresholds().SilentYesterday // ≥ 3 calls a day over 28 days
	tests := []struct {
		name      string
		day, base uint64
		want      bool
	}{
		{"silent, averaging exactly 3", 0, 84, true},
		{"silent, averaging just under 3", 0, 83, false},
		{"one call yesterday", 1, 200, false},
		{"silent with no history", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, ok := silentYesterday(&warehouse.DailySums{CallsDay: tt.day, CallsBaseline: tt.base}, day22, th)
			if ok != tt.want {
				t.Fatalf("fires = %v, want %v (evidence %v)", ok, tt.want, ev)
			}
			if ok && (ev["day"] != "2026-11-22" || ev["baseline_from"] != "2026-10-25" || ev["baseline_to"] != "2026-11-21" ||
				ev["baseline_avg_calls"] != 3.0) {
				t.Errorf("evidence %v", ev)
			}
		})
	}
}

func TestPromoExpiry(t *testing.T) {
	th := signals.DefaultThresholds().PromoExpiry // 30 days ahead
	tests := []struct {
		name, day, promoEnd string
		want                bool
	}{
		{"ends in 30 days", "2026-11-22", "2026-12-22", true},
		{"ends in 31 days", "2026-11-22", "2026-12-23", false},
		{"ends tomorrow", "2026-11-22", "2026-11-23", true},
		{"ended on the evaluated day", "2026-11-22", "2026-11-22", false},
		{"ended long ago", "2026-11-22", "2025-01-01", false},
		{"next year", "2026-12-20", "2027-01-10", true},
		{"no promotion", "2026-11-22", "", false},
		{"malformed", "2026-11-22", "2026-12-1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end, ev, ok := promoExpiry(tt.promoEnd, d(tt.day), th)
			if ok != tt.want {
				t.Fatalf("fires = %v, want %v", ok, tt.want)
			}
			if ok && (day(end) != tt.promoEnd || ev["promo_end"] != tt.promoEnd || ev["days_ahead"] != 30) {
				t.Errorf("anchor %s, evidence %v", day(end), ev)
			}
		})
	}
}

func TestBirthday(t *testing.T) {
	th := signals.DefaultThresholds().Birthday // 3 days ahead
	tests := []struct {
		name, day, birthday string
		occasion            string // "" when it must not fire
		age                 int
	}{
		{"in 3 days", "2026-11-22", "1985-11-25", "2026-11-25", 41},
		{"in 4 days", "2026-11-22", "1985-11-26", "", 0},
		{"tomorrow", "2026-11-22", "1985-11-23", "2026-11-23", 41},
		{"on the evaluated day: over", "2026-11-22", "1985-11-22", "", 0},
		{"year wrap to 1 January", "2026-12-30", "1990-01-01", "2027-01-01", 37},
		{"year wrap, still this year", "2026-12-30", "1990-12-31", "2026-12-31", 36},
		{"year wrap, 2 January", "2026-12-30", "1990-01-02", "2027-01-02", 37},
		{"year wrap, 3 January too far", "2026-12-30", "1990-01-03", "", 0},
		{"29 February in a common year falls on the 28th", "2027-02-25", "2000-02-29", "2027-02-28", 27},
		{"29 February, 28th still 4 days ahead", "2027-02-24", "2000-02-29", "", 0},
		{"29 February in a leap year", "2028-02-26", "2000-02-29", "2028-02-29", 28},
		{"29 February in a leap year, 4 days ahead", "2028-02-25", "2000-02-29", "", 0},
		{"28 February in a leap year", "2028-02-27", "1990-02-28", "2028-02-28", 38},
		{"1 March after a common February", "2027-02-26", "1990-03-01", "2027-03-01", 37},
		{"born after the occasion year", "2026-11-22", "2030-11-25", "", 0},
		{"no birthday", "2026-11-22", "", "", 0},
		{"malformed", "2026-11-22", "11-25", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			occ, ev, ok := birthday(tt.birthday, d(tt.day), th)
			if ok != (tt.occasion != "") {
				t.Fatalf("fires = %v (occasion %s), want occasion %q", ok, day(occ), tt.occasion)
			}
			if ok && (day(occ) != tt.occasion || ev["occasion"] != tt.occasion || ev["age"] != tt.age || ev["birthday"] != tt.birthday) {
				t.Errorf("occasion %s, evidence %v; want %s, age %d", day(occ), ev, tt.occasion, tt.age)
			}
		})
	}
}

func TestBirthdayMonthDays(t *testing.T) {
	tests := []struct {
		day   string
		ahead int
		want  []string
	}{
		{"2027-02-25", 3, []string{"02-26", "02-27", "02-28", "02-29"}},
		{"2028-02-25", 3, []string{"02-26", "02-27", "02-28"}},
		{"2026-12-30", 3, []string{"12-31", "01-01", "01-02"}},
	}
	for _, tt := range tests {
		if got := birthdayMonthDays(d(tt.day), tt.ahead); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("birthdayMonthDays(%s, %d) = %v, want %v", tt.day, tt.ahead, got, tt.want)
		}
	}
	if n := len(birthdayMonthDays(d("2026-11-22"), 400)); n != 366 {
		t.Errorf("a year or more ahead covers %d month-days, want all 366", n)
	}
	// Every occasion birthday finds must pass the query's coarse filter.
	for _, start := range []string{"2026-11-22", "2027-02-24", "2028-02-26", "2026-12-29"} {
		for _, b := range []string{"2000-02-29", "1990-02-28", "1990-03-01", "1990-01-01", "1990-11-25", "1990-12-31"} {
			if _, _, ok := birthday(b, d(start), signals.AheadThresholds{DaysAhead: 3}); ok {
				found := false
				for _, md := range birthdayMonthDays(d(start), 3) {
					found = found || md == b[5:]
				}
				if !found {
					t.Errorf("day %s: birthday %s fires but the profile query would not select it", start, b)
				}
			}
		}
	}
}
