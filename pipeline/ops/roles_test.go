package ops_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/ops"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// The tokens of workbenchConfig's users.
const (
	tokAM017 = "am-017-token-0123456789"
	tokAM021 = "am-021-token-0123456789"
	tokSV001 = "sv-001-token-0123456789"
)

// loadScopeFacts adds to loadSubscriberFacts a warning of subB (am-021) and
// an open task each for subA (am-017) and subB.
func loadScopeFacts(t *testing.T, w *warehouse.Warehouse) {
	t.Helper()
	ctx := context.Background()
	tt := at(t, "2026-11-21 11:00")
	if err := w.InsertWarnings(ctx, []warehouse.WarningRow{{Warning: schemas.Warning{WarningID: "w3", MSISDN: subB, Signal: signals.HotlineCalls,
		Severity: schemas.SeverityMedium, Tier: schemas.TierGold, DetectedAt: tt, WindowStart: tt.Add(-7 * 24 * time.Hour), WindowEnd: tt,
		Evidence: map[string]any{"calls": 3}, Score: 20}, Source: warehouse.SourceRealtime, Provenance: warehouse.Provenance{Partition: 0, Offset: 2}}}); err != nil {
		t.Fatal(err)
	}
	task := func(id, msisdn, assignee, created, due string) tasks.Row {
		return tasks.Row{Task: schemas.Task{TaskID: id, Version: 1, MSISDN: msisdn, Tier: schemas.TierGold, Status: schemas.TaskOpen, Assignee: assignee,
			AssigneeRole: tasks.RoleAccountManager, CreatedAt: at(t, created), DueAt: at(t, due), UpdatedAt: at(t, created),
			Signals: []string{signals.HotlineCalls}, Score: 30, Summary: "拨打10086次数", Region: "fuzhou-linchuan"}, Cause: "c-" + id}
	}
	if err := w.InsertTasks(ctx, []tasks.Row{
		task("T-A2", subA, "am-017", "2026-11-21 10:00", "2026-11-23 10:00"),
		task("T-B1", subB, "am-021", "2026-11-21 11:00", "2026-11-22 11:00"), // overdue at noon on the 22nd
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRoleScopesTheDashboard checks that the live dashboard shows a user only
// the subscribers they see: a manager their own (account or phone manager),
// a supervisor their team's, the dashboard token (an admin) every one — in
// the stored warnings, the live stream, the chart, the tasks per manager, the
// task list and the reports, with facts in ClickHouse and warnings on a
// real broker.
func TestRoleScopesTheDashboard(t *testing.T) {
	w := workbenchWarehouse(t)
	loadSubscriberFacts(t, w)
	loadScopeFacts(t, w)
	cfg := workbenchConfig(t)
	b := testenv.Broker(t, 1, cfg.Topics.Warnings)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hub := ops.NewHub(ops.NewTailer(ops.TailConfig{Conn: kafkaconn.Conn{Brokers: b.Addrs()}, Topic: cfg.Topics.Warnings}), zerolog.Nop())
	go func() { _ = hub.Run(ctx) }()
	now := at(t, "2026-11-22 12:00") // the server's clock (workbenchServer)
	srv := workbenchServer(t, w, cfg, hub)
	admin := cfg.HTTP.Token
	get := func(token, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode, readAll(t, resp)
	}
	getJSON := func(token, path string, v any) {
		t.Helper()
		code, body := get(token, path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	users := map[string]string{"am-017": tokAM017, "am-021": tokAM021, "sv-001": tokSV001, "admin": admin}

	t.Run("stored warnings", func(t *testing.T) {
		for user, want := range map[string]string{"am-017": "w1,w2", "am-021": "w3", "sv-001": "w1,w2", "admin": "w1,w2,w3"} {
			var ws []ops.WarningView
			getJSON(users[user], "/api/warnings", &ws)
			var ids []string
			for _, x := range ws {
				ids = append(ids, x.WarningID)
			}
			slices.Sort(ids)
			if got := strings.Join(ids, ","); got != want {
				t.Errorf("/api/warnings as %s: %s, want %s", user, got, want)
			}
		}
		// A manager filter cannot widen the scope.
		var ws []ops.WarningView
		getJSON(tokAM017, "/api/warnings?manager=am-021", &ws)
		if len(ws) != 0 {
			t.Errorf("am-017 filtering by am-021 sees %d warnings, want none", len(ws))
		}
	})

	t.Run("chart", func(t *testing.T) {
		for user, want := range map[string]int64{"am-017": 2, "am-021": 1, "admin": 3} {
			var c ops.Chart
			getJSON(users[user], "/api/chart?range=7d", &c)
			var n int64
			for _, s := range c.Series {
				for _, k := range s.Counts {
					n += k
				}
			}
			if n != want {
				t.Errorf("/api/chart as %s counts %d warnings, want %d", user, n, want)
			}
		}
	})

	t.Run("tasks per manager", func(t *testing.T) {
		for user, want := range map[string]string{"am-017": "am-017:1", "am-021": "am-021:1", "sv-001": "am-017:1", "admin": "am-021:1,am-017:1"} {
			var loads []ops.ManagerLoad
			getJSON(users[user], "/api/tasks", &loads)
			var got []string
			for _, l := range loads {
				got = append(got, fmt.Sprintf("%s:%d", l.Assignee, l.Open))
			}
			if strings.Join(got, ",") != want {
				t.Errorf("/api/tasks as %s: %v, want %s", user, got, want)
			}
		}
	})

	t.Run("task list", func(t *testing.T) {
		for _, tt := range []struct{ user, query, want string }{
			{"sv-001", "status=open", "T-A2"},
			{"am-017", "status=open", "T-A2"},
			{"am-017", "status=all", "T-A,T-A2"},
			{"am-021", "", "T-B1"},
			{"admin", "status=open", "T-A2,T-B1"},
			{"admin", "overdue=true", "T-B1"},
			{"admin", "status=RETAINED", "T-A"},
		} {
			var ts []ops.TaskView
			getJSON(users[tt.user], "/api/tasks/list?"+tt.query, &ts)
			var ids []string
			for _, x := range ts {
				ids = append(ids, x.TaskID)
				if x.TaskID == "T-B1" && !x.Overdue {
					t.Errorf("T-B1 is past due and not contacted, yet not marked overdue")
				}
			}
			slices.Sort(ids)
			if got := strings.Join(ids, ","); got != tt.want {
				t.Errorf("/api/tasks/list?%s as %s: %s, want %s", tt.query, tt.user, got, tt.want)
			}
		}
		if code, body := get(admin, "/api/tasks/list?status=DONE"); code != http.StatusBadRequest || !strings.Contains(body, "want open, all") {
			t.Errorf("unknown status: %d %s", code, body)
		}
	})

	t.Run("reports", func(t *testing.T) {
		for _, tt := range []struct {
			user, query string
			want        int
			body        string
		}{
			{"am-017", "manager=am-021&date=2026-11-21", http.StatusForbidden, "forbidden: am-017 is a manager and sees only their own report, not am-021's"},
			{"am-017", "manager=am-017&date=2026-11-21&format=csv", http.StatusOK, subA},
			{"am-017", "date=2026-11-21&format=csv", http.StatusOK, subA}, // their own by default
			{"sv-001", "manager=am-017&date=2026-11-21&format=csv", http.StatusOK, subA},
			{"sv-001", "manager=am-021&date=2026-11-21", http.StatusForbidden, "sv-001 supervises team fz-am, and am-021 is not in it"},
			{"am-021", "manager=am-017&date=2026-11-21", http.StatusForbidden, "sees only their own report"},
			{"admin", "manager=am-021&date=2026-11-21&format=csv", http.StatusOK, subB},
			{"admin", "date=2026-11-21", http.StatusBadRequest, "manager is required"},
		} {
			code, body := get(users[tt.user], "/report?"+tt.query)
			if code != tt.want || !strings.Contains(body, tt.body) {
				t.Errorf("/report?%s as %s: %d %q, want %d with %q", tt.query, tt.user, code, body, tt.want, tt.body)
			}
			if code == http.StatusOK && tt.user != "admin" && strings.Contains(body, subB) {
				t.Errorf("/report?%s as %s shows am-021's subscriber", tt.query, tt.user)
			}
		}
	})

	t.Run("live stream", func(t *testing.T) {
		// The streams end with the subtest: the server's Close waits for them.
		streamCtx, endStreams := context.WithCancel(ctx)
		defer endStreams()
		streams := map[string]<-chan sse{}
		for _, user := range []string{"am-017", "admin"} {
			streams[user] = openStream(t, streamCtx, srv.URL+"/api/warnings/stream", users[user])
		}
		for user, ch := range streams {
			waitEvent(t, ch, user, func(e sse) bool { return e.event == "ready" })
		}
		live := func(id, msisdn, am string) kafka.Message {
			v, _ := json.Marshal(schemas.Warning{WarningID: id, MSISDN: msisdn, Signal: signals.HotlineCalls, Severity: schemas.SeverityMedium,
				Tier: schemas.TierGold, DetectedAt: now, WindowStart: now, WindowEnd: now, Score: 20, Region: "fuzhou-linchuan", AccountManager: am})
			return kafka.Message{Topic: cfg.Topics.Warnings, Key: []byte(msisdn), Value: v}
		}
		// One partition: the hub delivers w4 before w5.
		testenv.Produce(t, b.Addrs(), live("w4", subB, "am-021"), live("w5", subA, "am-017"))
		var got []string
		waitEvent(t, streams["am-017"], "am-017", func(e sse) bool {
			if e.event == "warning" {
				got = append(got, e.id)
			}
			return e.id == "w5"
		})
		if strings.Join(got, ",") != "w5" {
			t.Errorf("am-017's live stream got %v, want only w5 (w4 is am-021's)", got)
		}
		got = nil
		waitEvent(t, streams["admin"], "admin", func(e sse) bool {
			if e.event == "warning" {
				got = append(got, e.id)
			}
			return e.id == "w5"
		})
		if strings.Join(got, ",") != "w4,w5" {
			t.Errorf("the admin's live stream got %v, want w4,w5", got)
		}
	})
}

type sse struct{ event, id, data string }

// openStream reads the server-sent events of url with token until ctx ends.
func openStream(t *testing.T, ctx context.Context, url, token string) <-chan sse {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	ch := make(chan sse, 64)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		var e sse
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.event != "" {
					ch <- e
				}
				e = sse{}
			case strings.HasPrefix(line, "event: "):
				e.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "id: "):
				e.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "data: "):
				e.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// waitEvent reads events from ch until done says so, failing after 20 s.
func waitEvent(t *testing.T, ch <-chan sse, who string, done func(sse) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("%s's stream ended", who)
			}
			if done(e) {
				return
			}
		case <-timeout:
			t.Fatalf("%s's stream: nothing expected within 20 s", who)
		}
	}
}
