//! Replicated ClickHouse cluster mode: the rewrite the migrator applies to every migration
//! statement, so the SQL files stay written for a single server and new migrations need nothing
//! special.
//!
//! In cluster mode (`[clickhouse] cluster = "name"`):
//! - `CREATE DATABASE|TABLE|VIEW|MATERIALIZED VIEW` and `DROP TABLE|VIEW|DATABASE` get
//!   `ON CLUSTER name` after the object name, so every replica gets the object;
//! - every `*MergeTree(args)` engine becomes `Replicated*MergeTree('/clickhouse/tables/{shard}/DB/TABLE',
//!   '{replica}', args)`: the `{shard}` and `{replica}` macros come from each server's `<macros>`;
//! - `ALTER TABLE` of a replicated table is left alone (replication carries it to every
//!   replica), and `INSERT ... SELECT` backfills run once, on the replica the migrator talks to
//!   (their rows are replicated like any insert).
//!
//! - column `COMMENT '...'` clauses are removed: ClickHouse 18.16 fails to create a replicated
//!   table with column comments ("Table structure in ZooKeeper is too different from local table
//!   structure"), so in cluster mode the column descriptions live in the SQL files only.
//!
//! A statement the rewrite does not understand is an error naming it, never passed through
//! unchanged, so a new kind of statement cannot silently create a table on one replica only.

/// ZooKeeper path of a replicated table; `{shard}` is expanded by the server.
pub fn replica_path(database: &str, table: &str) -> String {
    format!("/clickhouse/tables/{{shard}}/{database}/{table}")
}

/// A migration statement the cluster rewrite does not understand (it is never passed through unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cluster rewrite of statement {statement:?}: {message}")]
pub struct RewriteError {
    /// The statement's first 120 characters.
    pub statement: String,
    /// What the rewrite could not handle.
    pub message: String,
}

/// Rewrite one migration statement (with `{db}` already substituted) for `cluster`.
pub fn rewrite(statement: &str, cluster: &str) -> Result<String, RewriteError> {
    let err = |message: &str| RewriteError {
        statement: statement.chars().take(120).collect(),
        message: message.to_string(),
    };
    // Leading comment lines carry no meaning for the server; drop them so the keywords lead.
    let body: String = {
        let mut lines = statement.lines().peekable();
        while let Some(l) = lines.peek() {
            if l.trim().is_empty() || l.trim_start().starts_with("--") {
                lines.next();
            } else {
                break;
            }
        }
        lines.collect::<Vec<_>>().join("\n")
    };
    let body = strip_column_comments(&body);
    let tokens = words(&body, 8);
    let upper: Vec<String> = tokens.iter().map(|(_, w)| w.to_ascii_uppercase()).collect();
    let kw = |i: usize| upper.get(i).map(String::as_str).unwrap_or("");
    let first = kw(0);
    match first {
        "INSERT" | "SELECT" | "OPTIMIZE" => return Ok(body),
        "ALTER" => {
            // Replicated tables replicate ALTERs themselves; ON CLUSTER would apply it twice.
            return Ok(body);
        }
        "CREATE" | "DROP" => {}
        _ => return Err(err("unknown statement kind; teach src/cluster.rs about it")),
    }
    // Position of the object name: after CREATE [MATERIALIZED] (TABLE|VIEW|DATABASE) [IF [NOT] EXISTS].
    let mut i = 1;
    if kw(i) == "MATERIALIZED" {
        i += 1;
    }
    let object = kw(i).to_string();
    if !matches!(object.as_str(), "TABLE" | "VIEW" | "DATABASE") {
        return Err(err("only TABLE, VIEW and DATABASE are handled"));
    }
    i += 1;
    if kw(i) == "IF" {
        i += if kw(i + 1) == "NOT" { 3 } else { 2 };
    }
    let Some((name_at, name)) = tokens.get(i).cloned() else {
        return Err(err("no object name"));
    };
    let after_name = name_at + name.len();
    let table = name.rsplit('.').next().unwrap_or(&name).trim_matches('`');
    let database = name
        .rsplit_once('.')
        .map(|(d, _)| d.trim_matches('`'))
        .unwrap_or("default");
    let mut out = String::with_capacity(body.len() + 96);
    out.push_str(&body[..after_name]);
    out.push_str(&format!(" ON CLUSTER {cluster}"));
    let rest = &body[after_name..];
    if first == "CREATE" && object != "DATABASE" {
        out.push_str(&replicate_engine(rest, database, table).map_err(|m| err(&m))?);
    } else {
        out.push_str(rest);
    }
    Ok(out)
}

