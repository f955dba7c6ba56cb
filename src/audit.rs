//! Completeness audit: per topic and partition, compare what Kafka holds below the consumer
//! group's committed offset with what ClickHouse (`ingest_offsets`, every offset whose row was
//! inserted) and the dead-letter topic hold. Every record
//! below the committed offset must be in exactly one of them; a difference is reported with the
//! partition it is in. Records at or above the committed offset are lag, not loss.
//!
//! Offsets are not contiguous: a transactional producer's commit and abort markers take an
//! offset each, a read-committed consumer (the pipeline, by librdkafka's default) never sees
//! aborted records, and compaction removes records. When a partition's inserted and
//! dead-lettered offsets do not cover its committed range, the audit therefore reads exactly
//! the uncovered offsets back from Kafka (seeking over covered stretches): an offset that holds
//! no record is counted as `no record`, one that holds a record is missing and named.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::backoff::{Backoff, RetryClass, RetryOperation};
use crate::config::{Config, RetryConfig};
use crate::dlq;
use crate::event::Stream;
use crate::kafka::client_config;
use crate::sink::{Sink, SinkError};
use crate::telemetry;

/// Why an audit could not give a complete account.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A Kafka client (metadata, watermarks, committed offsets, reads) failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Reading `ingest_offsets` from ClickHouse failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// Reading the dead-letter topic stopped before every partition's end.
    #[error("the scan of dead-letter topic {topic} was cut: {unfinished} partition(s) not read to the end after {idle_ms} ms without a record; the audit cannot tell what is dead-lettered")]
    DlqScanCut {
        /// The dead-letter topic (`kafka.dlq_topic`).
        topic: String,
        /// Partitions not read to their end.
        unfinished: usize,
        /// How long no record arrived, in milliseconds ([`DLQ_SCAN_IDLE`]).
        idle_ms: u64,
    },
    /// Reading back a partition's uncovered offsets stopped before the last one.
    #[error("the read of {topic}/{partition} was cut at offset {at}: no record and no partition end for {idle_ms} ms; the audit cannot tell whether offsets from {at} to {end} hold records")]
    GapScanCut {
        /// The topic read.
        topic: String,
        /// The partition read.
        partition: i32,
        /// The offset the read stopped at.
        at: i64,
        /// The end of the range that was to be read (exclusive).
        end: i64,
        /// How long neither a record nor the partition's end arrived, in milliseconds ([`GAP_SCAN_IDLE`]).
        idle_ms: u64,
    },
}

/// The most missing offsets a partition's account names.
pub const MISSING_SAMPLE: usize = 10;

/// Uncovered stretches closer together than this are read through rather than sought over.
const SEEK_AHEAD: i64 = 1_000;

/// The DLQ scan fails when no record arrives for this long before every partition's end.
pub const DLQ_SCAN_IDLE: Duration = Duration::from_secs(30);

/// Reading a partition's uncovered offsets fails after this long without a record or its end.
pub const GAP_SCAN_IDLE: Duration = Duration::from_secs(30);

/// One partition's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAudit {
    /// The stream topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Kafka's low and high watermarks.
    pub low: i64,
    /// High watermark: the offset the next record produced will get.
    pub high: i64,
    /// The group's committed offset (next to read); `low` when nothing is committed.
    pub committed: i64,
    /// Distinct offsets in [low, committed) found in ClickHouse.
    pub inserted: u64,
    /// Distinct offsets in [low, committed) found on the dead-letter topic.
    pub dead_lettered: u64,
    /// Offsets in [low, committed) that hold no record a read-committed consumer sees
    /// (transaction markers, aborted records, compacted away), read back from Kafka.
    pub no_record: u64,
    /// The first missing offsets (at most [`MISSING_SAMPLE`]), read back from Kafka.
    pub missing_offsets: Vec<i64>,
}

impl PartitionAudit {
    /// Records below the committed offset that are neither inserted nor dead-lettered
    /// (negative if a record is counted twice).
    pub fn missing(&self) -> i64 {
        self.records() - self.inserted as i64 - self.dead_lettered as i64
    }

