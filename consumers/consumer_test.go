package consumers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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

func (r *sliceReader) Fetch(ctx context.Context, deliver func(*kafka.Message) bool) error {
	r.mu.Lock()
	msgs := r.msgs
	r.msgs = nil
	r.mu.Unlock()
	if len(msgs) == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	for i := range msgs {
		if !deliver(&msgs[i]) {
			r.mu.Lock()
			r.msgs = append(msgs[i+1:], r.msgs...)
			r.mu.Unlock()
			return nil
		}
	}
	return nil
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
		decode: func(m *kafka.Message) (string, error) { return string(m.Value), nil },
		store: storeOnly(func(_ context.Context, rows []string) error {
			mu.Lock()
			defer mu.Unlock()
			if !failed { // the first write finds ClickHouse away, and the generation ends
				failed = true
				cancel()
				return errors.New("clickhouse down")
			}
			stored = append(stored, rows...)
			return nil
		}),
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

// stringConsumer is a consumer of string rows for these tests: a row is the
// message's value, and outputs and dead letters go nowhere.
func stringConsumer(store func(context.Context, []string) error, readers ReaderFactory, settings Settings) *Consumer[string, string] {
	return &Consumer[string, string]{
		topic:  "t",
		decode: func(m *kafka.Message) (string, error) { return string(m.Value), nil },
		store:  storeOnly(store), dead: nopDead{}, outputs: nopSink[string]{}, readers: readers, settings: settings,
		stats: &Stats{}, log: zerolog.Nop(),
	}
}

// TestWatermarksRecordedBeforeCommit: every commit is preceded by a record
// of the committed partitions' offsets and highest stored event times since
// the assignment; when the record fails, nothing is committed until a later
// record succeeds. The last record of each partition has its final offset
// and highest event time.
func TestWatermarksRecordedBeforeCommit(t *testing.T) {
	t0 := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	// Values are hours after t0; "bad" is a dead letter.
	readers := map[int][]kafka.Message{
		0: {{Partition: 0, Offset: 0, Value: []byte("5")}, {Partition: 0, Offset: 1, Value: []byte("2")},
			{Partition: 0, Offset: 2, Value: []byte("7")}, {Partition: 0, Offset: 3, Value: []byte("1")}},
		1: {{Partition: 1, Offset: 40, Value: []byte("bad")}},
	}
	var mu sync.Mutex
	var log []string                        // "record ..." and "commit ..." in order
	latest := map[int]warehouse.Watermark{} // the last record of each partition
	stored, failed := 0, false
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer[time.Time, string]{
		topic: "t",
		decode: func(m *kafka.Message) (time.Time, error) {
			d, err := time.ParseDuration(string(m.Value) + "h")
			return t0.Add(d), err
		},
		store: storeOnly(func(_ context.Context, rows []time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			stored += len(rows)
			return nil
		}),
		eventTime: func(r *time.Time) time.Time { return *r },
		recordWatermarks: func(_ context.Context, topic string, marks []warehouse.Watermark) error {
			mu.Lock()
			defer mu.Unlock()
			if topic != "t" {
				t.Errorf("watermarks recorded for topic %q", topic)
			}
			if !failed && stored == 4 { // ClickHouse is away as the generation ends
				failed = true
				cancel()
				return errors.New("clickhouse down")
			}
			for _, m := range marks {
				latest[m.Partition] = m
			}
			log = append(log, "record "+fmt.Sprint(offsetsOf(marks)))
			return nil
		},
		dead: nopDead{}, outputs: nopSink[string]{},
		readers: func(_ string, partition int, _ int64) (MessageReader, error) {
			return &sliceReader{msgs: readers[partition]}, nil
		},
		settings: Settings{BatchSize: 2, FlushInterval: 10 * time.Millisecond, MaxMessageBytes: 1 << 10, ShutdownTimeout: 5 * time.Second},
		stats:    &Stats{}, log: zerolog.Nop(),
	}
	commit := func(o map[int]int64) error {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, "commit "+fmt.Sprint(o))
		return nil
	}
	if err := c.Run(ctx, []kafka.PartitionAssignment{{ID: 0, Offset: 0}, {ID: 1, Offset: 40}}, commit); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !failed {
		t.Fatal("the failing record was never reached")
	}
	if len(log) == 0 || !strings.HasPrefix(log[len(log)-1], "commit ") {
		t.Fatalf("log %q: want a final commit", log)
	}
	for i, l := range log {
		if strings.HasPrefix(l, "commit ") && (i == 0 || log[i-1] != "record "+strings.TrimPrefix(l, "commit ")) {
			t.Fatalf("log %q: %q is not preceded by the record of the same offsets", log, l)
		}
	}
	want := map[int]warehouse.Watermark{
		0: {Partition: 0, Offset: 4, Time: t0.Add(7 * time.Hour)},
		1: {Partition: 1, Offset: 41}, // dead letters only: no event time
	}
	for partition, w := range want {
		m, ok := latest[partition]
		if !ok {
			t.Errorf("no record of partition %d", partition)
		} else if m.Offset != w.Offset || !m.Time.Equal(w.Time) {
			t.Errorf("last record of partition %d: offset %d at %v, want offset %d at %v", partition, m.Offset, m.Time, w.Offset, w.Time)
		}
	}
}

