//! The municipality report for BI tools: one row per cell in the public database
//! (`report.public_database`, default `dispatch_public`; tables in
//! `schemas/clickhouse/public/0001_municipality_report.sql`). Publishing a year replaces that
//! year's partition as a whole (rows are first written to a staging table in the raw database,
//! then `ALTER TABLE ... REPLACE PARTITION`), so a re-run is idempotent and a reader never sees
//! half a year. The previous publication of the year is passed to the suppression as `previous`,
//! so a cell suppressed once stays suppressed.

use serde::{Deserialize, Serialize};

use super::model::{Area, Cell, Exclusion, MunicipalityReport, Period, SuppressionReason};
use crate::sink::{statements, Sink, SinkError};

/// DDL of the public database's tables (`schemas/clickhouse/public/0001_municipality_report.sql`), with `{db}` for `report.public_database`.
pub const PUBLIC_SQL: &str =
    include_str!("../../../schemas/clickhouse/public/0001_municipality_report.sql");
/// Table of the published cells, one row per area x period x urgency.
pub const CELLS_TABLE: &str = "municipality_response_times";
/// Table of the incidents left out of the statistics, per year, reason and urgency.
pub const EXCLUSIONS_TABLE: &str = "municipality_response_exclusions";
/// Table with one row per publication of a year: its settings and cell counts.
pub const PUBLICATIONS_TABLE: &str = "municipality_report_publications";

/// One row of `municipality_response_times`.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct CellRow {
    /// Reporting year, by the local (Europe/Amsterdam) time the 112 call was accepted.
    pub year: u16,
    /// 0 for the whole year, 1-4 for a quarter.
    pub quarter: u8,
    /// Label of the period: `2025` for the year, `2025-Q1` .. `2025-Q4` for a quarter.
    pub period: String,
    /// `national`, `region` (safety region, the level of the legal norm) or `municipality` (today's layout).
    pub area_level: String,
    /// `NL`, `VR01`-`VR25` or the CBS municipality code `GMxxxx`.
    pub area_code: String,
    /// Name of the area.
    pub area_name: String,
    /// Safety region of the municipality, the region itself, or empty for NL.
    pub region_code: String,
    /// `A0`, `A1` or `A0+A1` (the two together).
    pub urgency: String,
    /// Deployments counted (incidents with a counting arrival); `None` when suppressed.
    pub deployments: Option<u64>,
    /// Mean response time in seconds (call accepted to first counting unit on scene); `None` when suppressed.
    pub mean_seconds: Option<f64>,
    /// Exact median in seconds (mean of the middle pair for even counts); `None` when suppressed or withheld.
    pub median_seconds: Option<f64>,
    /// Exact 90th percentile in seconds (nearest rank); `None` when suppressed or withheld.
    pub p90_seconds: Option<f64>,
    /// Exact 95th percentile in seconds (nearest rank); `None` when suppressed or withheld.
    pub p95_seconds: Option<f64>,
    /// Share of deployments on scene within 15 minutes (900 s inclusive), 0-1; `None` when suppressed.
    pub share_within_15: Option<f64>,
    /// 1 when nothing of the cell is published.
    pub suppressed: u8,
    /// Code of the suppression reason ([`reason_code`]); `None` when published.
    pub suppression_reason: Option<String>,
    /// The suppression reason in Dutch, as the reports print it.
    pub suppression_reason_nl: Option<String>,
    /// 1 when the cell is published but has too few deployments for median and percentiles.
    pub percentiles_withheld: u8,
    /// Regions, A1: 1 when at least 95% were on scene within 15 minutes, else 0; `None` elsewhere.
    pub meets_norm: Option<u8>,
}

/// One row of `municipality_response_exclusions`: incidents left out of the statistics.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct ExclusionRow {
    /// Reporting year.
    pub year: u16,
    /// `no_counting_arrival`, `arrival_before_call`, `implausible_time` or `unknown_municipality`.
    pub reason: String,
    /// `A0`, `A1` or `A0+A1`.
    pub urgency: String,
    /// Incidents of the year left out for this reason, nationally.
    pub incidents: u64,
}

