package consumers

import (
	"context"
	"fmt"
	"strconv"

	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/warehouse"
)

// DeadLetterStore keeps rejected messages in ClickHouse.
type DeadLetterStore interface {
	InsertDeadLetters(ctx context.Context, rows []warehouse.DeadLetter) error
}

// MessageWriter is the part of a kafka-go Writer the DLQ uses.
type MessageWriter interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// DeadLetterQueue sends every rejected message, unchanged, to
// <topic><suffix> with the headers of SPEC section 2 (error, source-topic,
// source-partition, source-offset), and records it in dead_letters.
type DeadLetterQueue struct {
	writer MessageWriter
	store  DeadLetterStore
	suffix string
}

// NewDeadLetterQueue returns a DLQ writing to topics named <topic><suffix>.
// The writer must acknowledge synchronously (kafka-go's default, not Async).
func NewDeadLetterQueue(w MessageWriter, store DeadLetterStore, suffix string) *DeadLetterQueue {
	return &DeadLetterQueue{writer: w, store: store, suffix: suffix}
}

// Send implements DeadLetterSink. A replay may send a letter twice; the
// source-topic/partition/offset headers identify duplicates, and the table
// merges them away.
func (q *DeadLetterQueue) Send(ctx context.Context, letters []warehouse.DeadLetter) error {
	if len(letters) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(letters))
	for i, l := range letters {
		msgs[i] = kafka.Message{
			Topic: l.Topic + q.suffix,
			Key:   l.Key,
			Value: l.Raw,
			Headers: []kafka.Header{
				{Key: "error", Value: []byte(l.Error)},
				{Key: "source-topic", Value: []byte(l.Topic)},
				{Key: "source-partition", Value: []byte(strconv.Itoa(int(l.Partition)))},
				{Key: "source-offset", Value: []byte(strconv.FormatInt(l.Offset, 10))},
			},
		}
	}
	if err := q.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce %d dead letters: %w", len(msgs), err)
	}
	return q.store.InsertDeadLetters(ctx, letters)
}
