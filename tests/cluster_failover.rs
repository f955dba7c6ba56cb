//! High availability on a replicated ClickHouse, against real servers: a private ZooKeeper and
//! two ClickHouse 18.16 servers as replicas of one shard, the pipeline in cluster mode with both
//! URLs. One replica is killed with SIGKILL mid-stream; the pipeline must fail over to the other,
//! the killed replica must catch up after its restart, and each replica, queried directly, must
//! hold exactly the ground truth: raw counts, the rollup tables fed by the materialized views, and
//! the factsheet views (compared with the same rows ingested into a single-server database).
//!
//! The test name starts with `fault_`; deploy/local/test.sh runs it in its own step.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use clickhouse::Client;
use dispatch_ingest::event::{DispatchEvent, Payload};
use dispatch_ingest::generate::{sample_events, SampleOptions};

use dispatch_ingest::config::ClickHouseConfig;
use dispatch_ingest::sink::Sink;
use dispatch_ingest::telemetry::RECORDS_INSERTED;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use common::servers::PrivateServer;
use common::TestEnv;

const CLUSTER: &str = "ha";

fn client(url: &str) -> Client {
    Client::default().with_url(url).with_validation(false)
}

async fn scalar(url: &str, sql: &str) -> u64 {
    client(url)
        .query(sql)
        .fetch_one::<u64>()
        .await
        .unwrap_or_else(|e| panic!("{url}: {sql}: {e}"))
}

