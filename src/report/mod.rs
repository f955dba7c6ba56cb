//! Reports for people, read from ClickHouse with the queries under `schemas/clickhouse/queries/`.

pub mod charts;
pub mod factsheet;
pub mod map;
pub mod municipalities;
pub mod queries;

use crate::sink::{Sink, SinkError};

use queries::Query;

/// How a report is written out (`--format` of the report commands).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// Markdown (the factsheet's charts as SVG data URIs).
    Md,
    /// A self-contained HTML page, charts and map as inline SVG.
    Html,
    /// CSV.
    Csv,
    /// JSON.
    Json,
}

/// Run a report query and return its result as a text table (for people, not for parsing).
pub async fn text_table(sink: &Sink, query: Query) -> Result<String, SinkError> {
    let err = |source| SinkError::ClickHouse {
        url: String::new(),
        source,
    };
    let bytes = query
        .on(&sink.client(), sink.database())
        .fetch_bytes("PrettyCompactMonoBlock")
        .map_err(err)?
        .collect()
        .await
        .map_err(err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
