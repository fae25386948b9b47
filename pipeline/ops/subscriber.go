package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/schemas"
)

// UsageDays is how many local days of usage the subscriber 360 shows.
const UsageDays = 60

// ErrNoSubscriber is returned for a number the warehouse knows nothing of.
var ErrNoSubscriber = errors.New("no such subscriber")

// Subscriber360 is everything known of one subscriber, for the manager who
// looks after them: profile and tier history, recent bills and payments,
// daily usage, warnings with their evidence, tasks with every version and
// the ticketing notes, and the churn score over time.
type Subscriber360 struct {
	MSISDN   string         `json:"msisdn"`
	Profile  Profile        `json:"profile"`
	Tiers    []TierSnapshot `json:"tier_history"`
	Bills    []Bill         `json:"bills"`
	Payments []Payment      `json:"payments"`
	Usage    []UsageDay     `json:"usage"`
	Warnings []WarningView  `json:"warnings"`
	Tasks    []TaskHistory  `json:"tasks"`
	Score    []ScorePoint   `json:"score"`
	// ScoreNow is the churn score at AsOf, from the warnings of the last 30 days.
	ScoreNow int       `json:"score_now"`
	AsOf     time.Time `json:"as_of"`
}

// Profile is the subscriber's latest profile (subscribers FINAL).
type Profile struct {
	Name             string    `json:"name"`
	Birthday         string    `json:"birthday"`
	Tier             string    `json:"tier"`
	ProfileTier      string    `json:"profile_tier"`
	BillAvgFen       int64     `json:"bill_avg_fen"`
	Region           string    `json:"region"`
	AccountManager   string    `json:"account_manager"`
	PhoneManager     string    `json:"phone_manager"`
	PromoEnd         string    `json:"promo_end"`
	JoinDate         string    `json:"join_date"`
	Status           string    `json:"status"`
	FirstSeen        time.Time `json:"first_seen"`
	UpdatedAt        time.Time `json:"updated_at"`
	Interests        []string  `json:"interests"`
	GroupID          string    `json:"group_id"`
	GroupName        string    `json:"group_name"`
	GroupLevel       string    `json:"group_level"`
	Products         []string  `json:"products"`
	NetworkAgeMonths *int      `json:"network_age_months"` // null when never sent
}

// TierSnapshot is the subscriber in one monthly high-value snapshot.
type TierSnapshot struct {
	Month      string `json:"month"` // YYYY-MM
	Tier       string `json:"tier"`
	BillAvgFen int64  `json:"bill_avg_fen"`
	Status     string `json:"status"`
}

// Bill is one monthly bill (the latest BILL event of its month).
type Bill struct {
	Month     string `json:"month"` // YYYY-MM
	AmountFen int64  `json:"amount_fen"`
}

// Payment is one PAYMENT event.
type Payment struct {
	TS        time.Time `json:"ts"`
	AmountFen int64     `json:"amount_fen"`
	Channel   string    `json:"channel"`
}

// UsageDay is one local day of subscriber_daily; days without a row are
// zero.
type UsageDay struct {
	Day           string  `json:"day"` // YYYY-MM-DD
	Calls         uint64  `json:"calls"`
	Minutes       float64 `json:"minutes"`
	MOMinutes     float64 `json:"mo_minutes"`
	OffnetMinutes float64 `json:"offnet_minutes"`
	// OffnetShare is off-net minutes over MO minutes, 0 without MO calls.
	OffnetShare  float64 `json:"offnet_share"`
	HotlineCalls uint64  `json:"hotline_calls"`
}

// TaskHistory is one task with every version, oldest first.
type TaskHistory struct {
	TaskID    string        `json:"task_id"`
	Status    string        `json:"status"`
	Assignee  string        `json:"assignee"`
	CreatedAt time.Time     `json:"created_at"`
	DueAt     time.Time     `json:"due_at"`
	Signals   []string      `json:"signals"`
	Summary   string        `json:"summary"`
	Versions  []TaskVersion `json:"versions"`
}

