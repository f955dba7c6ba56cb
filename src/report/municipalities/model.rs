//! The municipality report as plain data, shared by the computation, the suppression, the
//! publication and every rendering. Times are seconds from the 112 call accepted by the dispatch
//! centre to the first arrival on scene of a unit that counts for the norm (docs/rollups.md).

use serde::Serialize;

/// The urgency breakdown of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum UrgencyGroup {
    /// Urgency A0 only (highest urgency, split off from A1).
    A0,
    /// Urgency A1 only.
    A1,
    /// A0 and A1 together (the sum of the two, cell by cell).
    #[serde(rename = "A0+A1")]
    A0A1,
}

impl UrgencyGroup {
    /// The three groups in report order: A0, A1, A0+A1.
    pub const ALL: [UrgencyGroup; 3] = [UrgencyGroup::A0, UrgencyGroup::A1, UrgencyGroup::A0A1];

    /// The published label: `A0`, `A1` or `A0+A1`.
    pub fn label(self) -> &'static str {
        match self {
            UrgencyGroup::A0 => "A0",
            UrgencyGroup::A1 => "A1",
            UrgencyGroup::A0A1 => "A0+A1",
        }
    }
}

/// The period of a cell: a calendar year, or one of its quarters (Europe/Amsterdam, by the time
/// the call was accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Period {
    /// A calendar year.
    Year(i32),
    /// Year and quarter 1-4.
    Quarter(i32, u8),
}

impl Period {
    /// The calendar year the period lies in.
    pub fn year(self) -> i32 {
        match self {
            Period::Year(y) | Period::Quarter(y, _) => y,
        }
    }

    /// "2025" or "2025-Q3".
    pub fn label(self) -> String {
        match self {
            Period::Year(y) => y.to_string(),
            Period::Quarter(y, q) => format!("{y}-Q{q}"),
        }
    }
}

/// Where a cell's incidents happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Area {
    /// A municipality in today's layout (`municipality_code_current`), with its safety region.
    Municipality {
        /// CBS municipality code `GMxxxx`, today's layout.
        code: String,
        /// Municipality name.
        name: String,
        /// Safety region (`VRxx`) the municipality belongs to.
        region_code: String,
    },
    /// A safety region (VR01-VR25), the level at which the legal 15-minute norm is accounted.
    Region {
        /// Region code, `VR01`-`VR25`.
        code: String,
        /// Region name.
        name: String,
    },
    /// The Netherlands.
    National,
}

impl Area {
    /// GMxxxx, VRxx or NL.
    pub fn code(&self) -> &str {
        match self {
            Area::Municipality { code, .. } | Area::Region { code, .. } => code,
            Area::National => "NL",
        }
    }

    /// The area's name; `Nederland` for the whole country.
    pub fn name(&self) -> &str {
        match self {
            Area::Municipality { name, .. } | Area::Region { name, .. } => name,
            Area::National => "Nederland",
        }
    }
}

/// Why a cell, or part of it, is not published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SuppressionReason {
    /// Fewer deployments than the minimum (`k`, default 10): nothing of the cell is published.
    TooFewDeployments,
    /// Published figures would let a suppressed cell be derived (from totals, A0+A1 minus the
    /// other urgency, the year minus its other quarters, or means and shares times counts), so this
    /// cell is suppressed too.
    Complementary,
    /// Suppressed by complementary suppression, whatever the cell's count: fewer than the
    /// minimum, or to prevent derivation. One reason for both, so that the reason itself tells
    /// an attacker nothing about the count (docs/suppression.md, "The published reason").
    Suppressed,
}

impl SuppressionReason {
    /// A short Dutch text for people, as printed in the reports.
    pub fn text_nl(self) -> &'static str {
        match self {
            SuppressionReason::TooFewDeployments => "te weinig inzetten",
            SuppressionReason::Complementary => "afgeschermd om afleiding te voorkomen",
            SuppressionReason::Suppressed => "te weinig inzetten of om afleiding te voorkomen",
        }
    }
}

