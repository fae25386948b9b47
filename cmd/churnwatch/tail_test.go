package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/config"
	"churnwatch/pipeline/testenv"
	"churnwatch/schemas"
)

func warningMsg(t *testing.T, topic string, w schemas.Warning) kafka.Message {
	t.Helper()
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return kafka.Message{Topic: topic, Key: []byte(w.MSISDN), Value: b}
}

// TestWarningsTail follows churn.warnings with filters, readable and as
// JSON: only the warnings passing the filter are printed, each on one line
// with its Chinese name and evidence; --from-beginning replays what the
// topic keeps.
func TestWarningsTail(t *testing.T) {
	topics := config.Default().Topics
	topics.Prefix = "wt" + testenv.Suffix() + "."
	b := testenv.Broker(t, 1, topics.All()...)
	env := []string{"CHURNWATCH_KAFKA_BROKERS=" + strings.Join(b.Addrs(), ","), "CHURNWATCH_TOPIC_PREFIX=" + topics.Prefix}
	topic := topics.Name(topics.Warnings)
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	w := func(id, msisdn, signal, severity, region string) schemas.Warning {
		return schemas.Warning{WarningID: id, MSISDN: msisdn, Signal: signal, Severity: schemas.Severity(severity), Tier: "gold",
			DetectedAt: at, WindowStart: at, WindowEnd: at, Score: 63, Region: region, AccountManager: "am-017",
			Evidence: map[string]any{"event": "PORT_OUT_QUERY"}}
	}
	// Produced before the tail starts: not printed without --from-beginning.
	testenv.Produce(t, b.Addrs(), warningMsg(t, topic, w("old", "13900000500", "port_out", "critical", "fuzhou-linchuan")))

	tail := start(t, env, "warnings", "tail", "--signal", "port_out,hotline_calls", "--region", "fuzhou-linchuan")
	testenv.Eventually(t, 15*time.Second, func() error {
		if !strings.Contains(tail.output.String(), "following "+topic+" from new warnings") {
			return fmt.Errorf("tail not following yet:\n%s", tail.output)
		}
		return nil
	})
	testenv.Produce(t, b.Addrs(),
		warningMsg(t, topic, w("w1", "13900000501", "port_out", "critical", "fuzhou-linchuan")),
		warningMsg(t, topic, w("w2", "13900000502", "hotline_calls", "medium", "fuzhou-nancheng")), // other region
		warningMsg(t, topic, w("w3", "13900000503", "birthday", "info", "fuzhou-linchuan")),        // other signal
		kafka.Message{Topic: topic, Key: []byte("x"), Value: []byte("not a warning")},
		warningMsg(t, topic, w("w4", "13900000504", "hotline_calls", "high", "fuzhou-linchuan")),
	)
	testenv.Eventually(t, 15*time.Second, func() error {
		if !strings.Contains(tail.output.String(), "13900000504") {
			return fmt.Errorf("the last matching warning is not printed yet:\n%s", tail.output)
		}
		return nil
	})
	tail.terminate(t)
	var lines []string
	for _, l := range strings.Split(tail.output.String(), "\n") {
		if strings.HasPrefix(l, "2026-") {
			lines = append(lines, l)
		}
	}
	want := []string{
		"2026-11-22 10:00:00  CRITICAL  port_out            离网预警 (port-out or deactivation)  13900000501  gold  fuzhou-linchuan  am-017  score 63  event PORT_OUT_QUERY",
		"2026-11-22 10:00:00  HIGH      hotline_calls       拨打10086次数 (calls to the service hotline)  13900000504  gold  fuzhou-linchuan  am-017  score 63  event PORT_OUT_QUERY",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("tail printed:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// --json --from-beginning: every critical warning the topic keeps, as
	// its message.
	tail = start(t, env, "warnings", "tail", "--json", "--from-beginning", "--severity", "critical")
	var got []schemas.Warning
	testenv.Eventually(t, 15*time.Second, func() error {
		got = nil
		for _, l := range strings.Split(tail.output.String(), "\n") {
			var x schemas.Warning
			if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &x) == nil {
				got = append(got, x)
			}
		}
		if len(got) != 2 {
			return fmt.Errorf("%d JSON warnings printed, want 2:\n%s", len(got), tail.output)
		}
		return nil
	})
	tail.terminate(t)
	if got[0].WarningID != "old" || got[1].WarningID != "w1" || got[1].Region != "fuzhou-linchuan" || got[1].Evidence["event"] != "PORT_OUT_QUERY" {
		t.Errorf("JSON warnings: %+v", got)
	}
}

func TestWarningsTailUsage(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantOut string
	}{
		{"no subcommand", []string{"warnings"}, `want "churnwatch warnings tail"`},
		{"unknown subcommand", []string{"warnings", "list"}, `got "list"`},
		{"unknown signal", []string{"warnings", "tail", "--signal", "nope"}, `unknown signal "nope"`},
		{"unknown severity", []string{"warnings", "tail", "--severity", "urgent"}, `unknown severity "urgent"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runCmd(t, nil, tt.args...)
			if code != exitUsage || !strings.Contains(out, tt.wantOut) {
				t.Errorf("exit %d (want %d), output must mention %q:\n%s", code, exitUsage, tt.wantOut, out)
			}
		})
	}
	out, code := runCmd(t, []string{"CHURNWATCH_KAFKA_BROKERS=127.0.0.1:1"}, "warnings", "tail")
	if code != exitError || !strings.Contains(out, "cannot reach Kafka at 127.0.0.1:1") {
		t.Errorf("unreachable Kafka: exit %d, output:\n%s", code, out)
	}
}
