package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

// latestTasks reads churn.tasks and keeps the highest version of each task,
// as ticketing does.
func latestTasks(t *testing.T, brokers []string, topic string) map[string]schemas.Task {
	t.Helper()
	out := map[string]schemas.Task{}
	for _, m := range testenv.ReadAll(t, brokers, topic) {
		var task schemas.Task
		if err := json.Unmarshal(m.Value, &task); err != nil {
			t.Fatalf("churn.tasks message %q: %v", m.Value, err)
		}
		if string(m.Key) != task.TaskID {
			t.Errorf("churn.tasks message keyed %q carries task %s", m.Key, task.TaskID)
		}
		if prev, ok := out[task.TaskID]; !ok || task.Version > prev.Version {
			out[task.TaskID] = task
		}
	}
	return out
}

func describeTasks(ts map[string]schemas.Task) string {
	var lines []string
	for _, t := range ts {
		lines = append(lines, fmt.Sprintf("%s v%d %s %s %s/%s %s due+%s", t.MSISDN, t.Version, t.Tier, t.Status, t.Assignee,
			t.AssigneeRole, strings.Join(t.Signals, "+"), t.DueAt.Sub(t.CreatedAt)))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func currentTasks(t *testing.T, conn driver.Conn, db string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(`SELECT task_id, version, msisdn, tier, toString(status), assignee,
		assignee_role, signals, created_at, due_at FROM %s.tasks_current`, db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ts := map[string]schemas.Task{}
	for rows.Next() {
		var task schemas.Task
		var tier, status string
		if err := rows.Scan(&task.TaskID, &task.Version, &task.MSISDN, &tier, &status, &task.Assignee, &task.AssigneeRole,
			&task.Signals, &task.CreatedAt, &task.DueAt); err != nil {
			t.Fatal(err)
		}
		task.Tier, task.Status = schemas.Tier(tier), schemas.TaskStatus(status)
		ts[task.TaskID] = task
	}
	return describeTasks(ts)
}

// TestTasksEndToEnd drives profiles and events through Kafka, checks the
// tasks on churn.tasks and in tasks_current, then feeds ticketing updates
// through churn.task-updates (legal, illegal and for an unknown task) and
// checks the versions and the DLQ.
func TestTasksEndToEnd(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = "tk" + testenv.Suffix() + "."
	b := testenv.Broker(t, 2, topics.All()...)
	cfg := withTopics(testenv.Config(b, ch), topics)
	cfg.Tasks.Pools = map[string][]string{"fuzhou-linchuan": {"am-101"}, "default": {"pool-001"}}
	db := ch.Database

	s := &scenario{topics: topics}
	profile := func(m, p string) {
		s.n++
		s.add(config.TopicCRM, m, fmt.Sprintf(`{"event_id":"tp-%d","msisdn":%q,"type":"PROFILE","ts":%q,"profile":%s}`, s.n, m, s.at(-100), p))
	}
	profile("13900000101", `{"tier":"gold","region":"fuzhou-linchuan","account_manager":"am-017","phone_manager":"pm-003"}`)
	profile("13900000102", `{"tier":"silver","region":"fuzhou-linchuan","account_manager":"am-017","phone_manager":"pm-003"}`)
	profile("13900000103", `{"tier":"diamond","region":"fuzhou-linchuan"}`)
	profile("13900000104", `{"tier":"standard","region":"fuzhou-linchuan","account_manager":"am-017"}`)
	testenv.Produce(t, b.Addrs(), s.msgs...)
	stop := startPipeline(t, cfg)
	testenv.Eventually(t, 30*time.Second, func() error {
		n, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.subscribers FINAL", db))
		if err == nil && n != 4 {
			err = fmt.Errorf("%d profiles stored", n)
		}
		return err
	})

	s.msgs = nil
	for h := 0.0; h < 3; h++ {
		s.call("13900000101", "10086", "MO", h, "")
	}
	s.crm("13900000102", "PORT_OUT_QUERY", 1)
	s.crm("13900000103", "SUSPEND_REQUEST", 1)
	s.crm("13900000104", "PORT_OUT_QUERY", 1)
	testenv.Produce(t, b.Addrs(), s.msgs...)
	want := strings.Join([]string{
		"13900000101 v1 gold OPEN am-017/account_manager hotline_calls due+24h0m0s",
		"13900000102 v1 silver OPEN pm-003/phone_manager port_out due+24h0m0s",
		"13900000103 v1 diamond OPEN am-101/pool business_op due+4h0m0s",
	}, "\n")
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := describeTasks(latestTasks(t, b.Addrs(), topics.Name(topics.Tasks))); got != want {
			return fmt.Errorf("churn.tasks:\n%s\nwant:\n%s", got, want)
		}
		return nil
	})
	if got := currentTasks(t, conn, db); got != want {
		t.Fatalf("tasks_current:\n%s\nwant:\n%s", got, want)
	}

	// A forward off-net joins the open task of 13900000101.
	s.msgs = nil
	s.call("13900000101", "13512345678", "FWD", 4, `,"forward_to":"18612345678"`)
	testenv.Produce(t, b.Addrs(), s.msgs...)
	var task101, task102 schemas.Task
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, task := range latestTasks(t, b.Addrs(), topics.Name(topics.Tasks)) {
			switch task.MSISDN {
			case "13900000101":
				task101 = task
			case "13900000102":
				task102 = task
			}
		}
		if task101.Version != 2 || strings.Join(task101.Signals, ",") != "hotline_calls,forward_offnet" || len(task101.WarningIDs) != 2 {
			return fmt.Errorf("task of 13900000101 after the forward: %+v", task101)
		}
		return nil
	})
	if !strings.Contains(task101.Summary, "呼转外网") || !strings.Contains(task101.Summary, "拨打10086次数") {
		t.Errorf("summary %q must name both signals in Chinese", task101.Summary)
	}

	// Ticketing: accept, contact, retain 101; retain 102 then try to accept it (illegal);
	// and an update for a task that does not exist.
	update := func(task schemas.Task, status, to string, h float64) kafka.Message {
		return kafka.Message{Topic: topics.Name(topics.TaskUpdates), Key: []byte(task.MSISDN), Value: []byte(fmt.Sprintf(
			`{"task_id":%q,"msisdn":%q,"status":%q,"by":"am-017","to":%q,"ts":%q}`, task.TaskID, task.MSISDN, status, to, s.at(h)))}
	}
	testenv.Produce(t, b.Addrs(),
		update(task101, "ACCEPTED", "", 5), update(task101, "TRANSFERRED", "am-021", 6), update(task101, "CONTACTED", "", 7),
		update(task101, "RETAINED", "", 8),
		update(task102, "RETAINED", "", 5), update(task102, "ACCEPTED", "", 6),
		update(schemas.Task{TaskID: "no-such-task", MSISDN: "13900000102"}, "ACCEPTED", "", 6),
	)
	testenv.Eventually(t, 30*time.Second, func() error {
		got := latestTasks(t, b.Addrs(), topics.Name(topics.Tasks))
		a, c := got[task101.TaskID], got[task102.TaskID]
		if a.Version != 6 || a.Status != schemas.TaskRetained || a.Assignee != "am-021" || c.Version != 2 || c.Status != schemas.TaskRetained {
			return fmt.Errorf("after updates: 101 v%d %s %s, 102 v%d %s", a.Version, a.Status, a.Assignee, c.Version, c.Status)
		}
		return nil
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		dlq := testenv.ReadAll(t, b.Addrs(), topics.Name(topics.TaskUpdates)+config.DLQSuffix)
		var reasons []string
		for _, m := range dlq {
			for _, h := range m.Headers {
				if h.Key == "error" {
					reasons = append(reasons, string(h.Value))
				}
			}
		}
		sort.Strings(reasons)
		if len(reasons) != 2 || !strings.HasPrefix(reasons[0], "illegal transition RETAINED → ACCEPTED") || !strings.HasPrefix(reasons[1], "unknown task") {
			return fmt.Errorf("task-updates DLQ reasons: %q", reasons)
		}
		return nil
	})
	stop()

	// Every version is kept; a response time is known for the contacted task.
	if n := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.tasks FINAL", db)); n != 6+2+1 {
		t.Errorf("tasks holds %d versions, want 9", n)
	}
	var resp int64
	if err := conn.QueryRow(context.Background(), fmt.Sprintf(
		"SELECT assumeNotNull(response_seconds) FROM %s.task_outcomes WHERE task_id = ? AND contacted AND retained", db), task101.TaskID).Scan(&resp); err != nil || resp != 5*3600 {
		t.Errorf("response time of 101's task = %d s (%v), want 5 h (created at the third call, contacted 5 h later)", resp, err)
	}

	// A replay of everything (new consumer group) creates no new version.
	before := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.tasks", db))
	beforeMsgs := len(testenv.ReadAll(t, b.Addrs(), topics.Name(topics.Tasks)))
	cfg.Kafka.GroupID += "-replay"
	stop = startPipeline(t, cfg)
	testenv.Eventually(t, 60*time.Second, func() error {
		lag, err := testenv.Lag(b.Addrs(), cfg.Kafka.GroupID, append(topics.Inputs(), topics.Name(topics.Warnings), topics.Name(topics.TaskUpdates))...)
		if err == nil && lag != 0 {
			err = fmt.Errorf("replay lags by %d", lag)
		}
		return err
	})
	stop()
	if after := len(testenv.ReadAll(t, b.Addrs(), topics.Name(topics.Tasks))); after != beforeMsgs {
		t.Errorf("a replay published %d new task versions", after-beforeMsgs)
	}
	if n := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.tasks FINAL", db)); n != 9 {
		t.Errorf("after a replay tasks holds %d versions, want 9 (raw rows before: %d)", n, before)
	}
}