/// The statistics of one cell, before suppression: exact values over the cell's deployments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    /// Number of deployments (incidents with a counting arrival) in the cell.
    pub n: u64,
    /// Sum of the response times in seconds (mean = sum / n).
    pub sum_seconds: u64,
    /// Mean response time in seconds.
    pub mean_seconds: f64,
    /// Exact median in seconds (mean of the middle pair for an even count).
    pub median_seconds: f64,
    /// Exact 90th percentile in seconds (nearest rank).
    pub p90_seconds: f64,
    /// Exact 95th percentile in seconds (nearest rank).
    pub p95_seconds: f64,
    /// Deployments on scene within 15 minutes (900 s, inclusive).
    pub within_15: u64,
    /// within_15 / n, 0..=1.
    pub share_within_15: f64,
}

/// One published cell (area x period x urgency). When `suppressed` is set, `n` and every statistic
/// are `None`; when only `percentiles_withheld` is set, the median and percentiles are `None`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Where the cell's incidents happened.
    pub area: Area,
    /// Year or quarter of the cell.
    pub period: Period,
    /// A0, A1 or A0+A1.
    pub urgency: UrgencyGroup,
    /// Number of deployments; `None` when suppressed.
    pub n: Option<u64>,
    /// Mean response time in seconds; `None` when suppressed.
    pub mean_seconds: Option<f64>,
    /// Exact median in seconds; `None` when suppressed or percentiles are withheld.
    pub median_seconds: Option<f64>,
    /// Exact 90th percentile in seconds; `None` when suppressed or percentiles are withheld.
    pub p90_seconds: Option<f64>,
    /// Exact 95th percentile in seconds; `None` when suppressed or percentiles are withheld.
    pub p95_seconds: Option<f64>,
    /// Share of deployments on scene within 15 minutes (900 s inclusive), 0-1; `None` when suppressed.
    pub share_within_15: Option<f64>,
    /// Why the cell is suppressed; `None` when it is published.
    pub suppressed: Option<SuppressionReason>,
    /// The cell is published but has fewer deployments than the percentile minimum (default 20).
    pub percentiles_withheld: bool,
    /// Regions, A1 only: whether the legal norm (95% within 15 minutes) is met; `None` elsewhere
    /// or when suppressed.
    pub meets_norm: Option<bool>,
}

impl Cell {
    /// A cell with nothing published but its coordinates and the reason.
    pub fn suppressed(
        area: Area,
        period: Period,
        urgency: UrgencyGroup,
        reason: SuppressionReason,
    ) -> Cell {
        Cell {
            area,
            period,
            urgency,
            n: None,
            mean_seconds: None,
            median_seconds: None,
            p90_seconds: None,
            p95_seconds: None,
            share_within_15: None,
            suppressed: Some(reason),
            percentiles_withheld: false,
            meets_norm: None,
        }
    }
}

/// Incidents left out of the statistics, by reason (counted, never silently dropped).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exclusion {
    /// For example `no_counting_arrival`, `arrival_before_call`, `implausible_time`.
    pub reason: String,
    /// The urgency group the incidents belong to.
    pub urgency: UrgencyGroup,
    /// Number of incidents left out for this reason, nationally.
    pub incidents: u64,
}

/// The suppression settings the report was made with (printed in every output).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SuppressionParams {
    /// Minimum deployments for a cell to be published at all (default 10).
    pub min_deployments: u64,
    /// Minimum deployments for the median and percentiles (default 20).
    pub min_deployments_percentiles: u64,
}

impl Default for SuppressionParams {
    /// k = 10, percentiles from 20 deployments.
    fn default() -> Self {
        SuppressionParams {
            min_deployments: 10,
            min_deployments_percentiles: 20,
        }
    }
}

/// The whole report for one year (all its quarters), optionally restricted to one region.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MunicipalityReport {
    /// The reporting year.
    pub year: i32,
    /// `Some(VRxx)` when the report was restricted to one safety region.
    pub region: Option<String>,
    /// The minimum deployments the cells were suppressed with.
    pub params: SuppressionParams,
    /// Norm: seconds within which 95% of A1 deployments must be on scene per region (900).
    pub norm_seconds: u32,
    /// Every cell: every area x period x urgency, zero cells included.
    pub cells: Vec<Cell>,
    /// Incidents left out of the statistics, by reason and urgency.
    pub exclusions: Vec<Exclusion>,
}

impl MunicipalityReport {
    /// The cells of one period and urgency, in their stored order.
    pub fn cells_for(
        &self,
        period: Period,
        urgency: UrgencyGroup,
    ) -> impl Iterator<Item = &Cell> + '_ {
        self.cells
            .iter()
            .filter(move |c| c.period == period && c.urgency == urgency)
    }
}
