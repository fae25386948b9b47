package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"churnwatch/pipeline/config"
)

func TestBacktestFlags(t *testing.T) {
	cfg := config.Default()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		f    backtestFlags
		want string
	}{
		{"no from", backtestFlags{to: "2026-11-01"}, "--from is required"},
		{"bad day", backtestFlags{from: "2026-11-xx", to: "2026-11-01"}, `--from "2026-11-xx": want a day like 2026-11-22`},
		{"inverted", backtestFlags{from: "2026-11-10", to: "2026-11-01"}, "--to 2026-11-01 is before --from 2026-11-10"},
		{"not over", backtestFlags{from: "2026-11-01", to: "2026-11-23"}, "that day is not over yet"},
		{"too many", backtestFlags{from: "2026-11-01", to: "2026-11-02", rules: ruleFiles{"a", "b", "c", "d", "e"}}, "at most 4"},
		{"fine", backtestFlags{from: "2026-11-01", to: "2026-11-22"}, ""},
	} {
		_, problem := backtestConfig(tc.f, cfg, now)
		if (tc.want == "") != (problem == "") || !strings.Contains(problem, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, problem, tc.want)
		}
	}
}

// TestBacktestInvalidRulesFile checks the command refuses a rules file that
// does not validate, before touching ClickHouse, and says why.
func TestBacktestInvalidRulesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("silent_yesterday: {min_avg_calls: -1}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runCmd(t, []string{"CHURNWATCH_CLICKHOUSE_ADDR=127.0.0.1:1"}, "backtest", "--rules", path, "--from", "2026-01-01", "--to", "2026-01-02")
	if code != exitError || !strings.Contains(out, "rules.silent_yesterday.min_avg_calls must be positive") || !strings.Contains(out, path) {
		t.Errorf("exit %d, want %d and the reason:\n%s", code, exitError, out)
	}
}
