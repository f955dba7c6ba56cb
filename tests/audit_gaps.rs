//! Issue #10 defect 13: offsets are not contiguous. A transactional producer leaves a commit or
//! abort marker at an offset of every partition it wrote to, and the pipeline (a read-committed
//! consumer) never sees aborted records. The audit used to count every offset below the
//! committed one as a record, so a clean transactional topic showed false "missing" records.
//! Against the real broker: the audit reads the uncovered offsets back, finds no record at the
//! markers and aborted records, reports a difference of 0, and still finds and names real loss.

mod common;

use std::time::Duration;

use dispatch_ingest::decode::Codec;
use dispatch_ingest::event::{DispatchEvent, Envelope, Payload, Stream, Urgency, WireFormat};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use uuid::Uuid;

use common::TestEnv;

fn call(n: usize) -> DispatchEvent {
    DispatchEvent {
        envelope: Envelope {
            event_id: Uuid::new_v4(),
            incident_id: format!("INC-TX-{n}"),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: dispatch_ingest::clock::now_ms() - 60_000,
        },
        payload: Payload::Call {
            urgency: Urgency::A1,
            municipality_code: "GM0344".into(),
            patient_age_years: Some(40),
            triage_code: None,
        },
    }
}

/// Send `events` to partition 0 of `topic` in one transaction, committed or aborted.
fn transaction(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    codec: &Codec,
    events: &[DispatchEvent],
    commit: bool,
) {
    let timeout = Duration::from_secs(30);
    producer.begin_transaction().unwrap();
    for e in events {
        let payload = codec.encode_with_id(e, 0);
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(0)
                    .key(&e.envelope.incident_id)
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    // Written to the log before the abort (an abort purges what is still queued).
    producer.flush(timeout).unwrap();
    if commit {
        producer.commit_transaction(timeout).unwrap();
    } else {
        producer.abort_transaction(timeout).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_markers_and_aborted_records_are_not_missing_but_loss_is_named() {
    let env = TestEnv::new("audit_gaps").await;
    let codec = Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Call).to_string();
    env.run_cli(&["migrate"]);

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_bootstrap())
        .set("transactional.id", format!("{}-tx", env.id))
        .create()
        .unwrap();
    producer.init_transactions(Duration::from_secs(30)).unwrap();
    let events: Vec<DispatchEvent> = (0..30).map(call).collect();
    // Committed 10, aborted 5, committed 10, aborted 5, each followed by its marker: offsets
    // 0-9 and 17-26 hold the 20 records the pipeline sees; 10 (marker), 11-15 (aborted), 16,
    // 27, 28-32 and 33 hold none.
    transaction(&producer, &topic, &codec, &events[0..10], true);
    transaction(&producer, &topic, &codec, &events[10..15], false);
    transaction(&producer, &topic, &codec, &events[15..25], true);
    transaction(&producer, &topic, &codec, &events[25..30], false);
    drop(producer);

    let mut svc = env.spawn_service("audit-gaps");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.wait_for_events(20, Duration::from_secs(60)).await;
    // The pipeline commits the offset after its last record (26); what follows is lag in
    // offsets, though no record is left to read.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while env.committed(&topic, 0) != Some(27) {
        assert!(
            std::time::Instant::now() < deadline,
            "committed offset of {topic}/0 is {:?}, expected 27",
            env.committed(&topic, 0)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    svc.stop();
    assert_eq!(env.count("1").await, 20);

    let audit = env.run_cli(&["audit"]);
    assert!(
        audit.contains(
            "committed 20, inserted 20, dead-lettered 0, difference 0, lag 7 (offsets without a record: 7)"
        ),
        "{audit}"
    );

    // Real loss next to the markers: three more records, and the group's offset moved past them
    // without the pipeline ever reading them (as a consumer that commits before processing
    // would). The audit fails and names their offsets.
    let lost: Vec<DispatchEvent> = (100..103).map(call).collect();
    let mut positions = Vec::new();
    for e in &lost {
        let payload = codec.encode_with_id(e, 0);
        let record = rdkafka::producer::FutureRecord::to(&topic)
            .partition(0)
            .key(&e.envelope.incident_id)
            .payload(&payload);
        let delivered = env
            .producer()
            .send(
                record,
                rdkafka::util::Timeout::After(Duration::from_secs(30)),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
        positions.push(delivered.offset);
    }
    assert_eq!(positions, [34, 35, 36]);
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", common::kafka_bootstrap())
        .set("group.id", &env.group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(37))
        .unwrap();
    group.commit(&tpl, CommitMode::Sync).unwrap();
    drop(group);

    let out = env.cli(&["audit"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "audit passed despite loss:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("missing in {topic}/0: offsets 34, 35, 36\n")),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "committed 23, inserted 20, dead-lettered 0, difference 3, lag 0 (offsets without a record: 14)"
        ),
        "{stdout}"
    );
    assert!(stderr.contains(&format!("{topic}/0: 3")), "{stderr}");
    env.cleanup().await;
}
