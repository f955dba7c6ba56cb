//! ClickHouse: connection and server-version detection, versioned migrations, and batched
//! inserts of enriched event rows.
//!
//! The sink never acknowledges a batch it has not seen acknowledged by ClickHouse: a failed insert
//! keeps the whole batch in memory and retries it (the `clickhouse` crate drops pending rows on
//! error, so every attempt builds a new insert from our own copy). Offsets are released to Kafka
//! only by the caller, after [`Sink::insert`] returned `Ok`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clickhouse::{Client, Row};
use serde::{Deserialize, Serialize};

use crate::clock::now_secs;
use crate::config::{ClickHouseConfig, Validation};
use crate::row::EventRow;

mod migrations;
pub use migrations::{checksum, Migration, MIGRATIONS, MIGRATION_LOCK_TABLE, MIGRATION_LOCK_WAIT};

/// Table the pipeline writes to.
pub const EVENTS_TABLE: &str = "dispatch_events";

/// Separator between statements of one SQL file (a line of its own).
pub const STATEMENT_BREAK: &str = "-- statement-break";

/// The statements of a SQL file with `{db}` replaced; comment-only chunks are skipped.
pub fn statements(sql: &str, db: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chunk = String::new();
    let mut flush = |chunk: &mut String| {
        let has_code = chunk
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"));
        if has_code {
            let s = chunk
                .trim()
                .trim_end_matches(';')
                .trim()
                .replace("{db}", db);
            out.push(s);
        }
        chunk.clear();
    };
    for line in sql.lines() {
        if line.trim() == STATEMENT_BREAK {
            flush(&mut chunk);
        } else {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    flush(&mut chunk);
    out
}

/// Why a ClickHouse operation failed; [`SinkError::is_retriable`] tells which are worth repeating.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// A request to ClickHouse failed (connection, HTTP, or a server exception).
    #[error("ClickHouse at {url}: {source}")]
    ClickHouse {
        /// The server's URL, with any password redacted.
        url: String,
        /// The ClickHouse client's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// A statement of a migration failed; the migration can be rerun and continues where it stopped.
    #[error(
        "migration {name}, statement {index} of {total} ({statement}) failed: {source}; {progress}"
    )]
    Migration {
        /// Migration name, e.g. `0003_mmt_rollups`.
        name: String,
        /// 1-based number of the failed statement within the migration.
        index: usize,
        /// Statements in the migration.
        total: usize,
        /// The statement's first line.
        statement: String,
        /// What of this migration is applied, and where a rerun continues.
        progress: String,
        /// The ClickHouse client's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// Another migrator held the migration lock for longer than the wait.
    #[error("the migration lock of database {database} ({database}.{MIGRATION_LOCK_TABLE}) is held by {holder} and was not released within {waited_secs} s; if no migrator is running any more (one was killed), drop that table and migrate again")]
    MigrationLock {
        /// Database whose lock is held.
        database: String,
        /// Who holds it: host name and process id.
        holder: String,
        /// How long this migrator waited, in seconds.
        waited_secs: u64,
    },
    /// An applied migration's file was changed afterwards: its checksum no longer matches.
    #[error("migration {name} (version {version}) was applied with checksum {applied} but the file now has {current}: migrations must not be edited once applied; add a new one")]
    EditedMigration {
        /// Migration name.
        name: String,
        /// Migration version (its number).
        version: u32,
        /// Checksum recorded when the migration was applied.
        applied: String,
        /// Checksum of the migration as bundled now.
        current: String,
    },
    /// The server's `version()` did not parse as `major.minor.patch`; the text it sent.
    #[error("cannot parse ClickHouse version {0:?}")]
    Version(String),
    /// A migration statement could not be rewritten for cluster mode.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::RewriteError),
    /// The events table on the server no longer has the columns the pipeline writes (schema drift).
    #[error("ClickHouse table {table} changed on the server (schema drift): {message}")]
    Drift {
        /// The table, as `database.table`.
        table: String,
        /// What differs, e.g. a missing column.
        message: String,
    },
    /// The HTTP client for an `https://` URL could not be built (CA file, TLS setup).
    #[error("ClickHouse at {url}: {message}")]
    Tls {
        /// The server's URL.
        url: String,
        /// The TLS setup error.
        message: String,
    },
}

impl SinkError {
    /// Whether trying the same request again can succeed (network, timeouts, overload).
    pub fn is_retriable(&self) -> bool {
        match self {
            SinkError::ClickHouse { source, .. } | SinkError::Migration { source, .. } => {
                is_retriable(source)
            }
            _ => false,
        }
    }
}

/// How a failed insert is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertFailure {
    /// Network, timeouts, overload, server restarts: try the same batch again.
    Retriable,
    /// The server rejects the data of some row (type, parse, enum value): isolate the rows and
    /// dead-letter the rejected ones.
    RowData,
    /// The table does not match (missing table/column, syntax, a column type changed on the
    /// server): a deployment problem. The sink stops (a stage failure, non-zero exit) naming the
    /// table and the error; never dead-lettered, never retried forever.
    Schema,
    /// Code 252 "too many partitions for a single INSERT block": permanent for this shape of
    /// batch (its rows span more months than `max_partitions_per_insert_block`), so the same
    /// insert is never retried: the rows are split into inserts of fewer months.
    TooManyPartitions,
}

