-- Partition watermarks for restoring real-time state. {db} is replaced by the configured database.
-- Runs on ClickHouse 18.16 and on current servers.

-- At every offset commit, the cdr.voice, billing.events and crm.events consumers write one row
-- per committed partition: the topic (with its prefix), the partition, the committed offset
-- (the next one to read) and the highest event time the consumer stored on that partition since
-- its assignment. The highest event time of every fact below a committed offset is then
-- max(watermark) over the rows at or below it (warehouse.PartitionWatermark), a read of a few
-- rows at the head of the sorting key instead of a scan of the fact table. Rows of a replay, or
-- of a commit that failed, only repeat what is true of the facts already stored.
CREATE TABLE IF NOT EXISTS {db}.partition_watermarks
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    watermark       DateTime,
    recorded_at     DateTime
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(recorded_at)
ORDER BY (topic, kafka_partition, kafka_offset);
