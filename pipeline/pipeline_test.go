package pipeline_test

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

// examples reads the shared example messages: valid ones per topic and the
// invalid ones, as Kafka messages keyed by their msisdn.
func examples(t *testing.T, topics config.Topics) (valid, invalid []kafka.Message) {
	t.Helper()
	dir := filepath.Join("..", "schemas", "testdata", "examples")
	for _, topic := range []string{config.TopicCDR, config.TopicBilling, config.TopicCRM} {
		f, err := os.Open(filepath.Join(dir, topic+".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				valid = append(valid, kafka.Message{Topic: topics.Name(topic), Key: keyOf(line), Value: []byte(line)})
			}
		}
		f.Close()
	}
	data, err := os.ReadFile(filepath.Join(dir, "invalid.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, "\t", 3)
		invalid = append(invalid, kafka.Message{Topic: topics.Name(parts[0]), Key: keyOf(parts[1]), Value: []byte(parts[1])})
	}
	return valid, invalid
}

func keyOf(msg string) []byte {
	_, rest, ok := strings.Cut(msg, `"msisdn":"`)
	if !ok {
		return nil
	}
	m, _, _ := strings.Cut(rest, `"`)
	if n, ok := schemas.NormalizeMSISDN(m); ok {
		return []byte(n)
	}
	return []byte(m)
}

// startPipeline runs the pipeline until the returned stop function is
// called; stop fails the test unless Run returns nil promptly.
func startPipeline(t *testing.T, cfg config.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pipeline.Run(ctx, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pipeline.Run returned %v, want nil on shutdown", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("pipeline did not stop within 30s of cancellation")
		}
	}
	t.Cleanup(stop)
	return stop
}

type tableCounts struct {
	cdr, billing, crm, subscribers, daily, dead uint64
}

func counts(conn driver.Conn, db string) (tableCounts, error) {
	var c tableCounts
	for _, f := range []struct {
		table string
		dst   *uint64
	}{{"cdr", &c.cdr}, {"billing_events", &c.billing}, {"crm_events", &c.crm}, {"subscribers", &c.subscribers},
		{"subscriber_daily", &c.daily}, {"dead_letters", &c.dead}} {
		n, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.%s FINAL", db, f.table))
		if err != nil {
			return c, err
		}
		*f.dst = n
	}
	return c, nil
}

type dailyRow struct {
	calls, moCalls, mtCalls, fwdCalls, hotline, offnetFwd, payments uint64
	minutes, onnet, offnet                                          float64
	paymentFen                                                      int64
}