// TaskVersion is one version of a task: what changed it and, for a
// ticketing update, who wrote it and their note.
type TaskVersion struct {
	Version      uint32    `json:"version"`
	Status       string    `json:"status"`
	Assignee     string    `json:"assignee"`
	AssigneeRole string    `json:"assignee_role"`
	UpdatedAt    time.Time `json:"updated_at"`
	Score        int       `json:"score"`
	Cause        string    `json:"cause"`
	UpdatedBy    string    `json:"updated_by"`
	Note         string    `json:"note"`
}

// ScorePoint is the churn score right after a warning was detected.
type ScorePoint struct {
	At    time.Time `json:"at"`
	Score int       `json:"score"`
}

// SubscriberManagers returns the account and phone manager of a subscriber,
// for the access rule; ErrNoSubscriber when there is no such subscriber.
func (r *Reader) SubscriberManagers(ctx context.Context, msisdn string) (am, pm string, err error) {
	rows, err := r.conn.Query(ctx, r.sql(`SELECT account_manager, phone_manager FROM {db}.subscribers FINAL WHERE msisdn = ?`), msisdn)
	if err != nil {
		return "", "", fmt.Errorf("subscriber: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return "", "", ErrNoSubscriber
	}
	err = rows.Scan(&am, &pm)
	return am, pm, err
}

// Subscriber assembles the 360 view of msisdn as of now from the facts and
// aggregates in ClickHouse: bills and payments of the last three months,
// usage of the UsageDays local days up to now's.
func (r *Reader) Subscriber(ctx context.Context, msisdn string, now time.Time) (*Subscriber360, error) {
	s := &Subscriber360{MSISDN: msisdn, AsOf: now, Tiers: []TierSnapshot{}, Bills: []Bill{}, Payments: []Payment{},
		Warnings: []WarningView{}, Tasks: []TaskHistory{}, Score: []ScorePoint{}}
	if err := r.profile(ctx, s); err != nil {
		return nil, err
	}
	steps := []struct {
		what string
		run  func(context.Context, *Subscriber360, time.Time) error
	}{{"tier history", r.tierHistory}, {"bills", r.bills}, {"payments", r.payments}, {"usage", r.usage},
		{"warnings", r.subscriberWarnings}, {"tasks", r.taskHistory}}
	for _, st := range steps {
		if err := st.run(ctx, s, now); err != nil {
			return nil, fmt.Errorf("subscriber %s: %w", st.what, err)
		}
	}
	return s, nil
}

func (r *Reader) profile(ctx context.Context, s *Subscriber360) error {
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT name, birthday, tier, profile_tier, bill_avg_fen, region, account_manager, phone_manager, promo_end,
			join_date, status, first_seen, updated_at, interests, group_id, group_name, group_level, products, network_age_months
		FROM {db}.subscribers FINAL WHERE msisdn = ?`), s.MSISDN)
	if err != nil {
		return fmt.Errorf("subscriber profile: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return ErrNoSubscriber
	}
	p := &s.Profile
	var age *uint32
	if err := rows.Scan(&p.Name, &p.Birthday, &p.Tier, &p.ProfileTier, &p.BillAvgFen, &p.Region, &p.AccountManager,
		&p.PhoneManager, &p.PromoEnd, &p.JoinDate, &p.Status, &p.FirstSeen, &p.UpdatedAt, &p.Interests, &p.GroupID,
		&p.GroupName, &p.GroupLevel, &p.Products, &age); err != nil {
		return fmt.Errorf("subscriber profile: %w", err)
	}
	if age != nil {
		n := int(*age)
		p.NetworkAgeMonths = &n
	}
	return rows.Err()
}

func (r *Reader) tierHistory(ctx context.Context, s *Subscriber360, _ time.Time) error {
	rows, err := r.conn.Query(ctx, r.sql(`SELECT toString(toYYYYMM(month)), tier, bill_avg_fen, status
		FROM {db}.tier_snapshots FINAL WHERE msisdn = ? ORDER BY month`), s.MSISDN)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var t TierSnapshot
		if err := rows.Scan(&t.Month, &t.Tier, &t.BillAvgFen, &t.Status); err != nil {
			return err
		}
		t.Month = t.Month[:4] + "-" + t.Month[4:]
		s.Tiers = append(s.Tiers, t)
	}
	return rows.Err()
}

// threeMonthsBack is the first day of the month three months before now's
// local month: the bills of months from there on are "the last three".
func (r *Reader) threeMonthsBack(now time.Time) time.Time {
	y, m, _ := now.In(r.loc).Date()
	return time.Date(y, m-3, 1, 0, 0, 0, 0, r.loc)
}

func (r *Reader) bills(ctx context.Context, s *Subscriber360, now time.Time) error {
	rows, err := r.conn.Query(ctx, r.sql(`SELECT bill_month, toInt64(argMax(ifNull(amount_fen, 0), (ts, event_id)))
		FROM {db}.billing_events FINAL
		WHERE msisdn = ? AND type = 'BILL' AND bill_month >= ? AND isNotNull(amount_fen)
		GROUP BY bill_month ORDER BY bill_month DESC LIMIT 3`), s.MSISDN, r.threeMonthsBack(now).Format("2006-01"))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var b Bill
		if err := rows.Scan(&b.Month, &b.AmountFen); err != nil {
			return err
		}
		s.Bills = append([]Bill{b}, s.Bills...)
	}
	return rows.Err()
}

func (r *Reader) payments(ctx context.Context, s *Subscriber360, now time.Time) error {
	rows, err := r.conn.Query(ctx, r.sql(`SELECT ts, toInt64(ifNull(amount_fen, 0)), channel FROM {db}.billing_events FINAL
		WHERE msisdn = ? AND type = 'PAYMENT' AND ts >= ? AND ts <= ? ORDER BY ts, event_id`),
		s.MSISDN, r.threeMonthsBack(now), now)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var p Payment
		if err := rows.Scan(&p.TS, &p.AmountFen, &p.Channel); err != nil {
			return err
		}
		s.Payments = append(s.Payments, p)
	}
	return rows.Err()
}

func (r *Reader) usage(ctx context.Context, s *Subscriber360, now time.Time) error {
	y, m, d := now.In(r.loc).Date()
	last := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	first := last.AddDate(0, 0, -(UsageDays - 1))
	rows, err := r.conn.Query(ctx, r.sql(`SELECT day, calls, minutes, mo_minutes, offnet_minutes, hotline_calls
		FROM {db}.subscriber_daily FINAL WHERE msisdn = ? AND day >= toDate(?) AND day <= toDate(?)`), s.MSISDN,
		first.Format(time.DateOnly), last.Format(time.DateOnly))
	if err != nil {
		return err
	}
	defer rows.Close()
	byDay := map[string]UsageDay{}
	for rows.Next() {
		var u UsageDay
		var day time.Time
		if err := rows.Scan(&day, &u.Calls, &u.Minutes, &u.MOMinutes, &u.OffnetMinutes, &u.HotlineCalls); err != nil {
			return err
		}
		u.Day = day.Format(time.DateOnly)
		if u.MOMinutes > 0 {
			u.OffnetShare = u.OffnetMinutes / u.MOMinutes
		}
		byDay[u.Day] = u
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.Usage = make([]UsageDay, UsageDays)
	for i := range s.Usage {
		day := first.AddDate(0, 0, i).Format(time.DateOnly)
		u, ok := byDay[day]
		if !ok {
			u = UsageDay{Day: day}
		}
		s.Usage[i] = u
	}
	return nil
}

func (r *Reader) subscriberWarnings(ctx context.Context, s *Subscriber360, now time.Time) error {
	rows, err := r.conn.Query(ctx, r.sql(`SELECT warning_id, signal, toString(severity), tier, detected_at, window_start,
			window_end, evidence, score
		FROM {db}.warnings FINAL WHERE msisdn = ? ORDER BY detected_at, warning_id`), s.MSISDN)
	if err != nil {
		return err
	}
	defer rows.Close()
	var scored []signals.Scored
	for rows.Next() {
		w := schemas.Warning{MSISDN: s.MSISDN, Region: s.Profile.Region, AccountManager: s.Profile.AccountManager,
			PhoneManager: s.Profile.PhoneManager}
		var sev, tier, evidence string
		var score uint8
		if err := rows.Scan(&w.WarningID, &w.Signal, &sev, &tier, &w.DetectedAt, &w.WindowStart, &w.WindowEnd, &evidence, &score); err != nil {
			return err
		}
		w.Severity, w.Tier, w.Score = schemas.Severity(sev), schemas.Tier(tier), int(score)
		_ = json.Unmarshal([]byte(evidence), &w.Evidence)
		s.Warnings = append(s.Warnings, View(w, false))
		scored = append(scored, signals.Scored{ID: w.WarningID, Signal: w.Signal, Severity: w.Severity, DetectedAt: w.DetectedAt})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The score as it stood right after each warning, from every warning
	// detected up to then.
	for i, w := range scored {
		if i+1 < len(scored) && scored[i+1].DetectedAt.Equal(w.DetectedAt) {
			continue // one point per instant
		}
		s.Score = append(s.Score, ScorePoint{At: w.DetectedAt, Score: signals.Score(w.DetectedAt.Add(time.Second), scored[:i+1])})
	}
	s.ScoreNow = signals.Score(now, scored)
	return nil
}

func (r *Reader) taskHistory(ctx context.Context, s *Subscriber360, _ time.Time) error {
	rows, err := r.conn.Query(ctx, r.sql(`SELECT task_id, version, toString(status), assignee, assignee_role, created_at,
			due_at, updated_at, signals, score, summary, cause, updated_by, note
		FROM {db}.tasks FINAL WHERE msisdn = ? ORDER BY created_at, task_id, version`), s.MSISDN)
	if err != nil {
		return err
	}
	defer rows.Close()
	index := map[string]int{}
	for rows.Next() {
		var v TaskVersion
		var id, summary string
		var created, due time.Time
		var sigs []string
		var score uint8
		if err := rows.Scan(&id, &v.Version, &v.Status, &v.Assignee, &v.AssigneeRole, &created, &due, &v.UpdatedAt,
			&sigs, &score, &summary, &v.Cause, &v.UpdatedBy, &v.Note); err != nil {
			return err
		}
		v.Score = int(score)
		i, ok := index[id]
		if !ok {
			i = len(s.Tasks)
			index[id] = i
			s.Tasks = append(s.Tasks, TaskHistory{TaskID: id, CreatedAt: created})
		}
		t := &s.Tasks[i]
		// The latest version gives the task's current state.
		t.Status, t.Assignee, t.DueAt, t.Signals, t.Summary = v.Status, v.Assignee, due, sigs, summary
		t.Versions = append(t.Versions, v)
	}
	return rows.Err()
}

// Lookup is one subscriber lookup, for the audit table lookups.
type Lookup struct {
	At      time.Time
	User    User
	MSISDN  string
	Via     string // web or cli
	Allowed bool
	Reason  string
}

// RecordLookup writes a lookup to the lookups table.
func (r *Reader) RecordLookup(ctx context.Context, l Lookup) error {
	// 18.16 waits forever on INSERT ... VALUES with bound arguments: a batch it is.
	batch, err := r.conn.PrepareBatch(ctx, r.sql(`INSERT INTO {db}.lookups (at, user, role, msisdn, via, allowed, reason)`))
	if err != nil {
		return fmt.Errorf("record lookup: %w", err)
	}
	defer batch.Abort()
	allowed := uint8(0)
	if l.Allowed {
		allowed = 1
	}
	if err := batch.Append(l.At, l.User.Name, l.User.Role, l.MSISDN, l.Via, allowed, l.Reason); err != nil {
		return fmt.Errorf("record lookup: %w", err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("record lookup: %w", err)
	}
	return nil
}
