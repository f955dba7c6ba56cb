-- Enriched columns, filled by dispatch-ingest from the event and config/reference/ (see
-- src/enrich and config/reference/README.md). NULL means "does not apply to this event type" or
-- "unknown"; never a guessed value. One ALTER so the migration applies all or nothing.
ALTER TABLE {db}.dispatch_events
    ADD COLUMN urgency_vui Nullable(String) COMMENT 'Urgency normalised to VUI A0-C2 (pre-VUI A1, A2, B map to A1, A2, B2); NULL when absent or unrecognised',
    ADD COLUMN urgency_rank Nullable(UInt8) COMMENT '1 (A0, most urgent) to 7 (C2)',
    ADD COLUMN is_emergency Nullable(UInt8) COMMENT '1 for A0-A2, 0 for B1-C2',
    ADD COLUMN response_norm_seconds Nullable(UInt16) COMMENT 'Response-time norm: A0 and A1 900 s (95% within 15 min per safety region), A2 1800 s; NULL where no norm applies',
    ADD COLUMN is_child Nullable(UInt8) COMMENT '1 when the patient age is known and at most enrich.child_max_age_years (18); NULL when the age is unknown',
    ADD COLUMN is_trauma Nullable(UInt8) COMMENT 'Trauma: the explicit flag of the event, else from the triage code (config/reference/triage_trauma.csv); NULL when unknown',
    ADD COLUMN trauma_source Nullable(String) COMMENT 'explicit or triage_code',
    ADD COLUMN municipality_name Nullable(String) COMMENT 'Municipality name on the event date (Europe/Amsterdam); unknown if the code is not in the reference table on that date',
    ADD COLUMN region_code Nullable(String) COMMENT 'Safety region VR01-VR25 of the municipality on the event date (the level of the 15-minute norm), or unknown',
    ADD COLUMN region_name Nullable(String) COMMENT 'Safety region name, or unknown',
    ADD COLUMN province_code Nullable(String) COMMENT 'Province code (PVxx), or unknown',
    ADD COLUMN province_name Nullable(String) COMMENT 'Province name, or unknown',
    ADD COLUMN municipality_code_current Nullable(String) COMMENT 'The municipality the location belongs to today (successors of merged municipalities followed)',
    ADD COLUMN mmt_station_norm Nullable(String) COMMENT 'MMT station normalised via config/reference/mmt_stations.csv (operating on the event date), or unknown',
    ADD COLUMN schema_id Nullable(UInt32) COMMENT 'Schema Registry id of the writer schema (avro-confluent topics)'
