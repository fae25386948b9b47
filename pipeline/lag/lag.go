// Package lag measures how far a consumer group is behind the end of its
// topics, from the offsets the brokers hold. It does not consume anything.
package lag

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// Of returns how many messages of the topics the group has not committed
// yet, summed over every partition of the topics. A partition without a
// committed offset lags by all its messages.
func Of(ctx context.Context, client *kafka.Client, group string, topics []string) (int64, error) {
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	partitions := map[string][]int{}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return 0, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			partitions[t.Name] = append(partitions[t.Name], p.ID)
		}
	}
	byPartition, err := Partitions(ctx, client, group, partitions)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, parts := range byPartition {
		for _, l := range parts {
			n += l
		}
	}
	return n, nil
}

// Partitions returns the group's lag on the given partitions, by topic and
// partition: the high watermark minus the committed offset (the whole
// partition when the group never committed there).
func Partitions(ctx context.Context, client *kafka.Client, group string, partitions map[string][]int) (map[string]map[int]int64, error) {
	out := map[string]map[int]int64{}
	ends := map[string][]kafka.OffsetRequest{}
	for topic, ps := range partitions {
		for _, p := range ps {
			ends[topic] = append(ends[topic], kafka.LastOffsetOf(p))
		}
	}
	if len(ends) == 0 {
		return out, nil
	}
	last, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: ends})
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: partitions})
	if err != nil {
		return nil, fmt.Errorf("fetch the committed offsets of group %s: %w", group, err)
	}
	if committed.Error != nil {
		return nil, fmt.Errorf("fetch the committed offsets of group %s: %w", group, committed.Error)
	}
	for topic, parts := range last.Topics {
		done := map[int]int64{}
		for _, p := range committed.Topics[topic] {
			done[p.Partition] = max(p.CommittedOffset, 0)
		}
		out[topic] = map[int]int64{}
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("high watermark of %s/%d: %w", topic, p.Partition, p.Error)
			}
			out[topic][p.Partition] = max(p.LastOffset-done[p.Partition], 0)
		}
	}
	return out, nil
}
