//! The exact statistics of the municipality report, from the per-incident facts of migration
//! 0005 (`response_units`). Definitions (docs/rollups.md, "The municipality report"):
//!
//! - **Response time** of an A0/A1 incident: from CallReceived.occurred_at to the first
//!   UnitOnScene of a unit whose alert type counts (`report.counting_unit_types`), in whole
//!   seconds, rounded down: `(first_arrival_ms - call_ms) div 1000`.
//! - **Exclusions**, counted per reason: `no_counting_arrival` (no counting unit arrived),
//!   `arrival_before_call` (the first counting arrival precedes the call), `implausible_time`
//!   (outside `[min_response_seconds, max_response_seconds]`), `unknown_municipality` (the location
//!   is not one of today's municipalities).
//! - **Period** by the call time in Europe/Amsterdam: the year and its quarters.
//! - **Percentiles** exact, nearest rank: the p-th percentile is the smallest response time such
//!   that at least p% of the cell's times are at or below it (sorted ascending, the value at
//!   1-based rank ceil(p * n / 100)); ties need no rule, as the value is what counts. The
//!   **median** is the middle value for odd n and the mean of the two middle values for even n.
//! - **Mean** = sum / n; **share within 15 minutes** = times <= 900 s, over n.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, TimeZone};
use serde::Deserialize;

use super::model::{
    Area, Cell, Exclusion, MunicipalityReport, Period, Stats, SuppressionParams, SuppressionReason,
    UrgencyGroup,
};
use super::suppress::CellStats;
use crate::config::ReportConfig;
use crate::enrich::reference::Reference;
use crate::sink::{Sink, SinkError};

/// One A0/A1 incident of the year as ClickHouse has it.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Deserialize)]
pub struct IncidentRow {
    /// Id of the incident (melding).
    pub incident_id: String,
    /// When the dispatch centre accepted the 112 call (`CallReceived.occurred_at`), UTC ms since the Unix epoch.
    pub call_at_ms: i64,
    /// VUI urgency of the call: `A0` or `A1`.
    pub urgency: String,
    /// The incident's municipality in today's layout (`GMxxxx`, successors of merged municipalities followed).
    pub municipality_code_current: String,
    /// First UnitOnScene of a counting unit (UTC ms); 0 when none arrived.
    pub first_arrival_ms: i64,
}

/// What counts as a response time.
#[derive(Debug, Clone, PartialEq)]
pub struct Definition {
    /// Unit types whose first arrival on scene ends the response time (`report.counting_unit_types`; never MMT).
    pub counting_unit_types: Vec<String>,
    /// Response times below this many seconds are implausible and excluded (`report.min_response_seconds`, default 0).
    pub min_seconds: u32,
    /// Response times above this many seconds are implausible and excluded (`report.max_response_seconds`, default 7200).
    pub max_seconds: u32,
}

impl Definition {
    /// The definition `[report]` sets.
    pub fn from_config(c: &ReportConfig) -> Definition {
        Definition {
            counting_unit_types: c.counting_types(),
            min_seconds: c.min_response_seconds,
            max_seconds: c.max_response_seconds,
        }
    }
}

/// Exclusion reason: no counting unit arrived (cancelled, or only an MMT unit arrived).
pub const NO_COUNTING_ARRIVAL: &str = "no_counting_arrival";
/// Exclusion reason: the first counting arrival precedes the call (a clock error).
pub const ARRIVAL_BEFORE_CALL: &str = "arrival_before_call";
/// Exclusion reason: the response time is outside `[min_seconds, max_seconds]`.
pub const IMPLAUSIBLE_TIME: &str = "implausible_time";
/// Exclusion reason: the location is not one of today's municipalities.
pub const UNKNOWN_MUNICIPALITY: &str = "unknown_municipality";

/// The response time in seconds, or why the incident is excluded.
pub fn response_seconds(row: &IncidentRow, def: &Definition) -> Result<u64, &'static str> {
    if row.first_arrival_ms == 0 {
        return Err(NO_COUNTING_ARRIVAL);
    }
    let ms = row.first_arrival_ms - row.call_at_ms;
    if ms < 0 {
        return Err(ARRIVAL_BEFORE_CALL);
    }
    let s = (ms / 1000) as u64;
    if s < u64::from(def.min_seconds) || s > u64::from(def.max_seconds) {
        return Err(IMPLAUSIBLE_TIME);
    }
    Ok(s)
}

