package warehouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// DayRange is an inclusive range of local days, each a UTC midnight as Date
// columns hold them (see LocalDay).
type DayRange struct {
	From, To time.Time
}

// Days returns how many days the range spans.
func (r DayRange) Days() int { return int(r.To.Sub(r.From).Hours()/24) + 1 }

// DailyRanges are the windows one daily evaluation sums subscriber_daily
// over. Package daily derives them from the thresholds; this package only
// sums.
type DailyRanges struct {
	Day                                              DayRange // the evaluated day alone
	OffnetRecent, OffnetBaseline                     DayRange
	UsageRecent, UsageBaseline                       DayRange
	PeriodRecent, PeriodPrevious, PeriodYearEarlier  DayRange
	PaymentsRecent, PaymentsPrevious, SilentBaseline DayRange
}

// DailySums are one subscriber's sums over the DailyRanges. Minutes travel
// as whole seconds: every day's minutes are rounded to the second before
// summing, so the sums are exact integers and a rerun sees the very same
// numbers whatever order the server adds them in.
type DailySums struct {
	MSISDN string

	OffnetRecentMOSeconds       uint64 // MO seconds, OffnetRecent
	OffnetRecentOffnetSeconds   uint64 // off-net MO seconds, OffnetRecent
	OffnetBaselineMOSeconds     uint64
	OffnetBaselineOffnetSeconds uint64

	UsageRecentSeconds   uint64 // all call seconds (MO+MT), UsageRecent
	UsageBaselineSeconds uint64

	PeriodRecentSeconds      uint64
	PeriodPreviousSeconds    uint64
	PeriodYearEarlierSeconds uint64
	PeriodYearEarlierDays    uint64 // days with at least one call in PeriodYearEarlier

	PaymentsRecent   uint64
	PaymentsPrevious uint64

	CallsDay      uint64 // MO+MT calls on the evaluated day
	CallsBaseline uint64 // MO+MT calls over SilentBaseline
}

// dailySumsSQL reads subscriber_daily once: the WHERE keeps only the days
// some window needs (a near range and the year-earlier one, so the months in
// between are pruned by the partition key), and each sum picks its window
// with sumIf.
const dailySumsSQL = `SELECT msisdn,
    sumIf(mo_s, day BETWEEN @offnet_recent_from AND @offnet_recent_to),
    sumIf(offnet_s, day BETWEEN @offnet_recent_from AND @offnet_recent_to),
    sumIf(mo_s, day BETWEEN @offnet_base_from AND @offnet_base_to),
    sumIf(offnet_s, day BETWEEN @offnet_base_from AND @offnet_base_to),
    sumIf(all_s, day BETWEEN @usage_recent_from AND @usage_recent_to),
    sumIf(all_s, day BETWEEN @usage_base_from AND @usage_base_to),
    sumIf(all_s, day BETWEEN @period_recent_from AND @period_recent_to),
    sumIf(all_s, day BETWEEN @period_prev_from AND @period_prev_to),
    sumIf(all_s, day BETWEEN @period_year_from AND @period_year_to),
    toUInt64(countIf(calls > 0 AND day BETWEEN @period_year_from AND @period_year_to)),
    sumIf(payments, day BETWEEN @pay_recent_from AND @pay_recent_to),
    sumIf(payments, day BETWEEN @pay_prev_from AND @pay_prev_to),
    sumIf(calls, day = @day),
    sumIf(calls, day BETWEEN @silent_base_from AND @silent_base_to)
FROM
(
    SELECT msisdn, day, calls, payments,
        toUInt64(round(mo_minutes * 60)) AS mo_s,
        toUInt64(round(offnet_minutes * 60)) AS offnet_s,
        toUInt64(round(minutes * 60)) AS all_s
    FROM {db}.subscriber_daily FINAL
    WHERE (day BETWEEN @near_from AND @near_to) OR (day BETWEEN @period_year_from AND @period_year_to)
)
GROUP BY msisdn`

