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
use crate::sink::{now_secs, EventRow, Sink, SinkError};
use crate::source::{Done, KafkaSource, RawRecord};
use crate::telemetry::{self, Health};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
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
        dlq,
        counters.clone(),
    ));
    let sink_task = tokio::spawn(sink_stage(
        rx_item,
        sink,
        source.clone(),
        config.clone(),
        counters.clone(),
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
    done: Vec<Done>,
    bytes: usize,
    started: Option<tokio::time::Instant>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            rows: Vec::new(),
            done: Vec::new(),
            bytes: 0,
            started: None,
        }
    }
}

async fn sink_stage(
    mut rx: mpsc::Receiver<Item>,
    sink: Sink,
    source: Arc<KafkaSource>,
    config: Config,
    counters: Arc<Counters>,
) {
    let b = &config.batch;
    let max_wait = Duration::from_millis(b.max_wait_ms);
    let mut batch = Batch::new();
    loop {
        let flush_at = batch.started.map(|t| t + max_wait);
        tokio::select! {
            item = rx.recv() => match item {
                Some(Item::Row(row, done)) => {
                    batch.bytes += row.approx_bytes();
                    batch.rows.push(*row);
                    batch.done.push(done);
                    batch.started.get_or_insert_with(tokio::time::Instant::now);
                    if batch.rows.len() >= b.max_rows || batch.bytes >= b.max_bytes {
                        flush(&mut batch, &sink, &source, &config, &counters).await;
                    }
                }
                Some(Item::Finished(done)) => {
                    if batch.rows.is_empty() {
                        source.ack(&[done]);
                    } else {
                        batch.done.push(done);
                    }
                }
                None => {
                    flush(&mut batch, &sink, &source, &config, &counters).await;
                    return;
                }
            },
            _ = sleep_until(flush_at), if flush_at.is_some() => {
                flush(&mut batch, &sink, &source, &config, &counters).await;
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

/// Insert the batch, retrying with exponential backoff and jitter until ClickHouse acknowledges
/// it; only then release its offsets. The rows stay in memory between attempts.
async fn flush(
    batch: &mut Batch,
    sink: &Sink,
    source: &KafkaSource,
    config: &Config,
    counters: &Counters,
) {
    if batch.rows.is_empty() {
        if !batch.done.is_empty() {
            source.ack(&batch.done);
        }
        *batch = Batch::new();
        return;
    }
    let c = &config.clickhouse;
    let timeout = Duration::from_millis(c.request_timeout_ms);
    let mut backoff = Duration::from_millis(c.retry_initial_ms);
    let max = Duration::from_millis(c.retry_max_ms);
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        match sink.insert(&batch.rows, timeout).await {
            Ok(()) => {
                telemetry::insert_batch_done(batch.rows.len(), started.elapsed());
                let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
                for r in &batch.rows {
                    *per_topic.entry(r.source_topic.as_str()).or_default() += 1;
                }
                for (topic, n) in per_topic {
                    telemetry::records_inserted(topic, n);
                }
                counters
                    .inserted
                    .fetch_add(batch.rows.len() as u64, Ordering::SeqCst);
                source.ack(&batch.done);
                *batch = Batch::new();
                return;
            }
            Err(e) => {
                attempt += 1;
                let jitter = rand::rng().random_range(0.5..1.0);
                let wait = backoff.mul_f64(jitter);
                telemetry::insert_failed(batch.rows.len(), attempt, wait, &e);
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
