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
    suppress_with(
        cells,
        params,
        &AttackParams::for_params(params),
        norm_seconds,
        previous,
    )
}

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
        Err(e) => {
            // Cannot happen with consistent statistics (the true values satisfy every
            // relation); if it does, publish nothing below the regions rather than risk it.
            tracing::error!(error = %e, "complementary suppression failed; suppressing every municipality cell");
            if std::env::var_os("SDC_DEBUG").is_some() {
                eprintln!("suppression failed: {e}");
            }
            fallback_plan(cells, params)
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
    pub reasons: Vec<Option<SuppressionReason>>,
    /// Rounds of attack and repair.
    pub rounds: usize,
    /// Linear programs solved over all rounds.
    pub programs: usize,
}

/// The reason of a suppressed cell follows from its current count, so that the bounds the
/// attacker reads from it are true: fewer than k is primary, otherwise complementary (also for a
/// cell kept suppressed from `previous`).
fn reason_for(n: u64, k: u64) -> SuppressionReason {
    if n < k {
        SuppressionReason::TooFewDeployments
    } else {
        SuppressionReason::Complementary
    }
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
        .map(|c| CellKey {
            area: &c.area,
            period: c.period,
            urgency: c.urgency,
        })
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
    if let Some(previous) = previous {
        let before: HashSet<(&str, Period, UrgencyGroup)> = previous
            .iter()
            .filter(|c| c.suppressed.is_some())
            .map(|c| (c.area.code(), c.period, c.urgency))
            .collect();
        for (i, c) in cells.iter().enumerate() {
            if before.contains(&(c.area.code(), c.period, c.urgency)) {
                supp[i] = true;
            }
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
        let mut system = System::default();
        for (i, c) in cells.iter().enumerate() {
            system.cells.push(if supp[i] {
                if c.stats.n < k {
                    CellVar::Unknown {
                        n_lo: 0.0,
                        n_hi: k.saturating_sub(1) as f64,
                    }
                } else {
                    CellVar::Unknown {
                        n_lo: k as f64,
                        n_hi: f64::INFINITY,
                    }
                }
            } else {
                CellVar::Known(truth[i])
            });
        }
        for rel in &rels {
            let residual: [f64; 3] = std::array::from_fn(|q| {
                truth[rel.total][q] - rel.parts.iter().map(|&p| truth[p][q]).sum::<f64>()
            });
            system.add_relation(rel.total, rel.parts.iter().copied(), residual);
        }
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
            suppressed = targets.len(),
            exposed = failing.len(),
            programs = outcome.programs,
            "complementary suppression round"
        );
        if std::env::var_os("SDC_DEBUG").is_some() {
            let by_q: Vec<usize> = (0..3)
                .map(|q| {
                    outcome
                        .intervals
                        .iter()
                        .filter(|(_, iv)| !attack.protected(q, iv[q].lo, iv[q].hi))
                        .count()
                })
                .collect();
            eprintln!(
                "round {rounds}: {} suppressed, {} exposed {by_q:?}, {} programs",
                targets.len(),
                failing.len(),
                outcome.programs
            );
        }
        if failing.is_empty() {
            break;
        }
        let mut added = false;
        for f in failing {
            if let Some(j) = table.repair_candidate(f, &supp) {
                if !supp[j] {
                    supp[j] = true;
                    added = true;
                }
            }
        }
        if !added {
            // Every cell related to the exposed ones is suppressed already; only the bounds
            // remain, which cannot expose a cell. Not reached in practice.
            break;
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

/// Suppress everything but the regions and the country (and those too if one is below k).
fn fallback_plan(cells: &[CellStats], params: &SuppressionParams) -> Plan {
    let k = params.min_deployments;
    let any_total_small = cells
        .iter()
        .any(|c| !matches!(c.area, Area::Municipality { .. }) && c.stats.n < k);
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
    /// away (total minus the others), so another cell of that relation is suppressed.
    fn singletons(&self, supp: &mut [bool]) {
        loop {
            let mut changed = false;
            for r in 0..self.rels.len() {
                if self.suppressed_in(r, supp) == 1 {
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
