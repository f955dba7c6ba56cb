-- Which Kafka offsets reached ClickHouse, for `dispatch-ingest audit`. dispatch_events cannot
-- answer that by itself: when the same event arrives twice at different offsets (a producer
-- retry, a replay), ReplacingMergeTree keeps one row and one offset. This table is fed by a
-- materialized view from every inserted block before any merge, keyed by the offset itself, so
-- each offset is kept (redeliveries of the same offset collapse, which the audit's distinct count
-- ignores anyway).
CREATE TABLE IF NOT EXISTS {db}.ingest_offsets
(
    source_topic String COMMENT 'Kafka topic',
    source_partition Int32 COMMENT 'Kafka partition',
    source_offset Int64 COMMENT 'Kafka offset of a record whose row was inserted',
    event_id UUID COMMENT 'The event the record carried',
    ingested_at DateTime('UTC') COMMENT 'When the row was inserted'
)
ENGINE = ReplacingMergeTree()
ORDER BY (source_topic, source_partition, source_offset)
-- statement-break
CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.ingest_offsets_mv TO {db}.ingest_offsets AS
SELECT source_topic, source_partition, source_offset, event_id, ingested_at
FROM {db}.dispatch_events
-- statement-break
-- Backfill: offsets of rows written before this migration (offsets already collapsed away by
-- merges cannot be recovered; audit those partitions from their next records on).
INSERT INTO {db}.ingest_offsets
SELECT source_topic, source_partition, source_offset, event_id, ingested_at
FROM {db}.dispatch_events
