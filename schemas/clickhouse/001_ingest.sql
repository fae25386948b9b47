-- Ingest foundation: the fact tables, the per-subscriber aggregates and the dead letters.
-- {db} is replaced by the configured database. Every statement is idempotent, so a
-- migration interrupted half way is simply run again. Runs on ClickHouse 18.16 and on
-- current servers: no TTL, no LowCardinality, no DateTime64, no Map/JSON types.

-- Facts are ReplacingMergeTree ordered with event_id in the key: a replayed message lands in
-- the same partition with the same key and merges away. Exact counts read FINAL or
-- uniqExact(event_id). kafka_partition/kafka_offset record where each fact came from.
CREATE TABLE IF NOT EXISTS {db}.cdr
(
    event_id        String,
    msisdn          String,
    peer            String,
    peer_network    String,
    network_derived UInt8,
    direction       Enum8('MO' = 1, 'MT' = 2, 'FWD' = 3),
    start_time      DateTime,
    day             Date,
    duration_s      UInt32,
    forward_to      String,
    cell_id         String,
    kafka_partition Int32,
    kafka_offset    Int64,
    ingested_at     DateTime
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, start_time, event_id);

CREATE TABLE IF NOT EXISTS {db}.billing_events
(
    event_id        String,
    msisdn          String,
    type            Enum8('PAYMENT' = 1, 'BILL' = 2, 'BALANCE' = 3, 'ARREARS' = 4),
    ts              DateTime,
    day             Date,
    amount_fen      Nullable(Int64),
    balance_fen     Nullable(Int64),
    channel         String,
    bill_month      String,
    kafka_partition Int32,
    kafka_offset    Int64,
    ingested_at     DateTime
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, ts, event_id);

-- Profile fields are Nullable: NULL means "not in this message" (the previous value is
-- kept), '' means "cleared". profile_json keeps the profile object as it arrived.
CREATE TABLE IF NOT EXISTS {db}.crm_events
(
    event_id                String,
    msisdn                  String,
    type                    Enum8('PROFILE' = 1, 'PORT_OUT_QUERY' = 2, 'PRE_CANCEL' = 3, 'LOSS_REPORT' = 4,
                                  'SUSPEND_REQUEST' = 5, 'DEACTIVATE' = 6, 'REACTIVATE' = 7),
    ts                      DateTime,
    day                     Date,
    profile_name            Nullable(String),
    profile_birthday        Nullable(String),
    profile_tier            Nullable(String),
    profile_region          Nullable(String),
    profile_account_manager Nullable(String),
    profile_phone_manager   Nullable(String),
    profile_promo_end       Nullable(String),
    profile_join_date       Nullable(String),
    profile_status          Nullable(String),
    profile_json            String,
    kafka_partition         Int32,
    kafka_offset            Int64,
    ingested_at             DateTime
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, ts, event_id);

-- One row per subscriber: the merge of all its PROFILE events (latest value of each field by
-- event time) and its lifecycle. Recomputed from crm_events FINAL; read with FINAL.
CREATE TABLE IF NOT EXISTS {db}.subscribers
(
    msisdn          String,
    name            String,
    birthday        String,
    tier            String,
    profile_tier    String,
    region          String,
    account_manager String,
    phone_manager   String,
    promo_end       String,
    join_date       String,
    status          String,
    first_seen      DateTime,
    updated_at      DateTime,
    version         UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY msisdn;

-- One row per subscriber and local day. Recomputed from cdr FINAL and billing_events FINAL
-- for every (msisdn, day) a batch touched, so replays never double a count; read with FINAL.
-- onnet/offnet minutes are of MO calls (the basis of the off-net share signal).
CREATE TABLE IF NOT EXISTS {db}.subscriber_daily
(
    msisdn                   String,
    day                      Date,
    calls                    UInt64,
    mo_calls                 UInt64,
    mt_calls                 UInt64,
    fwd_calls                UInt64,
    minutes                  Float64,
    mo_minutes               Float64,
    onnet_minutes            Float64,
    offnet_minutes           Float64,
    hotline_calls            UInt64,
    competitor_hotline_calls UInt64,
    offnet_fwd_calls         UInt64,
    payments                 UInt64,
    payment_fen              Int64,
    version                  UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, day);

-- Every rejected input message, keyed by where it came from so a replay adds no row.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    kafka_key       String,
    error           String,
    raw             String,
    received_at     DateTime
)
ENGINE = ReplacingMergeTree
ORDER BY (topic, kafka_partition, kafka_offset);
