//! Telemetry: the one place where every metric is named and described, the log setup, and the
//! `/metrics` + `/health` HTTP endpoint.
//!
//! Each event worth counting has one function here that logs (where a log line is due) and
//! updates its metric, so names and labels cannot drift between call sites.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::get;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::backoff::{RetryClass, RetryOperation};
use crate::config::LogFormat;

/// Counter: records read from Kafka, label `topic`.
pub const RECORDS_CONSUMED: &str = "dispatch_ingest_records_consumed_total";
/// Counter: records whose ClickHouse insert was acknowledged, label `topic`.
pub const RECORDS_INSERTED: &str = "dispatch_ingest_records_inserted_total";
/// Counter: records whose dead-letter write was acknowledged, labels `topic` and `kind` (the error kind).
pub const RECORDS_DEAD_LETTERED: &str = "dispatch_ingest_records_dead_lettered_total";
/// Counter: ClickHouse insert batches acknowledged.
pub const INSERT_BATCHES: &str = "dispatch_ingest_insert_batches_total";
/// Counter: failed ClickHouse insert attempts (each retried), label `kind` (`retriable`, `schema`).
pub const INSERT_ERRORS: &str = "dispatch_ingest_insert_errors_total";
/// Histogram: seconds a successful ClickHouse insert took.
pub const INSERT_DURATION: &str = "dispatch_ingest_insert_duration_seconds";
/// Histogram: rows per acknowledged insert batch.
pub const BATCH_ROWS: &str = "dispatch_ingest_batch_rows";
/// Counter: successful Kafka offset commits.
pub const OFFSET_COMMITS: &str = "dispatch_ingest_offset_commits_total";
/// Counter: failed Kafka offset commits or stores.
pub const OFFSET_COMMIT_ERRORS: &str = "dispatch_ingest_offset_commit_errors_total";
/// Counter: consumer group rebalances, label `kind` (`assign`, `revoke`).
pub const REBALANCES: &str = "dispatch_ingest_rebalances_total";
/// Counter: errors reported by the Kafka consumer.
pub const KAFKA_ERRORS: &str = "dispatch_ingest_kafka_errors_total";
/// Counter: schema registry lookups that failed retriably (the record waits, it is not dead-lettered).
pub const REGISTRY_ERRORS: &str = "dispatch_ingest_schema_registry_errors_total";
/// Counter: events whose municipality code is unknown on the event date (kept with region `unknown`).
pub const UNKNOWN_MUNICIPALITY: &str = "dispatch_ingest_unknown_municipality_total";
/// Counter: alerts whose MMT station matches no station operating on the event date (kept as `unknown`).
pub const UNKNOWN_MMT_STATION: &str = "dispatch_ingest_unknown_mmt_station_total";
/// Gauge: 1 while the pipeline runs, else 0.
pub const UP: &str = "dispatch_ingest_up";
/// Counter: pipeline stages (source, process, sink) that panicked or ended before shutdown, label `stage`.
pub const STAGE_FAILURES: &str = "dispatch_ingest_stage_failures_total";
/// Histogram: seconds from an event's `occurred_at` to the acknowledgement of its insert (freshness).
pub const EVENT_LATENCY: &str = "dispatch_ingest_event_latency_seconds";
/// Histogram: seconds from the Kafka record timestamp to the acknowledgement of its insert.
pub const KAFKA_LATENCY: &str = "dispatch_ingest_kafka_latency_seconds";
/// Histogram: approximate uncompressed bytes per acknowledged insert batch.
pub const BATCH_BYTES: &str = "dispatch_ingest_batch_bytes";
/// Counter: retries after a failed attempt, labels `operation` and `class`.
pub const RETRIES: &str = "dispatch_ingest_retries_total";
/// Gauge: always 1; labels `version` and `commit` name the running binary.
pub const BUILD_INFO: &str = "dispatch_ingest_build_info";

