package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"churnwatch/schemas"
)

// Reader runs the read-only queries of the dashboard, the CLI and the
// report against the pipeline's ClickHouse database. Every query names its
// columns, has at most one JOIN and binds its arguments on the client, so
// it runs on ClickHouse 18.16 as on current servers.
type Reader struct {
	conn driver.Conn
	db   string
	loc  *time.Location
}

// NewReader returns a reader of database db; loc decides what a day is.
func NewReader(conn driver.Conn, db string, loc *time.Location) *Reader {
	return &Reader{conn: conn, db: db, loc: loc}
}

func (r *Reader) sql(q string) string { return strings.ReplaceAll(q, "{db}", r.db) }

// closedStatuses are the statuses of a task that is over.
const closedStatuses = "('RETAINED', 'LOST', 'CLOSED')"

// overdueStatuses are the statuses in which a task past its due time is
// overdue: nobody has contacted the subscriber yet.
const overdueStatuses = "('OPEN', 'ACCEPTED', 'ESCALATED')"

// where builds the conditions of f that the warnings table can answer;
// region and manager come from the joined profile.
func warningConditions(f Filter) (conds []string, args []any) {
	if len(f.Signals) > 0 {
		conds, args = append(conds, "has(?, signal)"), append(args, f.Signals)
	}
	if len(f.Severities) > 0 {
		conds, args = append(conds, "has(?, toString(severity))"), append(args, f.Severities)
	}
	if len(f.Tiers) > 0 {
		conds, args = append(conds, "has(?, tier)"), append(args, f.Tiers)
	}
	return conds, args
}

// scopeCondition narrows a query over a table with an msisdn column to the
// subscribers of the managers in scope (as account or phone manager, in the
// current profile); nil scope adds nothing, an empty one selects nothing.
// The names are bound, never spliced into the SQL.
func scopeCondition(scope []string) (cond string, args []any) {
	switch {
	case scope == nil:
		return "", nil
	case len(scope) == 0:
		return "0", nil
	}
	return "msisdn IN (SELECT msisdn FROM {db}.subscribers FINAL WHERE has(?, account_manager) OR has(?, phone_manager))",
		[]any{scope, scope}
}

// withScope appends the scope condition to conds.
func withScope(conds []string, args []any, scope []string) ([]string, []any) {
	if c, a := scopeCondition(scope); c != "" {
		conds, args = append(conds, c), append(args, a...)
	}
	return conds, args
}

func and(conds []string) string {
	if len(conds) == 0 {
		return "1"
	}
	return strings.Join(conds, " AND ")
}

// RecentWarnings returns the newest warnings passing f (by detection time,
// newest first), with the subscriber's current region and managers. A
// scoped filter keeps the subscribers whose current account or phone
// manager is in f.Scope.
func (r *Reader) RecentWarnings(ctx context.Context, f Filter, limit int) ([]schemas.Warning, error) {
	inner, args := warningConditions(f)
	inner, args = withScope(inner, args, f.Scope)
	var outer []string
	if len(f.Regions) > 0 {
		outer, args = append(outer, "has(?, region)"), append(args, f.Regions)
	}
	if f.Manager != "" {
		outer, args = append(outer, "(account_manager = ? OR phone_manager = ?)"), append(args, f.Manager, f.Manager)
	}
	args = append(args, limit)
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT warning_id, msisdn, signal, toString(severity), tier, detected_at, window_start, window_end, evidence, score,
			region, account_manager, phone_manager
		FROM (SELECT warning_id, msisdn, signal, severity, tier, detected_at, window_start, window_end, evidence, score
			FROM {db}.warnings FINAL WHERE `+and(inner)+`)
		ANY LEFT JOIN (SELECT msisdn, region, account_manager, phone_manager FROM {db}.subscribers FINAL) USING msisdn
		WHERE `+and(outer)+`
		ORDER BY detected_at DESC, warning_id LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("recent warnings: %w", err)
	}
	defer rows.Close()
	var out []schemas.Warning
	for rows.Next() {
		var w schemas.Warning
		var sev, tier, evidence string
		var score uint8
		if err := rows.Scan(&w.WarningID, &w.MSISDN, &w.Signal, &sev, &tier, &w.DetectedAt, &w.WindowStart, &w.WindowEnd,
			&evidence, &score, &w.Region, &w.AccountManager, &w.PhoneManager); err != nil {
			return nil, err
		}
		w.Severity, w.Tier, w.Score = schemas.Severity(sev), schemas.Tier(tier), int(score)
		_ = json.Unmarshal([]byte(evidence), &w.Evidence)
		out = append(out, w)
	}
	return out, rows.Err()
}

