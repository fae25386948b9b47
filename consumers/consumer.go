// Package consumers holds one consumer per input topic (cdr.voice,
// billing.events, crm.events) and the consumer-group membership that feeds
// them. A consumer reads its assigned partitions, decodes and validates each
// message, batches the rows by size and time, stores each batch in ClickHouse
// together with its dead letters, and only then commits the batch's offsets.
// A crash anywhere before the commit replays the batch, which the
// ReplacingMergeTree facts absorb.
//
// What a fact means and how it is stored belong to packages schemas and
// warehouse; this package only moves messages and decides when to write.
package consumers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/warehouse"
)

// Settings tune batching; defaults live in package config.
type Settings struct {
	BatchSize       int
	FlushInterval   time.Duration
	MaxMessageBytes int
	// ShutdownTimeout bounds the final flush and commit when stopping.
	ShutdownTimeout time.Duration
}

// Committer commits the next offsets to read, by partition, of one topic.
type Committer func(offsets map[int]int64) error

// DeadLetterSink durably records rejected messages (DLQ topic and table).
type DeadLetterSink interface {
	Send(ctx context.Context, letters []warehouse.DeadLetter) error
}

// Observer sees every decoded row of one partition, in partition order, and
// returns the outputs the row causes (real-time warnings, task versions). An
// error rejects the message: it goes to the DLQ with the error as reason.
type Observer[R, O any] func(row *R) ([]O, error)

// ObserverFactory builds a partition's observer, restoring its state as of
// offset, the next offset the partition will deliver. The release function,
// if not nil, is called when the consumer stops reading the partition.
type ObserverFactory[R, O any] func(ctx context.Context, partition int, offset int64) (Observer[R, O], func(), error)

// OutputSink publishes outputs durably (table and topic).
type OutputSink[O any] interface {
	Publish(ctx context.Context, outputs []O) error
}

// WarningSink publishes real-time warnings.
type WarningSink = OutputSink[warehouse.WarningRow]

// item is one fetched message after decoding: a row with the outputs it
// caused, or a dead letter.
type item[R, O any] struct {
	row       R
	outputs   []O
	dead      *warehouse.DeadLetter
	partition int
	offset    int64
	behind    int64 // messages in the partition after this one when it was fetched
}

// storeFunc stores a batch's rows. The finish it returns, when not nil, is
// the rest of the batch's storing: it runs after the rows are stored and
// before the batch's offsets are committed, in batch order, while the next
// batch's rows are being stored (ClickHouse's time per insert bounds a
// catch-up, and work that only has to follow the insert need not wait for
// the next one).
type storeFunc[R any] func(ctx context.Context, rows []R) (finish func(context.Context) error, err error)

// storeOnly is a storeFunc that has nothing to finish.
func storeOnly[R any](store func(ctx context.Context, rows []R) error) storeFunc[R] {
	return func(ctx context.Context, rows []R) (func(context.Context) error, error) { return nil, store(ctx, rows) }
}

// Consumer consumes one input topic. R is the row type it stores, O the type
// of output its observer derives (warnings, task versions).
type Consumer[R, O any] struct {
	topic  string
	decode func(msg *kafka.Message) (R, error)
	store  storeFunc[R]
	// eventTime returns a row's event time; nil when the topic records no
	// watermarks. With it, every commit first records, through
	// recordWatermarks, the highest event time stored on each committed
	// partition since the assignment (what realtime restores start from).
	eventTime        func(*R) time.Time
	recordWatermarks func(ctx context.Context, topic string, marks []warehouse.Watermark) error
	dead             DeadLetterSink
	observe          ObserverFactory[R, O] // nil: nothing derived on this topic
	outputs          OutputSink[O]
	readers          ReaderFactory
	settings         Settings
	stats            *Stats
	metrics          ConsumerMetrics // nil: not instrumented (see Instrument)
	log              zerolog.Logger
	chunks           sync.Pool // of *[]item[R, O], from the batching loop back to the fetchers
}