/// Histogram buckets (Prometheus `_bucket` series, so quantiles aggregate across instances).
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// End-to-end latency: from sub-second to a day (replays of old data land in +Inf).
/// Freshness buckets: fine below 2.5 s, where the 1 s target of issue #13 lies, then coarse up to
/// a day (late events, backfills).
const LATENCY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    86400.0,
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
    describe_gauge!(
        READY,
        "1 while /ready answers 200 (see /ready's body for a failing check)."
    );
    describe_gauge!(
        LIVE,
        "1 while /health answers 200 (every pipeline loop makes progress)."
    );
    describe_gauge!(
        DLQ_STALLED,
        "Partitions currently stopped because dead-lettering their next record is impossible."
    );
    describe_gauge!(
        CONSUMER_LAG,
        "Records behind the partition's high watermark, by topic and partition (Kafka client statistics)."
    );
    describe_counter!(
        STAGE_FAILURES,
        "Pipeline stages (source, process, sink) that panicked or ended before shutdown; the process then exits non-zero."
    );
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
        "Retries after a failed attempt, by operation (insert, schema_registry, schema_registry_request, dead_letter, kafka_receive, kafka_startup_check, kafka_metadata, migration_lock) and class (transient, needs_operator)."
    );
    describe_gauge!(
        BUILD_INFO,
        "Always 1; labels name the version and commit of the running binary."
    );
}

/// At most one retry log line per operation and class in this interval; the next line says how
/// many were left out meanwhile (every retry is counted in [`RETRIES`] all the same). Keyed by the
/// class too, so transient warnings never hold back a line that needs an operator.
pub const RETRY_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// At most one pass per key per `interval`; what is held back is counted and handed to the next
/// pass.
#[derive(Debug)]
pub struct RateLimit<K> {
    interval: Duration,
    /// Per key: when it last passed, and how many were held back since.
    last: BTreeMap<K, (Instant, u64)>,
}

impl<K: Ord> RateLimit<K> {
    /// A limiter that lets each key pass at most once per `interval`.
    pub fn new(interval: Duration) -> RateLimit<K> {
        RateLimit {
            interval,
            last: BTreeMap::new(),
        }
    }

