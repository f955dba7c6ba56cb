//! Telemetry: the one place where every metric is named and described, the log setup, and the
//! `/metrics` + `/health` HTTP endpoint.
//!
//! Each event worth counting has one function here that logs (where a log line is due) and
//! updates its metric, so names and labels cannot drift between call sites.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::LogFormat;

pub const RECORDS_CONSUMED: &str = "dispatch_ingest_records_consumed_total";
pub const RECORDS_INSERTED: &str = "dispatch_ingest_records_inserted_total";
pub const RECORDS_DEAD_LETTERED: &str = "dispatch_ingest_records_dead_lettered_total";
pub const INSERT_BATCHES: &str = "dispatch_ingest_insert_batches_total";
pub const INSERT_ERRORS: &str = "dispatch_ingest_insert_errors_total";
pub const INSERT_DURATION: &str = "dispatch_ingest_insert_duration_seconds";
pub const BATCH_ROWS: &str = "dispatch_ingest_batch_rows";
pub const OFFSET_COMMITS: &str = "dispatch_ingest_offset_commits_total";
pub const OFFSET_COMMIT_ERRORS: &str = "dispatch_ingest_offset_commit_errors_total";
pub const REBALANCES: &str = "dispatch_ingest_rebalances_total";
pub const KAFKA_ERRORS: &str = "dispatch_ingest_kafka_errors_total";
pub const REGISTRY_ERRORS: &str = "dispatch_ingest_schema_registry_errors_total";
pub const UNKNOWN_MUNICIPALITY: &str = "dispatch_ingest_unknown_municipality_total";
pub const UNKNOWN_MMT_STATION: &str = "dispatch_ingest_unknown_mmt_station_total";
pub const UP: &str = "dispatch_ingest_up";
pub const EVENT_LATENCY: &str = "dispatch_ingest_event_latency_seconds";
pub const KAFKA_LATENCY: &str = "dispatch_ingest_kafka_latency_seconds";
pub const BATCH_BYTES: &str = "dispatch_ingest_batch_bytes";
pub const RETRIES: &str = "dispatch_ingest_retries_total";
pub const BUILD_INFO: &str = "dispatch_ingest_build_info";

/// Histogram buckets (Prometheus `_bucket` series, so quantiles aggregate across instances).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// End-to-end latency: from sub-second to a day (replays of old data land in +Inf).
const LATENCY_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 86400.0,
];
const ROWS_BUCKETS: &[f64] = &[
    1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 50000.0, 100000.0,
];
const BYTES_BUCKETS: &[f64] = &[
    1024.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0, 67108864.0,
];

