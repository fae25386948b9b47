package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/tasks"
)

// TestScorecardCommand prints October's scorecard on the command line: every
// manager for the operator (no access token), only their own row for a
// manager, their team's for a supervisor, CSV with --csv; a malformed month
// and an unknown token are usage errors.
func TestScorecardCommand(t *testing.T) {
	wh, env := seededWarehouse(t)
	due := time.Date(2026, 10, 10, 12, 0, 0, 0, shanghaiLoc(t))
	// am-017: contacted in time, retained (gold): +2 +5. am-021: still open: 0.
	if err := wh.InsertTasks(context.Background(), []tasks.Row{
		taskRow("T-1", 1, "13900000901", "OPEN", "am-017", due),
		taskRow("T-1", 2, "13900000901", "CONTACTED", "am-017", due),
		taskRow("T-1", 3, "13900000901", "RETAINED", "am-017", due),
		taskRow("T-2", 1, "13900000902", "OPEN", "am-021", due),
		taskRow("T-3", 1, "13900000903", "OPEN", "am-017", due.AddDate(0, 1, 0)), // November's
	}); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte("access:\n  users:\n    - {name: am-017, role: manager, team: fz}\n"+
		"    - {name: am-021, role: manager, team: fz2}\n    - {name: sv-001, role: supervisor, team: fz}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "CHURNWATCH_CONFIG="+cfgFile,
		"CHURNWATCH_ACCESS_TOKENS=am-017=am-017-cli-token-0123,am-021=am-021-cli-token-0123,sv-001=sv-001-cli-token-0123")
	managers := func(out string) string {
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[3], "am-") {
				got = append(got, f[3]+":"+f[4])
			}
		}
		return strings.Join(got, ",")
	}
	for _, tt := range []struct{ who, token, want string }{
		{"operator", "", "am-017:7,am-021:0"},
		{"am-017", "am-017-cli-token-0123", "am-017:7"},
		{"am-021", "am-021-cli-token-0123", "am-021:0"},
		{"supervisor of fz", "sv-001-cli-token-0123", "am-017:7"},
	} {
		e := env
		if tt.token != "" {
			e = append(e, "CHURNWATCH_ACCESS_TOKEN="+tt.token)
		}
		out, code := runCmd(t, e, "scorecard", "--month", "2026-10")
		if code != 0 || managers(out) != tt.want || !strings.Contains(out, "manager scorecard 2026-10") {
			t.Errorf("churnwatch scorecard as %s: exit %d, managers:points %q, want %q:\n%s", tt.who, code, managers(out), tt.want, out)
		}
	}
	out, code := runCmd(t, env, "scorecard", "--month", "2026-10", "--csv")
	if code != 0 || !strings.HasPrefix(out, "\ufeffmonth,region,team,rank,manager,points,") ||
		!strings.Contains(out, "\n2026-10,fuzhou-linchuan,fz,1,am-017,7,1,1,0,1,1,0,") || !strings.Contains(out, "\n2026-10,fuzhou-linchuan,fz2,1,am-021,0,1,0,0,0,0,0,") {
		t.Errorf("churnwatch scorecard --csv: exit %d\n%s", code, out)
	}
	if out, code := runCmd(t, env, "scorecard", "--month", "10/2026"); code != exitUsage || !strings.Contains(out, "want YYYY-MM") {
		t.Errorf("bad month: exit %d\n%s", code, out)
	}
	if out, code := runCmd(t, append(env, "CHURNWATCH_ACCESS_TOKEN=wrong-token-0123456789"), "scorecard"); code != exitUsage ||
		!strings.Contains(out, "CHURNWATCH_ACCESS_TOKEN names no user") {
		t.Errorf("unknown token: exit %d\n%s", code, out)
	}
}