// Chart is the number of warnings per signal in consecutive buckets.
type Chart struct {
	Unit    string      `json:"unit"` // hour or day
	Buckets []time.Time `json:"buckets"`
	// Labels name the buckets in the configured time zone ("15:00",
	// "11/22").
	Labels []string      `json:"labels"`
	Series []ChartSeries `json:"series"`
}

// ChartSeries is one signal's counts, bucket by bucket.
type ChartSeries struct {
	Signal string  `json:"signal"`
	Counts []int64 `json:"counts"`
}

// WarningCounts counts the warnings detected in the n hours (unit "hour")
// or local days (unit "day") up to and including the one holding end, per
// signal, of the subscribers in scope (nil: all).
func (r *Reader) WarningCounts(ctx context.Context, end time.Time, unit string, n int, scope []string) (Chart, error) {
	c := Chart{Unit: unit, Series: []ChartSeries{}}
	var first time.Time
	step := func(t time.Time, k int) time.Time { return t.Add(time.Duration(k) * time.Hour) }
	switch unit {
	case "hour":
		first = end.Truncate(time.Hour).Add(-time.Duration(n-1) * time.Hour)
	case "day":
		y, m, d := end.In(r.loc).Date()
		first = time.Date(y, m, d-(n-1), 0, 0, 0, 0, r.loc)
		step = func(t time.Time, k int) time.Time { return t.AddDate(0, 0, k) }
	default:
		return c, fmt.Errorf("chart unit %q: want hour or day", unit)
	}
	for i := 0; i < n; i++ {
		b := step(first, i)
		c.Buckets = append(c.Buckets, b)
		if unit == "hour" {
			c.Labels = append(c.Labels, b.In(r.loc).Format("15:04"))
		} else {
			c.Labels = append(c.Labels, b.In(r.loc).Format("1/2"))
		}
	}
	last := step(first, n)
	conds, args := withScope([]string{"detected_at >= ? AND detected_at < ?"}, []any{first, last}, scope)
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT signal, toUInt32(toStartOfHour(detected_at)) AS hour_start, count() AS n
		FROM {db}.warnings FINAL WHERE `+and(conds)+`
		GROUP BY signal, hour_start`), args...)
	if err != nil {
		return c, fmt.Errorf("warning counts: %w", err)
	}
	defer rows.Close()
	bySignal := map[string][]int64{}
	for rows.Next() {
		var sig string
		var hour uint32
		var cnt uint64
		if err := rows.Scan(&sig, &hour, &cnt); err != nil {
			return c, err
		}
		t := time.Unix(int64(hour), 0)
		i := sort.Search(len(c.Buckets), func(i int) bool { return c.Buckets[i].After(t) }) - 1
		if i < 0 {
			continue
		}
		if bySignal[sig] == nil {
			bySignal[sig] = make([]int64, n)
		}
		bySignal[sig][i] += int64(cnt)
	}
	for sig, counts := range bySignal {
		c.Series = append(c.Series, ChartSeries{Signal: sig, Counts: counts})
	}
	sort.Slice(c.Series, func(i, j int) bool { return c.Series[i].Signal < c.Series[j].Signal })
	return c, rows.Err()
}

// ManagerLoad is one assignee's open tasks.
type ManagerLoad struct {
	Assignee  string `json:"assignee"`
	Open      uint64 `json:"open"`
	Overdue   uint64 `json:"overdue"`
	Escalated uint64 `json:"escalated"`
}

// ManagerLoads returns, per assignee with open tasks, how many are open,
// overdue at now (past due and nobody contacted yet) and escalated, the
// most overdue first; only the tasks in scope count (taskScope; nil: all).
func (r *Reader) ManagerLoads(ctx context.Context, now time.Time, scope []string) ([]ManagerLoad, error) {
	conds, args := []string{"status NOT IN " + closedStatuses}, []any{now}
	conds, args = withTaskScope(conds, args, scope)
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT assignee, count() AS open_tasks,
			countIf(due_at < ? AND status IN `+overdueStatuses+`) AS overdue_tasks,
			countIf(status = 'ESCALATED') AS escalated_tasks
		FROM {db}.tasks_current WHERE `+and(conds)+`
		GROUP BY assignee ORDER BY overdue_tasks DESC, open_tasks DESC, assignee`), args...)
	if err != nil {
		return nil, fmt.Errorf("tasks per manager: %w", err)
	}
	defer rows.Close()
	var out []ManagerLoad
	for rows.Next() {
		var l ManagerLoad
		if err := rows.Scan(&l.Assignee, &l.Open, &l.Overdue, &l.Escalated); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// withTaskScope narrows a query over tasks_current to the tasks in scope:
// those assigned to a manager in scope, and those of the subscribers in
// scope (scopeCondition), whoever they are assigned to.
func withTaskScope(conds []string, args []any, scope []string) ([]string, []any) {
	c, a := scopeCondition(scope)
	switch c {
	case "":
		return conds, args
	case "0":
		return append(conds, c), args
	}
	return append(conds, "(has(?, assignee) OR "+c+")"), append(append(args, scope), a...)
}

// TaskQuery selects tasks at their latest version.
type TaskQuery struct {
	// Scope keeps the tasks of these managers (withTaskScope); nil: all.
	Scope    []string
	Assignee string
	// Statuses: empty means every status of an open task (not RETAINED,
	// LOST or CLOSED); "all" anywhere means every status.
	Statuses []string
	// Overdue keeps the tasks past due at Now that nobody contacted yet.
	Overdue bool
	Now     time.Time
	Limit   int
}

// TaskStatuses lists the valid task statuses.
var TaskStatuses = []string{"OPEN", "ACCEPTED", "CONTACTED", "ESCALATED", "RETAINED", "LOST", "CLOSED"}

// Tasks returns the tasks selected by q, the most urgent (earliest due)
// first.
func (r *Reader) Tasks(ctx context.Context, q TaskQuery) ([]schemas.Task, error) {
	var conds []string
	var args []any
	if q.Assignee != "" {
		conds, args = append(conds, "assignee = ?"), append(args, q.Assignee)
	}
	all := false
	for _, s := range q.Statuses {
		all = all || strings.EqualFold(s, "all")
	}
	switch {
	case all:
	case len(q.Statuses) > 0:
		conds, args = append(conds, "has(?, toString(status))"), append(args, q.Statuses)
	default:
		conds = append(conds, "status NOT IN "+closedStatuses)
	}
	if q.Overdue {
		conds, args = append(conds, "due_at < ? AND status IN "+overdueStatuses), append(args, q.Now)
	}
	conds, args = withTaskScope(conds, args, q.Scope)
	limit := q.Limit
	if limit <= 0 {
		limit = 10000
	}
	args = append(args, limit)
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT task_id, version, msisdn, tier, region, toString(status), assignee, assignee_role, priority,
			created_at, due_at, updated_at, signals, warning_ids, score, summary
		FROM {db}.tasks_current WHERE `+and(conds)+`
		ORDER BY due_at, task_id LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	defer rows.Close()
	var out []schemas.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func scanTask(rows driver.Rows) (schemas.Task, error) {
	var t schemas.Task
	var tier, status string
	var prio, score uint8
	err := rows.Scan(&t.TaskID, &t.Version, &t.MSISDN, &tier, &t.Region, &status, &t.Assignee, &t.AssigneeRole, &prio,
		&t.CreatedAt, &t.DueAt, &t.UpdatedAt, &t.Signals, &t.WarningIDs, &score, &t.Summary)
	t.Tier, t.Status, t.Priority, t.Score = schemas.Tier(tier), schemas.TaskStatus(status), int(prio), int(score)
	return t, err
}

// DeadLetterCounts returns how many rejected messages dead_letters holds,
// in all and received since since.
func (r *Reader) DeadLetterCounts(ctx context.Context, since time.Time) (total, recent uint64, err error) {
	err = r.conn.QueryRow(ctx, r.sql(`SELECT count(), countIf(received_at >= ?) FROM {db}.dead_letters FINAL`), since).
		Scan(&total, &recent)
	if err != nil {
		err = fmt.Errorf("count dead letters: %w", err)
	}
	return total, recent, err
}

// LatestDailyWarning returns the detection time of the newest warning a
// daily run stored, zero when there is none.
func (r *Reader) LatestDailyWarning(ctx context.Context) (time.Time, error) {
	var n uint64
	var t time.Time
	err := r.conn.QueryRow(ctx, r.sql(`SELECT count(), max(detected_at) FROM {db}.warnings WHERE source = 'daily'`)).Scan(&n, &t)
	if err != nil {
		return time.Time{}, fmt.Errorf("latest daily warning: %w", err)
	}
	if n == 0 {
		return time.Time{}, nil
	}
	return t, nil
}
