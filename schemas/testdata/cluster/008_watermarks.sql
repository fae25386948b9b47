-- Generated from schemas/clickhouse/008_watermarks.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

CREATE TABLE IF NOT EXISTS churnwatch.partition_watermarks_local ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    watermark       DateTime,
    recorded_at     DateTime
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/churnwatch/partition_watermarks_local', '{replica}')
PARTITION BY toYYYYMM(recorded_at)
ORDER BY (topic, kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS churnwatch.partition_watermarks ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    watermark       DateTime,
    recorded_at     DateTime
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, partition_watermarks_local, cityHash64(topic, kafka_partition, kafka_offset));
