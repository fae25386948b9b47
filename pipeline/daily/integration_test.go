package daily_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/rs/zerolog"

	"churnwatch/pipeline"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/daily"
	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/signals"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
)

var _ daily.Publisher = (*alerts.Publisher)(nil)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// history builds facts the way the consumers store them, so the test runs
// the real aggregation (RefreshDaily) under the daily evaluation.
type history struct {
	cdr     []warehouse.CDRRow
	billing []warehouse.BillingRow
	crm     []warehouse.CRMRow
	keys    map[warehouse.DayKey]bool
	n       int
}

func (h *history) id(prefix string) string {
	h.n++
	return fmt.Sprintf("%s-%06d", prefix, h.n)
}

func (h *history) touch(msisdn string, day time.Time) {
	if h.keys == nil {
		h.keys = map[warehouse.DayKey]bool{}
	}
	h.keys[warehouse.DayKey{MSISDN: msisdn, Day: day}] = true
}

// calls adds, on every day from..to (inclusive), perDay calls of seconds
// each, in direction dir to a number of network.
func (h *history) calls(msisdn string, from, to time.Time, perDay int, seconds int64, dir schemas.Direction, network schemas.Network) {
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		for i := range perDay {
			start := time.Date(day.Year(), day.Month(), day.Day(), 10, i, 0, 0, shanghai)
			peer := map[schemas.Network]string{schemas.NetworkCMCC: "13912345678", schemas.NetworkCUCC: "18612345678"}[network]
			h.cdr = append(h.cdr, warehouse.CDRRow{
				CDR: schemas.CDR{EventID: h.id("c"), MSISDN: msisdn, Peer: peer, Direction: dir, StartTime: start,
					DurationS: seconds},
				Network: network, Day: day})
			h.touch(msisdn, day)
		}
	}
}

func (h *history) payment(msisdn string, day time.Time) {
	amount := int64(5000)
	h.billing = append(h.billing, warehouse.BillingRow{BillingEvent: schemas.BillingEvent{EventID: h.id("b"),
		MSISDN: msisdn, Type: schemas.BillingPayment, TS: time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, shanghai),
		AmountFen: &amount}, Day: day})
	h.touch(msisdn, day)
}

func (h *history) profile(msisdn string, tier schemas.Tier, birthday, promoEnd string) {
	p := &schemas.Profile{Tier: &tier, Birthday: &birthday, PromoEnd: &promoEnd}
	ts := time.Date(2025, 1, 1, 8, 0, 0, 0, shanghai)
	h.crm = append(h.crm, warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: h.id("r"), MSISDN: msisdn,
		Type: schemas.CRMProfile, TS: ts, Profile: p}, Day: warehouse.LocalDay(ts, shanghai)})
}

func (h *history) deactivate(msisdn string, day time.Time) {
	ts := time.Date(day.Year(), day.Month(), day.Day(), 12, 0, 0, 0, shanghai)
	h.crm = append(h.crm, warehouse.CRMRow{CRMEvent: schemas.CRMEvent{EventID: h.id("r"), MSISDN: msisdn,
		Type: schemas.CRMDeactivate, TS: ts}, Day: day})
}

