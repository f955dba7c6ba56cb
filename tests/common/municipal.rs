//! The municipality report's figures computed by the tests on their own, from the generator's
//! events (their own reading of the reference tables, their own statistics), and the check of
//! published rows against them. Shared by `municipality_report.rs` and `publication_attack.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, TimeZone};
use dispatch_ingest::event::{DispatchEvent, Payload, UnitType, Urgency};

use super::TestEnv;

pub fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The test's own reading of the reference CSVs: today's municipality -> region, and successors.
pub fn layout() -> (
    BTreeMap<String, String>,
    Vec<String>,
    HashMap<String, String>,
) {
    let text = std::fs::read_to_string(repo().join("config/reference/municipalities.csv")).unwrap();
    let mut region_of = BTreeMap::new();
    for line in text.lines().skip(1) {
        // code,name,region_code,valid_from,valid_to (a name may hold a quoted comma).
        let f: Vec<&str> = line.rsplitn(4, ',').collect();
        let code = line.split(',').next().unwrap();
        if f[0].trim().is_empty() {
            region_of.insert(code.to_string(), f[2].to_string());
        }
    }
    let regions: Vec<String> = (1..=25).map(|i| format!("VR{i:02}")).collect();
    let text = std::fs::read_to_string(repo().join("config/reference/successors.csv")).unwrap();
    let successors = text
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect();
    (region_of, regions, successors)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub n: u64,
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub p95: f64,
    pub within: u64,
}

pub fn truth_of(times: &[u64]) -> Truth {
    let mut t = times.to_vec();
    t.sort();
    let n = t.len();
    if n == 0 {
        return Truth {
            n: 0,
            mean: 0.0,
            median: 0.0,
            p90: 0.0,
            p95: 0.0,
            within: 0,
        };
    }
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    let nearest = |p: f64| {
        let mut k = 0;
        while ((k + 1) as f64 / n as f64) < p - 1e-12 {
            k += 1;
        }
        t[k] as f64
    };
    let median = if n % 2 == 1 {
        t[n / 2] as f64
    } else {
        (t[n / 2 - 1] as f64 + t[n / 2] as f64) / 2.0
    };
    Truth {
        n: n as u64,
        mean: t.iter().sum::<u64>() as f64 / n as f64,
        median,
        p90: nearest(0.90),
        p95: nearest(0.95),
        within: t.iter().filter(|x| **x <= 15 * 60).count() as u64,
    }
}

/// Key of a cell: (quarter 0-4, area code, urgency label).
pub type Key = (u8, String, String);

/// The report computed from the generator's events by this test: cells and exclusions.
pub fn expected(
    events: &[DispatchEvent],
    year: i32,
) -> (HashMap<Key, Truth>, HashMap<(String, String), u64>) {
    let (region_of, regions, successors) = layout();
    struct Inc {
        call: Option<(i64, Urgency, String)>,
        counting: HashSet<String>,
        arrivals: Vec<(String, i64)>,
    }
    let mut incidents: HashMap<String, Inc> = HashMap::new();
    for e in events {
        let inc = incidents
            .entry(e.envelope.incident_id.clone())
            .or_insert(Inc {
                call: None,
                counting: HashSet::new(),
                arrivals: Vec::new(),
            });
        match &e.payload {
            Payload::Call {
                urgency,
                municipality_code,
                ..
            } => {
                inc.call = Some((
                    e.envelope.occurred_at_ms,
                    *urgency,
                    municipality_code.clone(),
                ))
            }
            Payload::Alert {
                unit_id,
                unit_type: UnitType::AlsAmbulance | UnitType::RapidResponder,
                ..
            } => {
                inc.counting.insert(unit_id.clone());
            }
            Payload::OnScene { unit_id } => inc
                .arrivals
                .push((unit_id.clone(), e.envelope.occurred_at_ms)),
            _ => {}
        }
    }
    let mut times: HashMap<Key, Vec<u64>> = HashMap::new();
    let mut excluded: HashMap<(String, String), u64> = HashMap::new();
    for inc in incidents.values() {
        let Some((call, urgency, code)) = &inc.call else {
            continue;
        };
        if !matches!(urgency, Urgency::A0 | Urgency::A1) {
            continue;
        }
        let local = chrono_tz::Europe::Amsterdam
            .timestamp_millis_opt(*call)
            .unwrap();
        if local.year() != year {
            continue;
        }
        let quarter = (local.month0() / 3 + 1) as u8;
        let mut code = code.clone();
        while let Some(s) = successors.get(&code) {
            code = s.clone();
        }
        let first = inc
            .arrivals
            .iter()
            .filter(|(u, _)| inc.counting.contains(u))
            .map(|(_, t)| *t)
            .min();
        let reason = match first {
            None => Some("no_counting_arrival"),
            Some(t) if t < *call => Some("arrival_before_call"),
            Some(t) if (t - call) / 1000 > 7200 => Some("implausible_time"),
            _ => None,
        };
        let reason = if region_of.contains_key(&code) {
            reason
        } else {
            Some("unknown_municipality")
        };
        if let Some(r) = reason {
            *excluded.entry((r.into(), urgency.to_string())).or_default() += 1;
            *excluded.entry((r.into(), "A0+A1".into())).or_default() += 1;
            continue;
        }
        let seconds = ((first.unwrap() - call) / 1000) as u64;
        let region = region_of[&code].clone();
        for area in [code.clone(), region, "NL".to_string()] {
            for q in [0, quarter] {
                for u in [urgency.to_string(), "A0+A1".to_string()] {
                    times.entry((q, area.clone(), u)).or_default().push(seconds);
                }
            }
        }
    }
    let mut cells = HashMap::new();
    let areas: Vec<String> = std::iter::once("NL".to_string())
        .chain(regions)
        .chain(region_of.keys().cloned())
        .collect();
    for q in 0..=4u8 {
        for area in &areas {
            for u in ["A0", "A1", "A0+A1"] {
                let key = (q, area.clone(), u.to_string());
                let t = truth_of(times.get(&key).map(Vec::as_slice).unwrap_or(&[]));
                cells.insert(key, t);
            }
        }
    }
    (cells, excluded)
}

