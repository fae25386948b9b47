package consumers

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"churnwatch/pipeline/broker"
	"churnwatch/pipeline/testenv"
)

// fetched is a delivered message, copied: the reader reuses its bytes.
type fetched struct {
	offset, highWaterMark int64
	key, value            []byte
}

// fetchUntil calls Fetch until n messages are delivered (taking at most
// stopAt of them from one Fetch when stopAt > 0) or within passes.
func fetchUntil(t *testing.T, r MessageReader, n, stopAt int, within time.Duration) []fetched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out []fetched
	for len(out) < n {
		taken := 0
		err := r.Fetch(ctx, func(msg *kafka.Message) bool {
			out = append(out, fetched{msg.Offset, msg.HighWaterMark, bytes.Clone(msg.Key), bytes.Clone(msg.Value)})
			taken++
			return stopAt == 0 || taken < stopAt
		})
		if err != nil {
			t.Fatalf("fetch after %d of %d messages: %v", len(out), n, err)
		}
		if stopAt > 0 && taken > stopAt {
			t.Fatalf("deliver returned false after %d messages but Fetch delivered %d", stopAt, taken)
		}
	}
	return out
}

func produceNumbered(t *testing.T, brokers []string, topic string, from, to int) {
	t.Helper()
	var msgs []kafka.Message
	for i := from; i < to; i++ {
		m := kafka.Message{Topic: topic, Value: fmt.Appendf(nil, `{"n":%d,"pad":"%0*d"}`, i, i%200, 0)}
		if i%7 != 0 { // every seventh has no key
			m.Key = fmt.Appendf(nil, "k%d", i)
		}
		msgs = append(msgs, m)
	}
	testenv.Produce(t, brokers, msgs...)
}

func checkNumbered(t *testing.T, got []fetched, from int) {
	t.Helper()
	for i, f := range got {
		n := from + i
		if f.offset != int64(n) {
			t.Fatalf("message %d has offset %d, want %d", i, f.offset, n)
		}
		if want := fmt.Appendf(nil, `{"n":%d,"pad":"%0*d"}`, n, n%200, 0); !bytes.Equal(f.value, want) {
			t.Fatalf("offset %d: value %q, want %q", n, f.value, want)
		}
		wantKey := fmt.Appendf(nil, "k%d", n)
		if n%7 == 0 {
			wantKey = nil
		}
		if !bytes.Equal(f.key, wantKey) {
			t.Fatalf("offset %d: key %q, want %q", n, f.key, wantKey)
		}
	}
}

// TestPartitionReaderDeliversInOrder reads a partition of a real broker,
// across many fetch responses, stopping within a response where deliver
// says so and going on from the next message.
func TestPartitionReaderDeliversInOrder(t *testing.T) {
	const n = 20_000 // several responses of up to 1 MiB
	b := testenv.Broker(t, 1, "reader-order")
	produceNumbered(t, b.Addrs(), "reader-order", 0, n)
	client := &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: FetchTimeout}
	r, err := PartitionReaders(client, 1<<10, zerolog.Nop())("reader-order", 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := fetchUntil(t, r, 1000, 100, 30*time.Second)
	got = append(got, fetchUntil(t, r, n-3-len(got), 0, 30*time.Second)...)
	if len(got) != n-3 {
		t.Fatalf("got %d messages, want %d", len(got), n-3)
	}
	checkNumbered(t, got, 3)
	for _, f := range got {
		if f.highWaterMark != n {
			t.Fatalf("offset %d: high-water mark %d, want %d", f.offset, f.highWaterMark, n)
		}
	}
}