    /// Records Kafka holds in [low, committed).
    pub fn records(&self) -> i64 {
        self.committed - self.low - self.no_record as i64
    }

    /// Records at or above the committed offset (`high - committed`): lag, not loss.
    pub fn lag(&self) -> i64 {
        self.high - self.committed
    }
}

/// Where the audited range of a partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Kafka's low watermark: every record the topic still holds must be accounted for.
    LowWatermark,
    /// The lowest offset found in ClickHouse or on the DLQ: for a group that deliberately began
    /// later (auto_offset_reset = latest, a new deployment); it cannot see loss before that.
    FirstAccounted,
}

/// Audit every partition of the five stream topics.
pub async fn audit(
    config: &Config,
    sink: &Sink,
    start: Start,
) -> Result<Vec<PartitionAudit>, AuditError> {
    let consumer: BaseConsumer = client_config(&config.kafka)
        .set("group.id", &config.kafka.group_id)
        .set("enable.auto.commit", "false")
        .create()?;
    let timeout = Duration::from_secs(10);
    let dead = dead_lettered_offsets(config, DLQ_SCAN_IDLE)?;
    let mut out = Vec::new();
    for stream in Stream::ALL {
        let topic = config.topics.get(stream).name.clone();
        let metadata = retry_transient(&config.retry, &topic, || {
            consumer.fetch_metadata(Some(&topic), timeout)
        })?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&topic, *p);
        }
        let committed = consumer.committed_offsets(tpl, timeout)?;
        for p in partitions {
            let (mut low, high) = retry_transient(&config.retry, &topic, || {
                consumer.fetch_watermarks(&topic, p, timeout)
            })?;
            if start == Start::FirstAccounted {
                let first_inserted: i64 = offsets_query(
                    sink,
                    &format!("if(count() = 0, {high}, min(source_offset))"),
                    &topic,
                    p,
                    "1",
                )
                .await?;
                let first_dead = dead
                    .get(&(topic.clone(), p))
                    .and_then(|o| o.iter().min().copied())
                    .unwrap_or(high);
                low = low.max(first_inserted.min(first_dead));
            }
            let committed = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o.max(low),
                _ => low,
            };
            let inserted: u64 = offsets_query(
                sink,
                "uniqExact(source_offset)",
                &topic,
                p,
                &format!("source_offset >= {low} AND source_offset < {committed}"),
            )
            .await?;
            let dead_lettered = dead
                .get(&(topic.clone(), p))
                .map(|offsets| {
                    offsets
                        .iter()
                        .filter(|o| **o >= low && **o < committed)
                        .count()
                })
                .unwrap_or(0) as u64;
            let mut account = PartitionAudit {
                topic: topic.clone(),
                partition: p,
                low,
                high,
                committed,
                inserted,
                dead_lettered,
                no_record: 0,
                missing_offsets: Vec::new(),
            };
            if account.missing() > 0 {
                let mut covered = inserted_offsets(sink, &topic, p, low, committed).await?;
                if let Some(d) = dead.get(&(topic.clone(), p)) {
                    covered.extend(d.iter().filter(|o| **o >= low && **o < committed));
                }
                covered.sort_unstable();
                covered.dedup();
                let gaps = uncovered(&covered, low, committed);
                let (no_record, missing) = read_gaps(config, &topic, p, &gaps, GAP_SCAN_IDLE)?;
                account.no_record = no_record;
                account.missing_offsets = missing;
            }
            out.push(account);
        }
    }
    Ok(out)
}

/// One value aggregated over `ingest_offsets` of a partition.
async fn offsets_query<T>(
    sink: &Sink,
    aggregate: &str,
    topic: &str,
    partition: i32,
    condition: &str,
) -> Result<T, AuditError>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    let sql = format!(
        "SELECT {aggregate} FROM {}.ingest_offsets \
         WHERE source_topic = '{}' AND source_partition = {partition} AND {condition}",
        sink.database(),
        topic.replace('\'', "")
    );
    sink.client()
        .query(&sql)
        .fetch_one()
        .await
        .map_err(|source| {
            AuditError::Sink(SinkError::ClickHouse {
                url: String::new(),
                source,
            })
        })
}