    /// `Some(held back since the last pass)` when `key` may pass at `now`, else `None` (counted).
    pub fn allow(&mut self, key: K, now: Instant) -> Option<u64> {
        match self.last.get_mut(&key) {
            Some((at, held)) if now.saturating_duration_since(*at) < self.interval => {
                *held += 1;
                None
            }
            Some((at, held)) => {
                *at = now;
                Some(std::mem::take(held))
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

/// A retry's log line may be written now (see [`RETRY_LOG_INTERVAL`]).
fn retry_log_allowed(operation: RetryOperation, class: RetryClass) -> Option<u64> {
    static LIMIT: Mutex<Option<RateLimit<(RetryOperation, RetryClass)>>> = Mutex::new(None);
    let mut limit = LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    limit
        .get_or_insert_with(|| RateLimit::new(RETRY_LOG_INTERVAL))
        .allow((operation, class), Instant::now())
}

/// What one retry is about, for its log line.
pub struct RetryEvent<'a> {
    /// What is retried (insert, schema registry lookup, dead-letter write, Kafka receive).
    pub operation: RetryOperation,
    /// Whether the failure is transient or needs an operator; the log level follows from it.
    pub class: RetryClass,
    /// 1 for the first retry of this attempt sequence.
    pub attempt: u32,
    /// The wait before the next attempt.
    pub wait: Duration,
    /// What is retried: a source position, a batch size, a URL.
    pub subject: &'a str,
    /// The error of the failed attempt.
    pub error: &'a dyn std::fmt::Display,
    /// The log message: what happens meanwhile.
    pub message: &'a str,
}

/// One retry: counted in [`RETRIES`] by operation and class, and logged (warn, or error for
/// [`RetryClass::NeedsOperator`]) at most once per operation per [`RETRY_LOG_INTERVAL`].
pub fn retry(r: RetryEvent<'_>) {
    counter!(RETRIES, "operation" => r.operation.label(), "class" => r.class.label()).increment(1);
    let Some(suppressed) = retry_log_allowed(r.operation, r.class) else {
        return;
    };
    let (operation, class) = (r.operation.label(), r.class.label());
    let retry_in_ms = r.wait.as_millis() as u64;
    // One line, at the level of its class (tracing's level macros need the level as a token).
    macro_rules! retry_line {
        ($level:ident) => {
            tracing::$level!(
                operation,
                class,
                attempt = r.attempt,
                retry_in_ms,
                subject = r.subject,
                error = %r.error,
                suppressed_since_last = suppressed,
                "{}",
                r.message
            )
        };
    }
    match r.class {
        RetryClass::NeedsOperator => retry_line!(error),
        RetryClass::Transient => retry_line!(warn),
    }
}

/// An inserted row: event time and Kafka record time (when the broker set one) to now.
pub fn row_inserted(occurred_at_ms: i64, kafka_timestamp_ms: Option<i64>, now_ms: i64) {
    let secs = |from: i64| (now_ms - from).max(0) as f64 / 1000.0;
    histogram!(EVENT_LATENCY).record(secs(occurred_at_ms));
    if let Some(ts) = kafka_timestamp_ms {
        histogram!(KAFKA_LATENCY).record(secs(ts));
    }
}

/// Count one record read from `topic`.
pub fn record_consumed(topic: &str) {
    counter!(RECORDS_CONSUMED, "topic" => topic.to_string()).increment(1);
}

/// Count `n` records of `topic` whose insert was acknowledged.
pub fn records_inserted(topic: &str, n: u64) {
    counter!(RECORDS_INSERTED, "topic" => topic.to_string()).increment(n);
}

/// Count an acknowledged insert of `rows` rows and about `bytes` bytes that took `elapsed`.
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
    let subject = format!("{rows} rows");
    retry(RetryEvent {
        operation: RetryOperation::Insert,
        class: if schema {
            RetryClass::NeedsOperator
        } else {
            RetryClass::Transient
        },
        attempt,
        wait: retry_in,
        subject: &subject,
        error,
        message: if schema {
            "the ClickHouse table does not accept this insert (run `dispatch-ingest migrate`?); the batch is kept and retried"
        } else {
            "ClickHouse insert failed; the batch is kept and retried"
        },
    });
}

/// At most this many per-record warning lines per minute; the rest are counted and summed up in
/// the next line that is logged.
pub const RECORD_WARNINGS_PER_MINUTE: u32 = 10;

/// A per-record warning may be logged now: `Some(suppressed since the last one)`, or `None`.
fn record_warning_allowed() -> Option<u64> {
    static WINDOW: Mutex<Option<(Instant, u32, u64)>> = Mutex::new(None);
    let mut w = WINDOW.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let (start, logged, suppressed) = w.get_or_insert((now, 0, 0));
    if now.saturating_duration_since(*start) >= Duration::from_secs(60) {
        *start = now;
        *logged = 0;
    }
    if *logged < RECORD_WARNINGS_PER_MINUTE {
        *logged += 1;
        Some(std::mem::take(suppressed))
    } else {
        *suppressed += 1;
        None
    }
}

/// A record was dead-lettered. The log line names where it came from and the error kind, never
/// the reason text (it can quote field values: ages, municipality, triage codes); the reason is
/// in the DLQ record's headers. Rate limited ([`RECORD_WARNINGS_PER_MINUTE`]).
pub fn record_dead_lettered(topic: &str, kind: &str, partition: i32, offset: i64, _reason: &str) {
    counter!(RECORDS_DEAD_LETTERED, "topic" => topic.to_string(), "kind" => kind.to_string())
        .increment(1);
    if let Some(suppressed) = record_warning_allowed() {
        tracing::warn!(
            topic,
            partition,
            offset,
            kind,
            suppressed_since_last = suppressed,
            "record sent to the dead-letter topic (reason in its dlq.error.message header)"
        );
    }
}

/// Count a successful offset commit.
pub fn offsets_committed() {
    counter!(OFFSET_COMMITS).increment(1);
}

/// Count and log a failed offset store or commit.
pub fn offset_commit_failed(error: &dyn std::fmt::Display) {
    counter!(OFFSET_COMMIT_ERRORS).increment(1);
    tracing::warn!(error = %error, "storing or committing offsets failed");
}

/// Count and log a rebalance: `kind` is `assign` or `revoke`, `partitions` lists them.
pub fn rebalance(kind: &'static str, partitions: &str) {
    counter!(REBALANCES, "kind" => kind).increment(1);
    tracing::info!(kind, partitions, "consumer group rebalance");
}

/// Count and log an error the Kafka consumer reported.
pub fn kafka_error(error: &dyn std::fmt::Display) {
    counter!(KAFKA_ERRORS).increment(1);
    tracing::warn!(error = %error, "Kafka consumer error");
}

/// A consumer error while receiving, counted; its log line is the rate-limited retry line that
/// follows it.
pub fn kafka_receive_error() {
    counter!(KAFKA_ERRORS).increment(1);
}

/// Count a schema registry lookup that failed retriably and log the retry (rate-limited): the record at `position` waits `retry_in` before attempt `attempt + 1`.
pub fn registry_unavailable(
    position: &crate::event::SourcePosition,
    attempt: u32,
    retry_in: Duration,
    error: &dyn std::fmt::Display,
) {
    counter!(REGISTRY_ERRORS).increment(1);
    retry(RetryEvent {
        operation: RetryOperation::SchemaRegistry,
        class: RetryClass::Transient,
        attempt,
        wait: retry_in,
        subject: &position.to_string(),
        error,
        message: "schema registry unavailable; the record waits and is decoded when it answers",
    });
}

/// Counted every time; logged the first time a code is seen (`first`), without the code itself
/// (a patient's municipality); the row keeps it in `municipality_code`.
pub fn unknown_municipality(_code: &str, date: chrono::NaiveDate, first: bool) {
    counter!(UNKNOWN_MUNICIPALITY).increment(1);
    if first {
        tracing::warn!(
            %date,
            "a municipality code not in the reference table on this date; event kept with region unknown (logged once per code; find it with municipality_code in ClickHouse)"
        );
    }
}

/// Count an MMT station name that matches no station operating on `date` (logged at debug).
pub fn unknown_mmt_station(raw: &str, date: chrono::NaiveDate) {
    counter!(UNKNOWN_MMT_STATION).increment(1);
    tracing::debug!(station = raw, %date, "unknown MMT station; kept as unknown");
}

/// A pipeline stage panicked or ended before shutdown; the process will exit non-zero.
pub fn stage_failed(stage: &str, cause: &str) {
    counter!(STAGE_FAILURES, "stage" => stage.to_string()).increment(1);
    tracing::error!(
        stage,
        cause,
        "pipeline stage failed; stopping with a non-zero exit code"
    );
}

/// Set the [`UP`] gauge: 1 while the pipeline runs.
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
    let installed = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if installed.is_ok() {
        // A panic anywhere is logged as an error line (with where it happened) in the same
        // format as every other line, then reported as usual.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let message = panic_message(info.payload());
            tracing::error!(panic = message, location, "panic");
            default_hook(info);
        }));
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic payload)".to_string()
    }
}

