//! Wires the stages: `source` reads Kafka, `process` decodes and enriches (or dead-letters), and
//! `sink` batches rows into ClickHouse and then releases their offsets. Stages are joined by
//! bounded channels, so a slow or unavailable ClickHouse makes the source wait (backpressure)
//! instead of buffering without limit. The bound is in bytes as well as in records: every record
//! holds its size from the in-flight budget ([`budget`], `memory.limit_mb / 2`) until it is
//! inserted or dead-lettered.
//!
//! [`run`] takes the shutdown signal as a future: on shutdown the source stops reading, the
//! stages drain (the last batch is inserted), stored offsets are committed, and `run` returns,
//! all within `shutdown.deadline_ms`. Records not finished by then are simply not committed and
//! are read again on the next start.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::mpsc;

mod batcher;
pub mod budget;
mod insert;

use batcher::{Batch, Batcher, Limits};
use budget::{record_bytes, Budget, Held};
use insert::{insert_isolating, Refused, Writer};

use crate::backoff::{Backoff, RetryClass, RetryOperation};
use crate::clock::{now_ms, now_secs};
use crate::config::{Config, RetryConfig};
use crate::decode::registry::{RegistryClient, RegistrySettings};
use crate::decode::{Codec, DecodeFailure, RecordError};
use crate::dlq::DeadLetters;
use crate::enrich::{self, Enricher, Meta};
use crate::kafka::{Done, RawRecord};
use crate::row::EventRow;
use crate::sink::{
    classify, is_drift_suspect, split_by_partition, InsertFailure, Sink, SinkError, EVENTS_TABLE,
    MAX_MONTHS_PER_INSERT,
};
use crate::source::KafkaSource;
use crate::telemetry::{self, Health};

/// Why the pipeline could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A ClickHouse operation failed (connecting, the migration check).
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The Kafka consumer or dead-letter producer could not be created or failed.
    #[error("Kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// The TLS or SASL settings could not be applied.
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    /// A writer schema (bundled or `topics.*.writer_schema`) does not parse.
    #[error("Avro schema: {0}")]
    Schema(#[from] apache_avro::Error),
    /// The reference tables of `enrich.reference_dir` could not be loaded.
    #[error(transparent)]
    Reference(#[from] crate::enrich::reference::ReferenceError),
    /// The database lacks migrations this version needs; `dispatch-ingest migrate` applies them.
    #[error("ClickHouse database `{database}` lacks migrations {pending:?}: run `dispatch-ingest migrate` first")]
    PendingMigrations {
        /// The database checked (`clickhouse.database`).
        database: String,
        /// Names of the migrations not yet applied, e.g. `0005_response_times`.
        pending: Vec<&'static str>,
    },
    /// A stage (`source`, `process` or `sink`) panicked or ended before shutdown; stored offsets were committed.
    #[error("pipeline stage `{stage}` failed: {cause}; stored offsets were committed, unfinished records will be read again")]
    StageFailed {
        /// The stage that failed.
        stage: &'static str,
        /// Its panic message, or why it ended.
        cause: String,
    },
    /// Shutdown did not finish within `shutdown.deadline_ms` (the value, in milliseconds); unfinished records will be read again.
    #[error("shutdown did not finish within shutdown.deadline_ms = {0}; unfinished records were not committed and will be read again")]
    Deadline(u64),
}

/// Counts of one run; consumed = inserted + dead_lettered + (not finished at shutdown).
#[derive(Debug, Default)]
pub struct Counters {
    /// Records read from Kafka.
    pub consumed: AtomicU64,
    /// Records whose ClickHouse insert was acknowledged.
    pub inserted: AtomicU64,
    /// Records whose dead-letter write was acknowledged.
    pub dead_lettered: AtomicU64,
}

/// A snapshot of [`Counters`]: what one run consumed, inserted and dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Records read from Kafka.
    pub consumed: u64,
    /// Records inserted into ClickHouse.
    pub inserted: u64,
    /// Records written to the dead-letter topic.
    pub dead_lettered: u64,
}

impl Counters {
    /// The counts now.
    pub fn summary(&self) -> Summary {
        Summary {
            consumed: self.consumed.load(Ordering::SeqCst),
            inserted: self.inserted.load(Ordering::SeqCst),
            dead_lettered: self.dead_lettered.load(Ordering::SeqCst),
        }
    }
}

