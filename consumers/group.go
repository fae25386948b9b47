package consumers

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// Runner is a consumer of one topic, as the group drives it.
type Runner interface {
	Topic() string
	Run(ctx context.Context, assigned []kafka.PartitionAssignment, commit Committer) error
}

// GroupConfig says how to join the consumer group.
type GroupConfig struct {
	Brokers []string
	GroupID string
	// StartOffset is kafka.FirstOffset or kafka.LastOffset: where a partition
	// with no committed offset starts.
	StartOffset int64
	Dialer      *kafka.Dialer
}

// Group is one member of the consumer group that reads every input topic.
// Each generation (assignment) runs every topic's consumer on its partitions;
// when the generation ends (a rebalance) or ctx ends, the consumers store
// and commit what they fetched before the member moves on.
type Group struct {
	cfg     GroupConfig
	runners []Runner
	log     zerolog.Logger

	mu       sync.Mutex
	assigned map[string][]kafka.PartitionAssignment // of the running generation
}

// NewGroup returns a group member driving the given consumers.
func NewGroup(cfg GroupConfig, log zerolog.Logger, runners ...Runner) *Group {
	return &Group{cfg: cfg, runners: runners, log: log.With().Str("component", "group").Logger()}
}

// Run takes part in the consumer group until ctx is done and returns nil
// then. Failures to join are retried with backoff.
func (g *Group) Run(ctx context.Context) error {
	topics := make([]string, len(g.runners))
	for i, r := range g.runners {
		topics[i] = r.Topic()
	}
	if err := g.checkCoPartitioned(ctx, topics); err != nil || ctx.Err() != nil {
		return err
	}
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                g.cfg.GroupID,
		Brokers:           g.cfg.Brokers,
		Dialer:            g.cfg.Dialer,
		Topics:            topics,
		GroupBalancers:    []kafka.GroupBalancer{CoPartitionBalancer{}},
		StartOffset:       g.cfg.StartOffset,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		// Long enough for a member to store and commit what it fetched before
		// it rejoins; a member that misses it is dropped and rejoins anew.
		RebalanceTimeout: 60 * time.Second,
		JoinGroupBackoff: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			g.log.Debug().Msgf(format, args...)
		}),
	})
	if err != nil {
		return fmt.Errorf("consumer group %s: %w", g.cfg.GroupID, err)
	}
	defer cg.Close()
	backoff := initialBackoff
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			g.log.Warn().Err(err).Strs("brokers", g.cfg.Brokers).Dur("retry_in", backoff).
				Msg("cannot join the consumer group; is Kafka reachable? retrying")
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return nil
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = initialBackoff
		g.runGeneration(ctx, gen)
	}
}

