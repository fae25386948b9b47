package main

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"churnwatch/pipeline/broker"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

// TestDailyCommand backfills a day with `churnwatch daily --date`: the
// summary counts what fired, the warnings land in ClickHouse and on the
// prefixed warnings topic, and a second run changes nothing in the table.
func TestDailyCommand(t *testing.T) {
	d := newDailyEnv(t, "d")
	ch, conn, topics, env := d.ch, d.conn, d.topics, d.env
	ctx := context.Background()

	// 2025-06-15 is the day. 13700000001 made 4 calls a day for four weeks
	// and none on it; 13700000002 has a birthday on the 17th; 13700000003
	// is steady and has a birthday too far ahead.
	day := time.Date(2025, 6, 15, 0, 0, 0, 0, time.UTC)
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+ch.Database+".subscriber_daily (msisdn, day, calls, minutes, mo_minutes, version)")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= 28; i++ {
		d := day.AddDate(0, 0, -i)
		if i > 0 {
			must(t, batch.Append("13700000001", d, uint64(4), 8.0, 4.0, uint64(1)))
		}
		must(t, batch.Append("13700000003", d, uint64(5), 30.0, 15.0, uint64(1)))
	}
	must(t, batch.Send())
	profiles, err := conn.PrepareBatch(ctx, "INSERT INTO "+ch.Database+".subscribers (msisdn, birthday, tier, status, version)")
	if err != nil {
		t.Fatal(err)
	}
	must(t, profiles.Append("13700000002", "1990-06-17", "gold", "active", uint64(1)))
	must(t, profiles.Append("13700000003", "1990-06-19", "gold", "active", uint64(1)))
	must(t, profiles.Send())

	summary := regexp.MustCompile(`(?m)^  (\w+) +(\d+)  \S+$`)
	counts := func(out string) map[string]string {
		got := map[string]string{}
		for _, m := range summary.FindAllStringSubmatch(out, -1) {
			got[m[1]] = m[2]
		}
		return got
	}
	wantCounts := map[string]string{"offnet_share_rise": "0", "usage_drop_daily": "0", "usage_drop_period": "0",
		"payment_freq_drop": "0", "silent_yesterday": "1", "promo_expiry": "0", "birthday": "1"}

	out, code := runCmd(t, env, "daily", "--date", "2025-06-15")
	if code != 0 {
		t.Fatalf("daily: exit %d\n%s", code, out)
	}
	if got := counts(out); !reflect.DeepEqual(got, wantCounts) {
		t.Errorf("summary counts %v, want %v:\n%s", got, wantCounts, out)
	}
	for _, want := range []string{"daily signals for 2025-06-15 (Asia/Shanghai): 2 subscribers with history",
		"2 warnings published to the warnings table and " + topics.Name(config.TopicWarnings)} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "13700000001") {
		t.Errorf("the output shows a full MSISDN:\n%s", out)
	}

	table := func() []string {
		rows, err := conn.Query(ctx, "SELECT concat(msisdn, ' ', signal, ' ', tier, ' ', toString(detected_at), ' ', toString(score), ' ', evidence) FROM "+
			ch.Database+".warnings FINAL ORDER BY msisdn, signal")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			must(t, rows.Scan(&s))
			out = append(out, s)
		}
		return out
	}
	first := table()
	if len(first) != 2 || !strings.HasPrefix(first[0], "13700000001 silent_yesterday standard 2025-06-15 15:59:59") ||
		!strings.HasPrefix(first[1], "13700000002 birthday gold 2025-06-14 15:59:59") {
		t.Errorf("warnings table:\n%s", strings.Join(first, "\n"))
	}
	var onTopic []string
	for _, m := range testenv.ReadAll(t, d.b.Addrs(), topics.Name(config.TopicWarnings)) {
		var w schemas.Warning
		must(t, json.Unmarshal(m.Value, &w))
		onTopic = append(onTopic, fmt.Sprintf("%s %s", w.MSISDN, w.Signal))
	}
	sort.Strings(onTopic)
	if want := []string{"13700000001 silent_yesterday", "13700000002 birthday"}; !reflect.DeepEqual(onTopic, want) {
		t.Errorf("warnings topic holds %v, want %v", onTopic, want)
	}

	out, code = runCmd(t, env, "daily", "--date", "2025-06-15")
	if code != 0 || !reflect.DeepEqual(counts(out), wantCounts) {
		t.Fatalf("second daily: exit %d\n%s", code, out)
	}
	if second := table(); !reflect.DeepEqual(first, second) {
		t.Errorf("running the day twice changed the warnings table:\n%s\nthen\n%s", strings.Join(first, "\n"), strings.Join(second, "\n"))
	}
}

