//! Small-count suppression of the municipality report: turns exact cell statistics into the
//! cells that may be published (method and criterion: docs/suppression.md).
//!
//! 1. Primary: a cell with fewer than `min_deployments` (k) deployments publishes nothing but
//!    its reason. A cell suppressed in the previous publication of the same year stays
//!    suppressed (sticky).
//! 2. Percentiles: published only from `min_deployments_percentiles` deployments.
//! 3. Complementary: the singleton rule on every relation of the table (a relation with one
//!    suppressed cell gives it away), then the attacker of [`super::attack`] on the would-be
//!    publication; for every suppressed cell it can still narrow down, one more cell of its
//!    relations is suppressed; repeated until the attacker fails everywhere.

use std::collections::HashSet;

use super::attack::{
    relations, AttackError, AttackParams, CellKey, CellVar, Mode, Relation, System,
};
use super::model::{Area, Cell, Period, Stats, SuppressionParams, SuppressionReason, UrgencyGroup};

/// `[report.suppression]` in the configuration: the suppression rules and what the attacker is
/// assumed to know (docs/suppression.md).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionConfig {
    /// k: a cell with fewer deployments publishes nothing but the reason (default 10).
    pub min_deployments: u64,
    /// Median and percentiles only from this many deployments (default 20).
    pub min_deployments_percentiles: u64,
    /// Plausible response time bounds per deployment that the attacker knows (seconds; default
    /// 0 and 3600). Set them to the published plausibility bounds of the report.
    pub attacker_min_seconds: f64,
    /// Upper bound of the response time the attacker assumes per deployment, in seconds (default 3600).
    pub attacker_max_seconds: f64,
    /// A suppressed cell's sum of response times must stay open over at least
    /// (k - 1) x this many seconds (default 300).
    pub sum_width_per_deployment_seconds: f64,
}

impl Default for SuppressionConfig {
    fn default() -> Self {
        SuppressionConfig {
            min_deployments: 10,
            min_deployments_percentiles: 20,
            attacker_min_seconds: 0.0,
            attacker_max_seconds: 3600.0,
            sum_width_per_deployment_seconds: 300.0,
        }
    }
}

impl SuppressionConfig {
    /// The minimum deployments, as printed with the report.
    pub fn params(&self) -> SuppressionParams {
        SuppressionParams {
            min_deployments: self.min_deployments,
            min_deployments_percentiles: self.min_deployments_percentiles,
        }
    }

    /// The attacker's assumptions, from these settings (no deadline).
    pub fn attack(&self) -> AttackParams {
        AttackParams {
            min_deployments: self.min_deployments,
            min_seconds: self.attacker_min_seconds,
            max_seconds: self.attacker_max_seconds,
            sum_width_per_deployment: self.sum_width_per_deployment_seconds,
            deadline: None,
        }
    }

    /// Checks: `min_deployments` at least 1, `min_deployments_percentiles` at least that, `0 <= attacker_min_seconds < attacker_max_seconds` (finite), a finite `sum_width_per_deployment_seconds >= 0`.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        let invalid =
            |key: &str, value: String, reason: &str| crate::config::ConfigError::Invalid {
                key: format!("report.suppression.{key}"),
                value,
                reason: reason.to_string(),
            };
        if self.min_deployments < 1 {
            return Err(invalid("min_deployments", "0".into(), "must be at least 1"));
        }
        if self.min_deployments_percentiles < self.min_deployments {
            return Err(invalid(
                "min_deployments_percentiles",
                self.min_deployments_percentiles.to_string(),
                "must be at least min_deployments",
            ));
        }
        let (lo, hi) = (self.attacker_min_seconds, self.attacker_max_seconds);
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo < hi) {
            return Err(invalid(
                "attacker_max_seconds",
                hi.to_string(),
                "must be finite and above attacker_min_seconds (>= 0)",
            ));
        }
        let w = self.sum_width_per_deployment_seconds;
        if !(w.is_finite() && w >= 0.0) {
            return Err(invalid(
                "sum_width_per_deployment_seconds",
                w.to_string(),
                "must be a finite number >= 0",
            ));
        }
        Ok(())
    }
}

