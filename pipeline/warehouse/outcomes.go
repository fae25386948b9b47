package warehouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// SignalOutcome is one row of the signal_outcomes view: how often the
// warnings of a signal under one rule version were followed by a churn.
// Ratios are nil where their denominator is zero.
type SignalOutcome struct {
	Signal      string `json:"signal"`
	RuleVersion string `json:"rule_version"`
	Warnings    uint64 `json:"warnings"`
	Subscribers uint64 `json:"subscribers"`
	// ChurnedN counts the subscribers warned who churned within N days of
	// their first warning; PrecisionN is ChurnedN / Subscribers.
	Churned30    uint64   `json:"churned_30d"`
	Churned60    uint64   `json:"churned_60d"`
	Churned90    uint64   `json:"churned_90d"`
	Precision30  float64  `json:"precision_30d"`
	Precision60  float64  `json:"precision_60d"`
	Precision90  float64  `json:"precision_90d"`
	BaseRate     float64  `json:"base_rate"`
	Lift90       *float64 `json:"lift_90d"`
	Churners     uint64   `json:"churners"`
	Recall90     *float64 `json:"recall_90d"`
	MedianLead   *float64 `json:"median_lead_days"`
	WithTask     uint64   `json:"with_task"`
	WithTaskKept uint64   `json:"with_task_kept"`
	WithoutTask  uint64   `json:"without_task"`
	WithoutKept  uint64   `json:"without_task_kept"`
	RetainedWith *float64 `json:"retention_with_task"`
	RetainedNone *float64 `json:"retention_without_task"`
	TaskRetained uint64   `json:"tasks_retained"`
	TaskLost     uint64   `json:"tasks_lost"`
}

// ReadSignalOutcomes returns the signal_outcomes view of database db,
// ordered by signal and rule version.
func ReadSignalOutcomes(ctx context.Context, conn driver.Conn, db string) ([]SignalOutcome, error) {
	rows, err := conn.Query(ctx, strings.ReplaceAll(`
		SELECT signal, rule_version, warnings, subscribers, churned_30d, churned_60d, churned_90d,
			precision_30d, precision_60d, precision_90d, base_rate, lift_90d, churners, recall_90d,
			median_lead_days, with_task, with_task_kept, without_task, without_task_kept,
			retention_with_task, retention_without_task, tasks_retained, tasks_lost
		FROM {db}.signal_outcomes ORDER BY signal, rule_version`, "{db}", db))
	if err != nil {
		return nil, fmt.Errorf("read signal_outcomes: %w", err)
	}
	defer rows.Close()
	var out []SignalOutcome
	for rows.Next() {
		var o SignalOutcome
		if err := rows.Scan(&o.Signal, &o.RuleVersion, &o.Warnings, &o.Subscribers, &o.Churned30, &o.Churned60, &o.Churned90,
			&o.Precision30, &o.Precision60, &o.Precision90, &o.BaseRate, &o.Lift90, &o.Churners, &o.Recall90,
			&o.MedianLead, &o.WithTask, &o.WithTaskKept, &o.WithoutTask, &o.WithoutKept,
			&o.RetainedWith, &o.RetainedNone, &o.TaskRetained, &o.TaskLost); err != nil {
			return nil, fmt.Errorf("read signal_outcomes: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Churns returns when each churned subscriber churned (the churns view).
func (w *Warehouse) Churns(ctx context.Context) (map[string]time.Time, error) {
	rows, err := w.conn.Query(ctx, w.sql(`SELECT msisdn, churned_at FROM {db}.churns`))
	if err != nil {
		return nil, fmt.Errorf("read churns: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var m string
		var at time.Time
		if err := rows.Scan(&m, &at); err != nil {
			return nil, err
		}
		out[m] = at
	}
	return out, rows.Err()
}