// ScanDailySums streams, for every subscriber with a subscriber_daily row in
// any of the ranges, its sums over each range, and calls fn once per
// subscriber in no particular order. One GROUP BY query does the work in
// ClickHouse; only one row per subscriber crosses the network. fn must not
// block for long: the query stays open while it runs. An error from fn
// stops the scan and is returned.
func (w *Warehouse) ScanDailySums(ctx context.Context, r DailyRanges, fn func(*DailySums) error) error {
	near := DayRange{From: r.Day.From, To: r.Day.To}
	for _, x := range []DayRange{r.OffnetRecent, r.OffnetBaseline, r.UsageRecent, r.UsageBaseline, r.PeriodRecent,
		r.PeriodPrevious, r.PaymentsRecent, r.PaymentsPrevious, r.SilentBaseline} {
		if x.From.Before(near.From) {
			near.From = x.From
		}
		if x.To.After(near.To) {
			near.To = x.To
		}
	}
	var args []any
	add := func(name string, x DayRange) {
		args = append(args, clickhouse.Named(name+"_from", dateString(x.From)), clickhouse.Named(name+"_to", dateString(x.To)))
	}
	add("near", near)
	add("offnet_recent", r.OffnetRecent)
	add("offnet_base", r.OffnetBaseline)
	add("usage_recent", r.UsageRecent)
	add("usage_base", r.UsageBaseline)
	add("period_recent", r.PeriodRecent)
	add("period_prev", r.PeriodPrevious)
	add("period_year", r.PeriodYearEarlier)
	add("pay_recent", r.PaymentsRecent)
	add("pay_prev", r.PaymentsPrevious)
	add("silent_base", r.SilentBaseline)
	args = append(args, clickhouse.Named("day", dateString(r.Day.To)))

	rows, err := w.conn.Query(ctx, w.sql(dailySumsSQL), args...)
	if err != nil {
		return fmt.Errorf("read daily sums for %s: %w", dateString(r.Day.To), err)
	}
	defer rows.Close()
	var s DailySums
	for rows.Next() {
		if err := rows.Scan(&s.MSISDN,
			&s.OffnetRecentMOSeconds, &s.OffnetRecentOffnetSeconds, &s.OffnetBaselineMOSeconds, &s.OffnetBaselineOffnetSeconds,
			&s.UsageRecentSeconds, &s.UsageBaselineSeconds,
			&s.PeriodRecentSeconds, &s.PeriodPreviousSeconds, &s.PeriodYearEarlierSeconds, &s.PeriodYearEarlierDays,
			&s.PaymentsRecent, &s.PaymentsPrevious, &s.CallsDay, &s.CallsBaseline); err != nil {
			return fmt.Errorf("read daily sums: %w", err)
		}
		if err := fn(&s); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read daily sums for %s: %w", dateString(r.Day.To), err)
	}
	return nil
}

// ProfileQuery selects the subscribers whose profile may matter to the
// profile-based daily signals. Every condition is optional; a subscriber
// matching any of them is returned.
type ProfileQuery struct {
	// PromoEnd selects profiles whose promo_end falls in the range.
	PromoEnd *DayRange
	// BirthdayMonthDays selects birthdays ("YYYY-MM-DD") whose "MM-DD" is
	// one of these.
	BirthdayMonthDays []string
	// Statuses selects profiles whose status is one of these.
	Statuses []string
}

// ProfileDates is the part of a subscriber's profile the daily signals read,
// as stored: dates are "YYYY-MM-DD" text, possibly empty or malformed.
type ProfileDates struct {
	MSISDN   string
	Birthday string
	PromoEnd string
	Status   string
}

// ScanProfileDates streams the subscribers (from subscribers FINAL) that
// match q, calling fn once per subscriber. The filters are a coarse,
// index-free prefilter on the text columns; the caller decides exactly.
func (w *Warehouse) ScanProfileDates(ctx context.Context, q ProfileQuery, fn func(ProfileDates) error) error {
	var conds []string
	var args []any
	if q.PromoEnd != nil {
		conds = append(conds, "promo_end BETWEEN @promo_from AND @promo_to")
		args = append(args, clickhouse.Named("promo_from", dateString(q.PromoEnd.From)), clickhouse.Named("promo_to", dateString(q.PromoEnd.To)))
	}
	if len(q.BirthdayMonthDays) > 0 {
		conds = append(conds, "has(@month_days, substring(birthday, 6, 5))")
		args = append(args, clickhouse.Named("month_days", q.BirthdayMonthDays))
	}
	if len(q.Statuses) > 0 {
		conds = append(conds, "has(@statuses, status)")
		args = append(args, clickhouse.Named("statuses", q.Statuses))
	}
	if len(conds) == 0 {
		return nil
	}
	query := w.sql("SELECT msisdn, birthday, promo_end, status FROM {db}.subscribers FINAL WHERE " + strings.Join(conds, " OR "))
	rows, err := w.conn.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("read subscriber profiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p ProfileDates
		if err := rows.Scan(&p.MSISDN, &p.Birthday, &p.PromoEnd, &p.Status); err != nil {
			return fmt.Errorf("read subscriber profiles: %w", err)
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read subscriber profiles: %w", err)
	}
	return nil
}

func dateString(t time.Time) string { return t.Format(time.DateOnly) }