/// The exact statistics of one cell, as computed from the incidents.
#[derive(Debug, Clone, PartialEq)]
pub struct CellStats {
    /// Where the cell's incidents happened.
    pub area: Area,
    /// Year or quarter of the cell.
    pub period: Period,
    /// A0, A1 or A0+A1.
    pub urgency: UrgencyGroup,
    /// `n == 0` for a cell without deployments (its other fields are then 0).
    pub stats: Stats,
}

/// Decide what of every cell is published. `previous`, when given, is the publication of the
/// same year made before (a re-run after late events): a cell suppressed there stays suppressed.
/// The output has one [`Cell`] per input cell, in the same order.
///
/// Primary suppression (fewer than `min_deployments`), percentile withholding (fewer than
/// `min_deployments_percentiles`) and complementary suppression until the attacker of
/// [`super::attack`] cannot narrow any suppressed cell down (docs/suppression.md), with the
/// attacker's default assumptions ([`AttackParams::for_params`]).
pub fn suppress(
    cells: &[CellStats],
    params: &SuppressionParams,
    norm_seconds: u32,
    previous: Option<&[Cell]>,
) -> Vec<Cell> {
    let attack = AttackParams {
        deadline: Some(std::time::Instant::now() + SUPPRESSION_TIME_BUDGET),
        ..AttackParams::for_params(params)
    };
    suppress_with(cells, params, &attack, norm_seconds, previous)
}

/// How long [`suppress`] may spend on complementary suppression before it falls back to the
/// safe plan (nothing below the regions published). A national year takes seconds; a table of
/// mostly tiny cells (a small sample, a scaled-down demo) can make the attack's components so
/// large that the linear programs take many minutes.
pub const SUPPRESSION_TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

/// [`suppress`] with explicit attacker assumptions (plausible seconds, required sum width).
pub fn suppress_with(
    cells: &[CellStats],
    params: &SuppressionParams,
    attack: &AttackParams,
    norm_seconds: u32,
    previous: Option<&[Cell]>,
) -> Vec<Cell> {
    let plan = match plan(cells, params, attack, previous) {
        Ok(plan) => plan,
        Err(AttackError::OutOfTime) => {
            tracing::warn!(
                budget_seconds = SUPPRESSION_TIME_BUDGET.as_secs(),
                "complementary suppression did not finish within its time budget; suppressing every municipality cell"
            );
            fallback_plan(cells, params, previous)
        }
        Err(e) => {
            // Cannot happen with consistent statistics (the true values satisfy every
            // relation); if it does, publish nothing below the regions rather than risk it.
            tracing::error!(error = %e, "complementary suppression failed; suppressing every municipality cell");
            fallback_plan(cells, params, previous)
        }
    };
    cells
        .iter()
        .zip(plan.reasons)
        .map(|(c, reason)| match reason {
            Some(reason) => suppressed_cell(c, reason),
            None => published_cell(c, params, norm_seconds),
        })
        .collect()
}

/// The suppression decided for every cell, with what it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Per input cell, in order: why it is suppressed, or `None` when published.
    pub reasons: Vec<Option<SuppressionReason>>,
    /// Rounds of attack and repair.
    pub rounds: usize,
    /// Linear programs solved over all rounds.
    pub programs: usize,
}

/// The one reason a suppressed cell publishes, whatever its count (also for a cell kept
/// suppressed from `previous`): with separate reasons for "fewer than k" and "to prevent
/// derivation" the reasons alone bound the counts (a complementary A0+A1 cell has at least k, a
/// primary A1 cell at most k-1, so A0 has at least 1), and no further suppression can undo
/// what the reasons say (docs/suppression.md, "The published reason").
fn reason_for(_n: u64, _k: u64) -> SuppressionReason {
    SuppressionReason::Suppressed
}

