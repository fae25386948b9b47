-- Retention tasks (SPEC 2.6 and 5): every version of every task, as published on churn.tasks.
-- (task_id, version) is the key, so a version written twice merges away. cause is what made
-- the version: the warning id that opened or joined the task, the ticketing update's key, or
-- 'escalation'. kafka_partition is the subscriber's partition, whose owner writes the task.
CREATE TABLE IF NOT EXISTS {db}.tasks
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
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (task_id, version);

-- One row per task at its latest version. (The inner query renames version, so that the
-- aggregates below can keep the public column names.)
CREATE VIEW IF NOT EXISTS {db}.tasks_current AS
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
FROM (SELECT *, version AS v FROM {db}.tasks)
GROUP BY task_id;

-- One row per task with what the analyst queries need: who had it first and last, when it
-- was first contacted and how long that took, whether it was overdue (escalated, or first
-- contacted after its due time), and how it ended.
CREATE VIEW IF NOT EXISTS {db}.task_outcomes AS
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
FROM (SELECT *, version AS v, status AS s, assignee AS a FROM {db}.tasks)
GROUP BY task_id;
