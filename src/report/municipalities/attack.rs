//! The attacker: from published cells only, find how narrowly every suppressed cell can be
//! pinned down (docs/suppression.md).
//!
//! The attacker knows the table's linear relations (A0+A1 = A0 + A1; a year is the sum of its
//! quarters; a region is the sum of its municipalities; the country the sum of its regions; in
//! every combination) for the three additive quantities of a cell: the count `n`, the count
//! within 15 minutes `w` (share x n) and the sum of the response times `s` (mean x n). Published
//! means and shares are full-precision `f64` (JSON, ClickHouse `Float64`), so the attacker
//! recovers `w` and `s` of a published cell exactly (rounded to the nearest integer, which they
//! are); a rendering that rounds them only removes information. The attacker also knows the
//! bounds the reasons tell: a cell published as `TooFewDeployments` ("fewer than k", primary-only
//! publications) has `0 <= n <= k-1`, a `Complementary` one `n >= k`, a `Suppressed` one (the
//! single reason of complementary suppression) only `n >= 0`; and `0 <= w <= n`,
//! `n * min_seconds <= s <= n * max_seconds`.
//!
//! For every suppressed cell the attacker solves linear programs (pure Rust, `good_lp` with
//! `microlp`) for the smallest and largest value of each quantity consistent with everything
//! published. The programs are reduced to the suppressed unknowns (published cells are
//! constants) and split into independent components (suppressed cells linked by a relation), so
//! a national year is a few hundred small programs.
//!
//! Several publications (a re-run of the same year after late events, next year's report) are
//! attacked together with [`attack_publications`]: cells of the same area, period and urgency in
//! consecutive publications are linked by what late events can do (add deployments).

use std::collections::{HashMap, HashSet};

use good_lp::{microlp, variable, Expression, ProblemVariables, ResolutionError, SolverModel};
use good_lp::{Solution, Variable};

use super::model::{Area, Cell, Period, SuppressionParams, SuppressionReason, UrgencyGroup};

/// Quantity indices of a cell: count, count within 15 minutes, sum of seconds.
pub const N: usize = 0;
/// Index of the count within 15 minutes, `w` (share x n).
pub const W: usize = 1;
/// Index of the sum of the response times in seconds, `s` (mean x n).
pub const S: usize = 2;
const QUANTITY_NAMES: [&str; 3] = ["n", "within_15", "sum_seconds"];
/// Programs with random objectives per component before the per-cell ones ([`Mode::Check`]).
const SPREAD_PROGRAMS: usize = 6;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Units of the quantities inside the linear programs (sums in minutes).
const SCALE: [f64; 3] = [1.0, 1.0, 60.0];

/// What the attacker assumes and what counts as protected.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackParams {
    /// The minimum count `k` (a `TooFewDeployments` cell has `n <= k - 1`, a `Complementary` one
    /// `n >= k`).
    pub min_deployments: u64,
    /// Plausible response time bounds per deployment, known to the attacker (seconds).
    pub min_seconds: f64,
    /// Largest plausible response time of one deployment, in seconds (upper bound of `s / n`).
    pub max_seconds: f64,
    /// A suppressed cell's sum of seconds must stay open over at least
    /// `(k - 1) * sum_width_per_deployment` seconds.
    pub sum_width_per_deployment: f64,
    /// Stop with [`AttackError::OutOfTime`] once this instant has passed (checked between linear
    /// programs); `None`: no limit.
    pub deadline: Option<std::time::Instant>,
}

fn check_deadline(params: &AttackParams) -> Result<(), AttackError> {
    match params.deadline {
        Some(d) if std::time::Instant::now() > d => Err(AttackError::OutOfTime),
        _ => Ok(()),
    }
}

impl AttackParams {
    /// Defaults: response times between 0 s and one hour, sums open over `(k - 1) x 5` minutes.
    pub fn for_params(params: &SuppressionParams) -> Self {
        AttackParams {
            min_deployments: params.min_deployments,
            min_seconds: 0.0,
            max_seconds: 3600.0,
            sum_width_per_deployment: 300.0,
            deadline: None,
        }
    }