/// ClickHouse error codes (as in `Code: N,`) that reject row data: parse and type errors, enum
/// values, a data check (`throwIf` in a MATERIALIZED column, 395) or a CHECK constraint (469).
const ROW_DATA_CODES: [u32; 13] = [6, 26, 27, 36, 38, 41, 53, 69, 70, 117, 395, 469, 691];
/// ClickHouse error codes that mean the table or statement does not match this version.
const SCHEMA_CODES: [u32; 5] = [16, 47, 60, 62, 81];

fn error_code(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Code: ")? + 6..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Error codes that only servers newer than 18.16 send (RBAC, newer parsers and settings), and
/// how an insert failing with them is handled. Checked before the lists above.
fn newer_version_code(code: u32) -> Option<InsertFailure> {
    match code {
        // CANNOT_PARSE_BOOL, CANNOT_PARSE_IPV4, CANNOT_PARSE_IPV6: the row's data.
        467 | 675 | 676 => Some(InsertFailure::RowData),
        // ACCESS_DENIED, AUTHENTICATION_FAILED (RBAC, 20.x+), UNKNOWN_SETTING (a setting this
        // server lacks), THERE_IS_NO_COLUMN as the analyzer reports it: the deployment or the
        // user's grants do not match; retried with backoff and logged as errors, never
        // dead-lettered.
        497 | 516 | 115 | 8 => Some(InsertFailure::Schema),
        // TOO_MANY_SIMULTANEOUS_QUERIES, MEMORY_LIMIT_EXCEEDED, TABLE_IS_READ_ONLY (Keeper
        // away), UNKNOWN_STATUS_OF_INSERT, KEEPER_EXCEPTION, QUERY_WAS_CANCELLED (server
        // shutting down): transient; the retry carries the same deduplication token.
        202 | 241 | 242 | 319 | 999 | 394 => Some(InsertFailure::Retriable),
        _ => None,
    }
}

/// How a failed insert is handled: by the error's kind and its ClickHouse error code.
pub fn classify(e: &clickhouse::error::Error) -> InsertFailure {
    use clickhouse::error::Error as E;
    match e {
        // With validation on, the crate compares the row type with the table's `DESCRIBE`
        // before sending anything: a deployment problem, like a missing column.
        E::SchemaMismatch(_) => InsertFailure::Schema,
        E::BadResponse(msg) => {
            // 18.16 reports an enum value outside the type as a LOGICAL_ERROR (49).
            if msg.contains("Unexpected value") {
                return InsertFailure::RowData;
            }
            if let Some(kind) = error_code(msg).and_then(newer_version_code) {
                return kind;
            }
            match error_code(msg) {
                // 252 is also "Too many parts" (merges behind): that one is transient.
                Some(252) if msg.contains("partitions") => InsertFailure::TooManyPartitions,
                Some(c) if ROW_DATA_CODES.contains(&c) => InsertFailure::RowData,
                Some(c) if SCHEMA_CODES.contains(&c) => InsertFailure::Schema,
                _ => InsertFailure::Retriable,
            }
        }
        _ => InsertFailure::Retriable,
    }
}

/// ClickHouse error codes that reject row data but that a column changed on the server (schema
/// drift: BAD_ARGUMENTS, TYPE_MISMATCH, CANNOT_CONVERT_TYPE) gives for every row too. Before
/// rows are dead-lettered for them, the table's columns are compared with those seen at start
/// ([`Sink::table_columns`]).
pub const DRIFT_SUSPECT_CODES: [u32; 3] = [36, 53, 70];

/// Whether an insert error is one of [`DRIFT_SUSPECT_CODES`].
pub fn is_drift_suspect(e: &SinkError) -> bool {
    match e {
        SinkError::ClickHouse {
            source: clickhouse::error::Error::BadResponse(msg),
            ..
        } => error_code(msg).is_some_and(|c| DRIFT_SUSPECT_CODES.contains(&c)),
        _ => false,
    }
}

/// `toYYYYMM(occurred_at)` of a row: the partition of `dispatch_events` it lands in (the table
/// partitions by UTC month).
pub fn partition_month(occurred_at: u32) -> u32 {
    use chrono::Datelike;
    let t = chrono::DateTime::from_timestamp(i64::from(occurred_at), 0).unwrap_or_default();
    t.year() as u32 * 100 + t.month()
}

/// Most partitions (months) one insert into `dispatch_events` touches: ClickHouse refuses an
/// insert block spanning more than `max_partitions_per_insert_block` (default 100) partitions
/// with code 252. A server configured lower still answers 252, and the sink halves the insert.
pub const MAX_MONTHS_PER_INSERT: usize = 100;

/// How to insert rows whose partition months are `months` with at most `max_months` months per
/// insert: the order to put the rows in (stable: rows of one month keep their order) and the
/// ranges of that order to insert one by one. Rows spanning at most `max_months` months keep
/// their order and form one range.
pub fn split_by_partition(
    months: &[u32],
    max_months: usize,
) -> (Vec<usize>, Vec<std::ops::Range<usize>>) {
    let max_months = max_months.max(1);
    let mut order: Vec<usize> = (0..months.len()).collect();
    let distinct: std::collections::BTreeSet<u32> = months.iter().copied().collect();
    if distinct.len() <= max_months {
        let all = Some(0..months.len()).filter(|r| !r.is_empty());
        return (order, all.into_iter().collect());
    }
    order.sort_by_key(|&i| months[i]);
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut seen = 0;
    for k in 0..order.len() {
        if k > 0 && months[order[k]] != months[order[k - 1]] {
            seen += 1;
            if seen == max_months {
                ranges.push(start..k);
                start = k;
                seen = 0;
            }
        }
    }
    ranges.push(start..order.len());
    (order, ranges)
}

/// Whether trying the same request again can succeed.
pub fn is_retriable(e: &clickhouse::error::Error) -> bool {
    classify(e) == InsertFailure::Retriable
}

/// ClickHouse server version, e.g. 18.16.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(pub u32, pub u32, pub u32);

impl ServerVersion {
    /// Parse a version such as `24.3.1.2672`: major and minor required, patch 0 when absent, further parts ignored.
    pub fn parse(s: &str) -> Option<ServerVersion> {
        let mut it = s.trim().split('.').map(|p| p.parse::<u32>().ok());
        Some(ServerVersion(
            it.next()??,
            it.next()??,
            it.next().flatten().unwrap_or(0),
        ))
    }

    /// RowBinaryWithNamesAndTypes, which the crate's validation needs, is missing on old servers.
    pub fn supports_validation(self) -> bool {
        self >= ServerVersion(24, 1, 0)
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// A connected ClickHouse, with the server version known.
#[derive(Clone)]
pub struct Sink {
    /// Without a default database (migrations name it in their statements).
    client: Client,
    /// Bound to the configured database once: the crate keeps the table metadata that
    /// validation needs per client and drops it on `with_database`, so binding per insert would
    /// run a `DESCRIBE` before every insert. Clones share the cache.
    db_client: Client,
    url: String,
    database: String,
    version: ServerVersion,
    /// Every configured replica (one in single-server mode), and the one inserts go to now.
    replicas: Arc<Vec<(String, Client)>>,
    current: Arc<AtomicUsize>,
    /// Replicated cluster mode: the cluster name.
    cluster: Option<String>,
}

impl Sink {
    /// Connect: ask the server its version (with validation off, which every version answers),
    /// then choose validation as configured.
    ///
    /// With several `urls` (cluster mode), the first replica that answers is used for
    /// migrations and queries, and inserts fail over between all of them.
    pub async fn connect(cfg: &ClickHouseConfig) -> Result<Sink, SinkError> {
        let urls: Vec<String> = if cfg.urls.is_empty() {
            vec![cfg.url.clone()]
        } else {
            cfg.urls.clone()
        };
        let http = crate::security::clickhouse_http_client(cfg).map_err(|e| SinkError::Tls {
            url: cfg.url.clone(),
            message: e.to_string(),
        })?;
        let base_for = |url: &str| {
            Client::with_http_client(http.clone())
                .with_url(url)
                .with_user(&cfg.user)
                .with_password(&cfg.password)
                .with_validation(false)
        };
        let mut answered = None;
        let mut last_err = None;
        for (i, url) in urls.iter().enumerate() {
            match base_for(url)
                .query("SELECT version()")
                .fetch_one::<String>()
                .await
            {
                Ok(raw) => {
                    answered = Some((i, raw));
                    break;
                }
                Err(source) => {
                    tracing::warn!(url = %crate::config::redact_url(url), error = %source, "ClickHouse replica not reachable");
                    last_err = Some(SinkError::ClickHouse {
                        url: crate::config::redact_url(url),
                        source,
                    });
                }
            }
        }
        let Some((index, raw)) = answered else {
            return Err(last_err.expect("at least one URL"));
        };
        let url = urls[index].clone();
        let version = ServerVersion::parse(&raw).ok_or(SinkError::Version(raw))?;
        let validation = match cfg.validation {
            Validation::On => true,
            Validation::Off => false,
            Validation::Auto => version.supports_validation(),
        };
        let cluster = (!cfg.cluster.is_empty()).then(|| cfg.cluster.clone());
        tracing::info!(%version, validation, url = %crate::config::redact_url(&url), replicas = urls.len(), cluster = cluster.as_deref().unwrap_or(""), "connected to ClickHouse");
        let replicas: Vec<(String, Client)> = urls
            .iter()
            .map(|u| {
                let c = base_for(u)
                    .with_validation(validation)
                    .with_database(&cfg.database);
                (crate::config::redact_url(u), c)
            })
            .collect();
        Ok(Sink {
            client: base_for(&url).with_validation(validation),
            // Shares its metadata cache with the replica's insert client (clones share it).
            db_client: replicas[index].1.clone(),
            url: crate::config::redact_url(&url),
            database: cfg.database.clone(),
            version,
            replicas: Arc::new(replicas),
            current: Arc::new(AtomicUsize::new(index)),
            cluster,
        })
    }

    /// Replicated cluster mode: the cluster name.
    pub fn cluster(&self) -> Option<&str> {
        self.cluster.as_deref()
    }

    /// The server's version, detected when connecting.
    pub fn version(&self) -> ServerVersion {
        self.version
    }

    /// The database of the raw tables (`clickhouse.database`).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// A client bound to the configured database (sharing the insert metadata cache).
    pub fn client(&self) -> Client {
        self.db_client.clone()
    }

    /// Whether inserts carry `insert_deduplication_token` (servers 24.1 and later; 18.16 has
    /// no such setting). See docs/delivery.md.
    pub fn deduplicates_inserts(&self) -> bool {
        self.version >= ServerVersion(24, 1, 0)
    }

    fn err(&self, source: clickhouse::error::Error) -> SinkError {
        SinkError::ClickHouse {
            url: self.url.clone(),
            source,
        }
    }

    /// Run one statement (DDL or a query whose result is not needed).
    pub async fn execute(&self, sql: &str) -> Result<(), SinkError> {
        self.client
            .query(sql)
            .execute()
            .await
            .map_err(|e| self.err(e))
    }

    /// The columns of `dispatch_events` (name, type) as the server lists them (18.16 has no
    /// `position` column to order by); an
    /// error when the table lacks a column the pipeline writes.
    pub async fn table_columns(&self) -> Result<Vec<(String, String)>, SinkError> {
        #[derive(Debug, Row, Deserialize)]
        struct Column {
            name: String,
            r#type: String,
        }
        let cols: Vec<Column> = self
            .client
            .query("SELECT name, type FROM system.columns WHERE database = ? AND table = ?")
            .bind(&self.database)
            .bind(EVENTS_TABLE)
            .fetch_all()
            .await
            .map_err(|e| self.err(e))?;
        let cols: Vec<(String, String)> = cols.into_iter().map(|c| (c.name, c.r#type)).collect();
        for name in <EventRow as Row>::COLUMN_NAMES {
            if !cols.iter().any(|(n, _)| n == name) {
                return Err(SinkError::Drift {
                    table: format!("{}.{EVENTS_TABLE}", self.database),
                    message: format!("the table has no column `{name}`, which the pipeline writes"),
                });
            }
        }
        Ok(cols)
    }

    /// Insert one batch. On `Err` nothing of the batch may be assumed written.
    ///
    /// With validation on, the first insert into the table (and the first after a migration or
    /// a schema error) asks the server for the table's columns (`DESCRIBE`); that request is
    /// bounded by `timeout` too. On 24.1+ the insert carries a deduplication token derived from
    /// the rows' source positions, so a retry of an insert that did land is dropped by the
    /// server instead of written twice (single-server mode only; see `try_insert`).
    ///
    /// With several replicas, a retriable failure moves the next attempt (the caller's retry
    /// policy decides when) to the next replica, so inserts go on while one is down.
    pub async fn insert(&self, rows: &[EventRow], timeout: Duration) -> Result<(), SinkError> {
        let index = self.current.load(Ordering::SeqCst) % self.replicas.len();
        let (url, client) = &self.replicas[index];
        let result = self.try_insert(client, rows, timeout).await;
        if let Err(e) = &result {
            if classify(e) == InsertFailure::Schema {
                // The table may have changed under us: validate against a fresh DESCRIBE.
                client.clear_cached_metadata().await;
            }
            if self.replicas.len() > 1 && is_retriable(e) {
                let next = (index + 1) % self.replicas.len();
                // Only the first of concurrent failures moves on.
                if self
                    .current
                    .compare_exchange(index, next, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
                {
                    tracing::warn!(from = %url, to = %self.replicas[next].0, error = %e, "insert failed; failing over to the next ClickHouse replica");
                }
            }
        }
        result.map_err(|source| SinkError::ClickHouse {
            url: url.clone(),
            source,
        })
    }

    async fn try_insert(
        &self,
        client: &Client,
        rows: &[EventRow],
        timeout: Duration,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = tokio::time::timeout(timeout, client.insert::<EventRow>(EVENTS_TABLE))
            .await
            .map_err(|_| clickhouse::error::Error::TimedOut)??
            .with_timeouts(Some(timeout), Some(timeout));
        if self.cluster.is_some() {
            // Replicated tables drop a block identical to (or with the token of) one inserted
            // before, and then do not feed the materialized views: a retried batch whose first
            // attempt reached the table but not its views would never reach the rollups. The
            // table design makes duplicates harmless instead (docs/delivery.md).
            insert = insert.with_setting("insert_deduplicate", "0");
        } else if self.deduplicates_inserts() {
            insert = insert
                .with_setting("insert_deduplicate", "1")
                .with_setting("insert_deduplication_token", dedup_token(rows));
        }
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }
}

/// How many recent inserts a 24.1+ server remembers for deduplication of `dispatch_events`.
pub const DEDUP_WINDOW: u32 = 1000;

/// The deduplication token of an insert: the rows' source positions (topic, partition, offset),
/// order-independent, hashed. The same records give the same token; one record more or less, a
/// different one. Every attempt of a batch (and of each half when a batch is split) sends the
/// same rows, so a retry after a lost acknowledgement is recognised.
pub fn dedup_token(rows: &[EventRow]) -> String {
    let mut pos: Vec<(&str, i32, i64)> = rows
        .iter()
        .map(|r| (r.source_topic.as_str(), r.source_partition, r.source_offset))
        .collect();
    pos.sort_unstable();
    let mut text = String::with_capacity(pos.len() * 24);
    for (t, p, o) in pos {
        text.push_str(t);
        text.push('\u{1f}');
        text.push_str(&p.to_string());
        text.push('\u{1f}');
        text.push_str(&o.to_string());
        text.push('\n');
    }
    format!("dispatch-ingest-{}-{}", rows.len(), checksum(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_files_have_no_bind_placeholders() {
        // The clickhouse crate treats `?` as a bind parameter.
        for m in MIGRATIONS {
            assert!(!m.sql.contains('?'), "{} contains '?'", m.name);
        }
    }

    #[test]
    fn statements_split_and_substitute() {
        let sql = "-- header only\n-- statement-break\nCREATE TABLE {db}.a (x UInt8) ENGINE = Memory;\n-- statement-break\n\n-- c\nSELECT 1\n";
        assert_eq!(
            statements(sql, "d"),
            vec![
                "CREATE TABLE d.a (x UInt8) ENGINE = Memory",
                "-- c\nSELECT 1"
            ]
        );
    }

    #[test]
    fn versions_parse_and_choose_validation() {
        assert_eq!(
            ServerVersion::parse("18.16.1"),
            Some(ServerVersion(18, 16, 1))
        );
        assert_eq!(
            ServerVersion::parse("26.9.2.1"),
            Some(ServerVersion(26, 9, 2))
        );
        assert_eq!(ServerVersion::parse("x"), None);
        assert!(!ServerVersion(18, 16, 1).supports_validation());
        assert!(ServerVersion(24, 3, 0).supports_validation());
    }

    #[test]
    fn insert_errors_are_classified() {
        use clickhouse::error::Error as E;
        let bad = |m: &str| E::BadResponse(m.to_string());
        assert_eq!(classify(&E::TimedOut), InsertFailure::Retriable);
        assert_eq!(
            classify(&bad(
                "Code: 252, e.displayText() = DB::Exception: Too many parts (300). Merges are processing significantly slower than inserts"
            )),
            InsertFailure::Retriable
        );
        assert_eq!(
            classify(&bad(
                "Code: 252, e.displayText() = DB::Exception: Too many partitions for single INSERT block (more than 100). The limit is controlled by 'max_partitions_per_insert_block' setting."
            )),
            InsertFailure::TooManyPartitions
        );
        assert_eq!(
            classify(&bad(
                "Code: 53, e.displayText() = DB::Exception: Type mismatch"
            )),
            InsertFailure::RowData
        );
        assert_eq!(
            classify(&bad(
                "Code: 691. DB::Exception: Unknown element 'x' for enum"
            )),
            InsertFailure::RowData
        );
        assert_eq!(
            classify(&bad(
                "Code: 49, e.displayText() = DB::Exception: Unexpected value 7 for type Enum8"
            )),
            InsertFailure::RowData
        );
        assert_eq!(
            classify(&bad(
                "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist"
            )),
            InsertFailure::Schema
        );
        assert_eq!(
            classify(&bad("Code: 16, No such column")),
            InsertFailure::Schema
        );
    }

    #[test]
    fn permanent_errors_are_not_retriable() {
        use clickhouse::error::Error as E;
        assert!(is_retriable(&E::TimedOut));
        assert!(is_retriable(&E::BadResponse(
            "Code: 252, e.displayText() = DB::Exception: Too many parts".into()
        )));
        assert!(!is_retriable(&E::BadResponse(
            "Code: 252, DB::Exception: Too many partitions for single INSERT block (more than 100)"
                .into()
        )));
        assert!(!is_retriable(&E::BadResponse(
            "Code: 53, e.displayText() = DB::Exception: Type mismatch".into()
        )));
        assert!(!is_retriable(&E::BadResponse(
            "Code: 117, Incorrect data".into()
        )));
    }

    #[test]
    fn codes_of_newer_servers_are_classified() {
        use clickhouse::error::Error as E;
        let bad = |m: &str| E::BadResponse(m.to_string());
        // As 26.x words them.
        assert_eq!(
            classify(&bad("Code: 497. DB::Exception: pipeline: Not enough privileges. To execute this query, it's necessary to have the grant INSERT(event_id) ON d.dispatch_events. (ACCESS_DENIED) (version 26.9.2.1)")),
            InsertFailure::Schema
        );
        assert_eq!(
            classify(&bad("Code: 115. DB::Exception: Unknown setting insert_deduplication_token. (UNKNOWN_SETTING)")),
            InsertFailure::Schema
        );
        assert_eq!(
            classify(&bad(
                "Code: 467. DB::Exception: Cannot parse boolean value. (CANNOT_PARSE_BOOL)"
            )),
            InsertFailure::RowData
        );
        assert_eq!(
            classify(&bad(
                "Code: 242. DB::Exception: Table is in readonly mode. (TABLE_IS_READ_ONLY)"
            )),
            InsertFailure::Retriable
        );
        assert_eq!(
            classify(&bad("Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO) (version 26.9.2.1)")),
            InsertFailure::RowData
        );
        assert_eq!(
            classify(&E::SchemaMismatch(
                "attempting to (de)serialize ClickHouse type String as u32".into()
            )),
            InsertFailure::Schema
        );
    }

    #[test]
    fn dedup_token_depends_on_the_records_only() {
        let row = |topic: &str, partition: i32, offset: i64| EventRow {
            source_topic: topic.into(),
            source_partition: partition,
            source_offset: offset,
            ..Default::default()
        };
        let a = vec![row("t", 0, 5), row("t", 1, 5), row("u", 0, 7)];
        let mut b = a.clone();
        b.reverse();
        b[0].ingested_at = 99; // a redelivery is ingested later: same records, same token
        assert_eq!(dedup_token(&a), dedup_token(&b));
        assert_ne!(dedup_token(&a), dedup_token(&a[..2]));
        assert_ne!(
            dedup_token(&[row("t", 0, 5)]),
            dedup_token(&[row("t", 0, 6)])
        );
        assert_ne!(
            dedup_token(&[row("t", 0, 5)]),
            dedup_token(&[row("t", 1, 5)])
        );
        assert!(dedup_token(&a).starts_with("dispatch-ingest-3-"));
    }

    #[test]
    fn partition_month_is_the_utc_month() {
        assert_eq!(partition_month(0), 197001);
        // 2024-01-31 23:30 UTC is February in Amsterdam, January in the table.
        assert_eq!(partition_month(1_706_743_800), 202401);
        assert_eq!(partition_month(1_706_745_600), 202402);
    }

    #[test]
    fn batches_are_split_by_partition_month() {
        // Few months: one insert, the order untouched.
        let (order, ranges) = split_by_partition(&[202403, 202401, 202403], 2);
        assert_eq!(order, vec![0, 1, 2]);
        assert_eq!(ranges, vec![0..3]);
        assert_eq!(
            split_by_partition(&[], 5).1,
            Vec::<std::ops::Range<usize>>::new()
        );
        // More months than allowed: sorted by month (stable), at most 2 months per range.
        let months = [202405, 202401, 202403, 202401, 202402, 202405];
        let (order, ranges) = split_by_partition(&months, 2);
        assert_eq!(order, vec![1, 3, 4, 2, 0, 5]);
        assert_eq!(ranges, vec![0..3, 3..6]);
        // 150 months of 3 rows each, 100 per insert: two inserts, every row once, no insert
        // spanning more than 100 months.
        let months: Vec<u32> = (0..450u32)
            .map(|i| {
                let m = (i * 7) % 150;
                (2010 + m / 12) * 100 + m % 12 + 1
            })
            .collect();
        let (order, ranges) = split_by_partition(&months, 100);
        assert_eq!(ranges.len(), 2);
        let mut seen: Vec<usize> = ranges
            .iter()
            .flat_map(|r| order[r.clone()].to_vec())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..450).collect::<Vec<_>>());
        for r in &ranges {
            let distinct: std::collections::BTreeSet<u32> =
                order[r.clone()].iter().map(|&i| months[i]).collect();
            assert!(distinct.len() <= 100, "{}", distinct.len());
        }
        // max 0 is treated as 1: one month per insert.
        assert_eq!(split_by_partition(&[1, 2, 2], 0).1, vec![0..1, 1..3]);
    }

    /// Every ClickHouse error code the classification knows, with the class expected of it;
    /// a code added to the lists without a line here fails the test.
    #[test]
    fn every_known_clickhouse_code_has_its_class() {
        use InsertFailure::{Retriable, RowData, Schema};
        let table: [(u32, InsertFailure); 31] = [
            // Row data: parse and type errors, enum values, data checks.
            (6, RowData),
            (26, RowData),
            (27, RowData),
            (36, RowData),
            (38, RowData),
            (41, RowData),
            (53, RowData),
            (69, RowData),
            (70, RowData),
            (117, RowData),
            (395, RowData),
            (469, RowData),
            (691, RowData),
            (467, RowData),
            (675, RowData),
            (676, RowData),
            // The table or the grants do not match: an operator must act.
            (16, Schema),
            (47, Schema),
            (60, Schema),
            (62, Schema),
            (81, Schema),
            (497, Schema),
            (516, Schema),
            (115, Schema),
            (8, Schema),
            // Transient on newer servers.
            (202, Retriable),
            (241, Retriable),
            (242, Retriable),
            (319, Retriable),
            (999, Retriable),
            (394, Retriable),
        ];
        for (code, expected) in &table {
            for text in [
                format!("Code: {code}, e.displayText() = DB::Exception: x (version 18.16.1)"),
                format!("Code: {code}. DB::Exception: x. (SOME_NAME) (version 26.9.2.1)"),
            ] {
                let e = clickhouse::error::Error::BadResponse(text.clone());
                assert_eq!(classify(&e), *expected, "{text}");
                assert_eq!(is_retriable(&e), *expected == Retriable, "{text}");
            }
        }
        let known: std::collections::BTreeSet<u32> = ROW_DATA_CODES
            .iter()
            .chain(SCHEMA_CODES.iter())
            .copied()
            .chain((0..1000).filter(|c| newer_version_code(*c).is_some()))
            .collect();
        let tested: std::collections::BTreeSet<u32> = table.iter().map(|t| t.0).collect();
        assert_eq!(known, tested, "codes without an expected class");
        // 252 is two errors; codes nobody knows, and no code at all, are transient.
        let bad = |m: &str| clickhouse::error::Error::BadResponse(m.into());
        assert_eq!(
            classify(&bad(
                "Code: 252, Too many partitions for single INSERT block"
            )),
            InsertFailure::TooManyPartitions
        );
        assert_eq!(classify(&bad("Code: 252, Too many parts (300)")), Retriable);
        assert_eq!(classify(&bad("Code: 4242, something new")), Retriable);
        assert_eq!(classify(&bad("connection reset by peer")), Retriable);
        // 18.16's enum value outside the type is a LOGICAL_ERROR (49) with this text.
        assert_eq!(
            classify(&bad("Code: 49, Unexpected value 7 for type Enum8")),
            RowData
        );
        assert_eq!(classify(&bad("Code: 49, Logical error")), Retriable);
        for code in DRIFT_SUSPECT_CODES {
            assert_eq!(
                table.iter().find(|t| t.0 == code).map(|t| t.1),
                Some(RowData),
                "drift suspects are row-data codes"
            );
        }
    }

    #[test]
    fn drift_suspects_are_recognised() {
        let e = |m: &str| SinkError::ClickHouse {
            url: "u".into(),
            source: clickhouse::error::Error::BadResponse(m.into()),
        };
        assert!(is_drift_suspect(&e(
            "Code: 53, e.displayText() = DB::Exception: Type mismatch"
        )));
        assert!(is_drift_suspect(&e(
            "Code: 70. DB::Exception: Cannot convert"
        )));
        assert!(!is_drift_suspect(&e("Code: 395. throwIf")));
    }
}