// Topic returns the full name of the topic this consumer reads.
func (c *Consumer[R, O]) Topic() string { return c.topic }

// Stats returns the consumer's running counts.
func (c *Consumer[R, O]) Stats() *Stats { return c.stats }

// Run consumes the assigned partitions until ctx is done, then stops
// fetching, stores what it already fetched, commits, and returns nil. It
// returns an error only when a partition cannot be read at all.
func (c *Consumer[R, O]) Run(ctx context.Context, assigned []kafka.PartitionAssignment, commit Committer) error {
	// The consumer reports itself assigned once it consumes: after its
	// partitions' state is restored and their readers are open.
	ids := make([]int, len(assigned))
	for i, a := range assigned {
		ids[i] = a.ID
	}
	var reported atomic.Bool
	report := func() { reported.Store(true); c.hooks().Assigned(ids) }
	defer func() {
		if reported.Load() {
			c.hooks().Unassigned()
		}
	}()
	if len(assigned) == 0 {
		report()
		<-ctx.Done()
		return nil
	}
	fetchCtx, stopFetching := context.WithCancel(ctx)
	defer stopFetching()
	items := make(chan []item[R, O], 16)
	fetchErr := make(chan error, len(assigned))
	// Every partition's reader is opened before any fetcher starts, so
	// that a partition that cannot be read leaves no fetcher behind. A
	// partition's fetcher then starts as soon as its own state is
	// restored, while the next one restores: restoring one after the
	// other, the last partition of cdr.voice was ready 0.25 s after the
	// assignment, and every partition waited for it. What the early
	// fetchers bring is batched and stored meanwhile. When ctx ends while
	// restoring, the fetchers started so far stop like at any other end:
	// what they fetched is stored and committed. releases run when Run
	// returns, after every fetcher is done (fetchersDone).
	readers := make([]MessageReader, 0, len(assigned))
	for _, a := range assigned {
		r, err := c.readers(c.topic, a.ID, a.Offset)
		if err != nil {
			for _, r := range readers {
				r.Close()
			}
			return fmt.Errorf("open %s/%d: %w", c.topic, a.ID, err)
		}
		readers = append(readers, r)
	}
	var (
		fetchers sync.WaitGroup
		releases []func()
	)
	fetchersDone := make(chan struct{})
	defer func() {
		for _, release := range releases {
			release()
		}
	}()
	go func() {
		defer func() { fetchers.Wait(); close(fetchersDone) }()
		for i, a := range assigned {
			observe, release, err := c.observer(fetchCtx, a)
			if err != nil { // stopping while restoring
				for _, r := range readers[i:] {
					r.Close()
				}
				return
			}
			if release != nil {
				releases = append(releases, release)
			}
			fetchers.Add(1)
			go func() {
				defer fetchers.Done()
				defer readers[i].Close()
				if err := c.fetch(fetchCtx, readers[i], a.ID, observe, items); err != nil {
					fetchErr <- err
				}
			}()
		}
		report()
	}()

	// Three stages overlap: this goroutine batches what the fetchers
	// decoded; a storer stores each batch, in order, and a committer
	// records the watermarks of what was stored and commits its offsets.
	// Stopping gives the last two ShutdownTimeout to finish.
	storeCtx, stopStoring := graceContext(ctx, c.settings.ShutdownTimeout)
	defer stopStoring()
	full := make(chan *batch[R, O])
	free := make(chan *batch[R, O], 2) // two batches take turns; the last returned is not taken again
	free <- newBatch[R, O](c.settings.BatchSize, c.eventTime)
	work := make(chan commitWork)
	storerDone, committerDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(storerDone); c.storeLoop(storeCtx, full, free, work, commit) }()
	go func() { defer close(committerDone); c.commitLoop(storeCtx, work, commit) }()
	defer func() { <-committerDone }()

	b := newBatch[R, O](c.settings.BatchSize, c.eventTime)
	ticker := time.NewTicker(c.settings.FlushInterval)
	defer ticker.Stop()
	late := 0 // flush intervals passed since the last batch went to the storer
	// backlog is, per partition, how many messages the broker held past the
	// last one fetched. The flush interval bounds how long a message waits
	// for its batch; when the broker holds enough to fill the batch anyway,
	// or a catch-up's worth of messages more (catchingUp), waiting for them
	// makes fewer, larger inserts and delays nothing: they are being fetched.
	// (Up to maxLate intervals: a backlog it could not fetch must not hold
	// back what it has.)
	backlog := map[int]int64{}
	take := func(chunk []item[R, O]) {
		if n := len(chunk); n > 0 {
			backlog[chunk[n-1].partition] = chunk[n-1].behind
		}
		b.makeRoom(len(chunk), backlog)
		b.addAll(chunk)
		clear(chunk)
		c.chunks.Put(&chunk)
	}
	var runErr error