/// How [`Health`] judges liveness and readiness (from `[telemetry]` and `[kafka]`).
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// A loop that has not beaten for this long is wedged (`/health` fails).
    pub liveness_timeout: Duration,
    /// A periodic check whose last result is older than this counts as failing.
    pub check_max_age: Duration,
    /// Consumer lag growing without a break for this long makes `/ready` fail.
    pub lag_growing_for: Duration,
    /// With no partitions assigned, a group join may take this long before `/ready` fails.
    pub join_grace: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        HealthSettings {
            liveness_timeout: Duration::from_secs(120),
            check_max_age: Duration::from_secs(15),
            lag_growing_for: Duration::from_secs(600),
            join_grace: Duration::from_secs(60),
        }
    }
}

impl HealthSettings {
    /// Settings from `[telemetry]` (liveness timeout, lag window; checks expire after three `health_interval_ms`) and `[kafka]` (join grace: twice `session_timeout_ms` plus two check intervals).
    pub fn from_config(config: &crate::config::Config) -> HealthSettings {
        let t = &config.telemetry;
        let interval = Duration::from_millis(t.health_interval_ms);
        HealthSettings {
            liveness_timeout: Duration::from_millis(t.liveness_timeout_ms),
            check_max_age: interval * 3,
            lag_growing_for: Duration::from_secs(t.ready_lag_growing_minutes * 60),
            // A join waits for every member up to the session timeout (twice for a rebalance
            // that follows), plus the time to find the coordinator.
            join_grace: Duration::from_millis(u64::from(config.kafka.session_timeout_ms) * 2)
                + interval * 2,
        }
    }
}

/// Whether the consumer lag has been growing without a break, and since when.
#[derive(Debug, Default, Clone)]
pub struct LagTrend {
    last: Option<i64>,
    growing_since: Option<Instant>,
}