// TestPartitionReaderStartOffsets: kafka.FirstOffset starts at the first
// message kept; kafka.LastOffset at the first produced after the reader
// opened, even while nothing new has come yet.
func TestPartitionReaderStartOffsets(t *testing.T) {
	b := testenv.Broker(t, 1, "reader-start")
	produceNumbered(t, b.Addrs(), "reader-start", 0, 5)
	client := &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: FetchTimeout}
	open := PartitionReaders(client, 1<<10, zerolog.Nop())
	first, _ := open("reader-start", 0, kafka.FirstOffset)
	checkNumbered(t, fetchUntil(t, first, 5, 0, 10*time.Second), 0)

	last, _ := open("reader-start", 0, kafka.LastOffset)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err := last.Fetch(ctx, func(msg *kafka.Message) bool {
		t.Errorf("reader at the last offset delivered offset %d before anything new was produced", msg.Offset)
		return true
	})
	cancel()
	if err == nil {
		t.Fatal("Fetch returned without delivering anything before its context ended")
	}
	produceNumbered(t, b.Addrs(), "reader-start", 5, 8)
	checkNumbered(t, fetchUntil(t, last, 3, 0, 10*time.Second), 5)
}

// TestPartitionReaderSkipsDeletedMessages: messages deleted before they
// were read (retention) cannot come back; the reader goes on from the first
// one kept instead of stopping the partition.
func TestPartitionReaderSkipsDeletedMessages(t *testing.T) {
	b := testenv.Broker(t, 1, "reader-deleted")
	produceNumbered(t, b.Addrs(), "reader-deleted", 0, 10)
	kc, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	topic := kmsg.NewDeleteRecordsRequestTopic()
	topic.Topic = "reader-deleted"
	part := kmsg.NewDeleteRecordsRequestTopicPartition()
	part.Partition, part.Offset = 0, 6
	topic.Partitions = append(topic.Partitions, part)
	req.Topics = append(req.Topics, topic)
	res, err := req.RequestWith(context.Background(), kc)
	if err != nil {
		t.Fatal(err)
	}
	if code := res.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("delete records: error code %d", code)
	}
	client := &kafka.Client{Addr: kafka.TCP(b.Addrs()...), Timeout: FetchTimeout}
	r, _ := PartitionReaders(client, 1<<10, zerolog.Nop())("reader-deleted", 0, 2)
	checkNumbered(t, fetchUntil(t, r, 4, 0, 10*time.Second), 6)
}

// TestPartitionReaderRetriesWhileBrokerDown: a Fetch under way while the
// broker is down waits for it and delivers once it is back, from where it
// was.
func TestPartitionReaderRetriesWhileBrokerDown(t *testing.T) {
	cfg := broker.Config{DataDir: t.TempDir(), Partitions: 1, Topics: []string{"reader-down"}}
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	produceNumbered(t, b.Addrs(), "reader-down", 0, 5)
	addrs := b.Addrs()
	client := &kafka.Client{Addr: kafka.TCP(addrs...), Timeout: FetchTimeout}
	r, _ := PartitionReaders(client, 1<<10, zerolog.Nop())("reader-down", 0, 0)
	checkNumbered(t, fetchUntil(t, r, 5, 0, 10*time.Second), 0)
	b.Close()

	got := make(chan []fetched, 1)
	go func() {
		var out []fetched
		err := r.Fetch(context.Background(), func(msg *kafka.Message) bool {
			out = append(out, fetched{msg.Offset, msg.HighWaterMark, bytes.Clone(msg.Key), bytes.Clone(msg.Value)})
			return true
		})
		if err != nil {
			t.Errorf("fetch: %v", err)
		}
		got <- out
	}()
	time.Sleep(time.Second) // Fetch fails meanwhile, and retries
	_, port, err := net.SplitHostPort(addrs[0])
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	b, err = broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	produceNumbered(t, b.Addrs(), "reader-down", 5, 9)
	select {
	case out := <-got:
		if len(out) == 0 {
			t.Fatal("Fetch returned nothing")
		}
		checkNumbered(t, out, 5)
	case <-time.After(30 * time.Second):
		t.Fatal("Fetch did not deliver within 30 s of the broker's return")
	}
}