loop:
	for {
		in, out := items, chan<- *batch[R, O](nil)
		if b.size() >= c.settings.BatchSize {
			in = nil // a full batch waits for the storer
		}
		if !b.empty() && (b.size() >= c.settings.BatchSize || late >= maxLate ||
			late > 0 && !catchingUp(b.size(), backlog, c.settings.BatchSize)) {
			out = full
		}
		select {
		case chunk := <-in:
			take(chunk)
		case out <- b:
			b, late = <-free, 0
		case <-ticker.C:
			late++
		case err := <-fetchErr:
			runErr = err
			break loop
		case <-ctx.Done():
			break loop
		case <-storerDone: // only when stopping took longer than ShutdownTimeout
			break loop
		}
	}
	// Stop fetching, keep what was fetched, and hand it to the storer.
	stopFetching()
	for fetching := true; fetching; {
		select {
		case chunk := <-items:
			take(chunk)
		case <-fetchersDone:
			fetching = false
		}
	}
	for drained := false; !drained; {
		select {
		case chunk := <-items:
			take(chunk)
		default:
			drained = true
		}
	}
	if !b.empty() {
		select {
		case full <- b:
		case <-storerDone:
		}
	}
	close(full)
	return runErr
}

// maxLate bounds, in flush intervals, how long a batch waits to fill.
const maxLate = 8

// catchUpBacklog is how many messages the broker must hold past those
// fetched, over a consumer's partitions, for a batch to wait for them
// although they would not fill it: several fetches' worth, far more than the
// few offsets a transaction's commit markers leave behind the last message.
const catchUpBacklog = 4096

// catchingUp reports whether the messages the broker holds would fill a
// batch of size messages up to batchSize, or are at least catchUpBacklog.
func catchingUp(size int, backlog map[int]int64, batchSize int) bool {
	n := held(backlog)
	return n >= catchUpBacklog || int64(size)+n >= int64(batchSize)
}

// fills reports whether the messages the broker holds would fill a batch of
// size messages up to batchSize.
func fills(size int, backlog map[int]int64, batchSize int) bool {
	return int64(size)+held(backlog) >= int64(batchSize)
}

// held is how many messages the broker holds past those fetched, over the
// partitions of backlog.
func held(backlog map[int]int64) int64 {
	var n int64
	for _, behind := range backlog {
		n += behind
	}
	return n
}

// graceContext returns a context that ends grace after ctx ends (or when
// cancelled).
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return out, func() { stop(); cancel() }
}

// observer restores the partition's real-time state, retrying while
// ClickHouse is unavailable: consuming without it would miss warnings.
func (c *Consumer[R, O]) observer(ctx context.Context, a kafka.PartitionAssignment) (Observer[R, O], func(), error) {
	if c.observe == nil {
		return func(*R) ([]O, error) { return nil, nil }, nil, nil
	}
	var observe Observer[R, O]
	var release func()
	start := time.Now()
	err := retry(ctx, c.log, fmt.Sprintf("restore state of %s/%d", c.topic, a.ID), func(ctx context.Context) error {
		var err error
		observe, release, err = c.observe(ctx, a.ID, a.Offset)
		return err
	})
	if err == nil {
		c.log.Debug().Int("partition", a.ID).Int64("offset", a.Offset).Dur("took", time.Since(start)).Msg("state restored")
	}
	return observe, release, err
}

