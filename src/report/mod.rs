//! Reports for people, read from ClickHouse with the queries under `schemas/clickhouse/queries/`.

pub mod charts;
pub mod factsheet;
pub mod map;
pub mod municipalities;

use crate::sink::{Sink, SinkError, QUERIES};

/// How a report is written out (`--format` of the report commands).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Csv,
    Json,
}

/// Run a named report query and return its result as a text table.
pub async fn text_table(sink: &Sink, name: &str) -> Result<String, SinkError> {
    let sql = QUERIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, q)| *q)
        .unwrap_or_else(|| panic!("unknown report query {name}"));
    let sql = sql.replace("{db}", sink.database());
    let mut cursor = sink
        .client()
        .query(&sql)
        .fetch_bytes("PrettyCompactMonoBlock")
        .map_err(|source| SinkError::ClickHouse {
            url: String::new(),
            source,
        })?;
    let bytes = cursor
        .collect()
        .await
        .map_err(|source| SinkError::ClickHouse {
            url: String::new(),
            source,
        })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
