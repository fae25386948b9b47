-- Value tiers and the monthly high-value snapshot (SPEC 3). {db} is replaced by the configured
-- database; every statement is idempotent. Runs on ClickHouse 18.16 and on current servers.

-- The average of the last three monthly bills the tier was computed from (0 without bills).
-- 18.16 has no ADD COLUMN IF NOT EXISTS: warehouse.Migrate runs a plain single-column
-- ALTER TABLE ... ADD COLUMN only when system.columns does not list the column yet.
ALTER TABLE {db}.subscribers ADD COLUMN bill_avg_fen Int64 DEFAULT 0 AFTER profile_tier;

-- The monthly snapshot (拍照) of the high-value base: diamond, gold and silver subscribers not
-- deactivated, as subscribers FINAL showed them when the snapshot was taken. month is the
-- first day of the month. A month is taken once and then frozen (warehouse.TakeSnapshot).
CREATE TABLE IF NOT EXISTS {db}.tier_snapshots
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
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(month)
ORDER BY (month, msisdn);

-- Retention (保有率) of each monthly snapshot: per month, region, tier and managers, the
-- snapshot's size (base), how many of them are still subscribers not deactivated now
-- (retained), how many are not (lost) and retained / base (retention_rate, 0 to 1).
CREATE VIEW IF NOT EXISTS {db}.snapshot_retention AS
SELECT
    month, region, tier, account_manager, phone_manager,
    count() AS base,
    sum(still_active) AS retained,
    countIf(still_active = 0) AS lost,
    round(retained / base, 4) AS retention_rate
FROM
(
    SELECT month, msisdn, region, tier, account_manager, phone_manager
    FROM {db}.tier_snapshots FINAL
)
ANY LEFT JOIN
(
    SELECT msisdn, toUInt64(status != 'deactivated') AS still_active
    FROM {db}.subscribers FINAL
) USING msisdn
GROUP BY month, region, tier, account_manager, phone_manager
ORDER BY month, region, tier, account_manager, phone_manager;