// Fetched items travel to the batching loop in chunks: of chunkSize, and
// what remains at the end of each fetch response. A channel operation per
// message cost as much as decoding a message's fields.
const chunkSize = 256

func (c *Consumer[R, O]) fetch(ctx context.Context, r MessageReader, partition int, observe Observer[R, O], out chan<- []item[R, O]) error {
	m := c.hooks()
	chunk := c.newChunk()
	// What was fetched is kept: Run takes it until every fetcher is done.
	defer func() {
		if len(chunk) > 0 {
			out <- chunk
		}
	}()
	send := func() bool {
		select {
		case out <- chunk:
			chunk = c.newChunk()
			return true
		case <-ctx.Done():
			return false
		}
	}
	deliver := func(msg *kafka.Message) bool {
		m.Consumed()
		// The row is decoded in its place in the chunk: a row given to the
		// observer from a local variable went to the heap, one allocation
		// per message.
		chunk = append(chunk, item[R, O]{partition: partition, offset: msg.Offset, behind: max(msg.HighWaterMark-msg.Offset-1, 0)})
		it := &chunk[len(chunk)-1]
		var err error
		if len(msg.Value) > c.settings.MaxMessageBytes {
			it.dead = c.deadLetter(msg, fmt.Errorf("message of %d bytes exceeds the limit of %d bytes", len(msg.Value), c.settings.MaxMessageBytes))
		} else if it.row, err = c.decode(msg); err != nil {
			it.row, it.dead = *new(R), c.deadLetter(msg, err)
		} else if it.outputs, err = observe(&it.row); err != nil {
			it.row, it.outputs, it.dead = *new(R), nil, c.deadLetter(msg, err)
		}
		return len(chunk) < chunkSize || send()
	}
	for {
		err := r.Fetch(ctx, deliver)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("fetch %s/%d: %w", c.topic, partition, err)
		}
		if len(chunk) > 0 && !send() {
			return nil
		}
	}
}

// newChunk returns an empty chunk, recycled when the batching loop has
// given one back.
func (c *Consumer[R, O]) newChunk() []item[R, O] {
	if p, ok := c.chunks.Get().(*[]item[R, O]); ok {
		return (*p)[:0]
	}
	return make([]item[R, O], 0, chunkSize)
}

// MaxDeadLetterBytes bounds the copy of a message a dead letter keeps. An
// input topic may accept larger messages than the DLQ topic (Kafka's default
// max.message.bytes is 1 MiB, and so is kafka-go's writer batch): a dead
// letter that cannot be produced would be retried forever and block its
// partition, so it keeps the first MaxDeadLetterBytes bytes and says so.
const MaxDeadLetterBytes = 1_000_000

func (c *Consumer[R, O]) deadLetter(msg *kafka.Message, reason error) *warehouse.DeadLetter {
	// The message's bytes are the reader's, reused for the next message.
	raw, why := msg.Value, reason.Error()
	if len(raw) > MaxDeadLetterBytes {
		raw = raw[:MaxDeadLetterBytes]
		why += fmt.Sprintf(" (the dead letter keeps the first %d of its %d bytes)", MaxDeadLetterBytes, len(msg.Value))
	}
	return &warehouse.DeadLetter{
		Topic: c.topic, Partition: int32(msg.Partition), Offset: msg.Offset,
		Key: bytes.Clone(msg.Key), Raw: bytes.Clone(raw), Error: why, ReceivedAt: time.Now(),
	}
}

// pending is what the storer stored but has not handed to the committer
// yet: the next offsets per partition and, per partition, the highest event
// time stored since the assignment.
type pending struct {
	offsets map[int]int64
	marks   map[int]time.Time
}

// commitWork is what the committer makes durable, in order: record the
// watermarks (when the topic has them), then commit the offsets.
type commitWork struct {
	offsets map[int]int64
	marks   []warehouse.Watermark
}

