-- Generated from schemas/clickhouse/007_workbench.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_interests Array(String);

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_interests Array(String);

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_has_interests UInt8 DEFAULT 0;

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_has_interests UInt8 DEFAULT 0;

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_products Array(String);

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_products Array(String);

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_has_products UInt8 DEFAULT 0;

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_has_products UInt8 DEFAULT 0;

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_group_id Nullable(String);

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_group_id Nullable(String);

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_group_name Nullable(String);

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_group_name Nullable(String);

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_group_level Nullable(String);

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_group_level Nullable(String);

ALTER TABLE churnwatch.crm_events_local ON CLUSTER churnwatch_cluster ADD COLUMN profile_network_age_months Nullable(UInt32);

ALTER TABLE churnwatch.crm_events ON CLUSTER churnwatch_cluster ADD COLUMN profile_network_age_months Nullable(UInt32);

ALTER TABLE churnwatch.subscribers_local ON CLUSTER churnwatch_cluster ADD COLUMN interests Array(String);

ALTER TABLE churnwatch.subscribers ON CLUSTER churnwatch_cluster ADD COLUMN interests Array(String);

ALTER TABLE churnwatch.subscribers_local ON CLUSTER churnwatch_cluster ADD COLUMN group_id String DEFAULT '';

ALTER TABLE churnwatch.subscribers ON CLUSTER churnwatch_cluster ADD COLUMN group_id String DEFAULT '';

ALTER TABLE churnwatch.subscribers_local ON CLUSTER churnwatch_cluster ADD COLUMN group_name String DEFAULT '';

ALTER TABLE churnwatch.subscribers ON CLUSTER churnwatch_cluster ADD COLUMN group_name String DEFAULT '';

ALTER TABLE churnwatch.subscribers_local ON CLUSTER churnwatch_cluster ADD COLUMN group_level String DEFAULT '';

ALTER TABLE churnwatch.subscribers ON CLUSTER churnwatch_cluster ADD COLUMN group_level String DEFAULT '';

ALTER TABLE churnwatch.subscribers_local ON CLUSTER churnwatch_cluster ADD COLUMN products Array(String);

ALTER TABLE churnwatch.subscribers ON CLUSTER churnwatch_cluster ADD COLUMN products Array(String);

ALTER TABLE churnwatch.subscribers_local ON CLUSTER churnwatch_cluster ADD COLUMN network_age_months Nullable(UInt32);

ALTER TABLE churnwatch.subscribers ON CLUSTER churnwatch_cluster ADD COLUMN network_age_months Nullable(UInt32);

ALTER TABLE churnwatch.tasks_local ON CLUSTER churnwatch_cluster ADD COLUMN updated_by String DEFAULT '';

ALTER TABLE churnwatch.tasks ON CLUSTER churnwatch_cluster ADD COLUMN updated_by String DEFAULT '';

ALTER TABLE churnwatch.tasks_local ON CLUSTER churnwatch_cluster ADD COLUMN note String DEFAULT '';

ALTER TABLE churnwatch.tasks ON CLUSTER churnwatch_cluster ADD COLUMN note String DEFAULT '';

CREATE TABLE IF NOT EXISTS churnwatch.lookups_local ON CLUSTER churnwatch_cluster
(
    at      DateTime,
    user    String,
    role    String,
    msisdn  String,
    via     String,
    allowed UInt8,
    reason  String
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/churnwatch/lookups_local', '{replica}')
PARTITION BY toYYYYMM(at)
ORDER BY (at, user);

CREATE TABLE IF NOT EXISTS churnwatch.lookups ON CLUSTER churnwatch_cluster
(
    at      DateTime,
    user    String,
    role    String,
    msisdn  String,
    via     String,
    allowed UInt8,
    reason  String
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, lookups_local, cityHash64(msisdn));

CREATE VIEW IF NOT EXISTS churnwatch.task_scorecard ON CLUSTER churnwatch_cluster AS
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
FROM (SELECT *, version AS v, status AS s, assignee AS a, assignee_role AS r FROM churnwatch.tasks)
GROUP BY task_id;

CREATE VIEW IF NOT EXISTS churnwatch.manager_scorecard ON CLUSTER churnwatch_cluster AS
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
    FROM churnwatch.task_scorecard
)
GROUP BY month, manager;