/// One row of `municipality_report_publications`: the settings a year was published with.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize, Deserialize)]
pub struct PublicationRow {
    /// Reporting year.
    pub year: u16,
    /// When the year was last published, UTC seconds since the Unix epoch.
    pub published_at: u32,
    /// Suppression: the minimum deployments for a cell to be published (`report.min_deployments`).
    pub min_deployments: u64,
    /// Minimum deployments for median and percentiles (`report.min_deployments_percentiles`).
    pub min_deployments_percentiles: u64,
    /// The response-time norm in seconds (900: 95% of A1 within 15 minutes per region).
    pub norm_seconds: u32,
    /// Unit types whose arrival counts, comma-separated (`report.counting_unit_types`).
    pub counting_unit_types: String,
    /// Cells published, suppressed ones included.
    pub cells: u64,
    /// Cells suppressed.
    pub suppressed_cells: u64,
}

/// The stable code of a suppression reason, as published.
pub fn reason_code(r: SuppressionReason) -> &'static str {
    match r {
        SuppressionReason::TooFewDeployments => "too_few_deployments",
        SuppressionReason::Complementary => "complementary",
        SuppressionReason::Suppressed => "suppressed",
    }
}

fn reason_from_code(s: &str) -> Option<SuppressionReason> {
    match s {
        "too_few_deployments" => Some(SuppressionReason::TooFewDeployments),
        "complementary" => Some(SuppressionReason::Complementary),
        "suppressed" => Some(SuppressionReason::Suppressed),
        _ => None,
    }
}

/// The published row of a cell.
pub fn cell_row(c: &Cell) -> CellRow {
    let (year, quarter) = match c.period {
        Period::Year(y) => (y, 0),
        Period::Quarter(y, q) => (y, q),
    };
    let (level, region) = match &c.area {
        Area::National => ("national", String::new()),
        Area::Region { code, .. } => ("region", code.clone()),
        Area::Municipality { region_code, .. } => ("municipality", region_code.clone()),
    };
    CellRow {
        year: year as u16,
        quarter,
        period: c.period.label(),
        area_level: level.into(),
        area_code: c.area.code().into(),
        area_name: c.area.name().into(),
        region_code: region,
        urgency: c.urgency.label().into(),
        deployments: c.n,
        mean_seconds: c.mean_seconds,
        median_seconds: c.median_seconds,
        p90_seconds: c.p90_seconds,
        p95_seconds: c.p95_seconds,
        share_within_15: c.share_within_15,
        suppressed: u8::from(c.suppressed.is_some()),
        suppression_reason: c.suppressed.map(|r| reason_code(r).to_string()),
        suppression_reason_nl: c.suppressed.map(|r| r.text_nl().to_string()),
        percentiles_withheld: u8::from(c.percentiles_withheld),
        meets_norm: c.meets_norm.map(u8::from),
    }
}

/// A published row back as a cell (for `previous`); `None` for a row this version cannot read.
pub fn row_cell(r: &CellRow) -> Option<Cell> {
    use super::model::UrgencyGroup;
    let area = match r.area_level.as_str() {
        "national" => Area::National,
        "region" => Area::Region {
            code: r.area_code.clone(),
            name: r.area_name.clone(),
        },
        "municipality" => Area::Municipality {
            code: r.area_code.clone(),
            name: r.area_name.clone(),
            region_code: r.region_code.clone(),
        },
        _ => return None,
    };
    let year = i32::from(r.year);
    let period = match r.quarter {
        0 => Period::Year(year),
        q @ 1..=4 => Period::Quarter(year, q),
        _ => return None,
    };
    let urgency = UrgencyGroup::ALL
        .into_iter()
        .find(|u| u.label() == r.urgency)?;
    let suppressed = match &r.suppression_reason {
        Some(code) => Some(reason_from_code(code)?),
        None => None,
    };
    Some(Cell {
        area,
        period,
        urgency,
        n: r.deployments,
        mean_seconds: r.mean_seconds,
        median_seconds: r.median_seconds,
        p90_seconds: r.p90_seconds,
        p95_seconds: r.p95_seconds,
        share_within_15: r.share_within_15,
        suppressed,
        percentiles_withheld: r.percentiles_withheld == 1,
        meets_norm: r.meets_norm.map(|m| m == 1),
    })
}

fn ch(source: clickhouse::error::Error) -> SinkError {
    SinkError::ClickHouse {
        url: String::new(),
        source,
    }
}

/// Create the public database and its tables if missing.
pub async fn ensure_schema(sink: &Sink, public_db: &str) -> Result<(), SinkError> {
    for s in statements(PUBLIC_SQL, public_db) {
        sink.execute(&s).await?;
    }
    Ok(())
}

