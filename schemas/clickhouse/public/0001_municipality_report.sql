-- The published municipality A0/A1 response-time report, for BI tools: `{db}` is the public
-- database (`report.public_database`, default dispatch_public), the only one the BI user may read.
-- Written by `dispatch-ingest report municipalities --year Y --publish`, which replaces the
-- year's partition as a whole (ALTER TABLE ... REPLACE PARTITION), so re-publishing is idempotent
-- and readers never see half a year. Definitions: docs/rollups.md ("The municipality report").

CREATE DATABASE IF NOT EXISTS {db}
-- statement-break
CREATE TABLE IF NOT EXISTS {db}.municipality_response_times
(
    year UInt16 COMMENT 'Reporting year (by the time the 112 call was accepted, Europe/Amsterdam)',
    quarter UInt8 COMMENT '0 for the whole year, 1-4 for a quarter',
    period String COMMENT 'Label: 2025 for the year, 2025-Q1 .. 2025-Q4 for a quarter',
    area_level String COMMENT 'national, region (safety region, the level of the legal norm) or municipality (today''s layout)',
    area_code String COMMENT 'NL, VR01-VR25 or the CBS municipality code GMxxxx',
    area_name String COMMENT 'Name of the area',
    region_code String COMMENT 'Safety region of the municipality, the region itself, or empty for NL',
    urgency String COMMENT 'A0, A1 or A0+A1 (the two together)',
    deployments Nullable(UInt64) COMMENT 'Deployments counted (incidents with a counting arrival); NULL when suppressed',
    mean_seconds Nullable(Float64) COMMENT 'Mean response time in seconds (call accepted to first counting unit on scene); NULL when suppressed',
    median_seconds Nullable(Float64) COMMENT 'Exact median in seconds (mean of the middle pair for even counts); NULL when suppressed or withheld',
    p90_seconds Nullable(Float64) COMMENT 'Exact 90th percentile in seconds (nearest rank); NULL when suppressed or withheld',
    p95_seconds Nullable(Float64) COMMENT 'Exact 95th percentile in seconds (nearest rank); NULL when suppressed or withheld',
    share_within_15 Nullable(Float64) COMMENT 'Share of deployments on scene within 15 minutes (900 s inclusive), 0-1; NULL when suppressed',
    suppressed UInt8 COMMENT '1 when nothing of the cell is published',
    suppression_reason Nullable(String) COMMENT 'suppressed (complementary suppression: one reason for every suppressed cell, so the reason reveals no count); too_few_deployments with primary-only suppression; complementary in publications before the single reason; NULL when published',
    suppression_reason_nl Nullable(String) COMMENT 'The reason in Dutch, as the reports print it',
    percentiles_withheld UInt8 COMMENT '1 when the cell is published but too small for median and percentiles',
    meets_norm Nullable(UInt8) COMMENT 'Regions, A1: 1 when at least 95% were on scene within 15 minutes; NULL elsewhere'
)
ENGINE = MergeTree()
PARTITION BY year
ORDER BY (year, quarter, urgency, area_level, area_code)
-- statement-break
CREATE TABLE IF NOT EXISTS {db}.municipality_response_exclusions
(
    year UInt16 COMMENT 'Reporting year',
    reason String COMMENT 'no_counting_arrival, arrival_before_call, implausible_time or unknown_municipality',
    urgency String COMMENT 'A0, A1 or A0+A1',
    incidents UInt64 COMMENT 'Incidents of the year left out of the statistics for this reason (national)'
)
ENGINE = MergeTree()
PARTITION BY year
ORDER BY (year, reason, urgency)
-- statement-break
CREATE TABLE IF NOT EXISTS {db}.municipality_report_publications
(
    year UInt16 COMMENT 'Reporting year',
    published_at DateTime('UTC') COMMENT 'When this year was last published',
    min_deployments UInt64 COMMENT 'Suppression: minimum deployments for a cell to be published',
    min_deployments_percentiles UInt64 COMMENT 'Minimum deployments for median and percentiles',
    norm_seconds UInt32 COMMENT 'The response-time norm (900 s: 95% of A1 within 15 minutes per region)',
    counting_unit_types String COMMENT 'Unit types whose arrival counts, comma-separated',
    cells UInt64 COMMENT 'Cells published (suppressed ones included)',
    suppressed_cells UInt64 COMMENT 'Cells suppressed'
)
ENGINE = MergeTree()
PARTITION BY year
ORDER BY year
