package ops

import (
	"context"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"sort"
	"strconv"
	"time"

	"churnwatch/schemas"
)

// Report is the daily anomaly report of one manager (客户异常情况表): the
// subscribers the manager looks after (as account or phone manager, or as
// the assignee of an open task) that had warnings on the day, with each
// warning's evidence and the subscriber's open tasks.
type Report struct {
	Manager     string             `json:"manager"`
	Day         string             `json:"day"` // YYYY-MM-DD, local
	GeneratedAt time.Time          `json:"generated_at"`
	Subscribers []ReportSubscriber `json:"subscribers"`
	loc         *time.Location
}

// ReportSubscriber is one subscriber's part of the report.
type ReportSubscriber struct {
	MSISDN         string         `json:"msisdn"`
	Name           string         `json:"name"`
	Tier           string         `json:"tier"`
	Region         string         `json:"region"`
	AccountManager string         `json:"account_manager"`
	PhoneManager   string         `json:"phone_manager"`
	Score          int            `json:"score"` // the highest of the day's warnings
	Warnings       []WarningView  `json:"warnings"`
	Tasks          []schemas.Task `json:"open_tasks"`
}

// Report builds manager's report of day (a local day, YYYY-MM-DD). The
// subscribers are ordered by score, highest first.
func (r *Reader) Report(ctx context.Context, manager, day string, now time.Time) (Report, error) {
	rep := Report{Manager: manager, Day: day, GeneratedAt: now, loc: r.loc}
	from, err := time.ParseInLocation(time.DateOnly, day, r.loc)
	if err != nil {
		return rep, fmt.Errorf("day %q: want YYYY-MM-DD", day)
	}
	to := from.AddDate(0, 0, 1)
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT warning_id, msisdn, signal, toString(severity), tier, detected_at, window_start, window_end, evidence, score
		FROM {db}.warnings FINAL
		WHERE detected_at >= ? AND detected_at < ?
			AND (msisdn IN (SELECT msisdn FROM {db}.subscribers FINAL WHERE account_manager = ? OR phone_manager = ?)
				OR msisdn IN (SELECT msisdn FROM {db}.tasks_current WHERE assignee = ? AND status NOT IN `+closedStatuses+`))
		ORDER BY msisdn, detected_at, warning_id`), from, to, manager, manager, manager)
	if err != nil {
		return rep, fmt.Errorf("report warnings: %w", err)
	}
	bySub := map[string]*ReportSubscriber{}
	var msisdns []string
	for rows.Next() {
		var w schemas.Warning
		var sev, tier, evidence string
		var score uint8
		if err := rows.Scan(&w.WarningID, &w.MSISDN, &w.Signal, &sev, &tier, &w.DetectedAt, &w.WindowStart, &w.WindowEnd, &evidence, &score); err != nil {
			rows.Close()
			return rep, err
		}
		w.Severity, w.Tier, w.Score = schemas.Severity(sev), schemas.Tier(tier), int(score)
		_ = json.Unmarshal([]byte(evidence), &w.Evidence)
		s := bySub[w.MSISDN]
		if s == nil {
			s = &ReportSubscriber{MSISDN: w.MSISDN, Tier: tier}
			bySub[w.MSISDN] = s
			msisdns = append(msisdns, w.MSISDN)
		}
		s.Warnings = append(s.Warnings, View(w, false))
		s.Score = max(s.Score, w.Score)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, err
	}
	if len(msisdns) == 0 {
		return rep, nil
	}
	if err := r.reportProfiles(ctx, msisdns, bySub); err != nil {
		return rep, err
	}
	if err := r.reportTasks(ctx, msisdns, bySub); err != nil {
		return rep, err
	}
	for _, m := range msisdns {
		rep.Subscribers = append(rep.Subscribers, *bySub[m])
	}
	sort.SliceStable(rep.Subscribers, func(i, j int) bool { return rep.Subscribers[i].Score > rep.Subscribers[j].Score })
	return rep, nil
}

func (r *Reader) reportProfiles(ctx context.Context, msisdns []string, bySub map[string]*ReportSubscriber) error {
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT msisdn, name, tier, region, account_manager, phone_manager FROM {db}.subscribers FINAL WHERE has(?, msisdn)`), msisdns)
	if err != nil {
		return fmt.Errorf("report profiles: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m string
		var p ReportSubscriber
		if err := rows.Scan(&m, &p.Name, &p.Tier, &p.Region, &p.AccountManager, &p.PhoneManager); err != nil {
			return err
		}
		if s := bySub[m]; s != nil {
			s.Name, s.Tier, s.Region, s.AccountManager, s.PhoneManager = p.Name, p.Tier, p.Region, p.AccountManager, p.PhoneManager
		}
	}
	return rows.Err()
}

func (r *Reader) reportTasks(ctx context.Context, msisdns []string, bySub map[string]*ReportSubscriber) error {
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT task_id, version, msisdn, tier, region, toString(status), assignee, assignee_role, priority,
			created_at, due_at, updated_at, signals, warning_ids, score, summary
		FROM {db}.tasks_current WHERE has(?, msisdn) AND status NOT IN `+closedStatuses+`
		ORDER BY due_at, task_id`), msisdns)
	if err != nil {
		return fmt.Errorf("report tasks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return err
		}
		if s := bySub[t.MSISDN]; s != nil {
			s.Tasks = append(s.Tasks, t)
		}
	}
	return rows.Err()
}

// reportHeader is the CSV header: one row per warning.
var reportHeader = []string{"manager", "day", "msisdn", "name", "tier", "region", "account_manager", "phone_manager",
	"signal", "signal_zh", "signal_en", "severity", "detected_at", "score", "evidence",
	"task_id", "task_status", "task_assignee", "task_due_at", "task_summary"}

// WriteCSV writes the report as CSV, one row per warning with the
// subscriber's open task (the first, by due time) beside it, preceded by a
// UTF-8 byte-order mark so that spreadsheet programs read the Chinese
// names right.
func (rep Report) WriteCSV(w io.Writer) error {
	if _, err := io.WriteString(w, "\ufeff"); err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(reportHeader); err != nil {
		return err
	}
	for _, s := range rep.Subscribers {
		var task schemas.Task
		if len(s.Tasks) > 0 {
			task = s.Tasks[0]
		}
		due := ""
		if !task.DueAt.IsZero() {
			due = rep.localTime(task.DueAt)
		}
		for _, v := range s.Warnings {
			if err := cw.Write([]string{rep.Manager, rep.Day, s.MSISDN, s.Name, s.Tier, s.Region, s.AccountManager, s.PhoneManager,
				v.Signal, v.SignalZH, v.SignalEN, v.Severity, rep.localTime(v.DetectedAt), strconv.Itoa(v.Score), v.Evidence,
				task.TaskID, string(task.Status), task.Assignee, due, task.Summary}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func (rep Report) localTime(t time.Time) string {
	if rep.loc != nil {
		t = t.In(rep.loc)
	}
	return t.Format("2006-01-02 15:04")
}

//go:embed report.html.tmpl
var reportFS embed.FS

var reportTemplate = template.Must(template.ParseFS(reportFS, "report.html.tmpl"))

// WriteHTML writes the report as a self-contained printable page.
func (rep Report) WriteHTML(w io.Writer) error {
	type page struct {
		Report
		Warnings  int
		Generated string
		Local     func(time.Time) string
	}
	p := page{Report: rep, Generated: rep.localTime(rep.GeneratedAt), Local: rep.localTime}
	for _, s := range rep.Subscribers {
		p.Warnings += len(s.Warnings)
	}
	return reportTemplate.Execute(w, p)
}
