-- Municipality response-time report (A0/A1): per incident and unit, the facts the response time
-- is computed from, kept by a materialized view from dispatch_events. Definitions: docs/rollups.md
-- ("The municipality report").
--
-- One row per (incident_id, unit_id); the call's row has unit_id ''. Times are exact milliseconds.
-- Every aggregate is duplicate- and order-insensitive (minIf, maxIf), so redelivered, late or
-- out-of-order events converge to the same rows, and the backfill at the end may overlap with what
-- the view already caught. Which unit types count for the norm is decided when reading (config
-- `report.counting_unit_types`), so it can change without a migration.

CREATE TABLE IF NOT EXISTS {db}.response_units
(
    incident_id String COMMENT 'Incident id',
    unit_id String COMMENT 'Unit call sign; empty for the row of the 112 call itself',
    call_at_ms AggregateFunction(minIf, Int64, UInt8) COMMENT 'CallReceived.occurred_at: the dispatch centre accepted the call (UTC ms); 0 when no call event landed',
    urgency AggregateFunction(maxIf, String, UInt8) COMMENT 'VUI urgency of the call (A0, A1, ...)',
    municipality_code_current AggregateFunction(maxIf, String, UInt8) COMMENT 'Municipality of the incident location in today''s layout (successors followed)',
    unit_type AggregateFunction(maxIf, String, UInt8) COMMENT 'Unit type of the UnitAlerted (ALS_AMBULANCE, RAPID_RESPONDER, MMT_HELICOPTER, ...)',
    on_scene_at_ms AggregateFunction(minIf, Int64, UInt8) COMMENT 'First UnitOnScene of this unit (UTC ms); 0 when it never arrived'
)
ENGINE = AggregatingMergeTree()
ORDER BY (incident_id, unit_id)
-- statement-break
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.response_units_mv TO {db}.response_units AS
SELECT
    incident_id,
    ifNull(unit_id, '') AS unit_id,
    minIfState(occurred_at_ms, toUInt8(event_type = 'call')) AS call_at_ms,
    maxIfState(ifNull(urgency_vui, ''), toUInt8(event_type = 'call')) AS urgency,
    maxIfState(ifNull(municipality_code_current, ''), toUInt8(event_type = 'call')) AS municipality_code_current,
    maxIfState(ifNull(unit_type, ''), toUInt8(event_type = 'alert')) AS unit_type,
    minIfState(occurred_at_ms, toUInt8(event_type = 'on_scene')) AS on_scene_at_ms
FROM {db}.dispatch_events
WHERE event_type IN ('call', 'alert', 'on_scene')
GROUP BY incident_id, unit_id
-- statement-break
INSERT INTO {db}.response_units
SELECT
    incident_id,
    ifNull(unit_id, '') AS unit_id,
    minIfState(occurred_at_ms, toUInt8(event_type = 'call')) AS call_at_ms,
    maxIfState(ifNull(urgency_vui, ''), toUInt8(event_type = 'call')) AS urgency,
    maxIfState(ifNull(municipality_code_current, ''), toUInt8(event_type = 'call')) AS municipality_code_current,
    maxIfState(ifNull(unit_type, ''), toUInt8(event_type = 'alert')) AS unit_type,
    minIfState(occurred_at_ms, toUInt8(event_type = 'on_scene')) AS on_scene_at_ms
FROM {db}.dispatch_events
WHERE event_type IN ('call', 'alert', 'on_scene')
GROUP BY incident_id, unit_id
