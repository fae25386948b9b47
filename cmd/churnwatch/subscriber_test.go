package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestSubscriberCommand looks a subscriber up on the command line: the
// operator (no access token) and the subscriber's own manager see the 360
// view with the visit note; another manager is refused with the reason and
// exit code 3; every lookup is in the lookups table.
func TestSubscriberCommand(t *testing.T) {
	wh, env := seededWarehouse(t)
	ctx := context.Background()
	var crm []warehouse.CRMRow
	for _, p := range []string{
		`{"event_id":"s-1","msisdn":"13900000801","type":"PROFILE","ts":"2026-11-01T08:00:00+08:00","profile":{"name":"张三","tier":"gold","region":"fuzhou-linchuan","account_manager":"am-017","phone_manager":"pm-003","group":{"id":"G-9","name":"闽江科技","level":"B1"},"interests":["tea"],"network_age_months":96}}`,
	} {
		e, err := schemas.DecodeCRM([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		crm = append(crm, warehouse.CRMRow{CRMEvent: e, ProfileJSON: "{}", Day: warehouse.LocalDay(e.TS, shanghaiLoc(t))})
	}
	if err := wh.InsertCRM(ctx, crm); err != nil {
		t.Fatal(err)
	}
	if err := wh.RefreshSubscribers(ctx, []string{"13900000801"}, warehouse.TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}); err != nil {
		t.Fatal(err)
	}
	due := crm[0].TS.Add(48 * time.Hour)
	v1 := taskRow("T-801", 1, "13900000801", "OPEN", "am-017", due)
	v2 := taskRow("T-801", 2, "13900000801", "CONTACTED", "am-017", due)
	v2.UpdatedBy, v2.Note = "am-017", "visited at the office; offered a family plan"
	if err := wh.InsertTasks(ctx, []tasks.Row{v1, v2}); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("access:\n  users:\n    - {name: am-017, role: manager, team: fz}\n    - {name: am-021, role: manager, team: fz2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "CHURNWATCH_CONFIG="+cfgFile, "CHURNWATCH_ACCESS_TOKENS=am-017=am-017-cli-token-0123,am-021=am-021-cli-token-0123")

	out, code := runCmd(t, env, "subscriber", "13900000801")
	for _, want := range []string{"张三", "gold", "am-017", "闽江科技 G-9 level B1", "tea", "96 months", "T-801",
		`am-017: "visited at the office; offered a family plan"`} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("churnwatch subscriber (operator): exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	out, code = runCmd(t, append(env, "CHURNWATCH_ACCESS_TOKEN=am-017-cli-token-0123"), "subscriber", "--json", "13900000801")
	if code != 0 || !strings.Contains(out, `"group_level": "B1"`) {
		t.Errorf("own manager: exit %d\n%s", code, out)
	}
	out, code = runCmd(t, append(env, "CHURNWATCH_ACCESS_TOKEN=am-021-cli-token-0123"), "subscriber", "13900000801")
	if code != exitForbidden || !strings.Contains(out, "forbidden: am-021 is a manager and sees only their own subscribers") ||
		strings.Contains(out, "张三") {
		t.Errorf("another manager: exit %d, want %d and the reason, no data:\n%s", code, exitForbidden, out)
	}
	if strings.Contains(out, "13900000801") && !strings.Contains(out, "139****0801") {
		t.Logf("output: %s", out)
	}
	out, code = runCmd(t, append(env, "CHURNWATCH_ACCESS_TOKEN=wrong-token-0123456789"), "subscriber", "13900000801")
	if code != exitUsage || !strings.Contains(out, "CHURNWATCH_ACCESS_TOKEN names no user") {
		t.Errorf("unknown token: exit %d\n%s", code, out)
	}
	var n, refused uint64
	if err := wh.Conn().QueryRow(ctx, "SELECT count(), countIf(allowed = 0 AND user = 'am-021' AND via = 'cli') FROM "+wh.Database()+".lookups").
		Scan(&n, &refused); err != nil || n != 3 || refused != 1 {
		t.Errorf("lookups: %d, %d refused (%v); want 3 and 1", n, refused, err)
	}
}

func shanghaiLoc(t *testing.T) *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
