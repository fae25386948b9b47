package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/schemas"
)

// Store is what the owner reads from and writes to ClickHouse.
type Store interface {
	PartitionTasks(ctx context.Context, partition int, keepClosed time.Duration) ([]Stored, error)
	OpenTaskLoads(ctx context.Context) (map[string]int, error)
	InsertTasks(ctx context.Context, rows []Row) error
}

// MessageWriter is the part of a kafka-go Writer the publisher uses.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Clock tells the time; tests pass a controllable one.
type Clock interface{ Now() time.Time }

// Row is one task version ready for the tasks table and churn.tasks.
type Row struct {
	schemas.Task
	Cause     string
	Escalated bool
	Partition int32
	// UpdatedBy and Note come from the ticketing update that made the
	// version (empty otherwise); churn.tasks does not carry them.
	UpdatedBy, Note string
}

// Stored is a task's latest version as stored, with every cause that was
// applied to it.
type Stored struct {
	Row
	Causes []string
}

// Publisher writes task versions to the tasks table and to churn.tasks,
// keyed by task id so that ticketing can upsert.
type Publisher struct {
	store  Store
	writer MessageWriter
	topic  string
}

// NewPublisher returns a publisher producing to topic.
func NewPublisher(store Store, w MessageWriter, topic string) *Publisher {
	return &Publisher{store: store, writer: w, topic: topic}
}

// Publish stores and produces versions; safe to repeat.
func (p *Publisher) Publish(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	if err := p.store.InsertTasks(ctx, rows); err != nil {
		return err
	}
	msgs := make([]kafka.Message, len(rows))
	for i, r := range rows {
		v, err := json.Marshal(r.Task)
		if err != nil {
			return err
		}
		msgs[i] = kafka.Message{Topic: p.topic, Key: []byte(r.TaskID), Value: v}
	}
	if err := p.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d task versions to %s: %w", len(msgs), p.topic, err)
	}
	return nil
}

// Owner holds the engines of the partitions this instance owns. The
// consumers of churn.warnings and churn.task-updates acquire a partition's
// engine when they are assigned it (restoring it from ClickHouse once) and
// release it when the assignment ends; the escalation check walks the
// engines held.
type Owner struct {
	cfg       Config
	store     Store
	publisher *Publisher
	clock     Clock
	log       zerolog.Logger

	mu      sync.Mutex
	engines map[int]*owned
}

type owned struct {
	mu     sync.Mutex
	engine *Engine
	refs   int
}

// NewOwner returns an owner holding no partition yet.
func NewOwner(cfg Config, store Store, publisher *Publisher, clock Clock, log zerolog.Logger) *Owner {
	return &Owner{cfg: cfg, store: store, publisher: publisher, clock: clock, engines: map[int]*owned{},
		log: log.With().Str("component", "tasks").Logger()}
}

// Acquire returns the partition's engine, restoring it if this instance
// does not hold it yet. Every Acquire is paired with a Release.
func (o *Owner) Acquire(ctx context.Context, partition int) (*Handle, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if own := o.engines[partition]; own != nil {
		own.refs++
		return &Handle{owner: o, partition: partition, own: own}, nil
	}
	stored, err := o.store.PartitionTasks(ctx, partition, o.cfg.Cooldown+24*time.Hour)
	if err != nil {
		return nil, err
	}
	loads, err := o.store.OpenTaskLoads(ctx)
	if err != nil {
		return nil, err
	}
	versions := make([]Version, len(stored))
	causes := map[string][]string{}
	for i, s := range stored {
		versions[i] = Version{Task: s.Task, Cause: s.Cause, Escalated: s.Escalated}
		causes[s.TaskID] = s.Causes
	}
	e := NewEngine(o.cfg, versions, causes)
	e.SetLoad(loads)
	own := &owned{engine: e, refs: 1}
	o.engines[partition] = own
	o.log.Debug().Int("partition", partition).Int("tasks", len(stored)).Msg("task state restored")
	return &Handle{owner: o, partition: partition, own: own}, nil
}

// Handle is a consumer's hold on one partition's engine.
type Handle struct {
	owner     *Owner
	partition int
	own       *owned
	released  bool
}

// Release gives the engine back; the last release forgets it, so that the
// next assignment restores what other instances may have changed.
func (h *Handle) Release() {
	o := h.owner
	o.mu.Lock()
	defer o.mu.Unlock()
	if h.released {
		return
	}
	h.released = true
	if h.own.refs--; h.own.refs == 0 {
		delete(o.engines, h.partition)
	}
}

func (h *Handle) rows(vs []Version) []Row {
	out := make([]Row, len(vs))
	for i, v := range vs {
		out[i] = Row{Task: v.Task, Cause: v.Cause, Escalated: v.Escalated, Partition: int32(h.partition),
			UpdatedBy: v.UpdatedBy, Note: v.Note}
	}
	return out
}

// OnWarning applies a warning from churn.warnings.
func (h *Handle) OnWarning(w schemas.Warning) []Row {
	h.own.mu.Lock()
	defer h.own.mu.Unlock()
	if v, ok := h.own.engine.OnWarning(w); ok {
		return h.rows([]Version{v})
	}
	return nil
}

// OnUpdate applies a ticketing update; an error is the reason to reject it.
func (h *Handle) OnUpdate(u schemas.TaskUpdate) ([]Row, error) {
	h.own.mu.Lock()
	defer h.own.mu.Unlock()
	v, ok, err := h.own.engine.OnUpdate(u)
	if err != nil || !ok {
		return nil, err
	}
	return h.rows([]Version{v}), nil
}

// EscalateNow escalates every overdue task of the partitions held, at the
// clock's time, and publishes the new versions. It returns how many.
func (o *Owner) EscalateNow(ctx context.Context) (int, error) {
	now := o.clock.Now()
	o.mu.Lock()
	parts := make([]int, 0, len(o.engines))
	for p := range o.engines {
		parts = append(parts, p)
	}
	o.mu.Unlock()
	sort.Ints(parts)
	var rows []Row
	for _, p := range parts {
		o.mu.Lock()
		own := o.engines[p]
		o.mu.Unlock()
		if own == nil {
			continue
		}
		own.mu.Lock()
		vs := own.engine.Escalate(now)
		own.mu.Unlock()
		h := &Handle{partition: p}
		rows = append(rows, h.rows(vs)...)
	}
	if err := o.publisher.Publish(ctx, rows); err != nil {
		return 0, err
	}
	if len(rows) > 0 {
		o.log.Info().Int("escalated", len(rows)).Msg("overdue tasks escalated")
	}
	return len(rows), nil
}

// Run checks for overdue tasks on the configured schedule until ctx ends.
func (o *Owner) Run(ctx context.Context) error {
	c := cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := c.AddFunc(o.cfg.EscalationSchedule, func() {
		if _, err := o.EscalateNow(ctx); err != nil && ctx.Err() == nil {
			o.log.Warn().Err(err).Msg("escalation check failed; it runs again at the next tick")
		}
	}); err != nil {
		return fmt.Errorf("tasks.escalation_schedule %q: %w", o.cfg.EscalationSchedule, err)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}
