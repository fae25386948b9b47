package daily_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
)

// generateSQL fills subscriber_daily with {n} subscribers, each with a row
// on every day of the 180 days up to 2026-11-22 and of the 30 days ending a
// year earlier (what the default thresholds read). Most subscribers are
// steady, paying every 30 days; by a hash of the number, 3% stop calling
// for the last 7 days, 3% are silent on the 22nd, 3% move their MO minutes
// off-net and 3% stop paying.
const generateSQL = `INSERT INTO {db}.subscriber_daily (msisdn, day, calls, mo_calls, mt_calls, minutes, mo_minutes,
    onnet_minutes, offnet_minutes, payments, payment_fen, version)
SELECT msisdn, day, calls, mo_calls, calls - mo_calls, minutes, mo_minutes, mo_minutes - offnet_minutes, offnet_minutes,
    payments, payments * 5000, 1
FROM
(
    SELECT toString(13000000000 + s) AS msisdn, day, kind,
        if(kind = 1 AND day = toDate('2026-11-22'), 0, 2 + h % 6) AS calls,
        toUInt64(intDiv(calls, 2)) AS mo_calls,
        if(kind = 0 AND day > toDate('2026-11-15'), 0.1, 1) * calls * (1 + h % 5) AS minutes,
        minutes / 2 AS mo_minutes,
        mo_minutes * if(kind = 2 AND day > toDate('2026-11-15'), 0.7, 0.2) AS offnet_minutes,
        toUInt64((i + s) % 30 = 0 AND NOT (kind = 3 AND day > toDate('2026-08-24'))) AS payments
    FROM
    (
        SELECT intDiv(number, 210) AS s, number % 210 AS i,
            if(i < 180, toDate('2026-11-22') - 179 + i, toDate('2025-11-22') - 29 + (i - 180)) AS day,
            intHash32(number) AS h,
            multiIf(intHash32(s) % 100 < 3, 0, intHash32(s) % 100 < 6, 1, intHash32(s) % 100 < 9, 2,
                intHash32(s) % 100 < 12, 3, 4) AS kind
        FROM system.numbers LIMIT {rows}
    )
)`

const profilesSQL = `INSERT INTO {db}.subscribers (msisdn, birthday, tier, promo_end, status, version)
SELECT toString(13000000000 + number),
    toString(toDate('1970-01-01') + intHash32(number) % 15000),
    arrayElement(['diamond', 'gold', 'silver', 'standard'], 1 + intHash32(number + 1) % 4),
    toString(toDate('2026-11-01') + intHash32(number + 2) % 400),
    if(intHash32(number + 3) % 100 = 0, 'deactivated', 'active'), 1
FROM system.numbers LIMIT {n}`

// BenchmarkEvaluate measures a whole daily evaluation: the aggregate query
// over subscriber_daily FINAL, the rules, and publishing through the real
// publisher to ClickHouse and a broker. The population size comes from
// CHURNWATCH_BENCH_SUBSCRIBERS (default 20,000; the README figure is for
// 1,000,000), e.g.
//
//	CHURNWATCH_BENCH_SUBSCRIBERS=1000000 go test ./pipeline/daily -run XXX -bench Evaluate -benchtime 1x
func BenchmarkEvaluate(b *testing.B) {
	n := 20000
	if v := os.Getenv("CHURNWATCH_BENCH_SUBSCRIBERS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ch, conn := testenv.ClickHouse(b)
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
	sql := func(s string) string {
		for k, v := range map[string]string{"{db}": ch.Database, "{rows}": strconv.Itoa(n * 210), "{n}": strconv.Itoa(n)} {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	for _, s := range []string{generateSQL, profilesSQL} {
		if err := conn.Exec(ctx, sql(s)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("generated %d subscribers x 210 days in %s", n, time.Since(start).Round(time.Millisecond))

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
