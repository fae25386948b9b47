-- Generated from schemas/clickhouse/001_ingest.sql for database churnwatch on cluster churnwatch_cluster.
-- Do not edit: go test ./schemas -run ClusterMigrationsGolden -update

CREATE TABLE IF NOT EXISTS churnwatch.cdr_local ON CLUSTER churnwatch_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/cdr_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, start_time, event_id);

CREATE TABLE IF NOT EXISTS churnwatch.cdr ON CLUSTER churnwatch_cluster
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
ENGINE = Distributed(churnwatch_cluster, churnwatch, cdr_local, cityHash64(msisdn));

CREATE TABLE IF NOT EXISTS churnwatch.billing_events_local ON CLUSTER churnwatch_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/billing_events_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, ts, event_id);

CREATE TABLE IF NOT EXISTS churnwatch.billing_events ON CLUSTER churnwatch_cluster
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
ENGINE = Distributed(churnwatch_cluster, churnwatch, billing_events_local, cityHash64(msisdn));

CREATE TABLE IF NOT EXISTS churnwatch.crm_events_local ON CLUSTER churnwatch_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/crm_events_local', '{replica}')
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, ts, event_id);

CREATE TABLE IF NOT EXISTS churnwatch.crm_events ON CLUSTER churnwatch_cluster
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
ENGINE = Distributed(churnwatch_cluster, churnwatch, crm_events_local, cityHash64(msisdn));

CREATE TABLE IF NOT EXISTS churnwatch.subscribers_local ON CLUSTER churnwatch_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/subscribers_local', '{replica}', version)
ORDER BY msisdn;

CREATE TABLE IF NOT EXISTS churnwatch.subscribers ON CLUSTER churnwatch_cluster
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
ENGINE = Distributed(churnwatch_cluster, churnwatch, subscribers_local, cityHash64(msisdn));

CREATE TABLE IF NOT EXISTS churnwatch.subscriber_daily_local ON CLUSTER churnwatch_cluster
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
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/subscriber_daily_local', '{replica}', version)
PARTITION BY toYYYYMM(day)
ORDER BY (msisdn, day);

CREATE TABLE IF NOT EXISTS churnwatch.subscriber_daily ON CLUSTER churnwatch_cluster
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
ENGINE = Distributed(churnwatch_cluster, churnwatch, subscriber_daily_local, cityHash64(msisdn));

CREATE TABLE IF NOT EXISTS churnwatch.dead_letters_local ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    kafka_key       String,
    error           String,
    raw             String,
    received_at     DateTime
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/churnwatch/dead_letters_local', '{replica}')
ORDER BY (topic, kafka_partition, kafka_offset);

CREATE TABLE IF NOT EXISTS churnwatch.dead_letters ON CLUSTER churnwatch_cluster
(
    topic           String,
    kafka_partition Int32,
    kafka_offset    Int64,
    kafka_key       String,
    error           String,
    raw             String,
    received_at     DateTime
)
ENGINE = Distributed(churnwatch_cluster, churnwatch, dead_letters_local, cityHash64(topic, kafka_partition, kafka_offset));
