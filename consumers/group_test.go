package consumers

import (
	"fmt"
	"testing"

	"github.com/segmentio/kafka-go"
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
			got := CoPartitionBalancer{}.AssignGroups(members, parts)
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
