package consumers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/consumers"
	"churnwatch/pipeline/testenv"
)

// TestCoPartitionBalancer checks that each member gets the same partition
// numbers of every topic, that every partition has exactly one owner, and
// that the split is even.
func TestCoPartitionBalancer(t *testing.T) {
	topics := []string{"cdr.voice", "billing.events", "crm.events"}
	for _, tc := range []struct{ members, partitions int }{{1, 4}, {2, 4}, {3, 12}, {4, 3}} {
		t.Run(fmt.Sprintf("%d members %d partitions", tc.members, tc.partitions), func(t *testing.T) {
			var members []kafka.GroupMember
			for i := 0; i < tc.members; i++ {
				members = append(members, kafka.GroupMember{ID: fmt.Sprintf("m-%d", tc.members-i), Topics: topics})
			}
			var parts []kafka.Partition
			for _, topic := range topics {
				for p := 0; p < tc.partitions; p++ {
					parts = append(parts, kafka.Partition{Topic: topic, ID: p})
				}
			}
			got := consumers.CoPartitionBalancer{}.AssignGroups(members, parts)
			owners := map[string]string{}
			for member, byTopic := range got {
				first := fmt.Sprint(byTopic[topics[0]])
				for _, topic := range topics {
					if fmt.Sprint(byTopic[topic]) != first {
						t.Errorf("member %s: %s gets %v but %s gets %s", member, topic, byTopic[topic], topics[0], first)
					}
					for _, p := range byTopic[topic] {
						key := fmt.Sprintf("%s/%d", topic, p)
						if prev, ok := owners[key]; ok {
							t.Errorf("%s owned by %s and %s", key, prev, member)
						}
						owners[key] = member
					}
				}
				if n := len(byTopic[topics[0]]); tc.partitions >= tc.members && (n < tc.partitions/tc.members || n > tc.partitions/tc.members+1) {
					t.Errorf("member %s has %d partitions of %d over %d members", member, n, tc.partitions, tc.members)
				}
			}
			if len(owners) != len(parts) {
				t.Errorf("%d of %d partitions assigned", len(owners), len(parts))
			}
		})
	}
}

type idleRunner struct{ topic string }

func (r idleRunner) Topic() string { return r.topic }
func (r idleRunner) Run(ctx context.Context, _ []kafka.PartitionAssignment, _ consumers.Committer) error {
	<-ctx.Done()
	return nil
}

// TestUnequalPartitionsRefused starts a group over topics with different
// partition counts on a real broker: it must refuse with a clear error.
func TestUnequalPartitionsRefused(t *testing.T) {
	b := testenv.Broker(t, 2, "a", "b")
	if err := b.CreateTopics(3, "c"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := consumers.NewGroup(consumers.GroupConfig{Brokers: b.Addrs(), GroupID: "g", StartOffset: kafka.FirstOffset}, zerolog.Nop(),
		idleRunner{"a"}, idleRunner{"b"}, idleRunner{"c"})
	err := g.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "topic c has 3 partitions but a has 2") {
		t.Fatalf("Run = %v, want a refusal naming the topics", err)
	}
	// Equal counts start (and stop cleanly on cancellation), holding every partition.
	ctx2, cancel2 := context.WithCancel(context.Background())
	g = consumers.NewGroup(consumers.GroupConfig{Brokers: b.Addrs(), GroupID: "g2", StartOffset: kafka.FirstOffset}, zerolog.Nop(), idleRunner{"a"}, idleRunner{"b"})
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx2) }()
	testenv.Eventually(t, 20*time.Second, func() error {
		if !g.Leader() || !g.Owns("b", 1) {
			return fmt.Errorf("the only member does not hold every partition yet")
		}
		return nil
	})
	cancel2()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel = %v", err)
	}
}
