-- Generated from schemas/clickhouse/006_outcomes.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

ALTER TABLE churnwatch.warnings_local ON CLUSTER churnwatch_cluster ADD COLUMN rule_version String DEFAULT '';

ALTER TABLE churnwatch.warnings ON CLUSTER churnwatch_cluster ADD COLUMN rule_version String DEFAULT '';

CREATE VIEW IF NOT EXISTS churnwatch.churns ON CLUSTER churnwatch_cluster AS
SELECT
    msisdn,
    min(ts) AS churned_at,
    argMin(day, ts) AS churn_day
FROM churnwatch.crm_events FINAL
WHERE type = 'DEACTIVATE' OR profile_status IN ('inactive', 'deactivated')
GROUP BY msisdn;

CREATE VIEW IF NOT EXISTS churnwatch.warning_outcomes ON CLUSTER churnwatch_cluster AS
SELECT
    signal,
    rule_version,
    msisdn,
    tier,
    n_warnings,
    first_warned_at,
    churned_at,
    toUInt32(churned_at) > toUInt32(first_warned_at) AS churned,
    if(churned, round((toInt64(churned_at) - toInt64(first_warned_at)) / 86400, 2), NULL) AS lead_days,
    churned AND toInt64(churned_at) - toInt64(first_warned_at) <= 30 * 86400 AS churned_within_30,
    churned AND toInt64(churned_at) - toInt64(first_warned_at) <= 60 * 86400 AS churned_within_60,
    churned AND toInt64(churned_at) - toInt64(first_warned_at) <= 90 * 86400 AS churned_within_90,
    has_task,
    task_retained,
    task_lost,
    tier_churn_rate
FROM
(
    SELECT signal, rule_version, msisdn, tier, n_warnings, first_warned_at, churned_at, has_task, task_retained, task_lost
    FROM
    (
        SELECT signal, rule_version, msisdn, tier, n_warnings, first_warned_at, churned_at
        FROM
        (
            SELECT signal, rule_version, msisdn, argMin(tier, detected_at) AS tier, count() AS n_warnings,
                min(detected_at) AS first_warned_at
            FROM churnwatch.warnings FINAL
            GROUP BY signal, rule_version, msisdn
        )
        ANY LEFT JOIN (SELECT msisdn, churned_at FROM churnwatch.churns) USING msisdn
    )
    ANY LEFT JOIN
    (
        SELECT msisdn, arrayJoin(signals) AS signal, 1 AS has_task, max(retained) AS task_retained, max(lost) AS task_lost
        FROM churnwatch.task_outcomes
        GROUP BY msisdn, signal
    ) USING msisdn, signal
)
ANY LEFT JOIN
(
    SELECT tier, avg(toUInt32(churned_at) > 0) AS tier_churn_rate
    FROM (SELECT msisdn, tier FROM churnwatch.subscribers FINAL)
    ANY LEFT JOIN (SELECT msisdn, churned_at FROM churnwatch.churns) USING msisdn
    GROUP BY tier
) USING tier;

CREATE VIEW IF NOT EXISTS churnwatch.signal_outcomes ON CLUSTER churnwatch_cluster AS
SELECT
    signal,
    rule_version,
    sum(n_warnings) AS warnings,
    count() AS subscribers,
    countIf(churned_within_30) AS churned_30d,
    countIf(churned_within_60) AS churned_60d,
    countIf(churned_within_90) AS churned_90d,
    round(churned_30d / subscribers, 4) AS precision_30d,
    round(churned_60d / subscribers, 4) AS precision_60d,
    round(churned_90d / subscribers, 4) AS precision_90d,
    round(avg(tier_churn_rate), 4) AS base_rate,
    if(base_rate > 0, round(precision_90d / base_rate, 2), NULL) AS lift_90d,
    (SELECT count() FROM churnwatch.churns) AS churners,
    if(churners > 0, round(churned_90d / churners, 4), NULL) AS recall_90d,
    if(countIf(churned) > 0, medianIf(toFloat64(ifNull(lead_days, 0)), churned), NULL) AS median_lead_days,
    countIf(has_task = 1) AS with_task,
    countIf(has_task = 1 AND NOT churned_within_90) AS with_task_kept,
    countIf(has_task = 0) AS without_task,
    countIf(has_task = 0 AND NOT churned_within_90) AS without_task_kept,
    if(with_task > 0, round(with_task_kept / with_task, 4), NULL) AS retention_with_task,
    if(without_task > 0, round(without_task_kept / without_task, 4), NULL) AS retention_without_task,
    sum(task_retained) AS tasks_retained,
    sum(task_lost) AS tasks_lost
FROM churnwatch.warning_outcomes
GROUP BY signal, rule_version;
