package simulate

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"churnwatch/pipeline/kafkaconn"
	"churnwatch/schemas"
)

// fakeWriter records what Produce writes, failing on call failOn (1-based)
// when that is set.
type fakeWriter struct {
	calls  [][]kafka.Message
	failOn int
	err    error
}

func (w *fakeWriter) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.calls = append(w.calls, append([]kafka.Message(nil), msgs...))
	if len(w.calls) == w.failOn {
		return w.err
	}
	return nil
}

// fakeClock jumps to whatever time Produce waits for.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if t.After(c.now) {
		c.now = t
	}
	return ctx.Err()
}

func generatedStats(t *testing.T, cfg Config) Stats {
	t.Helper()
	var s Stats
	if err := Generate(cfg, Topics{}, func(m Message) error {
		s.Messages++
		switch {
		case m.Invalid:
			s.Invalid++
		case m.Topic == DefaultCDRTopic:
			s.CDR++
		case m.Topic == DefaultBillingTopic:
			s.Billing++
		case m.Topic == DefaultCRMTopic:
			s.CRM++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProduceWritesEverythingInSlices(t *testing.T) {
	cfg := testConfig(1000, 7) // more than one slice of produceChunk
	cfg.InvalidShare = 0.01
	w := &fakeWriter{}
	clk := &fakeClock{now: time.Unix(1e9, 0)}
	stats, err := produce(context.Background(), cfg, Topics{}, w, zerolog.Nop(), clk)
	if err != nil {
		t.Fatal(err)
	}
	if want := generatedStats(t, cfg); stats != want {
		t.Errorf("stats %+v, want %+v", stats, want)
	}
	if stats.Invalid == 0 {
		t.Error("no invalid messages counted")
	}
	var written int64
	for _, call := range w.calls {
		if len(call) > produceChunk {
			t.Errorf("one write of %d messages, want at most %d", len(call), produceChunk)
		}
		for _, m := range call {
			written++
			if _, ok := schemas.NormalizeMSISDN(string(m.Key)); !ok || len(m.Key) != 11 {
				t.Fatalf("key %q is not a normalised msisdn", m.Key)
			}
			if m.Topic == "" || len(m.Value) == 0 || !m.Time.IsZero() {
				t.Fatalf("message without topic or value, or with an event-time timestamp: %+v", m)
			}
		}
	}
	if written != stats.Messages || len(w.calls) < 2 {
		t.Errorf("%d messages in %d writes, stats say %d", written, len(w.calls), stats.Messages)
	}
	if !clk.now.Equal(time.Unix(1e9, 0)) {
		t.Errorf("Produce waited without a rate: clock moved to %v", clk.now)
	}
}

func TestProduceHonoursRate(t *testing.T) {
	cfg := testConfig(50, 3)
	cfg.Rate = 500
	w := &fakeWriter{}
	start := time.Unix(1e9, 0)
	clk := &fakeClock{now: start}
	stats, err := produce(context.Background(), cfg, Topics{}, w, zerolog.Nop(), clk)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Duration(float64(stats.Messages) / cfg.Rate * float64(time.Second))
	if got := clk.now.Sub(start); got != want {
		t.Errorf("%d messages at %v/s took %v, want %v", stats.Messages, cfg.Rate, got, want)
	}
	for _, call := range w.calls {
		if len(call) > 50 {
			t.Fatalf("a write of %d messages at 500/s, want slices of a tenth of a second", len(call))
		}
	}
}

func TestProduceStops(t *testing.T) {
	boom := errors.New("broker gone")
	t.Run("on a write error", func(t *testing.T) {
		w := &fakeWriter{failOn: 2, err: boom}
		stats, err := produce(context.Background(), testConfig(1500, 7), Topics{}, w, zerolog.Nop(), &fakeClock{})
		if !errors.Is(err, boom) {
			t.Fatalf("error %v, want the write error", err)
		}
		if len(w.calls) != 2 || stats.Messages != int64(len(w.calls[0])) {
			t.Errorf("%d writes, stats %+v: want only the first write counted", len(w.calls), stats)
		}
	})
	t.Run("when cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		w := &fakeWriter{}
		_, err := produce(ctx, testConfig(400, 7), Topics{}, w, zerolog.Nop(), &fakeClock{})
		if !errors.Is(err, context.Canceled) || len(w.calls) != 0 {
			t.Fatalf("error %v after %d writes, want context.Canceled before any", err, len(w.calls))
		}
	})
}

// TestProduceToBroker writes to an in-process Kafka and reads back: every
// message arrives, and a subscriber's messages share one partition number on
// all topics.
func TestProduceToBroker(t *testing.T) {
	topics := Topics{CDR: "sim-test.cdr", Billing: "sim-test.billing", CRM: "sim-test.crm"}
	const partitions = 3
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics.CDR, topics.Billing, topics.CRM))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	w := NewWriter(kafkaconn.Conn{Brokers: cluster.ListenAddrs()})
	t.Cleanup(func() { w.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	stats, err := Produce(ctx, testConfig(100, 3), topics, w, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	client := &kafka.Client{Addr: kafka.TCP(cluster.ListenAddrs()...)}
	partitionOf := map[string]int{}
	count := map[string]int64{}
	for _, topic := range []string{topics.CDR, topics.Billing, topics.CRM} {
		for p := range partitions {
			for offset := int64(0); ; {
				resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: p, Offset: offset, MaxBytes: 8 << 20})
				if err != nil {
					t.Fatal(err)
				}
				if resp.Error != nil {
					t.Fatal(resp.Error)
				}
				for {
					rec, err := resp.Records.ReadRecord()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					key, err := io.ReadAll(rec.Key)
					if err != nil {
						t.Fatal(err)
					}
					if q, seen := partitionOf[string(key)]; seen && q != p {
						t.Fatalf("subscriber %s is on partition %d and %d", key, q, p)
					}
					partitionOf[string(key)] = p
					count[topic]++
					offset = rec.Offset + 1
				}
				if offset >= resp.HighWatermark {
					break
				}
			}
		}
	}
	if count[topics.CDR] != stats.CDR || count[topics.Billing] != stats.Billing || count[topics.CRM] != stats.CRM {
		t.Errorf("read back %v, produced %+v", count, stats)
	}
	if len(partitionOf) != 100 {
		t.Errorf("%d subscribers read back, want 100", len(partitionOf))
	}
}