impl LagTrend {
    /// Record a total lag sample; returns how long it has been growing (zero if not).
    pub fn sample(&mut self, lag: i64, now: Instant) -> Duration {
        match self.last {
            Some(last) if lag > last => {
                self.growing_since.get_or_insert(now);
            }
            // A sample that does not grow ends the streak, unless it is flat above zero
            // (consumption stopped while nothing new arrives is not catching up either).
            Some(last) if lag == last && lag > 0 => {}
            _ => self.growing_since = None,
        }
        self.last = Some(lag);
        self.growing_since
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }
}

#[derive(Debug, Clone)]
struct Check {
    at: Instant,
    result: Result<(), String>,
    /// A periodic check goes stale; a passive one (set when the thing is used) does not.
    periodic: bool,
}

#[derive(Default)]
struct HealthState {
    settings: HealthSettings,
    running: bool,
    beats: BTreeMap<&'static str, Instant>,
    checks: BTreeMap<&'static str, Check>,
    lag: LagTrend,
    dlq_stalled: BTreeMap<(String, i32), std::collections::BTreeSet<i64>>,
}

/// Liveness and readiness, shared between the pipeline and the HTTP endpoint.
///
/// * Liveness (`/health`): every pipeline loop ([`Health::beat`]) made progress within
///   `telemetry.liveness_timeout_ms`. Waiting for input, for ClickHouse or for the registry
///   counts as progress (the loops beat while they wait); a loop stuck in a call that never
///   returns does not.
/// * Readiness (`/ready`): the pipeline runs, and every check passes: `kafka` (a broker is up
///   in the client's statistics), `assignment` (partitions assigned, or a join in progress
///   within the grace), `clickhouse` (a ping answered), `lag` (not growing for
///   `telemetry.ready_lag_growing_minutes`), `registry` (when used: its last lookup answered),
///   `dlq` (no partition stalled because dead-lettering is impossible).
#[derive(Clone, Default)]
pub struct Health {
    state: Arc<Mutex<HealthState>>,
}

/// Gauge: 1 while `/ready` answers 200.
pub const READY: &str = "dispatch_ingest_ready";
/// Gauge: 1 while `/health` answers 200 (every pipeline loop makes progress).
pub const LIVE: &str = "dispatch_ingest_live";
/// Gauge: partitions stopped because dead-lettering their next record is impossible.
pub const DLQ_STALLED: &str = "dispatch_ingest_dlq_stalled";
/// Gauge: records behind the partition's high watermark, labels `topic` and `partition`.
pub const CONSUMER_LAG: &str = "dispatch_ingest_consumer_lag";

/// The periodic checks readiness needs a recent result of.
const REQUIRED_CHECKS: [&str; 3] = ["kafka", "assignment", "clickhouse"];

impl Health {
    /// A health state judged by `settings`; not ready until [`Health::set_ready`].
    pub fn new(settings: HealthSettings) -> Health {
        let h = Health::default();
        h.configure(settings);
        h
    }

