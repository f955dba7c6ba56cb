//! Configuration: a TOML file (every key documented in `config/dispatch-ingest.toml`) overridden
//! by environment variables `DISPATCH_INGEST__SECTION__KEY`, validated into [`Config`] before any
//! connection is made. Unknown keys and bad values stop startup with an error that names the key,
//! the value and where it came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};

use crate::event::{Stream, WireFormat};

/// Prefix of environment overrides: `DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS=...`.
pub const ENV_PREFIX: &str = "DISPATCH_INGEST__";

/// Why the configuration could not be loaded; every variant names the file or the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be opened or read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The config file that was asked for.
        path: PathBuf,
        /// The I/O error from reading it.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax {
        /// The config file that was parsed.
        path: PathBuf,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// A key is unknown, has the wrong type, or is otherwise unusable where it was given.
    #[error("config key `{key}` (from {origin}): {message}")]
    Key {
        /// Dotted key, e.g. `kafka.group_id`.
        key: String,
        /// Where the key came from: the file's path or the environment variable's name.
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// A key has a value that fails validation.
    #[error("config key `{key}` has invalid value {value:?}: {reason}")]
    Invalid {
        /// Dotted key, e.g. `batch.max_rows`.
        key: String,
        /// The offending value, with secrets shown as `***` and URL passwords redacted.
        value: String,
        /// The rule the value breaks.
        reason: String,
    },
}

pub(crate) fn invalid(key: &str, value: impl ToString, reason: impl Into<String>) -> ConfigError {
    // An error names the key; it never echoes a secret value.
    let last = key.rsplit('.').next().unwrap_or(key);
    let value = if is_secret_key(key) || (key.starts_with("kafka.extra.") && is_secret_extra(last))
    {
        "***".to_string()
    } else {
        redact_url(&value.to_string())
    };
    ConfigError::Invalid {
        key: key.to_string(),
        value,
        reason: reason.into(),
    }
}

/// librdkafka properties the pipeline's delivery guarantee depends on: `kafka.extra` must not
/// override them.
pub const RESERVED_KAFKA_PROPERTIES: [&str; 3] = [
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
];

/// `text` with the password of any `scheme://user:password@host` in it replaced by `***`.
pub fn redact_url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The whole configuration: one field per TOML section, every field defaulted when absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[kafka]`: brokers, consumer group, commits, dead-letter topic, TLS and SASL.
    pub kafka: KafkaConfig,
    /// `[topics.*]`: name and wire format of the topic of each of the five streams.
    pub topics: TopicsConfig,
    /// `[schema_registry]`: the Confluent Schema Registry for `avro-confluent` topics.
    pub schema_registry: SchemaRegistryConfig,
    /// `[decode]`: size and nesting limits on decoding one record.
    pub decode: DecodeConfig,
    /// `[enrich]`: reference data and the response-time norms.
    pub enrich: EnrichConfig,
    /// `[clickhouse]`: server(s), database, credentials, row validation and timeouts.
    pub clickhouse: ClickHouseConfig,
    /// `[batch]`: when a batch of rows is inserted, and the channel capacity between stages.
    pub batch: BatchConfig,
    /// `[memory]`: the memory limit every byte budget is derived from.
    pub memory: MemoryConfig,
    /// `[retry]`: the one backoff policy for failed attempts.
    pub retry: RetryConfig,
    /// `[telemetry]`: the `/metrics`, `/health` and `/ready` listener, log format, health checks.
    pub telemetry: TelemetryConfig,
    /// `[shutdown]`: the deadline for a graceful stop.
    pub shutdown: ShutdownConfig,
    /// `[report]`: the municipality response-time report and its suppression.
    pub report: ReportConfig,
    /// Warnings about the configuration itself (a renamed key in use), for the log once logging
    /// is set up. Not a setting: never read from or written to TOML.
    #[serde(skip)]
    pub notices: Vec<String>,
}

/// Where a consumer group without committed offsets starts reading (`kafka.auto_offset_reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OffsetReset {
    /// From the oldest record still on the topic (the default).
    Earliest,
    /// From records produced after the group joins.
    Latest,
}

/// `[kafka]`: the consumer's connection, group and delivery settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Comma-separated `host:port` list of brokers; default `127.0.0.1:9092`.
    pub bootstrap_servers: String,
    /// Consumer group; instances with the same group share the partitions. Default `dispatch-ingest`, must not be empty.
    pub group_id: String,
    /// librdkafka `client.id`, shown in broker logs and metrics; default `dispatch-ingest`.
    pub client_id: String,
    /// Where a group without committed offsets starts; default `earliest`.
    pub auto_offset_reset: OffsetReset,
    /// Consumer group session timeout in milliseconds (`session.timeout.ms`); default 45 000, at least 1 000.
    pub session_timeout_ms: u32,
    /// Longest time between polls before the consumer leaves the group, in milliseconds (`max.poll.interval.ms`); default 300 000, at least `session_timeout_ms`; `batch.max_wait_ms` may be at most a quarter of it.
    pub max_poll_interval_ms: u32,
    /// How often offsets of inserted records are committed, in milliseconds (and always on shutdown); default 1 000, positive.
    pub commit_interval_ms: u32,
    /// Topic that undecodable or invalid records go to, with the reason in headers; default `dispatch.dlq`.
    pub dlq_topic: String,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl` (docs/security.md).
    pub security_protocol: String,
    /// With `sasl_*`: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; empty by default.
    pub sasl_mechanism: String,
    /// SASL user name; required with `sasl_*`.
    pub sasl_username: String,
    /// SASL password (secret: prefer `DISPATCH_INGEST__KAFKA__SASL_PASSWORD`); required with `sasl_*`.
    pub sasl_password: String,
    /// PEM file with the CA certificate(s) the brokers' certificates are checked against
    /// (`ssl.ca.location`); empty: the system's roots. Only with `ssl` / `sasl_ssl`.
    pub ssl_ca_file: String,
    /// Client certificate and private key (PEM) for brokers that require mutual TLS.
    pub ssl_certificate_file: String,
    /// Private key (PEM) belonging to `ssl_certificate_file`; both or neither.
    pub ssl_key_file: String,
    /// Password of an encrypted `ssl_key_file` (secret).
    pub ssl_key_password: String,
    /// Further librdkafka properties, passed as they are (e.g. `"ssl.ca.location"`).
    pub extra: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            group_id: "dispatch-ingest".into(),
            client_id: "dispatch-ingest".into(),
            auto_offset_reset: OffsetReset::Earliest,
            session_timeout_ms: 45_000,
            max_poll_interval_ms: 300_000,
            commit_interval_ms: 1_000,
            dlq_topic: "dispatch.dlq".into(),
            security_protocol: "plaintext".into(),
            sasl_mechanism: String::new(),
            sasl_username: String::new(),
            sasl_password: String::new(),
            ssl_ca_file: String::new(),
            ssl_certificate_file: String::new(),
            ssl_key_file: String::new(),
            ssl_key_password: String::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// One stream's topic (`[topics.call]`, `[topics.alert]`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Kafka topic name, e.g. `dispatch.calls`.
    pub name: String,
    /// Wire format of the topic's records: `avro` (default), `avro-confluent` or `json`.
    pub format: WireFormat,
    /// Writer schema (.avsc) for plain Avro; empty means the bundled schema.
    #[serde(default)]
    pub writer_schema: String,
}

/// `[topics]`: the topic of each of the five streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopicsConfig {
    /// `[topics.call]`: 112 calls accepted; default topic `dispatch.calls`.
    pub call: TopicConfig,
    /// `[topics.alert]`: units alerted; default topic `dispatch.alerts`.
    pub alert: TopicConfig,
    /// `[topics.cancel]`: alerts cancelled; default topic `dispatch.cancels`.
    pub cancel: TopicConfig,
    /// `[topics.on_scene]`: units on scene; default topic `dispatch.on-scene`.
    pub on_scene: TopicConfig,
    /// `[topics.transport]`: patients transported; default topic `dispatch.transports`.
    pub transport: TopicConfig,
}

impl Default for TopicsConfig {
    fn default() -> Self {
        let t = |s: Stream| TopicConfig {
            name: s.default_topic().into(),
            format: WireFormat::Avro,
            writer_schema: String::new(),
        };
        TopicsConfig {
            call: t(Stream::Call),
            alert: t(Stream::Alert),
            cancel: t(Stream::Cancel),
            on_scene: t(Stream::OnScene),
            transport: t(Stream::Transport),
        }
    }
}

impl TopicsConfig {
    /// The topic settings of `stream`.
    pub fn get(&self, stream: Stream) -> &TopicConfig {
        match stream {
            Stream::Call => &self.call,
            Stream::Alert => &self.alert,
            Stream::Cancel => &self.cancel,
            Stream::OnScene => &self.on_scene,
            Stream::Transport => &self.transport,
        }
    }

    /// The topic settings of `stream`, to change (e.g. by an environment override).
    pub fn get_mut(&mut self, stream: Stream) -> &mut TopicConfig {
        match stream {
            Stream::Call => &mut self.call,
            Stream::Alert => &mut self.alert,
            Stream::Cancel => &mut self.cancel,
            Stream::OnScene => &mut self.on_scene,
            Stream::Transport => &mut self.transport,
        }
    }

    /// The stream a topic carries.
    pub fn stream_of(&self, topic: &str) -> Option<Stream> {
        Stream::ALL.into_iter().find(|s| self.get(*s).name == topic)
    }
}

/// Enrichment rules and reference data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// Directory with the reference tables (see config/reference/README.md).
    pub reference_dir: String,
    /// A patient of at most this age is a child.
    pub child_max_age_years: u8,
    /// Response-time norm for A0 incidents in seconds (split from A1, same norm); default 900 (15 minutes).
    pub norm_a0_seconds: u16,
    /// Response-time norm for A1 incidents in seconds; default 900 (15 minutes, Regeling ambulancezorgvoorzieningen art. 5(1)).
    pub norm_a1_seconds: u16,
    /// Response-time norm for A2 incidents in seconds; default 1 800 (30 minutes, sector target).
    pub norm_a2_seconds: u16,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            reference_dir: "config/reference".into(),
            child_max_age_years: 18,
            norm_a0_seconds: 900,
            norm_a1_seconds: 900,
            norm_a2_seconds: 1800,
        }
    }
}

/// Confluent Schema Registry, for topics with format `avro-confluent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaRegistryConfig {
    /// Base URL, e.g. `http://registry:8081`; required when a topic uses `avro-confluent`.
    pub url: String,
    /// Basic-auth user name for the registry; empty: no authentication.
    pub username: String,
    /// Basic-auth password for the registry (secret: prefer `DISPATCH_INGEST__SCHEMA_REGISTRY__PASSWORD`).
    pub password: String,
    /// Timeout of one registry request in milliseconds; default 5 000, positive.
    pub timeout_ms: u64,
    /// Quick retries within one lookup; after them the pipeline waits and asks again.
    pub retries: u32,
    /// PEM file with CA certificate(s) trusted for an `https://` registry, in addition to the
    /// system's roots; empty: the system's roots only.
    pub ca_file: String,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        SchemaRegistryConfig {
            url: String::new(),
            username: String::new(),
            password: String::new(),
            timeout_ms: 5_000,
            retries: 2,
            ca_file: String::new(),
        }
    }
}