/// The distinct offsets in [low, committed) of a partition found in `ingest_offsets`, sorted.
async fn inserted_offsets(
    sink: &Sink,
    topic: &str,
    partition: i32,
    low: i64,
    committed: i64,
) -> Result<Vec<i64>, AuditError> {
    sink.client()
        .query(
            "SELECT DISTINCT source_offset FROM ?.ingest_offsets \
             WHERE source_topic = ? AND source_partition = ? \
             AND source_offset >= ? AND source_offset < ? ORDER BY source_offset",
        )
        .bind(clickhouse::sql::Identifier(sink.database()))
        .bind(topic)
        .bind(partition)
        .bind(low)
        .bind(committed)
        .fetch_all::<i64>()
        .await
        .map_err(|source| {
            AuditError::Sink(SinkError::ClickHouse {
                url: String::new(),
                source,
            })
        })
}

/// The half-open ranges of [low, end) that `covered` (sorted, distinct) leaves out.
pub fn uncovered(covered: &[i64], low: i64, end: i64) -> Vec<(i64, i64)> {
    let mut gaps = Vec::new();
    let mut next = low;
    for &o in covered {
        if o < next {
            continue;
        }
        if o >= end {
            break;
        }
        if o > next {
            gaps.push((next, o));
        }
        next = o + 1;
    }
    if next < end {
        gaps.push((next, end));
    }
    gaps
}

/// Read the offsets in `gaps` (sorted half-open ranges) of one partition back from Kafka, as
/// the pipeline reads them (read committed): (offsets without a record, the first missing
/// offsets). Offsets between gaps are sought over when the next gap is far ahead.
pub fn read_gaps(
    config: &Config,
    topic: &str,
    partition: i32,
    gaps: &[(i64, i64)],
    idle: Duration,
) -> Result<(u64, Vec<i64>), AuditError> {
    let total: i64 = gaps.iter().map(|(a, b)| b - a).sum();
    if total == 0 {
        return Ok((0, Vec::new()));
    }
    let consumer: BaseConsumer = client_config(&config.kafka)
        .set("group.id", format!("{}-audit", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let in_gap = |o: i64| {
        let i = gaps.partition_point(|(_, end)| *end <= o);
        i < gaps.len() && gaps[i].0 <= o
    };
    let mut found = 0i64;
    let mut sample = Vec::new();
    // The next offset the consumer delivers (None: not assigned yet).
    let mut pos: Option<i64> = None;
    'gaps: for &(start, end) in gaps {
        if pos.is_some_and(|p| p >= end) {
            continue;
        }
        if pos.is_none_or(|p| start - p > SEEK_AHEAD) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
            consumer.assign(&tpl)?;
            pos = Some(start);
        }
        let mut last_progress = std::time::Instant::now();
        while pos.is_some_and(|p| p < end) {
            match consumer.poll(Duration::from_millis(200).min(idle)) {
                Some(Ok(msg)) => {
                    last_progress = std::time::Instant::now();
                    let o = msg.offset();
                    if in_gap(o) {
                        found += 1;
                        if sample.len() < MISSING_SAMPLE {
                            sample.push(o);
                        }
                    }
                    pos = Some(o + 1);
                }
                // The end (for a read-committed consumer, the last stable offset): no later
                // offset holds a record.
                Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break 'gaps,
                Some(Err(e)) => return Err(e.into()),
                None if last_progress.elapsed() >= idle => {
                    return Err(AuditError::GapScanCut {
                        topic: topic.to_string(),
                        partition,
                        at: pos.unwrap_or(start),
                        end,
                        idle_ms: idle.as_millis() as u64,
                    })
                }
                None => {}
            }
        }
    }
    Ok(((total - found) as u64, sample))
}