func (h *history) store(t *testing.T, wh *warehouse.Warehouse) {
	t.Helper()
	ctx := context.Background()
	if err := wh.InsertCDR(ctx, h.cdr); err != nil {
		t.Fatal(err)
	}
	if err := wh.InsertBilling(ctx, h.billing); err != nil {
		t.Fatal(err)
	}
	if err := wh.InsertCRM(ctx, h.crm); err != nil {
		t.Fatal(err)
	}
	var keys []warehouse.DayKey
	for k := range h.keys {
		keys = append(keys, k)
	}
	rules := config.Default().Rules
	if err := wh.RefreshDaily(ctx, keys, warehouse.DailyRules{HomeNetwork: rules.HomeNetwork,
		HotlineNumbers: rules.HotlineNumbers, CompetitorHotlines: rules.CompetitorHotlines}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var msisdns []string
	for _, r := range h.crm {
		if !seen[r.MSISDN] {
			seen[r.MSISDN] = true
			msisdns = append(msisdns, r.MSISDN)
		}
	}
	if err := wh.RefreshSubscribers(ctx, msisdns, warehouse.TierRules{DiamondFen: 50000, GoldFen: 30000, SilverFen: 12000}); err != nil {
		t.Fatal(err)
	}
}

// D is the evaluated day; back(n) is n days before it.
var D = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func back(n int) time.Time { return D.AddDate(0, 0, -n) }

const (
	mo, mt     = schemas.DirectionMO, schemas.DirectionMT
	onnet, off = schemas.NetworkCMCC, schemas.NetworkCUCC
)

// scenario stores a population where each subscriber fires one daily
// signal (one fires two), or must fire none, and returns the signals
// expected per subscriber ("+"-separated).
func scenario(t *testing.T, wh *warehouse.Warehouse) map[string]string {
	var h history
	// Off-net share 20% over the 28 days before, 60% over the last 7.
	h.calls("13900000001", back(34), back(7), 1, 240, mo, onnet)
	h.calls("13900000001", back(34), back(7), 1, 60, mo, off)
	h.calls("13900000001", back(6), D, 1, 120, mo, onnet)
	h.calls("13900000001", back(6), D, 1, 180, mo, off)
	// 20 min/day, then 5 min/day for the last 7 days.
	h.calls("13900000002", back(34), back(7), 1, 1200, mo, onnet)
	h.calls("13900000002", back(6), D, 1, 300, mo, onnet)
	h.profile("13900000002", schemas.TierGold, "1970-06-01", "")
	// 4 received calls a day, none on D.
	h.calls("13900000003", back(28), back(1), 4, 30, mt, onnet)
	// 10 min/day a year earlier, 4 min/day now; nothing in between.
	h.calls("13900000004", time.Date(2025, 10, 24, 0, 0, 0, 0, time.UTC), time.Date(2025, 11, 22, 0, 0, 0, 0, time.UTC), 1, 600, mo, onnet)
	h.calls("13900000004", back(29), D, 1, 240, mo, onnet)
	// No year-earlier data: 20 min/day over the previous 30 days, 5 now.
	h.calls("13900000005", back(59), back(30), 1, 1200, mo, onnet)
	h.calls("13900000005", back(29), D, 1, 300, mo, onnet)
	// A year earlier 10 min/day, now 8: no drop, although the previous
	// 30 days (20 min/day) would make one.
	h.calls("13900000006", time.Date(2025, 10, 24, 0, 0, 0, 0, time.UTC), time.Date(2025, 11, 22, 0, 0, 0, 0, time.UTC), 1, 600, mo, onnet)
	h.calls("13900000006", back(59), back(30), 1, 1200, mo, onnet)
	h.calls("13900000006", back(29), D, 1, 480, mo, onnet)
	// Three payments in the 90 days before, one in the last 90.
	for _, n := range []int{170, 140, 100, 50} {
		h.payment("13900000007", back(n))
	}
	// Two and two; one and none: no drop.
	for _, n := range []int{170, 100, 80, 10} {
		h.payment("13900000008", back(n))
	}
	h.payment("13900000018", back(120))
	// Promotions: ends in 30 days; in 31; on D itself.
	h.profile("13900000009", schemas.TierSilver, "", "2026-12-22")
	h.profile("13900000019", schemas.TierSilver, "", "2026-12-23")
	h.profile("13900000029", schemas.TierSilver, "", "2026-11-22")
	// Birthdays: in 3 days; in 4.
	h.profile("13900000010", schemas.TierDiamond, "1985-11-25", "")
	h.profile("13900000020", schemas.TierDiamond, "1985-11-26", "")
	// Steady: 3 on-net calls a day.
	h.calls("13900000011", back(59), D, 3, 200, mo, onnet)
	h.profile("13900000011", schemas.TierGold, "1980-05-05", "2027-05-05")
	// New: calls only in the last days, none on D.
	h.calls("13900000012", back(4), back(1), 5, 100, mo, off)
	// Two signals at once: usage down to a tenth, then silent on D.
	h.calls("13900000014", back(34), back(7), 4, 300, mt, onnet)
	h.calls("13900000014", back(6), back(1), 4, 30, mt, onnet)
	// Departed: usage dropped, birthday ahead, but deactivated.
	h.calls("13900000013", back(34), back(7), 1, 1200, mo, onnet)
	h.calls("13900000013", back(6), back(6), 1, 60, mo, onnet)
	h.profile("13900000013", schemas.TierGold, "1985-11-24", "")
	h.deactivate("13900000013", back(6))
	h.store(t, wh)
	return map[string]string{
		"13900000001": signals.OffnetShareRise,
		"13900000002": signals.UsageDropDaily,
		"13900000003": signals.SilentYesterday,
		"13900000004": signals.UsageDropPeriod,
		"13900000005": signals.UsageDropPeriod,
		"13900000007": signals.PaymentFreqDrop,
		"13900000009": signals.PromoExpiry,
		"13900000010": signals.Birthday,
		"13900000014": signals.UsageDropDaily + "+" + signals.SilentYesterday,
	}
}

// warningTable returns every row of warnings FINAL, all columns as text,
// in a fixed order.
func warningTable(t *testing.T, conn driver.Conn, db string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT concat(warning_id, '|', msisdn, '|', signal, '|', toString(severity),
		'|', tier, '|', toString(detected_at), '|', toString(window_start), '|', toString(window_end), '|', evidence,
		'|', toString(score), '|', toString(source), '|', source_topic, '|', toString(kafka_partition), '|',
		toString(kafka_offset)) FROM `+db+`.warnings FINAL ORDER BY warning_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestEvaluateAgainstClickHouseAndKafka runs a day over real ClickHouse
// aggregates with the real publisher and broker, checks exactly which
// warnings fire where, then runs the day again and checks nothing changed.
func TestEvaluateAgainstClickHouseAndKafka(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	ctx := context.Background()
	wh, err := warehouse.Open(ctx, ch, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	if _, err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	topic := "w" + testenv.Suffix() + "." + config.TopicWarnings
	b := testenv.Broker(t, 2, topic)
	writer := pipeline.NewWriter(kafkaconn.Conn{Brokers: b.Addrs()})
	defer writer.Close()
	pub := alerts.NewPublisher(wh, writer, topic)
	want := scenario(t, wh)

	cfg := daily.Config{Thresholds: signals.DefaultThresholds(), Location: shanghai, BatchSize: 3}
	res, err := daily.Evaluate(ctx, D, wh, pub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published != 10 || res.Warnings[signals.UsageDropPeriod] != 2 || res.Warnings[signals.SilentYesterday] != 2 {
		t.Errorf("result %+v, want 10 warnings", res)
	}

	type fired struct{ msisdn, signal string }
	wantSet := map[fired]bool{}
	for m, codes := range want {
		for _, s := range strings.Split(codes, "+") {
			wantSet[fired{m, s}] = true
		}
	}
	tableSet := map[fired]bool{}
	rows, err := conn.Query(ctx, "SELECT msisdn, signal FROM "+ch.Database+".warnings FINAL")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var f fired
		if err := rows.Scan(&f.msisdn, &f.signal); err != nil {
			t.Fatal(err)
		}
		tableSet[f] = true
	}
	rows.Close()
	if !reflect.DeepEqual(tableSet, wantSet) {
		t.Errorf("warnings table holds %v\nwant %v", tableSet, wantSet)
	}

	msgs := testenv.ReadAll(t, b.Addrs(), topic)
	topicSet := map[fired]bool{}
	byMSISDN := map[string]schemas.Warning{}
	for _, m := range msgs {
		var w schemas.Warning
		if err := json.Unmarshal(m.Value, &w); err != nil {
			t.Fatalf("%s: %v", m.Value, err)
		}
		if string(m.Key) != w.MSISDN {
			t.Errorf("message keyed %q carries msisdn %s", m.Key, w.MSISDN)
		}
		topicSet[fired{w.MSISDN, w.Signal}] = true
		byMSISDN[w.MSISDN] = w
		if w.MSISDN == "13900000014" && w.Score != 57 {
			// Two fresh medium warnings: 100·(1 − e^(−50/60)). Each sees the
			// other because a subscriber's warnings are published together.
			t.Errorf("13900000014 %s: score %d, want 57", w.Signal, w.Score)
		}
	}
	if len(msgs) != len(wantSet) || !reflect.DeepEqual(topicSet, wantSet) {
		t.Errorf("topic holds %d messages %v\nwant %v", len(msgs), topicSet, wantSet)
	}

	endOfD := time.Date(2026, 11, 22, 23, 59, 59, 0, shanghai)
	for m, w := range byMSISDN {
		if w.Signal != signals.Birthday && w.Signal != signals.PromoExpiry && !w.DetectedAt.Equal(endOfD) {
			t.Errorf("%s %s detected at %v, want %v", m, w.Signal, w.DetectedAt, endOfD)
		}
		if w.Score <= 0 || w.WarningID == "" || w.Evidence == nil {
			t.Errorf("%s: incomplete warning %+v", m, w)
		}
	}
	if w := byMSISDN["13900000002"]; w.Tier != schemas.TierGold || w.Severity != schemas.SeverityMedium ||
		w.Evidence["recent_avg_minutes"] != 5.0 || w.Evidence["baseline_avg_minutes"] != 20.0 {
		t.Errorf("usage_drop_daily of a gold subscriber: %+v", w)
	}
	if w := byMSISDN["13900000001"]; w.Tier != schemas.TierStandard || w.Evidence["recent_share"] != 0.6 ||
		w.Evidence["baseline_share"] != 0.2 || w.Evidence["from"] != "2026-11-16" {
		t.Errorf("offnet_share_rise: %+v", w)
	}
	if w := byMSISDN["13900000004"]; w.Evidence["baseline"] != "year_earlier" || w.Evidence["baseline_minutes"] != 300.0 {
		t.Errorf("usage_drop_period against the year before: %+v", w.Evidence)
	}
	if w := byMSISDN["13900000005"]; w.Evidence["baseline"] != "previous_period" || w.Evidence["baseline_from"] != "2026-09-24" {
		t.Errorf("usage_drop_period against the previous period: %+v", w.Evidence)
	}
	if w := byMSISDN["13900000003"]; w.Evidence["baseline_calls"] != 112.0 || w.Evidence["calls"] != 0.0 {
		t.Errorf("silent_yesterday: %+v", w.Evidence)
	}
	if w := byMSISDN["13900000010"]; w.Evidence["occasion"] != "2026-11-25" || w.Severity != schemas.SeverityInfo ||
		!w.DetectedAt.Equal(endOfD) || w.WarningID != signals.WarningID("13900000010", signals.Birthday, "2026-11-25") {
		t.Errorf("birthday: %+v", w)
	}

	before := warningTable(t, conn, ch.Database)
	if len(before) != len(wantSet) {
		t.Fatalf("warnings FINAL holds %d rows, want %d", len(before), len(wantSet))
	}
	if _, err := daily.Evaluate(ctx, D, wh, pub, cfg); err != nil {
		t.Fatal(err)
	}
	after := warningTable(t, conn, ch.Database)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("a second run of the day changed the warnings table:\nbefore\n%s\nafter\n%s",
			strings.Join(before, "\n"), strings.Join(after, "\n"))
	}
	// On the topic the rerun repeats each warning, byte for byte, under the
	// same id: consumers dedupe by warning_id.
	copies := map[string][]string{}
	for _, m := range testenv.ReadAll(t, b.Addrs(), topic) {
		var w schemas.Warning
		if err := json.Unmarshal(m.Value, &w); err != nil {
			t.Fatal(err)
		}
		copies[w.WarningID] = append(copies[w.WarningID], string(m.Value))
	}
	if len(copies) != len(wantSet) {
		t.Errorf("after the rerun the topic holds %d distinct warning ids, want %d", len(copies), len(wantSet))
	}
	for id, c := range copies {
		if len(c) != 2 || c[0] != c[1] {
			t.Errorf("warning %s on the topic: %d copies, want 2 identical:\n%s", id, len(c), strings.Join(c, "\n"))
		}
	}
}