// storeLoop stores each batch from full, in order, retrying until done or
// ctx ends, and returns it to free; a finisher then finishes it (storeFunc),
// publishes its outputs and dead letters and hands it to the committer, in
// the same order, while storeLoop stores the next batch. A batch that could
// not be stored or finished ends both: nothing after it is committed, so it
// is replayed.
func (c *Consumer[R, O]) storeLoop(ctx context.Context, full <-chan *batch[R, O], free chan<- *batch[R, O],
	work chan<- commitWork, commit Committer) {
	stored := make(chan *storedBatch[O])
	finisherDone := make(chan struct{})
	go func() { defer close(finisherDone); c.finishLoop(ctx, stored, work) }()
	defer func() { <-finisherDone }()
	defer close(stored)
	for b := range full {
		s, ok := c.storeRows(ctx, b, commit)
		if !ok {
			return
		}
		b.reset()
		free <- b
		select {
		case stored <- s:
		case <-finisherDone: // it could not finish a batch before ctx ended
			return
		}
	}
}

// storedBatch is a batch whose rows are stored: what the finisher still
// does with it.
type storedBatch[O any] struct {
	finish  func(context.Context) error
	rows    int
	outputs []O
	dead    []warehouse.DeadLetter
	offsets map[int]int64
	marks   map[int]time.Time
	start   time.Time
}

// storeRows stores the rows of b and returns what is left to do with it,
// which no longer refers to b's rows; it reports whether it did.
func (c *Consumer[R, O]) storeRows(ctx context.Context, b *batch[R, O], commit Committer) (*storedBatch[O], bool) {
	s := &storedBatch[O]{rows: len(b.rows), outputs: b.outputs, dead: b.dead, offsets: b.offsets,
		marks: b.marks, start: time.Now()}
	if commitFirst { // the fault suite's broken variant, never in a release build
		commit(b.offsets)
	}
	failpoint(c.topic, "before-store")
	if err := retry(ctx, c.log, "store "+c.topic+" batch", func(ctx context.Context) error {
		var err error
		s.finish, err = c.store(ctx, b.rows)
		return err
	}); err != nil {
		return nil, false
	}
	failpoint(c.topic, "after-store")
	return s, true
}

// finishLoop finishes each stored batch, in order, and hands what it
// finished to the committer whenever it is idle: after a batch, at every
// flush interval (when it was busy at the batch), and always at the end;
// those that wait while it commits go together.
func (c *Consumer[R, O]) finishLoop(ctx context.Context, stored <-chan *storedBatch[O], work chan<- commitWork) {
	defer close(work)
	p := &pending{offsets: map[int]int64{}, marks: map[int]time.Time{}}
	ticker := time.NewTicker(c.settings.FlushInterval)
	defer ticker.Stop()
	for {
		select {
		case s, ok := <-stored:
			if !ok {
				c.handOff(ctx, p, work, true)
				return
			}
			if !c.finish1(ctx, s, p) {
				return
			}
		case <-ticker.C:
		}
		c.handOff(ctx, p, work, false)
	}
}

// handOff gives what p holds to the committer and starts p afresh; unless
// wait is set it does so only when the committer is idle.
func (c *Consumer[R, O]) handOff(ctx context.Context, p *pending, work chan<- commitWork, wait bool) {
	if len(p.offsets) == 0 {
		return
	}
	w := commitWork{offsets: p.offsets}
	if c.eventTime != nil {
		w.marks = make([]warehouse.Watermark, 0, len(p.offsets))
		for partition, next := range p.offsets {
			w.marks = append(w.marks, warehouse.Watermark{Partition: partition, Offset: next, Time: p.marks[partition]})
		}
		slices.SortFunc(w.marks, func(a, b warehouse.Watermark) int { return a.Partition - b.Partition })
	}
	if wait {
		select {
		case work <- w:
		case <-ctx.Done():
			return
		}
	} else {
		select {
		case work <- w:
		default:
			return // the committer is busy: the next hand-off takes these too
		}
	}
	p.offsets = map[int]int64{}
}

