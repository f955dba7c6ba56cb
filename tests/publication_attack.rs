//! The attack on the municipality report as it is published (issue #11, docs/suppression.md):
//! a generated national year (2025, full scale: about 725,000 A0/A1 deployments) is enriched and
//! written into the real ClickHouse, the real binary publishes the report with the default
//! (complementary) suppression into the public database, and the test reads every published
//! table back from there, as a BI user would, and plays the attacker on it: for every suppressed
//! cell it solves for the smallest and largest count, count within 15 minutes and sum of
//! response times consistent with everything published (`attack::attack`). No suppressed cell
//! may be narrowed below k. Every published cell equals the test's own figures from the
//! generator's events. A primary-only publication of the same year, read back the same way, is
//! broken by the same attack: the test can fail.
//!
//! In the suite the rows go into ClickHouse directly: a full national year through the broker
//! takes too long for it, and on a small sample complementary suppression rightly publishes
//! almost nothing (it falls back to suppressing every cell), which would leave the attacker
//! nothing to attack. The suite's path through Kafka, with duplicates, reordering and late
//! events, is `municipality_report.rs` (a 4% sample). With `PUBLICATION_ATTACK_THROUGH_KAFKA=1`
//! this test sends the national year through the broker and the service instead (by hand: it
//! takes much longer); everything it checks stays the same.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dispatch_ingest::enrich::reference::Reference;
use dispatch_ingest::enrich::{to_row, Enricher, Meta};
use dispatch_ingest::event::{DispatchEvent, Payload, SourcePosition, Urgency, WireFormat};
use dispatch_ingest::generate::mmt::{with_noise, Noise};
use dispatch_ingest::generate::national::{national_year, Plan};
use dispatch_ingest::report::municipalities::attack::{attack, AttackParams, AttackReport, Mode};
use dispatch_ingest::report::municipalities::model::{
    Area, Cell, SuppressionParams, SuppressionReason,
};
use dispatch_ingest::report::municipalities::publish::read_publication;
use dispatch_ingest::sink::Sink;

use common::municipal::{check_rows, expected, json_rows, repo, Checked};
use common::TestEnv;

const YEAR: i32 = 2025;

/// The calls, alerts and arrivals of the year's A0/A1 incidents: what the response times are
/// made of (the other urgencies and streams are tested elsewhere and would only add volume).
fn a0_a1_events(plan: &Plan) -> Vec<DispatchEvent> {
    let mut urgency: HashMap<String, Urgency> = HashMap::new();
    let mut out = Vec::new();
    for d in 0..plan.days() {
        for e in plan.day(d) {
            if let Payload::Call { urgency: u, .. } = &e.payload {
                urgency.insert(e.envelope.incident_id.clone(), *u);
            }
            let wanted = matches!(
                e.payload,
                Payload::Call { .. } | Payload::Alert { .. } | Payload::OnScene { .. }
            ) && matches!(
                urgency.get(&e.envelope.incident_id),
                Some(Urgency::A0 | Urgency::A1)
            );
            if wanted {
                out.push(e);
            }
        }
    }
    out
}

/// Into ClickHouse as the pipeline writes them: enriched rows, batch by batch.
async fn insert_enriched(
    config: &dispatch_ingest::config::Config,
    sink: &Sink,
    events: &[DispatchEvent],
) {
    let enricher = Enricher::from_config(&config.enrich).unwrap();
    let ingested_at = dispatch_ingest::clock::now_secs();
    for (b, batch) in events.chunks(200_000).enumerate() {
        let rows: Vec<_> = batch
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let position = SourcePosition {
                    topic: format!("pubattack.{}", e.stream().name()),
                    partition: 0,
                    offset: (b * 200_000 + i) as i64,
                };
                let meta = Meta {
                    position: &position,
                    format: WireFormat::Json,
                    schema_id: None,
                    ingested_at,
                };
                to_row(e, &meta, &enricher)
            })
            .collect();
        sink.insert(&rows, Duration::from_secs(300)).await.unwrap();
    }
}

/// Publish the year with the binary into `public` and read every published table back.
async fn publish_and_read(env: &mut TestEnv, sink: &Sink, public: &str, mode: &str) -> Vec<Cell> {
    env.set_env("DISPATCH_INGEST__REPORT__PUBLIC_DATABASE", public);
    env.set_env("DISPATCH_INGEST__REPORT__SUPPRESSION", mode);
    let started = Instant::now();
    let out = env.run_cli(&["report", "municipalities", "--year", "2025", "--publish"]);
    println!(
        "{mode}: published in {:.1} s: {}",
        started.elapsed().as_secs_f64(),
        out.lines().last().unwrap_or_default()
    );
    let read = read_publication(sink, public, YEAR)
        .await
        .unwrap_or_else(|e| panic!("{public}: {e}"));
    assert!(read.publication.is_some(), "{public}: no publication row");
    assert!(!read.exclusions.is_empty(), "{public}: no exclusions");
    read.cells
}