    /// The least width (`hi - lo`) a suppressed cell's interval must have, per quantity: `k - 1`
    /// for the counts (at least `k` possible values, as many as "fewer than k" leaves), and
    /// `(k - 1) * sum_width_per_deployment` for the sum of seconds.
    pub fn required_width(&self, quantity: usize) -> f64 {
        let k1 = self.min_deployments.saturating_sub(1) as f64;
        if quantity == S {
            k1 * self.sum_width_per_deployment
        } else {
            k1
        }
    }

    /// Whether an interval `[lo, hi]` of quantity `quantity` is wide enough.
    pub fn protected(&self, quantity: usize, lo: f64, hi: f64) -> bool {
        let width = if quantity == S {
            hi - lo
        } else {
            // Counts are integers: the attacker rounds the interval inwards.
            (hi + 1e-6).floor() - (lo - 1e-6).ceil()
        };
        width >= self.required_width(quantity) - 1e-6
    }
}

/// How much work the attacker does per suppressed cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Solve for the exact smallest and largest value of every quantity.
    Exact,
    /// Stop once a cell is shown protected (the intervals reported are then only known to be at
    /// least as wide as shown); exact for cells that are not protected.
    Check,
}

/// An interval of values consistent with everything published.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    /// Smallest value consistent with the publication.
    pub lo: f64,
    /// Largest value consistent with the publication.
    pub hi: f64,
}

/// What the attacker found about one suppressed cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// Publication index (0 for [`attack`]) and cell index within it.
    pub publication: usize,
    /// Index of the cell within its publication.
    pub cell: usize,
    /// `GM0088 2025-Q1 A0`.
    pub label: String,
    /// Intervals of n, within_15 and sum_seconds.
    pub intervals: [Interval; 3],
    /// Quantities (by name) that are not protected.
    pub exposed: Vec<&'static str>,
}

/// The outcome of an attack: one finding per suppressed cell, and the size of the work.
#[derive(Debug, Clone, PartialEq)]
pub struct AttackReport {
    /// One finding per suppressed cell.
    pub findings: Vec<Finding>,
    /// Independent components and linear programs solved.
    pub components: usize,
    /// Suppressed cells in the largest independent component.
    pub largest_component: usize,
    /// Linear programs solved.
    pub programs: usize,
}

impl AttackReport {
    /// The suppressed cells the attacker pins down too narrowly.
    pub fn exposed(&self) -> Vec<&Finding> {
        self.findings
            .iter()
            .filter(|f| !f.exposed.is_empty())
            .collect()
    }
}

/// Why an attack could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// No values satisfy the published cells and the table's relations.
    #[error(
        "published cells are inconsistent (no values satisfy the table's relations) around {cells}"
    )]
    Inconsistent {
        /// The cells involved (the first few of the component).
        cells: String,
    },
    /// The attack passed [`AttackParams::deadline`].
    #[error("the attack ran out of its time budget")]
    OutOfTime,
    /// The attacker still narrows a suppressed cell although every cell related to it is suppressed.
    #[error("suppression cannot protect {cells}: every cell related to it is suppressed already")]
    Unprotectable {
        /// The cell or cells that cannot be protected.
        cells: String,
    },
    /// The linear program solver failed.
    #[error("linear program failed around {cells}: {message}")]
    Solver {
        /// The cells involved (the first few of the component).
        cells: String,
        /// The solver's error.
        message: String,
    },
    /// A published cell cannot be read as the attacker's input (e.g. published without a mean).
    #[error("publication {publication} cell {cell} ({label}): {message}")]
    BadCell {
        /// Index of the publication.
        publication: usize,
        /// Index of the cell within the publication.
        cell: usize,
        /// The cell's label, e.g. `GM0088 2025-Q1 A0`.
        label: String,
        /// What is wrong with the cell.
        message: String,
    },
}

/// Attack one publication.
pub fn attack(
    published: &[Cell],
    params: &AttackParams,
    mode: Mode,
) -> Result<AttackReport, AttackError> {
    attack_publications(&[published], None, params, mode)
}

/// What the attacker assumes about late events between consecutive publications of the same
/// year: they only add deployments, at most `max_added` per cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LateEvents {
    /// Deployments late events may add to one cell between two publications, at most.
    pub max_added: f64,
}