/// The commit the binary was built from: `DISPATCH_INGEST_COMMIT` at build time, else "unknown".
pub const BUILD_COMMIT: &str = match option_env!("DISPATCH_INGEST_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// Describe every metric (so they show with HELP/TYPE lines).
pub fn describe() {
    describe_counter!(RECORDS_CONSUMED, "Records read from Kafka, by topic.");
    describe_counter!(
        RECORDS_INSERTED,
        "Records written to ClickHouse (insert acknowledged), by topic."
    );
    describe_counter!(
        RECORDS_DEAD_LETTERED,
        "Records written to the dead-letter topic (write acknowledged), by topic and error kind."
    );
    describe_counter!(INSERT_BATCHES, "ClickHouse insert batches acknowledged.");
    describe_counter!(
        INSERT_ERRORS,
        "Failed ClickHouse insert attempts (each is retried), by kind."
    );
    describe_histogram!(
        INSERT_DURATION,
        "Duration of successful ClickHouse inserts."
    );
    describe_histogram!(BATCH_ROWS, "Rows per acknowledged insert batch.");
    describe_counter!(OFFSET_COMMITS, "Successful Kafka offset commits.");
    describe_counter!(
        OFFSET_COMMIT_ERRORS,
        "Failed Kafka offset commits or stores."
    );
    describe_counter!(
        REBALANCES,
        "Consumer group rebalances, by kind (assign, revoke)."
    );
    describe_counter!(KAFKA_ERRORS, "Errors reported by the Kafka consumer.");
    describe_counter!(
        REGISTRY_ERRORS,
        "Schema registry lookups that failed retriably (the record waits; it is not dead-lettered)."
    );
    describe_counter!(
        UNKNOWN_MUNICIPALITY,
        "Events whose municipality code the reference table does not know on the event date (kept, region unknown)."
    );
    describe_counter!(
        UNKNOWN_MMT_STATION,
        "Alerts whose MMT station matches no station operating on the event date (kept, station unknown)."
    );
    describe_gauge!(UP, "1 while the pipeline runs.");
    describe_histogram!(
        EVENT_LATENCY,
        "Seconds from an event's occurred_at to its insert being acknowledged by ClickHouse."
    );
    describe_histogram!(
        KAFKA_LATENCY,
        "Seconds from the Kafka record timestamp to its insert being acknowledged by ClickHouse."
    );
    describe_histogram!(
        BATCH_BYTES,
        "Approximate uncompressed bytes per acknowledged insert batch."
    );
    describe_counter!(
        RETRIES,
        "Retries after a failed attempt, by cause (insert, insert_schema, schema_registry, dead_letter)."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; labels name the version and commit of the running binary."
    );
}

/// Count one retry of `cause` (insert, insert_schema, schema_registry, dead_letter).
pub fn retry(cause: &'static str) {
    counter!(RETRIES, "cause" => cause).increment(1);
}

/// An inserted row: event time and Kafka record time (when the broker set one) to now.
pub fn row_inserted(occurred_at_ms: i64, kafka_timestamp_ms: Option<i64>, now_ms: i64) {
    let secs = |from: i64| (now_ms - from).max(0) as f64 / 1000.0;
    histogram!(EVENT_LATENCY).record(secs(occurred_at_ms));
    if let Some(ts) = kafka_timestamp_ms {
        histogram!(KAFKA_LATENCY).record(secs(ts));
    }
}

pub fn record_consumed(topic: &str) {
    counter!(RECORDS_CONSUMED, "topic" => topic.to_string()).increment(1);
}

pub fn records_inserted(topic: &str, n: u64) {
    counter!(RECORDS_INSERTED, "topic" => topic.to_string()).increment(n);
}

pub fn insert_batch_done(rows: usize, bytes: usize, elapsed: Duration) {
    counter!(INSERT_BATCHES).increment(1);
    histogram!(BATCH_ROWS).record(rows as f64);
    histogram!(BATCH_BYTES).record(bytes as f64);
    histogram!(INSERT_DURATION).record(elapsed.as_secs_f64());
    tracing::debug!(
        rows,
        elapsed_ms = elapsed.as_millis() as u64,
        "insert batch acknowledged"
    );
}

/// A failed insert attempt that will be retried. `schema` marks a table that does not match
/// (an operator must act), logged as an error.
pub fn insert_failed(
    rows: usize,
    attempt: u32,
    retry_in: Duration,
    error: &dyn std::fmt::Display,
    schema: bool,
) {
    let kind = if schema { "schema" } else { "retriable" };
    counter!(INSERT_ERRORS, "kind" => kind).increment(1);
    retry(if schema { "insert_schema" } else { "insert" });
    if schema {
        tracing::error!(
            rows,
            attempt,
            retry_in_ms = retry_in.as_millis() as u64,
            error = %error,
            "the ClickHouse table does not accept this insert (run `dispatch-ingest migrate`?); the batch is kept and retried"
        );
    } else {
        tracing::warn!(
            rows,
            attempt,
            retry_in_ms = retry_in.as_millis() as u64,
            error = %error,
            "ClickHouse insert failed; the batch is kept and retried"
        );
    }
}

pub fn record_dead_lettered(topic: &str, kind: &str, partition: i32, offset: i64, reason: &str) {
    counter!(RECORDS_DEAD_LETTERED, "topic" => topic.to_string(), "kind" => kind.to_string())
        .increment(1);
    tracing::warn!(
        topic,
        partition,
        offset,
        kind,
        reason,
        "record sent to the dead-letter topic"
    );
}

pub fn offsets_committed() {
    counter!(OFFSET_COMMITS).increment(1);
}

pub fn offset_commit_failed(error: &dyn std::fmt::Display) {
    counter!(OFFSET_COMMIT_ERRORS).increment(1);
    tracing::warn!(error = %error, "storing or committing offsets failed");
}

pub fn rebalance(kind: &'static str, partitions: &str) {
    counter!(REBALANCES, "kind" => kind).increment(1);
    tracing::info!(kind, partitions, "consumer group rebalance");
}

pub fn kafka_error(error: &dyn std::fmt::Display) {
    counter!(KAFKA_ERRORS).increment(1);
    tracing::warn!(error = %error, "Kafka consumer error");
}

pub fn registry_unavailable(
    position: &crate::event::SourcePosition,
    attempt: u32,
    retry_in: Duration,
    error: &dyn std::fmt::Display,
) {
    counter!(REGISTRY_ERRORS).increment(1);
    retry("schema_registry");
    tracing::warn!(
        %position,
        attempt,
        retry_in_ms = retry_in.as_millis() as u64,
        error = %error,
        "schema registry unavailable; the record waits and is decoded when it answers"
    );
}

/// Counted every time; logged the first time a code is seen (`first`).
pub fn unknown_municipality(code: &str, date: chrono::NaiveDate, first: bool) {
    counter!(UNKNOWN_MUNICIPALITY).increment(1);
    if first {
        tracing::warn!(
            code,
            %date,
            "municipality code not in the reference table on this date; event kept with region unknown (logged once per code)"
        );
    }
}

pub fn unknown_mmt_station(raw: &str, date: chrono::NaiveDate) {
    counter!(UNKNOWN_MMT_STATION).increment(1);
    tracing::debug!(station = raw, %date, "unknown MMT station; kept as unknown");
}

pub fn set_up(up: bool) {
    gauge!(UP).set(if up { 1.0 } else { 0.0 });
}

/// Initialise logging: JSON when stderr is not a terminal (or when asked), level from RUST_LOG.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // try_init: a second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Liveness/readiness shared between the pipeline and `/health`.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

impl Health {
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
        set_up(ready);
    }
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}