/// Bounds on decoding one record (see `decode::DecodeLimits`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Larger messages are dead-lettered without being decoded.
    pub max_record_bytes: usize,
    /// Deepest nesting a writer schema from the registry may have.
    pub max_schema_depth: usize,
    /// apache-avro's limit on one allocation (a string's length, a block's item count); at
    /// least max_record_bytes.
    pub max_allocation_bytes: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            max_record_bytes: 1024 * 1024,
            max_schema_depth: 32,
            max_allocation_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Whether the `clickhouse` crate checks row types against the table (needs
/// RowBinaryWithNamesAndTypes, which ClickHouse 18.16 lacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validation {
    /// On for servers >= 24.1, off for older ones.
    Auto,
    /// Always checked (fails against servers without RowBinaryWithNamesAndTypes).
    On,
    /// Never checked.
    Off,
}

/// `[clickhouse]`: where rows are inserted and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface, `http://` or `https://`; default `http://127.0.0.1:8123`.
    pub url: String,
    /// Replicated cluster mode: the cluster name in the servers' `<remote_servers>`. Empty (the
    /// default) is single-server mode. See README "ClickHouse cluster".
    pub cluster: String,
    /// Replicas to insert to (any healthy one); when empty, `url` is the only one.
    pub urls: Vec<String>,
    /// Database of the raw tables; default `dispatch`, an identifier.
    pub database: String,
    /// User name; default `default` (on 24.x+ use the least-privilege `dispatch_ingest`).
    pub user: String,
    /// Password (secret: prefer `DISPATCH_INGEST__CLICKHOUSE__PASSWORD`); empty by default.
    pub password: String,
    /// Whether the client checks row types against the table; default `auto`.
    pub validation: Validation,
    /// Bound on every insert (and the validation's `DESCRIBE`), in milliseconds; default 30 000, positive.
    pub request_timeout_ms: u64,
    /// PEM file with CA certificate(s) trusted for an `https://` URL, in addition to the
    /// system's roots; empty: the system's roots only.
    pub ca_file: String,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            cluster: String::new(),
            urls: Vec::new(),
            database: "dispatch".into(),
            user: "default".into(),
            password: String::new(),
            validation: Validation::Auto,
            request_timeout_ms: 30_000,
            ca_file: String::new(),
        }
    }
}

/// `[batch]`: a batch is inserted when it reaches `max_rows` or `max_bytes`, or `max_wait_ms` after its first row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchConfig {
    /// Rows per batch at most; default 50 000, positive.
    pub max_rows: usize,
    /// Approximate bytes of a batch's rows at most; default 32 MiB, at least 1 024 and at most `memory.limit_mb` / 4.
    pub max_bytes: usize,
    /// Milliseconds after a batch's first row at which it is inserted however full; default 500, positive, at most a quarter of `kafka.max_poll_interval_ms`.
    pub max_wait_ms: u64,
    /// Records queued between stages; when full, consumption waits (backpressure). Default 10 000, positive.
    pub channel_capacity: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_rows: 50_000,
            max_bytes: 32 * 1024 * 1024,
            max_wait_ms: 500,
            channel_capacity: 10_000,
        }
    }
}

/// `[memory]`: the one memory setting. Every byte budget of the record path is derived from
/// `limit_mb` ([`MemoryBudget`]), so the memory an instance holds while ClickHouse is slow or
/// down is bounded by bytes, not by a count of records of any size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// MiB of record data an instance may hold: librdkafka's prefetch, the records between the
    /// stages and in the open and inserting batches, and the insert and dead-letter copies. The
    /// process needs its base (code, reference data, threads) on top: size the container at
    /// limit_mb plus about 128 MiB (docs/deploy.md).
    pub limit_mb: u32,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig { limit_mb: 256 }
    }
}

