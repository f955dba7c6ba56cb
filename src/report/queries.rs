//! The report queries: one file under `schemas/clickhouse/queries/` per query, one constant here
//! per file.
//!
//! A query file holds one `SELECT` and writes the database as `{db}` (as the migrations do, so
//! that `tests/sql/check_sql.py` can run every file on ClickHouse 26.x and on the local server).
//! [`Query::on`] does not paste the name in: each `{db}` becomes a bind parameter filled with
//! [`clickhouse::sql::Identifier`], which the `clickhouse` crate quotes on the client (this works
//! on 18.16 as on 26.x). Queries that are read into typed rows name their columns and cast them
//! to the Rust types, so a missing column or a changed type is an error from the server or from
//! the crate's row decoding, never a silent zero.

use clickhouse::sql::Identifier;
use clickhouse::Client;

/// A report query: its name (the file's stem) and its SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Name of the query: the stem of its file in `schemas/clickhouse/queries/`.
    pub name: &'static str,
    /// The query's SQL, with `{db}` for the database.
    pub sql: &'static str,
}

/// Where a query file writes the database.
const DB_PLACEHOLDER: &str = "{db}";

impl Query {
    /// The query on `client`, reading the tables of database `db`.
    pub fn on(&self, client: &Client, db: &str) -> clickhouse::query::Query {
        let uses = self.sql.matches(DB_PLACEHOLDER).count();
        let mut query = client.query(&self.sql.replace(DB_PLACEHOLDER, "?"));
        for _ in 0..uses {
            query = query.bind(Identifier(db));
        }
        query
    }
}

macro_rules! query {
    ($(#[$doc:meta])* $konst:ident, $file:literal) => {
        $(#[$doc])*
        pub const $konst: Query = Query {
            name: $file,
            sql: include_str!(concat!("../../schemas/clickhouse/queries/", $file, ".sql")),
        };
    };
}

query!(
    /// What landed, per stream (the `status` subcommand).
    LANDED_BY_STREAM,
    "landed_by_stream"
);
query!(
    /// The factsheet's indicators, one row per year.
    MMT_FACTSHEET_YEAR,
    "mmt_factsheet_year"
);
query!(
    /// Calls, deployments and cancels per month.
    MMT_FACTSHEET_MONTH,
    "mmt_factsheet_month"
);
query!(
    /// Deployments and cancels per station and safety region of the incident.
    MMT_STATION_LOCATION,
    "mmt_station_location"
);
query!(
    /// Cancels per reason and year.
    MMT_CANCEL_REASONS,
    "mmt_cancel_reasons"
);

/// Every report query (a unit test checks this against the files on disk).
pub const ALL: [Query; 5] = [
    LANDED_BY_STREAM,
    MMT_FACTSHEET_YEAR,
    MMT_FACTSHEET_MONTH,
    MMT_STATION_LOCATION,
    MMT_CANCEL_REASONS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_is_registered_once() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/clickhouse/queries");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let mut registered: Vec<String> = ALL.iter().map(|q| format!("{}.sql", q.name)).collect();
        registered.sort();
        registered.dedup();
        assert_eq!(files, registered);
    }

    #[test]
    fn query_files_have_no_bind_placeholders_of_their_own() {
        // `?` is the crate's bind parameter; `{db}` is the only parameter a query file has.
        for q in ALL {
            assert!(!q.sql.contains('?'), "{} contains '?'", q.name);
            assert!(
                q.sql.contains(DB_PLACEHOLDER),
                "{} reads no table of {{db}}",
                q.name
            );
        }
    }

    #[test]
    fn typed_queries_name_their_columns() {
        // `SELECT *` would make the row layout depend on the view's definition.
        for q in ALL {
            assert!(!q.sql.contains("SELECT *"), "{} selects *", q.name);
        }
    }
}
