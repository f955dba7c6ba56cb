//! Acceptance of the municipality A0/A1 response-time report (issue #11): a generated national
//! year (2025, scaled) goes through the real Kafka broker with duplicates, reordering and late
//! events, the real binary ingests it into the real ClickHouse and publishes the report; every
//! published cell equals the figures this test computes on its own from the generator's events
//! (its own parsing of the reference tables, its own statistics), suppressed cells are present with
//! NULLs and a reason. And: the read-only BI user can read the public database and nothing else.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use chrono::{Datelike, TimeZone};
use dispatch_ingest::enrich::reference::Reference;
use dispatch_ingest::event::{DispatchEvent, Payload, UnitType, Urgency};
use dispatch_ingest::generate::mmt::{with_noise, Noise};
use dispatch_ingest::generate::national::{national_year, scaled, Plan};

use common::TestEnv;

const YEAR: i32 = 2025;
const SCALE: f64 = 0.04;

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The test's own reading of the reference CSVs: today's municipality -> region, and successors.
fn layout() -> (
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
struct Truth {
    n: u64,
    mean: f64,
    median: f64,
    p90: f64,
    p95: f64,
    within: u64,
}

fn truth_of(times: &[u64]) -> Truth {
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
type Key = (u8, String, String);

/// The report computed from the generator's events by this test: cells and exclusions.
fn expected(events: &[DispatchEvent]) -> (HashMap<Key, Truth>, HashMap<(String, String), u64>) {
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
        if local.year() != YEAR {
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

async fn json_rows(env: &TestEnv, sql: &str) -> Vec<serde_json::Value> {
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

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_report_equals_the_figures_computed_from_the_generated_year() {
    let mut env = TestEnv::new("muni").await;
    let public = format!("{}_public", env.database);
    env.set_env("DISPATCH_INGEST__REPORT__PUBLIC_DATABASE", &public);
    // The figures are checked on a small sample (scale 0.04), where complementary suppression
    // would rightly leave almost nothing published; primary-only keeps the comparison meaningful.
    // Complementary suppression and its attack are tested in tests/suppression_attack.rs.
    env.set_env("DISPATCH_INGEST__REPORT__SUPPRESSION", "primary-only");
    env.run_cli(&["migrate"]);
    let reference = Reference::load(&repo().join("config/reference")).unwrap();
    let spec = scaled(&national_year(YEAR).unwrap(), SCALE);
    let plan = Plan::new(spec, 17, &reference);
    let mut events: Vec<DispatchEvent> = (0..plan.days()).flat_map(|d| plan.day(d)).collect();
    // Only the A0/A1 incidents matter to the report; keep the other urgencies of January as
    // noise the report must leave out, to keep the test's volume down.
    let calls: HashMap<String, (Urgency, i64)> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Call { urgency, .. } => Some((
                e.envelope.incident_id.clone(),
                (*urgency, e.envelope.occurred_at_ms),
            )),
            _ => None,
        })
        .collect();
    let january_end = 1_738_364_400_000; // 2025-02-01 00:00 Amsterdam
    events.retain(|e| {
        let (u, t) = &calls[&e.envelope.incident_id];
        matches!(u, Urgency::A0 | Urgency::A1) || *t < january_end
    });
    // Calls placed in Brielle (merged into Voorne aan Zee in 2023) count for Voorne aan Zee.
    let mut moved = 0;
    for e in events.iter_mut() {
        if let Payload::Call {
            municipality_code, ..
        } = &mut e.payload
        {
            if municipality_code == "GM1992" && moved < 20 {
                *municipality_code = "GM0501".into();
                moved += 1;
            }
        }
    }
    assert!(moved > 0);
    let (truth, excluded) = expected(&events);
    for reason in [
        "no_counting_arrival",
        "arrival_before_call",
        "implausible_time",
    ] {
        assert!(
            excluded.contains_key(&(reason.to_string(), "A0+A1".to_string())),
            "the generated year has no {reason}"
        );
    }

    // Late events: a share of alerts and arrivals held back until after a first publication.
    let mut late = Vec::new();
    let mut early = Vec::new();
    for (i, e) in events.iter().enumerate() {
        if matches!(e.payload, Payload::OnScene { .. } | Payload::Alert { .. }) && i % 53 == 0 {
            late.push(e.clone());
        } else {
            early.push(e.clone());
        }
    }
    let early_distinct = early.len() as u64;
    let noisy = with_noise(
        early,
        Noise {
            duplicates: 0.02,
            shuffle_window: 2_000,
            late: 0.01,
        },
        5,
    );
    env.produce_events(&noisy).await;
    let mut svc = env.spawn_service("muni");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.wait_for_events(early_distinct, Duration::from_secs(400))
        .await;
    let out = env.run_cli(&["report", "municipalities", "--year", "2025", "--publish"]);
    assert!(out.contains("published 5520 cells"), "{out}");
    let table = format!("{public}.municipality_response_times");
    let first_suppressed: HashSet<(u64, String, String)> = json_rows(
        &env,
        &format!("SELECT quarter, area_code, urgency FROM {table} WHERE suppressed = 1"),
    )
    .await
    .iter()
    .map(|r| {
        (
            r["quarter"].as_u64().unwrap(),
            r["area_code"].as_str().unwrap().to_string(),
            r["urgency"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    assert!(!first_suppressed.is_empty());

    // The late events (and duplicates of some) arrive; the report converges.
    let mut again = late.clone();
    again.extend(late.iter().step_by(3).cloned());
    env.produce_events(&again).await;
    env.wait_for_events(events.len() as u64, Duration::from_secs(300))
        .await;
    svc.stop();
    let out = env.run_cli(&["report", "municipalities", "--year", "2025", "--publish"]);
    assert!(out.contains("published 5520 cells"), "{out}");

    let rows = json_rows(
        &env,
        &format!("SELECT * FROM {table} WHERE year = 2025 ORDER BY quarter, urgency, area_level, area_code"),
    )
    .await;
    assert_eq!(rows.len(), truth.len(), "one row per cell");
    let mut published = 0;
    let mut suppressed = 0;
    let mut withheld = 0;
    for r in &rows {
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
        assert!(
            !first_suppressed.contains(&(key.0 as u64, key.1.clone(), key.2.clone())),
            "{key:?}: suppressed in the first publication, unlocked in the second"
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
    // Every cell below the minimum is suppressed; the small islands give small cells.
    for (key, t) in &truth {
        if t.n < 10 {
            let r = rows
                .iter()
                .find(|r| {
                    r["quarter"] == key.0
                        && r["area_code"] == key.1.as_str()
                        && r["urgency"] == key.2.as_str()
                })
                .unwrap();
            assert_eq!(r["suppressed"], 1, "{key:?} has {} deployments", t.n);
        }
    }
    for small in ["GM0088", "GM0096", "GM0277"] {
        let t = &truth[&(0, small.to_string(), "A0+A1".to_string())];
        assert!(t.n < 10, "{small}: {} deployments", t.n);
    }
    assert!(
        published > 1000 && suppressed > 100 && withheld > 0,
        "{published} {suppressed} {withheld}"
    );
    let nl = &truth[&(0, "NL".to_string(), "A1".to_string())];
    println!(
        "municipality report {YEAR} at scale {SCALE}: {} cells, {published} published ({withheld} without percentiles), {suppressed} suppressed; A1 national n {} mean {:.0} s p95 {} s",
        rows.len(),
        nl.n,
        nl.mean,
        nl.p95
    );
    // Exclusions per reason, as computed here.
    let excl = json_rows(
        &env,
        &format!("SELECT reason, urgency, incidents FROM {public}.municipality_response_exclusions WHERE year = 2025"),
    )
    .await;
    let got: HashMap<(String, String), u64> = excl
        .iter()
        .map(|r| {
            (
                (
                    r["reason"].as_str().unwrap().to_string(),
                    r["urgency"].as_str().unwrap().to_string(),
                ),
                r["incidents"].as_u64().unwrap(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(got, excluded);

    // Re-publishing is idempotent.
    env.run_cli(&["report", "municipalities", "--year", "2025", "--publish"]);
    let again = json_rows(
        &env,
        &format!("SELECT * FROM {table} WHERE year = 2025 ORDER BY quarter, urgency, area_level, area_code"),
    )
    .await;
    assert_eq!(again, rows);

    // The reports for people: CSV one row per cell, Markdown for one region and quarter.
    let csv = env.run_cli(&[
        "report",
        "municipalities",
        "--year",
        "2025",
        "--format",
        "csv",
    ]);
    assert_eq!(csv.lines().count(), 1 + rows.len());
    assert!(csv
        .lines()
        .any(|l| l.contains(";GM0088;") && l.ends_with("te weinig inzetten")));
    let md = env.run_cli(&[
        "report",
        "municipalities",
        "--year",
        "2025",
        "--region",
        "VR09",
        "--quarter",
        "3",
    ]);
    assert!(
        md.contains("2025-Q3") && md.contains("Veiligheidsregio VR09"),
        "{md}"
    );
    env.run_cli(&[
        "report",
        "municipalities",
        "--year",
        "2025",
        "--format",
        "json",
    ]);
    // The page with the map: one shape per municipality.
    let page = env
        .log_dir
        .join(format!("{}-municipalities-2025.html", env.id));
    env.run_cli(&[
        "report",
        "municipalities",
        "--year",
        "2025",
        "--format",
        "html",
        "--out",
        page.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<path class=\"gemeente").count(), 342);
    env.clickhouse()
        .query(&format!("DROP DATABASE IF EXISTS {public}"))
        .execute()
        .await
        .unwrap();
    env.cleanup().await;
}

/// The read-only BI user `bi_public` (deploy/local/clickhouse.sh's users.xml on 18.16; SQL in
/// deploy/clickhouse/bi_public.sql for 24.x+) reads the published report and is refused the raw
/// events and the rollups. On a private server, since the shared one's users.xml may predate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bi_user_reads_the_publication_and_nothing_else() {
    let server = common::servers::PrivateServer::clickhouse();
    server.up();
    let env = TestEnv::with_servers("bi", &common::kafka_bootstrap(), &server.url()).await;
    env.run_cli(&["migrate"]);
    // An empty year: every cell present, every cell suppressed.
    let out = env.run_cli(&["report", "municipalities", "--year", "2025", "--publish"]);
    assert!(
        out.contains("to dispatch_public.municipality_response_times"),
        "{out}"
    );
    let bi = clickhouse::Client::default()
        .with_url(server.url())
        .with_user("bi_public")
        .with_database("dispatch_public")
        .with_validation(false);
    let cells: u64 = bi
        .query("SELECT count() FROM dispatch_public.municipality_response_times WHERE year = 2025")
        .fetch_one()
        .await
        .expect("bi_public reads the publication");
    assert_eq!(cells, 5520);
    let suppressed: u64 = bi
        .query("SELECT count() FROM municipality_response_times WHERE suppressed = 1 AND deployments IS NULL")
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(suppressed, cells);
    let db = &env.database;
    for table in [
        "dispatch_events",
        "response_units",
        "unit_alerts",
        "incident_facts",
        "mmt_calls",
        "mmt_factsheet_year",
        "schema_migrations",
    ] {
        // The default user reads it: the refusal below is the BI user's, not a missing table.
        let _: u64 = env
            .clickhouse()
            .query(&format!("SELECT count() FROM {db}.{table}"))
            .fetch_one()
            .await
            .unwrap_or_else(|e| panic!("default user reads {db}.{table}: {e}"));
        let err = bi
            .query(&format!("SELECT count() FROM {db}.{table}"))
            .fetch_one::<u64>()
            .await
            .expect_err(&format!("bi_public must not read {db}.{table}"));
        // 18.16: "Access denied to database"; 24.x+: "Not enough privileges".
        let e = err.to_string();
        assert!(
            e.contains("Access denied to database") || e.contains("Not enough privileges"),
            "{table}: {err}"
        );
    }
    // Read-only: no writes, not even to the publication.
    let err = bi
        .query("INSERT INTO dispatch_public.municipality_response_exclusions VALUES (1999, 'x', 'A1', 1)")
        .execute()
        .await
        .expect_err("bi_public must not write");
    assert!(err.to_string().contains("readonly"), "{err}");
    bi.query("DROP TABLE dispatch_public.municipality_response_times")
        .execute()
        .await
        .expect_err("bi_public must not drop");
    env.cleanup().await;
}
