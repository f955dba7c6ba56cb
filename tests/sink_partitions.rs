//! Issue #10, defect 5, against the real ClickHouse (own database) and Kafka: a batch whose
//! rows span more months than one insert may touch (`max_partitions_per_insert_block`, 100;
//! code 252) used to be retried forever; now it is inserted in month-bounded inserts. And a
//! column of `dispatch_events` dropped on the server mid-run used to be retried forever (or, for
//! type codes, dead-letter every row): now the service stops, non-zero, naming the table and
//! the error, and commits nothing past the failed batch.
//!
//! Note: ClickHouse 18.16 has no `max_partitions_per_insert_block` (the limit came with 19.x), so
//! on the shared 18.16 the 150-month test passes without the split too; it guards that splitting
//! loses or duplicates nothing there. The refusal itself (code 252) needs a 19.x+ server.

mod common;

use std::time::Duration;

use chrono::{Datelike, TimeZone, Utc};
use dispatch_ingest::decode::Codec;
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::event::{DispatchEvent, Envelope, Payload, Stream, Urgency};
use uuid::Uuid;

use common::TestEnv;

fn call(incident: &str, occurred_at_ms: i64) -> DispatchEvent {
    DispatchEvent {
        envelope: Envelope {
            event_id: Uuid::new_v4(),
            incident_id: incident.into(),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms,
        },
        payload: Payload::Call {
            urgency: Urgency::A1,
            municipality_code: "GM0344".into(),
            patient_age_years: Some(34),
            triage_code: None,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_spanning_150_months_is_inserted_without_dead_letters() {
    let mut env = TestEnv::new("months150").await;
    env.run_cli(&["migrate"]);
    // One batch for all of them: they are on the topic before the service starts.
    env.set_env("DISPATCH_INGEST__BATCH__MAX_WAIT_MS", "5000");
    let codec = Codec::bundled(WireFormat::Avro);
    let start = Utc.with_ymd_and_hms(2012, 1, 15, 12, 0, 0).unwrap();
    let events: Vec<DispatchEvent> = (0..150u32)
        // Scattered, not in month order.
        .map(|i| (i * 97) % 150)
        .map(|m| {
            let t = start
                .with_year(2012 + (m / 12) as i32)
                .and_then(|t| t.with_month(m % 12 + 1))
                .unwrap();
            call(&format!("INC-M{m:03}"), t.timestamp_millis())
        })
        .collect();
    env.produce_many(&common::records_for(&env, &codec, &events, |_| 0))
        .await;
    let mut svc = env.spawn_service("months150");
    svc.wait_healthy(Duration::from_secs(60)).await;
    env.wait_for_count("1", 150, Duration::from_secs(90)).await;
    assert_eq!(
        env.scalar(&format!(
            "SELECT uniqExact(toYYYYMM(occurred_at)) FROM {}.dispatch_events",
            env.database
        ))
        .await,
        150
    );
    svc.stop();
    let log = svc.log_text();
    assert!(!log.contains("ClickHouse insert failed"), "{log}");
    assert_eq!(env.dlq_len(), 0, "nothing dead-lettered; log:\n{log}");
    let audit = env.run_cli(&["audit"]);
    assert!(
        audit.contains("inserted 150, dead-lettered 0, difference 0"),
        "{audit}"
    );
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_dropped_mid_run_stops_the_service_and_commits_nothing_past_it() {
    let env = TestEnv::new("drift").await;
    env.run_cli(&["migrate"]);
    let codec = Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Call).to_string();
    let now = dispatch_ingest::clock::now_ms() - 60_000;
    // One key: one partition, so offsets are contiguous.
    let mut partition = 0;
    let mut last = 0;
    for i in 0..5 {
        let e = call(&format!("INC-D{i}"), now);
        (partition, last) = env.produce_raw(&topic, "INC-D", &codec.encode(&e)).await;
    }
    let mut svc = env.spawn_service("drift");
    svc.wait_healthy(Duration::from_secs(60)).await;
    env.wait_for_count("1", 5, Duration::from_secs(60)).await;
    let committed_before = {
        let t = std::time::Instant::now();
        loop {
            if env.committed(&topic, partition) == Some(last + 1) {
                break last + 1;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "first 5 not committed"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    env.clickhouse()
        .query(&format!(
            "ALTER TABLE {}.dispatch_events DROP COLUMN schema_id",
            env.database
        ))
        .execute()
        .await
        .unwrap();
    for i in 5..8 {
        let e = call(&format!("INC-D{i}"), now);
        env.produce_raw(&topic, "INC-D", &codec.encode(&e)).await;
    }
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(status) = svc.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "service still running 90 s after a column was dropped; log:\n{}",
            svc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let log = svc.log_text();
    assert_eq!(status.code(), Some(1), "exit code; log:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("pipeline stage failed"))
        .unwrap_or_else(|| panic!("no stage failure logged:\n{log}"));
    assert!(line.contains("sink"), "{line}");
    assert!(
        line.contains(&format!("{}.dispatch_events", env.database)),
        "names the table: {line}"
    );
    assert!(line.contains("schema_id"), "names the error: {line}");
    assert_eq!(env.count("1").await, 5);
    assert_eq!(env.dlq_len(), 0, "nothing dead-lettered; log:\n{log}");
    assert_eq!(
        env.committed(&topic, partition),
        Some(committed_before),
        "nothing committed past the failed batch"
    );
    env.cleanup().await;
}