// commitLoop makes each hand-off durable in order: it records the
// watermarks of the committed partitions, then commits their offsets. When a step cannot be done before
// ctx ends, nothing more is committed: the batches are replayed.
func (c *Consumer[R, O]) commitLoop(ctx context.Context, work <-chan commitWork, commit Committer) {
	failed := false
	for w := range work {
		if failed {
			continue
		}
		if !c.commit1(ctx, w, commit) {
			failed = true
		}
	}
}

func (c *Consumer[R, O]) commit1(ctx context.Context, w commitWork, commit Committer) bool {
	if c.eventTime != nil {
		// Not committing when this fails replays the batches, which is
		// harmless; committing without it would leave the restore of the
		// offset without the facts stored since the previous row.
		if err := retry(ctx, c.log, "record "+c.topic+" watermarks", func(ctx context.Context) error {
			return c.recordWatermarks(ctx, c.topic, w.marks)
		}); err != nil {
			return false
		}
	}
	failpoint(c.topic, "before-commit")
	if err := commit(w.offsets); err != nil {
		// The batches are stored; a replay of them is harmless, so carry on.
		c.log.Warn().Err(err).Msg("offset commit failed; the batches will be replayed and deduplicated")
		return true
	}
	c.log.Debug().Interface("offsets", w.offsets).Msg("committed")
	return true
}

// finish1 finishes a stored batch, publishes its outputs and dead letters,
// and adds it to what is pending; it reports whether it did.
func (c *Consumer[R, O]) finish1(ctx context.Context, s *storedBatch[O], p *pending) bool {
	if s.finish != nil {
		if err := retry(ctx, c.log, "finish storing "+c.topic+" batch", s.finish); err != nil {
			return false
		}
	}
	if err := retry(ctx, c.log, "publish what "+c.topic+" caused", func(ctx context.Context) error {
		return c.outputs.Publish(ctx, s.outputs)
	}); err != nil {
		return false
	}
	if err := retry(ctx, c.log, "record "+c.topic+" dead letters", func(ctx context.Context) error {
		return c.dead.Send(ctx, s.dead)
	}); err != nil {
		return false
	}
	for partition, next := range s.offsets {
		p.offsets[partition] = next
	}
	for partition, t := range s.marks {
		if t.After(p.marks[partition]) {
			p.marks[partition] = t
		}
	}
	c.stats.add(s.rows, len(s.dead), len(s.outputs))
	c.hooks().BatchDone(s.rows, len(s.dead), len(s.outputs), time.Since(s.start))
	c.log.Debug().Int("rows", s.rows).Int("dead", len(s.dead)).Dur("took", time.Since(s.start)).Msg("batch stored")
	return true
}

// batch gathers rows, dead letters and the next offset per partition, and,
// when eventTime is set, the highest event time of its rows per partition.
type batch[R, O any] struct {
	rows      []R
	capacity  int // rows a full batch holds
	outputs   []O
	dead      []warehouse.DeadLetter
	offsets   map[int]int64
	eventTime func(*R) time.Time
	marks     map[int]time.Time
}

// A batch starts with room for firstRows rows and doubles its room when
// full, up to its capacity and a slack of a sixteenth (at once when the
// broker holds enough to fill it: makeRoom); reset keeps the room, so a
// consumer's two batches grow in its first batches and then no more. Rows
// held are memory the heap grows into, and fresh memory is dear here
// (about 13 us per 4 KiB page on this VM, first touch): a batch that
// started with room for 65,536 rows held 14-15 MB for topics that bring a
// few hundred rows (churn.warnings, churn.task-updates), and a batch that
// outgrew it jumped to its full capacity, 32 MB for a billing batch of
// 75,000 rows. Growing by append's factor of 1.25 instead copied the rows
// of a CDR batch five times over. The slack is for the last chunk a batch
// takes, which ends past its capacity (a chunk is at most chunkSize
// messages): without it every CDR batch grew once more, from 200,000 rows
// to 250,000, 0.28 s of a 8.1 s profile.
const firstRows = 1 << 10

