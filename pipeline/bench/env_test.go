package bench

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestRevisionOf: a run records the commit its binary was built from, marked
// when the work tree had changes, and nothing when the build recorded none.
func TestRevisionOf(t *testing.T) {
	const rev = "2710810d1c5f3f4f6f3a4f0e2a2b9f8c7d6e5f4a"
	for _, tc := range []struct {
		name     string
		settings []debug.BuildSetting
		want     string
	}{
		{"clean", []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}, rev},
		{"modified", []debug.BuildSetting{{Key: "vcs.modified", Value: "true"}, {Key: "vcs.revision", Value: rev}}, rev + "+modified"},
		{"no vcs", []debug.BuildSetting{{Key: "GOOS", Value: "linux"}}, ""},
	} {
		if got := revisionOf(tc.settings); got != tc.want {
			t.Errorf("%s: revision %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestMedians: the throughput figures are the medians of the rounds, each
// ratio from one round's own pair; a round without the engine counts in the
// pipeline's median only.
func TestMedians(t *testing.T) {
	const events = 1_000_000
	rounds := []round{
		{engine: engineRun{rows: 500_000, elapsed: 5 * time.Second}, pipeline: 4 * time.Second},  // 100,000 rows/s; 250,000 events/s; 2.5x
		{engine: engineRun{rows: 500_000, elapsed: 4 * time.Second}, pipeline: 2 * time.Second},  // 125,000; 500,000; 4x
		{engine: engineRun{rows: 500_000, elapsed: 10 * time.Second}, pipeline: 5 * time.Second}, // 50,000; 200,000; 4x
		{pipeline: 10 * time.Second}, // no engine: 100,000 events/s
	}
	var out strings.Builder
	rec := &recorder{res: &Result{}, out: &out}
	medians(rec, rounds, events)
	got := map[string]float64{}
	for _, f := range rec.res.Figures {
		got[f.Name] = f.Value
	}
	want := map[string]float64{
		"clickhouse_kafka_engine_throughput": 100_000,
		"pipeline_throughput":                225_000, // of 250,000, 500,000, 200,000, 100,000
		"pipeline_vs_kafka_engine":           4,
	}
	for name, w := range want {
		if g := got[name]; math.Abs(g-w) > 1e-6*w {
			t.Errorf("%s = %v, want %v", name, g, w)
		}
	}
	if !strings.Contains(out.String(), "median of 3 rounds: 2.500, 4.000, 4.000") {
		t.Errorf("the ratio's note does not list the rounds:\n%s", out.String())
	}
}

// TestRoundNote: a round's note gives both sides' CPU per event and the
// steal where they were measured, and leaves out what was not.
func TestRoundNote(t *testing.T) {
	r := round{
		engine: engineRun{rows: 1_000_000, elapsed: 10 * time.Second, first: 4200 * time.Millisecond,
			use: phaseUse{self: Usage{User: time.Second}, ch: Usage{User: 8 * time.Second, System: time.Second}, chKnown: true}},
		pipeline: 4 * time.Second,
		pipeUse: phaseUse{self: Usage{User: 5 * time.Second, System: 500 * time.Millisecond}, ch: Usage{User: 3 * time.Second},
			chKnown: true, steal: 0.125, stealKnown: true},
	}
	var out strings.Builder
	rec := &recorder{res: &Result{}, out: &out}
	r.print(rec, 1, 2_000_000)
	for _, want := range []string{
		"pipeline 500000 events/s (2000000 events in 4.00 s; CPU 2.75 us/event in this process, 1.50 in ClickHouse, 12.5% of the machine's stolen)",
		"Kafka engine 100000 rows/s (1000000 CDRs in 10.00 s, the first after 4.2 s; CPU 1.00 us/row in this process, 9.00 in ClickHouse)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the round's note lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	round{pipeline: 4 * time.Second}.print(rec, 2, 2_000_000)
	if got := out.String(); !strings.Contains(got, "(2000000 events in 4.00 s)") || strings.Contains(got, "CPU") {
		t.Errorf("a round without measured CPU: %q", got)
	}
}

// TestMachineBusyCores: the CPU the machine used at the start decides the
// warning where it is known, whatever the load average (which lags: a run
// right after another has its predecessor's).
func TestMachineBusyCores(t *testing.T) {
	for _, tc := range []struct {
		busy, load string
		warn       bool
	}{{"1.20", "0.10", true}, {"1.00", "0.10", true}, {"0.30", "4.72", false}, {"0.99", "", false}} {
		w := Machine{BusyCores: tc.busy, Load: tc.load, Cores: 2}.Busy()
		if (w != "") != tc.warn {
			t.Errorf("%s cores busy, load %q: warning %q, want one: %v", tc.busy, tc.load, w, tc.warn)
		}
		if w != "" && !strings.Contains(w, tc.busy+" of the 2 cores") {
			t.Errorf("%s cores busy: the warning does not say it: %q", tc.busy, w)
		}
	}
}

// TestParseCPUTimes: the busy ticks of /proc/stat's cpu line leave out idle
// and iowait, the stolen ones are its eighth figure; a line that is not the
// cpu line, or is short, is refused.
func TestParseCPUTimes(t *testing.T) {
	got, ok := parseCPUTimes("cpu  100 5 50 1000 20 1 2 3 0 0")
	if want := (cpuTimes{busy: 161, total: 1181, steal: 3}); !ok || got != want {
		t.Errorf("parseCPUTimes = %+v, %v; want %+v", got, ok, want)
	}
	for _, line := range []string{"cpu0 100 5 50 1000 20 1 2 3 0 0", "cpu  100 5 50", "intr 1 2 3 4 5 6 7 8 9", ""} {
		if _, ok := parseCPUTimes(line); ok {
			t.Errorf("parseCPUTimes(%q) accepted it", line)
		}
	}
	// On this machine the sample reads /proc/stat and gives a share of the cores.
	var v float64
	if s := busyCores(100*time.Millisecond, runtime.NumCPU()); s == "" {
		t.Error("busyCores could not read /proc/stat")
	} else if _, err := fmt.Sscanf(s, "%g", &v); err != nil || v < 0 || v > float64(runtime.NumCPU())+0.01 {
		t.Errorf("busyCores = %q, want 0 to %d", s, runtime.NumCPU())
	}
}

// TestMachineBusy: a run warns when the load at its start is half the cores
// or more, and not otherwise or when the load is unknown.
func TestMachineBusy(t *testing.T) {
	for _, tc := range []struct {
		load  string
		cores int
		warn  bool
	}{{"4.72", 2, true}, {"1.00", 2, true}, {"0.88", 2, false}, {"1.5", 4, false}, {"", 2, false}, {"?", 2, false}} {
		w := Machine{Load: tc.load, Cores: tc.cores}.Busy()
		if (w != "") != tc.warn {
			t.Errorf("load %q on %d cores: warning %q, want one: %v", tc.load, tc.cores, w, tc.warn)
		}
		if w != "" && !strings.Contains(w, tc.load) {
			t.Errorf("load %q: the warning does not say it: %q", tc.load, w)
		}
	}
}
