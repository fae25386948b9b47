package consumers

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/warehouse"
)

// sliceReader delivers its messages, then blocks until ctx ends.
type sliceReader struct {
	mu   sync.Mutex
	msgs []kafka.Message
}

func (r *sliceReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	r.mu.Lock()
	if len(r.msgs) > 0 {
		m := r.msgs[0]
		r.msgs = r.msgs[1:]
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (r *sliceReader) Close() error { return nil }

type nopSink[T any] struct{}

func (nopSink[T]) Publish(context.Context, []T) error { return nil }

type nopDead struct{}

func (nopDead) Send(context.Context, []warehouse.DeadLetter) error { return nil }

// TestUnstoredBatchIsNeverSkipped: ClickHouse is down when the generation
// ends, so the batch in flight cannot be stored; the final flush, with
// ClickHouse back, must store that batch too before committing offsets past
// it. (Dropping it and committing the later messages' offsets would lose it.)
func TestUnstoredBatchIsNeverSkipped(t *testing.T) {
	var msgs []kafka.Message
	for i := 0; i < 5; i++ {
		msgs = append(msgs, kafka.Message{Partition: 0, Offset: int64(i), Value: []byte{byte('a' + i)}})
	}
	reader := &sliceReader{msgs: msgs}
	var mu sync.Mutex
	failed := false
	var stored []string
	var committed map[int]int64
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer[string, string]{
		topic:  "t",
		decode: func(m kafka.Message) (string, error) { return string(m.Value), nil },
		store: func(_ context.Context, rows []string) error {
			mu.Lock()
			defer mu.Unlock()
			if !failed { // the first write finds ClickHouse away, and the generation ends
				failed = true
				cancel()
				return errors.New("clickhouse down")
			}
			stored = append(stored, rows...)
			return nil
		},
		dead: nopDead{}, outputs: nopSink[string]{},
		readers:  func(string, int, int64) (MessageReader, error) { return reader, nil },
		settings: Settings{BatchSize: 2, FlushInterval: time.Hour, MaxMessageBytes: 1 << 10, ShutdownTimeout: 5 * time.Second},
		stats:    &Stats{}, log: zerolog.Nop(),
	}
	commit := func(o map[int]int64) error {
		mu.Lock()
		defer mu.Unlock()
		committed = o
		return nil
	}
	if err := c.Run(ctx, []kafka.PartitionAssignment{{ID: 0, Offset: 0}}, commit); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	next := committed[0]
	if next == 0 {
		t.Fatalf("nothing committed; stored %v", stored)
	}
	if len(stored) < int(next) || stored[0] != "a" {
		t.Fatalf("committed up to offset %d but stored only %v: the batch that failed was skipped", next, stored)
	}
}

// fakeAggregates records touched keys and the recomputes; the first
// recompute fails, as when ClickHouse is away.
type fakeAggregates struct {
	mu        *sync.Mutex
	touched   []string
	refreshes [][]string
	failed    bool
	committed *map[int]int64
	early     *bool
}

func (f *fakeAggregates) Touch(rows []string) { f.touched = append(f.touched, rows...) }
func (f *fakeAggregates) Touched() int        { return len(f.touched) }
func (f *fakeAggregates) Refresh(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if *f.committed != nil {
		*f.early = true
	}
	if !f.failed {
		f.failed = true
		return errors.New("clickhouse down")
	}
	f.refreshes = append(f.refreshes, f.touched)
	f.touched = nil
	return nil
}

// TestAggregatesRecomputedBeforeCommit: the batches of a refresh interval
// share one recompute of the aggregates, and their offsets are committed
// only after it succeeded.
func TestAggregatesRecomputedBeforeCommit(t *testing.T) {
	var msgs []kafka.Message
	for i := 0; i < 6; i++ {
		msgs = append(msgs, kafka.Message{Partition: 0, Offset: int64(i), Value: []byte{byte('a' + i)}})
	}
	var mu sync.Mutex
	var committed map[int]int64
	var commits int
	early := false
	agg := &fakeAggregates{mu: &mu, committed: &committed, early: &early}
	var stored []string
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer[string, string]{
		topic:  "t",
		decode: func(m kafka.Message) (string, error) { return string(m.Value), nil },
		store: func(_ context.Context, rows []string) error {
			mu.Lock()
			defer mu.Unlock()
			stored = append(stored, rows...)
			if len(stored) == len(msgs) {
				cancel()
			}
			return nil
		},
		aggregates: func() Aggregates[string] { return agg },
		dead:       nopDead{}, outputs: nopSink[string]{},
		readers: func(string, int, int64) (MessageReader, error) { return &sliceReader{msgs: msgs}, nil },
		settings: Settings{BatchSize: 2, FlushInterval: 10 * time.Millisecond, RefreshInterval: time.Hour,
			MaxMessageBytes: 1 << 10, ShutdownTimeout: 5 * time.Second},
		stats: &Stats{}, log: zerolog.Nop(),
	}
	commit := func(o map[int]int64) error {
		mu.Lock()
		defer mu.Unlock()
		committed = o
		commits++
		return nil
	}
	if err := c.Run(ctx, []kafka.PartitionAssignment{{ID: 0, Offset: 0}}, commit); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if early {
		t.Fatalf("offsets were committed before the aggregates were recomputed")
	}
	if len(agg.refreshes) != 1 || strings.Join(agg.refreshes[0], "") != "abcdef" {
		t.Fatalf("recomputes %v, want one covering every batch (abcdef)", agg.refreshes)
	}
	if commits != 1 || committed[0] != 6 {
		t.Fatalf("%d commits, last %v; want one, of offset 6, after the recompute", commits, committed)
	}
}
