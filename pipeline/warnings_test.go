package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

// scenario builds messages on a clock that starts at 2026-11-10 09:00 +08:00.
type scenario struct {
	topics config.Topics
	msgs   []kafka.Message
	n      int
}

var base = time.Date(2026, 11, 10, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))

func (s *scenario) at(h float64) string {
	return base.Add(time.Duration(h * float64(time.Hour))).Format(time.RFC3339)
}

func (s *scenario) add(topic, msisdn, body string) {
	s.msgs = append(s.msgs, kafka.Message{Topic: s.topics.Name(topic), Key: []byte(msisdn), Value: []byte(body)})
}

func (s *scenario) call(msisdn, peer, dir string, h float64, extra string) string {
	s.n++
	id := fmt.Sprintf("w-%d", s.n)
	s.add(config.TopicCDR, msisdn, fmt.Sprintf(`{"event_id":%q,"msisdn":%q,"peer":%q,"direction":%q,"start_time":%q,"duration_s":60%s}`,
		id, msisdn, peer, dir, s.at(h), extra))
	return id
}

func (s *scenario) billing(msisdn, typ string, h float64, fields string) {
	s.n++
	s.add(config.TopicBilling, msisdn, fmt.Sprintf(`{"event_id":"wb-%d","msisdn":%q,"type":%q,"ts":%q,%s}`, s.n, msisdn, typ, s.at(h), fields))
}

func (s *scenario) crm(msisdn, typ string, h float64) {
	s.n++
	s.add(config.TopicCRM, msisdn, fmt.Sprintf(`{"event_id":"wr-%d","msisdn":%q,"type":%q,"ts":%q}`, s.n, msisdn, typ, s.at(h)))
}

// realtimeScenario returns two halves of a stream and the warnings
// (msisdn/signal/severity) they must produce, whatever the split.
func realtimeScenario(topics config.Topics) (first, second []kafka.Message, want []string) {
	s := &scenario{topics: topics}
	// A: 10086 three times in 7 days (medium), five times (high); a duplicate changes nothing.
	s.call("13900000001", "10086", "MO", 0, "")
	dup := s.call("13900000001", "10086", "MO", 24, "")
	first = s.msgs
	s.msgs = nil
	s.call("13900000001", "10086", "MO", 48, "")
	s.msgs = append(s.msgs, s.msgs[len(s.msgs)-1]) // the third call delivered twice
	s.call("13900000001", "10086", "MO", 72, "")
	s.add(config.TopicCDR, "13900000001", fmt.Sprintf(`{"event_id":%q,"msisdn":"13900000001","peer":"10086","direction":"MO","start_time":%q,"duration_s":60}`, dup, s.at(24)))
	s.call("13900000001", "10086", "MO", 96, "")
	// B: two calls: one under the threshold.
	s.call("13900000002", "10086", "MO", 100, "")
	s.call("13900000002", "10086", "MO", 101, "")
	// C: a competitor's hotline; the second call within 7 days is not a new warning.
	s.call("13900000004", "10010", "MO", 110, "")
	s.call("13900000004", "10000", "MO", 120, "")
	// D: forwarding to China Unicom fires; to China Mobile or a landline does not.
	s.call("13900000005", "13512345678", "FWD", 125, `,"forward_to":"18612345678"`)
	s.call("13900000006", "13512345678", "FWD", 125, `,"forward_to":"13812345678"`)
	s.call("13900000007", "13512345678", "FWD", 125, `,"forward_to":"059187654321"`)
	// E: the third hotline call arrives 71 h behind the partition's newest event
	// (lateness bound 48 h): it becomes a fact but fires nothing.
	s.call("13900000008", "10086", "MO", 130, "")
	s.call("13900000008", "10086", "MO", 131, "")
	s.call("13900000009", "13512345678", "MT", 203, "")
	s.call("13900000008", "10086", "MO", 132, "")
	// B': three calls 8 days apart never share a 7-day window.
	s.call("13900000003", "10086", "MO", 210, "")
	s.call("13900000003", "10086", "MO", 210+8*24, "")
	s.call("13900000003", "10086", "MO", 210+16*24, "")
	// F-H: suspension: low balance; balance the bill-based spend exhausts within 3 days; exactly 3 days does not.
	s.billing("13900000010", "BALANCE", 1, `"balance_fen":499`)
	s.billing("13900000011", "BALANCE", 1, `"balance_fen":500`)
	s.billing("13900000012", "BILL", 0, `"amount_fen":30000,"bill_month":"2026-10"`)
	s.billing("13900000012", "BALANCE", 2, `"balance_fen":2999`)
	s.billing("13900000013", "BILL", 0, `"amount_fen":30000,"bill_month":"2026-10"`)
	second = s.msgs
	s.msgs = nil
	s.billing("13900000013", "BALANCE", 2, `"balance_fen":3000`)
	s.billing("13900000014", "ARREARS", 3, `"amount_fen":5600`)
	// I-K: port-out, business operations; a reactivation is no warning.
	s.crm("13900000015", "PORT_OUT_QUERY", 4)
	s.crm("13900000016", "PRE_CANCEL", 4)
	s.crm("13900000017", "REACTIVATE", 4)
	second = append(second, s.msgs...)
	want = []string{
		"13900000001/hotline_calls/medium", "13900000001/hotline_calls/high",
		"13900000004/competitor_hotline/medium", "13900000005/forward_offnet/high",
		"13900000010/suspension_imminent/high", "13900000012/suspension_imminent/high",
		"13900000014/suspension_imminent/high", "13900000015/port_out/critical", "13900000016/business_op/high",
	}
	sort.Strings(want)
	return first, second, want
}