/// Attack several publications together. Cells with the same area, period and urgency in
/// consecutive publications are linked by `late` when given (the later one has between 0 and
/// `max_added` more deployments, each within the plausible seconds), and are unrelated otherwise.
pub fn attack_publications(
    publications: &[&[Cell]],
    late: Option<LateEvents>,
    params: &AttackParams,
    mode: Mode,
) -> Result<AttackReport, AttackError> {
    let (system, origin) = publications_system(publications, late, params)?;
    let targets: Vec<usize> = (0..system.cells.len())
        .filter(|&i| matches!(system.cells[i], CellVar::Unknown { .. }))
        .collect();
    let outcome = system.solve(&targets, params, mode, None, &HashSet::new())?;
    let findings = outcome
        .intervals
        .into_iter()
        .map(|(i, intervals)| {
            let (publication, cell, label) = origin[i].clone();
            let exposed = (0..3)
                .filter(|&q| !params.protected(q, intervals[q].lo, intervals[q].hi))
                .map(|q| QUANTITY_NAMES[q])
                .collect();
            Finding {
                publication,
                cell,
                label,
                intervals,
                exposed,
            }
        })
        .collect();
    Ok(AttackReport {
        findings,
        components: outcome.components,
        largest_component: outcome.largest_component,
        programs: outcome.programs,
    })
}

/// The attacker's system over several publications: cells in publication order, with their
/// (publication, cell, label).
#[allow(clippy::type_complexity)]
pub(crate) fn publications_system(
    publications: &[&[Cell]],
    late: Option<LateEvents>,
    params: &AttackParams,
) -> Result<(System, Vec<(usize, usize, String)>), AttackError> {
    let k = params.min_deployments as f64;
    let mut system = System::default();
    let mut origin = Vec::new();
    let mut last_by_key: HashMap<(String, Period, UrgencyGroup), usize> = HashMap::new();
    for (p, cells) in publications.iter().enumerate() {
        let offset = system.cells.len();
        for (i, c) in cells.iter().enumerate() {
            let label = cell_label(&c.area, c.period, c.urgency);
            let bad = |message: &str| AttackError::BadCell {
                publication: p,
                cell: i,
                label: label.clone(),
                message: message.to_string(),
            };
            let var = match (c.suppressed, c.n) {
                (Some(SuppressionReason::TooFewDeployments), _) => CellVar::Unknown {
                    n_lo: 0.0,
                    n_hi: (k - 1.0).max(0.0),
                },
                (Some(SuppressionReason::Complementary), _) => CellVar::Unknown {
                    n_lo: k,
                    n_hi: f64::INFINITY,
                },
                (Some(SuppressionReason::Suppressed), _) => CellVar::Unknown {
                    n_lo: 0.0,
                    n_hi: f64::INFINITY,
                },
                (None, Some(n)) => {
                    let n = n as f64;
                    let (Some(mean), Some(share)) = (c.mean_seconds, c.share_within_15) else {
                        return Err(bad("published without mean or share"));
                    };
                    if !(mean.is_finite() && share.is_finite()) && n > 0.0 {
                        return Err(bad("published mean or share is not a number"));
                    }
                    let (w, s) = if n > 0.0 {
                        ((share * n).round(), (mean * n).round())
                    } else {
                        (0.0, 0.0)
                    };
                    CellVar::Known([n, w, s])
                }
                (None, None) => return Err(bad("neither suppressed nor a count")),
            };
            system.cells.push(var);
            origin.push((p, i, label));
        }
        let keys: Vec<CellKey<'_>> = cells
            .iter()
            .map(|c| CellKey::new(&c.area, c.period, c.urgency))
            .collect();
        for r in relations(&keys) {
            system.add_relation(
                offset + r.total,
                r.parts.iter().map(|&j| offset + j),
                [0.0; 3],
            );
        }
        for (i, c) in cells.iter().enumerate() {
            let key = (c.area.code().to_string(), c.period, c.urgency);
            if let (Some(late), Some(&before)) = (late, last_by_key.get(&key)) {
                system.add_late_link(before, offset + i, late.max_added, params);
            }
            last_by_key.insert(key, offset + i);
        }
    }
    Ok((system, origin))
}