/// How long an audit request is retried while a partition's leader moves ([`retry_transient`]),
/// requests included (before the one policy: 20 sleeps of 250 ms plus the requests).
const METADATA_RETRY_LIMIT: Duration = Duration::from_secs(10);

/// Run a metadata or watermark request, retrying it with the retry policy (steps capped at 1 s,
/// each a `kafka_metadata` retry) for up to [`METADATA_RETRY_LIMIT`] while the partition's
/// leader is moving or not yet known (right after a topic is created, during a broker restart);
/// any other error, or the same one after the limit, is returned. `subject` names the topic.
fn retry_transient<T>(
    retry: &RetryConfig,
    subject: &str,
    mut request: impl FnMut() -> rdkafka::error::KafkaResult<T>,
) -> rdkafka::error::KafkaResult<T> {
    use rdkafka::types::RDKafkaErrorCode as Code;
    let started = std::time::Instant::now();
    let mut backoff = Backoff::from_config(retry).capped(Duration::from_secs(1));
    let mut attempt = 0;
    loop {
        match request() {
            Err(e)
                if started.elapsed() < METADATA_RETRY_LIMIT
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            Code::NotLeaderForPartition
                                | Code::LeaderNotAvailable
                                | Code::UnknownLeaderEpoch
                                | Code::FencedLeaderEpoch
                        )
                    ) =>
            {
                attempt += 1;
                let wait = backoff.next_wait();
                telemetry::retry(telemetry::RetryEvent {
                    operation: RetryOperation::KafkaMetadata,
                    class: RetryClass::Transient,
                    attempt,
                    wait,
                    subject,
                    error: &e,
                    message: "Kafka has no leader for a partition yet; asking again",
                });
                std::thread::sleep(wait);
            }
            other => return other,
        }
    }
}

