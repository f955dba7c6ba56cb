-- What landed: events per stream (duplicates collapsed), their time range and Kafka coverage.
SELECT
    event_type,
    uniqExact(event_id) AS events,
    count() AS rows_including_redeliveries,
    min(occurred_at) AS first_occurred_at,
    max(occurred_at) AS last_occurred_at,
    uniqExact(source_topic, source_partition) AS partitions
FROM {db}.dispatch_events
GROUP BY event_type
ORDER BY event_type
