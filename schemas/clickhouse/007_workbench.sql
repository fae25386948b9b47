-- The manager workbench (issue 10): the extended CRM profile, the notes of ticketing updates,
-- the audit of subscriber lookups and the manager scorecard. {db} is replaced by the configured
-- database; every statement is idempotent. Runs on ClickHouse 18.16 and on current servers.
-- 18.16 has no ADD COLUMN IF NOT EXISTS: warehouse.Migrate runs each single-column
-- ALTER TABLE ... ADD COLUMN only when system.columns does not list the column yet.

-- crm_events: the profile extensions. A list arrives whole or not at all, and an empty list
-- clears the stored one, so each list has a flag saying whether the message carried it
-- (18.16 has no Nullable(Array)). The group arrives whole: its three parts are NULL together.
ALTER TABLE {db}.crm_events ADD COLUMN profile_interests Array(String);
ALTER TABLE {db}.crm_events ADD COLUMN profile_has_interests UInt8 DEFAULT 0;
ALTER TABLE {db}.crm_events ADD COLUMN profile_products Array(String);
ALTER TABLE {db}.crm_events ADD COLUMN profile_has_products UInt8 DEFAULT 0;
ALTER TABLE {db}.crm_events ADD COLUMN profile_group_id Nullable(String);
ALTER TABLE {db}.crm_events ADD COLUMN profile_group_name Nullable(String);
ALTER TABLE {db}.crm_events ADD COLUMN profile_group_level Nullable(String);
ALTER TABLE {db}.crm_events ADD COLUMN profile_network_age_months Nullable(UInt32);

-- subscribers: the latest value of each (empty when never sent; network_age_months NULL).
ALTER TABLE {db}.subscribers ADD COLUMN interests Array(String);
ALTER TABLE {db}.subscribers ADD COLUMN group_id String DEFAULT '';
ALTER TABLE {db}.subscribers ADD COLUMN group_name String DEFAULT '';
ALTER TABLE {db}.subscribers ADD COLUMN group_level String DEFAULT '';
ALTER TABLE {db}.subscribers ADD COLUMN products Array(String);
ALTER TABLE {db}.subscribers ADD COLUMN network_age_months Nullable(UInt32);

-- tasks: who wrote a ticketing update and its note (the visit and call notes); empty for the
-- versions a warning or an escalation made.
ALTER TABLE {db}.tasks ADD COLUMN updated_by String DEFAULT '';
ALTER TABLE {db}.tasks ADD COLUMN note String DEFAULT '';

-- Every subscriber lookup (subscriber 360, on the dashboard or the command line): who looked,
-- with which role, at which subscriber, and whether the access rule let them.
CREATE TABLE IF NOT EXISTS {db}.lookups
(
    at      DateTime,
    user    String,
    role    String,
    msisdn  String,
    via     String,
    allowed UInt8,
    reason  String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, user);

-- One row per task with what the scorecard counts. The task belongs to its manager: the last
-- assignee that is not the supervisor it escalated to (a transfer hands it on, an escalation
-- does not). contacted_in_time: first contacted at or before the due time.
CREATE VIEW IF NOT EXISTS {db}.task_scorecard AS
SELECT
    task_id,
    argMaxIf(a, v, r != 'supervisor') AS manager,
    argMaxIf(r, v, r != 'supervisor') AS manager_role,
    argMax(msisdn, v) AS msisdn,
    argMax(tier, v) AS tier,
    argMax(region, v) AS region,
    min(created_at) AS created_at,
    argMax(due_at, v) AS due_at,
    countIf(s = 'CONTACTED') > 0 AS contacted,
    minIf(updated_at, s = 'CONTACTED') AS first_contact_at,
    contacted AND first_contact_at <= due_at AS contacted_in_time,
    max(escalated) AS escalated,
    countIf(s = 'RETAINED') > 0 AS retained,
    countIf(s = 'LOST') > 0 AS lost,
    tier IN ('diamond', 'gold', 'silver') AS high_value,
    if(contacted, toInt64(first_contact_at) - toInt64(created_at), NULL) AS response_seconds
FROM (SELECT *, version AS v, status AS s, assignee AS a, assignee_role AS r FROM {db}.tasks)
GROUP BY task_id;

-- Per manager and month (of the task's creation, in the server's time zone): tasks received,
-- contacted in time, escalated, retained (and of them high-value), lost, and the median
-- response time (created -> first contact) of the contacted ones. The points and the ranks
-- depend on the configured scheme; churnwatch scorecard computes them.
CREATE VIEW IF NOT EXISTS {db}.manager_scorecard AS
SELECT
    toStartOfMonth(created) AS month,
    manager,
    argMax(role, created) AS manager_role,
    argMax(reg, created) AS region,
    count() AS tasks_received,
    sum(in_time) AS contacted_in_time,
    sum(esc) AS escalated,
    sum(ret) AS retained,
    sum(ret AND high_value) AS retained_high_value,
    sum(lst) AS lost,
    medianExact(response_seconds) AS median_response_seconds
FROM
(
    SELECT manager, manager_role AS role, region AS reg, created_at AS created, contacted_in_time AS in_time,
        escalated AS esc, retained AS ret, lost AS lst, high_value, response_seconds
    FROM {db}.task_scorecard
)
GROUP BY month, manager;
