-- Generated from schemas/clickhouse/009_daily_pending.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

CREATE TABLE IF NOT EXISTS churnwatch.subscriber_daily_pending_local ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    msisdn          String,
    day             Date,
    recorded_at     DateTime
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/churnwatch/subscriber_daily_pending_local', '{replica}')
PARTITION BY toYYYYMMDD(recorded_at)
ORDER BY (topic, kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS churnwatch.subscriber_daily_pending ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    msisdn          String,
    day             Date,
    recorded_at     DateTime
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, subscriber_daily_pending_local, cityHash64(msisdn));

CREATE TABLE IF NOT EXISTS churnwatch.subscriber_daily_refreshed_local ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    refreshed_at    DateTime
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/subscriber_daily_refreshed_local', '{replica}', kafka_offset)
ORDER BY (topic, kafka_partition);

CREATE TABLE IF NOT EXISTS churnwatch.subscriber_daily_refreshed ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    refreshed_at    DateTime
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, subscriber_daily_refreshed_local, cityHash64(topic, kafka_partition));