func offsetsOf(marks []warehouse.Watermark) map[int]int64 {
	out := map[int]int64{}
	for _, m := range marks {
		out[m.Partition] = m.Offset
	}
	return out
}

// pacedReader delivers n messages of partition 0, about perMilli a
// millisecond, each saying how many more the broker holds (all the rest when
// behind, otherwise markers: offsets that hold no message, like the commit
// markers of a transactional producer); then it blocks until ctx ends.
type pacedReader struct {
	n, perMilli int
	behind      bool
	markers     int64
	next        int
}

func (r *pacedReader) Fetch(ctx context.Context, deliver func(*kafka.Message) bool) error {
	if r.next == r.n {
		<-ctx.Done()
		return ctx.Err()
	}
	time.Sleep(time.Millisecond)
	for end := min(r.next+r.perMilli, r.n); r.next < end; {
		m := kafka.Message{Partition: 0, Offset: int64(r.next), Value: []byte("x"), HighWaterMark: int64(r.next) + 1 + r.markers}
		if r.behind {
			m.HighWaterMark = int64(r.n)
		}
		r.next++
		if !deliver(&m) {
			return nil
		}
	}
	return nil
}

func (r *pacedReader) Close() error { return nil }

// TestBatchesFillWhenBehind: while the broker holds enough messages to fill
// a batch, the flush interval does not cut batches short (fewer, larger
// inserts); once caught up it does again, so that a message waits about a
// flush interval, not for a full batch.
func TestBatchesFillWhenBehind(t *testing.T) {
	const n, batchSize = 6000, 2000
	settings := Settings{BatchSize: batchSize, FlushInterval: 25 * time.Millisecond}
	// Behind, the first two batches see enough to fill them; the rest of
	// the stream (under a batch) goes as the flush interval says.
	if sizes := pacedBatches(t, &pacedReader{n: n, perMilli: 50, behind: true}, settings); len(sizes) < 2 || sizes[0] < batchSize || sizes[1] < batchSize {
		t.Errorf("behind: batches of %v, want the first two full (%d)", sizes, batchSize)
	}
	if sizes := pacedBatches(t, &pacedReader{n: n, perMilli: 50}, settings); slices.Max(sizes) >= batchSize {
		t.Errorf("caught up: batches of %v, want the flush interval to cut them below %d", sizes, batchSize)
	}
}

// TestBatchesWaitForACatchUp: a backlog of at least catchUpBacklog
// messages that would not fill the batch (a small topic catching up) is
// waited for as well: the batch goes when the backlog is under
// catchUpBacklog, with everything fetched by then. A backlog of a few
// offsets that hold no message (transaction markers) is not waited for.
func TestBatchesWaitForACatchUp(t *testing.T) {
	const n = 5 * catchUpBacklog
	settings := Settings{BatchSize: 100 * n, FlushInterval: 50 * time.Millisecond}
	if sizes := pacedBatches(t, &pacedReader{n: n, perMilli: 200, behind: true}, settings); sizes[0] < n-catchUpBacklog {
		t.Errorf("catching up: batches of %v, want the first to hold at least the %d rows fetched before the backlog fell under %d",
			sizes, n-catchUpBacklog, catchUpBacklog)
	}
	if sizes := pacedBatches(t, &pacedReader{n: n / 4, perMilli: 20, markers: 3}, settings); len(sizes) < 3 {
		t.Errorf("caught up but for 3 markers: batches of %v, want the flush interval to cut the %d rows into at least 3", sizes, n/4)
	}
}