/// `GM0088 2025-Q1 A0`.
pub fn cell_label(area: &Area, period: Period, urgency: UrgencyGroup) -> String {
    format!("{} {} {}", area.code(), period.label(), urgency.label())
}

/// The coordinates of a cell, for building the table's relations.
#[derive(Debug, Clone, Copy)]
pub struct CellKey<'a> {
    /// Area of the cell.
    pub area: &'a Area,
    /// Year or quarter of the cell.
    pub period: Period,
    /// Urgency group of the cell.
    pub urgency: UrgencyGroup,
}

impl<'a> CellKey<'a> {
    /// The key of the cell at these coordinates.
    pub fn new(area: &'a Area, period: Period, urgency: UrgencyGroup) -> CellKey<'a> {
        CellKey {
            area,
            period,
            urgency,
        }
    }
}

/// One linear relation of the table: `cells[total] = sum of cells[parts]`, for each of the three
/// additive quantities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Index of the total cell.
    pub total: usize,
    /// Indices of the cells that sum to it.
    pub parts: Vec<usize>,
}

/// Every relation among the given cells: A0+A1 = A0 + A1 per area and period; year = Q1 + .. +
/// Q4 per area and urgency (when all four quarters are present); region = its municipalities
/// and national = the regions, per period and urgency (when the total is present). Combinations
/// (region x year x A0+A1 ...) follow because every cell of the table is in all of them.
pub fn relations(cells: &[CellKey<'_>]) -> Vec<Relation> {
    let index: HashMap<(&str, Period, UrgencyGroup), usize> = cells
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.area.code(), c.period, c.urgency), i))
        .collect();
    let mut out = Vec::new();
    // Urgency.
    for (i, c) in cells.iter().enumerate() {
        if c.urgency != UrgencyGroup::A0A1 {
            continue;
        }
        let a0 = index.get(&(c.area.code(), c.period, UrgencyGroup::A0));
        let a1 = index.get(&(c.area.code(), c.period, UrgencyGroup::A1));
        if let (Some(&a0), Some(&a1)) = (a0, a1) {
            out.push(Relation {
                total: i,
                parts: vec![a0, a1],
            });
        }
    }
    // Time.
    for (i, c) in cells.iter().enumerate() {
        let Period::Year(y) = c.period else { continue };
        let quarters: Option<Vec<usize>> = (1..=4u8)
            .map(|q| {
                index
                    .get(&(c.area.code(), Period::Quarter(y, q), c.urgency))
                    .copied()
            })
            .collect();
        if let Some(parts) = quarters {
            out.push(Relation { total: i, parts });
        }
    }
    // Area.
    let mut by_region: HashMap<(&str, Period, UrgencyGroup), Vec<usize>> = HashMap::new();
    let mut regions: HashMap<(Period, UrgencyGroup), Vec<usize>> = HashMap::new();
    for (i, c) in cells.iter().enumerate() {
        match c.area {
            Area::Municipality { region_code, .. } => by_region
                .entry((region_code.as_str(), c.period, c.urgency))
                .or_default()
                .push(i),
            Area::Region { .. } => regions.entry((c.period, c.urgency)).or_default().push(i),
            Area::National => {}
        }
    }
    let mut area_relations: Vec<Relation> = Vec::new();
    for ((region, period, urgency), parts) in by_region {
        if let Some(&total) = index.get(&(region, period, urgency)) {
            area_relations.push(Relation { total, parts });
        }
    }
    for ((period, urgency), parts) in regions {
        if let Some(&total) = index.get(&("NL", period, urgency)) {
            area_relations.push(Relation { total, parts });
        }
    }
    area_relations.sort_by_key(|r| r.total);
    out.extend(area_relations);
    out
}

/// A cell in the attacker's system: known quantities, or unknowns with count bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CellVar {
    /// n, w, s.
    Known([f64; 3]),
    Unknown {
        n_lo: f64,
        n_hi: f64,
    },
}

