//! Versioned migrations of the ClickHouse schema: the SQL files under
//! `schemas/clickhouse/migrations/`, the bookkeeping tables (`schema_migrations`,
//! `schema_migration_steps`) and the lock that serialises concurrent migrators.
//!
//! A migration is applied statement by statement; each statement is recorded, so a rerun after a
//! halfway failure continues where it stopped. Applied migrations are read only under the lock.

use clickhouse::sql::Identifier;

use super::*;
use crate::backoff::{Backoff, RetryClass, RetryOperation};
use crate::config::RetryConfig;
use crate::telemetry;

/// One migration: a versioned SQL file under `schemas/clickhouse/migrations/`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version number, the file's numeric prefix (1 for `0001_...`); applied in ascending order.
    pub version: u32,
    /// File stem, e.g. `0001_dispatch_events`.
    pub name: &'static str,
    /// The file's SQL, statements separated by `-- statement-break` lines, `{db}` for the database.
    pub sql: &'static str,
}

/// A [`Migration`] of `schemas/clickhouse/migrations/<name>.sql`.
macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(
                "../../schemas/clickhouse/migrations/",
                $name,
                ".sql"
            )),
        }
    };
}

/// Every migration, in order. A test checks this list against the directory.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_dispatch_events"),
    migration!(2, "0002_enrichment"),
    migration!(3, "0003_mmt_rollups"),
    migration!(4, "0004_ingest_offsets"),
    migration!(5, "0005_response_times"),
];

/// A stable checksum of a migration's text (FNV-1a, 64 bit), to notice edited migrations.
pub fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[derive(Debug, Row, Deserialize)]
struct AppliedMigration {
    version: u32,
    checksum: String,
}

/// The table whose existence is the migration lock: `CREATE TABLE` without `IF NOT EXISTS`
/// succeeds for exactly one of several concurrent migrators (18.16 has no transactions, and this
/// needs none); the holder drops it when done. It names its holder.
pub const MIGRATION_LOCK_TABLE: &str = "schema_migrations_lock";

/// How long `migrate` waits for another migrator's lock before giving up.
pub const MIGRATION_LOCK_WAIT: Duration = Duration::from_secs(300);

#[derive(Debug, Row, Serialize)]
struct MigrationRecord {
    version: u32,
    name: String,
    checksum: String,
    applied_at: u32,
}

impl Sink {
    async fn applied(&self) -> Result<Vec<AppliedMigration>, SinkError> {
        let db = &self.database;
        let exists: u64 = self
            .client
            .query("SELECT count() FROM system.tables WHERE database = ? AND name = 'schema_migrations'")
            .bind(db)
            .fetch_one()
            .await
            .map_err(|e| self.err(e))?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        self.client
            .query(
                "SELECT version, any(checksum) AS checksum FROM ?.schema_migrations \
                 GROUP BY version ORDER BY version",
            )
            .bind(Identifier(db))
            .fetch_all()
            .await
            .map_err(|e| self.err(e))
    }