/// Year and quarter (1-4) of a UTC millisecond time in Europe/Amsterdam.
pub fn year_quarter(ms: i64) -> (i32, u8) {
    let local = chrono_tz::Europe::Amsterdam
        .timestamp_millis_opt(ms)
        .single()
        .expect("a UTC instant has one local time");
    (local.year(), ((local.month() - 1) / 3 + 1) as u8)
}

/// Exact statistics of a set of response times (sorted in place).
pub fn stats(times: &mut [u64]) -> Stats {
    times.sort_unstable();
    let n = times.len() as u64;
    if n == 0 {
        return Stats {
            n: 0,
            sum_seconds: 0,
            mean_seconds: 0.0,
            median_seconds: 0.0,
            p90_seconds: 0.0,
            p95_seconds: 0.0,
            within_15: 0,
            share_within_15: 0.0,
        };
    }
    let sum: u64 = times.iter().sum();
    let within = times.iter().filter(|t| **t <= 900).count() as u64;
    let rank = |p: u64| times[((p * n).div_ceil(100)).max(1) as usize - 1] as f64;
    let median = if n % 2 == 1 {
        times[(n / 2) as usize] as f64
    } else {
        (times[(n / 2 - 1) as usize] + times[(n / 2) as usize]) as f64 / 2.0
    };
    Stats {
        n,
        sum_seconds: sum,
        mean_seconds: sum as f64 / n as f64,
        median_seconds: median,
        p90_seconds: rank(90),
        p95_seconds: rank(95),
        within_15: within,
        share_within_15: within as f64 / n as f64,
    }
}

/// Today's municipalities (rows still valid) with their region, and the regions, sorted by code.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Today's municipalities, each with its safety region, sorted by code.
    pub municipalities: Vec<Area>,
    /// The safety regions (`VR01`-`VR25`), sorted by code.
    pub regions: Vec<Area>,
}

impl Layout {
    /// The layout of the reference tables: the municipality rows without an end date and every region.
    pub fn current(reference: &Reference) -> Layout {
        let mut municipalities: Vec<Area> = reference
            .municipalities
            .values()
            .flatten()
            .filter(|m| m.valid_to.is_none())
            .map(|m| Area::Municipality {
                code: m.code.clone(),
                name: m.name.clone(),
                region_code: m.region_code.clone(),
            })
            .collect();
        municipalities.sort();
        let mut regions: Vec<Area> = reference
            .regions
            .values()
            .map(|r| Area::Region {
                code: r.code.clone(),
                name: r.name.clone(),
            })
            .collect();
        regions.sort();
        Layout {
            municipalities,
            regions,
        }
    }
}

