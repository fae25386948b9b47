package ops

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"time"

	"churnwatch/pipeline/config"
)

// ScoreRow is one manager's scorecard for a month (from the task_scorecard
// view): the tasks they received that month and what became of them, the
// points of the configured scheme, and the rank among the managers of the
// same region and team.
type ScoreRow struct {
	Month           string `json:"month"` // YYYY-MM
	Manager         string `json:"manager"`
	Role            string `json:"role"` // the assignee role of their latest task
	Team            string `json:"team"`
	Region          string `json:"region"`
	Received        uint64 `json:"tasks_received"`
	ContactedInTime uint64 `json:"contacted_in_time"`
	Escalated       uint64 `json:"escalated"`
	Retained        uint64 `json:"retained"`
	RetainedHigh    uint64 `json:"retained_high_value"`
	Lost            uint64 `json:"lost"`
	// MedianResponseSeconds is created → first contact over the contacted
	// tasks; null when none was contacted.
	MedianResponseSeconds *float64 `json:"median_response_seconds"`
	Points                int      `json:"points"`
	Rank                  int      `json:"rank"`
}

// Points applies a scheme to the counts of one scorecard row.
func Points(s config.Scorecard, contactedInTime, retainedHighValue, escalated uint64) int {
	return s.ContactedInTime*int(contactedInTime) + s.RetainedHighValue*int(retainedHighValue) + s.Escalation*int(escalated)
}

// teamOf names the team a manager is ranked in: their configured team, else
// the kind of manager their tasks went to them as.
func teamOf(a *Access, manager, role string) string {
	if u, ok := a.User(manager); ok && u.Team != "" {
		return u.Team
	}
	switch role {
	case "account_manager":
		return "account managers"
	case "phone_manager":
		return "phone managers"
	}
	return role
}

// Scorecard returns the scorecard of the local month holding month: one row
// per manager who received a task created that month, ranked by points within
// region and team (equal points share a rank), ordered by region, team and
// rank. Only the rows of managers (nil: all) are returned; the ranks count
// every manager.
func (r *Reader) Scorecard(ctx context.Context, month time.Time, scheme config.Scorecard, access *Access, managers []string) ([]ScoreRow, error) {
	y, m, _ := month.In(r.loc).Date()
	from := time.Date(y, m, 1, 0, 0, 0, 0, r.loc)
	to := from.AddDate(0, 1, 0)
	rows, err := r.conn.Query(ctx, r.sql(`
		SELECT manager, argMax(manager_role, created_at), argMax(region, created_at), count(), sum(contacted_in_time),
			sum(escalated), sum(retained), sum(retained AND high_value), sum(lost),
			ifNull(toFloat64(medianExact(response_seconds)), -1)
		FROM {db}.task_scorecard
		WHERE created_at >= ? AND created_at < ?
		GROUP BY manager`), from, to)
	if err != nil {
		return nil, fmt.Errorf("scorecard: %w", err)
	}
	defer rows.Close()
	var out []ScoreRow
	for rows.Next() {
		s := ScoreRow{Month: from.Format("2006-01")}
		var median float64
		if err := rows.Scan(&s.Manager, &s.Role, &s.Region, &s.Received, &s.ContactedInTime, &s.Escalated, &s.Retained,
			&s.RetainedHigh, &s.Lost, &median); err != nil {
			return nil, fmt.Errorf("scorecard: %w", err)
		}
		if median >= 0 {
			s.MedianResponseSeconds = &median
		}
		s.Team = teamOf(access, s.Manager, s.Role)
		s.Points = Points(scheme, s.ContactedInTime, s.RetainedHigh, s.Escalated)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scorecard: %w", err)
	}
	rank(out)
	if managers != nil {
		out = slices.DeleteFunc(out, func(s ScoreRow) bool { return !slices.Contains(managers, s.Manager) })
	}
	return out, nil
}

// rank orders rows by region, team, points (highest first) and name, and
// numbers them within region and team; equal points share a rank (1, 1, 3).
func rank(rows []ScoreRow) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Region != b.Region {
			return a.Region < b.Region
		}
		if a.Team != b.Team {
			return a.Team < b.Team
		}
		if a.Points != b.Points {
			return a.Points > b.Points
		}
		return a.Manager < b.Manager
	})
	for i := range rows {
		switch {
		case i == 0 || rows[i].Region != rows[i-1].Region || rows[i].Team != rows[i-1].Team:
			rows[i].Rank = 1
		case rows[i].Points == rows[i-1].Points:
			rows[i].Rank = rows[i-1].Rank
		default:
			// Position within the group, 1-based.
			k := i
			for k > 0 && rows[k-1].Region == rows[i].Region && rows[k-1].Team == rows[i].Team {
				k--
			}
			rows[i].Rank = i - k + 1
		}
	}
}

// WriteScorecardCSV writes rows as CSV with a header, UTF-8 with a byte-order
// mark (spreadsheets then read the names right).
func WriteScorecardCSV(w io.Writer, rows []ScoreRow) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return err
	}
	c := csv.NewWriter(w)
	_ = c.Write([]string{"month", "region", "team", "rank", "manager", "points", "tasks_received", "contacted_in_time",
		"escalated", "retained", "retained_high_value", "lost", "median_response_hours"})
	for _, s := range rows {
		median := ""
		if s.MedianResponseSeconds != nil {
			median = strconv.FormatFloat(*s.MedianResponseSeconds/3600, 'f', 1, 64)
		}
		u := func(n uint64) string { return strconv.FormatUint(n, 10) }
		_ = c.Write([]string{s.Month, s.Region, s.Team, strconv.Itoa(s.Rank), s.Manager, strconv.Itoa(s.Points), u(s.Received),
			u(s.ContactedInTime), u(s.Escalated), u(s.Retained), u(s.RetainedHigh), u(s.Lost), median})
	}
	c.Flush()
	return c.Error()
}
