package main

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestReport builds the anomaly report of one manager and one local day,
// as CSV and as a printable page: the manager's subscribers with warnings
// that day (and no one else's, and no other day's), the evidence, and the
// open tasks.
func TestReport(t *testing.T) {
	wh, env := seededWarehouse(t)
	ctx := context.Background()
	cst := time.FixedZone("CST", 8*3600)
	day := func(h, m int) time.Time { return time.Date(2026, 11, 22, h, m, 0, 0, cst) }

	var crm []warehouse.CRMRow
	for i, p := range []string{
		`{"event_id":"rp-1","msisdn":"13900000701","type":"PROFILE","ts":"2026-11-01T08:00:00+08:00","profile":{"name":"张三","tier":"gold","region":"fuzhou-linchuan","account_manager":"am-017","phone_manager":"pm-003"}}`,
		`{"event_id":"rp-2","msisdn":"13900000702","type":"PROFILE","ts":"2026-11-01T08:00:00+08:00","profile":{"name":"李四","tier":"silver","region":"fuzhou-linchuan","account_manager":"am-021","phone_manager":"am-017"}}`,
		`{"event_id":"rp-3","msisdn":"13900000703","type":"PROFILE","ts":"2026-11-01T08:00:00+08:00","profile":{"name":"王五","tier":"gold","region":"fuzhou-nancheng","account_manager":"am-021"}}`,
	} {
		e, err := schemas.DecodeCRM([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		crm = append(crm, warehouse.CRMRow{CRMEvent: e, ProfileJSON: "{}", Day: warehouse.LocalDay(e.TS, cst),
			Provenance: warehouse.Provenance{Offset: int64(i)}})
	}
	if err := wh.InsertCRM(ctx, crm); err != nil {
		t.Fatal(err)
	}
	if err := wh.RefreshSubscribers(ctx, []string{"13900000701", "13900000702", "13900000703"},
		warehouse.TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}); err != nil {
		t.Fatal(err)
	}
	warning := func(id, msisdn, signal, severity string, at time.Time, score int, evidence map[string]any) warehouse.WarningRow {
		return warehouse.WarningRow{Warning: schemas.Warning{WarningID: id, MSISDN: msisdn, Signal: signal, Severity: schemas.Severity(severity),
			Tier: "gold", DetectedAt: at, WindowStart: at.Add(-7 * 24 * time.Hour), WindowEnd: at, Evidence: evidence, Score: score},
			Source: warehouse.SourceRealtime, Provenance: warehouse.Provenance{Partition: 0}}
	}
	err := wh.InsertWarnings(ctx, []warehouse.WarningRow{
		warning("r-1", "13900000701", "hotline_calls", "medium", day(9, 0), 34, map[string]any{"calls": 3, "threshold": 3, "window_days": 7}),
		warning("r-2", "13900000701", "forward_offnet", "high", day(23, 30), 61, map[string]any{"forward_to_network": "CUCC"}),
		warning("r-3", "13900000702", "suspension_imminent", "high", day(0, 10), 49, map[string]any{"balance_fen": 300}),
		warning("r-4", "13900000702", "birthday", "info", day(24, 10), 5, map[string]any{"birthday": "1985-11-25"}),      // the next day
		warning("r-5", "13900000703", "port_out", "critical", day(12, 0), 63, map[string]any{"event": "PORT_OUT_QUERY"}), // am-021's
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.InsertTasks(ctx, []tasks.Row{
		taskRow("task-701", 1, "13900000701", "OPEN", "am-017", day(33, 0)),
		taskRow("task-701", 2, "13900000701", "ACCEPTED", "am-017", day(33, 0)),
		taskRow("task-old", 1, "13900000701", "OPEN", "am-017", day(1, 0)),
		taskRow("task-old", 2, "13900000701", "CLOSED", "am-017", day(1, 0)),
	}); err != nil {
		t.Fatal(err)
	}

	out, code := runCmd(t, env, "report", "--manager", "am-017", "--date", "2026-11-22", "--format", "csv")
	if code != exitOK {
		t.Fatalf("report csv: exit %d:\n%s", code, out)
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "\ufeff"))).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, out)
	}
	var got []string
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		got = append(got, strings.Join([]string{r[col["msisdn"]], r[col["name"]], r[col["signal_zh"]], r[col["severity"]], r[col["detected_at"]],
			r[col["score"]], r[col["evidence"]], r[col["task_id"]], r[col["task_status"]]}, "|"))
	}
	want := []string{
		"13900000701|张三|拨打10086次数|medium|2026-11-22 09:00|34|calls 3, threshold 3, window_days 7|task-701|ACCEPTED",
		"13900000701|张三|呼转外网|high|2026-11-22 23:30|61|forward_to_network CUCC|task-701|ACCEPTED",
		"13900000702|李四|即将停机|high|2026-11-22 00:10|49|balance_fen 300||",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("report rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	page := filepath.Join(t.TempDir(), "report.html")
	out, code = runCmd(t, env, "report", "--manager", "am-017", "--date", "2026-11-22", "--format", "html", "--out", page)
	if code != exitOK || !strings.Contains(out, "2 subscribers with warnings, written to "+page) {
		t.Fatalf("report html: exit %d:\n%s", code, out)
	}
	html, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"客户异常情况表", "am-017", "2026-11-22", "13900000701", "张三", "13900000702", "拨打10086次数",
		"calls 3, threshold 3, window_days 7", "task-701", "ACCEPTED", "流失评分"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	for _, absent := range []string{"13900000703", "生日关怀", "task-old"} {
		if strings.Contains(string(html), absent) {
			t.Errorf("report page shows %q, which is not am-017's on that day or not open", absent)
		}
	}

	for _, tt := range []struct{ args []string }{
		{[]string{"report"}},
		{[]string{"report", "--manager", "am-017", "--format", "pdf"}},
		{[]string{"report", "--manager", "am-017", "--date", "22/11/2026"}},
	} {
		if out, code := runCmd(t, env, tt.args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d:\n%s", tt.args, code, exitUsage, out)
		}
	}
	if out, code := runCmd(t, env, "report", "--manager", "am-999", "--date", "2026-11-22"); code != exitOK || strings.Count(out, "\n") != 1 {
		t.Errorf("report of a manager without warnings: exit %d, want the header alone:\n%s", code, out)
	}
}