/// Every cell (national, each region, each municipality x the year and its quarters x A0, A1,
/// A0+A1, zero cells included) and the exclusions per reason and urgency, for `year`.
pub fn cells(
    year: i32,
    rows: &[IncidentRow],
    layout: &Layout,
    def: &Definition,
) -> (Vec<CellStats>, Vec<Exclusion>) {
    let region_of: HashMap<&str, &str> = layout
        .municipalities
        .iter()
        .filter_map(|a| match a {
            Area::Municipality {
                code, region_code, ..
            } => Some((code.as_str(), region_code.as_str())),
            _ => None,
        })
        .collect();
    // Times per (area code, period, urgency A0/A1).
    let mut times: HashMap<(String, Period, UrgencyGroup), Vec<u64>> = HashMap::new();
    let mut excluded: BTreeMap<(String, UrgencyGroup), u64> = BTreeMap::new();
    for row in rows {
        let urgency = match row.urgency.as_str() {
            "A0" => UrgencyGroup::A0,
            "A1" => UrgencyGroup::A1,
            _ => continue,
        };
        let (y, q) = year_quarter(row.call_at_ms);
        if y != year {
            continue;
        }
        let outcome = match region_of.get(row.municipality_code_current.as_str()) {
            None => Err(UNKNOWN_MUNICIPALITY),
            Some(region) => response_seconds(row, def).map(|s| (s, *region)),
        };
        match outcome {
            Err(reason) => *excluded.entry((reason.to_string(), urgency)).or_default() += 1,
            Ok((s, region)) => {
                for area in [row.municipality_code_current.as_str(), region, "NL"] {
                    for period in [Period::Year(year), Period::Quarter(year, q)] {
                        times
                            .entry((area.to_string(), period, urgency))
                            .or_default()
                            .push(s);
                    }
                }
            }
        }
    }
    let mut areas = vec![Area::National];
    areas.extend(layout.regions.iter().cloned());
    areas.extend(layout.municipalities.iter().cloned());
    let mut periods = vec![Period::Year(year)];
    periods.extend((1..=4).map(|q| Period::Quarter(year, q)));
    let mut out = Vec::with_capacity(areas.len() * periods.len() * 3);
    for period in &periods {
        for urgency in UrgencyGroup::ALL {
            for area in &areas {
                let key = |u| (area.code().to_string(), *period, u);
                let mut v: Vec<u64> = match urgency {
                    UrgencyGroup::A0A1 => [UrgencyGroup::A0, UrgencyGroup::A1]
                        .iter()
                        .flat_map(|u| times.get(&key(*u)).cloned().unwrap_or_default())
                        .collect(),
                    u => times.get(&key(u)).cloned().unwrap_or_default(),
                };
                out.push(CellStats {
                    area: area.clone(),
                    period: *period,
                    urgency,
                    stats: stats(&mut v),
                });
            }
        }
    }
    let mut exclusions = Vec::new();
    let reasons: std::collections::BTreeSet<String> =
        excluded.keys().map(|(r, _)| r.clone()).collect();
    for reason in reasons {
        let a0 = excluded
            .get(&(reason.clone(), UrgencyGroup::A0))
            .copied()
            .unwrap_or(0);
        let a1 = excluded
            .get(&(reason.clone(), UrgencyGroup::A1))
            .copied()
            .unwrap_or(0);
        for (urgency, incidents) in [
            (UrgencyGroup::A0, a0),
            (UrgencyGroup::A1, a1),
            (UrgencyGroup::A0A1, a0 + a1),
        ] {
            exclusions.push(Exclusion {
                reason: reason.clone(),
                urgency,
                incidents,
            });
        }
    }
    (out, exclusions)
}

const INCIDENTS_SQL: &str = "\
SELECT incident_id, call_at_ms, urgency, municipality_code_current, first_arrival_ms
FROM
(
    SELECT
        incident_id,
        max(c) AS call_at_ms,
        max(u) AS urgency,
        max(m) AS municipality_code_current,
        minIf(s, s != 0 AND has(?, t)) AS first_arrival_ms
    FROM
    (
        SELECT
            incident_id,
            unit_id,
            minIfMerge(call_at_ms) AS c,
            maxIfMerge(urgency) AS u,
            maxIfMerge(municipality_code_current) AS m,
            maxIfMerge(unit_type) AS t,
            minIfMerge(on_scene_at_ms) AS s
        FROM ?.response_units
        GROUP BY incident_id, unit_id
    )
    GROUP BY incident_id
)
WHERE urgency IN ('A0', 'A1') AND call_at_ms != 0
  AND toYear(toTimeZone(toDateTime(intDiv(call_at_ms, 1000)), 'Europe/Amsterdam')) = ?
ORDER BY incident_id";

/// The A0/A1 incidents with a call in `year` (Europe/Amsterdam).
pub async fn load_incidents(
    sink: &Sink,
    year: i32,
    def: &Definition,
) -> Result<Vec<IncidentRow>, SinkError> {
    sink.client()
        .query(INCIDENTS_SQL)
        .bind(&def.counting_unit_types)
        .bind(clickhouse::sql::Identifier(sink.database()))
        .bind(year)
        .fetch_all::<IncidentRow>()
        .await
        .map_err(|source| SinkError::ClickHouse {
            url: String::new(),
            source,
        })
}

