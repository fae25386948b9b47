package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/signals"
)

func TestRulesCommand(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "churnwatch.yaml")
	yaml := "timezone: Asia/Urumqi\nrules:\n  offnet_share_rise:\n    min_share: 0.35\n  birthday:\n    days_ahead: 7\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	out, code := runCmd(t, nil, "rules", "--config", cfgFile)
	if code != 0 {
		t.Fatalf("rules: exit %d\n%s", code, out)
	}
	for _, info := range signals.Catalogue() {
		if !strings.Contains(out, info.Code+"  "+info.NameZH+" ("+info.NameEN+")") {
			t.Errorf("rules output lacks %s with its names:\n%s", info.Code, out)
		}
	}
	for _, want := range []string{
		"time zone Asia/Urumqi",
		"rules.offnet_share_rise: min_share=0.35 min_ratio=1.5 recent_days=7 baseline_days=28",
		"off-net share of MO minutes over the last 7 days ≥ 35% and ≥ 1.5 × the share over the 28 days before",
		"rules.birthday: days_ahead=7",
		"rules.usage_drop_daily: max_ratio=0.5 recent_days=7 baseline_days=28 min_baseline_minutes_per_day=10",
		"≥ 3 MO calls to 10086 within 7 days; high at ≥ 5",
		"daily, severity info",
		"real time, severity critical",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rules output lacks %q:\n%s", want, out)
		}
	}

	out, code = runCmd(t, nil, "rules", "--json", "--config", cfgFile)
	if code != 0 {
		t.Fatalf("rules --json: exit %d\n%s", code, out)
	}
	var view struct {
		Timezone string `json:"timezone"`
		Signals  []struct {
			Code       string         `json:"code"`
			NameZH     string         `json:"name_zh"`
			NameEN     string         `json:"name_en"`
			Kind       string         `json:"kind"`
			Severity   string         `json:"severity"`
			FiresWhen  string         `json:"fires_when"`
			Config     string         `json:"config"`
			Thresholds map[string]any `json:"thresholds"`
		} `json:"signals"`
	}
	if err := json.Unmarshal([]byte(out), &view); err != nil {
		t.Fatalf("rules --json is not JSON: %v\n%s", err, out)
	}
	if len(view.Signals) != len(signals.Catalogue()) || view.Timezone != "Asia/Urumqi" {
		t.Fatalf("rules --json: %d signals, time zone %q", len(view.Signals), view.Timezone)
	}
	daily := 0
	for i, s := range view.Signals {
		info := signals.Catalogue()[i]
		if s.Code != info.Code || s.NameZH != info.NameZH || s.NameEN != info.NameEN || s.Kind != string(info.Kind) || s.FiresWhen == "" {
			t.Errorf("signal %d: %+v, want %+v", i, s, info)
		}
		if s.Kind == string(signals.Daily) {
			daily++
			if s.Config != "rules."+s.Code || len(s.Thresholds) == 0 {
				t.Errorf("daily signal %s shows no thresholds: %+v", s.Code, s)
			}
		}
		switch s.Code {
		case signals.OffnetShareRise:
			if s.Thresholds["min_share"] != 0.35 || s.Thresholds["min_ratio"] != 1.5 || s.Thresholds["baseline_days"] != 28.0 {
				t.Errorf("offnet_share_rise thresholds %v", s.Thresholds)
			}
		case signals.Birthday:
			if s.Thresholds["days_ahead"] != 7.0 || s.Severity != "info" {
				t.Errorf("birthday %+v", s)
			}
		case signals.PaymentFreqDrop:
			if s.Thresholds["min_baseline_payments"] != 2.0 || s.Severity != "low" {
				t.Errorf("payment_freq_drop %+v", s)
			}
		}
	}
	if daily != 7 {
		t.Errorf("%d daily signals, want 7", daily)
	}
}

// TestRulesVersion checks that `churnwatch rules` prints the version every
// warning records, from a rules file as from the defaults.
func TestRulesVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(path, []byte("silent_yesterday: {min_avg_calls: 5}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tuned, err := config.LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	out, code := runCmd(t, []string{"CHURNWATCH_RULES_FILE=" + path}, "rules")
	if want := "rule version " + tuned.Version() + " (from rules file " + path + ")"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("rules with a rules file: exit %d, want %q in:\n%s", code, want, out)
	}
	out, code = runCmd(t, []string{"CHURNWATCH_RULES_FILE=" + path}, "rules", "--json")
	if code != 0 || !strings.Contains(out, `"rule_version": "`+tuned.Version()+`"`) {
		t.Errorf("rules --json: exit %d, want rule_version %s in:\n%s", code, tuned.Version(), out)
	}
	out, code = runCmd(t, []string{"CHURNWATCH_RULES_FILE="}, "rules")
	if def := config.Default().Rules.Version(); code != 0 || !strings.Contains(out, "rule version "+def) || def == tuned.Version() {
		t.Errorf("rules with the defaults: exit %d, want version %s (not %s) in:\n%s", code, def, tuned.Version(), out)
	}
}
