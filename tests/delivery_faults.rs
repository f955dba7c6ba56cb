//! Delivery guarantees under faults, against real servers: kill -9 during ingestion, a ClickHouse
//! outage, a Kafka broker restart, a consumer-group rebalance, and out-of-order late delivery.
//! Each scenario sends a known stream and checks every rollup against the ground truth computed
//! from the events themselves, runs `dispatch-ingest audit`, and prints
//! `events sent N, inserted N, dead-lettered N, difference 0`.
//!
//! The test names start with `fault_`; deploy/local/test.sh runs them apart, with their output.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use dispatch_ingest::event::DispatchEvent;
use dispatch_ingest::generate::{sample_events, SampleOptions};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use common::servers::PrivateServer;
use common::TestEnv;

fn workload(seed: u64, incidents: u32) -> Vec<DispatchEvent> {
    sample_events(&SampleOptions {
        incidents,
        seed,
        start_ms: dispatch_ingest::clock::now_ms() - 20 * 3600 * 1000,
        spacing_ms: 1_000,
    })
}

/// Rollups that must not depend on delivery: distinct events per stream, collapsed row count,
/// and the incident-level response time (first on-scene minus call), summed.
#[derive(Debug, PartialEq, Eq)]
struct Rollups {
    per_stream: BTreeMap<String, u64>,
    final_rows: u64,
    incidents_with_response: u64,
    response_ms_sum: i64,
}

fn ground_truth(events: &[DispatchEvent]) -> Rollups {
    let per_stream = common::per_stream(events);
    let mut calls: BTreeMap<&str, i64> = BTreeMap::new();
    let mut first_on_scene: BTreeMap<&str, i64> = BTreeMap::new();
    for e in events {
        let id = e.envelope.incident_id.as_str();
        let t = e.envelope.occurred_at_ms;
        match e.stream() {
            dispatch_ingest::event::Stream::Call => {
                calls.insert(id, t);
            }
            dispatch_ingest::event::Stream::OnScene => {
                let v = first_on_scene.entry(id).or_insert(t);
                *v = (*v).min(t);
            }
            _ => {}
        }
    }
    let mut n = 0;
    let mut sum = 0;
    for (id, c) in &calls {
        if let Some(s) = first_on_scene.get(id) {
            n += 1;
            sum += s - c;
        }
    }
    Rollups {
        per_stream,
        final_rows: events.len() as u64,
        incidents_with_response: n,
        response_ms_sum: sum,
    }
}

async fn rollups(env: &TestEnv) -> Rollups {
    let (incidents, sum): (u64, i64) = env
        .clickhouse()
        .query(&format!(
            "SELECT count(), sum(s - c) FROM ( \
               SELECT incident_id, minIf(occurred_at_ms, event_type = 'call') AS c, \
                      minIf(occurred_at_ms, event_type = 'on_scene') AS s \
               FROM {}.dispatch_events GROUP BY incident_id \
               HAVING countIf(event_type = 'call') > 0 AND countIf(event_type = 'on_scene') > 0)",
            env.database
        ))
        .fetch_one()
        .await
        .unwrap();
    Rollups {
        per_stream: env.landed_per_stream().await,
        final_rows: env
            .scalar("SELECT count() FROM {db}.dispatch_events FINAL")
            .await,
        incidents_with_response: incidents,
        response_ms_sum: sum,
    }
}

