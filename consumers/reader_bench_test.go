package consumers

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/testenv"
)

// BenchmarkPartitionFetch reads 200,000 CDR-sized messages of one partition
// of the in-process broker, with kafka-go's Reader (FetchMessage per
// message) and with the consumers' partition reader, and reports the wall
// and CPU time (of the process: reader and broker) per message. Run with:
// go test ./consumers -run XXX -bench PartitionFetch -benchtime 5x
func BenchmarkPartitionFetch(b *testing.B) {
	const n, topic = 200_000, "fetch-bench"
	br := testenv.Broker(b, 1, topic)
	msgs := make([]kafka.Message, 0, 10_000)
	for i := 0; i < n; i++ {
		msgs = append(msgs, kafka.Message{Topic: topic, Key: fmt.Appendf(nil, "1380000%04d", i%10000),
			Value: fmt.Appendf(nil, `{"event_id":"cdr-%09d","msisdn":"1380000%04d","peer":"13900001111","direction":"MO",`+
				`"start_time":"2026-11-24T10:00:00+08:00","duration_s":60,"cell_id":"cell-0001","forward_to":null}`, i, i%10000)})
		if len(msgs) == cap(msgs) {
			testenv.Produce(b, br.Addrs(), msgs...)
			msgs = msgs[:0]
		}
	}
	measure := func(b *testing.B, read func()) {
		cpu := processCPU()
		for b.Loop() {
			read()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N*n), "cpu-ns/msg")
	}
	b.Run("kafka-go-reader", func(b *testing.B) {
		measure(b, func() {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: br.Addrs(), Topic: topic, Partition: 0,
				MinBytes: 1, MaxBytes: 1 << 20, MaxWait: fetchWait, QueueCapacity: 1024})
			defer r.Close()
			for {
				m, err := r.FetchMessage(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if m.Offset == n-1 {
					return
				}
			}
		})
	})
	b.Run("partition-reader", func(b *testing.B) {
		client := &kafka.Client{Addr: kafka.TCP(br.Addrs()...), Timeout: FetchTimeout}
		measure(b, func() {
			r, _ := PartitionReaders(client, 1<<10, zerolog.Nop())(topic, 0, 0)
			defer r.Close()
			for last := int64(-1); last < n-1; {
				err := r.Fetch(context.Background(), func(m *kafka.Message) bool { last = m.Offset; return true })
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// processCPU returns the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
