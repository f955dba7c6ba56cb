//! The MMT factsheet regenerated from ClickHouse: the year's indicators next to the year before,
//! calls per month, deployments vs cancels for every year present, cancel reasons, and per
//! station by incident location. Read from the views of migration 0003 (definitions in
//! docs/rollups.md); rendered as Markdown or HTML with SVG charts, CSV, or JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::queries::{self, Query};
use crate::report::ReportFormat;
use crate::sink::{Sink, SinkError};

use super::charts;

/// One year's indicators (the `mmt_factsheet_year` view), in the column order of its query.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct YearFigures {
    /// Calendar year, by the local (Europe/Amsterdam) time the MMT unit was first alerted.
    pub year: i32,
    /// MMT calls: MMT units (helicopter or car) alerted for an incident.
    pub calls: u64,
    /// Calls divided by the days of the year (365 or 366).
    pub calls_per_day: f64,
    /// Deployments: MMT calls not cancelled (the team gave care).
    pub deployments: u64,
    /// Deployments divided by the days of the year.
    pub deployments_per_day: f64,
    /// MMT calls with an AlertCancelled for the unit.
    pub cancels: u64,
    /// Deployments as a percentage of calls, one decimal.
    pub deployment_pct: f64,
    /// Calls of an MMT helicopter.
    pub helicopter_calls: u64,
    /// Calls of an MMT car.
    pub car_calls: u64,
    /// Helicopter calls as a percentage of calls, one decimal.
    pub helicopter_pct: f64,
    /// Car calls as a percentage of calls, one decimal.
    pub car_pct: f64,
    /// Primary calls: alerted by the dispatcher on the 112 call.
    pub primary_calls: u64,
    /// Secondary calls: requested by the ambulance crew.
    pub secondary_calls: u64,
    /// Primary calls as a percentage of calls, one decimal.
    pub primary_pct: f64,
    /// Deployments whose incident indicates trauma (explicit flag or triage code).
    pub trauma_deployments: u64,
    /// Trauma deployments as a percentage of deployments, one decimal.
    pub trauma_pct: f64,
    /// Deployments whose patient is 18 or younger (unknown age counts as not a child).
    pub child_deployments: u64,
    /// Child deployments as a percentage of deployments, one decimal.
    pub child_pct: f64,
    /// Deployments whose patient was flown by helicopter under the MMT physician.
    pub helicopter_transports: u64,
    /// Helicopter transports as a percentage of deployments, one decimal.
    pub helicopter_transport_pct: f64,
    /// Deployments where the MMT physician went along in the ambulance.
    pub ambulance_accompanied_deployments: u64,
    /// Ambulance-accompanied deployments as a percentage of deployments, one decimal.
    pub ambulance_accompanied_pct: f64,
}

/// Calls per month (the `mmt_factsheet_month` view), in the column order of its query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clickhouse::Row)]
pub struct MonthFigures {
    /// Calendar year (Europe/Amsterdam, by first alert).
    pub year: i32,
    /// Month of the year, 1-12.
    pub month: u32,
    /// MMT calls in the month.
    pub calls: u64,
    /// Deployments (calls not cancelled) in the month.
    pub deployments: u64,
    /// Cancelled calls in the month.
    pub cancels: u64,
}

/// A row of the `mmt_station_location` query.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
struct StationRow {
    year: i32,
    station: String,
    region_code: String,
    deployments: u64,
    cancels: u64,
}

/// A row of the `mmt_cancel_reasons` query.
#[derive(Debug, Clone, PartialEq, Deserialize, clickhouse::Row)]
struct ReasonRow {
    year: i32,
    cancel_reason: String,
    cancels: u64,
}

/// One station's deployments and cancels by safety region of the incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationFigures {
    /// Normalised MMT station name, e.g. `Amsterdam`.
    pub station: String,
    /// Safety region (`VRxx`) of the incident location on the call date.
    pub region_code: String,
    /// Deployments of the station in that region.
    pub deployments: u64,
    /// Cancelled calls of the station in that region.
    pub cancels: u64,
}

/// Cancels for one reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonFigures {
    /// Cancel reason symbol, e.g. `WEATHER`.
    pub cancel_reason: String,
    /// Cancelled MMT calls with that reason.
    pub cancels: u64,
}

