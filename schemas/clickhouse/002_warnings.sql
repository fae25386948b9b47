-- Warnings (SPEC 2.5): one row per warning, as published on churn.warnings, with evidence as a
-- JSON string. warning_id is deterministic, so a replayed event or a second run of a day
-- writes the same row again and it merges away; read with FINAL. No wall-clock column: a
-- rerun writes identical rows. kafka_partition/kafka_offset locate the completing event of a
-- real-time warning (-1 for daily ones); they let a restarted consumer rebuild its state.
CREATE TABLE IF NOT EXISTS {db}.warnings
(
    warning_id      String,
    msisdn          String,
    signal          String,
    severity        Enum8('info' = 1, 'low' = 2, 'medium' = 3, 'high' = 4, 'critical' = 5),
    tier            String,
    detected_at     DateTime,
    window_start    DateTime,
    window_end      DateTime,
    evidence        String,
    score           UInt8,
    source          Enum8('realtime' = 1, 'daily' = 2),
    source_topic    String,
    kafka_partition Int32,
    kafka_offset    Int64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(detected_at)
ORDER BY (msisdn, signal, warning_id);
