// Package testenv gives integration tests the real components: a fresh
// database on the ClickHouse server started by deploy/local/clickhouse.sh
// and an in-process Kafka-protocol broker, each cleaned up after the test.
// It is imported only by tests.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/broker"
	"churnwatch/pipeline/config"
	"churnwatch/pipeline/lag"
)

// Suffix returns a random suffix for per-test names.
func Suffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ClickHouse returns the settings of a fresh database on the test server
// (CHURNWATCH_CLICKHOUSE_ADDR, default the local one) and a connection to
// it; the database is dropped when the test ends. The test fails, with what
// to do, when the server is not running.
func ClickHouse(t testing.TB) (config.ClickHouse, driver.Conn) {
	t.Helper()
	cfg := config.Default().ClickHouse
	if addr := os.Getenv("CHURNWATCH_CLICKHOUSE_ADDR"); addr != "" {
		cfg.Addr = addr
	}
	cfg.Database = "test_" + Suffix()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{cfg.Addr}})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = conn.Ping(ctx)
		cancel()
	}
	if err != nil {
		t.Fatalf("ClickHouse at %s is not reachable (%v): run `make test`, or start it with deploy/local/clickhouse.sh start", cfg.Addr, err)
	}
	t.Cleanup(func() {
		conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	return cfg, conn
}

// Broker starts an in-process broker on a free port with the given topics
// and partitions; it is closed when the test ends.
func Broker(t testing.TB, partitions int, topics ...string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{Partitions: partitions, Topics: topics})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Config returns a pipeline configuration for a test: the given broker and
// database, a unique topic prefix and group, an ephemeral HTTP port, and
// short flush intervals.
func Config(b *broker.Broker, ch config.ClickHouse) config.Config {
	cfg := config.Default()
	cfg.Kafka.Brokers = b.Addrs()
	cfg.Kafka.GroupID = "test-" + Suffix()
	cfg.ClickHouse = ch
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Ingest.FlushInterval = 100 * time.Millisecond
	cfg.Ingest.RefreshInterval = 200 * time.Millisecond
	cfg.Ingest.ShutdownTimeout = 5 * time.Second
	cfg.Log.Level = "warn"
	return cfg
}

// Produce writes messages synchronously, partitioned by key like the
// pipeline's own producers.
func Produce(t testing.TB, brokers []string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d messages: %v", len(msgs), err)
	}
}

// ReadAll reads every message currently in a topic (all partitions).
func ReadAll(t testing.TB, brokers []string, topic string) []kafka.Message {
	t.Helper()
	conn, err := kafka.Dial("tcp", brokers[0])
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	defer conn.Close()
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, p := range parts {
		pc, err := kafka.DialLeader(context.Background(), "tcp", brokers[0], topic, p.ID)
		if err != nil {
			t.Fatalf("dial %s/%d: %v", topic, p.ID, err)
		}
		last, err := pc.ReadLastOffset()
		pc.Close()
		if err != nil {
			t.Fatalf("last offset of %s/%d: %v", topic, p.ID, err)
		}
		if last == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, p.ID, err)
			}
			out = append(out, m)
			if m.Offset >= last-1 {
				break
			}
		}
		cancel()
		r.Close()
	}
	return out
}

// Eventually polls cond until it returns nil or the deadline passes, then
// fails with cond's last error. It waits for the pipeline to catch up; it
// does not measure speed.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Count runs a count query and returns its single number.
func Count(t testing.TB, conn driver.Conn, query string, args ...any) uint64 {
	t.Helper()
	n, err := TryCount(conn, query, args...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TryCount is Count for use inside Eventually: it returns the error.
func TryCount(conn driver.Conn, query string, args ...any) (uint64, error) {
	var n uint64
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", query, err)
	}
	return n, nil
}

// Lag returns how many messages of the topics the group has not committed
// yet (summed over partitions). A group that committed nothing on a
// partition lags by the whole partition.
func Lag(brokers []string, group string, topics ...string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return lag.Of(ctx, &kafka.Client{Addr: kafka.TCP(brokers...)}, group, topics)
}
