package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/simulate"
	"churnwatch/pipeline/testenv"
)

// totals are what a run must agree on, whatever the number of instances.
func totals(t *testing.T, conn driver.Conn, db string) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT toString(count()) FROM %s.cdr FINAL",
		"SELECT toString(count()) FROM %s.billing_events FINAL",
		"SELECT toString(count()) FROM %s.crm_events FINAL",
		"SELECT toString(count()) FROM %s.dead_letters FINAL",
		"SELECT toString(count()) FROM %s.subscribers FINAL",
		"SELECT concat(toString(count()), '/', toString(sum(calls)), '/', toString(round(sum(minutes), 3)), '/', toString(sum(payments))) FROM %s.subscriber_daily FINAL",
		// Warnings by id, signal and severity (scores depend on timing, not ids).
		"SELECT toString(groupArray(k)) FROM (SELECT concat(warning_id, ':', signal, ':', toString(severity)) AS k FROM %s.warnings FINAL ORDER BY k)",
		// Per subscriber with a task, every warning id its tasks carry.
		"SELECT toString(groupArray(k)) FROM (SELECT concat(msisdn, '=', arrayStringConcat(arraySort(groupUniqArrayArray(warning_ids)), ',')) AS k FROM %s.tasks_current GROUP BY msisdn ORDER BY k)",
	} {
		var s string
		if err := conn.QueryRow(context.Background(), fmt.Sprintf(q, db)).Scan(&s); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, s)
	}
	return strings.Join(out, "\n")
}

// TestScaleOutMatchesSingleInstance runs a simulated population through one
// instance and, on the same topics (12 partitions), through three instances
// in one consumer group, one of which is killed (SIGKILL) mid-run. Facts,
// aggregates, warnings and the warnings behind the tasks must be the same.
func TestScaleOutMatchesSingleInstance(t *testing.T) {
	topics := config.Default().Topics
	topics.Prefix = "so" + testenv.Suffix() + "."
	b := testenv.Broker(t, 12, topics.All()...)
	single, conn := testenv.ClickHouse(t)
	multi, _ := testenv.ClickHouse(t)

	sim := simulate.Config{Subscribers: 300, Seed: 11, Days: 14, ChurnShare: 0.15, InvalidShare: 0.002,
		End: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
	var profiles, rest []kafka.Message
	err := simulate.Generate(sim, simulate.Topics{CDR: topics.Name(topics.CDR), Billing: topics.Name(topics.Billing), CRM: topics.Name(topics.CRM)},
		func(m simulate.Message) error {
			km := kafka.Message{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value}
			if m.Topic == topics.Name(topics.CRM) && strings.Contains(string(m.Value), `"type":"PROFILE"`) && len(profiles) < sim.Subscribers {
				profiles = append(profiles, km)
			} else {
				rest = append(rest, km)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	env := func(ch config.ClickHouse, group string) []string {
		return []string{
			"CHURNWATCH_KAFKA_BROKERS=" + strings.Join(b.Addrs(), ","), "CHURNWATCH_CLICKHOUSE_ADDR=" + ch.Addr,
			"CHURNWATCH_CLICKHOUSE_DATABASE=" + ch.Database, "CHURNWATCH_HTTP_ADDR=" + freeAddr(t),
			"CHURNWATCH_TOPIC_PREFIX=" + topics.Prefix, "CHURNWATCH_KAFKA_GROUP_ID=" + group,
			"CHURNWATCH_BATCH_SIZE=500", "CHURNWATCH_FLUSH_INTERVAL=100ms", "CHURNWATCH_REFRESH_INTERVAL=1s", "CHURNWATCH_LOG_LEVEL=info",
		}
	}
	consumed := append(topics.Inputs(), topics.Name(topics.Warnings), topics.Name(topics.TaskUpdates))
	waitDone := func(group string) {
		testenv.Eventually(t, 120*time.Second, func() error {
			lag, err := testenv.Lag(b.Addrs(), group, consumed...)
			if err == nil && lag != 0 {
				err = fmt.Errorf("group %s lags by %d", group, lag)
			}
			return err
		})
	}
	waitProfiles := func(db string) {
		testenv.Eventually(t, 60*time.Second, func() error {
			n, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.subscribers FINAL", db))
			if err == nil && n < uint64(sim.Subscribers) {
				err = fmt.Errorf("%d of %d profiles stored", n, sim.Subscribers)
			}
			return err
		})
	}

	// Profiles first, so that every warning knows its subscriber's tier in both runs.
	testenv.Produce(t, b.Addrs(), profiles...)
	one := start(t, env(single, "single"), "run")
	var three []*process
	for i := 0; i < 3; i++ {
		three = append(three, start(t, env(multi, "multi"), "run"))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range three {
				p.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump, if still running
				time.Sleep(time.Second)
				path := filepath.Join(os.TempDir(), fmt.Sprintf("scaleout-instance-%d.log", i))
				os.WriteFile(path, []byte(p.output.String()), 0o644)
				t.Logf("instance %d log: %s", i, path)
			}
		}
	})
	waitProfiles(single.Database)
	waitProfiles(multi.Database)
	testenv.Produce(t, b.Addrs(), rest...)

	// Kill one of the three once all three hold partitions and facts are
	// arriving. (Killed between joining and syncing the group, a member is
	// never expired by the test broker, kfake, and its partitions stall; a
	// real Kafka expires it after the session timeout. Waiting for the
	// assignment keeps the test about the pipeline.)
	testenv.Eventually(t, 60*time.Second, func() error {
		for i, p := range three {
			if !strings.Contains(p.output.String(), "partitions assigned") {
				return fmt.Errorf("instance %d holds no partition yet", i)
			}
		}
		n, err := testenv.TryCount(conn, fmt.Sprintf("SELECT count() FROM %s.cdr", multi.Database))
		if err == nil && n < 2000 {
			err = fmt.Errorf("%d facts so far", n)
		}
		return err
	})
	three[1].cmd.Process.Signal(syscall.SIGKILL)

	waitDone("single")
	waitDone("multi")
	one.terminate(t)
	three[0].terminate(t)
	three[2].terminate(t)

	want, got := totals(t, conn, single.Database), totals(t, conn, multi.Database)
	if got != want {
		wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
		for i := range wl {
			if wl[i] != gl[i] {
				t.Errorf("line %d differs: only in the single run: %v; only in the multi run: %v", i, onlyIn(wl[i], gl[i]), onlyIn(gl[i], wl[i]))
			}
		}
	}
	if !strings.Contains(want, ":hotline_calls:") || !strings.Contains(want, "=") {
		t.Fatalf("the population fired no hotline warning or opened no task; the comparison proves little:\n%.500s", want)
	}
}

// onlyIn lists the items of a printed array (or the whole value) found in a
// but not in b.
func onlyIn(a, b string) []string {
	split := func(s string) []string { return strings.Split(strings.Trim(s, "[]"), ",") }
	have := map[string]bool{}
	for _, x := range split(b) {
		have[x] = true
	}
	var out []string
	for _, x := range split(a) {
		if !have[x] {
			out = append(out, x)
		}
	}
	return out
}