/// The MMT factsheet for one year, with the year before beside it: what `report factsheet` renders.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Factsheet {
    /// The year the factsheet is for.
    pub year: i32,
    /// Every year present, ascending.
    pub years: Vec<YearFigures>,
    /// Months of the year and the year before.
    pub months: Vec<MonthFigures>,
    /// Per station and safety region of the incident, for `year`.
    pub stations: Vec<StationFigures>,
    /// Cancel reasons over the year and the year before (as the factsheet's figure 5).
    pub cancel_reasons: Vec<ReasonFigures>,
}

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Connecting to ClickHouse or a sink operation failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A report query failed on ClickHouse.
    #[error("report query {query} on ClickHouse: {source}")]
    Query {
        /// Name of the query: the stem of its file in `schemas/clickhouse/queries/`.
        query: &'static str,
        /// The ClickHouse client's error.
        #[source]
        source: clickhouse::error::Error,
    },
    /// The views hold no MMT calls in the year asked for.
    #[error("no MMT calls in {0}: nothing to report (did the pipeline ingest that year?)")]
    NoData(i32),
    /// An SVG chart could not be drawn.
    #[error("drawing a chart: {0}")]
    Chart(String),
}

/// The rows of a report query, decoded into `T` (a missing column or another type is an error).
async fn rows<T>(sink: &Sink, query: Query) -> Result<Vec<T>, ReportError>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    query
        .on(&sink.client(), sink.database())
        .fetch_all::<T>()
        .await
        .map_err(|source| ReportError::Query {
            query: query.name,
            source,
        })
}

/// Read the factsheet for `year` from ClickHouse.
pub async fn load(sink: &Sink, year: i32) -> Result<Factsheet, ReportError> {
    let years: Vec<YearFigures> = rows(sink, queries::MMT_FACTSHEET_YEAR).await?;
    if !years.iter().any(|y| y.year == year) {
        return Err(ReportError::NoData(year));
    }
    let shown = |y: i32| y == year || y == year - 1;
    let months = rows::<MonthFigures>(sink, queries::MMT_FACTSHEET_MONTH)
        .await?
        .into_iter()
        .filter(|m| shown(m.year))
        .collect();
    let stations = rows::<StationRow>(sink, queries::MMT_STATION_LOCATION)
        .await?
        .into_iter()
        .filter(|r| r.year == year)
        .map(|r| StationFigures {
            station: r.station,
            region_code: r.region_code,
            deployments: r.deployments,
            cancels: r.cancels,
        })
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows::<ReasonRow>(sink, queries::MMT_CANCEL_REASONS).await? {
        if shown(r.year) {
            *reasons.entry(r.cancel_reason).or_default() += r.cancels;
        }
    }
    let mut cancel_reasons: Vec<ReasonFigures> = reasons
        .into_iter()
        .map(|(cancel_reason, cancels)| ReasonFigures {
            cancel_reason,
            cancels,
        })
        .collect();
    cancel_reasons.sort_by_key(|r| std::cmp::Reverse(r.cancels));
    Ok(Factsheet {
        year,
        years,
        months,
        stations,
        cancel_reasons,
    })
}

/// Read and render.
pub async fn render(sink: &Sink, year: i32, format: ReportFormat) -> Result<String, ReportError> {
    let f = load(sink, year).await?;
    Ok(match format {
        ReportFormat::Json => serde_json::to_string_pretty(&f).expect("serializes") + "\n",
        ReportFormat::Csv => to_csv(&f),
        ReportFormat::Md => to_markdown(&f)?,
        ReportFormat::Html => to_html(&f)?,
    })
}