/// The cells of `year` as last published, if the table exists and holds the year.
pub async fn previous(
    sink: &Sink,
    public_db: &str,
    year: i32,
) -> Result<Option<Vec<Cell>>, SinkError> {
    let exists: u64 = sink
        .client()
        .query("SELECT count() FROM system.tables WHERE database = ? AND name = ?")
        .bind(public_db)
        .bind(CELLS_TABLE)
        .fetch_one()
        .await
        .map_err(ch)?;
    if exists == 0 {
        return Ok(None);
    }
    let rows: Vec<CellRow> = sink
        .client()
        .query("SELECT ?fields FROM ?.? WHERE year = ?")
        .bind(clickhouse::sql::Identifier(public_db))
        .bind(clickhouse::sql::Identifier(CELLS_TABLE))
        .bind(year)
        .fetch_all()
        .await
        .map_err(ch)?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(rows.iter().filter_map(row_cell).collect()))
}

/// Everything published for one year, read back from the public database exactly as a BI user
/// reads it: see [`read_publication`].
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    /// `municipality_response_times`: one cell per row, suppressed cells included (with `None`
    /// for the count and every statistic, and their reason), ordered by quarter, urgency, area
    /// level and area code (the table's sort key).
    pub cells: Vec<Cell>,
    /// `municipality_response_exclusions`: incidents left out per reason and urgency (national).
    pub exclusions: Vec<ExclusionRow>,
    /// `municipality_report_publications`: the year's publication parameters, `None` if absent.
    pub publication: Option<PublicationRow>,
}

/// Why a publication could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadBackError {
    /// ClickHouse did not answer the query of a table, or its rows did not match the row type.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A row of the cells table this version cannot turn into a [`Cell`] (unknown area level,
    /// quarter, urgency or reason). Reported, never skipped: a reader for the attacker must not
    /// silently see less than is published.
    #[error("{table}: row {row} cannot be read as a cell: {detail}")]
    UnreadableRow {
        /// The table read.
        table: &'static str,
        /// The row's index (0-based) in the table's sort order.
        row: usize,
        /// The row as read.
        detail: String,
    },
}

/// Read back every published table of `year` from `public_db` (the database the BI user may
/// read): the cells of `municipality_response_times` as the model's [`Cell`]s (what a BI user
/// sees: suppressed cells with NULLs and the reason), the exclusions and the publication row.
/// Unlike [`previous`] it fails on a row it cannot read instead of skipping it, and returns an
/// empty [`Publication`] when the year (or the tables) are not published. This is the input of
/// the read-back attack test (docs/suppression.md): the attacker gets all three tables; only the
/// cells carry figures linked to suppressed cells (the exclusions are national counts of
/// incidents outside every cell; the publication row holds parameters and cell totals).
pub async fn read_publication(
    sink: &Sink,
    public_db: &str,
    year: i32,
) -> Result<Publication, ReadBackError> {
    use clickhouse::sql::Identifier;
    let present: Vec<String> = sink
        .client()
        .query("SELECT name FROM system.tables WHERE database = ?")
        .bind(public_db)
        .fetch_all()
        .await
        .map_err(ch)?;
    let has = |t: &str| present.iter().any(|p| p == t);
    let mut out = Publication {
        cells: Vec::new(),
        exclusions: Vec::new(),
        publication: None,
    };
    if has(CELLS_TABLE) {
        let rows: Vec<CellRow> = sink
            .client()
            .query(
                "SELECT ?fields FROM ?.? WHERE year = ? \
                 ORDER BY quarter, urgency, area_level, area_code",
            )
            .bind(Identifier(public_db))
            .bind(Identifier(CELLS_TABLE))
            .bind(year)
            .fetch_all()
            .await
            .map_err(ch)?;
        for (i, r) in rows.iter().enumerate() {
            let cell = row_cell(r).ok_or_else(|| ReadBackError::UnreadableRow {
                table: CELLS_TABLE,
                row: i,
                detail: format!("{r:?}"),
            })?;
            out.cells.push(cell);
        }
    }
    if has(EXCLUSIONS_TABLE) {
        out.exclusions = sink
            .client()
            .query("SELECT ?fields FROM ?.? WHERE year = ? ORDER BY reason, urgency")
            .bind(Identifier(public_db))
            .bind(Identifier(EXCLUSIONS_TABLE))
            .bind(year)
            .fetch_all()
            .await
            .map_err(ch)?;
    }
    if has(PUBLICATIONS_TABLE) {
        let rows: Vec<PublicationRow> = sink
            .client()
            .query("SELECT ?fields FROM ?.? WHERE year = ? ORDER BY published_at DESC LIMIT 1")
            .bind(Identifier(public_db))
            .bind(Identifier(PUBLICATIONS_TABLE))
            .bind(year)
            .fetch_all()
            .await
            .map_err(ch)?;
        out.publication = rows.into_iter().next();
    }
    Ok(out)
}

