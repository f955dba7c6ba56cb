//! Wires the stages: `source` reads Kafka, `process` decodes and enriches (or dead-letters), and
//! `sink` batches rows into ClickHouse and then releases their offsets. Stages are joined by
//! bounded channels, so a slow or unavailable ClickHouse makes the source wait (backpressure)
//! instead of buffering without limit.
//!
//! [`run`] takes the shutdown signal as a future: on shutdown the source stops reading, the
//! stages drain (the last batch is inserted), stored offsets are committed, and `run` returns,
//! all within `shutdown.deadline_ms`. Records not finished by then are simply not committed and
//! are read again on the next start.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::decode::registry::RegistryClient;
use crate::decode::{Codec, DecodeFailure, RecordError};
use crate::dlq::DeadLetters;
use crate::enrich::{self, Enricher, Meta};
use crate::sink::{classify, now_secs, EventRow, InsertFailure, Sink, SinkError};
use crate::source::{Done, KafkaSource, RawRecord};
use crate::telemetry::{self, Health};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    #[error("Avro schema: {0}")]
    Schema(#[from] apache_avro::Error),
    #[error(transparent)]
    Reference(#[from] crate::enrich::reference::ReferenceError),
    #[error("ClickHouse database `{database}` lacks migrations {pending:?}: run `dispatch-ingest migrate` first")]
    PendingMigrations {
        database: String,
        pending: Vec<&'static str>,
    },
    #[error("shutdown did not finish within shutdown.deadline_ms = {0}; unfinished records were not committed and will be read again")]
    Deadline(u64),
}

/// Counts of one run; consumed = inserted + dead_lettered + (not finished at shutdown).
#[derive(Debug, Default)]
pub struct Counters {
    pub consumed: AtomicU64,
    pub inserted: AtomicU64,
    pub dead_lettered: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub consumed: u64,
    pub inserted: u64,
    pub dead_lettered: u64,
}

impl Counters {
    pub fn summary(&self) -> Summary {
        Summary {
            consumed: self.consumed.load(Ordering::SeqCst),
            inserted: self.inserted.load(Ordering::SeqCst),
            dead_lettered: self.dead_lettered.load(Ordering::SeqCst),
        }
    }
}

/// What `process` hands to `sink`, in record order.
enum Item {
    Row(Box<EventRow>, Done),
    /// Finished without a row (dead-lettered).
    Finished(Done),
}

/// Run the pipeline until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    health: Health,
) -> Result<Summary, PipelineError> {
    let counters = Arc::new(Counters::default());
    let sink = Sink::connect(&config.clickhouse).await?;
    let pending = sink.pending_migrations().await?;
    if !pending.is_empty() {
        return Err(PipelineError::PendingMigrations {
            database: sink.database().to_string(),
            pending,
        });
    }
    let mut codec = Codec::new(&config.stream_formats())?;
    if let Some(settings) = config.registry_settings() {
        codec = codec.with_registry(Arc::new(RegistryClient::new(settings)));
    }
    let codec = Arc::new(codec);
    let enricher = Arc::new(config.enricher()?);
    crate::security::check_kafka(&config.kafka, crate::security::KAFKA_CHECK_WAIT).await?;
    let dlq = Arc::new(DeadLetters::new(&config.kafka)?);
    let source = Arc::new(KafkaSource::new(&config)?);
    let capacity = config.batch.channel_capacity;
    let (tx_raw, rx_raw) = mpsc::channel::<RawRecord>(capacity);
    let (tx_item, rx_item) = mpsc::channel::<Item>(capacity);

    let process = tokio::spawn(process_stage(
        rx_raw,
        tx_item,
        codec,
        enricher,
        dlq.clone(),
        counters.clone(),
    ));
    let sink_task = tokio::spawn(sink_stage(
        rx_item,
        SinkContext {
            sink,
            source: source.clone(),
            dlq: dlq.clone(),
            config: config.clone(),
            counters: counters.clone(),
        },
    ));
    health.set_ready(true);
    tracing::info!("pipeline running");

    // The source stage runs here, so `shutdown` need not be 'static.
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            received = source.recv() => match received {
                Ok(record) => {
                    counters.consumed.fetch_add(1, Ordering::SeqCst);
                    tokio::select! {
                        biased;
                        _ = &mut shutdown => break,
                        sent = tx_raw.send(record) => if sent.is_err() { break },
                    }
                }
                Err(e) => {
                    telemetry::kafka_error(&e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    tracing::info!("shutdown: draining the pipeline");
    health.set_ready(false);
    drop(tx_raw);
    let deadline = Duration::from_millis(config.shutdown.deadline_ms);
    let drained = tokio::time::timeout(deadline, async {
        let _ = process.await;
        let _ = sink_task.await;
    })
    .await;
    // Whatever was stored is correct to commit, even if draining timed out.
    if let Err(e) = source.commit() {
        telemetry::offset_commit_failed(&e);
    }
    let summary = counters.summary();
    tracing::info!(
        consumed = summary.consumed,
        inserted = summary.inserted,
        dead_lettered = summary.dead_lettered,
        unfinished = source.in_flight(),
        "pipeline stopped"
    );
    if drained.is_err() {
        return Err(PipelineError::Deadline(config.shutdown.deadline_ms));
    }
    Ok(summary)
}

async fn process_stage(
    mut rx: mpsc::Receiver<RawRecord>,
    tx: mpsc::Sender<Item>,
    codec: Arc<Codec>,
    enricher: Arc<Enricher>,
    dlq: Arc<DeadLetters>,
    counters: Arc<Counters>,
) {
    while let Some(record) = rx.recv().await {
        let item = process(&record, &codec, &enricher, &dlq, &counters).await;
        if tx.send(item).await.is_err() {
            break;
        }
    }
}

/// Decode and enrich one record, or dead-letter it. While the schema registry cannot be asked,
/// wait and ask again: the record is not at fault, and waiting here holds back the source
/// (backpressure) instead of dead-lettering good data.
async fn process(
    record: &RawRecord,
    codec: &Codec,
    enricher: &Enricher,
    dlq: &DeadLetters,
    counters: &Counters,
) -> Item {
    let done = record.done();
    let Some(bytes) = &record.payload else {
        let message = format!("{}: message has no value", record.position);
        dlq.send(record, "empty_payload", &message).await;
        counters.dead_lettered.fetch_add(1, Ordering::SeqCst);
        return Item::Finished(done);
    };
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 0u32;
    loop {
        match codec.decode(record.stream, bytes, now_ms()).await {
            Ok((event, schema_id)) => {
                let row = enrich::to_row(
                    &event,
                    &Meta {
                        position: &record.position,
                        format: codec.format(record.stream),
                        schema_id,
                        ingested_at: now_secs(),
                    },
                    enricher,
                );
                return Item::Row(Box::new(row), done);
            }
            Err(DecodeFailure::Invalid(error)) => {
                let kind = error.kind();
                let message = RecordError {
                    position: record.position.clone(),
                    error,
                }
                .to_string();
                dlq.send(record, kind, &message).await;
                counters.dead_lettered.fetch_add(1, Ordering::SeqCst);
                return Item::Finished(done);
            }
            Err(DecodeFailure::Registry(e)) => {
                attempt += 1;
                telemetry::registry_unavailable(&record.position, attempt, backoff, &e);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

struct Batch {
    rows: Vec<EventRow>,
    /// Where each row came from (same index as `rows`).
    row_done: Vec<Done>,
    /// Records finished without a row (dead-lettered upstream), released with this batch.
    other_done: Vec<Done>,
    bytes: usize,
    started: Option<tokio::time::Instant>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            rows: Vec::new(),
            row_done: Vec::new(),
            other_done: Vec::new(),
            bytes: 0,
            started: None,
        }
    }
}

/// What the sink stage needs besides its input.
struct SinkContext {
    sink: Sink,
    source: Arc<KafkaSource>,
    dlq: Arc<DeadLetters>,
    config: Config,
    counters: Arc<Counters>,
}

async fn sink_stage(mut rx: mpsc::Receiver<Item>, ctx: SinkContext) {
    let b = &ctx.config.batch;
    let max_wait = Duration::from_millis(b.max_wait_ms);
    let mut batch = Batch::new();
    loop {
        let flush_at = batch.started.map(|t| t + max_wait);
        tokio::select! {
            item = rx.recv() => match item {
                Some(Item::Row(row, done)) => {
                    batch.bytes += row.approx_bytes();
                    batch.rows.push(*row);
                    batch.row_done.push(done);
                    batch.started.get_or_insert_with(tokio::time::Instant::now);
                    if batch.rows.len() >= b.max_rows || batch.bytes >= b.max_bytes {
                        flush(&mut batch, &ctx).await;
                    }
                }
                Some(Item::Finished(done)) => {
                    if batch.rows.is_empty() {
                        ctx.source.ack(&[done]);
                    } else {
                        batch.other_done.push(done);
                    }
                }
                None => {
                    flush(&mut batch, &ctx).await;
                    return;
                }
            },
            _ = sleep_until(flush_at), if flush_at.is_some() => {
                flush(&mut batch, &ctx).await;
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Insert the batch and only then release its offsets. Retriable failures (and a table that does
/// not match, which needs an operator) are retried with exponential backoff and jitter, the rows
/// staying in memory. When ClickHouse rejects row data, the batch is split until the rejected rows
/// are isolated; those go to the dead-letter topic (the row as JSON, with the reason and the source
/// position) and the rest is inserted. Nothing is acknowledged that is not in ClickHouse or on
/// the dead-letter topic.
async fn flush(batch: &mut Batch, ctx: &SinkContext) {
    if batch.rows.is_empty() {
        if !batch.other_done.is_empty() {
            ctx.source.ack(&batch.other_done);
        }
        *batch = Batch::new();
        return;
    }
    let started = Instant::now();
    let mut pending: Vec<std::ops::Range<usize>> = Vec::new();
    pending.push(0..batch.rows.len());
    let mut rejected: Vec<(usize, String)> = Vec::new();
    let mut inserts = 0usize;
    while let Some(range) = pending.pop() {
        match insert_with_retry(&batch.rows[range.clone()], ctx).await {
            Ok(()) => inserts += 1,
            Err(e) if range.len() == 1 => rejected.push((range.start, e)),
            Err(_) => {
                let mid = range.start + range.len() / 2;
                pending.push(mid..range.end);
                pending.push(range.start..mid);
            }
        }
    }
    for (i, reason) in &rejected {
        let row = &batch.rows[*i];
        let done = &batch.row_done[*i];
        let pos = crate::event::SourcePosition {
            topic: done.topic.clone(),
            partition: done.partition,
            offset: done.offset,
        };
        let payload = serde_json::to_vec(row).unwrap_or_default();
        let message = format!("{pos}: ClickHouse rejected the row: {reason}");
        ctx.dlq
            .send_parts(
                Some(row.incident_id.as_bytes()),
                Some(&payload),
                &[],
                &pos,
                "clickhouse_rejected",
                &message,
            )
            .await;
    }
    let inserted = batch.rows.len() - rejected.len();
    telemetry::insert_batch_done(inserted, batch.bytes, started.elapsed());
    let rejected_rows: std::collections::HashSet<usize> = rejected.iter().map(|r| r.0).collect();
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    let now = now_ms();
    for (i, r) in batch.rows.iter().enumerate() {
        if !rejected_rows.contains(&i) {
            *per_topic.entry(r.source_topic.as_str()).or_default() += 1;
            telemetry::row_inserted(r.occurred_at_ms, batch.row_done[i].kafka_timestamp_ms, now);
        }
    }
    for (topic, n) in per_topic {
        telemetry::records_inserted(topic, n);
    }
    if inserts > 1 {
        tracing::warn!(
            rows = batch.rows.len(),
            rejected = rejected.len(),
            inserts,
            "ClickHouse rejected row data; the batch was split and the rejected rows dead-lettered"
        );
    }
    ctx.counters
        .inserted
        .fetch_add(inserted as u64, Ordering::SeqCst);
    ctx.counters
        .dead_lettered
        .fetch_add(rejected.len() as u64, Ordering::SeqCst);
    ctx.source.ack(&batch.row_done);
    ctx.source.ack(&batch.other_done);
    *batch = Batch::new();
}

/// Insert `rows`, retrying until ClickHouse acknowledges them; `Err` only when it rejects the
/// data itself ([`InsertFailure::RowData`]).
async fn insert_with_retry(rows: &[EventRow], ctx: &SinkContext) -> Result<(), String> {
    let c = &ctx.config.clickhouse;
    let timeout = Duration::from_millis(c.request_timeout_ms);
    let mut backoff = Duration::from_millis(c.retry_initial_ms);
    let max = Duration::from_millis(c.retry_max_ms);
    let mut attempt = 0u32;
    loop {
        let err = match ctx.sink.insert(rows, timeout).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let kind = match &err {
            SinkError::ClickHouse { source, .. } => classify(source),
            _ => InsertFailure::Retriable,
        };
        if kind == InsertFailure::RowData {
            return Err(err.to_string());
        }
        attempt += 1;
        let jitter = rand::rng().random_range(0.5..1.0);
        let wait = backoff.mul_f64(jitter);
        telemetry::insert_failed(
            rows.len(),
            attempt,
            wait,
            &err,
            kind == InsertFailure::Schema,
        );
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(max);
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
