// Package daily evaluates the seven daily warning signals of SPEC section 4
// (offnet_share_rise, usage_drop_daily, usage_drop_period, payment_freq_drop,
// silent_yesterday, promo_expiry, birthday) for one local day, and schedules
// that evaluation for the previous day with a cron spec. The sums come from
// ClickHouse in one aggregate query (package warehouse); this package turns
// them into warnings with evidence and hands them to a publisher (package
// alerts). It does not evaluate the real-time signals, nor open tasks.
//
// Running a day again yields the very same warnings: ids, times, windows and
// evidence depend only on the day, the data and the thresholds, never on the
// wall clock, so the warnings table merges the rerun away.
package daily

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/warehouse"
)

// Source is what an evaluation reads from ClickHouse; *warehouse.Warehouse
// implements it.
type Source interface {
	ScanDailySums(ctx context.Context, r warehouse.DailyRanges, fn func(*warehouse.DailySums) error) error
	ScanProfileDates(ctx context.Context, q warehouse.ProfileQuery, fn func(warehouse.ProfileDates) error) error
}

// Publisher completes, stores and produces warnings; *alerts.Publisher
// implements it.
type Publisher interface {
	Publish(ctx context.Context, rows []warehouse.WarningRow) error
}

// DefaultBatchSize is how many warnings go to the publisher at a time.
const DefaultBatchSize = 10000

// StatusDeactivated is the subscribers.status of a subscriber who left the
// network: the daily signals skip them (their usage has dropped for good and
// port_out already warned).
const StatusDeactivated = "deactivated"

// Config tunes an evaluation.
type Config struct {
	Thresholds signals.Thresholds
	// RuleVersion is the rule set's content hash, recorded on every warning.
	RuleVersion string
	// Location is the time zone whose days are evaluated; windows and
	// detection times are expressed in it.
	Location *time.Location
	// BatchSize is how many warnings one Publish call carries at most
	// (a subscriber's warnings are never split); DefaultBatchSize when 0.
	BatchSize int
}

// dailyCodes are the codes of the daily signals, in catalogue order.
var dailyCodes = []string{signals.OffnetShareRise, signals.UsageDropDaily, signals.UsageDropPeriod,
	signals.PaymentFreqDrop, signals.SilentYesterday, signals.PromoExpiry, signals.Birthday}

// Codes returns the codes of the daily signals, in catalogue order.
func Codes() []string { return slices.Clone(dailyCodes) }

// Result says what an evaluation did.
type Result struct {
	Day         time.Time      // the evaluated calendar day (UTC midnight)
	Subscribers int            // subscribers with call or payment history in the windows
	Profiles    int            // profiles read for promo_expiry, birthday and status
	Warnings    map[string]int // warnings per signal code, every daily code present
	Published   int            // warnings handed to the publisher
	Duration    time.Duration
}

// subject is one subscriber as the rules see it.
type subject struct {
	msisdn     string
	sums       warehouse.DailySums
	hasSums    bool
	profile    warehouse.ProfileDates
	hasProfile bool
}

// evaluator holds what one day's evaluation derives from its inputs.
type evaluator struct {
	d       time.Time // the day, UTC midnight
	r       warehouse.DailyRanges
	t       signals.Thresholds
	version string
	loc     *time.Location
	result  *Result
}