// pacedBatches runs a consumer of one partition read by r until it has
// stored all r.n messages, and returns the sizes of the batches it stored.
func pacedBatches(t *testing.T, r *pacedReader, settings Settings) []int {
	t.Helper()
	settings.MaxMessageBytes, settings.ShutdownTimeout = 1<<10, 5*time.Second
	var mu sync.Mutex
	var sizes []int
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := stringConsumer(func(_ context.Context, rows []string) error {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(rows))
		stored := 0
		for _, s := range sizes {
			stored += s
		}
		if stored == r.n {
			cancel()
		}
		return nil
	}, func(string, int, int64) (MessageReader, error) { return r, nil }, settings)
	if err := c.Run(ctx, []kafka.PartitionAssignment{{ID: 0, Offset: 0}}, func(map[int]int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return sizes
}

// TestPauseCommitsStoredBatches: when the stream pauses, what was stored
// is committed at the next flush interval, without waiting for another batch.
func TestPauseCommitsStoredBatches(t *testing.T) {
	var msgs []kafka.Message
	for i := 0; i < 5; i++ {
		msgs = append(msgs, kafka.Message{Partition: 0, Offset: int64(i), Value: []byte{byte('a' + i)}})
	}
	var mu sync.Mutex
	var committed map[int]int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := stringConsumer(func(context.Context, []string) error { return nil },
		func(string, int, int64) (MessageReader, error) { return &sliceReader{msgs: msgs}, nil },
		Settings{BatchSize: 2, FlushInterval: 10 * time.Millisecond, MaxMessageBytes: 1 << 10, ShutdownTimeout: 5 * time.Second})
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, []kafka.PartitionAssignment{{ID: 0, Offset: 0}}, func(o map[int]int64) error {
			mu.Lock()
			defer mu.Unlock()
			committed = o
			return nil
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		next := committed[0]
		mu.Unlock()
		if next == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the stream paused: committed up to %d, want 5", next)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// closingReader is a sliceReader that records Close.
type closingReader struct {
	sliceReader
	closed chan struct{}
}

func (r *closingReader) Close() error { close(r.closed); return nil }

// TestReaderOpenFailureLeavesNothing: when a partition's reader cannot be
// opened, Run returns the error having started no fetcher, and closes the
// readers it had opened.
func TestReaderOpenFailureLeavesNothing(t *testing.T) {
	first := &closingReader{sliceReader: sliceReader{msgs: []kafka.Message{{Partition: 0, Offset: 0, Value: []byte("a")}}},
		closed: make(chan struct{})}
	c := stringConsumer(func(context.Context, []string) error { return nil },
		func(_ string, partition int, _ int64) (MessageReader, error) {
			if partition == 0 {
				return first, nil
			}
			return nil, errors.New("no leader")
		}, Settings{BatchSize: 10, FlushInterval: 10 * time.Millisecond, MaxMessageBytes: 1 << 10, ShutdownTimeout: time.Second})
	err := c.Run(context.Background(), []kafka.PartitionAssignment{{ID: 0}, {ID: 1}}, func(map[int]int64) error {
		t.Error("committed although a partition could not be opened")
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "no leader") {
		t.Fatalf("Run returned %v, want the open error", err)
	}
	select {
	case <-first.closed:
	case <-time.After(time.Second):
		t.Fatal("the reader opened before the failure was not closed")
	}
	if len(first.msgs) != 1 {
		t.Errorf("a fetcher read %d message(s) from the first partition", 1-len(first.msgs))
	}
}

// pairReader delivers its messages two per fetch, one batch of size 2 each.
type pairReader struct{ msgs []kafka.Message }

func (r *pairReader) Fetch(ctx context.Context, deliver func(*kafka.Message) bool) error {
	if len(r.msgs) == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	for i := range min(2, len(r.msgs)) {
		deliver(&r.msgs[i])
	}
	r.msgs = r.msgs[min(2, len(r.msgs)):]
	return nil
}

func (r *pairReader) Close() error { return nil }

// TestFinishInOrderBeforeCommit: a batch's finish runs after its rows are
// stored, in batch order, and before any commit of its offsets; the next
// batch's rows are stored while it runs.
func TestFinishInOrderBeforeCommit(t *testing.T) {
	var msgs []kafka.Message
	for i := range 6 {
		msgs = append(msgs, kafka.Message{Partition: 0, Offset: int64(i), Value: []byte(strconv.Itoa(i))})
	}
	var mu sync.Mutex
	var log []string
	note := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	secondStored := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := stringConsumer(nil, func(string, int, int64) (MessageReader, error) { return &pairReader{msgs: msgs}, nil },
		Settings{BatchSize: 2, FlushInterval: 10 * time.Millisecond, MaxMessageBytes: 1 << 10, ShutdownTimeout: 5 * time.Second})
	c.store = func(_ context.Context, rows []string) (func(context.Context) error, error) {
		name := strings.Join(rows, "")
		note("store " + name)
		if name == "23" {
			close(secondStored)
		}
		return func(context.Context) error {
			if name == "01" { // holds the first batch until the second is stored beside it
				select {
				case <-secondStored:
				case <-time.After(5 * time.Second):
					t.Error("the second batch was not stored while the first was finishing")
				}
			}
			note("finish " + name)
			return nil
		}, nil
	}
	commit := func(o map[int]int64) error {
		note(fmt.Sprintf("commit %d", o[0]))
		if o[0] == 6 {
			cancel()
		}
		return nil
	}
	if err := c.Run(ctx, []kafka.PartitionAssignment{{ID: 0, Offset: 0}}, commit); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	at := func(s string) int {
		i := slices.Index(log, s)
		if i < 0 {
			t.Fatalf("no %q in %v", s, log)
		}
		return i
	}
	if !(at("store 01") < at("store 23") && at("store 23") < at("finish 01") && at("finish 01") < at("finish 23") &&
		at("finish 23") < at("finish 45") && at("store 45") < at("finish 45")) {
		t.Errorf("stores and finishes out of order: %v", log)
	}
	for i, s := range log {
		var next int64
		if _, err := fmt.Sscanf(s, "commit %d", &next); err != nil {
			continue
		}
		for b := int64(0); b < next; b += 2 {
			if f := at(fmt.Sprintf("finish %d%d", b, b+1)); f > i {
				t.Errorf("%s before the batch at offset %d finished: %v", s, b, log)
			}
		}
	}
}

// TestFetchingStartsWhileLaterPartitionsRestore: a partition is fetched,
// stored and committed as soon as its own state is restored, while the
// next partition's restore still waits; that partition is consumed once
// restored, and each partition's state is released only after Run returns.
func TestFetchingStartsWhileLaterPartitionsRestore(t *testing.T) {
	msgs := map[int][]kafka.Message{
		0: {{Partition: 0, Offset: 0, Value: []byte("a")}, {Partition: 0, Offset: 1, Value: []byte("b")}},
		1: {{Partition: 1, Offset: 0, Value: []byte("c")}},
	}
	var mu sync.Mutex
	committed := map[int]int64{}
	released := map[int]bool{}
	firstCommitted := make(chan struct{})
	c := stringConsumer(func(context.Context, []string) error { return nil },
		func(_ string, partition int, _ int64) (MessageReader, error) {
			return &sliceReader{msgs: msgs[partition]}, nil
		}, Settings{BatchSize: 10, FlushInterval: 10 * time.Millisecond, MaxMessageBytes: 1 << 10, ShutdownTimeout: time.Second})
	c.observe = func(ctx context.Context, partition int, _ int64) (Observer[string, string], func(), error) {
		if partition == 1 { // restores only once partition 0 is committed
			select {
			case <-firstCommitted:
			case <-time.After(5 * time.Second):
				return nil, nil, errors.New("partition 0 was not committed while partition 1 restored")
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
		release := func() {
			mu.Lock()
			defer mu.Unlock()
			released[partition] = true
		}
		return func(*string) ([]string, error) { return nil, nil }, release, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, []kafka.PartitionAssignment{{ID: 0}, {ID: 1}}, func(o map[int]int64) error {
			mu.Lock()
			defer mu.Unlock()
			for p, next := range o {
				committed[p] = next
			}
			if committed[0] == 2 && committed[1] == 0 {
				select {
				case <-firstCommitted:
				default:
					close(firstCommitted)
				}
			}
			return nil
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		both := committed[0] == 2 && committed[1] == 1
		rel := len(released)
		mu.Unlock()
		if both {
			if rel != 0 {
				t.Errorf("%d partition states released while Run still runs", rel)
			}
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("committed %v, want partition 0 up to 2 and then partition 1 up to 1", committed)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !released[0] || !released[1] {
		t.Errorf("released after Run: %v, want both partitions", released)
	}
}
