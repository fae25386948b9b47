package ops_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/ops"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

var shanghai = mustLoad("Asia/Shanghai")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// at parses a local time in Shanghai, "2006-01-02 15:04".
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// workbenchWarehouse returns a migrated fresh database.
func workbenchWarehouse(t *testing.T) *warehouse.Warehouse {
	t.Helper()
	ch, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	w, err := warehouse.Open(ctx, ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if _, err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return w
}

func ptr[T any](v T) *T { return &v }

const (
	subA = "13912340001" // am-017 / pm-003, diamond
	subB = "13912340009" // am-021
)

// loadSubscriberFacts writes the facts of subA and subB as the consumers
// would, and recomputes the aggregates.
func loadSubscriberFacts(t *testing.T, w *warehouse.Warehouse) {
	t.Helper()
	ctx := context.Background()
	day := func(ts time.Time) time.Time { return warehouse.LocalDay(ts, shanghai) }
	crm := []warehouse.CRMRow{
		{CRMEvent: schemas.CRMEvent{EventID: "r1", MSISDN: subA, Type: schemas.CRMProfile, TS: at(t, "2026-06-01 08:00"), Profile: &schemas.Profile{
			Name: ptr("李四"), Tier: ptr(schemas.TierDiamond), Region: ptr("fuzhou-linchuan"), AccountManager: ptr("am-017"),
			PhoneManager: ptr("pm-003"), Birthday: ptr("1986-03-02"), Interests: &[]string{"golf", "tea"},
			Group: &schemas.Group{ID: "G-1", Name: "闽江科技", Level: schemas.GroupA2}, Products: &[]string{"family-plan"},
			NetworkAgeMonths: ptr(int64(173))}}},
		// A later partial profile replaces the interests and keeps the rest.
		{CRMEvent: schemas.CRMEvent{EventID: "r2", MSISDN: subA, Type: schemas.CRMProfile, TS: at(t, "2026-10-01 08:00"), Profile: &schemas.Profile{
			Interests: &[]string{"golf", "fishing"}}}},
		{CRMEvent: schemas.CRMEvent{EventID: "r3", MSISDN: subB, Type: schemas.CRMProfile, TS: at(t, "2026-06-01 08:00"), Profile: &schemas.Profile{
			Tier: ptr(schemas.TierGold), Region: ptr("fuzhou-linchuan"), AccountManager: ptr("am-021")}}},
	}
	for i := range crm {
		crm[i].Day = day(crm[i].TS)
	}
	if err := w.InsertCRM(ctx, crm); err != nil {
		t.Fatal(err)
	}
	bill := func(id, month string, fen int64, ts string) warehouse.BillingRow {
		tt := at(t, ts)
		return warehouse.BillingRow{BillingEvent: schemas.BillingEvent{EventID: id, MSISDN: subA, Type: schemas.BillingBill, TS: tt,
			AmountFen: ptr(fen), BillMonth: month}, Day: day(tt)}
	}
	pay := func(id string, fen int64, ts string) warehouse.BillingRow {
		tt := at(t, ts)
		return warehouse.BillingRow{BillingEvent: schemas.BillingEvent{EventID: id, MSISDN: subA, Type: schemas.BillingPayment, TS: tt,
			AmountFen: ptr(fen), Channel: "app"}, Day: day(tt)}
	}
	billing := []warehouse.BillingRow{
		bill("b7", "2026-07", 50000, "2026-08-01 02:00"), bill("b8", "2026-08", 52000, "2026-09-01 02:00"),
		bill("b9", "2026-09", 53000, "2026-10-01 02:00"), bill("b10", "2026-10", 54000, "2026-11-01 02:00"),
		pay("p1", 60000, "2026-07-15 09:00"), pay("p2", 55000, "2026-09-10 09:00"),
	}
	if err := w.InsertBilling(ctx, billing); err != nil {
		t.Fatal(err)
	}
	cdr := func(id, peer string, network schemas.Network, secs int64, ts string) warehouse.CDRRow {
		tt := at(t, ts)
		return warehouse.CDRRow{CDR: schemas.CDR{EventID: id, MSISDN: subA, Peer: peer, Direction: schemas.DirectionMO, StartTime: tt,
			DurationS: secs}, Network: network, Day: day(tt)}
	}
	calls := []warehouse.CDRRow{
		cdr("c1", "10086", schemas.NetworkSPECIAL, 60, "2026-11-20 09:00"),
		cdr("c2", "13012345678", schemas.NetworkCUCC, 120, "2026-11-20 10:00"),
		cdr("c3", "13912345678", schemas.NetworkCMCC, 60, "2026-11-20 11:00"),
		cdr("c0", "13912345678", schemas.NetworkCMCC, 600, "2026-09-01 11:00"), // before the 60 days
	}
	if err := w.InsertCDR(ctx, calls); err != nil {
		t.Fatal(err)
	}
	var keys []warehouse.DayKey
	for _, c := range calls {
		keys = append(keys, warehouse.DayKey{MSISDN: c.MSISDN, Day: c.Day})
	}
	for _, b := range billing {
		keys = append(keys, warehouse.DayKey{MSISDN: b.MSISDN, Day: b.Day})
	}
	if err := w.RefreshDaily(ctx, keys, warehouse.DailyRules{HomeNetwork: "CMCC", HotlineNumbers: []string{"10086"},
		CompetitorHotlines: []string{"10010"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.RefreshSubscribers(ctx, []string{subA, subB}, warehouse.TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.TakeSnapshot(ctx, at(t, "2026-11-01 00:00")); err != nil {
		t.Fatal(err)
	}
	warn := func(id, signal string, sev schemas.Severity, ts string, ev map[string]any) warehouse.WarningRow {
		tt := at(t, ts)
		return warehouse.WarningRow{Warning: schemas.Warning{WarningID: id, MSISDN: subA, Signal: signal, Severity: sev, Tier: schemas.TierDiamond,
			DetectedAt: tt, WindowStart: tt.Add(-7 * 24 * time.Hour), WindowEnd: tt, Evidence: ev, Score: 30}, Source: warehouse.SourceRealtime,
			Provenance: warehouse.Provenance{Partition: 0, Offset: 1}}
	}
	if err := w.InsertWarnings(ctx, []warehouse.WarningRow{
		warn("w1", signals.HotlineCalls, schemas.SeverityMedium, "2026-11-20 20:00", map[string]any{"calls": 3, "threshold": 3, "window_days": 7}),
		warn("w2", signals.PortOut, schemas.SeverityCritical, "2026-11-21 10:00", map[string]any{"event": "PORT_OUT_QUERY"}),
	}); err != nil {
		t.Fatal(err)
	}
	task := func(v uint32, status schemas.TaskStatus, ts, cause, by, note string) tasks.Row {
		return tasks.Row{Task: schemas.Task{TaskID: "T-A", Version: v, MSISDN: subA, Tier: schemas.TierDiamond, Status: status, Assignee: "am-017",
			AssigneeRole: tasks.RoleAccountManager, CreatedAt: at(t, "2026-11-20 20:00"), DueAt: at(t, "2026-11-21 00:00"), UpdatedAt: at(t, ts),
			Signals: []string{signals.HotlineCalls}, WarningIDs: []string{"w1"}, Score: 34, Summary: "拨打10086次数", Region: "fuzhou-linchuan"}, Cause: cause, UpdatedBy: by, Note: note}
	}
	if err := w.InsertTasks(ctx, []tasks.Row{
		task(1, schemas.TaskOpen, "2026-11-20 20:00", "w1", "", ""),
		task(2, schemas.TaskContacted, "2026-11-20 22:00", "update|T-A|CONTACTED", "am-017", "visited; offered the family plan"),
		task(3, schemas.TaskRetained, "2026-11-21 09:00", "update|T-A|RETAINED", "am-017", "renewed for 24 months"),
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSubscriber360FromClickHouse assembles the 360 view of a subscriber from
// facts in ClickHouse and checks every part of it.
func TestSubscriber360FromClickHouse(t *testing.T) {
	w := workbenchWarehouse(t)
	loadSubscriberFacts(t, w)
	r := ops.NewReader(w.Conn(), w.Database(), shanghai)
	now := at(t, "2026-11-22 12:00")
	s, err := r.Subscriber(context.Background(), subA, now)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Profile
	if p.Name != "李四" || p.Tier != "diamond" || p.AccountManager != "am-017" || p.PhoneManager != "pm-003" || p.Birthday != "1986-03-02" {
		t.Errorf("profile = %+v", p)
	}
	if !slices.Equal(p.Interests, []string{"golf", "fishing"}) || !slices.Equal(p.Products, []string{"family-plan"}) ||
		p.GroupID != "G-1" || p.GroupName != "闽江科技" || p.GroupLevel != "A2" || p.NetworkAgeMonths == nil || *p.NetworkAgeMonths != 173 {
		t.Errorf("profile extensions = interests %q products %q group %s/%s/%s age %v (want the later interests, the rest kept)",
			p.Interests, p.Products, p.GroupID, p.GroupName, p.GroupLevel, p.NetworkAgeMonths)
	}
	if len(s.Tiers) != 1 || s.Tiers[0].Month != "2026-11" || s.Tiers[0].Tier != "diamond" {
		t.Errorf("tier history = %+v", s.Tiers)
	}
	if got := fmt.Sprint(s.Bills); got != "[{2026-08 52000} {2026-09 53000} {2026-10 54000}]" {
		t.Errorf("bills = %s, want August to October (July is more than three months back)", got)
	}
	if len(s.Payments) != 1 || s.Payments[0].AmountFen != 55000 {
		t.Errorf("payments = %+v, want only September's", s.Payments)
	}
	if len(s.Usage) != ops.UsageDays || s.Usage[0].Day != "2026-09-24" || s.Usage[ops.UsageDays-1].Day != "2026-11-22" {
		t.Fatalf("usage: %d days from %v, want 60 days 2026-09-24 to 2026-11-22", len(s.Usage), s.Usage[0])
	}
	var calls uint64
	for _, u := range s.Usage {
		calls += u.Calls
		if u.Day == "2026-11-20" {
			if u.Calls != 3 || u.HotlineCalls != 1 || u.Minutes != 4 || u.OffnetShare != 0.5 {
				t.Errorf("usage 2026-11-20 = %+v, want 3 calls, 1 to the hotline, 4 minutes, off-net share 2/4", u)
			}
		}
	}
	if calls != 3 {
		t.Errorf("%d calls in 60 days, want 3 (the September call is older)", calls)
	}
	if len(s.Warnings) != 2 || s.Warnings[0].Signal != signals.HotlineCalls || s.Warnings[0].Evidence != "calls 3, threshold 3, window_days 7" ||
		s.Warnings[1].Signal != signals.PortOut || s.Warnings[1].SignalZH != "离网预警" {
		t.Errorf("warnings = %+v", s.Warnings)
	}
	if len(s.Tasks) != 1 || len(s.Tasks[0].Versions) != 3 || s.Tasks[0].Status != "RETAINED" {
		t.Fatalf("tasks = %+v", s.Tasks)
	}
	if v := s.Tasks[0].Versions[1]; v.Status != "CONTACTED" || v.UpdatedBy != "am-017" || v.Note != "visited; offered the family plan" {
		t.Errorf("task version 2 = %+v, want the ticketing note", v)
	}
	scored := []signals.Scored{{ID: "w1", Signal: signals.HotlineCalls, Severity: schemas.SeverityMedium, DetectedAt: at(t, "2026-11-20 20:00")},
		{ID: "w2", Signal: signals.PortOut, Severity: schemas.SeverityCritical, DetectedAt: at(t, "2026-11-21 10:00")}}
	if len(s.Score) != 2 || s.Score[0].Score != 34 || s.Score[1].Score != signals.Score(scored[1].DetectedAt.Add(time.Second), scored) ||
		s.ScoreNow != signals.Score(now, scored) || s.ScoreNow <= s.Score[0].Score {
		t.Errorf("score over time = %+v, now %d", s.Score, s.ScoreNow)
	}
	if _, err := r.Subscriber(context.Background(), "13900000000", now); !errors.Is(err, ops.ErrNoSubscriber) {
		t.Errorf("unknown subscriber: %v, want ErrNoSubscriber", err)
	}
}

// workbenchServer serves the dashboard over w with workbenchConfig's users,
// at a fixed now (2026-11-22 12:00); hub may be nil. The server closes with
// the test.
func workbenchServer(t *testing.T, w *warehouse.Warehouse, cfg config.Config, hub *ops.Hub) *httptest.Server {
	t.Helper()
	access, err := ops.NewAccess(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := at(t, "2026-11-22 12:00")
	srv := httptest.NewServer(ops.NewHandler(ops.HandlerConfig{Token: cfg.HTTP.Token, Access: access, Points: cfg.Scorecard, Hub: hub,
		Reader: ops.NewReader(w.Conn(), w.Database(), shanghai), Location: shanghai, Clock: func() time.Time { return now }, Log: zerolog.Nop()}))
	t.Cleanup(srv.Close)
	return srv
}

func workbenchConfig(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Token = "dashboard-token-0123456789"
	cfg.Access.Users = []config.User{
		{Name: "am-017", Role: config.RoleManager, Team: "fz-am", Region: "fuzhou-linchuan"},
		{Name: "am-021", Role: config.RoleManager, Team: "fz-am2", Region: "fuzhou-linchuan"},
		{Name: "sv-001", Role: config.RoleSupervisor, Team: "fz-am", Region: "fuzhou-linchuan"},
	}
	cfg.Access.Tokens = "am-017=am-017-token-0123456789\nam-021=am-021-token-0123456789\nsv-001=sv-001-token-0123456789"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestManagerCannotOpenAnotherManagersSubscriber checks the access rule on
// the page API: 403 with the reason for another manager's subscriber, 200 for
// one's own, a supervisor's team and the dashboard token (an admin's); every
// lookup is in the lookups table.
func TestManagerCannotOpenAnotherManagersSubscriber(t *testing.T) {
	w := workbenchWarehouse(t)
	loadSubscriberFacts(t, w)
	cfg := workbenchConfig(t)
	srv := workbenchServer(t, w, cfg, nil)
	get := func(token, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = fmt.Fprint(&b, readAll(t, resp))
		return resp.StatusCode, b.String()
	}
	tests := []struct {
		name, token, msisdn string
		want                int
		body                string
	}{
		{"own subscriber", "am-017-token-0123456789", subA, http.StatusOK, `"name":"李四"`},
		{"another manager's subscriber", "am-021-token-0123456789", subA, http.StatusForbidden,
			"am-021 is a manager and sees only their own subscribers: this subscriber's account manager is am-017 and phone manager is pm-003"},
		{"the other way round", "am-017-token-0123456789", subB, http.StatusForbidden, "sees only their own subscribers"},
		{"supervisor of the team", "sv-001-token-0123456789", subA, http.StatusOK, `"account_manager":"am-017"`},
		{"supervisor of another team", "sv-001-token-0123456789", subB, http.StatusForbidden, "supervises team fz-am"},
		{"dashboard token is an admin's", cfg.HTTP.Token, subB, http.StatusOK, `"account_manager":"am-021"`},
		{"unknown number", cfg.HTTP.Token, "13900000000", http.StatusNotFound, "no such subscriber"},
		{"not a number", cfg.HTTP.Token, "12345", http.StatusBadRequest, "not an 11-digit"},
		{"no token", "", subA, http.StatusUnauthorized, "unauthorized"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(tt.token, "/api/subscriber?msisdn="+tt.msisdn)
			if code != tt.want || !strings.Contains(body, tt.body) {
				t.Errorf("GET /api/subscriber as %s: %d %s, want %d with %q", tt.name, code, body, tt.want, tt.body)
			}
		})
	}
	var allowed, refused uint64
	if err := w.Conn().QueryRow(context.Background(), fmt.Sprintf(
		"SELECT countIf(allowed = 1), countIf(allowed = 0 AND user = 'am-021' AND msisdn = '%s' AND via = 'web' AND role = 'manager') FROM %s.lookups",
		subA, w.Database())).Scan(&allowed, &refused); err != nil {
		t.Fatal(err)
	}
	if allowed != 3 || refused != 1 {
		t.Errorf("lookups: %d allowed, %d refused by am-021 of %s; want 3 and 1", allowed, refused, subA)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// TestScorecardPoints computes the October scorecard from a known month of
// task versions and checks the counts, the median response time, the points
// of the default and of a custom scheme, and the ranks within region and team.
func TestScorecardPoints(t *testing.T) {
	w := workbenchWarehouse(t)
	type step struct {
		status   schemas.TaskStatus
		at       string
		assignee string
		role     string
		esc      bool
	}
	var rows []tasks.Row
	task := func(id, tier, created, due string, steps ...step) {
		for i, s := range steps {
			rows = append(rows, tasks.Row{Task: schemas.Task{TaskID: id, Version: uint32(i + 1), MSISDN: subA, Tier: schemas.Tier(tier),
				Region: "fuzhou-linchuan", Status: s.status, Assignee: s.assignee, AssigneeRole: s.role, CreatedAt: at(t, created),
				DueAt: at(t, due), UpdatedAt: at(t, s.at)}, Cause: fmt.Sprintf("c%d", i), Escalated: s.esc})
		}
	}
	am, pm := tasks.RoleAccountManager, tasks.RolePhoneManager
	sup := tasks.RoleSupervisor
	// am-017: contacted in time and retained (diamond): +2 +5; escalated, then
	// contacted by am-017 after 30 h: -3; contacted late (26 h) and lost: 0.
	task("a", "diamond", "2026-10-05 10:00", "2026-10-05 14:00",
		step{schemas.TaskOpen, "2026-10-05 10:00", "am-017", am, false},
		step{schemas.TaskContacted, "2026-10-05 12:00", "am-017", am, false},
		step{schemas.TaskRetained, "2026-10-06 12:00", "am-017", am, false})
	task("b", "gold", "2026-10-06 00:00", "2026-10-07 00:00",
		step{schemas.TaskOpen, "2026-10-06 00:00", "am-017", am, false},
		step{schemas.TaskEscalated, "2026-10-07 00:01", "supervisor-001", sup, true},
		step{schemas.TaskContacted, "2026-10-07 06:00", "supervisor-001", sup, true})
	task("c", "gold", "2026-10-10 08:00", "2026-10-11 08:00",
		step{schemas.TaskOpen, "2026-10-10 08:00", "am-017", am, false},
		step{schemas.TaskContacted, "2026-10-11 10:00", "am-017", am, false},
		step{schemas.TaskLost, "2026-10-12 10:00", "am-017", am, false})
	// am-021: contacted in time and retained (gold): +2 +5.
	task("d", "gold", "2026-10-20 08:00", "2026-10-21 08:00",
		step{schemas.TaskOpen, "2026-10-20 08:00", "am-021", am, false},
		step{schemas.TaskContacted, "2026-10-20 09:00", "am-021", am, false},
		step{schemas.TaskRetained, "2026-10-22 09:00", "am-021", am, false})
	// pm-003: contacted in time (silver), still open: +2.
	task("e", "silver", "2026-10-31 23:00", "2026-11-02 23:00",
		step{schemas.TaskOpen, "2026-10-31 23:00", "pm-003", pm, false},
		step{schemas.TaskContacted, "2026-11-01 01:00", "pm-003", pm, false})
	// November: not in October's scorecard.
	task("f", "gold", "2026-11-01 00:30", "2026-11-02 00:30",
		step{schemas.TaskOpen, "2026-11-01 00:30", "am-017", am, false})
	if err := w.InsertTasks(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	r := ops.NewReader(w.Conn(), w.Database(), shanghai)
	access, err := ops.NewAccess(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.Scorecard(context.Background(), at(t, "2026-10-15 00:00"), config.DefaultScorecard(), access, nil)
	if err != nil {
		t.Fatal(err)
	}
	line := func(s ops.ScoreRow) string {
		median := "-"
		if s.MedianResponseSeconds != nil {
			median = fmt.Sprint(*s.MedianResponseSeconds / 3600)
		}
		return fmt.Sprintf("%s %s %s #%d %s: %d pts, recv %d, in time %d, esc %d, ret %d (hv %d), lost %d, median %sh",
			s.Month, s.Region, s.Team, s.Rank, s.Manager, s.Points, s.Received, s.ContactedInTime, s.Escalated, s.Retained,
			s.RetainedHigh, s.Lost, median)
	}
	want := []string{
		"2026-10 fuzhou-linchuan account managers #1 am-021: 7 pts, recv 1, in time 1, esc 0, ret 1 (hv 1), lost 0, median 1h",
		"2026-10 fuzhou-linchuan account managers #2 am-017: 4 pts, recv 3, in time 1, esc 1, ret 1 (hv 1), lost 1, median 26h",
		"2026-10 fuzhou-linchuan phone managers #1 pm-003: 2 pts, recv 1, in time 1, esc 0, ret 0 (hv 0), lost 0, median 2h",
	}
	var lines []string
	for _, s := range got {
		lines = append(lines, line(s))
	}
	if !slices.Equal(lines, want) {
		t.Errorf("October scorecard:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Another scheme: 1 per contact in time, 10 per retained high-value, -5 per escalation.
	custom := config.Scorecard{ContactedInTime: 1, RetainedHighValue: 10, Escalation: -5}
	got, err = r.Scorecard(context.Background(), at(t, "2026-10-01 00:00"), custom, access, []string{"am-017"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Manager != "am-017" || got[0].Points != 1+10-5 || got[0].Rank != 2 {
		t.Errorf("am-017 with scheme %+v: %+v, want 6 points, rank 2, and only their row", custom, got)
	}
}
