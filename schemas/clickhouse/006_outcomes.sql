-- Signal quality (issue 9). Every warning records the version of the rule set that fired it:
-- the first 12 hex digits of the SHA-256 of the rules' canonical encoding, as
-- `churnwatch rules` prints it; '' for warnings written before this migration.
ALTER TABLE {db}.warnings ADD COLUMN rule_version String DEFAULT '';

-- One row per churned subscriber: the first DEACTIVATE event, or the first profile whose status
-- says the subscriber left (inactive, deactivated), whichever came first. churn_day is the
-- local day of that event.
CREATE VIEW IF NOT EXISTS {db}.churns AS
SELECT
    msisdn,
    min(ts) AS churned_at,
    argMin(day, ts) AS churn_day
FROM {db}.crm_events FINAL
WHERE type = 'DEACTIVATE' OR profile_status IN ('inactive', 'deactivated')
GROUP BY msisdn;

-- One row per signal, rule version and subscriber warned: the subscriber's first warning of the
-- signal under that rule version, what became of the subscriber, and whether a task carrying
-- the signal was worked. churned: the churn came after the first warning; churned_within_N:
-- within N days of it; churned_at is 1970-01-01 for a subscriber who did not churn. lead_days:
-- days from the first warning to the churn (NULL when not churned). tier_churn_rate: the share
-- of the subscriber's current tier (subscribers) that churned, over all the data held.
CREATE VIEW IF NOT EXISTS {db}.warning_outcomes AS
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
            FROM {db}.warnings FINAL
            GROUP BY signal, rule_version, msisdn
        )
        ANY LEFT JOIN (SELECT msisdn, churned_at FROM {db}.churns) USING msisdn
    )
    ANY LEFT JOIN
    (
        SELECT msisdn, arrayJoin(signals) AS signal, 1 AS has_task, max(retained) AS task_retained, max(lost) AS task_lost
        FROM {db}.task_outcomes
        GROUP BY msisdn, signal
    ) USING msisdn, signal
)
ANY LEFT JOIN
(
    SELECT tier, avg(toUInt32(churned_at) > 0) AS tier_churn_rate
    FROM (SELECT msisdn, tier FROM {db}.subscribers FINAL)
    ANY LEFT JOIN (SELECT msisdn, churned_at FROM {db}.churns) USING msisdn
    GROUP BY tier
) USING tier;

-- One row per signal and rule version: how often its warnings were right. subscribers: distinct
-- subscribers warned; churned_Nd: of them, those who churned within N days of their first
-- warning; precision_Nd = churned_Nd / subscribers; lift_90d: precision_90d over the churn rate
-- the warned subscribers' tiers have anyway (base_rate); recall_90d: churned_90d over every
-- churner; median_lead_days over the churners warned beforehand; retention (not churned within
-- 90 days) of the warned subscribers with a task carrying the signal against those without,
-- and the tasks' own outcomes from ticketing (RETAINED/LOST). Warnings younger than a horizon
-- count as not (yet) churned within it.
CREATE VIEW IF NOT EXISTS {db}.signal_outcomes AS
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
    (SELECT count() FROM {db}.churns) AS churners,
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
FROM {db}.warning_outcomes
GROUP BY signal, rule_version;