/// `lo <= sum(coeff * cells[cell].quantity) <= hi`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Lin {
    pub terms: Vec<(usize, usize, f64)>,
    pub lo: f64,
    pub hi: f64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct System {
    pub cells: Vec<CellVar>,
    pub lins: Vec<Lin>,
}

pub(crate) struct Outcome {
    /// Per target cell, the intervals of n, w, s.
    pub intervals: Vec<(usize, [Interval; 3])>,
    pub components: usize,
    pub largest_component: usize,
    pub programs: usize,
    /// Component member lists that were shown protected (for the caller to skip next time).
    pub protected_components: Vec<Vec<usize>>,
}

impl System {
    /// `total - sum(parts) = residual[q]` for every quantity.
    pub fn add_relation(
        &mut self,
        total: usize,
        parts: impl Iterator<Item = usize>,
        residual: [f64; 3],
    ) {
        let parts: Vec<usize> = parts.collect();
        for (q, &r) in residual.iter().enumerate() {
            let mut terms = vec![(total, q, 1.0)];
            terms.extend(parts.iter().map(|&j| (j, q, -1.0)));
            self.lins.push(Lin {
                terms,
                lo: r,
                hi: r,
            });
        }
    }

    /// The later cell has between 0 and `max_added` more deployments than the earlier, each
    /// within the plausible seconds, and at most all of them within 15 minutes.
    fn add_late_link(&mut self, before: usize, after: usize, max_added: f64, p: &AttackParams) {
        let d = |q: usize, c: f64| [(after, q, c), (before, q, -c)];
        self.lins.push(Lin {
            terms: d(N, 1.0).to_vec(),
            lo: 0.0,
            hi: max_added,
        });
        self.lins.push(Lin {
            terms: d(W, 1.0).to_vec(),
            lo: 0.0,
            hi: f64::INFINITY,
        });
        self.lins.push(Lin {
            terms: [d(W, 1.0), d(N, -1.0)].concat(),
            lo: f64::NEG_INFINITY,
            hi: 0.0,
        });
        self.lins.push(Lin {
            terms: [d(S, 1.0), d(N, -p.min_seconds)].concat(),
            lo: 0.0,
            hi: f64::INFINITY,
        });
        self.lins.push(Lin {
            terms: [d(S, 1.0), d(N, -p.max_seconds)].concat(),
            lo: f64::NEG_INFINITY,
            hi: 0.0,
        });
    }

    fn is_unknown(&self, i: usize) -> bool {
        matches!(self.cells[i], CellVar::Unknown { .. })
    }

    /// Independent components: unknown cells linked by a constraint, each with the indices of
    /// the constraints that involve them.
    pub fn components(&self) -> Vec<(Vec<usize>, Vec<usize>)> {
        let mut parent: Vec<usize> = (0..self.cells.len()).collect();
        fn find(parent: &mut [usize], mut i: usize) -> usize {
            while parent[i] != i {
                parent[i] = parent[parent[i]];
                i = parent[i];
            }
            i
        }
        for lin in &self.lins {
            let mut first = None;
            for &(c, _, _) in &lin.terms {
                if !self.is_unknown(c) {
                    continue;
                }
                match first {
                    None => first = Some(c),
                    Some(f) => {
                        let (a, b) = (find(&mut parent, f), find(&mut parent, c));
                        if a != b {
                            parent[a] = b;
                        }
                    }
                }
            }
        }
        let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
        for i in 0..self.cells.len() {
            if self.is_unknown(i) {
                let r = find(&mut parent, i);
                members.entry(r).or_default().push(i);
            }
        }
        let mut lins_of: HashMap<usize, Vec<usize>> = HashMap::new();
        for (l, lin) in self.lins.iter().enumerate() {
            if let Some(&(c, _, _)) = lin.terms.iter().find(|t| self.is_unknown(t.0)) {
                let r = find(&mut parent, c);
                lins_of.entry(r).or_default().push(l);
            }
        }
        let mut out: Vec<(Vec<usize>, Vec<usize>)> = members
            .into_iter()
            .map(|(r, m)| (m, lins_of.remove(&r).unwrap_or_default()))
            .collect();
        out.sort();
        out
    }

