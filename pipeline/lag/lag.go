// Package lag measures how far a consumer group is behind the end of its
// topics, from the offsets the brokers hold. It does not consume anything.
package lag

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Of returns how many messages of the topics the group has not committed
// yet, summed over partitions. A partition without a committed offset lags
// by all its messages.
func Of(ctx context.Context, client *kafka.Client, group string, topics []string) (int64, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	ends := map[string][]kafka.OffsetRequest{}
	fetch := map[string][]int{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return 0, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			ends[t.Name] = append(ends[t.Name], kafka.LastOffsetOf(p.ID))
			fetch[t.Name] = append(fetch[t.Name], p.ID)
		}
	}
	last, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: fetch})
	if err != nil {
		return 0, fmt.Errorf("fetch the committed offsets of group %s: %w", group, err)
	}
	var n int64
	for topic, parts := range last.Topics {
		done := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			done[p.Partition] = max(p.CommittedOffset, 0)
		}
		for _, p := range parts {
			if p.Error != nil {
				return 0, fmt.Errorf("last offset of %s/%d: %w", topic, p.Partition, p.Error)
			}
			n += p.LastOffset - done[p.Partition]
		}
	}
	return n, nil
}