/// The whole report of `year`: the exact cells from ClickHouse, suppressed by
/// [`suppress::suppress`](super::suppress::suppress) with the year's previous publication (if
/// any) as `previous`, and the exclusions.
pub async fn build(
    sink: &Sink,
    reference: &Reference,
    config: &ReportConfig,
    year: i32,
) -> Result<MunicipalityReport, SinkError> {
    let def = Definition::from_config(config);
    let rows = load_incidents(sink, year, &def).await?;
    let (stats, exclusions) = cells(year, &rows, &Layout::current(reference), &def);
    let params = SuppressionParams {
        min_deployments: config.min_deployments,
        min_deployments_percentiles: config.min_deployments_percentiles,
    };
    let previous = super::publish::previous(sink, &config.public_database, year).await?;
    let mut cells = if config.suppression == "primary-only" {
        tracing::warn!("report.suppression = primary-only: suppressed cells can be derived from the published ones; never publish this to the public");
        super::suppress::primary_only(&stats, &params, NORM_SECONDS)
    } else {
        super::suppress::suppress(&stats, &params, NORM_SECONDS, previous.as_deref())
    };
    if let Some(previous) = &previous {
        keep_previous_suppression(&mut cells, previous, &stats);
    }
    Ok(MunicipalityReport {
        year,
        region: None,
        params,
        norm_seconds: NORM_SECONDS,
        cells,
        exclusions,
    })
}

/// A cell suppressed in the previous publication of the year stays suppressed, with its reason,
/// whatever the suppression decided now (a re-run after late events must not unlock it by
/// differencing). Suppressing more never reveals anything, so this is safe on top of any
/// suppression method.
pub fn keep_previous_suppression(cells: &mut [Cell], previous: &[Cell], stats: &[CellStats]) {
    let before: HashMap<(&str, Period, UrgencyGroup), SuppressionReason> = previous
        .iter()
        .filter_map(|c| Some(((c.area.code(), c.period, c.urgency), c.suppressed?)))
        .collect();
    for (cell, s) in cells.iter_mut().zip(stats) {
        if cell.suppressed.is_some() {
            continue;
        }
        if let Some(reason) = before.get(&(cell.area.code(), cell.period, cell.urgency)) {
            *cell = super::suppress::suppressed_cell(s, *reason);
        }
    }
}

/// The legal norm: 95% of A1 deployments on scene within 15 minutes, per safety region.
pub const NORM_SECONDS: u32 = 900;

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> Definition {
        Definition {
            counting_unit_types: vec!["ALS_AMBULANCE".into()],
            min_seconds: 0,
            max_seconds: 7200,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank_and_the_median_averages_the_middle_pair() {
        let mut v: Vec<u64> = (1..=10).map(|x| x * 100).collect();
        let s = stats(&mut v);
        assert_eq!(s.n, 10);
        assert_eq!(s.median_seconds, 550.0);
        assert_eq!(s.p90_seconds, 900.0);
        assert_eq!(s.p95_seconds, 1000.0);
        assert_eq!(s.within_15, 9);
        assert_eq!(s.mean_seconds, 550.0);
        let mut odd = vec![5, 1, 3];
        let s = stats(&mut odd);
        assert_eq!((s.median_seconds, s.p90_seconds), (3.0, 5.0));
        assert_eq!(stats(&mut []).n, 0);
    }

    #[test]
    fn exclusions_name_their_reason() {
        let row = |call: i64, arrival: i64| IncidentRow {
            incident_id: "i".into(),
            call_at_ms: call,
            urgency: "A1".into(),
            municipality_code_current: "GM0363".into(),
            first_arrival_ms: arrival,
        };
        assert_eq!(
            response_seconds(&row(1_000, 0), &def()),
            Err(NO_COUNTING_ARRIVAL)
        );
        assert_eq!(
            response_seconds(&row(10_000, 9_999), &def()),
            Err(ARRIVAL_BEFORE_CALL)
        );
        assert_eq!(
            response_seconds(&row(0, 7_201_000), &def()),
            Err(IMPLAUSIBLE_TIME)
        );
        assert_eq!(response_seconds(&row(1_000, 601_999), &def()), Ok(600));
    }

    #[test]
    fn quarters_follow_amsterdam_time() {
        // 2024-12-31 23:30 UTC is 2025-01-01 00:30 in Amsterdam.
        assert_eq!(year_quarter(1_735_687_800_000), (2025, 1));
        // 2025-06-30 22:30 UTC is 2025-07-01 00:30 (summer time).
        assert_eq!(year_quarter(1_751_322_600_000), (2025, 3));
    }
}
