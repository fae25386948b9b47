package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
)

// rulesFile writes a rules file and returns the version it must load as.
func rulesFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := config.LoadRules(path)
	if err != nil {
		return ""
	}
	return r.Version()
}

func postReload(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Post(base+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadRulesUnderTraffic reloads the rules file while events flow:
// by POST /-/reload (a valid file, then an invalid one and one that changes
// a number list, both refused) and by SIGHUP. Every event is stored exactly
// once, the real-time windows survive each swap, and every warning carries
// the version of the rules that were in effect when its event was consumed.
func TestReloadRulesUnderTraffic(t *testing.T) {
	ch, conn := testenv.ClickHouse(t)
	topics := config.Default().Topics
	topics.Prefix = "rl" + testenv.Suffix() + "."
	b := testenv.Broker(t, 2, topics.All()...)
	cfg := withTopics(testenv.Config(b, ch), topics)
	cfg.HTTP.Addr = freeHTTPAddr(t)
	base := "http://" + cfg.HTTP.Addr
	path := filepath.Join(t.TempDir(), "rules.yaml")
	versionA := rulesFile(t, path, "hotline_calls: {calls: 3, high_calls: 5, window_days: 7}\n")
	cfg.RulesFile = path
	loaded, err := config.LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Rules = loaded

	s := &scenario{topics: topics}
	produced := 0
	// background: ordinary calls of 200 subscribers, produced in chunks
	// between and during the reloads.
	background := func(chunk int) []kafka.Message {
		s.msgs = nil
		for i := range 200 {
			s.call(fmt.Sprintf("1370000%04d", i), "13512345678", "MT", float64(chunk)+float64(i)/1000, "")
		}
		produced += len(s.msgs)
		return s.msgs
	}
	// async produces msgs while the test goes on; the channel says how it went.
	async := func(msgs []kafka.Message) <-chan error {
		done := make(chan error, 1)
		go func() {
			w := &kafka.Writer{Addr: kafka.TCP(b.Addrs()...), Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll,
				BatchTimeout: 5 * time.Millisecond, BatchSize: 20}
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			done <- w.WriteMessages(ctx, msgs...)
		}()
		return done
	}
	hotline := func(msisdn string, hours ...float64) {
		s.msgs = nil
		for _, h := range hours {
			s.call(msisdn, "10086", "MO", h, "")
		}
		produced += len(s.msgs)
		testenv.Produce(t, b.Addrs(), s.msgs...)
	}
	waitConsumed := func() {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			n, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.cdr FINAL", ch.Database))
			if err == nil && n != uint64(produced) {
				err = fmt.Errorf("%d of %d events stored", n, produced)
			}
			if err == nil {
				lag, lerr := testenv.Lag(b.Addrs(), cfg.Kafka.GroupID, topics.Inputs()...)
				if err = lerr; err == nil && lag != 0 {
					err = fmt.Errorf("group lags by %d", lag)
				}
			}
			return err
		})
	}
	ruleVersion := func() string {
		resp, err := http.Get(base + "/api/rules")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var v struct {
			RuleVersion string `json:"rule_version"`
		}
		json.NewDecoder(resp.Body).Decode(&v)
		return v.RuleVersion
	}

	stop := startPipeline(t, cfg)
	testenv.Eventually(t, 30*time.Second, func() error {
		if v := ruleVersion(); v != versionA {
			return fmt.Errorf("GET /api/rules says %q, want %s", v, versionA)
		}
		return nil
	})
	// Rules A (3 calls): S0 fires, S1 has one call in its window.
	testenv.Produce(t, b.Addrs(), background(0)...)
	hotline("13900000100", 0, 1, 2)
	hotline("13900000101", 0)
	waitConsumed()

	// Rules B (2 calls), by POST, while the background traffic flows.
	versionB := rulesFile(t, path, "# tuned\nhotline_calls:\n  window_days: 7\n  high_calls: 5\n  calls: 2\n")
	done := async(background(1))
	code, body := postReload(t, base)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || !strings.Contains(body, `"rule_version":"`+versionB+`"`) || !strings.Contains(body, `"changed":true`) {
		t.Fatalf("POST /-/reload of a valid file: %d %s, want 200 with version %s", code, body, versionB)
	}
	// S1's second call completes 2 calls only if its window survived the swap.
	hotline("13900000101", 3)
	hotline("13900000102", 3, 4)
	waitConsumed()

	// An invalid file and one that changes a number list are refused with
	// the reason; B stays in effect.
	for _, bad := range []struct{ body, want string }{
		{"hotline_calls: {calls: 0, high_calls: 5, window_days: 7}\n", "rules.hotline_calls.calls must be positive"},
		{"hotline_calls: {calls: 2}\nhotline_numbers: [\"10086\", \"1008611\"]\n", "rules.hotline_numbers changed"},
		{"hotline_calls: {calls: 2\n", "rules file " + path},
		{"hotline_cals: {calls: 2}\n", "field hotline_cals not found"},
	} {
		rulesFile(t, path, bad.body)
		done := async(background(2))
		code, body := postReload(t, base)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if code != http.StatusBadRequest || !strings.Contains(body, bad.want) || !strings.Contains(body, versionB+") stay") {
			t.Errorf("POST /-/reload of %q: %d %s, want 400 saying %q and that %s stays", bad.body, code, body, bad.want, versionB)
		}
		waitConsumed()
	}
	if v := ruleVersion(); v != versionB {
		t.Fatalf("after refused reloads the version is %q, want %s", v, versionB)
	}
	hotline("13900000103", 5, 6)
	waitConsumed()

	// Rules C (4 calls), by SIGHUP.
	versionC := rulesFile(t, path, "hotline_calls: {calls: 4, high_calls: 5, window_days: 7}\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if v := ruleVersion(); v != versionC {
			return fmt.Errorf("after SIGHUP the version is %q, want %s", v, versionC)
		}
		return nil
	})
	testenv.Produce(t, b.Addrs(), background(3)...)
	hotline("13900000104", 7, 8, 9)
	hotline("13900000105", 7, 8, 9, 10)
	waitConsumed()

	// The outcomes page lists the signal per rule version, the current one marked.
	resp, err := http.Get(base + "/api/outcomes")
	if err != nil {
		t.Fatal(err)
	}
	var outcomes struct {
		RuleVersion string `json:"rule_version"`
		Signals     []struct {
			Signal      string `json:"signal"`
			RuleVersion string `json:"rule_version"`
			Subscribers int    `json:"subscribers"`
		} `json:"signals"`
	}
	err = json.NewDecoder(resp.Body).Decode(&outcomes)
	resp.Body.Close()
	var rowsSeen []string
	for _, o := range outcomes.Signals {
		if o.Signal == "hotline_calls" {
			rowsSeen = append(rowsSeen, fmt.Sprintf("%s:%d", o.RuleVersion, o.Subscribers))
		}
	}
	sort.Strings(rowsSeen)
	wantRows := []string{versionA + ":1", versionB + ":3", versionC + ":1"}
	sort.Strings(wantRows)
	if err != nil || outcomes.RuleVersion != versionC || strings.Join(rowsSeen, " ") != strings.Join(wantRows, " ") {
		t.Errorf("GET /api/outcomes: %v, version %q, hotline_calls rows %v, want %s and %v", err, outcomes.RuleVersion, rowsSeen, versionC, wantRows)
	}
	if page, err := http.Get(base + "/outcomes"); err != nil || page.StatusCode != http.StatusOK {
		t.Errorf("GET /outcomes: %v %v", page, err)
	} else {
		page.Body.Close()
	}
	stop()

	// No event lost or doubled: every one stored once.
	q := func(query string) uint64 { return testenv.Count(t, conn, fmt.Sprintf(query, ch.Database)) }
	if n, u := q("SELECT count() FROM %s.cdr FINAL"), q("SELECT uniqExact(event_id) FROM %s.cdr"); n != uint64(produced) || u != uint64(produced) {
		t.Errorf("stored %d facts (%d distinct event ids), produced %d", n, u, produced)
	}
	rows, err := conn.Query(context.Background(), fmt.Sprintf(
		"SELECT msisdn, rule_version, evidence FROM %s.warnings FINAL WHERE signal = 'hotline_calls'", ch.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var m, v, ev string
		if err := rows.Scan(&m, &v, &ev); err != nil {
			t.Fatal(err)
		}
		var e struct {
			Calls     int `json:"calls"`
			Threshold int `json:"threshold"`
		}
		json.Unmarshal([]byte(ev), &e)
		got = append(got, fmt.Sprintf("%s %s calls=%d threshold=%d", m, v, e.Calls, e.Threshold))
	}
	sort.Strings(got)
	want := []string{
		"13900000100 " + versionA + " calls=3 threshold=3",
		"13900000101 " + versionB + " calls=2 threshold=2",
		"13900000102 " + versionB + " calls=2 threshold=2",
		"13900000103 " + versionB + " calls=2 threshold=2",
		"13900000105 " + versionC + " calls=4 threshold=4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("hotline_calls warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, m := range testenv.ReadAll(t, b.Addrs(), topics.Name(topics.Warnings)) {
		var w struct {
			MSISDN      string `json:"msisdn"`
			RuleVersion string `json:"rule_version"`
		}
		if err := json.Unmarshal(m.Value, &w); err != nil || len(w.RuleVersion) != 12 {
			t.Errorf("churn.warnings message without a rule_version: %s", m.Value)
		}
	}
}
