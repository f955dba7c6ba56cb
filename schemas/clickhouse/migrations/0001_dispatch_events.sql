-- Raw dispatch events: one row per event of any of the five streams, as decoded and enriched.
--
-- Idempotency: Kafka delivers at least once, so the same event can be inserted more than once
-- (crash before the offset commit, rebalance). ReplacingMergeTree collapses rows with the same
-- sorting key (event_type, incident_id, event_id) during merges; readers that need exact counts use
-- FINAL or duplicate-insensitive aggregates (uniqExact(event_id), min, max, argMin). Duplicates of
-- one event share occurred_at, hence the partition, so they always meet in a merge.
-- Works the same on ClickHouse 18.16 and 24.x+ (no insert deduplication tokens needed).
CREATE TABLE IF NOT EXISTS {db}.dispatch_events
(
    event_id UUID COMMENT 'Unique event id (UUID) from the producer; the deduplication key',
    event_type String COMMENT 'Stream: call, alert, cancel, on_scene, transport',
    incident_id String COMMENT 'Incident (melding) id; joins the events of one incident',
    dispatch_centre String COMMENT 'Dispatch centre (meldkamer ambulancezorg) that emitted the event',
    occurred_at DateTime('UTC') COMMENT 'When the event happened (UTC, seconds); report months use Europe/Amsterdam',
    occurred_at_ms Int64 COMMENT 'When the event happened, UTC milliseconds since the epoch (exact)',
    urgency Nullable(String) COMMENT 'Urgency as sent (call: always; alert: if carried)',
    municipality_code Nullable(String) COMMENT 'CBS municipality code of the incident location (call events)',
    patient_age_years Nullable(UInt8) COMMENT 'Patient age in years, if known (call, transport)',
    triage_code Nullable(String) COMMENT 'Triage/complaint code, if known (call)',
    unit_id Nullable(String) COMMENT 'Unit call sign (alert, cancel, on_scene, transport)',
    unit_type Nullable(String) COMMENT 'ALS_AMBULANCE, RAPID_RESPONDER, MEDIUM_CARE_AMBULANCE, MMT_HELICOPTER, MMT_CAR, OTHER (alert)',
    mmt_station Nullable(String) COMMENT 'MMT station of an MMT unit (alert)',
    dispatch_kind Nullable(String) COMMENT 'PRIMARY (dispatcher on the 112 call) or SECONDARY (crew request) (alert)',
    cancel_reason Nullable(String) COMMENT 'Why an alert was cancelled (cancel)',
    transport_mode Nullable(String) COMMENT 'AMBULANCE or HELICOPTER (transport)',
    mmt_physician_accompanies Nullable(UInt8) COMMENT '1 when the MMT physician accompanies the transport (transport)',
    destination Nullable(String) COMMENT 'Receiving hospital, if known (transport)',
    trauma Nullable(UInt8) COMMENT 'Explicit trauma indication, if given (transport)',
    source_topic String COMMENT 'Kafka topic the event was read from',
    source_partition Int32 COMMENT 'Kafka partition',
    source_offset Int64 COMMENT 'Kafka offset',
    wire_format String COMMENT 'avro or json',
    ingested_at DateTime('UTC') COMMENT 'When dispatch-ingest wrote the row'
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (event_type, incident_id, event_id)
