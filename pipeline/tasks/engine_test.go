package tasks

import (
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/signals"
	"churnwatch/schemas"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func cfg() Config {
	c := DefaultConfig()
	c.Pools = map[string][]string{"fuzhou-linchuan": {"am-101", "am-102"}, DefaultPool: {"pool-001"}}
	c.Supervisors = map[string]string{"am-017": "sup-01"}
	return c
}

func warning(id, msisdn, signal string, sev schemas.Severity, tier schemas.Tier, at time.Duration) schemas.Warning {
	return schemas.Warning{WarningID: id, MSISDN: msisdn, Signal: signal, Severity: sev, Tier: tier, DetectedAt: t0.Add(at),
		Score: 40, Region: "fuzhou-linchuan", AccountManager: "am-017", PhoneManager: "pm-003",
		Evidence: map[string]any{"calls": 3, "numbers": []string{"10086"}, "window_days": 7}}
}

func TestCreationAndRouting(t *testing.T) {
	tests := []struct {
		name         string
		w            schemas.Warning
		wantTask     bool
		wantAssignee string
		wantRole     string
		wantDue      time.Duration
	}{
		{"diamond goes to the account manager in 4h", warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierDiamond, 0), true, "am-017", RoleAccountManager, 4 * time.Hour},
		{"gold goes to the account manager in 24h", warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0), true, "am-017", RoleAccountManager, 24 * time.Hour},
		{"silver goes to the phone manager in 48h", warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierSilver, 0), true, "pm-003", RolePhoneManager, 48 * time.Hour},
		{"port_out halves the due time", warning("w1", "13800000001", signals.PortOut, schemas.SeverityCritical, schemas.TierGold, 0), true, "am-017", RoleAccountManager, 12 * time.Hour},
		{"standard opens nothing", warning("w1", "13800000001", signals.PortOut, schemas.SeverityCritical, schemas.TierStandard, 0), false, "", "", 0},
		{"low opens nothing", warning("w1", "13800000001", signals.PaymentFreqDrop, schemas.SeverityLow, schemas.TierDiamond, 0), false, "", "", 0},
		{"birthday opens a care task for gold", warning("w1", "13800000001", signals.Birthday, schemas.SeverityInfo, schemas.TierGold, 0), true, "am-017", RoleAccountManager, 24 * time.Hour},
		{"promo expiry opens a care task for diamond", warning("w1", "13800000001", signals.PromoExpiry, schemas.SeverityLow, schemas.TierDiamond, 0), true, "am-017", RoleAccountManager, 4 * time.Hour},
		{"birthday opens nothing for silver", warning("w1", "13800000001", signals.Birthday, schemas.SeverityInfo, schemas.TierSilver, 0), false, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(cfg(), nil, nil)
			v, ok := e.OnWarning(tt.w)
			if ok != tt.wantTask {
				t.Fatalf("task opened = %v, want %v", ok, tt.wantTask)
			}
			if !ok {
				return
			}
			if v.Assignee != tt.wantAssignee || v.AssigneeRole != tt.wantRole || v.DueAt.Sub(v.CreatedAt) != tt.wantDue ||
				v.Version != 1 || v.Status != schemas.TaskOpen || v.TaskID != TaskID(tt.w.MSISDN, tt.w.WarningID) {
				t.Errorf("task = %+v", v.Task)
			}
			if !strings.Contains(v.Summary, "拨打10086次数") && tt.w.Signal == signals.HotlineCalls {
				t.Errorf("summary %q lacks the Chinese signal name", v.Summary)
			}
		})
	}
}

func TestPoolRoutingLeastLoaded(t *testing.T) {
	e := NewEngine(cfg(), nil, nil)
	e.SetLoad(map[string]int{"am-101": 2})
	var got []string
	for i, m := range []string{"13800000001", "13800000002", "13800000003", "13800000004"} {
		w := warning("w"+m, m, signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, time.Duration(i)*time.Minute)
		w.AccountManager = ""
		v, _ := e.OnWarning(w)
		got = append(got, v.Assignee+"/"+v.AssigneeRole)
	}
	want := "am-102/pool,am-102/pool,am-101/pool,am-102/pool"
	if strings.Join(got, ",") != want {
		t.Errorf("pool routing = %v, want %s", got, want)
	}
	w := warning("w9", "13800000009", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierSilver, 0)
	w.PhoneManager, w.Region = "", "elsewhere"
	if v, _ := e.OnWarning(w); v.Assignee != "pool-001" {
		t.Errorf("a region without a pool goes to the default pool, got %s", v.Assignee)
	}
}

