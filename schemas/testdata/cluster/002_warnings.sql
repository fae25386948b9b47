-- Generated from schemas/clickhouse/002_warnings.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

CREATE TABLE IF NOT EXISTS churnwatch.warnings_local ON CLUSTER churnwatch_cluster
(
    warning_id      String,
    msisdn          String,
    signal          String,
    severity        Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    tier            String,
    detected_at     DateTime,
    window_start    DateTime,
    window_end      DateTime,
    evidence        String,
    score           UInt8,
    source          Enum8('realtime' = 1, 'daily' = 2),
    source_topic    String,
    kafka_partition Int32,
    kafka_offset    Int64
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/warnings_local', '{replica}')
PARTITION BY toYYYYMM(detected_at)
ORDER BY (msisdn, signal, warning_id);

CREATE TABLE IF NOT EXISTS churnwatch.warnings ON CLUSTER churnwatch_cluster
(
    warning_id      String,
    msisdn          String,
    signal          String,
    severity        Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    tier            String,
    detected_at     DateTime,
    window_start    DateTime,
    window_end      DateTime,
    evidence        String,
    score           UInt8,
    source          Enum8('realtime' = 1, 'daily' = 2),
    source_topic    String,
    kafka_partition Int32,
    kafka_offset    Int64
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, warnings_local, cityHash64(msisdn));
