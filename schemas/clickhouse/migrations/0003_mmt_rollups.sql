-- MMT factsheet model: per-unit alert state and per-incident facts, kept by materialized views
-- from dispatch_events, and the views the report and BI tools read. Definitions: docs/rollups.md.
--
-- Every aggregate is duplicate- and order-insensitive (min, max over -If conditions), so
-- redelivered, late or out-of-order events converge to the same rows. The backfill INSERTs at the
-- end take events written before this migration; overlap with what the views already caught is
-- harmless for the same reason.

CREATE TABLE IF NOT EXISTS {db}.unit_alerts
(
    incident_id String COMMENT 'Incident id',
    unit_id String COMMENT 'Unit call sign; one row per unit alerted in an incident',
    alerted_at AggregateFunction(minIf, DateTime('UTC'), UInt8) COMMENT 'First UnitAlerted time (UTC)',
    unit_type AggregateFunction(maxIf, String, UInt8) COMMENT 'Unit type of the alert (MMT_HELICOPTER, MMT_CAR, ...)',
    mmt_station AggregateFunction(maxIf, String, UInt8) COMMENT 'Normalised MMT station of the alert',
    dispatch_kind AggregateFunction(maxIf, String, UInt8) COMMENT 'PRIMARY or SECONDARY',
    cancelled AggregateFunction(max, UInt8) COMMENT '1 when an AlertCancelled exists for this unit in this incident',
    cancel_reason AggregateFunction(maxIf, String, UInt8) COMMENT 'Reason of the cancel',
    on_scene_at AggregateFunction(minIf, DateTime('UTC'), UInt8) COMMENT 'First UnitOnScene time of this unit (UTC)'
)
ENGINE = AggregatingMergeTree()
ORDER BY (incident_id, unit_id)
-- statement-break
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.unit_alerts_mv TO {db}.unit_alerts AS
SELECT
    incident_id,
    ifNull(unit_id, '') AS unit_id,
    minIfState(occurred_at, toUInt8(event_type = 'alert')) AS alerted_at,
    maxIfState(ifNull(unit_type, ''), toUInt8(event_type = 'alert')) AS unit_type,
    maxIfState(ifNull(mmt_station_norm, ''), toUInt8(event_type = 'alert')) AS mmt_station,
    maxIfState(ifNull(dispatch_kind, ''), toUInt8(event_type = 'alert')) AS dispatch_kind,
    maxState(toUInt8(event_type = 'cancel')) AS cancelled,
    maxIfState(ifNull(cancel_reason, ''), toUInt8(event_type = 'cancel')) AS cancel_reason,
    minIfState(occurred_at, toUInt8(event_type = 'on_scene')) AS on_scene_at
FROM {db}.dispatch_events
WHERE event_type IN ('alert', 'cancel', 'on_scene')
GROUP BY incident_id, unit_id
-- statement-break
CREATE TABLE IF NOT EXISTS {db}.incident_facts
(
    incident_id String COMMENT 'Incident id',
    call_at AggregateFunction(minIf, DateTime('UTC'), UInt8) COMMENT 'Time the 112 call was accepted (UTC)',
    urgency AggregateFunction(maxIf, String, UInt8) COMMENT 'VUI urgency of the call',
    municipality_code AggregateFunction(maxIf, String, UInt8) COMMENT 'Municipality of the incident location on the call date',
    region_code AggregateFunction(maxIf, String, UInt8) COMMENT 'Safety region of the incident location on the call date',
    child AggregateFunction(max, UInt8) COMMENT '1 when any event gives a patient age of at most 18',
    trauma AggregateFunction(max, UInt8) COMMENT '1 when any event indicates trauma (explicit or by triage code)',
    helicopter_transport AggregateFunction(max, UInt8) COMMENT '1 when the patient was transported by helicopter under the MMT physician',
    ambulance_accompanied AggregateFunction(max, UInt8) COMMENT '1 when the MMT physician accompanied the patient in the ambulance'
)
ENGINE = AggregatingMergeTree()
ORDER BY incident_id
-- statement-break
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.incident_facts_mv TO {db}.incident_facts AS
SELECT
    incident_id,
    minIfState(occurred_at, toUInt8(event_type = 'call')) AS call_at,
    maxIfState(ifNull(urgency_vui, ''), toUInt8(event_type = 'call')) AS urgency,
    maxIfState(ifNull(municipality_code, ''), toUInt8(event_type = 'call')) AS municipality_code,
    maxIfState(ifNull(region_code, ''), toUInt8(event_type = 'call')) AS region_code,
    maxState(toUInt8(ifNull(is_child, 0) = 1)) AS child,
    maxState(toUInt8(ifNull(is_trauma, 0) = 1)) AS trauma,
    maxState(toUInt8(event_type = 'transport' AND ifNull(transport_mode, '') = 'HELICOPTER' AND ifNull(mmt_physician_accompanies, 0) = 1)) AS helicopter_transport,
    maxState(toUInt8(event_type = 'transport' AND ifNull(transport_mode, '') = 'AMBULANCE' AND ifNull(mmt_physician_accompanies, 0) = 1)) AS ambulance_accompanied
