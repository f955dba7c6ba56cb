//! Small-count suppression of the municipality report: turns exact cell statistics into the
//! cells that may be published.
//!
//! Transitional: this version applies the primary rule (fewer than `min_deployments`: nothing
//! published) and withholds percentiles below `min_deployments_percentiles`. Complementary
//! suppression (no suppressed value derivable from totals, other urgencies, other quarters or
//! additive statistics) replaces it; until then this module must not be used to publish.

use super::model::{Area, Cell, Period, Stats, SuppressionParams, SuppressionReason, UrgencyGroup};

/// The exact statistics of one cell, as computed from the incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct CellStats {
    pub area: Area,
    pub period: Period,
    pub urgency: UrgencyGroup,
    /// `n == 0` for a cell without deployments (its other fields are then 0).
    pub stats: Stats,
}

/// Decide what of every cell is published. `previous`, when given, is the publication of the
/// same year made before (a re-run after late events): a cell suppressed there stays suppressed.
/// The output has one [`Cell`] per input cell, in the same order.
pub fn suppress(
    cells: &[CellStats],
    params: &SuppressionParams,
    norm_seconds: u32,
    previous: Option<&[Cell]>,
) -> Vec<Cell> {
    let _ = previous;
    cells
        .iter()
        .map(|c| {
            if c.stats.n < params.min_deployments {
                suppressed_cell(c, SuppressionReason::TooFewDeployments)
            } else {
                published_cell(c, params, norm_seconds)
            }
        })
        .collect()
}

/// A cell with nothing published but its coordinates and the reason.
pub fn suppressed_cell(c: &CellStats, reason: SuppressionReason) -> Cell {
    Cell {
        area: c.area.clone(),
        period: c.period,
        urgency: c.urgency,
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

/// A published cell: every statistic, percentiles only from `min_deployments_percentiles`, and
/// for a region's A1 cell whether the legal norm is met (at least 95% within `norm_seconds`).
pub fn published_cell(c: &CellStats, params: &SuppressionParams, norm_seconds: u32) -> Cell {
    let s = &c.stats;
    let withheld = s.n < params.min_deployments_percentiles;
    let pct = |v: f64| if withheld { None } else { Some(v) };
    let meets_norm = match (&c.area, c.urgency) {
        (Area::Region { .. }, UrgencyGroup::A1) if norm_seconds == 900 => {
            Some(s.within_15 * 100 >= s.n * 95)
        }
        _ => None,
    };
    Cell {
        area: c.area.clone(),
        period: c.period,
        urgency: c.urgency,
        n: Some(s.n),
        mean_seconds: Some(s.mean_seconds),
        median_seconds: pct(s.median_seconds),
        p90_seconds: pct(s.p90_seconds),
        p95_seconds: pct(s.p95_seconds),
        share_within_15: Some(s.share_within_15),
        suppressed: None,
        percentiles_withheld: withheld,
        meets_norm,
    }
}