/// What `process` hands to `sink`, in record order. A row keeps its record's share of the
/// in-flight budget until it is inserted.
enum Item {
    Row(Box<EventRow>, Done, Held),
    /// Finished without a row (dead-lettered).
    Finished(Done),
}

/// A fault to inject into a stage, for tests of the failure path (a stage that panics must
/// stop the process with a non-zero exit code, a log line and a metric). Read by [`run`] from
/// `DISPATCH_INGEST_TEST_FAULT` (`panic:source`, `panic:process`, `panic:sink`, `hang:process`,
/// `hang:sink`); never set it
/// in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Panic in the named stage when it handles its first record.
    Panic(&'static str),
    /// Hang forever (a call that never returns) in the named stage at its first record.
    Hang(&'static str),
}

impl Fault {
    /// The environment variable that selects a fault: `panic:source`, `panic:process`, `panic:sink`, `hang:process` or `hang:sink`.
    pub const ENV: &'static str = "DISPATCH_INGEST_TEST_FAULT";

    /// The fault [`Fault::ENV`] selects; `None` when unset or unknown (logged).
    pub fn from_env() -> Option<Fault> {
        let v = std::env::var(Fault::ENV).ok()?;
        let fault = match v.as_str() {
            "panic:source" => Fault::Panic("source"),
            "panic:process" => Fault::Panic("process"),
            "panic:sink" => Fault::Panic("sink"),
            "hang:process" => Fault::Hang("process"),
            "hang:sink" => Fault::Hang("sink"),
            other => {
                tracing::warn!(value = other, "unknown {} ignored", Fault::ENV);
                return None;
            }
        };
        tracing::warn!(?fault, "fault injection enabled ({})", Fault::ENV);
        Some(fault)
    }

    fn trigger(fault: Option<Fault>, stage: &str) {
        if fault == Some(Fault::Panic(stage_name(stage))) {
            panic!("injected fault: {stage} stage panics ({})", Fault::ENV);
        }
    }

    async fn hang(fault: Option<Fault>, stage: &str) {
        if fault == Some(Fault::Hang(stage_name(stage))) {
            tracing::warn!(stage, "injected fault: the stage hangs ({})", Fault::ENV);
            std::future::pending::<()>().await;
        }
    }
}

fn stage_name(stage: &str) -> &'static str {
    match stage {
        "source" => "source",
        "process" => "process",
        _ => "sink",
    }
}

/// The cause of a stage's end, from its join result.
fn stage_cause(result: Result<Result<(), String>, tokio::task::JoinError>) -> String {
    match result {
        Ok(Ok(())) => "the stage returned before shutdown".to_string(),
        Ok(Err(cause)) => cause,
        Err(e) if e.is_panic() => {
            format!("panicked: {}", telemetry::panic_message(&*e.into_panic()))
        }
        Err(e) => format!("cancelled: {e}"),
    }
}

/// Run the pipeline until `shutdown` resolves.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
    health: Health,
) -> Result<Summary, PipelineError> {
    run_with_fault(config, shutdown, health, Fault::from_env()).await
}

