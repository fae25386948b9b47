-- Generated from schemas/clickhouse/005_hotline_calls.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

CREATE TABLE IF NOT EXISTS churnwatch.hotline_calls_local ON CLUSTER churnwatch_cluster
(
    msisdn          String,
    event_id        String,
    peer            String,
    start_time      DateTime,
    kafka_partition Int32,
    kafka_offset    Int64
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/churnwatch/hotline_calls_local', '{replica}')
PARTITION BY toYYYYMM(start_time)
ORDER BY (kafka_partition, msisdn, event_id);

CREATE TABLE IF NOT EXISTS churnwatch.hotline_calls ON CLUSTER churnwatch_cluster
(
    msisdn          String,
    event_id        String,
    peer            String,
    start_time      DateTime,
    kafka_partition Int32,
    kafka_offset    Int64
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, hotline_calls_local, cityHash64(msisdn));

INSERT INTO churnwatch.hotline_calls (msisdn, event_id, peer, start_time, kafka_partition, kafka_offset)
SELECT msisdn, event_id, peer, start_time, kafka_partition, kafka_offset
FROM churnwatch.cdr
WHERE direction = 'MO' AND NOT match(peer, '^[+]?(86)?1[0-9]{10}$');