/// A query's result as TSV text, to compare whole views between servers.
async fn tsv(url: &str, sql: &str) -> String {
    let bytes = client(url)
        .query(sql)
        .fetch_bytes("TSV")
        .unwrap()
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{url}: {sql}: {e}"));
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// What must hold on every replica, computed from the events themselves.
#[derive(Debug, PartialEq, Eq)]
struct Truth {
    per_stream: BTreeMap<String, u64>,
    final_rows: u64,
    offsets: u64,
    incidents: u64,
    unit_alerts: u64,
}

fn ground_truth(events: &[DispatchEvent]) -> Truth {
    let incidents: BTreeSet<&str> = events
        .iter()
        .map(|e| e.envelope.incident_id.as_str())
        .collect();
    // unit_alerts: one group per (incident, unit) over alert, cancel and on-scene events.
    let mut units = BTreeSet::new();
    for e in events {
        let unit = match &e.payload {
            Payload::Alert { unit_id, .. }
            | Payload::Cancel { unit_id, .. }
            | Payload::OnScene { unit_id } => Some(unit_id.as_str()),
            _ => None,
        };
        if let Some(u) = unit {
            units.insert((e.envelope.incident_id.as_str(), u));
        }
    }
    Truth {
        per_stream: common::per_stream(events),
        final_rows: events.len() as u64,
        offsets: events.len() as u64,
        incidents: incidents.len() as u64,
        unit_alerts: units.len() as u64,
    }
}

async fn measure(url: &str, db: &str) -> Truth {
    let rows: Vec<(String, u64)> = client(url)
        .query(&format!(
            "SELECT event_type, uniqExact(event_id) FROM {db}.dispatch_events GROUP BY event_type"
        ))
        .fetch_all()
        .await
        .unwrap();
    Truth {
        per_stream: rows.into_iter().collect(),
        final_rows: scalar(url, &format!("SELECT count() FROM {db}.dispatch_events FINAL")).await,
        offsets: scalar(
            url,
            &format!(
                "SELECT count() FROM (SELECT DISTINCT source_topic, source_partition, source_offset FROM {db}.ingest_offsets)"
            ),
        )
        .await,
        incidents: scalar(
            url,
            &format!("SELECT count() FROM (SELECT incident_id FROM {db}.incident_facts GROUP BY incident_id)"),
        )
        .await,
        unit_alerts: scalar(
            url,
            &format!("SELECT count() FROM (SELECT incident_id, unit_id FROM {db}.unit_alerts GROUP BY incident_id, unit_id)"),
        )
        .await,
    }
}

/// The published factsheet views, as text.
async fn factsheet(url: &str, db: &str) -> String {
    let mut out = String::new();
    for (view, order) in [
        ("mmt_factsheet_year", "year"),
        ("mmt_factsheet_month", "year, month"),
        ("mmt_station_location", "1, 2, 3"),
        ("mmt_cancel_reasons", "1, 2, 3"),
    ] {
        out.push_str(&format!("== {view}\n"));
        out.push_str(&tsv(url, &format!("SELECT * FROM {db}.{view} ORDER BY {order}")).await);
    }
    out
}

/// Poll until the replica holds `expected` distinct events and its replication queue is empty.
async fn wait_caught_up(url: &str, db: &str, expected: u64, timeout: Duration) {
    let start = Instant::now();
    loop {
        let n = client(url)
            .query(&format!(
                "SELECT uniqExact(event_id) FROM {db}.dispatch_events"
            ))
            .fetch_one::<u64>()
            .await
            .unwrap_or(0);
        let queue = client(url)
            .query(&format!(
                "SELECT toUInt64(sum(queue_size) + sum(inserts_in_queue)) FROM system.replicas WHERE database = '{db}'"
            ))
            .fetch_one::<u64>()
            .await
            .unwrap_or(u64::MAX);
        assert!(
            n <= expected,
            "{url}: {n} distinct events, more than {expected}"
        );
        if n == expected && queue == 0 {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "{url}: {n} of {expected} events, replication queue {queue}, after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_replica_killed_mid_stream_fails_over_and_catches_up() {
    let t0 = Instant::now();
    let stage = |what: &str| {
        println!(
            "cluster failover: {what} at {:.1} s",
            t0.elapsed().as_secs_f64()
        )
    };
    let zk = PrivateServer::zookeeper();
    zk.up();
    let [r1, r2] = PrivateServer::clickhouse_replicas(&zk, CLUSTER);
    std::thread::scope(|s| {
        s.spawn(|| r1.up());
        s.spawn(|| r2.up());
    });
    let (u1, u2) = (r1.url(), r2.url());
    let mut env = TestEnv::with_servers("cluster", &common::kafka_bootstrap(), &u1).await;
    env.set_env("DISPATCH_INGEST__CLICKHOUSE__CLUSTER", CLUSTER);
    env.set_env("DISPATCH_INGEST__CLICKHOUSE__URLS", &format!("{u1},{u2}"));
    env.set_env("DISPATCH_INGEST__CLICKHOUSE__REQUEST_TIMEOUT_MS", "5000");
    env.set_env("DISPATCH_INGEST__RETRY__MAX_MS", "1000");
    env.set_env("DISPATCH_INGEST__BATCH__MAX_ROWS", "500");
    stage("servers up");
    env.run_cli(&["migrate"]);
    stage("migrated");
    let db = env.database.clone();
    for url in [&u1, &u2] {
        let engine = tsv(
            url,
            &format!("SELECT engine FROM system.tables WHERE database = '{db}' AND name = 'dispatch_events'"),
        )
        .await;
        assert_eq!(engine.trim(), "ReplicatedReplacingMergeTree", "{url}");
    }

    let events = sample_events(&SampleOptions {
        incidents: 2_000,
        seed: 121,
        start_ms: dispatch_ingest::clock::now_ms() - 20 * 3600 * 1000,
        spacing_ms: 1_000,
    });
    let total = events.len() as u64;
    let (first, second) = events.split_at(events.len() / 2);
    env.produce_events(first).await;
    let mut svc = env.spawn_service("cluster");
    svc.wait_healthy(Duration::from_secs(30)).await;
    // Mid-stream: some of the first half has landed, not all of it.
    let start = Instant::now();
    let landed_at_kill = loop {
        let n = scalar(
            &u1,
            &format!("SELECT uniqExact(event_id) FROM {db}.dispatch_events"),
        )
        .await;
        if n >= 1_000 {
            assert!(n < total, "the whole stream landed before the kill");
            break n;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {n} events after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Kill the replica the pipeline inserts to now: the first URL, or where it last failed over.
    let failovers = |log: &str, from: &str| {
        log.lines()
            .filter(|l| l.contains("failing over to the next ClickHouse replica"))
            .filter(|l| l.contains(&format!("\"from\":\"{from}\"")))
            .count()
    };
    let current = svc
        .log_text()
        .lines()
        .rev()
        .find(|l| l.contains("failing over to the next ClickHouse replica"))
        .and_then(|l| l.split("\"to\":\"").nth(1))
        .and_then(|s| s.split('"').next())
        .map(str::to_string)
        .unwrap_or_else(|| u1.clone());
    let (victim, survivor) = if current == u1 {
        (&r1, &r2)
    } else {
        (&r2, &r1)
    };
    let (victim_url, survivor_url) = (victim.url(), survivor.url());
    let before = failovers(&svc.log_text(), &victim_url);
    victim.kill9();
    stage(&format!("replica {victim_url} killed"));
    env.produce_events(second).await;
    // The pipeline goes on with the survivor alone: every record is inserted (acknowledged), and
    // the insert that met the dead replica failed over.
    let start = Instant::now();
    loop {
        let n = svc.metric(RECORDS_INSERTED).await;
        if n >= total as f64 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{n} of {total} records inserted 180 s after the kill; log:\n{}",
            svc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = svc.log_text();
    assert!(
        failovers(&log, &victim_url) > before,
        "no failover away from the killed replica {victim_url} in the service log:\n{log}"
    );
    stage("every record inserted through the surviving replica");
    // The killed replica comes back and fetches what it missed (and the survivor fetches the
    // parts the victim had acknowledged but not replicated yet when it died).
    victim.up();
    stage("killed replica restarted");
    wait_caught_up(&victim_url, &db, total, Duration::from_secs(180)).await;
    wait_caught_up(&survivor_url, &db, total, Duration::from_secs(60)).await;
    stage("both replicas caught up");
    svc.stop();

    let truth = ground_truth(&events);
    // The reference factsheet: the same rows in a single-server database (no cluster), whose
    // materialized views compute the rollups from one clean insert.
    let reference = format!("{db}_single");
    let single = Sink::connect(&ClickHouseConfig {
        url: u2.clone(),
        database: reference.clone(),
        ..ClickHouseConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(single.cluster(), None);
    single
        .migrate(&dispatch_ingest::config::RetryConfig::default())
        .await
        .unwrap();
    client(&u2)
        .query(&format!(
            "INSERT INTO {reference}.dispatch_events SELECT * FROM {db}.dispatch_events FINAL"
        ))
        .execute()
        .await
        .unwrap();
    let expected_factsheet = factsheet(&u2, &reference).await;
    assert!(
        expected_factsheet.lines().count() > 8,
        "{expected_factsheet}"
    );
    for url in [&u1, &u2] {
        assert_eq!(
            measure(url, &db).await,
            truth,
            "{url}: raw counts or rollups differ"
        );
        assert_eq!(
            factsheet(url, &db).await,
            expected_factsheet,
            "{url}: factsheet views differ from the single-server reference"
        );
    }
    stage("compared");
    let audit = env.run_cli(&["audit"]);
    let last = audit.lines().last().unwrap_or_default().to_string();
    assert!(
        last.contains("dead-lettered 0, difference 0"),
        "audit:\n{audit}"
    );
    let rows_r1 = scalar(&u1, &format!("SELECT count() FROM {db}.dispatch_events")).await;
    println!(
        "cluster failover: events sent {total}, about {landed_at_kill} had landed when {victim_url} was killed, \
         both replicas hold {total} distinct events ({rows_r1} rows before collapsing), every rollup and factsheet view equal to the ground truth"
    );
    // The servers and their data go with the test; only the shared Kafka's topics are ours to
    // delete.
    let mut topics: Vec<&str> = env.topics.iter().map(|(_, t)| t.as_str()).collect();
    topics.push(&env.dlq_topic);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &env.kafka)
        .create()
        .unwrap();
    admin
        .delete_topics(&topics, &AdminOptions::new())
        .await
        .unwrap();
}
