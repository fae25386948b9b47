package warehouse

import (
	"context"
	"fmt"
	"time"

	"churnwatch/pipeline/tasks"
	"churnwatch/schemas"
)

var taskColumns = []string{"task_id", "version", "msisdn", "tier", "region", "status", "assignee", "assignee_role",
	"priority", "created_at", "due_at", "updated_at", "signals", "warning_ids", "score", "summary", "cause",
	"escalated", "kafka_partition", "updated_by", "note"}

// InsertTasks writes task versions to the tasks table.
func (w *Warehouse) InsertTasks(ctx context.Context, rows []tasks.Row) error {
	return w.insert(ctx, "tasks", taskColumns, len(rows), func(i int) []any {
		r := &rows[i]
		esc := uint8(0)
		if r.Escalated {
			esc = 1
		}
		return []any{r.TaskID, r.Version, r.MSISDN, string(r.Tier), r.Region, string(r.Status), r.Assignee, r.AssigneeRole,
			uint8(r.Priority), r.CreatedAt, r.DueAt, r.UpdatedAt, nonNil(r.Signals), nonNil(r.WarningIDs), uint8(r.Score),
			r.Summary, r.Cause, esc, r.Partition, r.UpdatedBy, r.Note}
	})
}

// PartitionTasks returns the latest version of the tasks of a partition
// that are open, or closed within keepClosed of the partition's newest task
// change: what the owner needs to continue.
func (w *Warehouse) PartitionTasks(ctx context.Context, partition int, keepClosed time.Duration) ([]tasks.Stored, error) {
	rows, err := w.conn.Query(ctx, w.sql(`
		SELECT task_id, max(v), argMax(msisdn, v), argMax(tier, v), argMax(region, v), toString(argMax(status, v)) AS st,
			argMax(assignee, v), argMax(assignee_role, v), argMax(priority, v), min(created_at), argMax(due_at, v),
			argMax(updated_at, v) AS last, argMax(signals, v), argMax(warning_ids, v), argMax(score, v),
			argMax(summary, v), max(escalated), groupUniqArray(cause)
		FROM (SELECT *, version AS v FROM {db}.tasks FINAL WHERE kafka_partition = ?)
		GROUP BY task_id
		HAVING st NOT IN ('RETAINED', 'LOST', 'CLOSED')
			OR last >= (SELECT max(updated_at) FROM {db}.tasks WHERE kafka_partition = ?) - ?`),
		int32(partition), int32(partition), int64(keepClosed.Seconds()))
	if err != nil {
		return nil, fmt.Errorf("tasks of partition %d: %w", partition, err)
	}
	defer rows.Close()
	var out []tasks.Stored
	for rows.Next() {
		var t tasks.Stored
		var tier, status string
		var prio, score, esc uint8
		if err := rows.Scan(&t.TaskID, &t.Version, &t.MSISDN, &tier, &t.Region, &status, &t.Assignee, &t.AssigneeRole,
			&prio, &t.CreatedAt, &t.DueAt, &t.UpdatedAt, &t.Signals, &t.WarningIDs, &score, &t.Summary, &esc, &t.Causes); err != nil {
			return nil, err
		}
		t.Tier, t.Status, t.Priority, t.Score, t.Escalated = schemas.Tier(tier), schemas.TaskStatus(status), int(prio), int(score), esc == 1
		t.Partition = int32(partition)
		out = append(out, t)
	}
	return out, rows.Err()
}

// OpenTaskLoads counts open tasks per assignee over all partitions.
func (w *Warehouse) OpenTaskLoads(ctx context.Context) (map[string]int, error) {
	rows, err := w.conn.Query(ctx, w.sql(`SELECT assignee, count() FROM {db}.tasks_current
		WHERE status NOT IN ('RETAINED', 'LOST', 'CLOSED') GROUP BY assignee`))
	if err != nil {
		return nil, fmt.Errorf("open task loads: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var a string
		var n uint64
		if err := rows.Scan(&a, &n); err != nil {
			return nil, err
		}
		out[a] = int(n)
	}
	return out, rows.Err()
}