/// Check rollups and the audit; print the account line.
async fn account(env: &TestEnv, scenario: &str, events: &[DispatchEvent]) {
    let truth = ground_truth(events);
    let got = rollups(env).await;
    assert_eq!(
        got, truth,
        "{scenario}: rollups differ from the ground truth"
    );
    let audit = env.run_cli(&["audit"]);
    let last = audit.lines().last().unwrap_or_default().to_string();
    assert!(
        last.contains("dead-lettered 0, difference 0"),
        "{scenario}: audit:\n{audit}"
    );
    let rows = env.scalar("SELECT count() FROM {db}.dispatch_events").await;
    println!(
        "{scenario}: events sent {}, inserted {} ({} rows before collapsing redeliveries), dead-lettered {}, difference {}",
        events.len(),
        got.final_rows,
        rows,
        env.dlq_len(),
        events.len() as i64 - got.final_rows as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_kill_9_repeatedly_during_ingestion() {
    let env = TestEnv::new("kill9").await;
    env.run_cli(&["migrate"]);
    let events = workload(101, 26_000);
    assert!(events.len() >= 100_000, "{} events", events.len());
    let mut rng = StdRng::seed_from_u64(7);
    // Produce while the service is being killed.
    let producer_env = env.config();
    let to_send = events.clone();
    let producing = tokio::spawn(async move {
        let codec = dispatch_ingest::decode::Codec::from_config(&producer_env.topics).unwrap();
        let ids = std::collections::HashMap::new();
        dispatch_ingest::generate::produce(&producer_env, &codec, &ids, &to_send, |_| {})
            .await
            .unwrap()
    });
    // Each round: start, wait until the round made some progress, kill at a random moment soon
    // after. Progress per round is kept small so every kill lands mid-ingestion.
    let total = events.len() as u64;
    let mut kills_mid_stream = 0;
    let mut landed = 0;
    for round in 0..6 {
        let mut svc = env.spawn_service(&format!("kill9-{round}"));
        svc.wait_healthy(Duration::from_secs(30)).await;
        let start = std::time::Instant::now();
        loop {
            let n = env
                .scalar("SELECT uniqExact(event_id) FROM {db}.dispatch_events")
                .await;
            if n >= landed + 2_000 || start.elapsed() > Duration::from_secs(60) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
        svc.kill9();
        landed = env
            .scalar("SELECT uniqExact(event_id) FROM {db}.dispatch_events")
            .await;
        if landed < total {
            kills_mid_stream += 1;
        }
    }
    assert_eq!(producing.await.unwrap(), total);
    assert!(
        kills_mid_stream >= 5,
        "only {kills_mid_stream} kills happened before the stream was ingested"
    );
    let landed_before_final = landed;
    let mut svc = env.spawn_service("kill9-final");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.wait_for_events(events.len() as u64, Duration::from_secs(300))
        .await;
    svc.stop();
    println!(
        "kill -9: {kills_mid_stream} kills mid-ingestion, {landed_before_final} events had landed before the final run"
    );
    account(&env, "kill -9", &events).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_clickhouse_outage_mid_stream() {
    let ch = PrivateServer::clickhouse();
    ch.up();
    let env = TestEnv::with_servers("choutage", &common::kafka_bootstrap(), &ch.url()).await;
    env.run_cli(&["migrate"]);
    let events = workload(102, 5_000);
    let (first, second) = events.split_at(events.len() / 2);
    env.produce_events(first).await;
    let mut svc = env.spawn_service("choutage");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.wait_for_events(first.len() as u64, Duration::from_secs(120))
        .await;
    ch.down();
    env.produce_events(second).await;
    tokio::time::sleep(Duration::from_secs(32)).await;
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "the service must survive a ClickHouse outage; log:\n{}",
        svc.log_text()
    );
    let errors = svc.metric("dispatch_ingest_insert_errors_total").await;
    assert!(
        errors >= 1.0,
        "the outage was noticed (insert errors {errors})"
    );
    ch.up();
    env.wait_for_events(events.len() as u64, Duration::from_secs(120))
        .await;
    svc.stop();
    account(&env, "ClickHouse outage", &events).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_kafka_broker_restart_mid_stream() {
    let kafka = PrivateServer::kafka();
    kafka.up();
    let env = TestEnv::with_servers("kafkarestart", &kafka.url(), &common::clickhouse_url()).await;
    env.run_cli(&["migrate"]);
    let events = workload(103, 5_000);
    let (first, second) = events.split_at(events.len() / 2);
    env.produce_events(first).await;
    let mut svc = env.spawn_service("kafkarestart");
    svc.wait_healthy(Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    kafka.down();
    tokio::time::sleep(Duration::from_secs(3)).await;
    kafka.up();
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "the service must survive a broker restart; log:\n{}",
        svc.log_text()
    );
    env.produce_events(second).await;
    env.wait_for_events(events.len() as u64, Duration::from_secs(180))
        .await;
    svc.stop();
    account(&env, "Kafka broker restart", &events).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rebalance_one_joins_one_leaves() {
    let env = TestEnv::new("rebalance").await;
    env.run_cli(&["migrate"]);
    let events = workload(104, 8_000);
    let thirds: Vec<&[DispatchEvent]> = events.chunks(events.len() / 3 + 1).collect();
    let landed_after = |n: usize| thirds[..n].iter().map(|t| t.len() as u64).sum::<u64>();
    env.produce_events(thirds[0]).await;
    let mut a = env.spawn_service("rebalance-a");
    a.wait_healthy(Duration::from_secs(30)).await;
    env.wait_for_events(landed_after(1), Duration::from_secs(120))
        .await;
    // B joins: the group rebalances and both consume the second third.
    let mut b = env.spawn_service("rebalance-b");
    b.wait_healthy(Duration::from_secs(30)).await;
    b.wait_for_metric("dispatch_ingest_rebalances_total{kind=\"assign\"}", 1.0)
        .await;
    env.produce_events(thirds[1]).await;
    env.wait_for_events(landed_after(2), Duration::from_secs(120))
        .await;
    let a_inserted = a.metric("dispatch_ingest_records_inserted_total").await;
    // A leaves (gracefully); B is rebalanced again and takes over all partitions.
    a.stop();
    b.wait_for_metric("dispatch_ingest_rebalances_total{kind=\"assign\"}", 2.0)
        .await;
    env.produce_events(thirds[2]).await;
    env.wait_for_events(events.len() as u64, Duration::from_secs(180))
        .await;
    let b_inserted = b.metric("dispatch_ingest_records_inserted_total").await;
    assert!(
        a_inserted > 0.0 && b_inserted > 0.0,
        "both instances worked: A {a_inserted}, B {b_inserted}"
    );
    b.stop();
    println!("rebalance: A inserted {a_inserted}, B inserted {b_inserted}");
    account(&env, "rebalance", &events).await;
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_out_of_order_and_late_delivery_converges() {
    let events = workload(105, 4_000);
    // The same stream delivered in order, and shuffled with duplicates and a late tail.
    let in_order = TestEnv::new("inorder").await;
    in_order.run_cli(&["migrate"]);
    in_order.produce_events(&events).await;

    let shuffled_env = TestEnv::new("shuffled").await;
    shuffled_env.run_cli(&["migrate"]);
    let mut rng = StdRng::seed_from_u64(5);
    let mut shuffled = events.clone();
    shuffled.shuffle(&mut rng);
    // The events of the first 500 incidents arrive last: hours late relative to the stream.
    let (late, on_time): (Vec<_>, Vec<_>) = shuffled.into_iter().partition(|e| {
        e.envelope
            .incident_id
            .ends_with(|c: char| c.is_ascii_digit())
            && e.envelope.incident_id[e.envelope.incident_id.len() - 7..]
                .parse::<u32>()
                .is_ok_and(|n| n < 500)
    });
    assert!(!late.is_empty());
    let duplicates: Vec<_> = on_time.iter().step_by(10).cloned().collect();
    shuffled_env.produce_events(&on_time).await;
    shuffled_env.produce_events(&duplicates).await;

    let mut a = in_order.spawn_service("inorder");
    let mut b = shuffled_env.spawn_service("shuffled");
    a.wait_healthy(Duration::from_secs(30)).await;
    b.wait_healthy(Duration::from_secs(30)).await;
    in_order
        .wait_for_events(events.len() as u64, Duration::from_secs(180))
        .await;
    shuffled_env
        .wait_for_events(on_time.len() as u64, Duration::from_secs(180))
        .await;
    shuffled_env.produce_events(&late).await;
    shuffled_env
        .wait_for_events(events.len() as u64, Duration::from_secs(180))
        .await;
    a.stop();
    b.stop();
    let ordered = rollups(&in_order).await;
    assert_eq!(
        rollups(&shuffled_env).await,
        ordered,
        "late and out-of-order delivery converges"
    );
    account(&in_order, "in order", &events).await;
    account(&shuffled_env, "out of order, late, duplicated", &events).await;
    in_order.cleanup().await;
    shuffled_env.cleanup().await;
}