/// The byte budgets derived from `memory.limit_mb` (L bytes), as documented in
/// `config/dispatch-ingest.toml`:
///
/// - librdkafka's prefetch queue `queued.max.messages.kbytes` = L/8 (it may overshoot by one
///   fetch response), one fetch response `fetch.max.bytes` = L/16, one partition's share of a
///   fetch `max.partition.fetch.bytes` = `decode.max_record_bytes` + 64 KiB (a record of the
///   largest accepted size fits; larger ones are returned anyway and dead-lettered);
/// - the records in flight between the stages (read, not yet inserted or dead-lettered,
///   including the open and the inserting batch) = L/2;
/// - a batch is inserted at the latest when its rows hold L/4 (so the next one can fill while
///   it is inserted); `batch.max_bytes` must not exceed that;
/// - the rest, 5L/16, is headroom for the insert's request buffer, the dead-letter copies and
///   the allocator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// librdkafka `queued.max.messages.kbytes`, in KiB: L/8 (capped at 2 097 151).
    pub prefetch_kbytes: u64,
    /// librdkafka `fetch.max.bytes`, bytes of one fetch response: L/16 (capped below 2 GiB).
    pub fetch_max_bytes: u64,
    /// librdkafka `max.partition.fetch.bytes`: `decode.max_record_bytes` + [`FETCH_FRAMING_BYTES`].
    pub partition_fetch_bytes: u64,
    /// Bytes of records in flight between the stages (read, not yet inserted or dead-lettered): L/2.
    pub in_flight_bytes: usize,
    /// Bytes of records a batch's rows may hold before it is inserted: L/4.
    pub batch_held_bytes: usize,
}

/// What a Kafka fetch adds to a record beside its value (batch and record headers, key).
pub const FETCH_FRAMING_BYTES: usize = 64 * 1024;

/// The smallest `memory.limit_mb` accepted.
pub const MIN_MEMORY_LIMIT_MB: u32 = 32;

impl MemoryConfig {
    /// The budgets for records of at most `max_record_bytes` (`decode.max_record_bytes`).
    pub fn budget(&self, max_record_bytes: usize) -> MemoryBudget {
        let limit = u64::from(self.limit_mb) * 1024 * 1024;
        MemoryBudget {
            prefetch_kbytes: (limit / 8 / 1024).min(2_097_151),
            fetch_max_bytes: (limit / 16).min(2_147_483_135),
            partition_fetch_bytes: (max_record_bytes + FETCH_FRAMING_BYTES) as u64,
            in_flight_bytes: (limit / 2) as usize,
            batch_held_bytes: (limit / 4) as usize,
        }
    }

    /// Checks of `[memory]` against `decode.max_record_bytes` and `batch.max_bytes`: the
    /// derived budgets must hold a record of the largest size and a full batch.
    pub fn validate(&self, decode: &DecodeConfig, batch: &BatchConfig) -> Result<(), ConfigError> {
        if self.limit_mb < MIN_MEMORY_LIMIT_MB {
            return Err(invalid(
                "memory.limit_mb",
                self.limit_mb,
                format!("must be at least {MIN_MEMORY_LIMIT_MB}"),
            ));
        }
        let b = self.budget(decode.max_record_bytes);
        if b.partition_fetch_bytes > b.fetch_max_bytes {
            let need = (decode.max_record_bytes + FETCH_FRAMING_BYTES) * 16;
            return Err(invalid(
                "memory.limit_mb",
                self.limit_mb,
                format!(
                    "one fetch (limit_mb / 16 = {} bytes) must hold a record of decode.max_record_bytes ({}) plus {} bytes of framing: raise memory.limit_mb to at least {} or lower decode.max_record_bytes",
                    b.fetch_max_bytes,
                    decode.max_record_bytes,
                    FETCH_FRAMING_BYTES,
                    need.div_ceil(1024 * 1024)
                ),
            ));
        }
        if batch.max_bytes > b.batch_held_bytes {
            return Err(invalid(
                "batch.max_bytes",
                batch.max_bytes,
                format!(
                    "must fit a quarter of memory.limit_mb ({} MiB / 4 = {} bytes), so the next batch can fill while one is inserted: lower batch.max_bytes or raise memory.limit_mb to at least {}",
                    self.limit_mb,
                    b.batch_held_bytes,
                    (batch.max_bytes * 4).div_ceil(1024 * 1024)
                ),
            ));
        }
        Ok(())
    }
}

/// The one retry policy (`backoff::Backoff::from_config`): every wait after a failed attempt
/// (ClickHouse inserts, Schema Registry lookups, dead-letter writes) starts at `initial_ms`,
/// doubles up to `max_ms`, and is drawn from `[step * (1 - jitter), step)`; after a Kafka
/// consumer error the wait is the first step, every time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// First wait after a failed attempt, in milliseconds; default 200, positive.
    pub initial_ms: u64,
    /// Longest wait, which the doubling stops at, in milliseconds; default 10 000, at least `initial_ms`.
    pub max_ms: u64,
    /// The random share of each wait, from 0 (none) to below 1.
    pub jitter: f64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_ms: 200,
            max_ms: 10_000,
            jitter: 0.5,
        }
    }
}

/// Keys that name a setting now kept elsewhere: (old key, new key). Still accepted (a config
/// file copied from an older release has them); `Config::load` moves them to the new key and
/// notes it in [`Config::notices`].
pub const RENAMED_KEYS: [(&str, &str); 2] = [
    ("clickhouse.retry_initial_ms", "retry.initial_ms"),
    ("clickhouse.retry_max_ms", "retry.max_ms"),
];

/// Format of the log lines on standard error (`telemetry.log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when standard error is not a terminal, text when it is.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// `[telemetry]`: the metrics and health listener, logging and health checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Address of the HTTP listener for `/metrics`, `/health` and `/ready`; default `0.0.0.0:9464`.
    pub listen: String,
    /// Log line format; default `auto`. The level comes from `RUST_LOG` (default info).
    pub log_format: LogFormat,
    /// How often readiness is checked (ClickHouse ping, Kafka client statistics).
    pub health_interval_ms: u64,
    /// `/health` (liveness) fails when a pipeline loop made no progress for this long.
    pub liveness_timeout_ms: u64,
    /// `/ready` fails while the consumer lag has grown for this many minutes without a break.
    pub ready_lag_growing_minutes: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            listen: "0.0.0.0:9464".into(),
            log_format: LogFormat::Auto,
            health_interval_ms: 5_000,
            liveness_timeout_ms: 120_000,
            ready_lag_growing_minutes: 10,
        }
    }
}

/// `[shutdown]`: the graceful stop on SIGTERM/SIGINT.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// Milliseconds to stop consuming, flush, commit and exit; default 30 000, positive.
    pub deadline_ms: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            deadline_ms: 30_000,
        }
    }
}

/// The municipality response-time report (docs/rollups.md, "The municipality report").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Unit types whose first arrival counts for the norm, comma-separated. MMT units never count.
    pub counting_unit_types: String,
    /// Response times below this many seconds are implausible (excluded, counted).
    pub min_response_seconds: u32,
    /// Response times above this many seconds are implausible (excluded, counted).
    pub max_response_seconds: u32,
    /// A cell with fewer deployments is published without any figure.
    pub min_deployments: u64,
    /// Median and percentiles need at least this many deployments.
    pub min_deployments_percentiles: u64,
    /// The database `report municipalities --publish` writes to (read by BI tools).
    pub public_database: String,
    /// `complementary` (default): cells from which a suppressed one could be derived are
    /// suppressed too (docs/suppression.md). `primary-only`: only cells below the minimum; such a
    /// publication can be differenced (totals minus the other cells) and is for checking figures
    /// on small test samples, never for publishing to the public.
    pub suppression: String,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            counting_unit_types: "ALS_AMBULANCE,RAPID_RESPONDER".into(),
            min_response_seconds: 0,
            max_response_seconds: 7_200,
            min_deployments: 10,
            min_deployments_percentiles: 20,
            public_database: "dispatch_public".into(),
            suppression: "complementary".into(),
        }
    }
}