func storedWarnings(t *testing.T, conn driver.Conn, db string) (keys []string, ids map[string]bool) {
	t.Helper()
	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		"SELECT warning_id, msisdn, signal, toString(severity), evidence, score, tier FROM %s.warnings FINAL ORDER BY msisdn, signal, severity", db))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ids = map[string]bool{}
	for rows.Next() {
		var id, m, sig, sev, ev, tier string
		var score uint8
		if err := rows.Scan(&id, &m, &sig, &sev, &ev, &score, &tier); err != nil {
			t.Fatal(err)
		}
		var evidence map[string]any
		if err := json.Unmarshal([]byte(ev), &evidence); err != nil || len(evidence) == 0 {
			t.Errorf("warning %s/%s: evidence %q is not a readable JSON object", m, sig, ev)
		}
		if score == 0 || score > 100 || tier == "" {
			t.Errorf("warning %s/%s: score %d, tier %q", m, sig, score, tier)
		}
		keys = append(keys, m+"/"+sig+"/"+sev)
		ids[id] = true
	}
	sort.Strings(keys)
	return keys, ids
}

// TestRealtimeWarnings drives the real-time signals through Kafka in two
// runs of the pipeline (a restart between them, with part of each window on
// either side), then replays everything with a fresh consumer group: the
// warnings in ClickHouse and on churn.warnings are exactly the expected ones
// each time.
func TestRealtimeWarnings(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = "rt" + testenv.Suffix() + "."
	b := testenv.Broker(t, 1, topics.All()...)
	cfg := withTopics(testenv.Config(b, ch), topics)
	first, second, want := realtimeScenario(topics)

	waitConsumed := func(group string) {
		testenv.Eventually(t, 30*time.Second, func() error {
			lag, err := testenv.Lag(b.Addrs(), group, topics.Inputs()...)
			if err == nil && lag != 0 {
				err = fmt.Errorf("group %s lags by %d", group, lag)
			}
			return err
		})
	}
	testenv.Produce(t, b.Addrs(), first...)
	stop := startPipeline(t, cfg)
	waitConsumed(cfg.Kafka.GroupID)
	stop()
	testenv.Produce(t, b.Addrs(), second...)
	stop = startPipeline(t, cfg)
	waitConsumed(cfg.Kafka.GroupID)
	stop()

	got, ids := storedWarnings(t, conn, ch.Database)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("warnings after a restart mid-stream:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	published := map[string]bool{}
	for _, m := range testenv.ReadAll(t, b.Addrs(), topics.Name(topics.Warnings)) {
		var w schemas.Warning
		if err := json.Unmarshal(m.Value, &w); err != nil {
			t.Fatalf("churn.warnings message %q: %v", m.Value, err)
		}
		if string(m.Key) != w.MSISDN || w.Severity == "" || w.DetectedAt.IsZero() {
			t.Errorf("churn.warnings message keyed %q: %+v", m.Key, w)
		}
		published[w.WarningID] = true
	}
	if fmt.Sprint(published) != fmt.Sprint(ids) {
		t.Errorf("churn.warnings carries ids %v, the table %v", published, ids)
	}

	// A replay from the beginning yields the same warnings, not new ones.
	cfg.Kafka.GroupID += "-replay"
	stop = startPipeline(t, cfg)
	waitConsumed(cfg.Kafka.GroupID)
	stop()
	again, againIDs := storedWarnings(t, conn, ch.Database)
	if strings.Join(again, "\n") != strings.Join(want, "\n") || fmt.Sprint(againIDs) != fmt.Sprint(ids) {
		t.Errorf("a replay changed the warnings:\n%s", strings.Join(again, "\n"))
	}
}
