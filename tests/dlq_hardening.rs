//! Dead-letter writes that cannot succeed as they were (issue #10, defect 2), against the real
//! broker: a record whose DLQ copy exceeds the producer's `message.max.bytes` is dead-lettered
//! cut, with its original size and digest; a missing DLQ topic stops the partition at the exact
//! record, turns `/ready` false and raises `dispatch_ingest_dlq_stalled`, and commits nothing
//! past it. Before, both retried forever and silently.

mod common;

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use sha2::Digest;

use common::TestEnv;
use dispatch_ingest::event::Stream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_record_is_dead_lettered_cut_with_its_size_and_digest() {
    let env = TestEnv::new("dlqbig").await;
    env.run_cli(&["migrate"]);
    let topic = env.topic(Stream::Call).to_string();
    // Not Avro, and as large as the broker takes: its DLQ copy (value + key + headers with the
    // error) no longer fits the producer's default message.max.bytes.
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", env.kafka.clone())
        .set("message.max.bytes", "2000000")
        .create()
        .unwrap();
    let (partition, offset) = producer
        .send(
            FutureRecord::to(&topic).key("INC-BIG").payload(&payload),
            Timeout::After(Duration::from_secs(30)),
        )
        .await
        .map(|d| (d.partition, d.offset))
        .map_err(|(e, _)| e)
        .unwrap();
    let mut svc = env.spawn_service("dlqbig");
    svc.wait_healthy(Duration::from_secs(60)).await;
    let dead = env.read_dlq(1).await;
    let (key, headers, copy) = &dead[0];
    assert_eq!(key, "INC-BIG");
    assert_eq!(headers["dlq.original.size"], "1000000", "{headers:?}");
    let digest: String = sha2::Sha256::digest(&payload)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(headers["dlq.original.sha256"], digest);
    assert!(copy.len() < payload.len() && payload.starts_with(copy));
    assert_eq!(headers["dlq.source.offset"], offset.to_string());
    svc.wait_for_metric("dispatch_ingest_records_dead_lettered_total", 1.0)
        .await;
    svc.stop();
    assert_eq!(env.committed(&topic, partition), Some(offset + 1));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dlq_topic_stops_the_partition_and_turns_ready_false() {
    let mut env = TestEnv::new("dlqgone").await;
    env.run_cli(&["migrate"]);
    let missing = format!("it.{}.no-such-dlq", env.id);
    env.set_env("DISPATCH_INGEST__KAFKA__DLQ_TOPIC", &missing);
    let topic = env.topic(Stream::Call).to_string();
    let (partition, offset) = env.produce_raw(&topic, "INC-GONE", b"not avro").await;
    let svc = env.spawn_service("dlqgone");
    let body = svc
        .wait_for_http("/ready", 503, "dlq: ", Duration::from_secs(120))
        .await;
    assert!(
        body.contains(&format!("{topic}/{partition}")) && body.contains("stopped at"),
        "{body}"
    );
    svc.wait_for_metric("dispatch_ingest_dlq_stalled", 1.0)
        .await;
    svc.wait_for_http("/health", 200, "ok", Duration::from_secs(5))
        .await;
    let log = svc.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("dead-lettering is impossible"))
        .unwrap_or_else(|| panic!("no stall line:\n{log}"));
    assert!(
        line.contains(&format!("{offset}")) && line.contains(&topic),
        "{line}"
    );
    // Nothing past the stuck record is committed.
    let mut svc = svc;
    svc.kill9();
    assert_eq!(env.committed(&topic, partition), None);
    env.cleanup().await;
}

/// Defect 13 (part): the audit's DLQ scan used to stop silently at 60 s and report success. A
/// scan that cannot reach the end of the DLQ is now an error; one that does returns every
/// dead-lettered source offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_dlq_scan_is_an_error_not_a_clean_audit() {
    use rdkafka::message::{Header, OwnedHeaders};
    let env = TestEnv::new("dlqscan").await;
    let producer = env.producer();
    for offset in 0..3 {
        let o = offset.to_string();
        producer
            .send(
                FutureRecord::to(&env.dlq_topic)
                    .key("k")
                    .payload("x")
                    .headers(
                        OwnedHeaders::new()
                            .insert(Header {
                                key: "dlq.source.topic",
                                value: Some("src"),
                            })
                            .insert(Header {
                                key: "dlq.source.partition",
                                value: Some("0"),
                            })
                            .insert(Header {
                                key: "dlq.source.offset",
                                value: Some(o.as_str()),
                            }),
                    ),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let config = env.config();
    match dispatch_ingest::audit::dead_lettered_offsets(&config, Duration::ZERO) {
        Err(dispatch_ingest::audit::AuditError::DlqScanCut { unfinished, .. }) => {
            assert!(unfinished >= 1)
        }
        other => panic!("a scan given no time must be reported cut, got {other:?}"),
    }
    let full =
        dispatch_ingest::audit::dead_lettered_offsets(&config, Duration::from_secs(30)).unwrap();
    assert_eq!(full[&("src".to_string(), 0)].len(), 3, "{full:?}");
    env.cleanup().await;
}
