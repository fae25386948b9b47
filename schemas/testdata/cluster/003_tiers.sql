-- Generated from schemas/clickhouse/003_tiers.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

ALTER TABLE churnwatch.subscribers_local ON CLUSTER churnwatch_cluster ADD COLUMN bill_avg_fen Int64 DEFAULT 0 AFTER profile_tier;

ALTER TABLE churnwatch.subscribers ON CLUSTER churnwatch_cluster ADD COLUMN bill_avg_fen Int64 DEFAULT 0 AFTER profile_tier;

CREATE TABLE IF NOT EXISTS churnwatch.tier_snapshots_local ON CLUSTER churnwatch_cluster
(
    month           Date,
    msisdn          String,
    tier            String,
    region          String,
    account_manager String,
    phone_manager   String,
    status          String,
    bill_avg_fen    Int64,
    taken_at        DateTime
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/tier_snapshots_local', '{replica}')
PARTITION BY toYYYYMM(month)
ORDER BY (month, msisdn);

CREATE TABLE IF NOT EXISTS churnwatch.tier_snapshots ON CLUSTER churnwatch_cluster
(
    month           Date,
    msisdn          String,
    tier            String,
    region          String,
    account_manager String,
    phone_manager   String,
    status          String,
    bill_avg_fen    Int64,
    taken_at        DateTime
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, tier_snapshots_local, cityHash64(msisdn));

CREATE VIEW IF NOT EXISTS churnwatch.snapshot_retention ON CLUSTER churnwatch_cluster AS
SELECT
    month, region, tier, account_manager, phone_manager,
    count() AS base,
    sum(still_active) AS retained,
    countIf(still_active = 0) AS lost,
    round(retained / base, 4) AS retention_rate
FROM
(
    SELECT month, msisdn, region, tier, account_manager, phone_manager
    FROM churnwatch.tier_snapshots FINAL
)
ANY LEFT JOIN
(
    SELECT msisdn, toUInt64(status != 'deactivated') AS still_active
    FROM churnwatch.subscribers FINAL
) USING msisdn
GROUP BY month, region, tier, account_manager, phone_manager
ORDER BY month, region, tier, account_manager, phone_manager;