fn attack_of(cells: &[Cell]) -> AttackReport {
    let params = SuppressionParams {
        min_deployments: 10,
        min_deployments_percentiles: 20,
    };
    let started = Instant::now();
    let report = attack(cells, &AttackParams::for_params(&params), Mode::Check).unwrap();
    println!(
        "attack: {} suppressed cells, {} components (largest {}), {} linear programs, {:.1} s",
        report.findings.len(),
        report.components,
        report.largest_component,
        report.programs,
        started.elapsed().as_secs_f64()
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_published_national_year_read_back_resists_the_attack() {
    let mut env = TestEnv::new("pubattack").await;
    env.run_cli(&["migrate"]);
    let config = env.config();
    let reference = Reference::load(&repo().join("config/reference")).unwrap();
    let plan = Plan::new(national_year(YEAR).unwrap(), 29, &reference);
    let events = a0_a1_events(&plan);
    let (truth, _) = expected(&events, YEAR);
    let national = &truth[&(0, "NL".to_string(), "A0+A1".to_string())];
    assert!(
        (650_000..800_000).contains(&national.n),
        "a national year has about 725,000 A0/A1 deployments, not {}",
        national.n
    );

    let sink = Sink::connect(&config.clickhouse).await.unwrap();
    let started = Instant::now();
    if std::env::var("PUBLICATION_ATTACK_THROUGH_KAFKA").is_ok_and(|v| v == "1") {
        // By hand only (too slow for the suite): the year through the broker and the service,
        // with 2% duplicates, shuffled within windows of 2,000 and 1% sent late.
        let noisy = with_noise(
            events.clone(),
            Noise {
                duplicates: 0.02,
                shuffle_window: 2_000,
                late: 0.01,
            },
            5,
        );
        env.produce_events(&noisy).await;
        println!(
            "{} records produced in {:.1} s",
            noisy.len(),
            started.elapsed().as_secs_f64()
        );
        let mut svc = env.spawn_service("pubattack");
        svc.wait_healthy(Duration::from_secs(60)).await;
        env.wait_for_events(events.len() as u64, Duration::from_secs(3600))
            .await;
        svc.stop();
    } else {
        insert_enriched(&config, &sink, &events).await;
    }
    println!(
        "{} events of {} A0/A1 deployments in ClickHouse after {:.1} s",
        events.len(),
        national.n,
        started.elapsed().as_secs_f64()
    );

    // The default publication: complementary suppression.
    let public = format!("{}_public", env.database);
    let cells = publish_and_read(&mut env, &sink, &public, "complementary").await;
    let rows = json_rows(
        &env,
        &format!(
            "SELECT * FROM {public}.municipality_response_times WHERE year = 2025 \
             ORDER BY quarter, urgency, area_level, area_code"
        ),
    )
    .await;
    assert_eq!(rows.len(), truth.len(), "one row per cell");
    let Checked {
        published,
        suppressed,
        ..
    } = check_rows(&rows, &truth);
    assert_eq!(cells.len(), rows.len(), "the reader sees every row");
    let municipal_published = cells
        .iter()
        .filter(|c| matches!(c.area, Area::Municipality { .. }) && c.suppressed.is_none())
        .count();
    assert!(
        municipal_published > 1000,
        "only {municipal_published} municipality cells published: the suppression fell back to \
         suppressing everything instead of finishing"
    );
    let small = truth.values().filter(|t| t.n < 10).count();
    assert!(
        small > 100 && suppressed > small,
        "{small} cells below k, {suppressed} suppressed: complementary suppression adds cells"
    );
    assert!(cells
        .iter()
        .all(|c| matches!(c.suppressed, None | Some(SuppressionReason::Suppressed))));
    let report = attack_of(&cells);
    assert_eq!(report.findings.len(), suppressed);
    let exposed = report.exposed();
    assert!(
        exposed.is_empty(),
        "the attacker narrows {} of {suppressed} suppressed cells down from the published \
         tables, e.g. {:?}",
        exposed.len(),
        exposed.iter().take(5).collect::<Vec<_>>()
    );
    println!(
        "complementary: {} cells, {published} published, {suppressed} suppressed ({small} below k); no suppressed cell narrowed",
        cells.len()
    );

    // The same year with primary suppression only, read back the same way: broken.
    let primary = format!("{}_primary", env.database);
    let cells = publish_and_read(&mut env, &sink, &primary, "primary-only").await;
    let report = attack_of(&cells);
    let exposed = report.exposed().len();
    assert!(
        exposed > 50,
        "primary-only should be broken by differencing; the attacker narrowed only {exposed}"
    );
    println!("primary-only: the attacker narrows {exposed} suppressed cells down");

    for db in [&public, &primary] {
        env.clickhouse()
            .query(&format!("DROP DATABASE IF EXISTS {db}"))
            .execute()
            .await
            .unwrap();
    }
    env.cleanup().await;
}