// TestDailyCommandRefreshesPendingDays: `churnwatch daily` first recomputes
// the subscriber-days the consumers left pending, so a subscriber whose
// facts are stored but whose subscriber_daily rows were never recomputed is
// evaluated on them: four calls a day for four weeks, none on the day.
func TestDailyCommandRefreshesPendingDays(t *testing.T) {
	d := newDailyEnv(t, "dp")
	ch, conn, topics, wh, env := d.ch, d.conn, d.topics, d.wh, d.env
	ctx := context.Background()
	loc, _ := time.LoadLocation("Asia/Shanghai")
	day := time.Date(2025, 6, 15, 0, 0, 0, 0, time.UTC)
	var rows []warehouse.CDRRow
	var pending []warehouse.PendingDay
	for i := 1; i <= 28; i++ {
		d := day.AddDate(0, 0, -i)
		for c := 0; c < 4; c++ {
			start := time.Date(d.Year(), d.Month(), d.Day(), 10+c, 0, 0, 0, loc)
			prov := warehouse.Provenance{Partition: 0, Offset: int64(len(rows))}
			rows = append(rows, warehouse.CDRRow{CDR: schemas.CDR{EventID: fmt.Sprintf("p-%d-%d", i, c), MSISDN: "13700000004",
				Peer: "13900000000", Direction: schemas.DirectionMO, StartTime: start, DurationS: 120},
				Network: schemas.NetworkCMCC, Day: d, Provenance: prov})
			pending = append(pending, warehouse.PendingDay{DayKey: warehouse.DayKey{MSISDN: "13700000004", Day: d}, Partition: 0, Offset: prov.Offset})
		}
	}
	must(t, wh.InsertCDR(ctx, rows))
	must(t, wh.InsertPendingDays(ctx, topics.Name(config.TopicCDR), pending))

	out, code := runCmd(t, env, "daily", "--date", "2025-06-15")
	if code != 0 {
		t.Fatalf("daily: exit %d\n%s", code, out)
	}
	if !regexp.MustCompile(`(?m)^  silent_yesterday +1  `).MatchString(out) {
		t.Errorf("silent_yesterday did not fire for the subscriber whose days were pending:\n%s", out)
	}
	if n := testenv.Count(t, conn, "SELECT count() FROM "+ch.Database+".subscriber_daily FINAL WHERE msisdn = '13700000004' AND calls = 4"); n != 28 {
		t.Errorf("subscriber_daily holds %d days of 4 calls, want 28", n)
	}
	if n, err := wh.PendingDays(ctx); err != nil || n != 0 {
		t.Errorf("%d subscriber-days still pending (err %v), want 0", n, err)
	}
}

// dailyEnv is what a test of `churnwatch daily` runs against: a migrated
// scratch database, a broker with the prefixed topics, and the environment
// that points the command at both.
type dailyEnv struct {
	ch     config.ClickHouse
	conn   driver.Conn
	topics config.Topics
	wh     *warehouse.Warehouse
	b      *broker.Broker
	env    []string
}

func newDailyEnv(t *testing.T, prefix string) dailyEnv {
	t.Helper()
	ch, conn := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = prefix + testenv.Suffix() + "."
	b := testenv.Broker(t, 2, topics.All()...)
	wh, err := warehouse.Open(context.Background(), ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wh.Close() })
	if _, err := wh.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return dailyEnv{ch: ch, conn: conn, topics: topics, wh: wh, b: b, env: []string{
		"CHURNWATCH_KAFKA_BROKERS=" + strings.Join(b.Addrs(), ","),
		"CHURNWATCH_CLICKHOUSE_ADDR=" + ch.Addr,
		"CHURNWATCH_CLICKHOUSE_DATABASE=" + ch.Database,
		"CHURNWATCH_TOPIC_PREFIX=" + topics.Prefix,
	}}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