    /// Intervals of the targets' quantities. `feasible`, when given, is a known solution (the
    /// true values) that seeds the observed ranges in [`Mode::Check`]. Components whose member
    /// list is in `skip` are taken as protected without solving.
    pub fn solve(
        &self,
        targets: &[usize],
        params: &AttackParams,
        mode: Mode,
        feasible: Option<&[[f64; 3]]>,
        skip: &HashSet<Vec<usize>>,
    ) -> Result<Outcome, AttackError> {
        let wanted: HashSet<usize> = targets.iter().copied().collect();
        let mut outcome = Outcome {
            intervals: Vec::new(),
            components: 0,
            largest_component: 0,
            programs: 0,
            protected_components: Vec::new(),
        };
        for (members, lins) in self.components() {
            if !members.iter().any(|m| wanted.contains(m)) {
                continue;
            }
            outcome.components += 1;
            outcome.largest_component = outcome.largest_component.max(members.len());
            if skip.contains(&members) {
                continue;
            }
            let all_ok = self.solve_component(
                &members,
                &lins,
                &wanted,
                params,
                mode,
                feasible,
                &mut outcome,
            )?;
            if all_ok {
                outcome.protected_components.push(members);
            }
        }
        outcome.intervals.sort_by_key(|(i, _)| *i);
        Ok(outcome)
    }

    #[allow(clippy::too_many_arguments)]
    fn solve_component(
        &self,
        members: &[usize],
        lins: &[usize],
        wanted: &HashSet<usize>,
        params: &AttackParams,
        mode: Mode,
        feasible: Option<&[[f64; 3]]>,
        outcome: &mut Outcome,
    ) -> Result<bool, AttackError> {
        let local: HashMap<usize, usize> =
            members.iter().enumerate().map(|(l, &g)| (g, l)).collect();
        let describe = || {
            let mut s: Vec<String> = members
                .iter()
                .take(6)
                .map(|m| format!("cell {m}"))
                .collect();
            if members.len() > 6 {
                s.push(format!("and {} more", members.len() - 6));
            }
            s.join(", ")
        };
        // Observed ranges per member and quantity, from known feasible points.
        let mut obs: Vec<[Interval; 3]> = members
            .iter()
            .map(|&g| {
                let v = feasible.map(|f| f[g]);
                std::array::from_fn(|q| match v {
                    Some(v) => Interval { lo: v[q], hi: v[q] },
                    None => Interval {
                        lo: f64::INFINITY,
                        hi: f64::NEG_INFINITY,
                    },
                })
            })
            .collect();
        // In check mode, a few programs with random objectives over all members first: each
        // optimum pushes many cells to an extreme at once, so most cells are shown protected
        // without programs of their own.
        if mode == Mode::Check && members.len() > 1 {
            for round in 0..SPREAD_PROGRAMS {
                let terms: Vec<(usize, usize, f64)> = (0..members.len())
                    .flat_map(|l| (0..3).map(move |q| (l, q)))
                    .map(|(l, q)| {
                        let h =
                            splitmix((round as u64) << 40 ^ (members[l] as u64) << 2 ^ q as u64);
                        (l, q, if h & 1 == 0 { 1.0 } else { -1.0 })
                    })
                    .collect();
                check_deadline(params)?;
                outcome.programs += 1;
                match self.optimise(members, &local, lins, params, &terms, true) {
                    Ok(values) => {
                        for (m, v) in values.iter().enumerate() {
                            for qq in 0..3 {
                                obs[m][qq].lo = obs[m][qq].lo.min(v[qq]);
                                obs[m][qq].hi = obs[m][qq].hi.max(v[qq]);
                            }
                        }
                    }
                    // Unbounded or otherwise: the per-cell programs below decide.
                    Err(_) => break,
                }
            }
        }
        let mut exact: Vec<[[bool; 2]; 3]> = vec![[[false; 2]; 3]; members.len()];
        let mut all_ok = true;
        for (l, &g) in members.iter().enumerate() {
            if !wanted.contains(&g) {
                continue;
            }
            for q in 0..3 {
                for (side, maximise) in [(1, true), (0, false)] {
                    if mode == Mode::Check && params.protected(q, obs[l][q].lo, obs[l][q].hi) {
                        break;
                    }
                    if exact[l][q][side] {
                        continue;
                    }
                    check_deadline(params)?;
                    outcome.programs += 1;
                    match self.optimise(members, &local, lins, params, &[(l, q, 1.0)], maximise) {
                        Ok(values) => {
                            for (m, v) in values.iter().enumerate() {
                                for qq in 0..3 {
                                    obs[m][qq].lo = obs[m][qq].lo.min(v[qq]);
                                    obs[m][qq].hi = obs[m][qq].hi.max(v[qq]);
                                }
                            }
                        }
                        Err(ResolutionError::Unbounded) => {
                            if maximise {
                                obs[l][q].hi = f64::INFINITY;
                            } else {
                                obs[l][q].lo = f64::NEG_INFINITY;
                            }
                        }
                        Err(ResolutionError::Infeasible) => {
                            return Err(AttackError::Inconsistent { cells: describe() })
                        }
                        Err(e) => {
                            return Err(AttackError::Solver {
                                cells: describe(),
                                message: e.to_string(),
                            })
                        }
                    }
                    exact[l][q][side] = true;
                }
                if !params.protected(q, obs[l][q].lo, obs[l][q].hi) {
                    all_ok = false;
                }
            }
            outcome.intervals.push((g, obs[l]));
        }
        Ok(all_ok)
    }

