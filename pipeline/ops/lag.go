package ops

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/lag"
)

// DefaultLagInterval is how often the lag monitor asks the brokers.
const DefaultLagInterval = 5 * time.Second

// LagMonitor measures the consumer group's lag on the partitions assigned
// to this instance: the partition's high watermark minus the group's
// committed offset, asked of the brokers (ListOffsets, OffsetFetch). We ask
// the brokers rather than read the partition readers' statistics because
// the committed offset is what a restart resumes from: it includes what was
// fetched but not yet stored, which is exactly the backlog an outage of
// ClickHouse builds up.
type LagMonitor struct {
	client   *kafka.Client
	group    string
	interval time.Duration
	m        *Metrics
	log      zerolog.Logger
}

// NewLagMonitor returns a monitor of group's lag on the brokers of conn,
// reporting to m every interval (DefaultLagInterval when zero).
func NewLagMonitor(conn kafkaconn.Conn, group string, interval time.Duration, m *Metrics, log zerolog.Logger) *LagMonitor {
	if interval <= 0 {
		interval = DefaultLagInterval
	}
	return &LagMonitor{
		client: conn.Client(5 * time.Second),
		group:  group, interval: interval, m: m,
		log: log.With().Str("component", "lag").Logger(),
	}
}

// Run measures the lag every interval until ctx ends, and returns nil then.
// A failed measurement is reported (the dashboard shows it) and retried at
// the next tick; it never stops the pipeline.
func (l *LagMonitor) Run(ctx context.Context) error {
	failing := false
	for {
		assigned, _ := l.m.Assignment()
		lags, err := l.Measure(ctx, assigned)
		if ctx.Err() != nil {
			return nil
		}
		l.m.setLag(lags, err)
		if err != nil && !failing {
			l.log.Warn().Err(err).Msg("cannot measure consumer lag; is Kafka reachable? retrying")
		}
		failing = err != nil
		wait := l.interval
		if len(lags) == 0 {
			wait = min(wait, time.Second) // waiting for an assignment: look again soon
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Measure returns the group's lag on the given partitions, by topic and
// partition. A partition the group never committed lags by everything it
// holds.
func (l *LagMonitor) Measure(ctx context.Context, partitions map[string][]int) (map[string]map[int]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return lag.Partitions(ctx, l.client, l.group, partitions)
}