/// Write `rows` into `public_db.table`'s partition `year` as a whole: through a staging copy of
/// the table in the raw database, then REPLACE PARTITION.
async fn replace_year<T>(
    sink: &Sink,
    public_db: &str,
    table: &str,
    year: i32,
    rows: &[T],
) -> Result<(), SinkError>
where
    T: clickhouse::RowOwned + clickhouse::RowWrite + Send + Sync,
{
    use clickhouse::sql::Identifier;
    let raw = sink.database().to_string();
    let staging = format!("publish_staging_{table}");
    let client = sink.client();
    let drop_staging = || {
        client
            .query("DROP TABLE IF EXISTS ?.?")
            .bind(Identifier(&raw))
            .bind(Identifier(&staging))
            .execute()
    };
    drop_staging().await.map_err(ch)?;
    client
        .query("CREATE TABLE ?.? AS ?.?")
        .bind(Identifier(&raw))
        .bind(Identifier(&staging))
        .bind(Identifier(public_db))
        .bind(Identifier(table))
        .execute()
        .await
        .map_err(ch)?;
    let mut insert = client.insert::<T>(&staging).await.map_err(ch)?;
    for r in rows {
        insert.write(r).await.map_err(ch)?;
    }
    insert.end().await.map_err(ch)?;
    client
        .query("ALTER TABLE ?.? REPLACE PARTITION ? FROM ?.?")
        .bind(Identifier(public_db))
        .bind(Identifier(table))
        .bind(year)
        .bind(Identifier(&raw))
        .bind(Identifier(&staging))
        .execute()
        .await
        .map_err(ch)?;
    drop_staging().await.map_err(ch)
}

/// Publish the (suppressed) report of one year. Returns (cells, suppressed cells).
pub async fn publish(
    sink: &Sink,
    public_db: &str,
    report: &MunicipalityReport,
    counting_unit_types: &str,
) -> Result<(u64, u64), SinkError> {
    ensure_schema(sink, public_db).await?;
    let year = report.year;
    let cells: Vec<CellRow> = report.cells.iter().map(cell_row).collect();
    let exclusions: Vec<ExclusionRow> = report
        .exclusions
        .iter()
        .map(|e: &Exclusion| ExclusionRow {
            year: year as u16,
            reason: e.reason.clone(),
            urgency: e.urgency.label().into(),
            incidents: e.incidents,
        })
        .collect();
    let suppressed = cells.iter().filter(|c| c.suppressed == 1).count() as u64;
    replace_year(sink, public_db, CELLS_TABLE, year, &cells).await?;
    replace_year(sink, public_db, EXCLUSIONS_TABLE, year, &exclusions).await?;
    let publication = PublicationRow {
        year: year as u16,
        published_at: crate::clock::now_secs(),
        min_deployments: report.params.min_deployments,
        min_deployments_percentiles: report.params.min_deployments_percentiles,
        norm_seconds: report.norm_seconds,
        counting_unit_types: counting_unit_types.into(),
        cells: cells.len() as u64,
        suppressed_cells: suppressed,
    };
    replace_year(sink, public_db, PUBLICATIONS_TABLE, year, &[publication]).await?;
    Ok((cells.len() as u64, suppressed))
}

#[cfg(test)]
mod tests {
    use super::super::model::UrgencyGroup;
    use super::*;

    #[test]
    fn a_published_row_reads_back_as_the_same_cell() {
        let cells = [
            Cell::suppressed(
                Area::Municipality {
                    code: "GM0088".into(),
                    name: "Schiermonnikoog".into(),
                    region_code: "VR02".into(),
                },
                Period::Quarter(2025, 3),
                UrgencyGroup::A0A1,
                SuppressionReason::TooFewDeployments,
            ),
            Cell {
                area: Area::Region {
                    code: "VR02".into(),
                    name: "Fryslân".into(),
                },
                period: Period::Year(2025),
                urgency: UrgencyGroup::A1,
                n: Some(1200),
                mean_seconds: Some(640.5),
                median_seconds: Some(600.0),
                p90_seconds: Some(900.0),
                p95_seconds: Some(1100.0),
                share_within_15: Some(0.91),
                suppressed: None,
                percentiles_withheld: false,
                meets_norm: Some(false),
            },
        ];
        for c in cells {
            let r = cell_row(&c);
            assert_eq!(row_cell(&r).as_ref(), Some(&c));
        }
    }
}