func TestJoinReplayAndCooldown(t *testing.T) {
	e := NewEngine(cfg(), nil, nil)
	v1, _ := e.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0))
	if _, ok := e.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0)); ok {
		t.Error("a replayed warning made a new version")
	}
	low := warning("w2", "13800000001", signals.PaymentFreqDrop, schemas.SeverityLow, schemas.TierGold, time.Hour)
	v2, ok := e.OnWarning(low)
	if !ok || v2.TaskID != v1.TaskID || v2.Version != 2 || strings.Join(v2.Signals, ",") != "hotline_calls,payment_freq_drop" || len(v2.WarningIDs) != 2 {
		t.Fatalf("a low warning must join the open task: %+v", v2.Task)
	}
	port := warning("w3", "13800000001", signals.PortOut, schemas.SeverityCritical, schemas.TierGold, 2*time.Hour)
	v3, _ := e.OnWarning(port)
	if v3.Version != 3 || !v3.DueAt.Equal(t0.Add(14*time.Hour)) || v3.Priority != 1 {
		t.Errorf("port_out joining must pull the due time to +12h from it and raise priority: %+v", v3.Task)
	}
	if v4, ok, err := e.OnUpdate(schemas.TaskUpdate{TaskID: v1.TaskID, MSISDN: "13800000001", Status: schemas.UpdateRetained,
		By: "am-017", Note: "visited; renewed the family plan", TS: t0.Add(3 * time.Hour)}); !ok || err != nil {
		t.Fatalf("retain: %v", err)
	} else if v4.UpdatedBy != "am-017" || v4.Note != "visited; renewed the family plan" {
		t.Errorf("the version an update made must carry its by and note: %q %q", v4.UpdatedBy, v4.Note)
	}
	// Within 14 days the same signal opens nothing; another signal does; port_out always does.
	if _, ok := e.OnWarning(warning("w4", "13800000001", signals.HotlineCalls, schemas.SeverityHigh, schemas.TierGold, 13*24*time.Hour)); ok {
		t.Error("hotline_calls reopened a task within the cooldown")
	}
	if _, ok := e.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 20*24*time.Hour)); ok {
		t.Error("a replay of a closed task's warning opened a task")
	}
	v5, ok := e.OnWarning(warning("w5", "13800000001", signals.PortOut, schemas.SeverityCritical, schemas.TierGold, 4*24*time.Hour))
	if !ok || v5.TaskID == v1.TaskID {
		t.Error("port_out must open a new task even within the cooldown")
	}
	e2 := NewEngine(cfg(), nil, nil)
	e2.OnWarning(warning("w1", "13800000002", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0))
	v, _ := e2.OnWarning(warning("w2", "13800000002", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, time.Hour))
	e2.OnUpdate(schemas.TaskUpdate{TaskID: v.TaskID, MSISDN: "13800000002", Status: schemas.UpdateLost, TS: t0.Add(2 * time.Hour)})
	if _, ok := e2.OnWarning(warning("w3", "13800000002", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 15*24*time.Hour)); !ok {
		t.Error("after the cooldown the signal must open a task again")
	}
}

func TestTransitions(t *testing.T) {
	all := []schemas.TaskUpdateStatus{schemas.UpdateAccepted, schemas.UpdateContacted, schemas.UpdateTransferred,
		schemas.UpdateRetained, schemas.UpdateLost, schemas.UpdateClosed}
	// To reach each status: the updates (and escalation) that lead there.
	paths := map[schemas.TaskStatus][]string{
		schemas.TaskOpen: nil, schemas.TaskAccepted: {"ACCEPTED"}, schemas.TaskContacted: {"CONTACTED"},
		schemas.TaskEscalated: {"escalate"}, schemas.TaskRetained: {"RETAINED"}, schemas.TaskLost: {"LOST"}, schemas.TaskClosed: {"CLOSED"},
	}
	legal := map[schemas.TaskStatus]string{
		schemas.TaskOpen: "ACCEPTED CONTACTED TRANSFERRED RETAINED LOST CLOSED", schemas.TaskAccepted: "CONTACTED TRANSFERRED RETAINED LOST CLOSED",
		schemas.TaskEscalated: "ACCEPTED CONTACTED TRANSFERRED RETAINED LOST CLOSED", schemas.TaskContacted: "CONTACTED TRANSFERRED RETAINED LOST CLOSED",
		schemas.TaskRetained: "CLOSED", schemas.TaskLost: "CLOSED", schemas.TaskClosed: "",
	}
	for from, path := range paths {
		for _, to := range all {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				e := NewEngine(cfg(), nil, nil)
				v, _ := e.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0))
				at := time.Minute
				for _, step := range path {
					if step == "escalate" {
						e.Escalate(t0.Add(25 * time.Hour))
						continue
					}
					if _, _, err := e.OnUpdate(schemas.TaskUpdate{TaskID: v.TaskID, MSISDN: v.MSISDN, Status: schemas.TaskUpdateStatus(step), TS: t0.Add(at)}); err != nil {
						t.Fatalf("setup %s: %v", step, err)
					}
					at += time.Minute
				}
				u := schemas.TaskUpdate{TaskID: v.TaskID, MSISDN: v.MSISDN, Status: to, By: "am-017", To: "am-021", TS: t0.Add(26 * time.Hour)}
				nv, ok, err := e.OnUpdate(u)
				wantLegal := strings.Contains(" "+legal[from]+" ", " "+string(to)+" ")
				if wantLegal != (err == nil) || ok != wantLegal {
					t.Fatalf("legal = %v, got ok=%v err=%v", wantLegal, ok, err)
				}
				if !wantLegal {
					if !strings.Contains(err.Error(), "illegal transition") {
						t.Errorf("reason %q must name the illegal transition", err)
					}
					return
				}
				if to == schemas.UpdateTransferred {
					if nv.Assignee != "am-021" || nv.Status != from {
						t.Errorf("transfer: %+v", nv.Task)
					}
				} else if nv.Status != schemas.TaskStatus(to) {
					t.Errorf("status = %s, want %s", nv.Status, to)
				}
				if _, ok, err := e.OnUpdate(u); ok || err != nil {
					t.Errorf("a replayed update must change nothing: ok=%v err=%v", ok, err)
				}
			})
		}
	}
	e := NewEngine(cfg(), nil, nil)
	v, _ := e.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0))
	if _, _, err := e.OnUpdate(schemas.TaskUpdate{TaskID: "nope", MSISDN: v.MSISDN, Status: schemas.UpdateAccepted, TS: t0}); err == nil || !strings.Contains(err.Error(), "unknown task") {
		t.Errorf("unknown task: %v", err)
	}
	if _, _, err := e.OnUpdate(schemas.TaskUpdate{TaskID: v.TaskID, MSISDN: "13800000009", Status: schemas.UpdateAccepted, TS: t0}); err == nil {
		t.Error("an update naming another subscriber must be refused")
	}
}