impl ReportConfig {
    /// The counting unit types, trimmed, without empties.
    pub fn counting_types(&self) -> Vec<String> {
        self.counting_unit_types
            .split(',')
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Checks of `[report]`: counting types (at least one, no MMT), response bounds, minimum deployments, suppression mode and a public database that is an identifier distinct from `raw_database` (`clickhouse.database`).
    pub fn validate(&self, raw_database: &str) -> Result<(), ConfigError> {
        let types = self.counting_types();
        if types.is_empty() {
            return Err(invalid(
                "report.counting_unit_types",
                &self.counting_unit_types,
                "must name at least one unit type",
            ));
        }
        if let Some(t) = types.iter().find(|t| t.starts_with("MMT")) {
            return Err(invalid(
                "report.counting_unit_types",
                &self.counting_unit_types,
                format!("{t}: MMT units never count for the response-time norm"),
            ));
        }
        if self.max_response_seconds <= self.min_response_seconds {
            return Err(invalid(
                "report.max_response_seconds",
                self.max_response_seconds,
                format!(
                    "must exceed report.min_response_seconds ({})",
                    self.min_response_seconds
                ),
            ));
        }
        if self.min_deployments == 0 {
            return Err(invalid("report.min_deployments", 0, "must be at least 1"));
        }
        if self.min_deployments_percentiles < self.min_deployments {
            return Err(invalid(
                "report.min_deployments_percentiles",
                self.min_deployments_percentiles,
                format!(
                    "must be at least report.min_deployments ({})",
                    self.min_deployments
                ),
            ));
        }
        if !matches!(self.suppression.as_str(), "complementary" | "primary-only") {
            return Err(invalid(
                "report.suppression",
                &self.suppression,
                "must be complementary or primary-only",
            ));
        }
        let db = &self.public_database;
        let ident = !db.is_empty()
            && !db.starts_with(|c: char| c.is_ascii_digit())
            && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident {
            return Err(invalid(
                "report.public_database",
                db,
                "must be a plain identifier (letters, digits, _)",
            ));
        }
        if db == raw_database {
            return Err(invalid(
                "report.public_database",
                db,
                "must differ from clickhouse.database (the BI user may read only the publication)",
            ));
        }
        Ok(())
    }
}

impl KafkaConfig {
    /// Checks of `[kafka]`: reserved librdkafka properties, brokers, timeouts, the security protocol with its TLS and SASL keys, the dead-letter topic name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let k = self;
        for key in k.extra.keys() {
            if RESERVED_KAFKA_PROPERTIES.contains(&key.trim()) {
                return Err(invalid(
                    &format!("kafka.extra.{key}"),
                    &k.extra[key],
                    "the pipeline sets this librdkafka property itself (offsets are stored only after the insert or the dead-letter write, and read committed); it cannot be overridden",
                ));
            }
        }
        check_bootstrap_servers(&k.bootstrap_servers)?;
        if k.group_id.trim().is_empty() {
            return Err(invalid("kafka.group_id", &k.group_id, "must not be empty"));
        }
        if k.session_timeout_ms < 1_000 {
            return Err(invalid(
                "kafka.session_timeout_ms",
                k.session_timeout_ms,
                "must be at least 1000",
            ));
        }
        if k.max_poll_interval_ms < k.session_timeout_ms {
            return Err(invalid(
                "kafka.max_poll_interval_ms",
                k.max_poll_interval_ms,
                format!(
                    "must be at least kafka.session_timeout_ms ({})",
                    k.session_timeout_ms
                ),
            ));
        }
        if k.commit_interval_ms == 0 {
            return Err(invalid("kafka.commit_interval_ms", 0, "must be positive"));
        }
        let protocols = ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"];
        if !protocols.contains(&k.security_protocol.to_ascii_lowercase().as_str()) {
            return Err(invalid(
                "kafka.security_protocol",
                &k.security_protocol,
                format!("expected one of {protocols:?}"),
            ));
        }
        validate_kafka(k)?;
        check_topic_name("kafka.dlq_topic", &k.dlq_topic)?;
        Ok(())
    }
}

impl TopicsConfig {
    /// Checks of `[topics]`: names valid, unique and apart from `kafka.dlq_topic` (`dlq_topic`), a registry (`schema_registry.url`, `registry_url`) for Confluent framing, readable writer schemas.
    pub fn validate(&self, dlq_topic: &str, registry_url: &str) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<&str, Stream> = BTreeMap::new();
        for stream in Stream::ALL {
            let t = self.get(stream);
            let key = format!("topics.{}.name", stream.name());
            check_topic_name(&key, &t.name)?;
            if let Some(other) = seen.insert(&t.name, stream) {
                return Err(invalid(
                    &key,
                    &t.name,
                    format!("already used by topics.{}", other.name()),
                ));
            }
            if t.name == dlq_topic {
                return Err(invalid(&key, &t.name, "is also kafka.dlq_topic"));
            }
            if t.format == WireFormat::AvroConfluent && registry_url.is_empty() {
                return Err(invalid(
                    "schema_registry.url",
                    "",
                    format!(
                        "topics.{}.format is \"avro-confluent\", which needs a schema registry",
                        stream.name()
                    ),
                ));
            }
            if !t.writer_schema.is_empty() {
                let key = format!("topics.{}.writer_schema", stream.name());
                if t.format != WireFormat::Avro {
                    return Err(invalid(
                        &key,
                        &t.writer_schema,
                        "only applies to format \"avro\"",
                    ));
                }
                let text = std::fs::read_to_string(&t.writer_schema)
                    .map_err(|e| invalid(&key, &t.writer_schema, format!("cannot read: {e}")))?;
                apache_avro::Schema::parse_str(&text).map_err(|e| {
                    invalid(&key, &t.writer_schema, format!("not an Avro schema: {e}"))
                })?;
            }
        }
        Ok(())
    }
}

impl EnrichConfig {
    /// Checks of `[enrich]`: the reference directory, the child age and the norms.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let en = self;
        if !Path::new(&en.reference_dir).is_dir() {
            return Err(invalid(
                "enrich.reference_dir",
                &en.reference_dir,
                "is not a directory (relative paths start at the working directory)",
            ));
        }
        if en.child_max_age_years > 130 {
            return Err(invalid(
                "enrich.child_max_age_years",
                en.child_max_age_years,
                "must be at most 130",
            ));
        }
        for (key, v) in [
            ("enrich.norm_a0_seconds", en.norm_a0_seconds),
            ("enrich.norm_a1_seconds", en.norm_a1_seconds),
            ("enrich.norm_a2_seconds", en.norm_a2_seconds),
        ] {
            if v == 0 {
                return Err(invalid(key, 0, "must be positive"));
            }
        }
        Ok(())
    }
}

impl SchemaRegistryConfig {
    /// Checks of `[schema_registry]`: URL, timeout, CA file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = self;
        if !(r.url.is_empty() || r.url.starts_with("http://") || r.url.starts_with("https://")) {
            return Err(invalid(
                "schema_registry.url",
                &r.url,
                "must start with http:// or https://",
            ));
        }
        if r.timeout_ms == 0 {
            return Err(invalid("schema_registry.timeout_ms", 0, "must be positive"));
        }
        validate_http_tls("schema_registry", &r.url, &r.ca_file)?;
        Ok(())
    }
}

impl ClickHouseConfig {
    /// Checks of `[clickhouse]`: URLs, cluster, CA file, database, timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let c = self;
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            return Err(invalid(
                "clickhouse.url",
                &c.url,
                "must start with http:// or https://",
            ));
        }
        if let Some(u) = c
            .urls
            .iter()
            .find(|u| !(u.starts_with("http://") || u.starts_with("https://")))
        {
            return Err(invalid(
                "clickhouse.urls",
                u,
                "every URL must start with http:// or https://",
            ));
        }
        if !c.cluster.is_empty() && !is_identifier(&c.cluster) {
            return Err(invalid(
                "clickhouse.cluster",
                &c.cluster,
                "must be empty (single server) or an identifier ([A-Za-z_][A-Za-z0-9_]*)",
            ));
        }
        // The URLs in use: `urls` (cluster mode) when given, else `url`.
        let in_use = if c.urls.is_empty() {
            std::slice::from_ref(&c.url)
        } else {
            &c.urls[..]
        };
        for u in in_use {
            validate_http_tls("clickhouse", u, &c.ca_file)?;
        }
        if !is_identifier(&c.database) {
            return Err(invalid(
                "clickhouse.database",
                &c.database,
                "must be an identifier ([A-Za-z_][A-Za-z0-9_]*)",
            ));
        }
        if c.request_timeout_ms == 0 {
            return Err(invalid(
                "clickhouse.request_timeout_ms",
                0,
                "must be positive",
            ));
        }
        Ok(())
    }
}

