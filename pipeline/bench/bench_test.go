package bench_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/bench"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
)

// TestRunSmall runs the whole harness behind `make bench` at a toy size, so
// that a change which breaks a phase fails here and not in the next
// unattended run: every phase must print its figures, none may fail. It
// runs two rounds of the throughput comparison, the first on a scratch
// database and group of its own.
func TestRunSmall(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	cfg := config.Default()
	cfg.ClickHouse = ch
	var out bytes.Buffer
	res, err := bench.Run(context.Background(), bench.Config{Pipeline: cfg, Subscribers: 300, Days: 2, Rate: 500,
		LatencySeconds: 2, StateSubscribers: 1000, DailySubscribers: 2000, DailyDays: 35, Rounds: 2, ProfileDir: t.TempDir()},
		zerolog.Nop(), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Errors) > 0 {
		t.Fatalf("phases failed: %q\n%s", res.Errors, out.String())
	}
	figures := map[string]float64{}
	for _, f := range res.Figures {
		figures[f.Name] = f.Value
	}
	for _, name := range []string{"state_total_per_subscriber", "preload_events", "clickhouse_kafka_engine_throughput",
		"pipeline_throughput", "pipeline_vs_kafka_engine", "daily_evaluation_wall_time", "event_to_warning_p99",
		"daily_synthetic_wall_time", "pipeline_cpu_per_event", "clickhouse_cpu_per_event",
		"throughput_round_1", "throughput_round_2"} {
		if figures[name] <= 0 {
			t.Errorf("figure %s = %v, want a positive number", name, figures[name])
		}
		if !strings.Contains(out.String(), name) {
			t.Errorf("figure %s not printed", name)
		}
	}
	// What the rounds left for the end is dropped then.
	var left []string
	if err := conn.QueryRow(context.Background(), "SELECT groupArray(name) FROM system.databases WHERE startsWith(name, ?)",
		res.Settings["database"]).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("databases left after the run: %q", left)
	}
	if !strings.Contains(out.String(), "median of 2 rounds") {
		t.Error("the throughput figures do not say they are the medians of the two rounds")
	}
	t.Log(out.String())
}