    /// Replace the settings (e.g. once the configuration is loaded).
    pub fn configure(&self, settings: HealthSettings) {
        self.lock().settings = settings;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The pipeline started (true) or began to stop (false).
    pub fn set_ready(&self, running: bool) {
        {
            let mut s = self.lock();
            s.running = running;
            if running {
                s.beats.clear();
            }
        }
        set_up(running);
        let _ = self.evaluate();
    }

    /// Readiness as a bool (see [`Health::readiness`]).
    pub fn is_ready(&self) -> bool {
        self.readiness().is_ok()
    }

    /// A pipeline loop made progress.
    pub fn beat(&self, name: &'static str) {
        self.lock().beats.insert(name, Instant::now());
    }

    /// The result of a periodic check (`kafka`, `assignment`, `clickhouse`, `lag`).
    pub fn set_check(&self, name: &'static str, result: Result<(), String>) {
        self.lock().checks.insert(
            name,
            Check {
                at: Instant::now(),
                result,
                periodic: true,
            },
        );
    }

    /// The result of a check made when the thing is used (`registry`).
    pub fn set_passive_check(&self, name: &'static str, result: Result<(), String>) {
        self.lock().checks.insert(
            name,
            Check {
                at: Instant::now(),
                result,
                periodic: false,
            },
        );
    }

    /// A total consumer lag sample; fails the `lag` check when it grew for too long.
    pub fn sample_lag(&self, total: i64) {
        let result = {
            let mut s = self.lock();
            let grown = s.lag.sample(total, Instant::now());
            let limit = s.settings.lag_growing_for;
            if grown >= limit && !limit.is_zero() {
                Err(format!(
                    "lag: consumer lag ({total}) has grown for {} s (limit telemetry.ready_lag_growing_minutes)",
                    grown.as_secs()
                ))
            } else {
                Ok(())
            }
        };
        self.set_check("lag", result);
    }

    /// The record at `position` cannot be dead-lettered (`stalled`), or it has been after all:
    /// its partition is stopped while any of its records is stalled (several can be: the
    /// process stage dead-letters many records at once), reported at the earliest of them,
    /// where the partition's offsets stop.
    pub fn set_dlq_stalled(&self, position: &crate::event::SourcePosition, stalled: bool) {
        let n = {
            let mut s = self.lock();
            let key = (position.topic.clone(), position.partition);
            if stalled {
                s.dlq_stalled
                    .entry(key)
                    .or_default()
                    .insert(position.offset);
            } else if let Some(offsets) = s.dlq_stalled.get_mut(&key) {
                offsets.remove(&position.offset);
                if offsets.is_empty() {
                    s.dlq_stalled.remove(&key);
                }
            }
            s.dlq_stalled.len()
        };
        gauge!(DLQ_STALLED).set(n as f64);
    }

    /// How long a group join may take, with no partitions assigned, before `/ready` fails.
    pub fn join_grace(&self) -> Duration {
        self.lock().settings.join_grace
    }

    /// `Ok` while no loop is overdue; `Err` names the loops.
    pub fn liveness(&self) -> Result<(), String> {
        let s = self.lock();
        let now = Instant::now();
        let limit = s.settings.liveness_timeout;
        let overdue: Vec<String> = s
            .beats
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) > limit)
            .map(|(name, at)| {
                format!(
                    "{name}: no progress for {} s (limit telemetry.liveness_timeout_ms)",
                    now.saturating_duration_since(*at).as_secs()
                )
            })
            .collect();
        if overdue.is_empty() {
            Ok(())
        } else {
            Err(overdue.join("\n"))
        }
    }

    /// `Ok` when ready; `Err` names every failing check, one per line.
    pub fn readiness(&self) -> Result<(), String> {
        let s = self.lock();
        if !s.running {
            return Err("pipeline: starting or stopping".to_string());
        }
        let now = Instant::now();
        let mut failing = Vec::new();
        for name in REQUIRED_CHECKS {
            if !s.checks.contains_key(name) {
                failing.push(format!("{name}: not checked yet"));
            }
        }
        for (name, check) in &s.checks {
            let age = now.saturating_duration_since(check.at);
            if check.periodic && age > s.settings.check_max_age {
                failing.push(format!("{name}: no result for {} s", age.as_secs()));
            } else if let Err(e) = &check.result {
                failing.push(e.clone());
            }
        }
        for ((topic, partition), offsets) in &s.dlq_stalled {
            let first = offsets.first().copied().unwrap_or_default();
            failing.push(format!(
                "dlq: {topic}/{partition} stopped at offset {first}: dead-lettering is impossible ({} records stalled)",
                offsets.len()
            ));
        }
        if failing.is_empty() {
            Ok(())
        } else {
            Err(failing.join("\n"))
        }
    }

    /// Compute both and update their gauges.
    pub fn evaluate(&self) -> (Result<(), String>, Result<(), String>) {
        let live = self.liveness();
        let ready = self.readiness();
        gauge!(LIVE).set(if live.is_ok() { 1.0 } else { 0.0 });
        gauge!(READY).set(if ready.is_ok() { 1.0 } else { 0.0 });
        (live, ready)
    }
}

