package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

// TestOwnerEscalatesOnceAndRestores runs the owner against the real
// ClickHouse and broker with a controllable clock.
func TestOwnerEscalatesOnceAndRestores(t *testing.T) {
	ctx := context.Background()
	ch, conn := testenv.ClickHouse(t)
	b := testenv.Broker(t, 1, "tasks")
	wh, err := pipeline.OpenWarehouse(ctx, ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	if _, err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	w := pipeline.NewWriter(kafkaconn.Conn{Brokers: b.Addrs()})
	defer w.Close()
	cfg := tasks.DefaultConfig()
	cfg.Supervisors = map[string]string{"am-017": "sup-01"}
	pub := tasks.NewPublisher(wh, w, "tasks")
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	owner := tasks.NewOwner(cfg, wh, pub, clock, zerolog.Nop())

	h, err := owner.Acquire(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := h.OnWarning(schemas.Warning{WarningID: "w1", MSISDN: "13800000001", Signal: signals.PortOut, Severity: schemas.SeverityCritical,
		Tier: schemas.TierDiamond, DetectedAt: t0, AccountManager: "am-017", Score: 63})
	if len(rows) != 1 || !rows[0].DueAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("diamond port_out task due in 2 h: %+v", rows)
	}
	if err := pub.Publish(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		at   time.Duration
		want int
	}{{time.Hour, 0}, {2 * time.Hour, 0}, {2*time.Hour + time.Minute, 1}, {5 * time.Hour, 0}} {
		clock.now = t0.Add(step.at)
		n, err := owner.EscalateNow(ctx)
		if err != nil || n != step.want {
			t.Fatalf("at +%s escalated %d (%v), want %d", step.at, n, err, step.want)
		}
	}
	h.Release()

	// A new owner (a restart) restores the escalated task and does not escalate it again.
	owner = tasks.NewOwner(cfg, wh, pub, clock, zerolog.Nop())
	h, err = owner.Acquire(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	clock.now = t0.Add(48 * time.Hour)
	if n, err := owner.EscalateNow(ctx); err != nil || n != 0 {
		t.Errorf("after a restart escalated %d again (%v)", n, err)
	}
	var status, assignee string
	if err := conn.QueryRow(ctx, fmt.Sprintf("SELECT toString(status), assignee FROM %s.tasks_current", ch.Database)).Scan(&status, &assignee); err != nil ||
		status != "ESCALATED" || assignee != "sup-01" {
		t.Errorf("tasks_current: %s %s (%v), want ESCALATED to sup-01", status, assignee, err)
	}
	msgs := testenv.ReadAll(t, b.Addrs(), "tasks")
	var last schemas.Task
	json.Unmarshal(msgs[len(msgs)-1].Value, &last)
	if len(msgs) != 2 || last.Version != 2 || last.Status != schemas.TaskEscalated {
		t.Errorf("churn.tasks holds %d versions, last %+v", len(msgs), last)
	}
	// The restored engine still knows the task: an update applies to it.
	if rows, err := h.OnUpdate(schemas.TaskUpdate{TaskID: last.TaskID, MSISDN: "13800000001", Status: schemas.UpdateContacted, TS: clock.now}); err != nil || len(rows) != 1 || rows[0].Version != 3 {
		t.Errorf("update after restore: %+v %v", rows, err)
	}
}