impl RetryConfig {
    /// Checks of `[retry]`: `0 < initial_ms <= max_ms`, `0 <= jitter < 1` (a jitter of 1 could
    /// draw waits near zero: a busy retry loop).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = self;
        if r.initial_ms == 0 {
            return Err(invalid("retry.initial_ms", 0, "must be positive"));
        }
        if r.max_ms < r.initial_ms {
            return Err(invalid(
                "retry.max_ms",
                r.max_ms,
                format!("must be at least retry.initial_ms ({})", r.initial_ms),
            ));
        }
        if !(0.0..1.0).contains(&r.jitter) {
            return Err(invalid(
                "retry.jitter",
                r.jitter,
                "must be at least 0 and below 1",
            ));
        }
        Ok(())
    }
}

impl DecodeConfig {
    /// Checks of `[decode]`: the record, depth and allocation limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let d = self;
        if d.max_record_bytes < 1024 {
            return Err(invalid(
                "decode.max_record_bytes",
                d.max_record_bytes,
                "must be at least 1024",
            ));
        }
        if !(2..=1000).contains(&d.max_schema_depth) {
            return Err(invalid(
                "decode.max_schema_depth",
                d.max_schema_depth,
                "must be between 2 and 1000",
            ));
        }
        if d.max_allocation_bytes < d.max_record_bytes {
            return Err(invalid(
                "decode.max_allocation_bytes",
                d.max_allocation_bytes,
                format!(
                    "must be at least decode.max_record_bytes ({})",
                    d.max_record_bytes
                ),
            ));
        }
        Ok(())
    }
}

impl BatchConfig {
    /// Checks of `[batch]`; `max_poll_interval_ms` is `kafka.max_poll_interval_ms`, which a batch must stay well inside.
    pub fn validate(&self, max_poll_interval_ms: u32) -> Result<(), ConfigError> {
        let b = self;
        if b.max_rows == 0 {
            return Err(invalid("batch.max_rows", 0, "must be positive"));
        }
        if b.max_bytes < 1024 {
            return Err(invalid(
                "batch.max_bytes",
                b.max_bytes,
                "must be at least 1024",
            ));
        }
        if b.max_wait_ms == 0 {
            return Err(invalid("batch.max_wait_ms", 0, "must be positive"));
        }
        if b.channel_capacity == 0 {
            return Err(invalid("batch.channel_capacity", 0, "must be positive"));
        }
        if b.max_wait_ms * 4 > u64::from(max_poll_interval_ms) {
            return Err(invalid(
                "batch.max_wait_ms",
                b.max_wait_ms,
                format!(
                    "must stay well inside kafka.max_poll_interval_ms ({}): at most a quarter",
                    max_poll_interval_ms
                ),
            ));
        }
        Ok(())
    }
}

impl TelemetryConfig {
    /// Checks of `[telemetry]`: the listen address and the health intervals.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|e| {
            invalid(
                "telemetry.listen",
                &self.listen,
                format!("not an address:port: {e}"),
            )
        })?;
        let t = self;
        if t.health_interval_ms == 0 {
            return Err(invalid(
                "telemetry.health_interval_ms",
                0,
                "must be positive",
            ));
        }
        if t.liveness_timeout_ms < 3 * t.health_interval_ms {
            return Err(invalid(
                "telemetry.liveness_timeout_ms",
                t.liveness_timeout_ms,
                format!(
                    "must be at least 3 x telemetry.health_interval_ms ({})",
                    t.health_interval_ms
                ),
            ));
        }
        if t.ready_lag_growing_minutes == 0 {
            return Err(invalid(
                "telemetry.ready_lag_growing_minutes",
                0,
                "must be positive",
            ));
        }
        Ok(())
    }
}

impl ShutdownConfig {
    /// Checks of `[shutdown]`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.deadline_ms == 0 {
            return Err(invalid("shutdown.deadline_ms", 0, "must be positive"));
        }
        Ok(())
    }
}

impl Config {
    /// Load `path` (if given), apply `DISPATCH_INGEST__*` overrides from `env`, validate.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let (mut value, file_origin) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                let table: toml::Table =
                    text.parse()
                        .map_err(|e: toml::de::Error| ConfigError::Syntax {
                            path: p.to_path_buf(),
                            message: e.to_string(),
                        })?;
                (toml::Value::Table(table), format!("file {}", p.display()))
            }
            None => (toml::Value::Table(toml::Table::new()), "defaults".into()),
        };
        // Start from the defaults and lay the file over them key by key, so a partial section
        // (e.g. only `topics.call.format`) keeps the other defaults of that section.
        let defaults = toml::Value::try_from(Config::default()).expect("defaults serialize");
        let mut notices = Vec::new();
        let mut file_value = value;
        rename_file_keys(&mut file_value, &file_origin, &mut notices)?;
        value = defaults.clone();
        merge(&mut value, file_value);
        let mut env_entries: Vec<(String, String, Vec<String>)> = Vec::new();
        for (name, raw) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(|s| s.is_empty()) {
                return Err(ConfigError::Key {
                    key: rest.to_ascii_lowercase(),
                    origin: format!("environment variable {name}"),
                    message: "empty key segment (use SECTION__KEY)".into(),
                });
            }
            env_entries.push((name, raw, path));
        }
        rename_env_keys(&mut env_entries, &mut notices)?;
        let mut env_keys: BTreeMap<String, String> = BTreeMap::new();
        for (name, raw, path) in env_entries {
            env_keys.insert(path.join("."), name.clone());
            set_path(&mut value, &defaults, &path, &raw);
        }
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut key = e.path().to_string();
            // toml appends "in `section`" on a new line; the key already says where.
            let message = e.inner().to_string();
            let message = message.lines().next().unwrap_or_default().to_string();
            // serde reports an unknown field at its parent: name the full key.
            if let Some(rest) = message.strip_prefix("unknown field `") {
                if let Some(field) = rest.split('`').next() {
                    let already = key == field || key.ends_with(&format!(".{field}"));
                    key = if already {
                        key
                    } else if key == "." || key.is_empty() {
                        field.to_string()
                    } else {
                        format!("{key}.{field}")
                    };
                }
            }
            let origin = env_keys
                .iter()
                .find(|(k, _)| {
                    key == **k
                        || key.starts_with(&format!("{k}."))
                        || k.starts_with(&format!("{key}."))
                })
                .map(|(_, var)| format!("environment variable {var}"))
                .unwrap_or_else(|| file_origin.clone());
            ConfigError::Key {
                key,
                origin,
                message,
            }
        })?;
        config.validate()?;
        let mut config = config;
        config.notices = notices;
        Ok(config)
    }

    /// Checks beyond types: ranges, names, addresses, readable schema files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.kafka.validate()?;
        self.topics
            .validate(&self.kafka.dlq_topic, &self.schema_registry.url)?;
        self.enrich.validate()?;
        self.schema_registry.validate()?;
        self.clickhouse.validate()?;
        self.decode.validate()?;
        self.batch.validate(self.kafka.max_poll_interval_ms)?;
        self.memory.validate(&self.decode, &self.batch)?;
        // librdkafka refuses to create a consumer whose fetch.max.bytes (derived from
        // memory.limit_mb) is below message.max.bytes, which kafka.extra may raise for the
        // dead-letter producer; say so here rather than at start-up.
        if let Some(v) = self.kafka.extra.get("message.max.bytes") {
            let fetch = self
                .memory
                .budget(self.decode.max_record_bytes)
                .fetch_max_bytes;
            if v.parse::<u64>().is_ok_and(|m| m > fetch) {
                return Err(invalid(
                    "kafka.extra.\"message.max.bytes\"",
                    v,
                    format!(
                        "must not exceed fetch.max.bytes = memory.limit_mb / 16 = {fetch} bytes (librdkafka refuses such a consumer): lower it or raise memory.limit_mb to at least {}",
                        (v.parse::<u64>().unwrap_or(0) * 16).div_ceil(1024 * 1024)
                    ),
                ));
            }
        }
        self.retry.validate()?;
        self.telemetry.validate()?;
        self.shutdown.validate()?;
        self.report.validate(&self.clickhouse.database)
    }

    /// The effective configuration as TOML, with every secret masked.
    pub fn to_masked_toml(&self) -> String {
        let mut value = toml::Value::try_from(self).expect("config serializes");
        mask_secrets(&mut value);
        toml::to_string_pretty(&value).expect("config serializes")
    }
}