/// Decide which cells are suppressed (see [`suppress`]).
pub fn plan(
    cells: &[CellStats],
    params: &SuppressionParams,
    attack: &AttackParams,
    previous: Option<&[Cell]>,
) -> Result<Plan, AttackError> {
    let k = params.min_deployments;
    let attack = AttackParams {
        min_deployments: k,
        ..attack.clone()
    };
    let keys: Vec<CellKey<'_>> = cells
        .iter()
        .map(|c| CellKey::new(&c.area, c.period, c.urgency))
        .collect();
    let rels = relations(&keys);
    let mut rels_of: Vec<Vec<usize>> = vec![Vec::new(); cells.len()];
    for (r, rel) in rels.iter().enumerate() {
        rels_of[rel.total].push(r);
        for &p in &rel.parts {
            rels_of[p].push(r);
        }
    }
    let truth: Vec<[f64; 3]> = cells
        .iter()
        .map(|c| {
            let s = &c.stats;
            [s.n as f64, s.within_15 as f64, s.sum_seconds as f64]
        })
        .collect();
    let mut supp: Vec<bool> = cells.iter().map(|c| c.stats.n < k).collect();
    let before = previously_suppressed(previous);
    for (i, c) in cells.iter().enumerate() {
        if before.contains(&(c.area.code(), c.period, c.urgency)) {
            supp[i] = true;
        }
    }
    let table = Table {
        cells,
        rels: &rels,
        rels_of: &rels_of,
        k,
    };
    let mut passed: HashSet<Vec<usize>> = HashSet::new();
    let mut rounds = 0;
    let mut programs = 0;
    loop {
        rounds += 1;
        table.singletons(&mut supp);
        let system = table.system(&supp, &truth);
        let targets: Vec<usize> = (0..cells.len()).filter(|&i| supp[i]).collect();
        let outcome = system.solve(&targets, &attack, Mode::Check, Some(&truth), &passed)?;
        programs += outcome.programs;
        passed.extend(outcome.protected_components);
        let failing: Vec<usize> = outcome
            .intervals
            .iter()
            .filter(|(_, iv)| (0..3).any(|q| !attack.protected(q, iv[q].lo, iv[q].hi)))
            .map(|(i, _)| *i)
            .collect();
        tracing::debug!(
            round = rounds,
            suppressed = supp.iter().filter(|&&s| s).count(),
            exposed = failing.len(),
            programs = outcome.programs,
            "complementary suppression round"
        );
        if failing.is_empty() {
            break;
        }
        let mut added = false;
        for &f in &failing {
            if let Some(j) = table.repair_candidate(f, &supp) {
                if !supp[j] {
                    supp[j] = true;
                    added = true;
                }
            }
        }
        if !added {
            // Every cell related to the exposed ones is suppressed already, and still the
            // attacker narrows them: give up, so that the caller publishes nothing below the
            // regions (not expected: with the one reason only published figures bound a cell).
            let c = &cells[failing[0]];
            return Err(AttackError::Unprotectable {
                cells: super::attack::cell_label(&c.area, c.period, c.urgency),
            });
        }
    }
    let reasons = supp
        .iter()
        .zip(cells)
        .map(|(&s, c)| s.then(|| reason_for(c.stats.n, k)))
        .collect();
    Ok(Plan {
        reasons,
        rounds,
        programs,
    })
}

/// The cells suppressed in `previous`, by area code, period and urgency (they stay suppressed).
fn previously_suppressed(previous: Option<&[Cell]>) -> HashSet<(&str, Period, UrgencyGroup)> {
    previous
        .unwrap_or_default()
        .iter()
        .filter(|c| c.suppressed.is_some())
        .map(|c| (c.area.code(), c.period, c.urgency))
        .collect()
}

/// Suppress everything but the regions and the country (and those too if one is below k, or
/// was suppressed in `previous`).
fn fallback_plan(
    cells: &[CellStats],
    params: &SuppressionParams,
    previous: Option<&[Cell]>,
) -> Plan {
    let k = params.min_deployments;
    let before = previously_suppressed(previous);
    let any_total_small = cells
        .iter()
        .filter(|c| !matches!(c.area, Area::Municipality { .. }))
        .any(|c| c.stats.n < k || before.contains(&(c.area.code(), c.period, c.urgency)));
    let reasons = cells
        .iter()
        .map(|c| {
            (any_total_small || matches!(c.area, Area::Municipality { .. }))
                .then(|| reason_for(c.stats.n, k))
        })
        .collect();
    Plan {
        reasons,
        rounds: 0,
        programs: 0,
    }
}

