//! Acceptance of the municipality A0/A1 response-time report (issue #11): a generated national
//! year (2025, scaled) goes through the real Kafka broker with duplicates, reordering and late
//! events, the real binary ingests it into the real ClickHouse and publishes the report; every
//! published cell equals the figures this test computes on its own from the generator's events
//! (its own parsing of the reference tables, its own statistics), suppressed cells are present with
//! NULLs and a reason. And: the read-only BI user can read the public database and nothing else.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use dispatch_ingest::enrich::reference::Reference;
use dispatch_ingest::event::{DispatchEvent, Payload, Urgency};
use dispatch_ingest::generate::mmt::{with_noise, Noise};
use dispatch_ingest::generate::national::{national_year, scaled, Plan};

use common::municipal::{check_rows, expected, json_rows, repo, Checked};
use common::TestEnv;

const YEAR: i32 = 2025;
const SCALE: f64 = 0.04;

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
    let (truth, excluded) = expected(&events, YEAR);
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
    let Checked {
        published,
        suppressed,
        withheld,
    } = check_rows(&rows, &truth);
    for r in &rows {
        let key = (
            r["quarter"].as_u64().unwrap(),
            r["area_code"].as_str().unwrap().to_string(),
            r["urgency"].as_str().unwrap().to_string(),
        );
        assert!(
            r["suppressed"] == 1 || !first_suppressed.contains(&key),
            "{key:?}: suppressed in the first publication, unlocked in the second"
        );
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
