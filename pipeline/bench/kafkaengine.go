package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/segmentio/kafka-go"

	"churnwatch/pipeline/kafkaconn"
	"churnwatch/pipeline/warehouse"
)

// The comparison: ClickHouse's Kafka table engine (default settings, one
// consumer) reading the CDR topic, a materialized view converting each row
// into the columns of the pipeline's cdr table, into a table with cdr's
// engine, partitioning and sorting key. The view has no validation, no
// dedup, no DLQ and no signals.
const (
	engineQueue = `CREATE TABLE {db}.ch_cdr_queue (
    event_id String, msisdn String, peer String, direction String, start_time String,
    duration_s Int64, peer_network String, forward_to String, cell_id String
) ENGINE = Kafka SETTINGS kafka_broker_list = '{brokers}', kafka_topic_list = '{topic}',
    kafka_group_name = '{group}', kafka_format = 'JSONEachRow'`
	engineTarget = `CREATE TABLE {db}.{target} (
    event_id String, msisdn String, peer String, peer_network String, network_derived UInt8,
    direction Enum8('MO' = 1, 'MT' = 2, 'FWD' = 3), start_time DateTime, day Date, duration_s UInt32,
    forward_to String, cell_id String, kafka_partition Int32, kafka_offset Int64, ingested_at DateTime
) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(day) ORDER BY (msisdn, start_time, event_id)`
	engineView = `CREATE MATERIALIZED VIEW {db}.ch_cdr_mv TO {db}.{target} AS
SELECT event_id, msisdn, peer, peer_network, toUInt8(0) AS network_derived,
    CAST(direction AS Enum8('MO' = 1, 'MT' = 2, 'FWD' = 3)) AS direction,
    parseDateTimeBestEffort(start_time) AS start_time, toDate(start_time) AS day,
    toUInt32(duration_s) AS duration_s, forward_to, cell_id, toInt32(0) AS kafka_partition,
    toInt64(0) AS kafka_offset, now() AS ingested_at
FROM {db}.ch_cdr_queue`
)

// engineRun is what kafkaEngine measured: rows ingested in elapsed, and
// the CPU used meanwhile.
type engineRun struct {
	rows    int64
	elapsed time.Duration
	// first is when the target first had rows (to the poll's 100 ms): the
	// engine writes them in blocks of up to min_insert_block_size_rows
	// (1,048,576), so this is not when it began to consume.
	first time.Duration
	use   phaseUse
}

// kafkaEngine times ClickHouse's Kafka engine ingesting every message of
// topic, from creating the materialized view (which starts consumption)
// until the target table (ch_cdr_<round>) holds them all, and measures the
// CPU over that time (the server's when it runs at chAddr on this
// machine). The engine's consumer group gets offset 0 committed on every
// partition first: that makes librdkafka start at the beginning of the
// pre-loaded topic without a server-side auto_offset_reset setting.
//
// Afterwards it drops the queue and the view at once (they hold no data
// files, and the engine consumes nothing more), waits for the target's
// merges to end, so that they do not run into the next measurement, and
// leaves the target's drop to the end of the bench (later): on this VM's
// file system (ext4 without a journal) every file created in the minutes
// after a mass delete first skips the recently deleted inodes one by one,
// and a drop mid-run made the files of the next measurement's parts cost
// hundreds of microseconds each.
func kafkaEngine(ctx context.Context, wh *warehouse.Warehouse, chAddr string, kconn kafkaconn.Conn, topic string, round int,
	later *cleanups, log zerolog.Logger) (engineRun, error) {
	var run engineRun
	client := kconn.Client(10 * time.Second)
	ends, err := endOffsets(ctx, client, []string{topic})
	if err != nil {
		return run, err
	}
	var total int64
	var commits []kafka.OffsetCommit
	for p, last := range ends[topic] {
		total += last
		commits = append(commits, kafka.OffsetCommit{Partition: p, Offset: 0})
	}
	suffix := make([]byte, 4)
	rand.Read(suffix)
	group := "clickhouse-bench-" + hex.EncodeToString(suffix)
	cr, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{topic: commits}})
	if err != nil {
		return run, fmt.Errorf("commit offset 0 for the engine's group: %w", err)
	}
	for _, ps := range cr.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return run, fmt.Errorf("commit offset 0 for the engine's group, partition %d: %w", p.Partition, p.Error)
			}
		}
	}

	db := wh.Database()
	target := fmt.Sprintf("ch_cdr_%d", round)
	r := strings.NewReplacer("{db}", db, "{target}", target, "{brokers}", strings.Join(kconn.Brokers, ","), "{topic}", topic, "{group}", group)
	conn := wh.Conn()
	drop := func(tables ...string) {
		c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, t := range tables {
			if err := conn.Exec(c, "DROP TABLE IF EXISTS "+db+"."+t); err != nil {
				log.Warn().Err(err).Str("table", t).Msg("could not drop the Kafka engine's table")
			}
		}
	}
	later.add(func() { drop(target) })
	defer func() {
		drop("ch_cdr_mv", "ch_cdr_queue")
		settle(ctx, wh, log)
	}()
	for _, q := range []string{engineQueue, engineTarget} {
		if err := conn.Exec(ctx, r.Replace(q)); err != nil {
			return run, fmt.Errorf("%s: %w", strings.SplitN(r.Replace(q), "(", 2)[0], err)
		}
	}
	meter := StartCPU(chAddr)
	start := time.Now()
	if err := conn.Exec(ctx, r.Replace(engineView)); err != nil {
		return run, fmt.Errorf("create the materialized view: %w", err)
	}
	best, since := uint64(0), time.Now()
	for {
		n, err := count(ctx, wh, "SELECT count() FROM "+db+"."+target)
		if err != nil {
			return run, err
		}
		if int64(n) >= total {
			run.rows, run.elapsed, run.use = total, time.Since(start), meter.stop()
			return run, nil
		}
		if n > 0 && run.first == 0 {
			run.first = time.Since(start)
		}
		if n > best {
			best, since = n, time.Now()
		}
		if time.Since(since) > stallTimeout {
			return run, fmt.Errorf("the Kafka engine stored %d of %d rows and nothing more for %s", n, total, stallTimeout)
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