/// The indicator rows shown in the main table: (label, value for a year).
type Indicator = (&'static str, fn(&YearFigures) -> String);

/// A percentage in Dutch notation (`12,3%`); a share of nothing (0/0, NaN from the view) is `-`.
pub(crate) fn pct(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    format!("{v:.1}%").replace('.', ",")
}

pub(crate) fn count(v: u64) -> String {
    // Dutch thousands separator, as the factsheet prints (15.273).
    let s = v.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

const INDICATORS: [Indicator; 13] = [
    ("MMT-oproepen", |y| count(y.calls)),
    ("gemiddeld per dag", |y| format!("{:.0}", y.calls_per_day)),
    ("inzetten (daadwerkelijke inzet)", |y| count(y.deployments)),
    ("inzetten gemiddeld per dag", |y| {
        format!("{:.0}", y.deployments_per_day)
    }),
    ("cancels", |y| count(y.cancels)),
    ("inzet als deel van de oproepen", |y| pct(y.deployment_pct)),
    ("oproepen per helikopter", |y| pct(y.helicopter_pct)),
    ("oproepen per auto", |y| pct(y.car_pct)),
    ("primair (112-melding)", |y| pct(y.primary_pct)),
    ("inzetten trauma-gerelateerd", |y| pct(y.trauma_pct)),
    ("inzetten kind (18 jaar of jonger)", |y| pct(y.child_pct)),
    (
        "inzetten: patiënt met helikopter vervoerd onder begeleiding MMT-arts",
        |y| pct(y.helicopter_transport_pct),
    ),
    ("inzetten: MMT-arts begeleidt in de ambulance", |y| {
        pct(y.ambulance_accompanied_pct)
    }),
];

fn shown_years(f: &Factsheet) -> Vec<&YearFigures> {
    f.years
        .iter()
        .filter(|y| y.year == f.year || y.year == f.year - 1)
        .collect()
}

fn charts_svg(f: &Factsheet) -> Result<Vec<(&'static str, String)>, ReportError> {
    let chart = |r: Result<String, Box<dyn std::error::Error>>| {
        r.map_err(|e| ReportError::Chart(e.to_string()))
    };
    let mut per_year: BTreeMap<i32, [u64; 12]> = BTreeMap::new();
    for m in &f.months {
        per_year.entry(m.year).or_insert([0; 12])[(m.month as usize).clamp(1, 12) - 1] = m.calls;
    }
    let months: Vec<(i32, [u64; 12])> = per_year.into_iter().collect();
    let years: Vec<(i32, u64, u64)> = f
        .years
        .iter()
        .map(|y| (y.year, y.deployments, y.cancels))
        .collect();
    let reasons: Vec<(String, u64)> = f
        .cancel_reasons
        .iter()
        .map(|r| (r.cancel_reason.clone(), r.cancels))
        .collect();
    let mut stations: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in &f.stations {
        let e = stations.entry(s.station.clone()).or_default();
        e.0 += s.deployments;
        e.1 += s.cancels;
    }
    let stations: Vec<(String, u64, u64)> =
        stations.into_iter().map(|(k, (d, c))| (k, d, c)).collect();
    Ok(vec![
        (
            "Figuur 1. Aantal oproepen per maand",
            chart(charts::calls_per_month(&months))?,
        ),
        (
            "Figuur 2. Inzetten en cancels per jaar",
            chart(charts::deployments_vs_cancels(&years))?,
        ),
        (
            "Figuur 3/4. Inzetten en cancels per MMT-station",
            chart(charts::stations(&stations))?,
        ),
        (
            "Figuur 5. Cancelredenen",
            chart(charts::cancel_reasons(&reasons))?,
        ),
    ])
}

fn station_table(f: &Factsheet) -> Vec<[String; 4]> {
    f.stations
        .iter()
        .map(|s| {
            [
                s.station.clone(),
                s.region_code.clone(),
                count(s.deployments),
                count(s.cancels),
            ]
        })
        .collect()
}

fn to_markdown(f: &Factsheet) -> Result<String, ReportError> {
    use base64::Engine as _;
    let ys = shown_years(f);
    let mut s = format!(
        "# MMT factsheet {}\n\nRegenerated by dispatch-ingest from the events in ClickHouse \
         (definitions: docs/rollups.md).\n\n| indicator | {} |\n|---|{}\n",
        f.year,
        ys.iter()
            .map(|y| y.year.to_string())
            .collect::<Vec<_>>()
            .join(" | "),
        ys.iter().map(|_| "---:|").collect::<String>()
    );
    for (label, value) in INDICATORS {
        s.push_str(&format!(
            "| {label} | {} |\n",
            ys.iter().map(|y| value(y)).collect::<Vec<_>>().join(" | ")
        ));
    }
    for (title, svg) in charts_svg(f)? {
        let data = base64::engine::general_purpose::STANDARD.encode(svg);
        s.push_str(&format!(
            "\n## {title}\n\n![{title}](data:image/svg+xml;base64,{data})\n"
        ));
    }
    s.push_str(&format!(
        "\n## Inzetten en cancels per station en veiligheidsregio ({})\n\n| station | regio | inzetten | cancels |\n|---|---|---:|---:|\n",
        f.year
    ));
    for row in station_table(f) {
        s.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    s.push_str("\n## Cancelredenen\n\n| reden | cancels |\n|---|---:|\n");
    for r in &f.cancel_reasons {
        s.push_str(&format!(
            "| {} | {} |\n",
            charts::short_reason(&r.cancel_reason),
            count(r.cancels)
        ));
    }
    Ok(s)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn to_html(f: &Factsheet) -> Result<String, ReportError> {
    let ys = shown_years(f);
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"nl\"><head><meta charset=\"utf-8\"><title>MMT factsheet {year}</title>\
         <style>body{{font-family:sans-serif;max-width:860px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border-bottom:1px solid #ccc;padding:4px 10px}}\
         td.n{{text-align:right}}figure{{margin:2em 0}}</style></head><body>\n\
         <h1>MMT factsheet {year}</h1>\n<p>Regenerated by dispatch-ingest from the events in ClickHouse \
         (definitions: docs/rollups.md).</p>\n<table><tr><th>indicator</th>{heads}</tr>\n",
        year = f.year,
        heads = ys
            .iter()
            .map(|y| format!("<th>{}</th>", y.year))
            .collect::<String>()
    );
    for (label, value) in INDICATORS {
        s.push_str(&format!(
            "<tr><td>{}</td>{}</tr>\n",
            escape(label),
            ys.iter()
                .map(|y| format!("<td class=\"n\">{}</td>", escape(&value(y))))
                .collect::<String>()
        ));
    }
    s.push_str("</table>\n");
    for (title, svg) in charts_svg(f)? {
        s.push_str(&format!(
            "<figure>{svg}<figcaption>{}</figcaption></figure>\n",
            escape(title)
        ));
    }
    s.push_str(&format!(
        "<h2>Inzetten en cancels per station en veiligheidsregio ({})</h2>\n<table><tr><th>station</th><th>regio</th><th>inzetten</th><th>cancels</th></tr>\n",
        f.year
    ));
    for row in station_table(f) {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            escape(&row[0]),
            escape(&row[1]),
            row[2],
            row[3]
        ));
    }
    s.push_str("</table>\n</body></html>\n");
    Ok(s)
}

fn to_csv(f: &Factsheet) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["section", "year", "key", "value"]);
    for y in &f.years {
        let v = serde_json::to_value(y).expect("serializes");
        if let serde_json::Value::Object(map) = v {
            for (k, val) in map {
                if k != "year" {
                    let _ = w.write_record([
                        "indicator".to_string(),
                        y.year.to_string(),
                        k,
                        val.to_string(),
                    ]);
                }
            }
        }
    }
    for m in &f.months {
        for (k, v) in [
            ("calls", m.calls),
            ("deployments", m.deployments),
            ("cancels", m.cancels),
        ] {
            let _ = w.write_record([
                "month".to_string(),
                m.year.to_string(),
                format!("{:02}.{k}", m.month),
                v.to_string(),
            ]);
        }
    }
    for s in &f.stations {
        for (k, v) in [("deployments", s.deployments), ("cancels", s.cancels)] {
            let _ = w.write_record([
                "station".to_string(),
                f.year.to_string(),
                format!("{}.{}.{k}", s.station, s.region_code),
                v.to_string(),
            ]);
        }
    }
    for r in &f.cancel_reasons {
        let _ = w.write_record([
            "cancel_reason".to_string(),
            format!("{}-{}", f.year - 1, f.year),
            r.cancel_reason.clone(),
            r.cancels.to_string(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Factsheet {
        let y = |year, calls, deployments| YearFigures {
            year,
            calls,
            deployments,
            cancels: calls - deployments,
            deployment_pct: (1000.0 * deployments as f64 / calls as f64).round() / 10.0,
            ..YearFigures::default()
        };
        Factsheet {
            year: 2024,
            years: vec![y(2023, 15_273, 6_388), y(2024, 14_803, 5_998)],
            months: (1..=12)
                .map(|m| MonthFigures {
                    year: 2024,
                    month: m,
                    calls: 1_000 + u64::from(m) * 10,
                    deployments: 400,
                    cancels: 600,
                })
                .collect(),
            stations: vec![StationFigures {
                station: "Volkel".into(),
                region_code: "VR22".into(),
                deployments: 10,
                cancels: 5,
            }],
            cancel_reasons: vec![ReasonFigures {
                cancel_reason: "AMBULANCE_ASSESSED_NOT_NEEDED".into(),
                cancels: 9_000,
            }],
        }
    }

    #[test]
    fn markdown_and_html_carry_the_figures_and_four_charts() {
        let f = sample();
        let md = to_markdown(&f).unwrap();
        assert!(md.contains("| MMT-oproepen | 15.273 | 14.803 |"), "{md}");
        assert!(
            md.contains("| inzet als deel van de oproepen | 41,8% | 40,5% |"),
            "{md}"
        );
        assert_eq!(md.matches("data:image/svg+xml;base64,").count(), 4);
        let html = to_html(&f).unwrap();
        assert_eq!(html.matches("<svg").count(), 4);
        assert!(html.contains("Inzetten en cancels per jaar"));
        assert!(html.contains("2023") && html.contains("14.803"));
    }

    #[test]
    fn csv_and_json_are_machine_readable() {
        let f = sample();
        let csv = to_csv(&f);
        assert!(csv.contains("indicator,2024,calls,14803"), "{csv}");
        assert!(csv.contains("cancel_reason,2023-2024,AMBULANCE_ASSESSED_NOT_NEEDED,9000"));
        let json: serde_json::Value = serde_json::to_value(&f).unwrap();
        assert_eq!(json["years"][1]["deployments"], 5998);
    }

    #[test]
    fn dutch_number_formatting() {
        assert_eq!(count(15_273), "15.273");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_480_000), "1.480.000");
        assert_eq!(pct(53.6), "53,6%");
    }
}
