package consumers

import "time"

// Metrics hands each consumer the hooks it reports to. Package ops
// implements it with Prometheus collectors; a consumer that was never
// instrumented reports to nothing.
type Metrics interface {
	Consumer(topic string) ConsumerMetrics
}

// ConsumerMetrics receives what one topic's consumer does. Calls come from
// several goroutines (one per partition reader, plus the batching loop), so
// implementations must be safe for concurrent use and cheap: Consumed is
// called once per message on the hot path.
type ConsumerMetrics interface {
	// Assigned is called when the consumer starts consuming a
	// generation's partitions (possibly none), once their state is
	// restored; Unassigned when it stops.
	Assigned(partitions []int)
	Unassigned()
	// Consumed counts one message fetched from Kafka.
	Consumed()
	// BatchDone reports a batch durably written (facts, outputs and dead
	// letters) before its offsets are committed, and how long that took.
	BatchDone(stored, rejected, outputs int, took time.Duration)
}

// Instrument makes the consumer report to m and returns it, for chaining
// at construction.
func (c *Consumer[R, O]) Instrument(m Metrics) *Consumer[R, O] {
	c.metrics = m.Consumer(c.topic)
	return c
}

// hooks returns the consumer's metrics, or hooks that discard everything.
func (c *Consumer[R, O]) hooks() ConsumerMetrics {
	if c.metrics == nil {
		return noMetrics{}
	}
	return c.metrics
}

type noMetrics struct{}

func (noMetrics) Assigned([]int)                         {}
func (noMetrics) Unassigned()                            {}
func (noMetrics) Consumed()                              {}
func (noMetrics) BatchDone(int, int, int, time.Duration) {}