/// `kafka.bootstrap_servers`: a comma-separated list of host:port.
fn check_bootstrap_servers(servers: &str) -> Result<(), ConfigError> {
    if servers.trim().is_empty() {
        return Err(invalid(
            "kafka.bootstrap_servers",
            "",
            "must name at least one broker host:port",
        ));
    }
    for server in servers.split(',') {
        let server = server.trim();
        let port_ok = server
            .rsplit_once(':')
            .map(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            .unwrap_or(false);
        if !port_ok {
            return Err(invalid(
                "kafka.bootstrap_servers",
                servers,
                format!("{server:?} is not host:port"),
            ));
        }
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_topic_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            name,
            "a Kafka topic name is 1-249 of [A-Za-z0-9._-]",
        ))
    }
}

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password")
        || k.contains("secret")
        || k.contains("token")
        || k.contains("ssl.key")
        || k.contains("oauthbearer.config")
        || k.contains("jaas.config")
}

/// A `kafka.extra` property that may hold a secret (librdkafka names: `ssl.key.pem`,
/// `ssl.keystore.password`, `sasl.oauthbearer.config`, ...).
fn is_secret_extra(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    is_secret_key(&k) || k.contains("key") || k.contains("sasl.oauthbearer")
}

fn mask_secrets(value: &mut toml::Value) {
    mask_table(value, false);
}

fn mask_table(value: &mut toml::Value, in_extra: bool) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let secret = if in_extra {
                    is_secret_extra(k)
                } else {
                    is_secret_key(k)
                };
                if secret {
                    if let toml::Value::String(s) = v {
                        if !s.is_empty() {
                            *s = "***".into();
                        }
                    }
                } else {
                    mask_table(v, !in_extra && k == "extra");
                }
            }
        }
        toml::Value::String(s) => *s = redact_url(s),
        _ => {}
    }
}

fn renamed_notice(old: &str, new: &str, origin: &str) -> String {
    format!("config key `{old}` (from {origin}) was renamed to `{new}`; it still works, but write `{new}`")
}