    /// Names of migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<&'static str>, SinkError> {
        let applied = self.applied().await?;
        Ok(MIGRATIONS
            .iter()
            .filter(|m| !applied.iter().any(|a| a.version == m.version))
            .map(|m| m.name)
            .collect())
    }

    /// Create a bookkeeping table (`schema_migrations`, `schema_migration_steps`) if it is
    /// missing; replicated in cluster mode. A concurrent migrator creating it too is fine.
    /// `columns` is a constant of this module; the names and the replica path are bound.
    async fn bookkeeping_table(&self, table: &str, columns: &'static str) -> Result<(), SinkError> {
        let db = &self.database;
        let query = match &self.cluster {
            Some(cluster) => self
                .client
                .query(&format!(
                    "CREATE TABLE IF NOT EXISTS ?.? ON CLUSTER ? ({columns}) \
                     ENGINE = ReplicatedMergeTree(?, '{{replica}}') ORDER BY version"
                ))
                .bind(Identifier(db))
                .bind(Identifier(table))
                .bind(Identifier(cluster))
                .bind(crate::cluster::replica_path(db, table)),
            None => self
                .client
                .query(&format!(
                    "CREATE TABLE IF NOT EXISTS ?.? ({columns}) ENGINE = MergeTree() ORDER BY version"
                ))
                .bind(Identifier(db))
                .bind(Identifier(table)),
        };
        query.execute().await.map_err(|e| self.err(e))
    }

    /// `CREATE DATABASE IF NOT EXISTS`, on every replica in cluster mode.
    async fn create_database(&self) -> Result<(), SinkError> {
        let db = Identifier(&self.database);
        let query = match &self.cluster {
            Some(cluster) => self
                .client
                .query("CREATE DATABASE IF NOT EXISTS ? ON CLUSTER ?")
                .bind(db)
                .bind(Identifier(cluster)),
            None => self
                .client
                .query("CREATE DATABASE IF NOT EXISTS ?")
                .bind(db),
        };
        query.execute().await.map_err(|e| self.err(e))
    }

    /// Run a statement on `database.MIGRATION_LOCK_TABLE`, bound as `?.?` (the first two
    /// placeholders of `sql`).
    fn on_lock_table(&self, sql: &str) -> clickhouse::query::Query {
        self.client
            .query(sql)
            .bind(Identifier(&self.database))
            .bind(Identifier(MIGRATION_LOCK_TABLE))
    }

    /// Apply the migrations that are not yet recorded in `schema_migrations`, in order. Returns
    /// the names applied now (empty when everything was applied before).
    ///
    /// Safe to run twice and concurrently (replicas starting at once, a migration job): the
    /// migrations are applied under the lock ([`MIGRATION_LOCK_TABLE`]), and the holder reads
    /// what is applied only once it has the lock, so no migration is applied twice and no two
    /// interleave. Each statement is recorded in `schema_migration_steps` once it succeeded: a
    /// migration that failed halfway continues after its last applied statement on the next run.
    ///
    /// While another migrator holds the lock, `migrate` looks again with the retry policy
    /// `retry` (steps capped at 2 s), for up to [`MIGRATION_LOCK_WAIT`].
    pub async fn migrate(&self, retry: &RetryConfig) -> Result<Vec<&'static str>, SinkError> {
        let db = &self.database;
        self.create_database().await?;
        self.bookkeeping_table(
            "schema_migrations",
            "version UInt32, name String, checksum String, applied_at DateTime('UTC')",
        )
        .await?;
        self.bookkeeping_table(
            "schema_migration_steps",
            "version UInt32, statement UInt32, checksum String, applied_at DateTime('UTC')",
        )
        .await?;
        let done = if self.pending_migrations().await?.is_empty() {
            // Nothing to apply (migrations are only ever added): check checksums, no lock.
            self.apply_pending().await?
        } else {
            self.lock_migrations(retry, MIGRATION_LOCK_WAIT).await?;
            let result = self.apply_pending().await;
            let released = self
                .on_lock_table("DROP TABLE IF EXISTS ?.?")
                .execute()
                .await
                .map_err(|e| self.err(e));
            let done = result?;
            released?;
            done
        };
        if self.deduplicates_inserts() && self.cluster.is_none() {
            // Non-replicated MergeTree tables deduplicate inserts (by block hash or by
            // insert_deduplication_token) only within this window; Replicated tables already
            // keep one (replicated_deduplication_window). Not a migration: 18.16 has no such
            // table setting, and the same migration files run on both.
            self.client
                .query("ALTER TABLE ?.? MODIFY SETTING non_replicated_deduplication_window = ?")
                .bind(Identifier(db))
                .bind(Identifier(EVENTS_TABLE))
                .bind(DEDUP_WINDOW)
                .execute()
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(done)
    }

    /// Take the migration lock: create [`MIGRATION_LOCK_TABLE`], looking again with the retry
    /// policy (each look a `migration_lock` retry) while another migrator has it, up to `wait`.
    async fn lock_migrations(&self, retry: &RetryConfig, wait: Duration) -> Result<(), SinkError> {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .unwrap_or_default();
        let holder = format!("{} pid {}", host.trim(), std::process::id());
        let started = std::time::Instant::now();
        let mut backoff = Backoff::from_config(retry).capped(Duration::from_secs(2));
        let mut attempt = 0;
        loop {
            let created = self
                .on_lock_table(
                    "CREATE TABLE ?.? (holder String, claimed_at DateTime('UTC')) ENGINE = TinyLog",
                )
                .execute()
                .await
                .map_err(|e| self.err(e));
            let err = match created {
                Ok(()) => {
                    self.on_lock_table("INSERT INTO ?.? VALUES (?, now())")
                        .bind(&holder)
                        .execute()
                        .await
                        .map_err(|e| self.err(e))?;
                    tracing::info!(%holder, "migration lock taken");
                    return Ok(());
                }
                Err(e) => e,
            };
            // Code 57: the table exists, another migrator holds the lock.
            if !matches!(&err, SinkError::ClickHouse { source, .. } if error_code(&source.to_string()) == Some(57))
            {
                return Err(err);
            }
            let other = self.lock_holder().await;
            let elapsed = started.elapsed();
            if elapsed >= wait {
                return Err(SinkError::MigrationLock {
                    database: self.database.clone(),
                    holder: other,
                    waited_secs: wait.as_secs(),
                });
            }
            attempt += 1;
            let pause = backoff.next_wait().min(wait - elapsed);
            telemetry::retry(telemetry::RetryEvent {
                operation: RetryOperation::MigrationLock,
                class: RetryClass::Transient,
                attempt,
                wait: pause,
                subject: &format!("{}.{MIGRATION_LOCK_TABLE}", self.database),
                error: &format!("held by {other}"),
                message: "waiting for another migrator's lock",
            });
            tokio::time::sleep(pause).await;
        }
    }

    /// Who holds the migration lock, as it wrote itself into the lock table.
    async fn lock_holder(&self) -> String {
        let db = &self.database;
        self.client
            .query(
                "SELECT concat(holder, ' since ', toString(claimed_at), ' UTC') FROM ?.? LIMIT 1",
            )
            .bind(Identifier(db))
            .bind(Identifier(MIGRATION_LOCK_TABLE))
            .fetch_optional::<String>()
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| "another migrator".to_string())
    }

    /// Statements (1-based) of migration `version` already applied with this checksum.
    async fn applied_steps(&self, version: u32, sum: &str) -> Result<Vec<u32>, SinkError> {
        let db = &self.database;
        self.client
            .query(
                "SELECT DISTINCT statement FROM ?.schema_migration_steps \
                 WHERE version = ? AND checksum = ? ORDER BY statement",
            )
            .bind(Identifier(db))
            .bind(version)
            .bind(sum)
            .fetch_all()
            .await
            .map_err(|e| self.err(e))
    }

    /// Apply what `schema_migrations` does not list, statement by statement, skipping the
    /// statements `schema_migration_steps` lists. Run under the lock (or with nothing pending).
    async fn apply_pending(&self) -> Result<Vec<&'static str>, SinkError> {
        let db = &self.database;
        let applied = self.applied().await?;
        let mut done = Vec::new();
        for m in MIGRATIONS {
            let sum = checksum(m.sql);
            if let Some(a) = applied.iter().find(|a| a.version == m.version) {
                if a.checksum != sum {
                    return Err(SinkError::EditedMigration {
                        name: m.name.into(),
                        version: m.version,
                        applied: a.checksum.clone(),
                        current: sum,
                    });
                }
                continue;
            }
            let steps = self.applied_steps(m.version, &sum).await?;
            let statements = statements(m.sql, db);
            for (i, stmt) in statements.iter().enumerate() {
                let index = i as u32 + 1;
                if steps.contains(&index) {
                    tracing::info!(
                        migration = m.name,
                        statement = index,
                        "statement applied before"
                    );
                    continue;
                }
                let sql = match &self.cluster {
                    Some(c) => crate::cluster::rewrite(stmt, c)?,
                    None => stmt.clone(),
                };
                self.client.query(&sql).execute().await.map_err(|source| {
                    let before: Vec<String> = (1..index)
                        .map(|n| n.to_string())
                        .collect();
                    SinkError::Migration {
                        name: m.name.into(),
                        index: index as usize,
                        total: statements.len(),
                        statement: stmt
                            .lines()
                            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                        progress: if before.is_empty() {
                            "no statement of this migration was applied".to_string()
                        } else {
                            format!(
                                "statements {} of this migration are applied and recorded in \
                                 {db}.schema_migration_steps; migrate continues at statement {index}",
                                before.join(", ")
                            )
                        },
                        source,
                    }
                })?;
                self.client
                    .query("INSERT INTO ?.schema_migration_steps VALUES (?, ?, ?, now())")
                    .bind(Identifier(db))
                    .bind(m.version)
                    .bind(index)
                    .bind(&sum)
                    .execute()
                    .await
                    .map_err(|e| self.err(e))?;
            }
            let mut insert = self
                .db_client
                .insert::<MigrationRecord>("schema_migrations")
                .await
                .map_err(|e| self.err(e))?;
            insert
                .write(&MigrationRecord {
                    version: m.version,
                    name: m.name.into(),
                    checksum: sum,
                    applied_at: now_secs(),
                })
                .await
                .map_err(|e| self.err(e))?;
            insert.end().await.map_err(|e| self.err(e))?;
            tracing::info!(migration = m.name, "migration applied");
            // The schema version changed: the next insert validates against the new tables.
            self.db_client.clear_cached_metadata().await;
            done.push(m.name);
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_registered_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/clickhouse");
        let mut files: Vec<String> = std::fs::read_dir(dir.join("migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let names: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, names);
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "versions are 1..n without gaps");
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }

    #[test]
    fn checksum_is_stable() {
        assert_eq!(checksum("abc"), "e71fa2190541574b");
    }

    /// Every migration on main (and any added later) rewrites: each CREATE gets ON CLUSTER, each
    /// MergeTree engine becomes replicated with a path unique to its table.
    #[test]
    fn every_migration_rewrites() {
        let mut paths = Vec::new();
        for m in MIGRATIONS {
            for stmt in statements(m.sql, "db") {
                let out = crate::cluster::rewrite(&stmt, "ha")
                    .unwrap_or_else(|e| panic!("{}: {e}", m.name));
                let head = out.trim_start().to_ascii_uppercase();
                if head.starts_with("CREATE") || head.starts_with("DROP") {
                    assert!(out.contains(" ON CLUSTER ha"), "{}: {out}", m.name);
                }
                let engine = crate::cluster::find_keyword(&out, "ENGINE").map(|at| &out[at..]);
                if let Some(e) = engine {
                    let e = e.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
                    if e.contains("MergeTree") {
                        assert!(e.contains("= Replicated"), "{}: {e}", m.name);
                        let path = out
                            .split("Replicated")
                            .nth(1)
                            .and_then(|s| s.split('\'').nth(1))
                            .unwrap()
                            .to_string();
                        assert!(path.starts_with("/clickhouse/tables/{shard}/db/"));
                        paths.push(path);
                    }
                }
            }
        }
        assert!(paths.len() >= 4, "{paths:?}");
        let mut unique = paths.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), paths.len(), "{paths:?}");
    }
}
