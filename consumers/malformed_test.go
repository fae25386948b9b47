package consumers_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/consumers"
	"churnwatch/pipeline/alerts"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/numbering"
	"churnwatch/pipeline/realtime"
	"churnwatch/pipeline/tasks"
	"churnwatch/pipeline/testenv"
	"churnwatch/pipeline/warehouse"
	"churnwatch/schemas"
	"churnwatch/schemas/malformed"
)

func loadMalformedCorpus(t *testing.T) []malformed.Case {
	t.Helper()
	cases, err := malformed.Load(filepath.Join("..", "schemas", "testdata", "malformed", "corpus.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// validMessage returns a valid message of a topic, unique by i, for the
// subscriber the malformed corpus uses (so both share a partition).
func validMessage(topic string, i int) []byte {
	switch topic {
	case config.TopicCDR:
		return fmt.Appendf(nil, `{"event_id":"ok-c-%d","msisdn":"13912340001","peer":"13512349876","direction":"MO","start_time":"2026-11-20T09:%02d:00+08:00","duration_s":%d}`, i, i%60, 10+i)
	case config.TopicBilling:
		return fmt.Appendf(nil, `{"event_id":"ok-b-%d","msisdn":"+8613912340001","type":"PAYMENT","ts":"2026-11-20T09:00:00+08:00","amount_fen":%d}`, i, 100+i)
	case config.TopicCRM:
		return fmt.Appendf(nil, `{"event_id":"ok-r-%d","msisdn":"13912340001","type":"PROFILE","ts":"2026-11-20T09:%02d:00+08:00","profile":{"region":"fuzhou-linchuan"}}`, i, i%60)
	default: // task updates: well formed, but for a task that does not exist
		return fmt.Appendf(nil, `{"task_id":"ok-t-%d","msisdn":"13912340001","status":"ACCEPTED","ts":"2026-11-21T17:00:00+08:00"}`, i)
	}
}

// TestMalformedCorpusGoesToDLQ produces every message of the malformed
// corpus, each between two valid messages of the same subscriber (so on the
// same partition), to the input topics, runs the consumers, and checks that
// each malformed message reaches <topic>.dlq and dead_letters with its
// specific reason, that every valid message, the ones after a poison message
// included, is stored, and that the group commits everything: no message
// blocks its partition.
//
// The input topics accept messages up to 4 MiB, as an operator's cluster may,
// while the DLQ topics keep Kafka's default of 1 MB: a dead letter must fit
// there too.
func TestMalformedCorpusGoesToDLQ(t *testing.T) {
	cases := loadMalformedCorpus(t)
	ch, conn := testenv.ClickHouse(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	cfg := config.Default()
	topics := cfg.Topics
	topics.Prefix = "mal-" + testenv.Suffix() + "."
	inputs := []string{topics.Name(topics.CDR), topics.Name(topics.Billing), topics.Name(topics.CRM), topics.Name(topics.TaskUpdates)}
	const partitions = 2
	b := testenv.Broker(t, partitions)
	for _, in := range inputs {
		if err := b.Cluster().CreateTopic(in, partitions, map[string]string{"max.message.bytes": strconv.Itoa(4 << 20)}); err != nil {
			t.Fatal(err)
		}
		if err := b.CreateTopics(partitions, in+config.DLQSuffix); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.CreateTopics(partitions, topics.Name(topics.Warnings), topics.Name(topics.Tasks)); err != nil {
		t.Fatal(err)
	}

	// Produce: valid, malformed, valid, malformed, ..., valid, per topic,
	// all keyed by one subscriber, so offsets follow this order.
	type expect struct {
		c     *malformed.Case // nil: a valid message
		valid string          // its id, for valid messages
	}
	const key = "13912340001"
	want := map[string][]expect{} // full topic name → by offset
	var msgs []kafka.Message
	validPerTopic := map[string]int{}
	add := func(topic string, value []byte, e expect) {
		full := topics.Name(topic)
		want[full] = append(want[full], e)
		msgs = append(msgs, kafka.Message{Topic: full, Key: []byte(key), Value: value})
	}
	addValid := func(topic string) {
		i := validPerTopic[topic]
		validPerTopic[topic]++
		add(topic, validMessage(topic, i), expect{valid: fmt.Sprintf("ok-%d", i)})
	}
	for i := range cases {
		c := &cases[i]
		addValid(c.Topic)
		add(c.Topic, c.Msg, expect{c: c})
	}
	for _, topic := range []string{config.TopicCDR, config.TopicBilling, config.TopicCRM, config.TopicTaskUpdates} {
		addValid(topic)
	}
	// Big enough for the 2 MB case; kafka-go's writer refuses larger
	// messages than BatchBytes on its own side.
	producer := &kafka.Writer{Addr: kafka.TCP(b.Addrs()...), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchBytes: 8 << 20}
	defer producer.Close()
	for _, m := range msgs { // one by one: offsets then follow the order above
		if err := producer.WriteMessages(ctx, m); err != nil {
			t.Fatalf("produce %s message of %d bytes: %v", m.Topic, len(m.Value), err)
		}
	}

	// The consumers, wired as the pipeline wires them.
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	wh, err := warehouse.Open(ctx, ch, log)
	if err != nil {
		t.Fatal(err)
	}
	defer wh.Close()
	if _, err := wh.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	writer := &kafka.Writer{Addr: kafka.TCP(b.Addrs()...), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 1000}
	defer writer.Close()
	plan := numbering.NewPlan(nil, schemas.NetworkCMCC)
	loc, err := cfg.Location()
	if err != nil {
		t.Fatal(err)
	}
	deps := consumers.Deps{
		Store:       wh,
		DeadLetters: consumers.NewDeadLetterQueue(writer, wh, config.DLQSuffix),
		Warnings:    alerts.NewPublisher(wh, writer, topics.Name(topics.Warnings)),
		State:       wh,
		Rules: realtime.Rules{Thresholds: cfg.Rules.Thresholds, HotlineNumbers: cfg.Rules.HotlineNumbers,
			CompetitorHotlines: cfg.Rules.CompetitorHotlines, Plan: plan},
		Readers:   consumers.PartitionReaders(&kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: consumers.FetchTimeout}, cfg.Ingest.MaxMessageBytes, zerolog.Nop()),
		Plan:      plan,
		Location:  loc,
		TierRules: warehouse.TierRules{DiamondFen: cfg.Tiers.DiamondFen, GoldFen: cfg.Tiers.GoldFen, SilverFen: cfg.Tiers.SilverFen},
		// Small batches, so that poison messages and valid ones share many.
		Settings: consumers.Settings{BatchSize: 7, FlushInterval: 100 * time.Millisecond,
			MaxMessageBytes: cfg.Ingest.MaxMessageBytes, ShutdownTimeout: 10 * time.Second},
		Log: log,
	}
	taskOut := tasks.NewPublisher(wh, writer, topics.Name(topics.Tasks))
	owner := tasks.NewOwner(cfg.Tasks, wh, taskOut, wallClock{}, log)
	groupID := "mal-" + testenv.Suffix()
	group := consumers.NewGroup(consumers.GroupConfig{Brokers: b.Addrs(), GroupID: groupID, StartOffset: kafka.FirstOffset}, log,
		consumers.NewCDR(inputs[0], deps), consumers.NewBilling(inputs[1], deps), consumers.NewCRM(inputs[2], deps),
		consumers.NewTaskUpdates(inputs[3], owner, taskOut, deps))
	runDone := make(chan error, 1)
	go func() { runDone <- group.Run(ctx) }()
	// Stop the group before the warehouse and writer close, also when a
	// check below fails.
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-runDone
		}
	}()

	// Nothing blocks: the group commits every message of every input topic.
	testenv.Eventually(t, 90*time.Second, func() error {
		lag, err := testenv.Lag(b.Addrs(), groupID, inputs...)
		if err == nil && lag != 0 {
			err = fmt.Errorf("the group still lags by %d messages", lag)
		}
		return err
	})
	cancel()
	stopped = true
	if err := <-runDone; err != nil {
		t.Fatalf("group: %v", err)
	}

	db := ch.Database
	reasonFor := func(e expect, topic string) string {
		switch {
		case e.c == nil: // a valid task update for an unknown task
			return "unknown task"
		case len(e.c.Msg) > cfg.Ingest.MaxMessageBytes:
			return fmt.Sprintf("message of %d bytes exceeds the limit of %d bytes", len(e.c.Msg), cfg.Ingest.MaxMessageBytes)
		default:
			return e.c.Reason
		}
	}
	for _, topic := range inputs {
		byOffset := want[topic]
		taskUpdates := topic == topics.Name(topics.TaskUpdates)
		t.Run(strings.TrimPrefix(topic, topics.Prefix), func(t *testing.T) {
			// The DLQ topic: every rejected message, in order, with its reason.
			dlq := testenv.ReadAll(t, b.Addrs(), topic+config.DLQSuffix)
			got := map[int64]kafka.Message{}
			for _, m := range dlq {
				h := headers(m)
				off, err := strconv.ParseInt(h["source-offset"], 10, 64)
				if err != nil || h["source-topic"] != topic || h["source-partition"] == "" {
					t.Errorf("DLQ message with headers %v", h)
					continue
				}
				if _, dup := got[off]; dup {
					t.Errorf("offset %d dead-lettered twice", off)
				}
				got[off] = m
			}
			// dead_letters: the same, by offset.
			rows, err := conn.Query(context.Background(), fmt.Sprintf("SELECT kafka_offset, error, length(raw) FROM %s.dead_letters FINAL WHERE topic = ?", db), topic)
			if err != nil {
				t.Fatal(err)
			}
			type row struct {
				reason string
				rawLen uint64
			}
			table := map[int64]row{}
			for rows.Next() {
				var off int64
				var r row
				if err := rows.Scan(&off, &r.reason, &r.rawLen); err != nil {
					t.Fatal(err)
				}
				table[off] = r
			}
			rows.Close()

			var storedValid []string
			for off, e := range byOffset {
				if e.c == nil && !taskUpdates {
					storedValid = append(storedValid, e.valid)
					if _, ok := got[int64(off)]; ok {
						t.Errorf("valid message at offset %d was dead-lettered: %s", off, headers(got[int64(off)])["error"])
					}
					continue
				}
				name := "a valid task update"
				if e.c != nil {
					name = e.c.Name
				}
				reason := reasonFor(e, topic)
				m, ok := got[int64(off)]
				if !ok {
					t.Errorf("%s (offset %d) is not on the DLQ", name, off)
				} else {
					if errText := headers(m)["error"]; !strings.Contains(errText, reason) {
						t.Errorf("%s: DLQ error %q does not say %q", name, errText, reason)
					}
					// Unchanged, or, past what a Kafka message can hold by
					// default, its first bytes.
					switch {
					case e.c == nil:
					case len(e.c.Msg) > consumers.MaxDeadLetterBytes:
						if !bytes.Equal(m.Value, e.c.Msg[:consumers.MaxDeadLetterBytes]) || !strings.Contains(headers(m)["error"], "keeps the first") {
							t.Errorf("%s: DLQ value of %d bytes (%s) is not the first %d bytes of the message",
								name, len(m.Value), headers(m)["error"], consumers.MaxDeadLetterBytes)
						}
					case !bytes.Equal(m.Value, e.c.Msg):
						t.Errorf("%s: DLQ value of %d bytes is not the message of %d bytes", name, len(m.Value), len(e.c.Msg))
					}
				}
				r, ok := table[int64(off)]
				if !ok {
					t.Errorf("%s (offset %d) is not in dead_letters", name, off)
				} else if !strings.Contains(r.reason, reason) {
					t.Errorf("%s: dead_letters error %q does not say %q", name, r.reason, reason)
				}
			}
			if len(got) != len(table) {
				t.Errorf("%d messages on the DLQ but %d rows in dead_letters", len(got), len(table))
			}
			if taskUpdates {
				return
			}
			// Every valid message is stored, those after poison included.
			facts := map[string]string{topics.Name(topics.CDR): "cdr", topics.Name(topics.Billing): "billing_events",
				topics.Name(topics.CRM): "crm_events"}[topic]
			prefix := map[string]string{"cdr": "ok-c-", "billing_events": "ok-b-", "crm_events": "ok-r-"}[facts]
			n := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.%s FINAL WHERE startsWith(event_id, ?)", db, facts), prefix)
			if n != uint64(len(storedValid)) {
				t.Errorf("%s holds %d of the %d valid messages", facts, n, len(storedValid))
			}
			if other := testenv.Count(t, conn, fmt.Sprintf("SELECT count() FROM %s.%s FINAL WHERE NOT startsWith(event_id, ?)", db, facts), prefix); other != 0 {
				t.Errorf("%s holds %d rows that came from malformed messages", facts, other)
			}
		})
	}
}

func headers(m kafka.Message) map[string]string {
	h := map[string]string{}
	for _, hd := range m.Headers {
		h[hd.Key] = string(hd.Value)
	}
	return h
}
