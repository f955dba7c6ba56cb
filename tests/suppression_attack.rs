//! The attack test of the municipality report's suppression (issue #11, docs/suppression.md), on
//! a generated national year: per-municipality incidents in proportion to the inhabitants
//! (`shared/reference/gemeenten_inwoners.csv`), safety regions from
//! `gemeenten_veiligheidsregio_2023-2025.csv`, about 725,000 A0+A1 deployments, A0 about 3%.
//! Pure computation: no servers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use dispatch_ingest::report::municipalities::attack::{
    attack, attack_publications, AttackParams, AttackReport, LateEvents, Mode,
};
use dispatch_ingest::report::municipalities::model::{
    Area, Cell, Period, Stats, SuppressionParams, SuppressionReason, UrgencyGroup,
};
use dispatch_ingest::report::municipalities::suppress::{
    published_cell, suppress, suppressed_cell, CellStats,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal};

fn reference(name: &str) -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for base in [
        here.join("../shared/reference"),
        PathBuf::from("/work/shared/reference"),
    ] {
        if base.join(name).exists() {
            return base.join(name);
        }
    }
    panic!("reference file {name} not found next to the repository (../shared/reference)");
}

struct Muni {
    code: String,
    name: String,
    region: String,
    region_name: String,
    inhabitants: f64,
}

fn municipalities() -> Vec<Muni> {
    let mut inhabitants: HashMap<String, f64> = HashMap::new();
    let mut r = csv::Reader::from_path(reference("gemeenten_inwoners.csv")).unwrap();
    for row in r.records() {
        let row = row.unwrap();
        inhabitants.insert(row[0].to_string(), row[2].parse().unwrap());
    }
    let mut r =
        csv::Reader::from_path(reference("gemeenten_veiligheidsregio_2023-2025.csv")).unwrap();
    let mut out = Vec::new();
    for row in r.records() {
        let row = row.unwrap();
        let code = row[0].to_string();
        let inhabitants = *inhabitants
            .get(&code)
            .unwrap_or_else(|| panic!("{code}: no inhabitants in gemeenten_inwoners.csv"));
        out.push(Muni {
            code,
            name: row[1].to_string(),
            region: row[2].to_string(),
            region_name: row[3].to_string(),
            inhabitants,
        });
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    out
}

/// Response times per cell, for one year: `[area][period 0=year,1..4][urgency 0=A0,1=A1]`.
type Times = HashMap<(usize, usize, usize), Vec<u32>>;

/// A generated year: deployments per municipality in proportion to its inhabitants, quarter
/// uniform, A0 3%, lognormal response times (mean about 10 minutes for A1, A0 faster) with a
/// rural factor for small municipalities.
fn generate(munis: &[Muni], year: i32, seed: u64) -> Times {
    let mut rng = StdRng::seed_from_u64(seed ^ year as u64);
    let total: f64 = munis.iter().map(|m| m.inhabitants).sum();
    let mut times: Times = HashMap::new();
    for (a, m) in munis.iter().enumerate() {
        let expected = 725_000.0 * m.inhabitants / total;
        let n = (expected + rng.random_range(-0.5..0.5) * expected.sqrt()).round() as usize;
        let rural = if m.inhabitants < 30_000.0 { 1.2 } else { 1.0 };
        for _ in 0..n {
            let urgency = usize::from(rng.random::<f64>() >= 0.03);
            let median = if urgency == 0 { 430.0 } else { 530.0 } * rural;
            let t = LogNormal::new(f64::ln(median), 0.42)
                .unwrap()
                .sample(&mut rng)
                .clamp(30.0, 3600.0) as u32;
            let q = rng.random_range(1..=4);
            for p in [0, q] {
                times.entry((a, p, urgency)).or_default().push(t);
            }
        }
    }
    times
}

fn stats(t: Vec<u32>) -> Stats {
    let n = t.len() as u64;
    let sum: u64 = t.iter().map(|&x| x as u64).sum();
    let within = t.iter().filter(|&&x| x <= 900).count() as u64;
    // Percentiles (nearest rank) from a histogram of whole seconds (times are 30..=3600 s):
    // linear, so large cells are cheap in the unoptimised test build.
    let mut hist = vec![0u64; 3601];
    for &x in &t {
        hist[x as usize] += 1;
    }
    let pct = |p: f64| {
        let rank = ((p * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (x, &c) in hist.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return x as f64;
            }
        }
        0.0
    };
    Stats {
        n,
        sum_seconds: sum,
        mean_seconds: if n > 0 { sum as f64 / n as f64 } else { 0.0 },
        median_seconds: pct(0.5),
        p90_seconds: pct(0.9),
        p95_seconds: pct(0.95),
        within_15: within,
        share_within_15: if n > 0 { within as f64 / n as f64 } else { 0.0 },
    }
}

/// The report's cells (municipalities, regions, the country x year and quarters x A0, A1,
/// A0+A1) from generated response times.
fn cells(munis: &[Muni], year: i32, times: &Times) -> Vec<CellStats> {
    let mut areas: Vec<(Area, Vec<usize>)> = munis
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (
                Area::Municipality {
                    code: m.code.clone(),
                    name: m.name.clone(),
                    region_code: m.region.clone(),
                },
                vec![i],
            )
        })
        .collect();
    let mut regions: Vec<(String, String)> = munis
        .iter()
        .map(|m| (m.region.clone(), m.region_name.clone()))
        .collect();
    regions.sort();
    regions.dedup();
    for (code, name) in regions {
        let members = (0..munis.len())
            .filter(|&i| munis[i].region == code)
            .collect();
        areas.push((Area::Region { code, name }, members));
    }
    areas.push((Area::National, (0..munis.len()).collect()));
    let mut out = Vec::new();
    for (area, members) in &areas {
        for p in 0..5usize {
            let period = if p == 0 {
                Period::Year(year)
            } else {
                Period::Quarter(year, p as u8)
            };
            for urgency in UrgencyGroup::ALL {
                let us: &[usize] = match urgency {
                    UrgencyGroup::A0 => &[0],
                    UrgencyGroup::A1 => &[1],
                    UrgencyGroup::A0A1 => &[0, 1],
                };
                let mut t = Vec::new();
                for &m in members {
                    for &u in us {
                        if let Some(v) = times.get(&(m, p, u)) {
                            t.extend_from_slice(v);
                        }
                    }
                }
                out.push(CellStats {
                    area: area.clone(),
                    period,
                    urgency,
                    stats: stats(t),
                });
            }
        }
    }
    out
}

