package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/rs/zerolog"

	"churnwatch/pipeline/bench"
	"churnwatch/pipeline/config"
)

// benchFlags are the flags of `churnwatch bench`; each defaults to its
// CHURNWATCH_BENCH_* environment variable, then to the package default.
type benchFlags struct {
	cfg bench.Config
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func (b *benchFlags) register(fs *flag.FlagSet) {
	c := &b.cfg
	fs.IntVar(&c.Subscribers, "subscribers", envInt("CHURNWATCH_BENCH_SUBSCRIBERS", bench.DefaultSubscribers),
		"simulated subscribers pre-loaded (env CHURNWATCH_BENCH_SUBSCRIBERS; issue 7's full size is 200000)")
	fs.IntVar(&c.Days, "days", envInt("CHURNWATCH_BENCH_DAYS", bench.DefaultDays),
		"days of their history (env CHURNWATCH_BENCH_DAYS; issue 7's full size is 35)")
	fs.Int64Var(&c.Seed, "seed", int64(envInt("CHURNWATCH_BENCH_SEED", 1)), "random seed of the population")
	fs.Float64Var(&c.Rate, "rate", envFloat("CHURNWATCH_BENCH_RATE", bench.DefaultRate),
		"offered events/s of the latency phase (env CHURNWATCH_BENCH_RATE; issue 7 asks 20000, the default)")
	fs.IntVar(&c.LatencySeconds, "latency-seconds", envInt("CHURNWATCH_BENCH_LATENCY_SECONDS", bench.DefaultLatencySeconds),
		"length of the latency phase (env CHURNWATCH_BENCH_LATENCY_SECONDS)")
	fs.IntVar(&c.PortOutEvery, "port-out-every", envInt("CHURNWATCH_BENCH_PORT_OUT_EVERY", bench.DefaultPortOutEvery),
		"one event in this many of the latency phase is a PORT_OUT_QUERY that fires a warning")
	fs.IntVar(&c.StateSubscribers, "state-subscribers", envInt("CHURNWATCH_BENCH_STATE_SUBSCRIBERS", bench.DefaultStateSubscribers),
		"subscribers loaded into the real-time state for the memory figure (env CHURNWATCH_BENCH_STATE_SUBSCRIBERS)")
	fs.IntVar(&c.DailySubscribers, "daily-subscribers", envInt("CHURNWATCH_BENCH_DAILY_SUBSCRIBERS", bench.DefaultDailySubscribers),
		"subscribers of the synthetic population whose daily evaluation is timed (env CHURNWATCH_BENCH_DAILY_SUBSCRIBERS)")
	fs.IntVar(&c.DailyDays, "daily-days", envInt("CHURNWATCH_BENCH_DAILY_DAYS", bench.DefaultDailyDays),
		"days of history of the synthetic population (env CHURNWATCH_BENCH_DAILY_DAYS)")
	fs.IntVar(&c.Rounds, "rounds", envInt("CHURNWATCH_BENCH_ROUNDS", bench.DefaultRounds),
		"rounds of the throughput comparison, the engine and the pipeline alternated; the figures are their medians (env CHURNWATCH_BENCH_ROUNDS)")
	fs.BoolVar(&c.SkipKafkaEngine, "skip-kafka-engine", os.Getenv("CHURNWATCH_BENCH_SKIP_KAFKA_ENGINE") != "",
		"leave out the ClickHouse Kafka engine comparison")
	fs.StringVar(&c.ResultsFile, "results", bench.DefaultResultsFile, "JSON-lines file the run is appended to (empty: none)")
	fs.StringVar(&c.ProfileDir, "profile-dir", bench.DefaultProfileDir, "directory of the CPU profile")
	fs.BoolVar(&c.Keep, "keep", false, "keep the scratch database bench_* afterwards")
}

// benchRun runs `churnwatch bench`.
func benchRun(ctx context.Context, cfg config.Config, b benchFlags, log zerolog.Logger, stdout io.Writer) error {
	c := b.cfg
	if c.Subscribers <= 0 || c.Days <= 0 || c.Rate <= 0 || c.LatencySeconds <= 0 || c.PortOutEvery <= 0 || c.StateSubscribers <= 0 ||
		c.DailySubscribers <= 0 || c.DailyDays <= 0 || c.Rounds <= 0 {
		return fmt.Errorf("bench: --subscribers, --days, --rate, --latency-seconds, --port-out-every, --state-subscribers, " +
			"--daily-subscribers, --daily-days and --rounds must be positive")
	}
	c.Pipeline = cfg
	_, err := bench.Run(ctx, c, log, stdout)
	return err
}