// Evaluate evaluates the daily signals for day (its calendar date: Year,
// Month, Day, whatever its location) and publishes the warnings, in batches
// that never split a subscriber's warnings (so the score each warning gets
// sees the subscriber's other warnings of the day, on a first run as on a
// rerun). It reads every subscriber's sums before publishing anything, so
// no query stays open while Kafka is slow.
func Evaluate(ctx context.Context, day time.Time, src Source, pub Publisher, cfg Config) (Result, error) {
	start := time.Now()
	if cfg.Location == nil {
		return Result{}, fmt.Errorf("daily evaluation: no time zone configured")
	}
	if err := cfg.Thresholds.Validate(); err != nil {
		return Result{}, fmt.Errorf("daily evaluation: %w", err)
	}
	batch := cfg.BatchSize
	if batch <= 0 {
		batch = DefaultBatchSize
	}
	e := &evaluator{d: date(day), t: cfg.Thresholds, version: cfg.RuleVersion, loc: cfg.Location}
	e.r = Ranges(e.d, e.t)
	res := Result{Day: e.d, Warnings: map[string]int{}}
	for _, c := range dailyCodes {
		res.Warnings[c] = 0
	}
	e.result = &res

	// The profiles that can matter are few (birthdays and promotions in
	// range, departed subscribers): keep them in memory and join them to
	// the streamed sums by MSISDN.
	profiles := map[string]warehouse.ProfileDates{}
	promo := warehouse.DayRange{From: addDays(e.d, 1), To: addDays(e.d, e.t.PromoExpiry.DaysAhead)}
	q := warehouse.ProfileQuery{PromoEnd: &promo, BirthdayMonthDays: birthdayMonthDays(e.d, e.t.Birthday.DaysAhead),
		Statuses: []string{StatusDeactivated}}
	err := src.ScanProfileDates(ctx, q, func(p warehouse.ProfileDates) error {
		profiles[p.MSISDN] = p
		return nil
	})
	if err != nil {
		return res, err
	}
	res.Profiles = len(profiles)

	var firing []subject
	err = src.ScanDailySums(ctx, e.r, func(s *warehouse.DailySums) error {
		res.Subscribers++
		sub := subject{msisdn: s.MSISDN, sums: *s, hasSums: true}
		if p, ok := profiles[s.MSISDN]; ok {
			sub.profile, sub.hasProfile = p, true
			delete(profiles, s.MSISDN)
		}
		if e.count(&sub) > 0 {
			firing = append(firing, sub)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	for m, p := range profiles {
		sub := subject{msisdn: m, profile: p, hasProfile: true}
		if e.count(&sub) > 0 {
			firing = append(firing, sub)
		}
	}

	// A stable order makes reruns produce the same batches, in the same
	// order on the topic.
	slices.SortFunc(firing, func(a, b subject) int { return cmp.Compare(a.msisdn, b.msisdn) })
	var rows []warehouse.WarningRow
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if err := pub.Publish(ctx, rows); err != nil {
			return fmt.Errorf("publish daily warnings of %s: %w", day0(e.d), err)
		}
		res.Published += len(rows)
		rows = nil
		return nil
	}
	for i := range firing {
		rows = append(rows, e.warnings(&firing[i])...)
		if len(rows) >= batch {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

func day0(d time.Time) string { return d.Format(time.DateOnly) }

// count counts the warnings sub fires into the result and returns how many.
func (e *evaluator) count(sub *subject) int {
	n := 0
	e.decide(sub, func(code string, _ time.Time, _, _ time.Time, _ evidence) {
		e.result.Warnings[code]++
		n++
	})
	return n
}

// decide calls emit for every signal sub fires, with its anchor day, the
// first and last day of its window and its evidence.
func (e *evaluator) decide(sub *subject, emit func(code string, anchor, from, to time.Time, ev evidence)) {
	if sub.hasProfile && sub.profile.Status == StatusDeactivated {
		return
	}
	if sub.hasSums {
		s, r, t := &sub.sums, e.r, e.t
		if ev, ok := offnetShareRise(s, r, t.OffnetShareRise); ok {
			emit(signals.OffnetShareRise, e.d, r.OffnetRecent.From, e.d, ev)
		}
		if ev, ok := usageDropDaily(s, r, t.UsageDropDaily); ok {
			emit(signals.UsageDropDaily, e.d, r.UsageRecent.From, e.d, ev)
		}
		if ev, ok := usageDropPeriod(s, r, t.UsageDropPeriod); ok {
			emit(signals.UsageDropPeriod, e.d, r.PeriodRecent.From, e.d, ev)
		}
		if ev, ok := paymentFreqDrop(s, r, t.PaymentFreqDrop); ok {
			emit(signals.PaymentFreqDrop, e.d, r.PaymentsRecent.From, e.d, ev)
		}
		if ev, ok := silentYesterday(s, r, t.SilentYesterday); ok {
			emit(signals.SilentYesterday, e.d, e.d, e.d, ev)
		}
	}
	if sub.hasProfile {
		// An occasion is one warning however many days it is in range: the
		// anchor is its date and the window starts on the first day it came
		// into range, so every day's run rebuilds the same row.
		if end, ev, ok := promoExpiry(sub.profile.PromoEnd, e.d, e.t.PromoExpiry); ok {
			emit(signals.PromoExpiry, end, addDays(end, -e.t.PromoExpiry.DaysAhead), end, ev)
		}
		if occ, ev, ok := birthday(sub.profile.Birthday, e.d, e.t.Birthday); ok {
			emit(signals.Birthday, occ, addDays(occ, -e.t.Birthday.DaysAhead), occ, ev)
		}
	}
}

// warnings builds the rows of the signals sub fires. The window runs from
// the start of its first day to the end of its last day in the configured
// zone; a warning is detected at the end of its window's first day for an
// occasion (the day it came into range) and at the end of the evaluated day
// otherwise.
func (e *evaluator) warnings(sub *subject) []warehouse.WarningRow {
	var out []warehouse.WarningRow
	e.decide(sub, func(code string, anchor, from, to time.Time, ev evidence) {
		detected := e.d
		if code == signals.PromoExpiry || code == signals.Birthday {
			detected = from
		}
		info, _ := signals.Lookup(code)
		row := warehouse.WarningRow{Source: warehouse.SourceDaily, SourceTopic: "",
			Provenance: warehouse.Provenance{Partition: -1, Offset: -1}}
		row.WarningID = signals.WarningID(sub.msisdn, code, day0(anchor))
		row.MSISDN = sub.msisdn
		row.Signal = code
		row.Severity = info.Severity
		row.DetectedAt = e.endOf(detected)
		row.WindowStart = e.startOf(from)
		row.WindowEnd = e.endOf(to)
		row.Evidence = ev
		row.RuleVersion = e.version
		out = append(out, row)
	})
	return out
}

func (e *evaluator) startOf(d time.Time) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, e.loc)
}

func (e *evaluator) endOf(d time.Time) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day(), 23, 59, 59, 0, e.loc)
}