/// The generated 2025 (municipalities, incidents, cells) and its suppressed publication, shared
/// by the tests (they run in parallel threads of this binary).
struct Year {
    munis: Vec<Muni>,
    times: Times,
    stats: Vec<CellStats>,
    published: Vec<Cell>,
}

fn year_2025() -> &'static Year {
    static YEAR: OnceLock<Year> = OnceLock::new();
    YEAR.get_or_init(|| {
        let munis = municipalities();
        let t = std::time::Instant::now();
        let times = generate(&munis, 2025, 11);
        let stats = cells(&munis, 2025, &times);
        eprintln!("generating the year took {:?}", t.elapsed());
        let t = std::time::Instant::now();
        let published = suppress(&stats, &params(), 900, None);
        eprintln!(
            "suppression of {} cells took {:?}",
            stats.len(),
            t.elapsed()
        );
        Year {
            munis,
            times,
            stats,
            published,
        }
    })
}

fn params() -> SuppressionParams {
    SuppressionParams {
        min_deployments: 10,
        min_deployments_percentiles: 20,
    }
}

fn assert_safe(report: &AttackReport, what: &str) {
    let exposed = report.exposed();
    assert!(
        exposed.is_empty(),
        "{what}: the attacker narrows {} suppressed cells down, e.g. {:?}",
        exposed.len(),
        exposed.iter().take(5).collect::<Vec<_>>()
    );
}

/// Some municipality cells are published: the suppression finished within its time budget
/// rather than falling back to publishing nothing below the regions.
fn assert_not_fallback(cells: &[Cell], what: &str) {
    let published = cells
        .iter()
        .filter(|c| matches!(c.area, Area::Municipality { .. }) && c.suppressed.is_none())
        .count();
    assert!(
        published > 1000,
        "{what}: only {published} municipality cells published"
    );
}

#[test]
fn national_year_attack_pins_no_suppressed_cell() {
    let Year {
        stats, published, ..
    } = year_2025();
    let national = stats
        .iter()
        .find(|c| {
            c.area == Area::National
                && c.period == Period::Year(2025)
                && c.urgency == UrgencyGroup::A0A1
        })
        .unwrap();
    assert!((700_000..750_000).contains(&national.stats.n));
    assert_eq!(published.len(), stats.len());
    for (c, p) in stats.iter().zip(published) {
        assert_eq!(
            (&c.area, c.period, c.urgency),
            (&p.area, p.period, p.urgency)
        );
        if c.stats.n < 10 {
            assert!(p.suppressed.is_some());
        }
        // One reason for every suppressed cell: the reason tells nothing about the count.
        assert!(matches!(
            p.suppressed,
            None | Some(SuppressionReason::Suppressed)
        ));
        if p.suppressed.is_some() {
            assert!(p.n.is_none() && p.mean_seconds.is_none() && p.share_within_15.is_none());
        } else if c.stats.n < 20 {
            assert!(p.percentiles_withheld && p.median_seconds.is_none());
        }
    }
    let suppressed = |small: bool| {
        stats
            .iter()
            .zip(published)
            .filter(|(c, p)| p.suppressed.is_some() && (c.stats.n < 10) == small)
            .count()
    };
    let (primary, complementary) = (suppressed(true), suppressed(false));
    eprintln!("{primary} primary, {complementary} complementary suppressions");
    assert!(primary > 100, "the generated year has small cells");
    assert!(complementary > 0);
    let schier = published
        .iter()
        .find(|c| c.area.code() == "GM0088" && c.urgency == UrgencyGroup::A0)
        .unwrap();
    assert!(schier.suppressed.is_some(), "Schiermonnikoog's A0 year");
    let t = std::time::Instant::now();
    let report = attack(published, &AttackParams::for_params(&params()), Mode::Check).unwrap();
    eprintln!(
        "attack: {} suppressed cells, {} components (largest {}), {} programs, {:?}",
        report.findings.len(),
        report.components,
        report.largest_component,
        report.programs,
        t.elapsed()
    );
    assert_eq!(report.findings.len(), primary + complementary);
    assert_not_fallback(published, "2025");
    assert_safe(&report, "complementary suppression");
}

