-- Audit events projected from the AUDIT and CONTROL streams.
--
-- Kept to the subset ClickHouse 18.16 accepts (and current versions too):
-- no DateTime64, Map, LowCardinality or TTL. Inserts are at-least-once, so
-- ReplacingMergeTree deduplicates redeliveries of one stored message; read
-- with FINAL. The key holds the stream subject and sequence beside event_id,
-- so a message that reuses another event's ID (a compromised publisher)
-- becomes a row of its own and never replaces the original.
-- {database} is replaced with a validated database name.

CREATE DATABASE IF NOT EXISTS {database};

CREATE TABLE IF NOT EXISTS {database}.audit_events
(
    event_date Date,
    time DateTime,
    event_id String,
    tenant String,
    kind String,
    code String,
    service String,
    subject String,
    stream_seq UInt64,
    request_id String,
    actor String,
    surface String,
    reported_surface String,
    agent_id String,
    user_id String,
    environment String,
    tool String,
    source_id String,
    operation_id String,
    binding_id String,
    gate String,
    reason String,
    credential_status String,
    policy_outcome String,
    adapter_outcome String,
    upstream_status UInt16,
    latency_us UInt64,
    detail String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_date)
ORDER BY (tenant, event_id, subject, stream_seq);
