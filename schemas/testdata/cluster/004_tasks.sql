-- Generated from schemas/clickhouse/004_tasks.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

CREATE TABLE IF NOT EXISTS churnwatch.tasks_local ON CLUSTER churnwatch_cluster
(
    task_id         String,
    version         UInt32,
    msisdn          String,
    tier            String,
    region          String,
    status          Enum8('OPEN' = 1, 'ACCEPTED' = 2, 'CONTACTED' = 3, 'ESCALATED' = 4, 'RETAINED' = 5, 'LOST' = 6, 'CLOSED' = 7),
    assignee        String,
    assignee_role   String,
    priority        UInt8,
    created_at      DateTime,
    due_at          DateTime,
    updated_at      DateTime,
    signals         Array(String),
    warning_ids     Array(String),
    score           UInt8,
    summary         String,
    cause           String,
    escalated       UInt8,
    kafka_partition Int32
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/tasks_local', '{replica}')
PARTITION BY toYYYYMM(created_at)
ORDER BY (task_id, version);

CREATE TABLE IF NOT EXISTS churnwatch.tasks ON CLUSTER churnwatch_cluster
(
    task_id         String,
    version         UInt32,
    msisdn          String,
    tier            String,
    region          String,
    status          Enum8('OPEN' = 1, 'ACCEPTED' = 2, 'CONTACTED' = 3, 'ESCALATED' = 4, 'RETAINED' = 5, 'LOST' = 6, 'CLOSED' = 7),
    assignee        String,
    assignee_role   String,
    priority        UInt8,
    created_at      DateTime,
    due_at          DateTime,
    updated_at      DateTime,
    signals         Array(String),
    warning_ids     Array(String),
    score           UInt8,
    summary         String,
    cause           String,
    escalated       UInt8,
    kafka_partition Int32
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, tasks_local, cityHash64(msisdn));

CREATE VIEW IF NOT EXISTS churnwatch.tasks_current ON CLUSTER churnwatch_cluster AS
SELECT
    task_id,
    max(v) AS version,
    argMax(msisdn, v) AS msisdn,
    argMax(tier, v) AS tier,
    argMax(region, v) AS region,
    argMax(status, v) AS status,
    argMax(assignee, v) AS assignee,
    argMax(assignee_role, v) AS assignee_role,
    argMax(priority, v) AS priority,
    min(created_at) AS created_at,
    argMax(due_at, v) AS due_at,
    argMax(updated_at, v) AS updated_at,
    argMax(signals, v) AS signals,
    argMax(warning_ids, v) AS warning_ids,
    argMax(score, v) AS score,
    argMax(summary, v) AS summary,
    max(escalated) AS escalated
FROM (SELECT *, version AS v FROM churnwatch.tasks)
GROUP BY task_id;

CREATE VIEW IF NOT EXISTS churnwatch.task_outcomes ON CLUSTER churnwatch_cluster AS
SELECT
    task_id,
    argMax(msisdn, v) AS msisdn,
    argMax(tier, v) AS tier,
    argMax(region, v) AS region,
    argMax(signals, v) AS signals,
    argMin(a, v) AS first_assignee,
    argMax(a, v) AS assignee,
    argMax(s, v) AS final_status,
    min(created_at) AS created_at,
    argMax(due_at, v) AS due_at,
    countIf(s = 'CONTACTED') > 0 AS contacted,
    minIf(updated_at, s = 'CONTACTED') AS first_contact_at,
    if(contacted, toInt64(first_contact_at) - toInt64(created_at), NULL) AS response_seconds,
    max(escalated) = 1 OR (contacted AND first_contact_at > due_at) AS overdue,
    final_status IN ('RETAINED', 'LOST', 'CLOSED') AS closed,
    countIf(s = 'RETAINED') > 0 AS retained,
    countIf(s = 'LOST') > 0 AS lost
FROM (SELECT *, version AS v, status AS s, assignee AS a FROM churnwatch.tasks)
GROUP BY task_id;