// checkCoPartitioned refuses topics with unequal partition counts: the
// per-subscriber state relies on partition p of every topic holding the same
// subscribers. It waits while the brokers cannot be reached.
func (g *Group) checkCoPartitioned(ctx context.Context, topics []string) error {
	client := &kafka.Client{Addr: kafka.TCP(g.cfg.Brokers...), Timeout: 10 * time.Second}
	if g.cfg.Dialer != nil {
		client.Transport = &kafka.Transport{Dial: g.cfg.Dialer.DialFunc, SASL: g.cfg.Dialer.SASLMechanism, TLS: g.cfg.Dialer.TLS}
	}
	backoff := initialBackoff
	for {
		meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
		if err == nil {
			counts := map[string]int{}
			for _, t := range meta.Topics {
				if t.Error != nil {
					err = fmt.Errorf("topic %s: %w (create it with the same partition count as the others)", t.Name, t.Error)
					break
				}
				counts[t.Name] = len(t.Partitions)
			}
			if err == nil {
				for _, t := range topics[1:] {
					if counts[t] != counts[topics[0]] {
						return fmt.Errorf("topic %s has %d partitions but %s has %d: every topic the pipeline consumes must have "+
							"the same number of partitions, because they are co-partitioned by MSISDN", t, counts[t], topics[0], counts[topics[0]])
					}
				}
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		g.log.Warn().Err(err).Strs("brokers", g.cfg.Brokers).Dur("retry_in", backoff).Msg("cannot read topic metadata; is Kafka reachable? retrying")
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (g *Group) runGeneration(ctx context.Context, gen *kafka.Generation) {
	log := g.log.With().Int32("generation", gen.ID).Logger()
	assigned := zerolog.Dict()
	for topic, parts := range gen.Assignments {
		ids := make([]int, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		assigned.Ints(topic, ids)
	}
	log.Info().Dict("partitions", assigned).Msg("partitions assigned")
	g.setAssigned(gen.Assignments)
	defer g.setAssigned(nil)
	done := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		defer close(done)
		runCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(genCtx, cancel)
		defer stop()
		eg, egCtx := errgroup.WithContext(runCtx)
		for _, r := range g.runners {
			topic := r.Topic()
			commit := func(offsets map[int]int64) error {
				return gen.CommitOffsets(map[string]map[int]int64{topic: offsets})
			}
			eg.Go(func() error { return r.Run(egCtx, gen.Assignments[topic], commit) })
		}
		if err := eg.Wait(); err != nil {
			log.Warn().Err(err).Msg("consumer stopped with an error; rejoining the group")
		}
	})
	<-done
	log.Info().Msg("generation ended")
}

func (g *Group) setAssigned(a map[string][]kafka.PartitionAssignment) {
	g.mu.Lock()
	g.assigned = a
	g.mu.Unlock()
}

// Owns reports whether this member currently holds the partition of the
// topic. Holding partition 0 of the first topic makes an instance the one
// that runs the group's scheduled jobs: Kafka's group protocol already
// guarantees one holder at a time and hands it over when that one dies.
func (g *Group) Owns(topic string, partition int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, p := range g.assigned[topic] {
		if p.ID == partition {
			return true
		}
	}
	return false
}

// Leader reports whether this member holds partition 0 of the first topic.
func (g *Group) Leader() bool { return len(g.runners) > 0 && g.Owns(g.runners[0].Topic(), 0) }

// CoPartitionBalancer assigns partition p of every topic to the same member,
// so the member that owns a subscriber's CDRs also owns its billing and CRM
// events (all topics are keyed by MSISDN with equal partition counts).
// kafka-go's own balancers assign each topic independently.
type CoPartitionBalancer struct{}

// ProtocolName implements kafka.GroupBalancer.
func (CoPartitionBalancer) ProtocolName() string { return "churnwatch-copartition" }

// UserData implements kafka.GroupBalancer.
func (CoPartitionBalancer) UserData() ([]byte, error) { return nil, nil }

// AssignGroups implements kafka.GroupBalancer: partition numbers are split
// into contiguous ranges over the members sorted by ID.
func (CoPartitionBalancer) AssignGroups(members []kafka.GroupMember, partitions []kafka.Partition) kafka.GroupMemberAssignments {
	out := kafka.GroupMemberAssignments{}
	if len(members) == 0 {
		return out
	}
	sorted := append([]kafka.GroupMember(nil), members...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	numbers := map[int]bool{}
	for _, p := range partitions {
		numbers[p.ID] = true
	}
	ids := make([]int, 0, len(numbers))
	for id := range numbers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	owner := map[int]int{}
	for i, id := range ids {
		owner[id] = i * len(sorted) / len(ids)
	}
	for _, m := range sorted {
		out[m.ID] = map[string][]int{}
	}
	for _, p := range partitions {
		m := sorted[owner[p.ID]]
		if subscribed(m, p.Topic) {
			out[m.ID][p.Topic] = append(out[m.ID][p.Topic], p.ID)
		}
	}
	for _, byTopic := range out {
		for _, ps := range byTopic {
			sort.Ints(ps)
		}
	}
	return out
}

func subscribed(m kafka.GroupMember, topic string) bool {
	for _, t := range m.Topics {
		if t == topic {
			return true
		}
	}
	return false
}
