package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// seededWarehouse returns a migrated fresh database and the environment
// that points the binary at it.
func seededWarehouse(t *testing.T) (*warehouse.Warehouse, []string) {
	t.Helper()
	ch, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	wh, err := warehouse.Open(ctx, ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	if _, err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return wh, []string{"CHURNWATCH_CLICKHOUSE_ADDR=" + ch.Addr, "CHURNWATCH_CLICKHOUSE_DATABASE=" + ch.Database}
}

func taskRow(id string, version uint32, msisdn, status, assignee string, due time.Time) tasks.Row {
	created := due.Add(-24 * time.Hour)
	return tasks.Row{Task: schemas.Task{TaskID: id, Version: version, MSISDN: msisdn, Tier: "gold", Status: schemas.TaskStatus(status),
		Assignee: assignee, AssigneeRole: "account_manager", Priority: 2, CreatedAt: created, DueAt: due,
		UpdatedAt: created.Add(time.Duration(version) * time.Minute), Signals: []string{"hotline_calls"}, WarningIDs: []string{"w-" + id},
		Score: 40, Summary: "calls to 10086", Region: "fuzhou-linchuan"}, Cause: fmt.Sprintf("c-%s-%d", id, version)}
}

// TestTasksList lists tasks from tasks_current by assignee, status and
// overdue, as a table and as JSON.
func TestTasksList(t *testing.T) {
	wh, env := seededWarehouse(t)
	now := time.Now().Truncate(time.Second)
	err := wh.InsertTasks(context.Background(), []tasks.Row{
		taskRow("t-overdue", 1, "13900000601", "OPEN", "am-017", now.Add(-2*time.Hour)),
		taskRow("t-contacted", 1, "13900000602", "OPEN", "am-017", now.Add(-3*time.Hour)),
		taskRow("t-contacted", 2, "13900000602", "CONTACTED", "am-017", now.Add(-3*time.Hour)),
		taskRow("t-later", 1, "13900000603", "ACCEPTED", "am-017", now.Add(5*time.Hour)),
		taskRow("t-other", 1, "13900000604", "OPEN", "am-021", now.Add(-time.Hour)),
		taskRow("t-done", 1, "13900000605", "OPEN", "am-017", now.Add(-9*time.Hour)),
		taskRow("t-done", 2, "13900000605", "RETAINED", "am-017", now.Add(-9*time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(out string) string {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[len(f)-1], "t-") {
				got = append(got, f[len(f)-1])
			}
		}
		return strings.Join(got, ",")
	}
	tests := []struct {
		name string
		args []string
		want string // task ids, in output order (earliest due first)
	}{
		{"open tasks of a manager", []string{"--assignee", "am-017"}, "t-contacted,t-overdue,t-later"},
		{"overdue", []string{"--overdue"}, "t-overdue,t-other"},
		{"overdue of a manager", []string{"--assignee", "am-017", "--overdue"}, "t-overdue"},
		{"by status", []string{"--status", "contacted,accepted"}, "t-contacted,t-later"},
		{"closed too", []string{"--assignee", "am-017", "--status", "all"}, "t-done,t-contacted,t-overdue,t-later"},
		{"nobody", []string{"--assignee", "am-999"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCmd(t, env, append([]string{"tasks", "list"}, tt.args...)...)
			if code != exitOK {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			if got := ids(out); got != tt.want {
				t.Errorf("tasks %q, want %q:\n%s", got, tt.want, out)
			}
			if n := len(strings.Split(tt.want, ",")); tt.want != "" && !strings.Contains(out, fmt.Sprintf("\n%d tasks\n", n)) {
				t.Errorf("output lacks the count %d:\n%s", n, out)
			}
		})
	}
	out, _ := runCmd(t, env, "tasks", "list", "--overdue", "--assignee", "am-017")
	if !strings.Contains(out, "overdue 2h0m0s") || !strings.Contains(out, "13900000601") || !strings.Contains(out, "hotline_calls") {
		t.Errorf("table row lacks how overdue, the number or the signals:\n%s", out)
	}

	out, code := runCmd(t, env, "tasks", "list", "--json", "--status", "RETAINED")
	var task schemas.Task
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &task); code != exitOK || err != nil {
		t.Fatalf("--json: exit %d, %v:\n%s", code, err, out)
	}
	if task.TaskID != "t-done" || task.Version != 2 || task.Status != schemas.TaskRetained || task.Summary != "calls to 10086" {
		t.Errorf("--json task: %+v", task)
	}

	out, code = runCmd(t, env, "tasks", "list", "--status", "DONE")
	if code != exitUsage || !strings.Contains(out, `--status "DONE"`) {
		t.Errorf("bad status: exit %d:\n%s", code, out)
	}
	out, code = runCmd(t, append(env, "CHURNWATCH_CLICKHOUSE_ADDR=127.0.0.1:1"), "tasks", "list")
	if code != exitError || !strings.Contains(out, "clickhouse") {
		t.Errorf("unreachable ClickHouse: exit %d:\n%s", code, out)
	}
}
