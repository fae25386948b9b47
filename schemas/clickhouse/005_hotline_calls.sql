-- Hotline calls for restoring real-time state. {db} is replaced by the configured database.
-- Runs on ClickHouse 18.16 and on current servers.

-- Every delivery of an MO call to a configured hotline or competitor hotline, as the cdr.voice
-- consumer stored it: one row per Kafka message, so a call the producer duplicated has a row
-- at each of its offsets. A plain MergeTree merges nothing away, unlike cdr, where only the
-- copy inserted last survives. A restarted consumer counts a call when any of its copies lies
-- below the committed offset (warehouse.HotlineCalls reads GROUP BY msisdn, event_id), so
-- repeated rows, of a replay or of the backfill below run twice, change nothing.
CREATE TABLE IF NOT EXISTS {db}.hotline_calls
(
    msisdn          String,
    event_id        String,
    peer            String,
    start_time      DateTime,
    kafka_partition Int32,
    kafka_offset    Int64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(start_time)
ORDER BY (kafka_partition, msisdn, event_id);

-- Backfill from the calls stored before this table existed (only their surviving copies are
-- left). The hotline numbers are configuration, so it takes every MO call whose peer is not a
-- mainland mobile number: service numbers of any length (10086, 1008611, 95555, 400...),
-- landlines and foreign numbers. The restore query keeps the configured numbers only.
INSERT INTO {db}.hotline_calls (msisdn, event_id, peer, start_time, kafka_partition, kafka_offset)
SELECT msisdn, event_id, peer, start_time, kafka_partition, kafka_offset
FROM {db}.cdr
WHERE direction = 'MO' AND NOT match(peer, '^[+]?(86)?1[0-9]{10}$');