func daily(t *testing.T, conn driver.Conn, db, msisdn, day string) dailyRow {
	t.Helper()
	var r dailyRow
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT calls, mo_calls, mt_calls, fwd_calls, hotline_calls,
		offnet_fwd_calls, payments, minutes, onnet_minutes, offnet_minutes, payment_fen
		FROM %s.subscriber_daily FINAL WHERE msisdn = ? AND day = toDate(?)`, db), msisdn, day).
		Scan(&r.calls, &r.moCalls, &r.mtCalls, &r.fwdCalls, &r.hotline, &r.offnetFwd, &r.payments, &r.minutes, &r.onnet, &r.offnet, &r.paymentFen)
	if err != nil {
		t.Fatalf("subscriber_daily %s %s: %v", msisdn, day, err)
	}
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestIngestEndToEnd drives the shared examples through a real broker into
// a real ClickHouse, checks every table and the DLQ, then replays the same
// messages (a group with no committed offsets, and the messages produced a
// second time) and checks that no count moved.
func TestIngestEndToEnd(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	cfg := config.Default()
	cfg.Topics.Prefix = "t" + testenv.Suffix() + "."
	b := testenv.Broker(t, 4, cfg.Topics.All()...)
	cfg = withTopics(testenv.Config(b, ch), cfg.Topics)

	valid, invalid := examples(t, cfg.Topics)
	garbage := kafka.Message{Topic: cfg.Topics.Name(config.TopicCDR), Key: []byte("x"), Value: []byte("not json at all")}
	oversize := kafka.Message{Topic: cfg.Topics.Name(config.TopicBilling), Value: []byte(`{"pad":"` + strings.Repeat("x", cfg.Ingest.MaxMessageBytes) + `"}`)}
	all := append(append(append([]kafka.Message{}, valid...), invalid...), garbage, oversize)
	testenv.Produce(t, b.Addrs(), all...)

	want := tableCounts{cdr: 5, billing: 4, crm: 4, subscribers: 3, daily: 3, dead: uint64(len(invalid) + 2)}
	stop := startPipeline(t, cfg)
	db := ch.Database
	testenv.Eventually(t, 30*time.Second, func() error {
		got, err := counts(conn, db)
		if err == nil && got != want {
			err = fmt.Errorf("table counts %+v, want %+v", got, want)
		}
		return err
	})
	stop()
	checkContents(t, conn, db)

	// The DLQ topics hold every rejected message, unchanged, with its headers.
	var dlq []kafka.Message
	for _, topic := range cfg.Topics.Inputs() {
		dlq = append(dlq, testenv.ReadAll(t, b.Addrs(), topic+config.DLQSuffix)...)
	}
	if len(dlq) != int(want.dead) {
		t.Fatalf("DLQ holds %d messages, want %d", len(dlq), want.dead)
	}
	sent := map[string]kafka.Message{}
	for _, m := range all {
		sent[string(m.Value)] = m
	}
	for _, m := range dlq {
		h := map[string]string{}
		for _, hd := range m.Headers {
			h[hd.Key] = string(hd.Value)
		}
		orig, ok := sent[string(m.Value)]
		if !ok {
			t.Errorf("DLQ message %.60q is not one of the produced messages", m.Value)
			continue
		}
		if h["source-topic"] != orig.Topic || m.Topic != orig.Topic+config.DLQSuffix {
			t.Errorf("DLQ message on %s has source-topic %q, want %q", m.Topic, h["source-topic"], orig.Topic)
		}
		if h["error"] == "" || h["source-partition"] == "" || h["source-offset"] == "" {
			t.Errorf("DLQ message %.60q lacks headers: %v", m.Value, h)
		}
	}
	reasons := map[string]string{"ex-bad-1": "direction", "ex-bad-2": "msisdn", "ex-bad-3": "start_time",
		"ex-bad-4": "forward_to", "ex-bad-5": "bill_month", "ex-bad-6": "profile", "not json": "not valid JSON",
		`{"pad"`: "exceeds the limit"}
	for needle, reason := range reasons {
		n := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.dead_letters FINAL WHERE position(raw, ?) > 0 AND position(error, ?) > 0", db), needle, reason)
		if n != 1 {
			t.Errorf("dead_letters: want one row for %q with a reason mentioning %q, got %d", needle, reason, n)
		}
	}

	// Replay: a consumer group with no committed offsets reads everything
	// again, and the same messages arrive a second time.
	testenv.Produce(t, b.Addrs(), all...)
	cfg.Kafka.GroupID += "-replay"
	stop = startPipeline(t, cfg)
	testenv.Eventually(t, 30*time.Second, func() error {
		lag, err := testenv.Lag(b.Addrs(), cfg.Kafka.GroupID, cfg.Topics.Inputs()...)
		if err == nil && lag != 0 {
			err = fmt.Errorf("replay group lags by %d messages", lag)
		}
		return err
	})
	stop()
	// Facts are deduplicated by event_id; a dead letter is one per rejected
	// Kafka message, and the second production made new ones.
	want.dead *= 2
	if got, err := counts(conn, db); err != nil || got != want {
		t.Errorf("after replay (%v), table counts %+v, want %+v", err, got, want)
	}
	checkContents(t, conn, db)
}

func withTopics(cfg config.Config, topics config.Topics) config.Config {
	cfg.Topics = topics
	return cfg
}

// checkContents asserts the aggregates and profiles the examples produce.
func checkContents(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	// 13912340001 on 2026-11-20: ex-c-1 MO 184 s on-net, ex-c-2 MT 65 s,
	// ex-c-3 MO 412 s to 10086 (sent with +86).
	d := daily(t, conn, db, "13912340001", "2026-11-20")
	if d.calls != 3 || d.moCalls != 2 || d.mtCalls != 1 || d.hotline != 1 || !near(d.minutes, (184+65+412)/60.0) ||
		!near(d.onnet, 184/60.0) || !near(d.offnet, 0) {
		t.Errorf("subscriber_daily 13912340001 2026-11-20 = %+v", d)
	}
	// 13912340002 on 2026-11-21: a call forwarded to a China Telecom number
	// and a call from a landline.
	d = daily(t, conn, db, "13912340002", "2026-11-21")
	if d.calls != 1 || d.fwdCalls != 1 || d.offnetFwd != 1 || d.mtCalls != 1 {
		t.Errorf("subscriber_daily 13912340002 2026-11-21 = %+v", d)
	}
	d = daily(t, conn, db, "13912340001", "2026-11-01")
	if d.payments != 1 || d.paymentFen != 10000 || d.calls != 0 {
		t.Errorf("subscriber_daily 13912340001 2026-11-01 = %+v", d)
	}
	var network string
	if err := conn.QueryRow(context.Background(), fmt.Sprintf("SELECT peer_network FROM %s.cdr FINAL WHERE event_id = 'ex-c-4'", db)).Scan(&network); err != nil || network != "CTCC" {
		t.Errorf("ex-c-4 forwarded to 133...: peer_network %q (%v), want CTCC from the prefix table", network, err)
	}
	// The partial profile keeps fields it does not carry; the full one sets them all.
	type sub struct{ tier, region, am, pm, status string }
	subs := map[string]sub{}
	rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT msisdn, tier, region, account_manager, phone_manager, status FROM %s.subscribers FINAL", db))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		var s sub
		if err := rows.Scan(&m, &s.tier, &s.region, &s.am, &s.pm, &s.status); err != nil {
			t.Fatal(err)
		}
		subs[m] = s
	}
	rows.Close()
	wantSubs := map[string]sub{
		"13912340001": {"diamond", "fuzhou-linchuan", "am-017", "pm-003", "active"},
		"13912340002": {"standard", "fuzhou-nancheng", "", "pm-009", ""},
		"13912340003": {"standard", "", "", "", ""},
	}
	for m, w := range wantSubs {
		if subs[m] != w {
			t.Errorf("subscribers %s = %+v, want %+v", m, subs[m], w)
		}
	}
	// The workbench profile of ex-r-1; the partial profile of 13912340002 has none.
	var interests, products []string
	var groupID, groupName, groupLevel string
	var age *uint32
	for _, m := range []string{"13912340001", "13912340002"} {
		err := conn.QueryRow(context.Background(), fmt.Sprintf("SELECT interests, group_id, group_name, group_level, products, network_age_months "+
			"FROM %s.subscribers FINAL WHERE msisdn = ?", db), m).Scan(&interests, &groupID, &groupName, &groupLevel, &products, &age)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%q %s/%s/%s %q %v", interests, groupID, groupName, groupLevel, products, age)
		want := `[] // [] <nil>`
		if m == "13912340001" {
			want = `["golf" "tea"] G-350100-0042/福州闽江科技有限公司/A2 ["family-plan" "139-mailbox"] 173`
			if age != nil {
				got = fmt.Sprintf("%q %s/%s/%s %q %d", interests, groupID, groupName, groupLevel, products, *age)
			}
		}
		if got != want {
			t.Errorf("subscribers %s workbench profile = %s, want %s", m, got, want)
		}
	}
}
