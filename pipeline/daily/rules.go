package daily

import (
	"math"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
)

// The decision functions below are pure: they take one subscriber's sums (or
// profile dates) and the thresholds, and say whether the signal fires and
// with what evidence. Comparisons are inclusive, as SPEC 4 words them (≥, ≤),
// and are made on products of the integer sums so that a value exactly at a
// threshold fires whatever the floating-point rounding of a quotient.

// date returns the calendar date of t (its own Year, Month, Day) as a UTC
// midnight, the form of warehouse day columns.
func date(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func addDays(d time.Time, n int) time.Time { return d.AddDate(0, 0, n) }

// yearEarlier is the same calendar day one year before d; 29 February maps
// to 28 February.
func yearEarlier(d time.Time) time.Time {
	y, m, dd := d.Date()
	if m == time.February && dd == 29 {
		dd = 28
	}
	return time.Date(y-1, m, dd, 0, 0, 0, 0, time.UTC)
}

// recent is the n days ending with d; before is the m days just before
// those n.
func recent(d time.Time, n int) warehouse.DayRange {
	return warehouse.DayRange{From: addDays(d, -(n - 1)), To: d}
}

func before(d time.Time, n, m int) warehouse.DayRange {
	return warehouse.DayRange{From: addDays(d, -(n + m - 1)), To: addDays(d, -n)}
}

// Ranges returns the windows the daily signals of day (its calendar date)
// sum over, derived from the thresholds: a recent window ending with the day
// and the baseline immediately before it, or the same window one year
// earlier for usage_drop_period.
func Ranges(day time.Time, t signals.Thresholds) warehouse.DailyRanges {
	d := date(day)
	p := t.UsageDropPeriod.Days
	ye := yearEarlier(d)
	return warehouse.DailyRanges{
		Day:               warehouse.DayRange{From: d, To: d},
		OffnetRecent:      recent(d, t.OffnetShareRise.RecentDays),
		OffnetBaseline:    before(d, t.OffnetShareRise.RecentDays, t.OffnetShareRise.BaselineDays),
		UsageRecent:       recent(d, t.UsageDropDaily.RecentDays),
		UsageBaseline:     before(d, t.UsageDropDaily.RecentDays, t.UsageDropDaily.BaselineDays),
		PeriodRecent:      recent(d, p),
		PeriodPrevious:    before(d, p, p),
		PeriodYearEarlier: warehouse.DayRange{From: addDays(ye, -(p - 1)), To: ye},
		PaymentsRecent:    recent(d, t.PaymentFreqDrop.Days),
		PaymentsPrevious:  before(d, t.PaymentFreqDrop.Days, t.PaymentFreqDrop.Days),
		SilentBaseline:    before(d, 1, t.SilentYesterday.BaselineDays),
	}
}

// evidence is what a warning carries so that a manager can read why it
// fired.
type evidence = map[string]any

func day(t time.Time) string { return t.Format(time.DateOnly) }

func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

func minutes(seconds uint64) float64 { return round(float64(seconds)/60, 1) }

// offnetShareRise: the off-net share of MO minutes over the recent window is
// at least min_share and at least min_ratio times the share over the
// baseline, over at least min_recent_mo_minutes of MO calls. No MO minutes in
// either window (no history) fires nothing.
func offnetShareRise(s *warehouse.DailySums, r warehouse.DailyRanges, t signals.OffnetShareThresholds) (evidence, bool) {
	moR, offR := float64(s.OffnetRecentMOSeconds), float64(s.OffnetRecentOffnetSeconds)
	moB, offB := float64(s.OffnetBaselineMOSeconds), float64(s.OffnetBaselineOffnetSeconds)
	if moR == 0 || moB == 0 {
		return nil, false
	}
	if offR < t.MinShare*moR || offR*moB < t.MinRatio*offB*moR || moR < 60*t.MinRecentMinutes {
		return nil, false
	}
	ev := evidence{
		"recent_share":            round(offR/moR, 3),
		"baseline_share":          round(offB/moB, 3),
		"recent_offnet_minutes":   minutes(s.OffnetRecentOffnetSeconds),
		"recent_mo_minutes":       minutes(s.OffnetRecentMOSeconds),
		"baseline_offnet_minutes": minutes(s.OffnetBaselineOffnetSeconds),
		"baseline_mo_minutes":     minutes(s.OffnetBaselineMOSeconds),
		"min_share":               t.MinShare,
		"min_ratio":               t.MinRatio,
		"recent_days":             t.RecentDays,
		"baseline_days":           t.BaselineDays,
		"from":                    day(r.OffnetRecent.From),
		"to":                      day(r.OffnetRecent.To),
		"baseline_from":           day(r.OffnetBaseline.From),
		"baseline_to":             day(r.OffnetBaseline.To),
	}
	if t.MinRecentMinutes > 0 {
		ev["min_recent_mo_minutes"] = t.MinRecentMinutes
	}
	return ev, true
}

// usageDropDaily: the average daily call minutes over the recent window are
// at most max_ratio of the baseline's average, and the baseline averages at
// least min_baseline_minutes_per_day (and is not empty).
func usageDropDaily(s *warehouse.DailySums, r warehouse.DailyRanges, t signals.UsageDropThresholds) (evidence, bool) {
	rec, base := float64(s.UsageRecentSeconds), float64(s.UsageBaselineSeconds)
	rd, bd := float64(t.RecentDays), float64(t.BaselineDays)
	if base == 0 || base < t.MinBaselineMinutes*60*bd {
		return nil, false
	}
	// rec/rd <= ratio * base/bd
	if rec*bd > t.MaxRatio*base*rd {
		return nil, false
	}
	recAvg, baseAvg := rec/60/rd, base/60/bd
	return evidence{
		"recent_avg_minutes":           round(recAvg, 1),
		"baseline_avg_minutes":         round(baseAvg, 1),
		"recent_minutes":               minutes(s.UsageRecentSeconds),
		"baseline_minutes":             minutes(s.UsageBaselineSeconds),
		"ratio":                        round(recAvg/baseAvg, 3),
		"max_ratio":                    t.MaxRatio,
		"min_baseline_minutes_per_day": t.MinBaselineMinutes,
		"recent_days":                  t.RecentDays,
		"baseline_days":                t.BaselineDays,
		"from":                         day(r.UsageRecent.From),
		"to":                           day(r.UsageRecent.To),
		"baseline_from":                day(r.UsageBaseline.From),
		"baseline_to":                  day(r.UsageBaseline.To),
	}, true
}

// Which baseline usage_drop_period compared against, in its evidence.
const (
	baselineYearEarlier = "year_earlier"
	baselinePrevious    = "previous_period"
)

// usageDropPeriod: the call minutes of the recent period are at most
// max_ratio of the same period one year earlier when that window has any
// day with calls, else of the period just before. An empty baseline fires
// nothing.
func usageDropPeriod(s *warehouse.DailySums, r warehouse.DailyRanges, t signals.PeriodDropThresholds) (evidence, bool) {
	kind, base, window := baselinePrevious, s.PeriodPreviousSeconds, r.PeriodPrevious
	if s.PeriodYearEarlierDays > 0 {
		kind, base, window = baselineYearEarlier, s.PeriodYearEarlierSeconds, r.PeriodYearEarlier
	}
	rec := s.PeriodRecentSeconds
	if base == 0 || float64(rec) > t.MaxRatio*float64(base) {
		return nil, false
	}
	return evidence{
		"recent_minutes":               minutes(rec),
		"baseline_minutes":             minutes(base),
		"baseline":                     kind,
		"year_earlier_days_with_calls": s.PeriodYearEarlierDays,
		"ratio":                        round(float64(rec)/float64(base), 3),
		"max_ratio":                    t.MaxRatio,
		"days":                         t.Days,
		"from":                         day(r.PeriodRecent.From),
		"to":                           day(r.PeriodRecent.To),
		"baseline_from":                day(window.From),
		"baseline_to":                  day(window.To),
	}, true
}

// paymentFreqDrop: payments in the recent window are at most max_ratio of
// those in the window before, which had at least min_baseline_payments.
func paymentFreqDrop(s *warehouse.DailySums, r warehouse.DailyRanges, t signals.PaymentThresholds) (evidence, bool) {
	rec, base := s.PaymentsRecent, s.PaymentsPrevious
	if base == 0 || base < uint64(max(t.MinBaselinePayments, 0)) || float64(rec) > t.MaxRatio*float64(base) {
		return nil, false
	}
	return evidence{
		"recent_payments":       rec,
		"baseline_payments":     base,
		"max_ratio":             t.MaxRatio,
		"min_baseline_payments": t.MinBaselinePayments,
		"days":                  t.Days,
		"from":                  day(r.PaymentsRecent.From),
		"to":                    day(r.PaymentsRecent.To),
		"baseline_from":         day(r.PaymentsPrevious.From),
		"baseline_to":           day(r.PaymentsPrevious.To),
	}, true
}

// silentYesterday: no call (MO or MT) on the evaluated day, for a
// subscriber averaging at least min_avg_calls a day over the days before.
func silentYesterday(s *warehouse.DailySums, r warehouse.DailyRanges, t signals.SilentThresholds) (evidence, bool) {
	if s.CallsDay != 0 || s.CallsBaseline == 0 || float64(s.CallsBaseline) < t.MinAvgCalls*float64(t.BaselineDays) {
		return nil, false
	}
	return evidence{
		"calls":              s.CallsDay,
		"day":                day(r.Day.To),
		"baseline_calls":     s.CallsBaseline,
		"baseline_avg_calls": round(float64(s.CallsBaseline)/float64(t.BaselineDays), 2),
		"min_avg_calls":      t.MinAvgCalls,
		"baseline_days":      t.BaselineDays,
		"baseline_from":      day(r.SilentBaseline.From),
		"baseline_to":        day(r.SilentBaseline.To),
	}, true
}

// parseDate reads a profile date, "YYYY-MM-DD", as a UTC midnight.
func parseDate(s string) (time.Time, bool) {
	t, err := time.Parse(time.DateOnly, s)
	return t, err == nil
}

// inAhead reports whether occasion falls within the days_ahead days after
// d: d < occasion ≤ d + ahead. The evaluated day itself is over when the job
// runs, so an occasion on it is no longer ahead.
func inAhead(occasion, d time.Time, ahead int) bool {
	return occasion.After(d) && !occasion.After(addDays(d, ahead))
}

// promoExpiry: the profile's promo_end falls within the next days_ahead
// days. It returns the promo_end date, the warning's anchor.
func promoExpiry(promoEnd string, d time.Time, t signals.AheadThresholds) (time.Time, evidence, bool) {
	end, ok := parseDate(promoEnd)
	if !ok || !inAhead(end, d, t.DaysAhead) {
		return time.Time{}, nil, false
	}
	return end, evidence{
		"promo_end":  day(end),
		"days_ahead": t.DaysAhead,
		"from":       day(addDays(end, -t.DaysAhead)),
		"to":         day(end),
	}, true
}

// birthdayOn returns the day the birthday (month and day of birth) is
// celebrated in year y: 29 February falls on 28 February in common years.
func birthdayOn(birth time.Time, y int) time.Time {
	m, dd := birth.Month(), birth.Day()
	if m == time.February && dd == 29 && !isLeap(y) {
		dd = 28
	}
	return time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

// birthday: the next birthday falls within the next days_ahead days. It
// returns the occasion (this year's or next year's birthday), the warning's
// anchor.
func birthday(birthdayText string, d time.Time, t signals.AheadThresholds) (time.Time, evidence, bool) {
	birth, ok := parseDate(birthdayText)
	if !ok {
		return time.Time{}, nil, false
	}
	last := addDays(d, t.DaysAhead)
	for y := d.Year(); y <= last.Year(); y++ {
		occ := birthdayOn(birth, y)
		if y < birth.Year() || !inAhead(occ, d, t.DaysAhead) {
			continue
		}
		return occ, evidence{
			"birthday":   birthdayText,
			"occasion":   day(occ),
			"age":        y - birth.Year(),
			"days_ahead": t.DaysAhead,
		}, true
	}
	return time.Time{}, nil, false
}

// birthdayMonthDays lists the "MM-DD" of every birthday that can be
// celebrated within days_ahead days after d: the coarse filter the profile
// query applies before birthday decides.
func birthdayMonthDays(d time.Time, ahead int) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for i := 1; i <= min(ahead, 366); i++ {
		x := addDays(d, i)
		add(x.Format("01-02"))
		if x.Month() == time.February && x.Day() == 28 && !isLeap(x.Year()) {
			add("02-29")
		}
	}
	return out
}