/// Move the [`RENAMED_KEYS`] of a config file to their new keys. Both keys with different
/// values is an error naming both.
fn rename_file_keys(
    file: &mut toml::Value,
    origin: &str,
    notices: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (old, new) in RENAMED_KEYS {
        let (old_section, old_key) = old.split_once('.').expect("section.key");
        let (new_section, new_key) = new.split_once('.').expect("section.key");
        let Some(toml::Value::Table(section)) = file.get_mut(old_section) else {
            continue;
        };
        let Some(moved) = section.remove(old_key) else {
            continue;
        };
        let toml::Value::Table(root) = file else {
            continue;
        };
        let target = root
            .entry(new_section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(target) = target else {
            // `retry` is not a table: deserializing names that error.
            continue;
        };
        match target.get(new_key) {
            Some(present) if *present != moved => {
                return Err(ConfigError::Key {
                    key: old.to_string(),
                    origin: origin.to_string(),
                    message: format!(
                        "renamed to `{new}`, which is set too, to another value ({present} vs {moved}); remove `{old}`"
                    ),
                })
            }
            Some(_) => {}
            None => {
                target.insert(new_key.to_string(), moved);
            }
        }
        notices.push(renamed_notice(old, new, origin));
    }
    Ok(())
}

/// [`rename_file_keys`] for environment variables `(name, value, key path)`.
fn rename_env_keys(
    entries: &mut Vec<(String, String, Vec<String>)>,
    notices: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (old, new) in RENAMED_KEYS {
        let Some(i) = entries.iter().position(|e| e.2.join(".") == old) else {
            continue;
        };
        let origin = format!("environment variable {}", entries[i].0);
        if let Some(other) = entries.iter().find(|e| e.2.join(".") == new) {
            if other.1 != entries[i].1 {
                return Err(ConfigError::Key {
                    key: old.to_string(),
                    origin,
                    message: format!(
                        "renamed to `{new}`, which {} sets to another value ({:?} vs {:?}); remove the old variable",
                        other.0, other.1, entries[i].1
                    ),
                });
            }
            entries.remove(i);
        } else {
            entries[i].2 = new.split('.').map(str::to_string).collect();
        }
        notices.push(renamed_notice(old, new, &origin));
    }
    Ok(())
}

/// Lay `over` onto `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Set `path` in `root` to `raw`, typed like the default at that path (so a numeric-looking
/// password stays a string); where there is no default, guess bool, integer, then string.
fn set_path(root: &mut toml::Value, defaults: &toml::Value, path: &[String], raw: &str) {
    let mut node = root;
    let mut def = Some(defaults);
    for (i, seg) in path.iter().enumerate() {
        def = def.and_then(|d| d.get(seg));
        let toml::Value::Table(table) = node else {
            return;
        };
        if i + 1 == path.len() {
            let typed = match def {
                Some(toml::Value::String(_)) => toml::Value::String(raw.to_string()),
                Some(toml::Value::Integer(_)) => raw
                    .parse::<i64>()
                    .map(toml::Value::Integer)
                    .unwrap_or_else(|_| toml::Value::String(raw.to_string())),
                Some(toml::Value::Float(_)) => raw
                    .parse::<f64>()
                    .map(toml::Value::Float)
                    .unwrap_or_else(|_| toml::Value::String(raw.to_string())),
                Some(toml::Value::Boolean(_)) => raw
                    .parse::<bool>()
                    .map(toml::Value::Boolean)
                    .unwrap_or_else(|_| toml::Value::String(raw.to_string())),
                // A list from the environment: comma-separated strings.
                Some(toml::Value::Array(_)) => toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                ),
                _ => {
                    if let Ok(b) = raw.parse::<bool>() {
                        toml::Value::Boolean(b)
                    } else if let Ok(n) = raw.parse::<i64>() {
                        toml::Value::Integer(n)
                    } else {
                        toml::Value::String(raw.to_string())
                    }
                }
            };
            table.insert(seg.clone(), typed);
            return;
        }
        node = table
            .entry(seg.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
}

// TLS and SASL keys: checked here, applied by `security`.

/// SASL mechanisms this build supports (librdkafka with OpenSSL, without Cyrus SASL/Kerberos).
pub const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// The certificates of a PEM file (at least one), or why not.
pub fn read_ca_file(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read PEM file: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a PEM certificate file: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(certs)
}

fn is_tls_protocol(protocol: &str) -> bool {
    matches!(protocol.to_ascii_lowercase().as_str(), "ssl" | "sasl_ssl")
}

fn is_sasl_protocol(protocol: &str) -> bool {
    protocol.to_ascii_lowercase().starts_with("sasl_")
}

fn readable_file(key: &str, path: &str) -> Result<(), ConfigError> {
    std::fs::File::open(path)
        .map(drop)
        .map_err(|e| invalid(key, path, format!("cannot read: {e}")))
}

/// Checks of `[kafka]`'s TLS and SASL keys. Secret values never appear in the errors.
pub fn validate_kafka(k: &KafkaConfig) -> Result<(), ConfigError> {
    let protocol = k.security_protocol.to_ascii_lowercase();
    if is_sasl_protocol(&protocol) {
        let mechanism = k.sasl_mechanism.to_ascii_uppercase();
        if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
            return Err(invalid(
                "kafka.sasl_mechanism",
                &k.sasl_mechanism,
                format!(
                    "security_protocol {protocol:?} needs one of {SASL_MECHANISMS:?} (GSSAPI/Kerberos is not built in)"
                ),
            ));
        }
        if k.sasl_username.is_empty() {
            return Err(invalid(
                "kafka.sasl_username",
                "",
                format!("must not be empty with security_protocol {protocol:?}"),
            ));
        }
        if k.sasl_password.is_empty() {
            return Err(invalid(
                "kafka.sasl_password",
                "",
                format!("must not be empty with security_protocol {protocol:?}"),
            ));
        }
    } else if !k.sasl_mechanism.is_empty() {
        return Err(invalid(
            "kafka.sasl_mechanism",
            &k.sasl_mechanism,
            format!("only applies with security_protocol \"sasl_ssl\" or \"sasl_plaintext\", not {protocol:?}"),
        ));
    }
    let tls_keys = [
        ("kafka.ssl_ca_file", &k.ssl_ca_file),
        ("kafka.ssl_certificate_file", &k.ssl_certificate_file),
        ("kafka.ssl_key_file", &k.ssl_key_file),
    ];
    for (key, value) in tls_keys {
        if !value.is_empty() && !is_tls_protocol(&protocol) {
            return Err(invalid(
                key,
                value,
                format!(
                    "only applies with security_protocol \"ssl\" or \"sasl_ssl\", not {protocol:?}"
                ),
            ));
        }
    }
    if !k.ssl_ca_file.is_empty() {
        read_ca_file(&k.ssl_ca_file)
            .map_err(|m| invalid("kafka.ssl_ca_file", &k.ssl_ca_file, m))?;
    }
    match (k.ssl_certificate_file.is_empty(), k.ssl_key_file.is_empty()) {
        (true, true) => {}
        (false, false) => {
            read_ca_file(&k.ssl_certificate_file)
                .map_err(|m| invalid("kafka.ssl_certificate_file", &k.ssl_certificate_file, m))?;
            readable_file("kafka.ssl_key_file", &k.ssl_key_file)?;
        }
        (true, false) => {
            return Err(invalid(
                "kafka.ssl_certificate_file",
                "",
                "kafka.ssl_key_file is set: give the client certificate too",
            ))
        }
        (false, true) => {
            return Err(invalid(
                "kafka.ssl_key_file",
                "",
                "kafka.ssl_certificate_file is set: give its private key too",
            ))
        }
    }
    // Certificate and host-name verification cannot be switched off through kafka.extra.
    for (key, off) in [
        ("enable.ssl.certificate.verification", "false"),
        ("ssl.endpoint.identification.algorithm", "none"),
    ] {
        if let Some(value) = k.extra.get(key) {
            if value.trim().eq_ignore_ascii_case(off) {
                return Err(invalid(
                    &format!("kafka.extra.\"{key}\""),
                    value,
                    "turns TLS verification off; trust a private CA with kafka.ssl_ca_file instead",
                ));
            }
        }
    }
    if !k.ssl_key_password.is_empty() && k.ssl_key_file.is_empty() {
        return Err(invalid(
            "kafka.ssl_key_password",
            "***",
            "set without kafka.ssl_key_file",
        ));
    }
    Ok(())
}

/// Checks of an HTTP client's URL and `ca_file` (`section` is `clickhouse` or `schema_registry`).
pub fn validate_http_tls(section: &str, url: &str, ca_file: &str) -> Result<(), ConfigError> {
    if ca_file.is_empty() {
        return Ok(());
    }
    let key = format!("{section}.ca_file");
    if !url.starts_with("https://") {
        return Err(invalid(
            &key,
            ca_file,
            format!("only applies to an https:// {section}.url"),
        ));
    }
    read_ca_file(ca_file).map_err(|m| invalid(&key, ca_file, m))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn shipped_file_documents_exactly_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/dispatch-ingest.toml");
        let config = Config::load(Some(&path), vec![]).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn memory_budgets_are_derived_from_limit_mb() {
        let c = Config::default();
        let b = c.memory.budget(c.decode.max_record_bytes);
        assert_eq!(
            b,
            MemoryBudget {
                prefetch_kbytes: 32 * 1024,
                fetch_max_bytes: 16 << 20,
                partition_fetch_bytes: (1 << 20) + 64 * 1024,
                in_flight_bytes: 128 << 20,
                batch_held_bytes: 64 << 20,
            },
            "the arithmetic written down in config/dispatch-ingest.toml"
        );
        // The parts leave headroom within the limit.
        let parts = b.prefetch_kbytes * 1024 + b.fetch_max_bytes + b.in_flight_bytes as u64;
        assert_eq!(parts, 256 * (1 << 20) * 11 / 16);
    }

    #[test]
    fn a_memory_limit_that_cannot_hold_a_record_or_a_batch_is_refused_naming_the_keys() {
        let err = |vars: &[(&str, &str)]| Config::load(None, env(vars)).unwrap_err().to_string();
        let e = err(&[("DISPATCH_INGEST__MEMORY__LIMIT_MB", "16")]);
        assert!(
            e.contains("memory.limit_mb") && e.contains("at least 32"),
            "{e}"
        );
        // 32 MiB / 16 = 2 MiB per fetch cannot hold a 4 MiB record.
        let e = err(&[
            ("DISPATCH_INGEST__MEMORY__LIMIT_MB", "32"),
            ("DISPATCH_INGEST__DECODE__MAX_RECORD_BYTES", "4194304"),
            ("DISPATCH_INGEST__BATCH__MAX_BYTES", "1048576"),
        ]);
        assert!(
            e.contains("`memory.limit_mb`")
                && e.contains("decode.max_record_bytes")
                && e.contains("at least 65"),
            "{e}"
        );
        // The default batch.max_bytes (32 MiB) needs limit_mb >= 128.
        let e = err(&[("DISPATCH_INGEST__MEMORY__LIMIT_MB", "64")]);
        assert!(
            e.contains("`batch.max_bytes`")
                && e.contains("memory.limit_mb")
                && e.contains("at least 128"),
            "{e}"
        );
        let ok = Config::load(
            None,
            env(&[
                ("DISPATCH_INGEST__MEMORY__LIMIT_MB", "64"),
                ("DISPATCH_INGEST__BATCH__MAX_BYTES", "16777216"),
            ]),
        )
        .unwrap();
        assert_eq!(
            ok.memory.budget(ok.decode.max_record_bytes).in_flight_bytes,
            32 << 20
        );
    }

    #[test]
    fn the_old_prefetch_key_is_refused() {
        let e = Config::load(
            None,
            env(&[("DISPATCH_INGEST__KAFKA__FETCH_QUEUE_KBYTES", "16384")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("fetch_queue_kbytes"), "{e}");
    }

    #[test]
    fn cluster_mode_from_env_with_a_list_of_urls() {
        let c = Config::load(
            None,
            env(&[
                ("DISPATCH_INGEST__CLICKHOUSE__CLUSTER", "dispatch"),
                (
                    "DISPATCH_INGEST__CLICKHOUSE__URLS",
                    "http://ch-1:8123, http://ch-2:8123",
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.clickhouse.cluster, "dispatch");
        assert_eq!(
            c.clickhouse.urls,
            vec!["http://ch-1:8123".to_string(), "http://ch-2:8123".into()]
        );
        let bad = Config::load(
            None,
            env(&[(
                "DISPATCH_INGEST__CLICKHOUSE__URLS",
                "http://a:8123,ch-2:8123",
            )]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("clickhouse.urls") && bad.contains("ch-2:8123"),
            "{bad}"
        );
        let bad = Config::load(
            None,
            env(&[("DISPATCH_INGEST__CLICKHOUSE__CLUSTER", "a-b")]),
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("clickhouse.cluster"), "{bad}");
    }

    #[test]
    fn env_overrides_file_values_with_the_right_type() {
        let c = Config::load(
            None,
            env(&[
                ("DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS", "10.0.0.1:9093"),
                ("DISPATCH_INGEST__BATCH__MAX_ROWS", "123"),
                ("DISPATCH_INGEST__CLICKHOUSE__PASSWORD", "12345"),
                ("DISPATCH_INGEST__TOPICS__CALL__FORMAT", "json"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.kafka.bootstrap_servers, "10.0.0.1:9093");
        assert_eq!(c.batch.max_rows, 123);
        assert_eq!(c.clickhouse.password, "12345");
        assert_eq!(c.topics.call.format, WireFormat::Json);
    }

    #[test]
    fn a_message_max_bytes_above_the_derived_fetch_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        // limit_mb 64: one fetch is 4 MiB; an 8 MB message.max.bytes would stop the consumer.
        let file = |m: u64| {
            format!("[memory]\nlimit_mb = 64\n[batch]\nmax_bytes = 16777216\n[kafka.extra]\n\"message.max.bytes\" = \"{m}\"\n")
        };
        std::fs::write(&p, file(8_000_000)).unwrap();
        let err = Config::load(Some(&p), vec![]).unwrap_err().to_string();
        assert!(
            err.contains("message.max.bytes")
                && err.contains("4194304")
                && err.contains("at least 123"),
            "{err}"
        );
        std::fs::write(&p, file(4_000_000)).unwrap();
        Config::load(Some(&p), vec![]).unwrap();
    }

    #[test]
    fn unknown_key_in_file_is_named_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[kafka]\nbootstrap_server = \"x:1\"\n").unwrap();
        let err = Config::load(Some(&p), vec![]).unwrap_err().to_string();
        assert!(err.contains("`kafka.bootstrap_server`"), "{err}");
        assert!(err.contains("unknown field"), "{err}");
        assert!(err.contains(&p.display().to_string()), "{err}");
    }

    #[test]
    fn unknown_env_key_names_the_variable() {
        let err = Config::load(None, env(&[("DISPATCH_INGEST__SINK__ROWS", "5")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`sink`"), "{err}");
        assert!(err.contains("DISPATCH_INGEST__SINK__ROWS"), "{err}");
    }

    #[test]
    fn bad_values_name_key_and_value() {
        let cases = [
            (
                "DISPATCH_INGEST__BATCH__MAX_ROWS",
                "lots",
                "batch.max_rows",
                "lots",
            ),
            (
                "DISPATCH_INGEST__BATCH__MAX_ROWS",
                "0",
                "batch.max_rows",
                "0",
            ),
            (
                "DISPATCH_INGEST__CLICKHOUSE__URL",
                "ftp://x",
                "clickhouse.url",
                "ftp://x",
            ),
            (
                "DISPATCH_INGEST__CLICKHOUSE__DATABASE",
                "a-b",
                "clickhouse.database",
                "a-b",
            ),
            (
                "DISPATCH_INGEST__KAFKA__BOOTSTRAP_SERVERS",
                "nohost",
                "kafka.bootstrap_servers",
                "nohost",
            ),
            (
                "DISPATCH_INGEST__TOPICS__ALERT__FORMAT",
                "xml",
                "topics.alert.format",
                "xml",
            ),
            (
                "DISPATCH_INGEST__TOPICS__ALERT__NAME",
                "dispatch.calls",
                "topics.alert.name",
                "dispatch.calls",
            ),
            (
                "DISPATCH_INGEST__TELEMETRY__LISTEN",
                "port9",
                "telemetry.listen",
                "port9",
            ),
            (
                "DISPATCH_INGEST__CLICKHOUSE__VALIDATION",
                "maybe",
                "clickhouse.validation",
                "maybe",
            ),
            (
                "DISPATCH_INGEST__TOPICS__CALL__FORMAT",
                "avro-confluent",
                "schema_registry.url",
                "avro-confluent",
            ),
            (
                "DISPATCH_INGEST__SCHEMA_REGISTRY__URL",
                "registry:8081",
                "schema_registry.url",
                "registry:8081",
            ),
        ];
        for (var, value, key, shown) in cases {
            let err = Config::load(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
            assert!(err.contains(shown), "{var}={value}: {err}");
        }
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("http://ingest:hunter2@ch:8123/db and https://a@b/c"),
            "http://ingest:***@ch:8123/db and https://a@b/c"
        );
        assert_eq!(redact_url("no url here"), "no url here");
    }

    #[test]
    fn secrets_are_masked() {
        let c = Config::load(
            None,
            env(&[
                ("DISPATCH_INGEST__CLICKHOUSE__PASSWORD", "hunter2"),
                ("DISPATCH_INGEST__KAFKA__SASL_PASSWORD", "s3cret"),
            ]),
        )
        .unwrap();
        let shown = c.to_masked_toml();
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("password = \"***\""), "{shown}");
    }

    #[test]
    fn retry_section_is_validated_and_the_renamed_clickhouse_keys_still_work() {
        let c = Config::load(
            None,
            env(&[
                ("DISPATCH_INGEST__RETRY__INITIAL_MS", "50"),
                ("DISPATCH_INGEST__RETRY__JITTER", "0.1"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.retry,
            RetryConfig {
                initial_ms: 50,
                max_ms: 10_000,
                jitter: 0.1
            }
        );
        assert!(c.notices.is_empty());
        for (var, value, key) in [
            (
                "DISPATCH_INGEST__RETRY__INITIAL_MS",
                "0",
                "retry.initial_ms",
            ),
            ("DISPATCH_INGEST__RETRY__MAX_MS", "100", "retry.max_ms"),
            ("DISPATCH_INGEST__RETRY__JITTER", "1.0", "retry.jitter"),
            ("DISPATCH_INGEST__RETRY__JITTER", "-0.1", "retry.jitter"),
        ] {
            let err = Config::load(None, env(&[(var, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{var}={value}: {err}");
        }
        // A file of an older release: [clickhouse] retry_initial_ms / retry_max_ms.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "[clickhouse]\nretry_initial_ms = 300\nretry_max_ms = 5000\n",
        )
        .unwrap();
        let c = Config::load(Some(&p), vec![]).unwrap();
        assert_eq!((c.retry.initial_ms, c.retry.max_ms), (300, 5000));
        assert_eq!(c.notices.len(), 2, "{:?}", c.notices);
        assert!(
            c.notices[0].contains("clickhouse.retry_initial_ms")
                && c.notices[0].contains("retry.initial_ms"),
            "{:?}",
            c.notices
        );
        assert!(!c.to_masked_toml().contains("retry_initial_ms"));
        // Both, with different values: an error naming both.
        std::fs::write(
            &p,
            "[clickhouse]\nretry_initial_ms = 300\n[retry]\ninitial_ms = 400\n",
        )
        .unwrap();
        let err = Config::load(Some(&p), vec![]).unwrap_err().to_string();
        assert!(
            err.contains("clickhouse.retry_initial_ms") && err.contains("retry.initial_ms"),
            "{err}"
        );
        // The old environment variable, alone and beside the new one.
        let c = Config::load(
            None,
            env(&[("DISPATCH_INGEST__CLICKHOUSE__RETRY_MAX_MS", "7000")]),
        )
        .unwrap();
        assert_eq!(c.retry.max_ms, 7000);
        assert!(c.notices[0].contains("DISPATCH_INGEST__CLICKHOUSE__RETRY_MAX_MS"));
        let err = Config::load(
            None,
            env(&[
                ("DISPATCH_INGEST__CLICKHOUSE__RETRY_MAX_MS", "7000"),
                ("DISPATCH_INGEST__RETRY__MAX_MS", "8000"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("DISPATCH_INGEST__RETRY__MAX_MS"), "{err}");
    }

    #[test]
    fn missing_file_is_named() {
        let err = Config::load(Some(Path::new("/nonexistent/x.toml")), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/x.toml"), "{err}");
    }
}
