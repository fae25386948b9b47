package simulate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
)

// Writer settings of NewWriter, tuned for throughput: one produce request
// carries up to writerBatchSize records per partition, and a partly filled
// batch waits at most writerBatchTimeout.
const (
	writerBatchSize    = 2000
	writerBatchTimeout = 5 * time.Millisecond
	writerWriteTimeout = 30 * time.Second
	writerMaxAttempts  = 10
)

// produceChunk is how many messages Produce hands to the writer in one
// WriteMessages call when not rate-limited: enough to fill batches for every
// partition of all three topics in one round trip.
const produceChunk = 20000

// progressEvery is the least time between two progress log lines.
const progressEvery = 10 * time.Second

// NewWriter returns a synchronous kafka-go Writer for Produce: no default
// topic (every message names its own), murmur2 partitioning on the key like
// the Java client (so all topics are co-partitioned by subscriber), acks from
// all in-sync replicas, and large batches with a short linger. The caller
// closes it.
func NewWriter(conn kafkaconn.Conn) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(conn.Brokers...),
		Transport:    conn.Transport(),
		Balancer:     kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    writerBatchSize,
		BatchTimeout: writerBatchTimeout,
		WriteTimeout: writerWriteTimeout,
		MaxAttempts:  writerMaxAttempts,
	}
}

// Stats counts what Produce wrote. CDR, Billing and CRM count valid messages
// per topic; Invalid counts the deliberately invalid ones, whatever their
// topic; Messages counts them all.
type Stats struct {
	Messages, CDR, Billing, CRM, Invalid int64
}

// messageWriter is the part of *kafka.Writer that Produce uses.
type messageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// clock paces Produce; tests replace it.
type clock interface {
	Now() time.Time
	// SleepUntil waits until t or until ctx is done, and returns ctx's error then.
	SleepUntil(ctx context.Context, t time.Time) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Produce writes everything Generate emits for cfg to Kafka through w, in
// slices of messages, no faster than cfg.Rate messages a second when that is
// set, and returns what it wrote. The Kafka record timestamps are the time of
// writing, not the event times in the messages, so that weeks of history do
// not fall out of the topics' retention at once.
//
// It returns the first write error, or ctx's error if ctx ends first (test
// with errors.Is for context.Canceled to tell an interrupted run), together
// with the stats of everything written before.
func Produce(ctx context.Context, cfg Config, topics Topics, w *kafka.Writer, log zerolog.Logger) (Stats, error) {
	return produce(ctx, cfg, topics, w, log, wallClock{})
}

func produce(ctx context.Context, cfg Config, topics Topics, w messageWriter, log zerolog.Logger, clk clock) (Stats, error) {
	cfg = cfg.WithDefaults(clk.Now())
	topics = topics.withDefaults()
	log = log.With().Str("component", "simulate").Logger()
	p := &producer{
		ctx: ctx, cfg: cfg, topics: topics, w: w, log: log, clk: clk,
		chunk: produceChunk,
	}
	if cfg.Rate > 0 {
		p.chunk = int(min(max(cfg.Rate/10, 1), produceChunk)) // about ten writes a second
	}
	p.batch = make([]kafka.Message, 0, p.chunk)
	p.started = clk.Now()
	p.lastLog = p.started
	log.Info().
		Int("subscribers", cfg.Subscribers).Int64("seed", cfg.Seed).Int("days", cfg.Days).
		Time("from", cfg.End.AddDate(0, 0, -cfg.Days)).Time("to", cfg.End).
		Float64("rate", cfg.Rate).Float64("invalid_share", cfg.InvalidShare).
		Str("cdr_topic", topics.CDR).Str("billing_topic", topics.Billing).Str("crm_topic", topics.CRM).
		Msg("producing simulated events")
	err := Generate(cfg, topics, p.add)
	if err == nil {
		err = p.flush()
	}
	elapsed := clk.Now().Sub(p.started)
	ev := log.Info()
	if err != nil {
		ev = log.Warn().Err(err)
	}
	ev.Int64("messages", p.stats.Messages).Int64("cdr", p.stats.CDR).Int64("billing", p.stats.Billing).
		Int64("crm", p.stats.CRM).Int64("invalid", p.stats.Invalid).Dur("elapsed", elapsed).
		Float64("messages_per_s", perSecond(p.stats.Messages, elapsed)).
		Msg("simulation produced")
	return p.stats, err
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// producer collects generated messages into slices and writes them.
type producer struct {
	ctx     context.Context
	cfg     Config
	topics  Topics
	w       messageWriter
	log     zerolog.Logger
	clk     clock
	chunk   int
	batch   []kafka.Message
	pending Stats // counts of the messages in batch
	stats   Stats
	started time.Time
	lastLog time.Time
	last    time.Time // event time of the last message added
}

func (p *producer) add(m Message) error {
	p.batch = append(p.batch, kafka.Message{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value})
	p.pending.Messages++
	switch {
	case m.Invalid:
		p.pending.Invalid++
	case m.Topic == p.topics.CDR:
		p.pending.CDR++
	case m.Topic == p.topics.Billing:
		p.pending.Billing++
	case m.Topic == p.topics.CRM:
		p.pending.CRM++
	}
	p.last = m.Time
	if len(p.batch) < p.chunk {
		return nil
	}
	return p.flush()
}

// flush writes the collected messages, first waiting, when rate-limited,
// until the schedule allows the last of them.
func (p *producer) flush() error {
	if err := p.ctx.Err(); err != nil {
		return err
	}
	if len(p.batch) == 0 {
		return nil
	}
	if p.cfg.Rate > 0 {
		due := p.started.Add(time.Duration(float64(p.stats.Messages+p.pending.Messages) / p.cfg.Rate * float64(time.Second)))
		if err := p.clk.SleepUntil(p.ctx, due); err != nil {
			return err
		}
	}
	if err := p.w.WriteMessages(p.ctx, p.batch...); err != nil {
		if ctxErr := p.ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return ctxErr
		}
		return fmt.Errorf("simulate: write %d messages to kafka: %w", len(p.batch), err)
	}
	p.stats.Messages += p.pending.Messages
	p.stats.CDR += p.pending.CDR
	p.stats.Billing += p.pending.Billing
	p.stats.CRM += p.pending.CRM
	p.stats.Invalid += p.pending.Invalid
	p.pending = Stats{}
	clear(p.batch) // drop references to the values for the garbage collector
	p.batch = p.batch[:0]
	if now := p.clk.Now(); now.Sub(p.lastLog) >= progressEvery {
		p.lastLog = now
		elapsed := now.Sub(p.started)
		p.log.Info().Int64("messages", p.stats.Messages).Time("event_time", p.last).
			Float64("messages_per_s", perSecond(p.stats.Messages, elapsed)).Msg("simulation progress")
	}
	return nil
}