/// Install the Prometheus recorder (once per process) and describe the metrics.
pub fn install_recorder() -> Result<PrometheusHandle, TelemetryError> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in [
        (INSERT_DURATION, SECONDS_BUCKETS),
        (EVENT_LATENCY, LATENCY_BUCKETS),
        (KAFKA_LATENCY, LATENCY_BUCKETS),
        (BATCH_ROWS, ROWS_BUCKETS),
        (BATCH_BYTES, BYTES_BUCKETS),
    ] {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_string()), buckets)
            .map_err(|e| TelemetryError::Recorder(e.to_string()))?;
    }
    let handle = builder
        .install_recorder()
        .map_err(|e| TelemetryError::Recorder(e.to_string()))?;
    describe();
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "commit" => BUILD_COMMIT).set(1.0);
    Ok(handle)
}

/// Serve `/metrics` and `/health` on `addr` until `shutdown` resolves. Returns the bound address
/// (useful with port 0).
pub async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
    health: Health,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("binding telemetry.listen {addr}: {e}"))
    })?;
    let bound = listener.local_addr()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = axum::Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route(
            "/health",
            get(move || async move {
                if health.is_ready() {
                    (StatusCode::OK, "ok\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "starting or stopping\n")
                }
            }),
        );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "telemetry server stopped");
        }
    });
    tracing::info!(%bound, "serving /metrics and /health");
    Ok(bound)
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("installing the Prometheus recorder: {0}")]
    Recorder(String),
}
