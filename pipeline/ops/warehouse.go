package ops

import (
	"context"
	"time"

	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/warehouse"
)

// Warehouse is a *warehouse.Warehouse whose writes report to Metrics:
// latency and errors per table, the time of the last successful write, the
// warnings stored (by signal and severity) and what each stored task version
// means (opened, escalated, closed). Reads pass through untouched, so it
// can stand wherever the pipeline passes the warehouse.
//
// Warnings and task versions are counted when ClickHouse accepts them,
// before they are produced to Kafka; a retry of the same batch (same
// warning id, same task version) is not counted twice.
type Warehouse struct {
	*warehouse.Warehouse
	m *Metrics
}

// Warehouse returns wh instrumented with m.
func (m *Metrics) Warehouse(wh *warehouse.Warehouse) *Warehouse {
	return &Warehouse{Warehouse: wh, m: m}
}

func (w *Warehouse) timed(table string, fn func() error) error {
	start := time.Now()
	err := fn()
	w.m.write(table, time.Since(start), err)
	return err
}

// InsertCDR implements consumers.FactStore.
func (w *Warehouse) InsertCDR(ctx context.Context, rows []warehouse.CDRRow) error {
	return w.timed("cdr", func() error { return w.Warehouse.InsertCDR(ctx, rows) })
}

// InsertBilling implements consumers.FactStore.
func (w *Warehouse) InsertBilling(ctx context.Context, rows []warehouse.BillingRow) error {
	return w.timed("billing_events", func() error { return w.Warehouse.InsertBilling(ctx, rows) })
}

// InsertCRM implements consumers.FactStore.
func (w *Warehouse) InsertCRM(ctx context.Context, rows []warehouse.CRMRow) error {
	return w.timed("crm_events", func() error { return w.Warehouse.InsertCRM(ctx, rows) })
}

// RecordWatermarks implements consumers.FactStore.
func (w *Warehouse) RecordWatermarks(ctx context.Context, topic string, marks []warehouse.Watermark) error {
	return w.timed("partition_watermarks", func() error { return w.Warehouse.RecordWatermarks(ctx, topic, marks) })
}

// InsertPendingDays implements consumers.FactStore.
func (w *Warehouse) InsertPendingDays(ctx context.Context, topic string, days []warehouse.PendingDay) error {
	return w.timed("subscriber_daily_pending", func() error { return w.Warehouse.InsertPendingDays(ctx, topic, days) })
}

// RefreshPendingDaily recomputes the pending subscriber-days
// (warehouse.RefreshPendingDaily), timed as a write of subscriber_daily.
func (w *Warehouse) RefreshPendingDaily(ctx context.Context, rules warehouse.DailyRules) (warehouse.PendingRefresh, error) {
	var res warehouse.PendingRefresh
	err := w.timed("subscriber_daily", func() error {
		var err error
		res, err = w.Warehouse.RefreshPendingDaily(ctx, rules)
		return err
	})
	return res, err
}

// RefreshSubscribersAfter implements consumers.FactStore.
func (w *Warehouse) RefreshSubscribersAfter(ctx context.Context, msisdns []string, ticket uint64, tiers warehouse.TierRules) error {
	if len(msisdns) == 0 {
		return w.Warehouse.RefreshSubscribersAfter(ctx, msisdns, ticket, tiers)
	}
	return w.timed("subscribers", func() error { return w.Warehouse.RefreshSubscribersAfter(ctx, msisdns, ticket, tiers) })
}

// InsertDeadLetters implements consumers.DeadLetterStore.
func (w *Warehouse) InsertDeadLetters(ctx context.Context, rows []warehouse.DeadLetter) error {
	return w.timed("dead_letters", func() error { return w.Warehouse.InsertDeadLetters(ctx, rows) })
}

// InsertWarnings implements alerts.Store and counts the warnings stored.
func (w *Warehouse) InsertWarnings(ctx context.Context, rows []warehouse.WarningRow) error {
	if err := w.timed("warnings", func() error { return w.Warehouse.InsertWarnings(ctx, rows) }); err != nil {
		return err
	}
	for _, r := range rows {
		w.m.mu.Lock()
		fresh := w.m.seen.add("w/" + r.WarningID)
		w.m.mu.Unlock()
		if fresh {
			w.m.warningFired(r.Signal, string(r.Severity))
		}
	}
	return nil
}

// InsertTasks implements tasks.Store and counts opened, escalated and
// closed tasks.
func (w *Warehouse) InsertTasks(ctx context.Context, rows []tasks.Row) error {
	if err := w.timed("tasks", func() error { return w.Warehouse.InsertTasks(ctx, rows) }); err != nil {
		return err
	}
	for _, r := range rows {
		w.m.taskVersion(r.TaskID, r.Version, string(r.Status), r.Cause)
	}
	return nil
}