pub async fn json_rows(env: &TestEnv, sql: &str) -> Vec<serde_json::Value> {
    let bytes = env
        .clickhouse()
        .with_setting("output_format_json_quote_64bit_integers", "0")
        .query(sql)
        .fetch_bytes("JSONEachRow")
        .unwrap()
        .collect()
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Counts of a checked publication: cells published, suppressed, published without percentiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub published: usize,
    pub suppressed: usize,
    pub withheld: usize,
}

/// Check every row of `municipality_response_times` against the test's own figures: a
/// suppressed row has NULLs and a reason, a published row has at least 10 deployments and the
/// exact figures (percentiles from 20), a region's A1 row the norm check.
pub fn check_rows(rows: &[serde_json::Value], truth: &HashMap<Key, Truth>) -> Checked {
    let mut published = 0;
    let mut suppressed = 0;
    let mut withheld = 0;
    for r in rows {
        let key = (
            r["quarter"].as_u64().unwrap() as u8,
            r["area_code"].as_str().unwrap().to_string(),
            r["urgency"].as_str().unwrap().to_string(),
        );
        let t = truth
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected cell {key:?}"));
        let f = |k: &str| r[k].as_f64();
        if r["suppressed"] == 1 {
            suppressed += 1;
            for k in [
                "deployments",
                "mean_seconds",
                "median_seconds",
                "p90_seconds",
                "p95_seconds",
                "share_within_15",
            ] {
                assert!(r[k].is_null(), "{key:?}: suppressed but {k} = {}", r[k]);
            }
            let reason = r["suppression_reason"].as_str().unwrap_or_default();
            assert!(
                reason == "too_few_deployments"
                    || reason == "complementary"
                    || reason == "suppressed",
                "{key:?}: reason {reason:?}"
            );
            assert!(!r["suppression_reason_nl"].is_null());
            continue;
        }
        published += 1;
        assert!(
            t.n >= 10,
            "{key:?}: published with {} deployments (minimum 10)",
            t.n
        );
        assert_eq!(r["deployments"].as_u64(), Some(t.n), "{key:?}");
        assert!(
            close(f("mean_seconds").unwrap(), t.mean),
            "{key:?}: mean {r} vs {t:?}"
        );
        assert!(
            close(f("share_within_15").unwrap(), t.within as f64 / t.n as f64),
            "{key:?}: share {r} vs {t:?}"
        );
        if r["percentiles_withheld"] == 1 {
            withheld += 1;
            assert!(t.n < 20, "{key:?}");
            assert!(r["median_seconds"].is_null() && r["p95_seconds"].is_null());
        } else {
            assert!(t.n >= 20, "{key:?}");
            assert_eq!(f("median_seconds"), Some(t.median), "{key:?}");
            assert_eq!(f("p90_seconds"), Some(t.p90), "{key:?}");
            assert_eq!(f("p95_seconds"), Some(t.p95), "{key:?}");
        }
        if r["area_level"] == "region" && key.2 == "A1" {
            assert_eq!(
                r["meets_norm"].as_u64(),
                Some(u64::from(t.within * 100 >= t.n * 95)),
                "{key:?}"
            );
        } else {
            assert!(r["meets_norm"].is_null(), "{key:?}");
        }
    }
    Checked {
        published,
        suppressed,
        withheld,
    }
}