#[test]
fn primary_suppression_alone_is_pinned_by_the_attack() {
    let stats = &year_2025().stats;
    let p = params();
    let published: Vec<Cell> = stats
        .iter()
        .map(|c| {
            if c.stats.n < p.min_deployments {
                suppressed_cell(c, SuppressionReason::TooFewDeployments)
            } else {
                published_cell(c, &p, 900)
            }
        })
        .collect();
    let report = attack(&published, &AttackParams::for_params(&p), Mode::Check).unwrap();
    let exposed = report.exposed();
    assert!(exposed.len() > 50, "only {} exposed cells", exposed.len());
    // Schiermonnikoog's A0 year: A0+A1 minus A1 gives it exactly.
    let i = published
        .iter()
        .position(|c| {
            c.area.code() == "GM0088"
                && c.period == Period::Year(2025)
                && c.urgency == UrgencyGroup::A0
        })
        .unwrap();
    let f = report.findings.iter().find(|f| f.cell == i).unwrap();
    let n = stats[i].stats.n as f64;
    assert!(
        (f.intervals[0].lo - n).abs() < 1e-6 && (f.intervals[0].hi - n).abs() < 1e-6,
        "{f:?}"
    );
}

/// Next year's report, attacked together with this year's, unlocks nothing (no relation
/// connects two years).
#[test]
fn next_year_does_not_unlock_suppressed_cells() {
    let year = year_2025();
    let times26 = generate(&year.munis, 2026, 12);
    let next = suppress(&cells(&year.munis, 2026, &times26), &params(), 900, None);
    assert_not_fallback(&next, "2026");
    let report = attack_publications(
        &[&year.published, &next],
        None,
        &AttackParams::for_params(&params()),
        Mode::Check,
    )
    .unwrap();
    assert_safe(&report, "this year and next year together");
}

/// A re-run after late events: a few cells get more deployments; `previous` keeps this year's
/// suppressions; the attacker holding both publications (and knowing late events only add a few
/// deployments per cell) still pins nothing.
#[test]
fn late_events_do_not_unlock_suppressed_cells() {
    let year = year_2025();
    let (munis, stats, first) = (&year.munis, &year.stats, &year.published);
    let mut times = year.times.clone();

    // Late events: 1-3 extra deployments in 40 municipalities, quarter 4 (so the year moves too).
    let mut rng = StdRng::seed_from_u64(7);
    let mut changed = 0;
    for a in (0..munis.len()).step_by(munis.len() / 40) {
        for _ in 0..rng.random_range(1..=3u32) {
            let urgency = usize::from(rng.random::<f64>() >= 0.3);
            let t = rng.random_range(200..1400u32);
            for p in [0, 4] {
                times.entry((a, p, urgency)).or_default().push(t);
            }
            changed += 1;
        }
    }
    assert!(changed >= 40);
    let stats2 = cells(munis, 2025, &times);
    let moved: Vec<usize> = (0..stats.len())
        .filter(|&i| stats[i].stats.n != stats2[i].stats.n)
        .collect();
    assert!(!moved.is_empty());
    let max_added = moved
        .iter()
        .filter(|&&i| matches!(stats[i].area, Area::Municipality { .. }))
        .map(|&i| stats2[i].stats.n - stats[i].stats.n)
        .max()
        .unwrap();
    // Some of the moved cells are suppressed ones (the interesting case).
    assert!(moved.iter().any(|&i| first[i].suppressed.is_some()));
    let second = suppress(&stats2, &params(), 900, Some(first));
    assert_not_fallback(&second, "re-run");
    for (a, b) in first.iter().zip(&second) {
        if a.suppressed.is_some() {
            assert!(
                b.suppressed.is_some(),
                "sticky: {:?} {:?}",
                a.area,
                a.period
            );
        }
    }
    let attack_params = AttackParams::for_params(&params());
    let report = attack_publications(
        &[first, &second],
        Some(LateEvents {
            max_added: max_added as f64,
        }),
        &attack_params,
        Mode::Check,
    )
    .unwrap();
    assert_safe(&report, "re-run after late events");
}
