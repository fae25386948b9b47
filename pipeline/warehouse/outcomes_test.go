package warehouse_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestSignalOutcomes builds a known history (ten gold subscribers, warnings
// of one signal under two rule versions, churns inside and outside each
// horizon, tasks won and lost) and checks every figure of signal_outcomes.
func TestSignalOutcomes(t *testing.T) {
	w := open(t)
	ctx := context.Background()
	t0 := at("01-05")
	days := func(n float64) time.Time { return t0.Add(time.Duration(n * 24 * float64(time.Hour))) }
	var f facts
	subs := map[string]string{"A": "13800000001", "B": "13800000002", "C": "13800000003", "D": "13800000004",
		"E": "13800000005", "F": "13800000006", "G": "13800000007", "H": "13800000008", "I": "13800000009", "J": "13800000010"}
	for _, m := range subs {
		f.profile(m, t0.AddDate(0, 0, -30), map[string]string{"tier": "gold", "status": "active"})
	}
	// Churns: A 10 days after its first warning, B 45, C 75, D 120; F before
	// its warnings; G (never warned) by a profile that turns inactive.
	f.event(subs["A"], schemas.CRMDeactivate, days(10))
	f.event(subs["A"], schemas.CRMDeactivate, days(11)) // a second DEACTIVATE changes nothing
	f.event(subs["B"], schemas.CRMDeactivate, days(45))
	f.event(subs["C"], schemas.CRMDeactivate, days(75))
	f.event(subs["D"], schemas.CRMDeactivate, days(120))
	f.event(subs["F"], schemas.CRMDeactivate, days(3))
	f.profile(subs["G"], days(20), map[string]string{"status": "inactive"})
	f.store(t, w)

	const v1, v2 = "aaaaaaaaaaaa", "bbbbbbbbbbbb"
	var warnings []warehouse.WarningRow
	warn := func(who, version string, day float64) {
		id := fmt.Sprintf("%s-%s-%g", who, version, day)
		warnings = append(warnings, warehouse.WarningRow{Warning: schemas.Warning{WarningID: id, MSISDN: subs[who],
			Signal: "hotline_calls", Severity: schemas.SeverityMedium, Tier: schemas.TierGold, DetectedAt: days(day),
			WindowStart: days(day - 7), WindowEnd: days(day), Evidence: map[string]any{}, Score: 30, RuleVersion: version},
			Source: warehouse.SourceRealtime, Provenance: warehouse.Provenance{Partition: 0}})
	}
	for _, who := range []string{"A", "B", "C", "D", "E"} {
		warn(who, v1, 0)
	}
	warn("F", v1, 5)
	warn("F", v1, 8)
	warn("A", v1, 1)                         // a later warning: the first one counts
	warn("A", v2, 2)                         // the same subscriber under the next rules
	warnings = append(warnings, warnings[0]) // stored twice: merges
	if err := w.InsertWarnings(ctx, warnings); err != nil {
		t.Fatal(err)
	}
	task := func(id, who string, status schemas.TaskStatus, version uint32) tasks.Row {
		return tasks.Row{Task: schemas.Task{TaskID: id, Version: version, MSISDN: subs[who], Tier: schemas.TierGold, Status: status,
			Assignee: "am-1", AssigneeRole: "account_manager", CreatedAt: days(0), DueAt: days(1), UpdatedAt: days(float64(version)),
			Signals: []string{"hotline_calls"}, WarningIDs: []string{"x"}}}
	}
	if err := w.InsertTasks(ctx, []tasks.Row{
		task("t-a", "A", schemas.TaskOpen, 1), task("t-a", "A", schemas.TaskLost, 2),
		task("t-e", "E", schemas.TaskOpen, 1), task("t-e", "E", schemas.TaskContacted, 2), task("t-e", "E", schemas.TaskRetained, 3),
	}); err != nil {
		t.Fatal(err)
	}

	got, err := warehouse.ReadSignalOutcomes(ctx, w.Conn(), w.Database())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].RuleVersion != v1 || got[1].RuleVersion != v2 {
		t.Fatalf("signal_outcomes: %+v, want one row per rule version", got)
	}
	p := func(x float64) *float64 { return &x }
	show := func(o warehouse.SignalOutcome) string {
		f := func(x *float64) string {
			if x == nil {
				return "nil"
			}
			return fmt.Sprintf("%.4g", *x)
		}
		return fmt.Sprintf("warnings=%d subscribers=%d churned=%d/%d/%d precision=%.4g/%.4g/%.4g base=%.4g lift=%s churners=%d recall=%s lead=%s "+
			"task=%d kept %d, none=%d kept %d, retention %s/%s, tasks retained %d lost %d",
			o.Warnings, o.Subscribers, o.Churned30, o.Churned60, o.Churned90, o.Precision30, o.Precision60, o.Precision90,
			o.BaseRate, f(o.Lift90), o.Churners, f(o.Recall90), f(o.MedianLead), o.WithTask, o.WithTaskKept, o.WithoutTask, o.WithoutKept,
			f(o.RetainedWith), f(o.RetainedNone), o.TaskRetained, o.TaskLost)
	}
	// v1: A..E once, F twice, A again: 8 warnings of 6 subscribers. Within
	// 30 days A; 60 A, B; 90 A, B, C; D churned after 120 days; F before
	// its warning. Churners: A, B, C, D, F, G = 6 of the 10 gold, base 0.6.
	// Leads 10, 45, 75, 120: median 60. Tasks: A (lost) and E (retained).
	want := warehouse.SignalOutcome{Warnings: 8, Subscribers: 6, Churned30: 1, Churned60: 2, Churned90: 3,
		Precision30: 0.1667, Precision60: 0.3333, Precision90: 0.5, BaseRate: 0.6, Lift90: p(0.83), Churners: 6, Recall90: p(0.5),
		MedianLead: p(60), WithTask: 2, WithTaskKept: 1, WithoutTask: 4, WithoutKept: 2, RetainedWith: p(0.5), RetainedNone: p(0.5),
		TaskRetained: 1, TaskLost: 1}
	if show(got[0]) != show(want) {
		t.Errorf("rule version %s:\n got %s\nwant %s", v1, show(got[0]), show(want))
	}
	// v2: A alone, 8 days before its churn.
	want = warehouse.SignalOutcome{Warnings: 1, Subscribers: 1, Churned30: 1, Churned60: 1, Churned90: 1,
		Precision30: 1, Precision60: 1, Precision90: 1, BaseRate: 0.6, Lift90: p(1.67), Churners: 6, Recall90: p(0.1667),
		MedianLead: p(8), WithTask: 1, WithTaskKept: 0, WithoutTask: 0, WithoutKept: 0, RetainedWith: p(0), RetainedNone: nil,
		TaskLost: 1}
	if show(got[1]) != show(want) {
		t.Errorf("rule version %s:\n got %s\nwant %s", v2, show(got[1]), show(want))
	}

	churns, err := w.Churns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(churns) != 6 || !churns[subs["A"]].Equal(days(10)) || !churns[subs["G"]].Equal(days(20)) {
		t.Errorf("churns: %v", churns)
	}
}