    /// Maximise or minimise one quantity of one member; the values of every member at the
    /// optimum.
    #[allow(clippy::too_many_arguments)]
    fn optimise(
        &self,
        members: &[usize],
        local: &HashMap<usize, usize>,
        lins: &[usize],
        params: &AttackParams,
        objective_terms: &[(usize, usize, f64)],
        maximise: bool,
    ) -> Result<Vec<[f64; 3]>, ResolutionError> {
        let mut vars = ProblemVariables::new();
        let vs: Vec<[Variable; 3]> = members
            .iter()
            .map(|&g| {
                let CellVar::Unknown { n_lo, n_hi } = self.cells[g] else {
                    unreachable!("members are unknown cells")
                };
                let n = vars.add(variable().min(n_lo).max(n_hi));
                let w = vars.add(variable().min(0.0));
                let s = vars.add(variable().min(0.0));
                [n, w, s]
            })
            .collect();
        let mut objective = Expression::from(0.0);
        for &(l, q, c) in objective_terms {
            objective.add_mul(c, vs[l][q]);
        }
        let mut model = if maximise {
            vars.maximise(objective).using(microlp)
        } else {
            vars.minimise(objective).using(microlp)
        };
        // Sums are modelled in minutes so that all coefficients are of similar size.
        for v in &vs {
            model.add_constraint((v[W] - v[N]).leq(0.0));
            model.add_constraint((v[S] - params.min_seconds / SCALE[S] * v[N]).geq(0.0));
            model.add_constraint((v[S] - params.max_seconds / SCALE[S] * v[N]).leq(0.0));
        }
        for &l in lins {
            let lin = &self.lins[l];
            let mut terms: Vec<(Variable, f64)> = Vec::new();
            let mut constant = 0.0;
            for &(c, q, coeff) in &lin.terms {
                match self.cells[c] {
                    CellVar::Known(v) => constant += coeff * v[q],
                    CellVar::Unknown { .. } => terms.push((vs[local[&c]][q], coeff * SCALE[q])),
                }
            }
            let norm = terms.iter().map(|t| t.1.abs()).fold(0.0, f64::max);
            if norm == 0.0 {
                continue;
            }
            let mut e = Expression::from(0.0);
            for (v, c) in terms {
                e.add_mul(c / norm, v);
            }
            let (lo, hi) = ((lin.lo - constant) / norm, (lin.hi - constant) / norm);
            if lin.lo == lin.hi {
                model.add_constraint(e.eq(lo));
            } else {
                if lo.is_finite() {
                    model.add_constraint(e.clone().geq(lo));
                }
                if hi.is_finite() {
                    model.add_constraint(e.leq(hi));
                }
            }
        }
        let solution = model.solve()?;
        Ok(vs
            .iter()
            .map(|v| std::array::from_fn(|q| solution.value(v[q]) * SCALE[q]))
            .collect())
    }
}