func TestEscalationOnce(t *testing.T) {
	e := NewEngine(cfg(), nil, nil)
	v, _ := e.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierDiamond, 0))
	if got := e.Escalate(t0.Add(4 * time.Hour)); len(got) != 0 {
		t.Fatalf("escalated at the due time itself: %+v", got)
	}
	got := e.Escalate(t0.Add(4*time.Hour + time.Second))
	if len(got) != 1 || got[0].Status != schemas.TaskEscalated || got[0].Assignee != "sup-01" || got[0].AssigneeRole != RoleSupervisor || got[0].Version != v.Version+1 {
		t.Fatalf("escalation = %+v", got)
	}
	if again := e.Escalate(t0.Add(48 * time.Hour)); len(again) != 0 {
		t.Errorf("escalated twice: %+v", again)
	}
	e.OnUpdate(schemas.TaskUpdate{TaskID: v.TaskID, MSISDN: v.MSISDN, Status: schemas.UpdateTransferred, To: "am-030", TS: t0.Add(50 * time.Hour)})
	if again := e.Escalate(t0.Add(100 * time.Hour)); len(again) != 0 {
		t.Errorf("a transferred escalated task escalated again: %+v", again)
	}
	// A contacted task is not overdue; a restored escalated one stays escalated-once.
	e = NewEngine(cfg(), nil, nil)
	c, _ := e.OnWarning(warning("w2", "13800000002", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierSilver, 0))
	e.OnUpdate(schemas.TaskUpdate{TaskID: c.TaskID, MSISDN: c.MSISDN, Status: schemas.UpdateContacted, TS: t0.Add(time.Hour)})
	if got := e.Escalate(t0.Add(100 * time.Hour)); len(got) != 0 {
		t.Errorf("a contacted task was escalated: %+v", got)
	}
	restored := NewEngine(cfg(), []Version{{Task: got1(e, c.TaskID), Escalated: true}}, nil)
	if got := restored.Escalate(t0.Add(200 * time.Hour)); len(got) != 0 {
		t.Errorf("restored escalated task escalated again")
	}
}

func got1(e *Engine, id string) schemas.Task {
	t := e.byID[id].task
	t.Status = schemas.TaskOpen
	return t
}

func TestRestoredEngineContinues(t *testing.T) {
	e := NewEngine(cfg(), nil, nil)
	v, _ := e.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0))
	u := schemas.TaskUpdate{TaskID: v.TaskID, MSISDN: v.MSISDN, Status: schemas.UpdateAccepted, TS: t0.Add(time.Minute)}
	a, _, _ := e.OnUpdate(u)
	r := NewEngine(cfg(), []Version{a}, map[string][]string{v.TaskID: {UpdateKey(u)}})
	if _, ok := r.OnWarning(warning("w1", "13800000001", signals.HotlineCalls, schemas.SeverityMedium, schemas.TierGold, 0)); ok {
		t.Error("restored engine re-applied a warning")
	}
	if _, ok, err := r.OnUpdate(u); ok || err != nil {
		t.Errorf("restored engine re-applied an update: %v %v", ok, err)
	}
	j, ok := r.OnWarning(warning("w2", "13800000001", signals.ForwardOffnet, schemas.SeverityHigh, schemas.TierGold, time.Hour))
	if !ok || j.Version != 3 || j.Status != schemas.TaskAccepted {
		t.Errorf("join after restore: %+v", j.Task)
	}
}
