-- The subscriber-days whose subscriber_daily row waits for a recompute. {db} is replaced by
-- the configured database. Runs on ClickHouse 18.16 and on current servers.

-- The cdr.voice and billing.events consumers store each batch's facts, then one row per
-- subscriber-day the batch touched: the topic (with its prefix), the partition and the highest
-- offset of the batch's facts of that day. Only then is the offset committed, so a crash
-- replays the batch and writes its rows again. The consumers do not recompute
-- subscriber_daily themselves: the refresh does, every ingest.refresh_interval and before
-- every daily evaluation (warehouse.RefreshPendingDaily).
CREATE TABLE IF NOT EXISTS {db}.subscriber_daily_pending
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    msisdn          String,
    day             Date,
    recorded_at     DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(recorded_at)
ORDER BY (topic, kafka_partition, kafka_offset);

-- How far the refresh has come: after recomputing every subscriber-day of the pending rows it
-- read, the refresh writes, per topic and partition, the highest offset among them. A pending
-- row at or below it is done; later rows of a partition carry higher offsets, except those a
-- replay writes again, whose facts were already counted. The highest offset wins.
CREATE TABLE IF NOT EXISTS {db}.subscriber_daily_refreshed
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    refreshed_at    DateTime
)
ENGINE = ReplacingMergeTree(kafka_offset)
ORDER BY (topic, kafka_partition);
