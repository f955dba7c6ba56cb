//! Completeness audit: per topic and partition, compare what Kafka holds below the consumer
//! group's committed offset with what ClickHouse (`ingest_offsets`, every offset whose row was
//! inserted) and the dead-letter topic hold. Every record
//! below the committed offset must be in exactly one of them; a difference is reported with the
//! partition it is in. Records at or above the committed offset are lag, not loss.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::Config;
use crate::dlq;
use crate::event::Stream;
use crate::kafka::client_config;
use crate::sink::{Sink, SinkError};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("the scan of dead-letter topic {topic} was cut: {unfinished} partition(s) not read to the end after {idle_ms} ms without a record; the audit cannot tell what is dead-lettered")]
    DlqScanCut {
        topic: String,
        unfinished: usize,
        idle_ms: u64,
    },
}

/// The DLQ scan fails when no record arrives for this long before every partition's end.
pub const DLQ_SCAN_IDLE: Duration = Duration::from_secs(30);

/// One partition's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionAudit {
    pub topic: String,
    pub partition: i32,
    /// Kafka's low and high watermarks.
    pub low: i64,
    pub high: i64,
    /// The group's committed offset (next to read); `low` when nothing is committed.
    pub committed: i64,
    /// Distinct offsets in [low, committed) found in ClickHouse.
    pub inserted: u64,
    /// Distinct offsets in [low, committed) found on the dead-letter topic.
    pub dead_lettered: u64,
}

impl PartitionAudit {
    /// Records below the committed offset that are neither inserted nor dead-lettered
    /// (negative if a record is counted twice).
    pub fn missing(&self) -> i64 {
        (self.committed - self.low) - self.inserted as i64 - self.dead_lettered as i64
    }

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
        let metadata = retry_transient(|| consumer.fetch_metadata(Some(&topic), timeout))?;
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
            let (mut low, high) =
                retry_transient(|| consumer.fetch_watermarks(&topic, p, timeout))?;
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
            out.push(PartitionAudit {
                topic: topic.clone(),
                partition: p,
                low,
                high,
                committed,
                inserted,
                dead_lettered,
            });
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

/// A metadata or watermark request, retried for a few seconds while the broker answers that a
/// partition's leader is moving or not yet known (right after a topic is created, during a
/// broker restart); any other error, or the same one after the retries, is returned.
fn retry_transient<T>(
    mut request: impl FnMut() -> rdkafka::error::KafkaResult<T>,
) -> rdkafka::error::KafkaResult<T> {
    use rdkafka::types::RDKafkaErrorCode as Code;
    let mut attempt = 0;
    loop {
        match request() {
            Err(e)
                if attempt < 20
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
                std::thread::sleep(Duration::from_millis(250));
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
    let metadata = retry_transient(|| consumer.fetch_metadata(Some(topic), timeout))?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0usize;
    for p in metadata.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = retry_transient(|| consumer.fetch_watermarks(topic, p.id(), timeout))?;
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

/// A text table of the audit, with totals.
pub fn render(rows: &[PartitionAudit]) -> String {
    let mut s = format!(
        "{:<32} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
        "topic", "part", "low", "committed", "high", "inserted", "dead-lett.", "missing", "lag"
    );
    for r in rows {
        s.push_str(&format!(
            "{:<32} {:>4} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
            r.topic,
            r.partition,
            r.low,
            r.committed,
            r.high,
            r.inserted,
            r.dead_lettered,
            r.missing(),
            r.lag()
        ));
    }
    let consumed: i64 = rows.iter().map(|r| r.committed - r.low).sum();
    let inserted: u64 = rows.iter().map(|r| r.inserted).sum();
    let dead: u64 = rows.iter().map(|r| r.dead_lettered).sum();
    let missing: i64 = rows.iter().map(PartitionAudit::missing).sum();
    let lag: i64 = rows.iter().map(PartitionAudit::lag).sum();
    s.push_str(&format!(
        "audit: committed {consumed}, inserted {inserted}, dead-lettered {dead}, difference {missing}, lag {lag}\n"
    ));
    s
}