/// The consumer lag of one partition (from the Kafka client's statistics).
pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    gauge!(CONSUMER_LAG, "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(lag as f64);
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

/// Serve `/metrics`, `/health` (liveness) and `/ready` (readiness) on `addr` until `shutdown` resolves. Returns the bound address
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
    let gauges = health.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
            let _ = gauges.evaluate();
        }
    });
    let app = axum::Router::new()
        .route("/metrics", get(move || async move { handle.render() }))
        .route(
            "/health",
            get({
                let health = health.clone();
                move || async move {
                    match health.evaluate().0 {
                        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
                        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not live\n{e}\n")),
                    }
                }
            }),
        )
        .route(
            "/ready",
            get(move || async move {
                match health.evaluate().1 {
                    Ok(()) => (StatusCode::OK, "ready\n".to_string()),
                    Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{e}\n")),
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
    tracing::info!(%bound, "serving /metrics, /health and /ready");
    Ok(bound)
}

/// Why the metrics endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Configuring the histogram buckets or installing the Prometheus recorder failed (e.g. one is installed already).
    #[error("installing the Prometheus recorder: {0}")]
    Recorder(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_lines_pass_once_per_key_and_interval_with_the_count_held_back() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut l = RateLimit::new(Duration::from_secs(10));
        assert_eq!(l.allow("insert", at(0)), Some(0));
        assert_eq!(l.allow("insert", at(1)), None);
        assert_eq!(l.allow("insert", at(9_999)), None);
        assert_eq!(
            l.allow("dead_letter", at(5)),
            Some(0),
            "keys are independent"
        );
        assert_eq!(l.allow("insert", at(10_000)), Some(2), "two held back");
        assert_eq!(l.allow("insert", at(10_001)), None);
        assert_eq!(l.allow("insert", at(30_000)), Some(1));
        assert_eq!(l.allow("dead_letter", at(30_000)), Some(0));
    }

    #[test]
    fn lag_growing_without_a_break_is_timed_and_a_drop_resets_it() {
        let t0 = Instant::now();
        let s = |n| t0 + Duration::from_secs(n);
        let mut l = LagTrend::default();
        assert_eq!(l.sample(10, s(0)), Duration::ZERO);
        assert_eq!(l.sample(20, s(10)), Duration::ZERO, "growth starts here");
        assert_eq!(
            l.sample(20, s(20)),
            Duration::from_secs(10),
            "flat above 0 keeps it"
        );
        assert_eq!(l.sample(30, s(30)), Duration::from_secs(20));
        assert_eq!(l.sample(5, s(40)), Duration::ZERO, "caught up a bit: reset");
        assert_eq!(l.sample(0, s(50)), Duration::ZERO);
        assert_eq!(
            l.sample(0, s(60)),
            Duration::ZERO,
            "no lag is never growing"
        );
    }

    #[test]
    fn readiness_names_every_failing_check_and_liveness_the_stuck_loop() {
        let h = Health::new(HealthSettings {
            liveness_timeout: Duration::from_millis(50),
            lag_growing_for: Duration::from_millis(1),
            ..HealthSettings::default()
        });
        assert_eq!(h.readiness().unwrap_err(), "pipeline: starting or stopping");
        h.set_ready(true);
        let e = h.readiness().unwrap_err();
        assert!(
            e.contains("kafka: not checked yet") && e.contains("clickhouse"),
            "{e}"
        );
        h.set_check("kafka", Ok(()));
        h.set_check("assignment", Ok(()));
        h.set_check("clickhouse", Err("clickhouse: unreachable".into()));
        assert_eq!(h.readiness().unwrap_err(), "clickhouse: unreachable");
        h.set_check("clickhouse", Ok(()));
        assert!(h.readiness().is_ok());
        let at = |offset| crate::event::SourcePosition {
            topic: "t".into(),
            partition: 2,
            offset,
        };
        h.set_dlq_stalled(&at(9), true);
        h.set_dlq_stalled(&at(7), true);
        assert!(h.readiness().unwrap_err().contains(
            "dlq: t/2 stopped at offset 7: dead-lettering is impossible (2 records stalled)"
        ));
        // One stalled record written after all: the partition stays stopped at the other.
        h.set_dlq_stalled(&at(7), false);
        assert!(h.readiness().unwrap_err().contains("stopped at offset 9"));
        h.set_dlq_stalled(&at(9), false);
        h.sample_lag(5);
        std::thread::sleep(Duration::from_millis(5));
        h.sample_lag(6);
        std::thread::sleep(Duration::from_millis(5));
        h.sample_lag(7);
        assert!(h
            .readiness()
            .unwrap_err()
            .starts_with("lag: consumer lag (7) has grown"));
        h.sample_lag(0);
        assert!(h.readiness().is_ok());

        h.beat("sink");
        assert!(h.liveness().is_ok());
        std::thread::sleep(Duration::from_millis(80));
        h.beat("source");
        let e = h.liveness().unwrap_err();
        assert!(e.starts_with("sink: no progress for"), "{e}");
        assert!(!e.contains("source"), "{e}");
    }
}