FROM {db}.dispatch_events
GROUP BY incident_id
-- statement-break
CREATE VIEW IF NOT EXISTS {db}.mmt_calls AS
SELECT
    incident_id,
    unit_id,
    alerted_at,
    toYear(toTimeZone(alerted_at, 'Europe/Amsterdam')) AS year,
    toMonth(toTimeZone(alerted_at, 'Europe/Amsterdam')) AS month,
    unit_type,
    if(unit_type = 'MMT_HELICOPTER', 'helicopter', 'car') AS vehicle,
    mmt_station AS station,
    dispatch_kind,
    cancelled,
    cancel_reason,
    inc_region_code AS region_code,
    inc_municipality_code AS municipality_code,
    inc_trauma AS trauma,
    inc_child AS child,
    inc_helicopter_transport AS helicopter_transport,
    inc_ambulance_accompanied AS ambulance_accompanied
FROM
(
    SELECT
        incident_id,
        unit_id,
        minIfMerge(alerted_at) AS alerted_at,
        maxIfMerge(unit_type) AS unit_type,
        maxIfMerge(mmt_station) AS mmt_station,
        maxIfMerge(dispatch_kind) AS dispatch_kind,
        maxMerge(cancelled) AS cancelled,
        maxIfMerge(cancel_reason) AS cancel_reason
    FROM {db}.unit_alerts
    GROUP BY incident_id, unit_id
    HAVING unit_type IN ('MMT_HELICOPTER', 'MMT_CAR')
) AS alerts
ANY LEFT JOIN
(
    SELECT
        incident_id,
        maxIfMerge(region_code) AS inc_region_code,
        maxIfMerge(municipality_code) AS inc_municipality_code,
        maxMerge(trauma) AS inc_trauma,
        maxMerge(child) AS inc_child,
        maxMerge(helicopter_transport) AS inc_helicopter_transport,
        maxMerge(ambulance_accompanied) AS inc_ambulance_accompanied
    FROM {db}.incident_facts
    GROUP BY incident_id
) AS incidents USING incident_id
-- statement-break
CREATE VIEW IF NOT EXISTS {db}.mmt_factsheet_year AS
SELECT
    year,
    count() AS calls,
    round(count() / (toDate(concat(toString(year), '-12-31')) - toDate(concat(toString(year), '-01-01')) + 1), 1) AS calls_per_day,
    countIf(cancelled = 0) AS deployments,
    countIf(cancelled = 1) AS cancels,
    round(100 * countIf(cancelled = 0) / count(), 1) AS deployment_pct,
    round(countIf(cancelled = 0) / (toDate(concat(toString(year), '-12-31')) - toDate(concat(toString(year), '-01-01')) + 1), 1) AS deployments_per_day,
    countIf(vehicle = 'helicopter') AS helicopter_calls,
    countIf(vehicle = 'car') AS car_calls,
    round(100 * countIf(vehicle = 'helicopter') / count(), 1) AS helicopter_pct,
    round(100 * countIf(vehicle = 'car') / count(), 1) AS car_pct,
    countIf(dispatch_kind = 'PRIMARY') AS primary_calls,
    countIf(dispatch_kind = 'SECONDARY') AS secondary_calls,
    round(100 * countIf(dispatch_kind = 'PRIMARY') / count(), 1) AS primary_pct,
    countIf(cancelled = 0 AND trauma = 1) AS trauma_deployments,
    round(100 * countIf(cancelled = 0 AND trauma = 1) / countIf(cancelled = 0), 1) AS trauma_pct,
    countIf(cancelled = 0 AND child = 1) AS child_deployments,
    round(100 * countIf(cancelled = 0 AND child = 1) / countIf(cancelled = 0), 1) AS child_pct,
    countIf(cancelled = 0 AND helicopter_transport = 1) AS helicopter_transports,
    round(100 * countIf(cancelled = 0 AND helicopter_transport = 1) / countIf(cancelled = 0), 1) AS helicopter_transport_pct,
    countIf(cancelled = 0 AND ambulance_accompanied = 1) AS ambulance_accompanied_deployments,
    round(100 * countIf(cancelled = 0 AND ambulance_accompanied = 1) / countIf(cancelled = 0), 1) AS ambulance_accompanied_pct
