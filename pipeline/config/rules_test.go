package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRuleVersion(t *testing.T) {
	def := Default().Rules
	if v := def.Version(); len(v) != 12 || strings.Trim(v, "0123456789abcdef") != "" {
		t.Fatalf("version %q: want 12 hex digits", v)
	}
	same := []struct{ name, body string }{
		{"empty file", ""},
		{"defaults spelled out, other order, comments", `
# the SPEC defaults
competitor_hotlines: ["10099", "10000", "10010", "10010"]
hotline_calls: {window_days: 7, high_calls: 5, calls: 3}
lateness: 48h
home_network: CMCC
`},
	}
	for _, tc := range same {
		r, err := LoadRules(writeFile(t, "rules.yaml", tc.body))
		if err != nil {
			t.Fatal(err)
		}
		if r.Version() != def.Version() {
			t.Errorf("%s: version %s, want the defaults' %s", tc.name, r.Version(), def.Version())
		}
	}
	differ := []string{
		"hotline_calls: {calls: 4}\n",
		"silent_yesterday: {min_avg_calls: 3.5}\n",
		"lateness: 47h\n",
		"hotline_numbers: [\"10086\", \"1008611\"]\n",
		"network_prefixes: {CMCC: [\"139\"]}\n",
	}
	seen := map[string]string{def.Version(): "defaults"}
	for _, body := range differ {
		r, err := LoadRules(writeFile(t, "rules.yaml", body))
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[r.Version()]; ok {
			t.Errorf("%q has version %s, like %s", body, r.Version(), prev)
		}
		seen[r.Version()] = body
	}
}

func TestLoadRulesRefuses(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"bad threshold", "usage_drop_daily: {max_ratio: 1.5}\n", "rules.usage_drop_daily.max_ratio must be in (0, 1], got 1.5"},
		{"unknown key", "silent_yesterday: {min_avg_call: 3}\n", "field min_avg_call not found"},
		{"unknown network", "home_network: XYZ\n", `rules.home_network "XYZ"`},
		{"not YAML", "hotline_calls: [\n", "rules file "},
		{"wrong type", "hotline_calls: {calls: many}\n", "cannot unmarshal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "rules.yaml", tc.body)
			_, err := LoadRules(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadRules(%q) = %v, want an error naming the file and saying %q", tc.body, err, tc.want)
			}
		})
	}
	if _, err := LoadRules(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "read rules file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestRulesFileInConfig(t *testing.T) {
	rules := writeFile(t, "rules.yaml", "hotline_calls: {calls: 4}\n")
	cfg, err := Load("", env(map[string]string{envRulesFile: rules}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RulesFile != rules || cfg.Rules.HotlineCalls.Calls != 4 || cfg.Rules.HotlineCalls.HighCalls != 5 {
		t.Errorf("rules from %s: file %q, hotline_calls %+v", envRulesFile, cfg.RulesFile, cfg.Rules.HotlineCalls)
	}
	both := writeFile(t, "churnwatch.yaml", "rules_file: "+rules+"\nrules:\n  hotline_calls: {calls: 2}\n")
	if _, err := Load(both, env(nil)); err == nil || !strings.Contains(err.Error(), "sets both rules: and rules_file") {
		t.Errorf("rules: and rules_file together: %v", err)
	}
	bad := writeFile(t, "bad.yaml", "hotline_calls: {calls: 0}\n")
	if _, err := Load("", env(map[string]string{envRulesFile: bad})); err == nil || !strings.Contains(err.Error(), "hotline_calls.calls must be positive") {
		t.Errorf("invalid rules file at start: %v", err)
	}
}

func TestReloadableFrom(t *testing.T) {
	old := Default().Rules
	next := old
	next.Thresholds.HotlineCalls.Calls = 2
	next.CompetitorHotlines = []string{"10099", "10010", "10000"} // the same set
	if err := next.ReloadableFrom(old); err != nil {
		t.Errorf("thresholds only: %v", err)
	}
	for name, change := range map[string]func(r *Rules){
		"hotline_numbers":     func(r *Rules) { r.HotlineNumbers = []string{"10086", "1008611"} },
		"competitor_hotlines": func(r *Rules) { r.CompetitorHotlines = []string{"10010"} },
		"home_network":        func(r *Rules) { r.HomeNetwork = "CUCC" },
		"network_prefixes":    func(r *Rules) { r.NetworkPrefixes = map[string][]string{"CMCC": {"139"}} },
	} {
		r := old
		change(&r)
		if err := r.ReloadableFrom(old); err == nil || !strings.Contains(err.Error(), "rules."+name+" changed") || !strings.Contains(err.Error(), "restart") {
			t.Errorf("%s changed: %v, want a refusal that says to restart", name, err)
		}
	}
}