/// `sql` without its `COMMENT '...'` clauses (quoted text and `--` comments are kept).
pub fn strip_column_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = find_keyword(rest, "COMMENT") {
        let after = rest[at + "COMMENT".len()..].trim_start();
        let Some(quoted) = after.strip_prefix('\'') else {
            out.push_str(&rest[..at + "COMMENT".len()]);
            rest = &rest[at + "COMMENT".len()..];
            continue;
        };
        let b = quoted.as_bytes();
        let mut i = 0;
        // A quote ends the string unless doubled ('it''s'); a backslash escapes one byte.
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'\'' if b.get(i + 1) == Some(&b'\'') => i += 2,
                b'\'' => break,
                _ => i += 1,
            }
        }
        out.push_str(rest[..at].trim_end_matches([' ', '\t']));
        rest = &quoted[(i + 1).min(quoted.len())..];
    }
    out.push_str(rest);
    out
}

/// The first `n` words (identifier-like runs, dots included) with their byte offsets, outside
/// quotes and comments.
fn words(sql: &str, n: usize) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() && out.len() < n {
        let c = b[i];
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c.is_ascii_alphanumeric() || c == b'_' || c == b'`' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_.`{}".contains(&b[i])) {
                i += 1;
            }
            out.push((start, sql[start..i].to_string()));
        } else {
            i += 1;
        }
    }
    out
}

/// Rewrite `ENGINE = XMergeTree(args)` in `rest` (the statement after the object name) to its
/// replicated form. Other engines (Memory, Log, ...) and `TO table` views stay as they are.
fn replicate_engine(rest: &str, database: &str, table: &str) -> Result<String, String> {
    let Some(at) = find_keyword(rest, "ENGINE") else {
        return Ok(rest.to_string());
    };
    let after = &rest[at + "ENGINE".len()..];
    let trimmed = after.trim_start();
    let Some(eq_rest) = trimmed.strip_prefix('=') else {
        return Err("ENGINE without '='".into());
    };
    let eng = eq_rest.trim_start();
    let eng_at = rest.len() - eng.len();
    let name_len = eng
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(eng.len());
    let engine = &eng[..name_len];
    if !engine.ends_with("MergeTree") {
        return Ok(rest.to_string());
    }
    if engine.starts_with("Replicated") {
        return Err(format!(
            "{engine} is already replicated; migrations are written for a single server"
        ));
    }
    let path = replica_path(database, table);
    let after_name = &eng[name_len..];
    let (args, tail) = match after_name.strip_prefix('(') {
        Some(inner) => {
            let close = inner
                .find(')')
                .ok_or_else(|| format!("{engine}( without ')'"))?;
            (inner[..close].trim(), &inner[close + 1..])
        }
        None => ("", after_name),
    };
    let sep = if args.is_empty() { "" } else { ", " };
    Ok(format!(
        "{}Replicated{engine}('{path}', '{{replica}}'{sep}{args}){tail}",
        &rest[..eng_at]
    ))
}

/// Byte offset of a whole-word, upper-case keyword outside quotes and `--` comments.
pub(crate) fn find_keyword(sql: &str, keyword: &str) -> Option<usize> {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {
                let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
                if word_start && sql[i..].starts_with(keyword) {
                    let end = i + keyword.len();
                    if end >= b.len() || !(b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                        return Some(i);
                    }
                }
                i += 1;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each `(statement, cluster, expected)` rewrites to `expected`.
    fn assert_rewrites(cases: &[(&str, &str, &str)]) {
        for (statement, cluster, expected) in cases {
            assert_eq!(
                rewrite(statement, cluster).unwrap(),
                *expected,
                "{statement}"
            );
        }
    }

    #[test]
    fn engines_become_replicated_with_macros() {
        let sql = "CREATE TABLE IF NOT EXISTS d.t\n(\n    x UInt8 DEFAULT 'ENGINE = MergeTree() here is text'\n)\nENGINE = ReplacingMergeTree(v)\nORDER BY x";
        let cases = [
            (
                sql,
                "ha",
                "CREATE TABLE IF NOT EXISTS d.t ON CLUSTER ha\n(\n    x UInt8 DEFAULT 'ENGINE = MergeTree() here is text'\n)\nENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/d/t', '{replica}', v)\nORDER BY x",
            ),
            (
                "CREATE TABLE d.a (x UInt8) ENGINE = AggregatingMergeTree() ORDER BY x",
                "c",
                "CREATE TABLE d.a ON CLUSTER c (x UInt8) ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/d/a', '{replica}') ORDER BY x",
            ),
            (
                "CREATE TABLE d.a (x UInt8) ENGINE=MergeTree ORDER BY x",
                "c",
                "CREATE TABLE d.a ON CLUSTER c (x UInt8) ENGINE=ReplicatedMergeTree('/clickhouse/tables/{shard}/d/a', '{replica}') ORDER BY x",
            ),
            // Materialized view with an inner engine: the inner table is replicated too.
            (
                "CREATE MATERIALIZED VIEW IF NOT EXISTS d.m ENGINE = SummingMergeTree() ORDER BY k AS SELECT k, count() AS n FROM d.t GROUP BY k",
                "c",
                "CREATE MATERIALIZED VIEW IF NOT EXISTS d.m ON CLUSTER c ENGINE = ReplicatedSummingMergeTree('/clickhouse/tables/{shard}/d/m', '{replica}') ORDER BY k AS SELECT k, count() AS n FROM d.t GROUP BY k",
            ),
        ];
        assert_rewrites(&cases);
    }

    #[test]
    fn column_comments_are_removed() {
        assert_eq!(
            strip_column_comments("(a UInt8 COMMENT 'it''s -- x', b String COMMENT 'y\\'z')\n-- COMMENT 'kept'\nENGINE = Memory"),
            "(a UInt8, b String)\n-- COMMENT 'kept'\nENGINE = Memory"
        );
        assert_eq!(
            rewrite(
                "ALTER TABLE d.t ADD COLUMN y UInt8 COMMENT 'why', ADD COLUMN z UInt8",
                "c"
            )
            .unwrap(),
            "ALTER TABLE d.t ADD COLUMN y UInt8, ADD COLUMN z UInt8"
        );
    }

    #[test]
    fn views_databases_and_drops_get_on_cluster_only() {
        let cases = [
            (
                "-- why\nCREATE VIEW IF NOT EXISTS d.v AS SELECT 1",
                "c",
                "CREATE VIEW IF NOT EXISTS d.v ON CLUSTER c AS SELECT 1",
            ),
            (
                "CREATE MATERIALIZED VIEW IF NOT EXISTS d.m TO d.t AS SELECT x FROM d.s",
                "c",
                "CREATE MATERIALIZED VIEW IF NOT EXISTS d.m ON CLUSTER c TO d.t AS SELECT x FROM d.s",
            ),
            (
                "CREATE DATABASE IF NOT EXISTS d",
                "c",
                "CREATE DATABASE IF NOT EXISTS d ON CLUSTER c",
            ),
            (
                "DROP TABLE IF EXISTS d.v",
                "c",
                "DROP TABLE IF EXISTS d.v ON CLUSTER c",
            ),
            (
                "CREATE TABLE d.m (x UInt8) ENGINE = Memory",
                "c",
                "CREATE TABLE d.m ON CLUSTER c (x UInt8) ENGINE = Memory",
            ),
        ];
        assert_rewrites(&cases);
    }

    #[test]
    fn alters_and_inserts_pass_unchanged_unknown_statements_fail() {
        let alter = "ALTER TABLE d.t ADD COLUMN y UInt8";
        assert_eq!(rewrite(alter, "c").unwrap(), alter);
        let insert = "INSERT INTO d.t SELECT * FROM d.s";
        assert_eq!(rewrite(insert, "c").unwrap(), insert);
        assert!(rewrite("RENAME TABLE d.a TO d.b", "c").is_err());
        assert!(rewrite(
            "CREATE TABLE d.a (x UInt8) ENGINE = ReplicatedMergeTree('/p', 'r') ORDER BY x",
            "c"
        )
        .is_err());
    }
}