FROM {db}.mmt_calls
GROUP BY year
-- statement-break
CREATE VIEW IF NOT EXISTS {db}.mmt_factsheet_month AS
SELECT
    year,
    month,
    count() AS calls,
    countIf(cancelled = 0) AS deployments,
    countIf(cancelled = 1) AS cancels
FROM {db}.mmt_calls
GROUP BY year, month
-- statement-break
CREATE VIEW IF NOT EXISTS {db}.mmt_station_location AS
SELECT
    year,
    station,
    region_code,
    countIf(cancelled = 0) AS deployments,
    countIf(cancelled = 1) AS cancels
FROM {db}.mmt_calls
GROUP BY year, station, region_code
-- statement-break
CREATE VIEW IF NOT EXISTS {db}.mmt_cancel_reasons AS
SELECT
    year,
    cancel_reason,
    count() AS cancels
FROM {db}.mmt_calls
WHERE cancelled = 1
GROUP BY year, cancel_reason
-- statement-break
INSERT INTO {db}.unit_alerts
SELECT
    incident_id,
    ifNull(unit_id, '') AS unit_id,
    minIfState(occurred_at, toUInt8(event_type = 'alert')) AS alerted_at,
    maxIfState(ifNull(unit_type, ''), toUInt8(event_type = 'alert')) AS unit_type,
    maxIfState(ifNull(mmt_station_norm, ''), toUInt8(event_type = 'alert')) AS mmt_station,
    maxIfState(ifNull(dispatch_kind, ''), toUInt8(event_type = 'alert')) AS dispatch_kind,
    maxState(toUInt8(event_type = 'cancel')) AS cancelled,
    maxIfState(ifNull(cancel_reason, ''), toUInt8(event_type = 'cancel')) AS cancel_reason,
    minIfState(occurred_at, toUInt8(event_type = 'on_scene')) AS on_scene_at
FROM {db}.dispatch_events
WHERE event_type IN ('alert', 'cancel', 'on_scene')
GROUP BY incident_id, unit_id
-- statement-break
INSERT INTO {db}.incident_facts
SELECT
    incident_id,
    minIfState(occurred_at, toUInt8(event_type = 'call')) AS call_at,
    maxIfState(ifNull(urgency_vui, ''), toUInt8(event_type = 'call')) AS urgency,
    maxIfState(ifNull(municipality_code, ''), toUInt8(event_type = 'call')) AS municipality_code,
    maxIfState(ifNull(region_code, ''), toUInt8(event_type = 'call')) AS region_code,
    maxState(toUInt8(ifNull(is_child, 0) = 1)) AS child,
    maxState(toUInt8(ifNull(is_trauma, 0) = 1)) AS trauma,
    maxState(toUInt8(event_type = 'transport' AND ifNull(transport_mode, '') = 'HELICOPTER' AND ifNull(mmt_physician_accompanies, 0) = 1)) AS helicopter_transport,
    maxState(toUInt8(event_type = 'transport' AND ifNull(transport_mode, '') = 'AMBULANCE' AND ifNull(mmt_physician_accompanies, 0) = 1)) AS ambulance_accompanied
FROM {db}.dispatch_events
GROUP BY incident_id