/// [`run`] with an injected fault (tests).
pub async fn run_with_fault(
    config: Config,
    shutdown: impl Future<Output = ()>,
    health: Health,
    fault: Option<Fault>,
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
    let mut codec = Codec::from_config(&config.topics)?
        .with_limits(crate::decode::DecodeLimits::from_config(&config.decode));
    if let Some(settings) = RegistrySettings::from_config(&config.schema_registry, &config.retry) {
        codec = codec.with_registry(Arc::new(RegistryClient::new(settings)));
    }
    let codec = Arc::new(codec);
    let enricher = Arc::new(Enricher::from_config(&config.enrich)?);
    // The same properties as the consumer and the DLQ producer.
    crate::security::check_kafka(
        &config.kafka,
        crate::kafka::client_config(&config.kafka),
        &config.retry,
        crate::security::KAFKA_CHECK_WAIT,
    )
    .await?;
    health.configure(telemetry::HealthSettings::from_config(&config));
    let dlq = Arc::new(DeadLetters::new(&config.kafka, &config.retry)?.with_health(health.clone()));
    let source = Arc::new(KafkaSource::with_health(&config, health.clone())?);
    let interval = Duration::from_millis(config.telemetry.health_interval_ms);
    let ping = tokio::spawn(ping_clickhouse(sink.clone(), health.clone(), interval));
    let capacity = config.batch.channel_capacity;
    let memory = config.memory.budget(config.decode.max_record_bytes);
    let budget = Budget::new(memory.in_flight_bytes);
    let (tx_raw, rx_raw) = mpsc::channel::<(RawRecord, Held)>(capacity);
    let (tx_item, rx_item) = mpsc::channel::<Item>(capacity);

    // The columns as they are now: an insert rejected for a type later is checked against
    // them, so a column changed on the server stops the sink instead of dead-lettering rows.
    let columns = sink.table_columns().await?;
    let process_task = process_stage(
        rx_raw,
        tx_item,
        (codec, enricher, config.retry.clone()),
        dlq.clone(),
        counters.clone(),
        (fault, health.clone()),
    );
    let mut process = Some(tokio::spawn(async move {
        process_task.await;
        Ok::<(), String>(())
    }));
    let mut sink_task = Some(tokio::spawn(sink_stage(
        rx_item,
        SinkContext {
            sink,
            source: source.clone(),
            dlq: dlq.clone(),
            config: config.clone(),
            counters: counters.clone(),
            health: health.clone(),
            columns,
        },
        fault,
    )));
    health.set_ready(true);
    tracing::info!("pipeline running");

    // The source stage runs here, so `shutdown` need not be 'static. A stage that ends before
    // shutdown (a panic, or a stage returning) is a failure: the others drain, what is stored
    // is committed, and `run` returns the failure so the process exits non-zero.
    let mut failed: Option<(&'static str, String)> = None;
    tokio::pin!(shutdown);
    let source_loop = async {
        let mut tick = tokio::time::interval(interval);
        // Consumer errors in a row.
        let mut receive_errors = 0u32;
        loop {
            health.beat("source");
            tokio::select! {
                biased;
                _ = &mut shutdown => return None,
                r = async { process.as_mut().expect("running").await } => {
                    process = None;
                    return Some(("process", stage_cause(r)));
                }
                r = async { sink_task.as_mut().expect("running").await } => {
                    sink_task = None;
                    return Some(("sink", stage_cause(r)));
                }
                received = source.recv() => match received {
                    Ok(record) => {
                        receive_errors = 0;
                        Fault::trigger(fault, "source");
                        counters.consumed.fetch_add(1, Ordering::SeqCst);
                        // Room in the byte budget first (backpressure by bytes), then in the
                        // channel (by count).
                        let bytes = record_bytes(&record);
                        let send = async {
                            let held = budget.acquire(bytes).await;
                            tx_raw.send((record, held)).await
                        };
                        tokio::pin!(send);
                        loop {
                            tokio::select! {
                                biased;
                                _ = &mut shutdown => return None,
                                // Waiting for room downstream (backpressure) is progress.
                                _ = tick.tick() => health.beat("source"),
                                // The process stage may be gone: its join result says why.
                                _ = &mut send => break,
                            }
                        }
                    }
                    Err(e) => {
                        telemetry::kafka_receive_error();
                        receive_errors += 1;
                        // Only the first step of the policy, every time: librdkafka reconnects by
                        // itself and queues its errors as events between the records, so a
                        // growing wait would hold back the records behind a burst of them (a
                        // broker restart queues dozens).
                        let wait = Backoff::from_config(&config.retry).next_wait();
                        telemetry::retry(telemetry::RetryEvent {
                            operation: RetryOperation::KafkaReceive,
                            class: RetryClass::Transient,
                            attempt: receive_errors,
                            wait,
                            subject: "consumer",
                            error: &e,
                            message: "Kafka consumer error; receiving again",
                        });
                        tokio::select! {
                            biased;
                            _ = &mut shutdown => return None,
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                },
                // Waiting for records is progress too.
                _ = tick.tick() => {}
            }
        }
    };
    match std::panic::AssertUnwindSafe(source_loop)
        .catch_unwind()
        .await
    {
        Ok(None) => tracing::info!("shutdown: draining the pipeline"),
        Ok(Some(f)) => failed = Some(f),
        Err(payload) => {
            failed = Some((
                "source",
                format!("panicked: {}", telemetry::panic_message(&*payload)),
            ))
        }
    }
    if let Some((stage, cause)) = &failed {
        telemetry::stage_failed(stage, cause);
    }
    health.set_ready(false);
    ping.abort();
    drop(tx_raw);
    let deadline = Duration::from_millis(config.shutdown.deadline_ms);
    let drained = tokio::time::timeout(deadline, async {
        for (stage, task) in [("process", process.take()), ("sink", sink_task.take())] {
            let Some(task) = task else { continue };
            let result = task.await;
            if !matches!(result, Ok(Ok(()))) {
                let cause = stage_cause(result);
                telemetry::stage_failed(stage, &cause);
                if failed.is_none() {
                    failed = Some((stage, cause));
                }
            }
        }
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
    if let Some((stage, cause)) = failed {
        return Err(PipelineError::StageFailed { stage, cause });
    }
    if drained.is_err() {
        return Err(PipelineError::Deadline(config.shutdown.deadline_ms));
    }
    Ok(summary)
}

/// Records the process stage works on at once. Decoding and enriching are quick, but a record
/// that is dead-lettered waits for the dead-letter topic's acknowledgement (a few ms): one at a
/// time, a run of bad records went at about 170 a second. The results leave the stage in the
/// records' order, so what the sink sees, and the order of acknowledgements, is unchanged.
pub const PROCESS_CONCURRENCY: usize = 64;

async fn process_stage(
    rx: mpsc::Receiver<(RawRecord, Held)>,
    tx: mpsc::Sender<Item>,
    (codec, enricher, retry): (Arc<Codec>, Arc<Enricher>, RetryConfig),
    dlq: Arc<DeadLetters>,
    counters: Arc<Counters>,
    (fault, health): (Option<Fault>, Health),
) {
    use futures::StreamExt;
    let (codec, enricher, retry, dlq, counters, health) =
        (&*codec, &*enricher, &retry, &*dlq, &*counters, &health);
    // Taken from the channel minus handed on: while records are in flight, the beat comes
    // from their work (each record's start, registry and dead-letter waits), so a record that
    // hangs stops the beat; when idle, the tick beats.
    let in_flight = AtomicUsize::new(0);
    let in_flight = &in_flight;
    let records =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
    let mut items = std::pin::pin!(records
        .map(|(record, held): (RawRecord, Held)| {
            in_flight.fetch_add(1, Ordering::SeqCst);
            async move {
                Fault::trigger(fault, "process");
                Fault::hang(fault, "process").await;
                process(
                    &record,
                    held,
                    (codec, enricher, retry),
                    dlq,
                    counters,
                    health,
                )
                .await
            }
        })
        .buffered(PROCESS_CONCURRENCY));
    let mut tick = tokio::time::interval(Duration::from_millis(1000));
    loop {
        let item = tokio::select! {
            item = items.next() => match item {
                Some(item) => item,
                None => break,
            },
            _ = tick.tick() => {
                if in_flight.load(Ordering::SeqCst) == 0 {
                    health.beat("process");
                }
                continue;
            }
        };
        in_flight.fetch_sub(1, Ordering::SeqCst);
        health.beat("process");
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
    held: Held,
    (codec, enricher, retry): (&Codec, &Enricher, &RetryConfig),
    dlq: &DeadLetters,
    counters: &Counters,
    health: &Health,
) -> Item {
    let done = record.done();
    let Some(bytes) = &record.payload else {
        let message = format!("{}: message has no value", record.position);
        dlq.send(record, "empty_payload", &message).await;
        counters.dead_lettered.fetch_add(1, Ordering::SeqCst);
        return Item::Finished(done);
    };
    let mut backoff = Backoff::from_config(retry);
    let mut attempt = 0u32;
    loop {
        health.beat("process");
        match codec.decode(record.stream, bytes, now_ms()).await {
            Ok((event, schema_id)) => {
                if schema_id.is_some() {
                    health.set_passive_check("registry", Ok(()));
                }
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
                return Item::Row(Box::new(row), done, held);
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
                health.set_passive_check("registry", Err(format!("registry: {e}")));
                attempt += 1;
                let wait = backoff.next_wait();
                telemetry::registry_unavailable(&record.position, attempt, wait, &e);
                tokio::time::sleep(wait).await;
            }
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
    health: Health,
    /// `dispatch_events` columns (name, type) at start.
    columns: Vec<(String, String)>,
}

/// The readiness check `clickhouse`: `SELECT 1` every `interval`.
async fn ping_clickhouse(sink: Sink, health: Health, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let ping = sink.client().query("SELECT 1").fetch_one::<u8>();
        let result = match tokio::time::timeout(interval.max(Duration::from_secs(1)), ping).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("clickhouse: ping failed: {e}")),
            Err(_) => Err(format!(
                "clickhouse: no answer to a ping within {} ms",
                interval.as_millis()
            )),
        };
        health.set_check("clickhouse", result);
    }
}

/// Returns `Err` with the cause when ClickHouse's table does not accept the rows (a deployment
/// problem): the failed batch is not acknowledged, the run stops with a stage failure.
async fn sink_stage(
    mut rx: mpsc::Receiver<Item>,
    ctx: SinkContext,
    fault: Option<Fault>,
) -> Result<(), String> {
    let b = &ctx.config.batch;
    let memory = ctx.config.memory.budget(ctx.config.decode.max_record_bytes);
    let mut batcher: Batcher<(EventRow, Done, Held), Done> = Batcher::new(Limits {
        max_rows: b.max_rows,
        max_bytes: b.max_bytes,
        max_held: memory.batch_held_bytes,
        max_wait: Duration::from_millis(b.max_wait_ms),
    });
    let mut tick = tokio::time::interval(Duration::from_millis(1000));
    loop {
        ctx.health.beat("sink");
        let flush_at = batcher.deadline();
        tokio::select! {
            _ = tick.tick() => {}
            item = rx.recv() => match item {
                Some(Item::Row(row, done, held)) => {
                    Fault::trigger(fault, "sink");
                    Fault::hang(fault, "sink").await;
                    let bytes = row.approx_bytes();
                    let held_bytes = held.bytes();
                    let now = tokio::time::Instant::now();
                    if let Some(batch) = batcher.push((*row, done, held), bytes, held_bytes, now) {
                        flush(batch, &ctx).await?;
                    }
                }
                Some(Item::Finished(done)) => {
                    if let Some(done) = batcher.finish(done) {
                        ctx.source.ack(&[done]);
                    }
                }
                None => {
                    return match batcher.take() {
                        Some(batch) => flush(batch, &ctx).await,
                        None => Ok(()),
                    }
                }
            },
            _ = sleep_until(flush_at), if flush_at.is_some() => {
                if let Some(batch) = batcher.due(tokio::time::Instant::now()) {
                    flush(batch, &ctx).await?;
                }
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

/// Insert the batch and only then release its offsets (and its rows' share of the in-flight
/// budget, when the batch is dropped at the end). Retriable failures (and a table that does
/// not match, which needs an operator) are retried with exponential backoff and jitter, the rows
/// staying in memory. When ClickHouse rejects row data, the batch is split until the rejected rows
/// are isolated; those go to the dead-letter topic (the row as JSON, with the reason and the source
/// position) and the rest is inserted. Nothing is acknowledged that is not in ClickHouse or on
/// the dead-letter topic.
///
/// Rows spanning more months of `occurred_at` than one insert may touch (the table partitions by
/// month; a backfill) are inserted month-ordered in several inserts of at most
/// [`MAX_MONTHS_PER_INSERT`] months. `Err` (nothing of the batch acknowledged) when the table
/// does not accept the rows at all: the sink stage stops.
async fn flush(
    batch: Batch<(EventRow, Done, Held), Done>,
    ctx: &SinkContext,
) -> Result<(), String> {
    let Batch {
        rows: triples,
        finished,
        bytes,
        held: _,
    } = batch;
    if triples.is_empty() {
        if !finished.is_empty() {
            ctx.source.ack(&finished);
        }
        return Ok(());
    }
    let started = Instant::now();
    // Given back to the budget when this returns (inserted and acknowledged, or the stage stops).
    let mut held: Vec<Held> = Vec::with_capacity(triples.len());
    let (mut rows, mut row_done): (Vec<EventRow>, Vec<Done>) = triples
        .into_iter()
        .map(|(row, done, h)| {
            held.push(h);
            (row, done)
        })
        .unzip();
    let months: Vec<u32> = rows
        .iter()
        .map(|r| crate::sink::partition_month(r.occurred_at))
        .collect();
    let (order, ranges) = split_by_partition(&months, MAX_MONTHS_PER_INSERT);
    if ranges.len() > 1 {
        let mut taken_rows: Vec<Option<EventRow>> = rows.drain(..).map(Some).collect();
        let mut taken_done: Vec<Option<Done>> = row_done.drain(..).map(Some).collect();
        for &i in &order {
            rows.push(taken_rows[i].take().expect("a permutation"));
            row_done.push(taken_done[i].take().expect("a permutation"));
        }
    }
    let insert::Outcome { rejected, inserts } =
        insert_isolating(&ClickHouseWriter(ctx), &rows, ranges).await?;
    for (i, reason) in &rejected {
        let row = &rows[*i];
        let done = &row_done[*i];
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
                ("clickhouse_rejected", &message),
                "sink",
            )
            .await;
    }
    let inserted = rows.len() - rejected.len();
    telemetry::insert_batch_done(inserted, bytes, started.elapsed());
    let rejected_rows: std::collections::HashSet<usize> = rejected.iter().map(|r| r.0).collect();
    let mut per_topic: BTreeMap<&str, u64> = BTreeMap::new();
    let now = now_ms();
    for (i, r) in rows.iter().enumerate() {
        if !rejected_rows.contains(&i) {
            *per_topic.entry(r.source_topic.as_str()).or_default() += 1;
            telemetry::row_inserted(r.occurred_at_ms, row_done[i].kafka_timestamp_ms, now);
        }
    }
    for (topic, n) in per_topic {
        telemetry::records_inserted(topic, n);
    }
    if inserts > 1 {
        tracing::warn!(
            rows = rows.len(),
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
    ctx.source.ack(&row_done);
    ctx.source.ack(&finished);
    drop(held);
    Ok(())
}

/// The real [`Writer`]: ClickHouse, with the retries of [`insert_with_retry`].
struct ClickHouseWriter<'a>(&'a SinkContext);

impl Writer<EventRow> for ClickHouseWriter<'_> {
    fn write(
        &self,
        rows: &[EventRow],
    ) -> impl std::future::Future<Output = Result<(), Refused>> + Send {
        insert_with_retry(rows, self.0)
    }
}

/// Insert `rows`, retrying until ClickHouse acknowledges them. `Err` when it rejects the data
/// itself ([`InsertFailure::RowData`]), when the insert spans too many partitions, or when the
/// table does not match (a second [`InsertFailure::Schema`] after the table's metadata was read
/// again, or a drift-suspect code while the table's columns differ from those at start).
async fn insert_with_retry(rows: &[EventRow], ctx: &SinkContext) -> Result<(), Refused> {
    let timeout = Duration::from_millis(ctx.config.clickhouse.request_timeout_ms);
    let mut backoff = Backoff::from_config(&ctx.config.retry);
    let mut attempt = 0u32;
    let mut schema_errors = 0u32;
    let table = format!("{}.{EVENTS_TABLE}", ctx.sink.database());
    loop {
        ctx.health.beat("sink");
        let err = match ctx.sink.insert(rows, timeout).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let kind = match &err {
            SinkError::ClickHouse { source, .. } => classify(source),
            _ => InsertFailure::Retriable,
        };
        if kind == InsertFailure::TooManyPartitions {
            return Err(Refused::TooManyPartitions(err.to_string()));
        }
        if kind == InsertFailure::RowData && is_drift_suspect(&err) {
            match ctx.sink.table_columns().await {
                Ok(now) if now == ctx.columns => {}
                Ok(now) => {
                    return Err(Refused::Stop(format!(
                        "ClickHouse table {table} changed on the server (schema drift: columns were {:?}, are {:?}); the insert failed with: {err}",
                        ctx.columns, now
                    )))
                }
                Err(SinkError::Drift { message, .. }) => {
                    return Err(Refused::Stop(format!(
                        "ClickHouse table {table} changed on the server (schema drift: {message}); the insert failed with: {err}"
                    )))
                }
                // Cannot look: try the insert again.
                Err(_) => {}
            }
        }
        if kind == InsertFailure::RowData {
            return Err(Refused::RowData(err.to_string()));
        }
        if kind == InsertFailure::Schema {
            // The first one cleared the cached metadata (a table migrated under us); a second
            // is the table itself.
            schema_errors += 1;
            if schema_errors >= 2 {
                return Err(Refused::Stop(format!(
                    "ClickHouse table {table} does not accept the pipeline's rows (schema drift or a missing grant; run `dispatch-ingest migrate` or fix the table): {err}"
                )));
            }
        }
        attempt += 1;
        let wait = backoff.next_wait();
        telemetry::insert_failed(
            rows.len(),
            attempt,
            wait,
            &err,
            kind == InsertFailure::Schema,
        );
        tokio::time::sleep(wait).await;
    }
}
