//! Acceptance: the MMT factsheet 2023-2024 regenerated from a stream. The calibrated generator
//! produces both years through the real Kafka broker with duplicates, reordering and late events;
//! the pipeline ingests them into the real ClickHouse server; `report factsheet` reproduces the
//! factsheet's counts exactly and its percentages to the decimal it prints.

mod common;

use std::time::Duration;

use dispatch_ingest::enrich::reference::Reference;
use dispatch_ingest::generate::mmt::{mmt_year, with_noise, Noise, FACTSHEET};

use common::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factsheet_2023_2024_is_reproduced_from_a_noisy_stream() {
    let env = TestEnv::new("factsheet").await;
    env.run_cli(&["migrate"]);
    let reference =
        Reference::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference"))
            .unwrap();
    let mut events = Vec::new();
    for spec in FACTSHEET {
        events.extend(mmt_year(&spec, 2025, &reference));
    }
    let distinct = events.len() as u64;
    let noisy = with_noise(
        events,
        Noise {
            duplicates: 0.02,
            shuffle_window: 2_000,
            late: 0.01,
        },
        3,
    );
    assert!(noisy.len() as u64 > distinct);
    env.produce_events(&noisy).await;
    let mut svc = env.spawn_service("factsheet");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.assert_validation_auto(&svc).await;
    env.wait_for_events(distinct, Duration::from_secs(600))
        .await;
    svc.stop();

    let mut per_year = Vec::new();
    for spec in FACTSHEET {
        let json = env.run_cli(&[
            "report",
            "factsheet",
            "--year",
            &spec.year.to_string(),
            "--format",
            "json",
        ]);
        let f: serde_json::Value = serde_json::from_str(&json).unwrap();
        let y = f["years"]
            .as_array()
            .unwrap()
            .iter()
            .find(|y| y["year"] == spec.year)
            .unwrap()
            .clone();
        let u = |k: &str| y[k].as_u64().unwrap();
        let p = |k: &str| y[k].as_f64().unwrap();
        // Counts exactly.
        assert_eq!(u("calls"), u64::from(spec.calls), "{}", spec.year);
        assert_eq!(
            u("deployments"),
            u64::from(spec.deployments),
            "{}",
            spec.year
        );
        assert_eq!(u("cancels"), u64::from(spec.calls - spec.deployments));
        // Percentages to the decimal the factsheet prints: 41,8% / 40,5% deployments; 71% / 77%
        // helicopter and 29% / 23% car; 92% primary; 53,6% / 53,5% trauma; 19,6% / 17,4% child;
        // 3,1% / 2,1% helicopter transport.
        let printed_deploy = if spec.year == 2023 { 41.8 } else { 40.5 };
        assert_eq!(p("deployment_pct"), printed_deploy);
        assert_eq!(p("helicopter_pct").round(), spec.helicopter_pct);
        assert_eq!(p("car_pct").round(), 100.0 - spec.helicopter_pct);
        assert_eq!(p("primary_pct").round(), spec.primary_pct);
        assert_eq!(p("trauma_pct"), spec.trauma_pct);
        assert_eq!(p("child_pct"), spec.child_pct);
        assert_eq!(p("helicopter_transport_pct"), spec.helicopter_transport_pct);
        // Months add up to the year; cancel reasons to the cancels shown.
        let months: u64 = f["months"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["year"] == spec.year)
            .map(|m| m["calls"].as_u64().unwrap())
            .sum();
        assert_eq!(months, u64::from(spec.calls));
        let stations: u64 = f["stations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["deployments"].as_u64().unwrap() + s["cancels"].as_u64().unwrap())
            .sum();
        assert_eq!(stations, u64::from(spec.calls));
        per_year.push((u("calls"), u("deployments")));
        println!(
            "factsheet {}: calls {}, deployments {} ({}%), helicopter {}%, primary {}%, trauma {}%, child {}%, helicopter transport {}%",
            spec.year,
            u("calls"),
            u("deployments"),
            p("deployment_pct"),
            p("helicopter_pct"),
            p("primary_pct"),
            p("trauma_pct"),
            p("child_pct"),
            p("helicopter_transport_pct")
        );
    }
    // "Gemiddeld 41 per dag" oproepen and "gemiddeld 17 per dag" inzetten over 2023-2024.
    let days = 365.0 + 366.0;
    let calls: u64 = per_year.iter().map(|y| y.0).sum();
    let deployments: u64 = per_year.iter().map(|y| y.1).sum();
    assert_eq!((calls as f64 / days).round(), 41.0);
    assert_eq!((deployments as f64 / days).round(), 17.0);
    // 18,6% child over both years, 53,5% trauma over both years, as the factsheet's headline.
    // The HTML report carries the four charts.
    let out = env.log_dir.join(format!("{}-factsheet-2024.html", env.id));
    env.run_cli(&[
        "report",
        "factsheet",
        "--year",
        "2024",
        "--format",
        "html",
        "--out",
        out.to_str().unwrap(),
    ]);
    let html = std::fs::read_to_string(&out).unwrap();
    assert_eq!(html.matches("<svg").count(), 4);
    assert!(html.contains("14.803") && html.contains("15.273"));
    // Issue #12 item 8: the page in a real browser (Debian's headless Chromium) loads without
    // console errors or exceptions and shows four rendered charts.
    let check = common::browser::check_page(&out, &[("figure > svg", 4)], &["figure > svg"]);
    assert!(check.passed, "{}\n{:#?}", check.stderr, check.summary);
    assert_eq!(check.count("figure > svg"), Some(4));
    // Every record accounted for.
    let audit = env.run_cli(&["audit"]);
    assert!(audit.contains("difference 0"), "{audit}");
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn national_stream_lands_with_its_calibrated_counts() {
    use dispatch_ingest::generate::national::{scaled, MEAN_A1, NATIONAL_2024};
    let env = TestEnv::new("national").await;
    env.run_cli(&["migrate"]);
    let out = env.run_cli(&[
        "generate",
        "national",
        "--scale",
        "0.002",
        "--seed",
        "4",
        "--malformed",
        "0.001",
    ]);
    let malformed: u64 = out
        .lines()
        .find(|l| l.starts_with("sent "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no malformed records reported: {out}"));
    assert!(malformed > 0);
    let spec = scaled(&NATIONAL_2024, 0.002);
    let mut svc = env.spawn_service("national");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.assert_validation_auto(&svc).await;
    let start = std::time::Instant::now();
    while env
        .scalar("SELECT uniqExact(event_id) FROM {db}.dispatch_events WHERE event_type = 'call'")
        .await
        < spec.deployments
    {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "calls did not land"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Wait for the malformed records on the DLQ, then stop.
    let dead = env.read_dlq(malformed as usize).await;
    assert!(dead
        .iter()
        .all(|d| d.1["dlq.error.kind"] == "malformed_avro"));
    svc.stop();
    let a0 = env
        .scalar("SELECT uniqExact(event_id) FROM {db}.dispatch_events WHERE event_type = 'call' AND urgency_vui = 'A0'")
        .await;
    let a1 = env
        .scalar("SELECT uniqExact(event_id) FROM {db}.dispatch_events WHERE event_type = 'call' AND urgency_vui = 'A1'")
        .await;
    assert_eq!((a0, a1), (spec.a0, spec.a1));
    let transports = env
        .scalar(
            "SELECT uniqExact(event_id) FROM {db}.dispatch_events WHERE event_type = 'transport'",
        )
        .await;
    assert_eq!(spec.deployments - transports, spec.mobile_care_consults);
    // Mean A1 response (call -> first on scene) near 10:13, over incidents with an arrival at a
    // plausible time (the generator also makes incidents without arrival and clock errors).
    let mean_a1: f64 = env
        .clickhouse()
        .query(&format!(
            "SELECT avg(s - c) FROM ( \
               SELECT incident_id, minIf(occurred_at_ms, event_type = 'call') AS c, \
                      minIf(occurred_at_ms, event_type = 'on_scene') AS s, \
                      countIf(event_type = 'on_scene') AS arrivals, \
                      maxIf(ifNull(urgency_vui, ''), event_type = 'call') AS u \
               FROM {}.dispatch_events GROUP BY incident_id \
               HAVING u = 'A1' AND arrivals > 0 AND s >= c AND s - c <= 7200000)",
            env.database
        ))
        .fetch_one()
        .await
        .unwrap();
    let mean_a1 = mean_a1 / 1000.0;
    assert!(
        (mean_a1 - MEAN_A1).abs() / MEAN_A1 < 0.05,
        "A1 mean {mean_a1} s"
    );
    println!(
        "national sample: {} deployments (A0 {a0}, A1 {a1}), {malformed} malformed dead-lettered, A1 mean {mean_a1:.0} s",
        spec.deployments
    );
    let audit = env.run_cli(&["audit"]);
    assert!(
        audit.contains(&format!("dead-lettered {malformed}, difference 0")),
        "{audit}"
    );
    env.cleanup().await;
}

/// The factsheet reads typed rows: a view that lost a column (an operator's hand-edited view, a
/// migration gone wrong) makes `report factsheet` fail naming the query, instead of printing the
/// missing indicator as 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factsheet_view_missing_a_column_is_an_error_not_a_zero() {
    let env = TestEnv::new("factsheet_column").await;
    env.run_cli(&["migrate"]);
    let db = &env.database;
    let ch = env.clickhouse();
    ch.query(&format!("DROP TABLE {db}.mmt_factsheet_year"))
        .execute()
        .await
        .unwrap();
    // The year is there (so the report does not stop at "no data"), `child_pct` is not.
    ch.query(&format!(
        "CREATE VIEW {db}.mmt_factsheet_year AS SELECT * FROM \
         (SELECT toUInt16(2024) AS year, toUInt64(10) AS calls)"
    ))
    .execute()
    .await
    .unwrap();
    let out = env
        .cli(&["report", "factsheet", "--year", "2024", "--format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the report succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("report query mmt_factsheet_year"),
        "the error does not name the query: {stderr}"
    );
    // The server names the first missing column it meets (which one differs between versions).
    let missing = [
        "calls_per_day",
        "deployments",
        "cancels",
        "child_pct",
        "ambulance_accompanied_deployments",
        "ambulance_accompanied_pct",
    ];
    assert!(
        missing.iter().any(|c| stderr.contains(c)),
        "the error does not name a missing column: {stderr}"
    );
    env.cleanup().await;
}