struct Table<'a> {
    cells: &'a [CellStats],
    rels: &'a [Relation],
    rels_of: &'a [Vec<usize>],
    k: u64,
}

impl Table<'_> {
    /// The attacker's system for the would-be publication `supp`: published cells are known
    /// (their true values), suppressed ones unknown with nothing but `n >= 0` (what the one
    /// published reason tells, see [`reason_for`]).
    fn system(&self, supp: &[bool], truth: &[[f64; 3]]) -> System {
        let mut system = System::default();
        for (i, &s) in supp.iter().enumerate() {
            system.cells.push(if s {
                CellVar::Unknown {
                    n_lo: 0.0,
                    n_hi: f64::INFINITY,
                }
            } else {
                CellVar::Known(truth[i])
            });
        }
        for rel in self.rels {
            let residual: [f64; 3] = std::array::from_fn(|q| {
                truth[rel.total][q] - rel.parts.iter().map(|&p| truth[p][q]).sum::<f64>()
            });
            system.add_relation(rel.total, rel.parts.iter().copied(), residual);
        }
        system
    }

    fn members(&self, r: usize) -> impl Iterator<Item = usize> + '_ {
        let rel = &self.rels[r];
        std::iter::once(rel.total).chain(rel.parts.iter().copied())
    }

    fn suppressed_in(&self, r: usize, supp: &[bool]) -> usize {
        self.members(r).filter(|&m| supp[m]).count()
    }

    /// What suppressing published cell `j` costs: regions and the country only as a last
    /// resort; cells with room to hide a small cell (at least 2k) preferred, the smallest of
    /// those first; and each relation of `j` that has no suppressed cell yet (it would need a
    /// partner of its own) counts extra.
    fn cost(&self, j: usize, supp: &[bool]) -> f64 {
        let n = self.cells[j].stats.n as f64;
        let k = self.k as f64;
        let level = match self.cells[j].area {
            Area::Municipality { .. } => 0.0,
            Area::Region { .. } => 1e9,
            Area::National => 1e12,
        };
        let size = if n >= 2.0 * k { n } else { 1e6 - n };
        let opened = self.rels_of[j]
            .iter()
            .filter(|&&r| self.suppressed_in(r, supp) == 0)
            .count() as f64;
        level + size + opened * 4.0 * k
    }

    fn best_in(&self, rels: impl Iterator<Item = usize>, supp: &[bool]) -> Option<usize> {
        let mut best: Option<(f64, usize)> = None;
        for r in rels {
            for j in self.members(r) {
                if supp[j] {
                    continue;
                }
                let c = self.cost(j, supp);
                if best.is_none_or(|(bc, bj)| c < bc || (c == bc && j < bj)) {
                    best = Some((c, j));
                }
            }
        }
        best.map(|(_, j)| j)
    }

    /// Singleton rule to a fixed point: a relation with exactly one suppressed cell gives it
    /// away (total minus the others), so another cell of that relation is suppressed. And a
    /// relation whose suppressed cells are all small (below 2k) leaves them little room (two
    /// primary cells adding up to 8 cannot be 9), so one with at least 2k joins them.
    fn singletons(&self, supp: &mut [bool]) {
        let big = 2 * self.k;
        loop {
            let mut changed = false;
            for r in 0..self.rels.len() {
                let count = self.suppressed_in(r, supp);
                let has_big = self
                    .members(r)
                    .any(|m| supp[m] && self.cells[m].stats.n >= big);
                if count == 1 || (count > 1 && !has_big) {
                    if let Some(j) = self.best_in(std::iter::once(r), supp) {
                        supp[j] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// A cell to suppress because suppressed cell `f` is still exposed: the best published cell
    /// in one of its relations, or failing that in the relations of the suppressed cells around
    /// it (breadth first).
    fn repair_candidate(&self, f: usize, supp: &[bool]) -> Option<usize> {
        let mut seen_cells: HashSet<usize> = HashSet::from([f]);
        let mut frontier = vec![f];
        while !frontier.is_empty() {
            let rels: Vec<usize> = frontier
                .iter()
                .flat_map(|&c| self.rels_of[c].iter().copied())
                .collect();
            if let Some(j) = self.best_in(rels.iter().copied(), supp) {
                return Some(j);
            }
            let mut next = Vec::new();
            for r in rels {
                for m in self.members(r) {
                    if supp[m] && seen_cells.insert(m) {
                        next.push(m);
                    }
                }
            }
            frontier = next;
        }
        None
    }
}

/// Primary suppression only (`report.suppression = "primary-only"`): a cell below the minimum
/// publishes nothing, every other cell is published. Suppressed values can then be derived from
/// totals and the other cells (the attack test shows it), so this is for checking figures on small
/// samples, never for a public publication.
pub fn primary_only(
    cells: &[CellStats],
    params: &SuppressionParams,
    norm_seconds: u32,
) -> Vec<Cell> {
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
    Cell::suppressed(c.area.clone(), c.period, c.urgency, reason)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::municipalities::attack::{attack, Mode};

    /// A small table: three municipalities of one region, the region, the country; the year
    /// and its quarters; A0, A1, A0+A1. `n(m, q, u)` gives the deployments (u 0 = A0, 1 = A1),
    /// each taking 500 s + 10 s x (m + q) (within 15 minutes).
    fn table(n: impl Fn(usize, usize, usize) -> u64) -> Vec<CellStats> {
        let munis: Vec<Area> = (0..3)
            .map(|m| Area::Municipality {
                code: format!("GM000{m}"),
                name: format!("M{m}"),
                region_code: "VR01".into(),
            })
            .collect();
        let mut areas: Vec<(Area, Vec<usize>)> = munis
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, a)| (a, vec![i]))
            .collect();
        let region = Area::Region {
            code: "VR01".into(),
            name: "R".into(),
        };
        areas.push((region, vec![0, 1, 2]));
        areas.push((Area::National, vec![0, 1, 2]));
        let mut out = Vec::new();
        for (area, members) in &areas {
            for p in 0..5usize {
                let qs: Vec<usize> = if p == 0 { vec![1, 2, 3, 4] } else { vec![p] };
                let period = if p == 0 {
                    Period::Year(2025)
                } else {
                    Period::Quarter(2025, p as u8)
                };
                for urgency in UrgencyGroup::ALL {
                    let us: &[usize] = match urgency {
                        UrgencyGroup::A0 => &[0],
                        UrgencyGroup::A1 => &[1],
                        UrgencyGroup::A0A1 => &[0, 1],
                    };
                    let (mut count, mut sum) = (0u64, 0u64);
                    for &m in members {
                        for &q in &qs {
                            for &u in us {
                                let c = n(m, q, u);
                                count += c;
                                sum += c * (500 + 10 * (m + q) as u64);
                            }
                        }
                    }
                    let mean = if count > 0 {
                        sum as f64 / count as f64
                    } else {
                        0.0
                    };
                    out.push(CellStats {
                        area: area.clone(),
                        period,
                        urgency,
                        stats: Stats {
                            n: count,
                            sum_seconds: sum,
                            mean_seconds: mean,
                            median_seconds: mean,
                            p90_seconds: mean,
                            p95_seconds: mean,
                            within_15: count,
                            share_within_15: if count > 0 { 1.0 } else { 0.0 },
                        },
                    });
                }
            }
        }
        out
    }

    fn find(cells: &[Cell], code: &str, period: Period, urgency: UrgencyGroup) -> usize {
        cells
            .iter()
            .position(|c| c.area.code() == code && c.period == period && c.urgency == urgency)
            .unwrap()
    }

    /// Municipality 0 has 3 A0 deployments in Q1; everything else is large.
    fn one_small() -> Vec<CellStats> {
        table(|m, q, u| match (m, q, u) {
            (0, 1, 0) => 3,
            (_, _, 0) => 30 + 5 * m as u64,
            _ => 200 + 20 * q as u64,
        })
    }

    #[test]
    fn past_its_time_budget_suppression_publishes_nothing_below_the_regions() {
        let cells = one_small();
        let params = SuppressionParams::default();
        let municipal_published = |out: &[Cell]| {
            cells
                .iter()
                .zip(out)
                .filter(|(c, o)| {
                    matches!(c.area, Area::Municipality { .. }) && o.suppressed.is_none()
                })
                .count()
        };
        // With time, most municipality cells are published.
        let normal = suppress(&cells, &params, 900, None);
        assert!(municipal_published(&normal) > 0);
        // Out of time: none is, and the regions and the country still are (all have n >= k).
        let expired = AttackParams {
            deadline: Some(std::time::Instant::now()),
            ..AttackParams::for_params(&params)
        };
        std::thread::sleep(std::time::Duration::from_millis(5));
        let out = suppress_with(&cells, &params, &expired, 900, None);
        assert_eq!(municipal_published(&out), 0);
        for (c, o) in cells.iter().zip(&out) {
            if !matches!(c.area, Area::Municipality { .. }) {
                assert!(o.suppressed.is_none(), "{:?} {:?}", c.area, c.period);
            }
        }
        // And the fallback resists the attack too.
        let report = attack(&out, &AttackParams::for_params(&params), Mode::Exact).unwrap();
        assert!(report.exposed().is_empty(), "{:?}", report.exposed());
    }

    #[test]
    fn primary_cells_publish_nothing_but_the_reason_and_percentiles_need_20() {
        let cells = table(|m, q, u| if u == 0 && m == 0 { q as u64 * 3 } else { 100 });
        let out = suppress(&cells, &SuppressionParams::default(), 900, None);
        assert_eq!(out.len(), cells.len());
        for (c, o) in cells.iter().zip(&out) {
            assert_eq!(
                (&c.area, c.period, c.urgency),
                (&o.area, o.period, o.urgency)
            );
            if c.stats.n < 10 {
                assert_eq!(o.suppressed, Some(SuppressionReason::Suppressed));
                assert_eq!((o.n, o.mean_seconds, o.share_within_15), (None, None, None));
            }
            if o.suppressed.is_none() && c.stats.n < 20 {
                assert!(o.percentiles_withheld);
                assert_eq!((o.median_seconds, o.p95_seconds), (None, None));
                assert!(o.mean_seconds.is_some());
            }
        }
        // GM0000 A0 Q3 has 9 (primary), Q4 has 12 (published, percentiles withheld unless
        // suppressed as a complement).
        let q3 = find(&out, "GM0000", Period::Quarter(2025, 3), UrgencyGroup::A0);
        assert_eq!(out[q3].suppressed, Some(SuppressionReason::Suppressed));
    }

    #[test]
    fn a_single_small_cell_gets_complements_on_every_relation_and_resists_the_attack() {
        let cells = one_small();
        let params = SuppressionParams::default();
        let out = suppress(&cells, &params, 900, None);
        let small = find(&out, "GM0000", Period::Quarter(2025, 1), UrgencyGroup::A0);
        assert_eq!(out[small].suppressed, Some(SuppressionReason::Suppressed));
        // Urgency, time and area relations of the small cell each hold another suppressed cell.
        let q1 = Period::Quarter(2025, 1);
        let others_suppressed = |idx: &[usize]| idx.iter().any(|&i| out[i].suppressed.is_some());
        assert!(others_suppressed(&[
            find(&out, "GM0000", q1, UrgencyGroup::A1),
            find(&out, "GM0000", q1, UrgencyGroup::A0A1)
        ]));
        assert!(others_suppressed(
            &[2, 3, 4]
                .map(|q| find(&out, "GM0000", Period::Quarter(2025, q), UrgencyGroup::A0))
                .into_iter()
                .chain([find(&out, "GM0000", Period::Year(2025), UrgencyGroup::A0)])
                .collect::<Vec<_>>()
        ));
        assert!(others_suppressed(&[
            find(&out, "GM0001", q1, UrgencyGroup::A0),
            find(&out, "GM0002", q1, UrgencyGroup::A0)
        ]));
        let report = attack(&out, &AttackParams::for_params(&params), Mode::Exact).unwrap();
        assert!(report.exposed().is_empty(), "{:?}", report.exposed());
        let f = report.findings.iter().find(|f| f.cell == small).unwrap();
        // At least as open as "fewer than 10" would be: 0 and 9 both possible (the one reason
        // does not even tell that the cell is below 10).
        let (lo, hi) = (f.intervals[0].lo, f.intervals[0].hi);
        assert!(lo == 0.0 && hi >= 9.0, "[{lo}, {hi}]");
        // Complementary cells are only suppressed where needed: the region and the country are
        // published.
        assert!(out
            .iter()
            .filter(|c| !matches!(c.area, Area::Municipality { .. }))
            .all(|c| c.suppressed.is_none()));
    }

    #[test]
    fn primary_suppression_alone_is_undone_by_a0_plus_a1_minus_a1() {
        let cells = one_small();
        let params = SuppressionParams::default();
        let out: Vec<Cell> = cells
            .iter()
            .map(|c| {
                if c.stats.n < 10 {
                    suppressed_cell(c, SuppressionReason::TooFewDeployments)
                } else {
                    published_cell(c, &params, 900)
                }
            })
            .collect();
        let report = attack(&out, &AttackParams::for_params(&params), Mode::Exact).unwrap();
        let small = find(&out, "GM0000", Period::Quarter(2025, 1), UrgencyGroup::A0);
        let f = report.findings.iter().find(|f| f.cell == small).unwrap();
        assert_eq!((f.intervals[0].lo, f.intervals[0].hi), (3.0, 3.0));
        assert_eq!(f.exposed, vec!["n", "within_15", "sum_seconds"]);
    }

    #[test]
    fn two_small_cells_in_a_relation_get_a_large_partner() {
        // GM0000 A0: Q1 3 and Q2 4 deployments; the year minus Q3 and Q4 tells Q1 + Q2 = 7,
        // so Q1 could not be 9 without a larger suppressed cell in the relation.
        let cells = table(|m, q, u| match (m, q, u) {
            (0, 1, 0) => 3,
            (0, 2, 0) => 4,
            (_, _, 0) => 30,
            _ => 200,
        });
        let params = SuppressionParams::default();
        let out = suppress(&cells, &params, 900, None);
        let report = attack(&out, &AttackParams::for_params(&params), Mode::Exact).unwrap();
        assert!(report.exposed().is_empty(), "{:?}", report.exposed());
    }

    #[test]
    fn sticky_suppression_keeps_previous_cells_suppressed_with_a_true_reason() {
        let params = SuppressionParams::default();
        let first = suppress(&one_small(), &params, 900, None);
        // Late events: the small cell now has 12 deployments (and the totals move with it).
        let later = table(|m, q, u| match (m, q, u) {
            (0, 1, 0) => 12,
            (_, _, 0) => 30 + 5 * m as u64,
            _ => 200 + 20 * q as u64,
        });
        let second = suppress(&later, &params, 900, Some(&first));
        for (a, b) in first.iter().zip(&second) {
            if a.suppressed.is_some() {
                assert!(b.suppressed.is_some(), "{:?} {:?}", a.area, a.period);
            }
        }
        let small = find(
            &second,
            "GM0000",
            Period::Quarter(2025, 1),
            UrgencyGroup::A0,
        );
        assert_eq!(
            second[small].suppressed,
            Some(SuppressionReason::Suppressed)
        );
        let report = attack(&second, &AttackParams::for_params(&params), Mode::Exact).unwrap();
        assert!(report.exposed().is_empty(), "{:?}", report.exposed());
        // The attacker holding both publications, who knows late events added at most 9
        // deployments per cell, learns nothing either.
        let ap = AttackParams::for_params(&params);
        let joint = crate::report::municipalities::attack::attack_publications(
            &[&first, &second],
            Some(crate::report::municipalities::attack::LateEvents { max_added: 9.0 }),
            &ap,
            Mode::Exact,
        )
        .unwrap();
        assert!(joint.exposed().is_empty(), "{:?}", joint.exposed());
    }

    #[test]
    fn config_defaults_are_valid_and_bad_values_name_the_key() {
        let c = SuppressionConfig::default();
        c.validate().unwrap();
        assert_eq!(c.params(), SuppressionParams::default());
        let bad = SuppressionConfig {
            min_deployments_percentiles: 5,
            ..SuppressionConfig::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("report.suppression.min_deployments_percentiles"),
            "{e}"
        );
    }
}