/// Source (topic, partition) -> offsets, read from the dead-letter topic's headers, to the end
/// of every partition. No time limit on the whole scan (a large DLQ takes long), but `idle`
/// without a record or a partition end is an error: a cut scan is never reported as complete.
pub fn dead_lettered_offsets(
    config: &Config,
    idle: Duration,
) -> Result<BTreeMap<(String, i32), HashSet<i64>>, AuditError> {
    let consumer: BaseConsumer = client_config(&config.kafka)
        .set("group.id", format!("{}-audit", config.kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()?;
    let timeout = Duration::from_secs(10);
    let topic = &config.kafka.dlq_topic;
    let metadata = retry_transient(&config.retry, topic, || {
        consumer.fetch_metadata(Some(topic), timeout)
    })?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0usize;
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = retry_transient(&config.retry, topic, || {
            consumer.fetch_watermarks(topic, p.id(), timeout)
        })?;
        if high > low {
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(low))?;
            remaining += 1;
        }
    }
    let mut out: BTreeMap<(String, i32), HashSet<i64>> = BTreeMap::new();
    if remaining == 0 {
        return Ok(out);
    }
    consumer.assign(&tpl)?;
    let mut last_progress = std::time::Instant::now();
    while remaining > 0 {
        if last_progress.elapsed() > idle {
            return Err(AuditError::DlqScanCut {
                topic: topic.clone(),
                unfinished: remaining,
                idle_ms: idle.as_millis() as u64,
            });
        }
        match consumer.poll(Duration::from_millis(500).min(idle)) {
            Some(Ok(msg)) => {
                last_progress = std::time::Instant::now();
                let mut src_topic = None;
                let mut src_partition = None;
                let mut src_offset = None;
                if let Some(h) = msg.headers() {
                    for x in crate::kafka::read_headers(h) {
                        let v = String::from_utf8_lossy(x.value.as_deref().unwrap_or_default())
                            .into_owned();
                        match x.key_lossy().as_ref() {
                            dlq::HEADER_SOURCE_TOPIC => src_topic = Some(v),
                            dlq::HEADER_SOURCE_PARTITION => src_partition = v.parse().ok(),
                            dlq::HEADER_SOURCE_OFFSET => src_offset = v.parse().ok(),
                            _ => {}
                        }
                    }
                }
                if let (Some(t), Some(p), Some(o)) = (src_topic, src_partition, src_offset) {
                    out.entry((t, p)).or_default().insert(o);
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {
                last_progress = std::time::Instant::now();
                remaining -= 1;
            }
            Some(Err(e)) => return Err(e.into()),
            None => {}
        }
    }
    Ok(out)
}

/// A text table of the audit, with totals and the first missing offsets of each partition.
pub fn render(rows: &[PartitionAudit]) -> String {
    let line = |cells: [&dyn std::fmt::Display; 10]| {
        format!(
            "{:<32} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            cells[5],
            cells[6],
            cells[7],
            cells[8],
            cells[9]
        )
    };
    let mut s = line([
        &"topic",
        &"part",
        &"low",
        &"committed",
        &"high",
        &"no record",
        &"inserted",
        &"dead-lett.",
        &"missing",
        &"lag",
    ]);
    for r in rows {
        s.push_str(&line([
            &r.topic,
            &r.partition,
            &r.low,
            &r.committed,
            &r.high,
            &r.no_record,
            &r.inserted,
            &r.dead_lettered,
            &r.missing(),
            &r.lag(),
        ]));
    }
    for r in rows.iter().filter(|r| !r.missing_offsets.is_empty()) {
        let offsets: Vec<String> = r.missing_offsets.iter().map(i64::to_string).collect();
        let more = if r.missing() > r.missing_offsets.len() as i64 {
            ", ..."
        } else {
            ""
        };
        s.push_str(&format!(
            "missing in {}/{}: offsets {}{more}\n",
            r.topic,
            r.partition,
            offsets.join(", ")
        ));
    }
    let records: i64 = rows.iter().map(PartitionAudit::records).sum();
    let no_record: u64 = rows.iter().map(|r| r.no_record).sum();
    let inserted: u64 = rows.iter().map(|r| r.inserted).sum();
    let dead: u64 = rows.iter().map(|r| r.dead_lettered).sum();
    let missing: i64 = rows.iter().map(PartitionAudit::missing).sum();
    let lag: i64 = rows.iter().map(PartitionAudit::lag).sum();
    s.push_str(&format!(
        "audit: committed {records}, inserted {inserted}, dead-lettered {dead}, difference {missing}, lag {lag} (offsets without a record: {no_record})\n"
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncovered_ranges() {
        assert_eq!(uncovered(&[], 0, 5), [(0, 5)]);
        assert_eq!(uncovered(&[0, 1, 2, 3, 4], 0, 5), []);
        assert_eq!(uncovered(&[1, 2, 4], 0, 6), [(0, 1), (3, 4), (5, 6)]);
        // Offsets outside [low, end) are ignored.
        assert_eq!(uncovered(&[2, 3, 9, 10], 3, 6), [(4, 6)]);
        assert_eq!(uncovered(&[5], 5, 5), []);
    }

    fn account(committed: i64, inserted: u64, dead: u64, no_record: u64) -> PartitionAudit {
        PartitionAudit {
            topic: "t".into(),
            partition: 0,
            low: 0,
            high: committed + 2,
            committed,
            inserted,
            dead_lettered: dead,
            no_record,
            missing_offsets: Vec::new(),
        }
    }

    #[test]
    fn offsets_without_a_record_are_not_missing() {
        // 10 offsets: 6 inserted, 1 dead-lettered, 3 markers.
        let a = account(10, 6, 1, 3);
        assert_eq!(a.records(), 7);
        assert_eq!(a.missing(), 0);
        assert_eq!(a.lag(), 2);
        assert_eq!(account(10, 6, 1, 0).missing(), 3);
        assert_eq!(account(10, 8, 3, 0).missing(), -1);
        let text = render(&[a]);
        assert!(
            text.contains("committed 7, inserted 6, dead-lettered 1, difference 0, lag 2 (offsets without a record: 3)"),
            "{text}"
        );
    }
}
