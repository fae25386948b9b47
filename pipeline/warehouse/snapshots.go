package warehouse

import (
	"context"
	"fmt"
	"time"
)

// takeSnapshotSQL copies the high-value base into one month of
// tier_snapshots. Its count guard repeats TakeSnapshot's check inside the
// statement, so a snapshot taken meanwhile is not added to. Both bound
// arguments are the month.
const takeSnapshotSQL = `INSERT INTO {db}.tier_snapshots (month, msisdn, tier, region, account_manager, phone_manager,
    status, bill_avg_fen, taken_at)
SELECT toDate(?), msisdn, tier, region, account_manager, phone_manager, status, bill_avg_fen, now()
FROM {db}.subscribers FINAL
WHERE tier IN ('diamond', 'gold', 'silver') AND status != 'deactivated'
    AND (SELECT count() FROM {db}.tier_snapshots WHERE month = toDate(?)) = 0`

// MonthOf returns the first day of t's calendar month (in t's location) as
// a UTC midnight, the month key of tier_snapshots.
func MonthOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// TakeSnapshot takes the monthly snapshot (拍照) of the high-value base for
// the month containing month: every diamond, gold and silver subscriber of
// subscribers FINAL whose status is not deactivated, with its tier, region,
// managers and bill average at this moment. A month is taken once: when it
// already has rows, TakeSnapshot changes nothing and returns taken false
// with the rows the month holds. A month whose snapshot found nobody holds no
// rows, so a later call takes it again.
//
// Run it from one process (the daily job): two calls racing for the same
// empty month could both insert, and the month would hold the union of what
// each saw.
func (w *Warehouse) TakeSnapshot(ctx context.Context, month time.Time) (taken bool, rows uint64, err error) {
	m := MonthOf(month).Format("2006-01-02")
	count := func() (uint64, error) {
		var n uint64
		err := w.conn.QueryRow(ctx, w.sql("SELECT count() FROM {db}.tier_snapshots FINAL WHERE month = toDate(?)"), m).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("snapshot %s: count rows: %w", m[:7], err)
		}
		return n, nil
	}
	if rows, err = count(); err != nil || rows > 0 {
		return false, rows, err
	}
	if err := w.conn.Exec(ctx, w.sql(takeSnapshotSQL), m, m); err != nil {
		return false, 0, fmt.Errorf("snapshot %s: %w", m[:7], err)
	}
	rows, err = count()
	return err == nil && rows > 0, rows, err
}