// grownRows is the most room a batch of capacity rows grows to.
func grownRows(capacity int) int { return capacity + capacity/16 }

func newBatch[R, O any](capacity int, eventTime func(*R) time.Time) *batch[R, O] {
	return &batch[R, O]{rows: make([]R, 0, min(capacity, firstRows)), capacity: capacity, offsets: map[int]int64{},
		eventTime: eventTime, marks: map[int]time.Time{}}
}

// addAll adds a chunk of items.
func (b *batch[R, O]) addAll(chunk []item[R, O]) {
	for i := range chunk {
		b.add(&chunk[i])
	}
}

// makeRoom gives b all the room it grows to at once when its rows, the n
// it is about to take and what the broker holds past them (backlog, per
// partition) would fill it: catching up, doubling from firstRows would
// only copy the rows eight times on the way (typedslicecopy, 0.34 s of an
// 8 s profile, in a consumer's first CDR batches).
func (b *batch[R, O]) makeRoom(n int, backlog map[int]int64) {
	if cap(b.rows) < grownRows(b.capacity) && fills(b.size()+n, backlog, b.capacity) {
		b.grow(grownRows(b.capacity))
	}
}

// grow makes room for rows rows, exactly: slices.Grow would take append's
// factor.
func (b *batch[R, O]) grow(rows int) {
	grown := make([]R, len(b.rows), rows)
	copy(grown, b.rows)
	b.rows = grown
}

func (b *batch[R, O]) add(it *item[R, O]) {
	if it.dead != nil {
		b.dead = append(b.dead, *it.dead)
	} else {
		if n := len(b.rows); n == cap(b.rows) {
			b.grow(max(min(2*n, grownRows(b.capacity)), n+1))
		}
		b.rows = append(b.rows, it.row)
		b.outputs = append(b.outputs, it.outputs...)
		if b.eventTime != nil {
			if t := b.eventTime(&it.row); t.After(b.marks[it.partition]) {
				b.marks[it.partition] = t
			}
		}
	}
	b.offsets[it.partition] = it.offset + 1
}

func (b *batch[R, O]) size() int   { return len(b.rows) + len(b.dead) }
func (b *batch[R, O]) empty() bool { return len(b.offsets) == 0 }

// reset empties b for its next rows. Its dead letters, outputs, offsets and
// marks start anew rather than being emptied in place: the finisher still
// holds the previous ones (storedBatch).
func (b *batch[R, O]) reset() {
	clear(b.rows)
	b.rows = b.rows[:0]
	b.dead = nil
	b.outputs = nil
	b.offsets = map[int]int64{}
	b.marks = map[int]time.Time{}
}

// Stats counts what a consumer stored; safe for concurrent use.
type Stats struct {
	mu       sync.Mutex
	stored   int64
	rejected int64
	outputs  int64
}

func (s *Stats) add(stored, rejected, outputs int) {
	s.mu.Lock()
	s.stored += int64(stored)
	s.rejected += int64(rejected)
	s.outputs += int64(outputs)
	s.mu.Unlock()
}

// Counts returns how many messages were stored, how many were
// dead-lettered and how many outputs (warnings, task versions) were
// published so far.
func (s *Stats) Counts() (stored, rejected, outputs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stored, s.rejected, s.outputs
}

// Retry backoff bounds.
const (
	initialBackoff = 100 * time.Millisecond
	maxBackoff     = 10 * time.Second
)

// retry runs fn until it succeeds or ctx ends, backing off exponentially up
// to maxBackoff and logging each failure, so an outage of ClickHouse or Kafka
// pauses the pipeline instead of losing or skipping data.
func retry(ctx context.Context, log zerolog.Logger, what string, fn func(context.Context) error) error {
	backoff := initialBackoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				log.Info().Str("op", what).Int("attempts", attempt).Msg("recovered")
			}
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		log.Warn().Err(err).Str("op", what).Int("attempt", attempt).Dur("retry_in", backoff).
			Msg("write failed; consumption is paused until it succeeds")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		}
		backoff = min(2*backoff, maxBackoff)
	}
}
