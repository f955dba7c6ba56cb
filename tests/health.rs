//! `/health` (liveness) and `/ready` (readiness) against real servers that go down: private
//! Kafka and ClickHouse servers (`tests/common/servers.rs`) are stopped under a running service.
//! Before the split, `/health` stayed 200 while every broker was down.

mod common;

use std::time::Duration;

use common::servers::PrivateServer;
use common::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_means_not_ready_but_live() {
    let kafka = PrivateServer::kafka();
    kafka.up();
    let env = TestEnv::with_servers("rdykafka", &kafka.url(), &common::clickhouse_url()).await;
    env.run_cli(&["migrate"]);
    let mut svc = env.spawn_service("rdykafka");
    svc.wait_healthy(Duration::from_secs(60)).await;
    svc.wait_for_http("/health", 200, "ok", Duration::from_secs(5))
        .await;
    kafka.down();
    let body = svc
        .wait_for_http(
            "/ready",
            503,
            "kafka: no broker reachable",
            Duration::from_secs(60),
        )
        .await;
    assert!(
        !body.contains("clickhouse"),
        "only the broker fails: {body}"
    );
    // The loops still make progress: liveness holds, a restart would not help.
    svc.wait_for_http("/health", 200, "ok", Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let metrics = svc.metrics().await;
    assert_eq!(
        common::metric_value(&metrics, "dispatch_ingest_ready "),
        0.0
    );
    assert_eq!(common::metric_value(&metrics, "dispatch_ingest_live "), 1.0);
    kafka.up();
    svc.wait_for_http("/ready", 200, "ready", Duration::from_secs(90))
        .await;
    svc.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_down_means_not_ready_but_live() {
    let ch = PrivateServer::clickhouse();
    ch.up();
    let env = TestEnv::with_servers("rdych", &common::kafka_bootstrap(), &ch.url()).await;
    env.run_cli(&["migrate"]);
    let topic = env.topic(dispatch_ingest::event::Stream::Call).to_string();
    let codec = dispatch_ingest::decode::Codec::bundled(dispatch_ingest::event::WireFormat::Avro);
    let (partition, _) = env
        .produce_raw(&topic, "INC-LAG", &codec.encode(&event()))
        .await;
    let mut svc = env.spawn_service("rdych");
    svc.wait_healthy(Duration::from_secs(60)).await;
    env.wait_for_count("1", 1, Duration::from_secs(60)).await;
    // The consumer lag is exported per partition: caught up, 0.
    let lag =
        format!("dispatch_ingest_consumer_lag{{topic=\"{topic}\",partition=\"{partition}\"}} ");
    let start = std::time::Instant::now();
    while !svc.metrics().await.contains(&lag) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            svc.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(svc.metric(&lag).await, 0.0);
    ch.down();
    let body = svc
        .wait_for_http("/ready", 503, "clickhouse: ", Duration::from_secs(60))
        .await;
    assert!(!body.contains("kafka:"), "only ClickHouse fails: {body}");
    svc.wait_for_http("/health", 200, "ok", Duration::from_secs(5))
        .await;
    ch.up();
    svc.wait_for_http("/ready", 200, "ready", Duration::from_secs(60))
        .await;
    svc.stop();
    env.cleanup().await;
}

fn event() -> dispatch_ingest::event::DispatchEvent {
    use dispatch_ingest::event::{DispatchEvent, Envelope, Payload};
    DispatchEvent {
        envelope: Envelope {
            event_id: uuid::Uuid::new_v4(),
            incident_id: "INC-LAG".into(),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: dispatch_ingest::clock::now_ms() - 60_000,
        },
        payload: Payload::Call {
            urgency: dispatch_ingest::event::Urgency::A1,
            municipality_code: "GM0344".into(),
            patient_age_years: Some(34),
            triage_code: None,
        },
    }
}

/// A stage stuck in a call that never returns: `/health` turns 503 naming the loop (a restart
/// helps), while a stage that merely waits (the source, held back) keeps beating.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_stage_fails_liveness() {
    let mut env = TestEnv::new("wedged").await;
    env.run_cli(&["migrate"]);
    env.set_env(dispatch_ingest::pipeline::Fault::ENV, "hang:sink");
    env.set_env("DISPATCH_INGEST__TELEMETRY__LIVENESS_TIMEOUT_MS", "4000");
    let topic = env.topic(dispatch_ingest::event::Stream::Call).to_string();
    let codec = dispatch_ingest::decode::Codec::bundled(dispatch_ingest::event::WireFormat::Avro);
    let mut svc = env.spawn_service("wedged");
    svc.wait_healthy(Duration::from_secs(60)).await;
    svc.wait_for_http("/health", 200, "ok", Duration::from_secs(5))
        .await;
    env.produce_raw(&topic, "INC-WEDGE", &codec.encode(&event()))
        .await;
    let body = svc
        .wait_for_http("/health", 503, "sink: no progress", Duration::from_secs(60))
        .await;
    assert!(!body.contains("source:"), "{body}");
    assert!(!body.contains("process:"), "{body}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(svc.metric("dispatch_ingest_live ").await, 0.0);
    svc.kill9();
    env.cleanup().await;
}
