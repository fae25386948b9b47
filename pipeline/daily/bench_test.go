package daily_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/bench"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
)

// BenchmarkEvaluate measures a whole daily evaluation: the aggregate query
// over subscriber_daily FINAL, the rules, and publishing through the real
// publisher to ClickHouse and a broker, over the synthetic population of
// bench.LoadDailyPopulation (make bench measures the same at 200,000 x 35).
// Its size comes from CHURNWATCH_BENCH_SUBSCRIBERS (default 20,000) and
// CHURNWATCH_BENCH_DAYS (default 35), e.g.
//
//	CHURNWATCH_BENCH_SUBSCRIBERS=1000000 CHURNWATCH_BENCH_DAYS=400 go test ./pipeline/daily -run XXX -bench Evaluate -benchtime 1x
func BenchmarkEvaluate(b *testing.B) {
	n, days := benchEnv(b, "CHURNWATCH_BENCH_SUBSCRIBERS", 20000), benchEnv(b, "CHURNWATCH_BENCH_DAYS", 35)
	ch, _ := testenv.ClickHouse(b)
	ctx := context.Background()
	wh, err := warehouse.Open(ctx, ch, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	defer wh.Close()
	if _, err := wh.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := bench.LoadDailyPopulation(ctx, wh, n, days, D); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d subscribers x %d days in %s", n, days, time.Since(start).Round(time.Millisecond))

	topic := "bench" + testenv.Suffix() + "." + config.TopicWarnings
	broker := testenv.Broker(b, 4, topic)
	writer := pipeline.NewWriter(kafkaconn.Conn{Brokers: broker.Addrs()})
	defer writer.Close()
	pub := alerts.NewPublisher(wh, writer, topic)
	cfg := daily.Config{Thresholds: signals.DefaultThresholds(), Location: shanghai}
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			start, rows := time.Now(), 0
			if err := wh.ScanDailySums(ctx, daily.Ranges(D, cfg.Thresholds), func(*warehouse.DailySums) error {
				rows++
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			b.Logf("aggregate query: %d subscribers in %s", rows, time.Since(start).Round(time.Millisecond))
		}
	})
	b.Run("evaluate", func(b *testing.B) {
		for b.Loop() {
			res, err := daily.Evaluate(ctx, D, wh, pub, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%d subscribers, %d profiles, %d warnings %v in %s", res.Subscribers, res.Profiles, res.Published,
				res.Warnings, res.Duration.Round(time.Millisecond))
		}
	})
}

func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}
