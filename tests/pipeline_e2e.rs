//! End to end against the real local Kafka broker and ClickHouse server: events produced to
//! Kafka land in ClickHouse exactly once across a restart, offsets are committed only after the
//! insert, bad records go to the dead-letter topic, and the counters add up.

mod common;

use std::time::Duration;

use dispatch_ingest::decode::{to_json, Codec};
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::event::{
    CancelReason, DispatchEvent, DispatchKind, Envelope, Payload, Stream, TransportMode, UnitType,
    Urgency,
};
use uuid::Uuid;

use common::TestEnv;

fn call(incident: &str, urgency: Urgency) -> DispatchEvent {
    DispatchEvent {
        envelope: Envelope {
            event_id: Uuid::new_v4(),
            incident_id: incident.into(),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: dispatch_ingest::clock::now_ms() - 60_000,
        },
        payload: Payload::Call {
            urgency,
            municipality_code: "GM0344".into(),
            patient_age_years: Some(34),
            triage_code: None,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_event_lands_once_across_a_restart() {
    let env = TestEnv::new("restart").await;
    let codec = Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Call).to_string();

    // Migrations: applied once, then a no-op.
    let first = env.run_cli(&["migrate"]);
    let all: Vec<&str> = dispatch_ingest::sink::MIGRATIONS
        .iter()
        .map(|m| m.name)
        .collect();
    assert!(
        first.contains(&format!("applied {}", all.join(", "))),
        "{first}"
    );
    let second = env.run_cli(&["migrate"]);
    assert!(second.contains("up to date"), "{second}");
    let recorded: u64 = env
        .clickhouse()
        .query(&format!(
            "SELECT count() FROM {}.schema_migrations",
            env.database
        ))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(recorded, all.len() as u64);

    // One CallReceived, Avro, keyed by incident.
    let ev1 = call("INC-RESTART", Urgency::A1);
    let (partition, offset) = env
        .produce_raw(&topic, "INC-RESTART", &codec.encode(&ev1))
        .await;
    assert_eq!(offset, 0);

    let mut svc = env.spawn_service("first");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.assert_validation_auto(&svc).await;
    let id1 = ev1.envelope.event_id;
    env.wait_for_count(
        &format!("event_id = toUUID('{id1}')"),
        1,
        Duration::from_secs(60),
    )
    .await;

    // The row carries the event's fields and where it came from.
    let (urgency, municipality, src_topic, src_partition, src_offset): (String, String, String, i32, i64) = env
        .clickhouse()
        .query(&format!(
            "SELECT assumeNotNull(urgency), assumeNotNull(municipality_code), source_topic, source_partition, source_offset \
             FROM {}.dispatch_events WHERE event_id = toUUID('{id1}')",
            env.database
        ))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        (
            urgency.as_str(),
            municipality.as_str(),
            src_topic.as_str(),
            src_partition,
            src_offset
        ),
        ("A1", "GM0344", topic.as_str(), partition, 0)
    );

    // Telemetry saw it (the counters follow the insert by a moment).
    let inserted = svc
        .wait_for_metric(
            &format!("dispatch_ingest_records_inserted_total{{topic=\"{topic}\"}}"),
            1.0,
        )
        .await;
    let consumed = svc
        .metric(&format!(
            "dispatch_ingest_records_consumed_total{{topic=\"{topic}\"}}"
        ))
        .await;
    assert_eq!((consumed, inserted), (1.0, 1.0), "{}", svc.metrics().await);
    assert!(svc.metric("dispatch_ingest_insert_batches_total").await >= 1.0);

    // Graceful stop: exit 0, offset committed after the insert (next offset to read = 1).
    svc.stop();
    assert_eq!(env.committed(&topic, partition), Some(1));

    // Restart with a second event for the same incident (same partition, after the first).
    let ev2 = call("INC-RESTART", Urgency::A0);
    let (p2, o2) = env
        .produce_raw(&topic, "INC-RESTART", &codec.encode(&ev2))
        .await;
    assert_eq!((p2, o2), (partition, 1));
    let mut svc = env.spawn_service("second");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.assert_validation_auto(&svc).await;
    let id2 = ev2.envelope.event_id;
    env.wait_for_count(
        &format!("event_id = toUUID('{id2}')"),
        1,
        Duration::from_secs(60),
    )
    .await;
    // The first event was not read again: still exactly one row (raw count, no FINAL).
    assert_eq!(env.count(&format!("event_id = toUUID('{id1}')")).await, 1);
    assert_eq!(env.count("1").await, 2);
    assert_eq!(
        svc.metric(&format!(
            "dispatch_ingest_records_consumed_total{{topic=\"{topic}\"}}"
        ))
        .await,
        1.0
    );
    svc.stop();
    assert_eq!(env.committed(&topic, partition), Some(2));
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_go_to_the_dead_letter_topic_and_good_ones_land() {
    let mut env = TestEnv::new("dlq").await;
    env.set_format(Stream::Alert, WireFormat::Json);
    env.run_cli(&["migrate"]);
    let avro = Codec::bundled(WireFormat::Avro);
    let calls = env.topic(Stream::Call).to_string();
    let alerts = env.topic(Stream::Alert).to_string();

    let good_call = call("INC-GOOD", Urgency::A2);
    env.produce_raw(&calls, "INC-GOOD", &avro.encode(&good_call))
        .await;
    // Truncated Avro.
    let bytes = avro.encode(&call("INC-BAD-1", Urgency::A1));
    let (bad1_p, bad1_o) = env
        .produce_raw(&calls, "INC-BAD-1", &bytes[..bytes.len() - 7])
        .await;
    // Well-formed Avro with an invalid municipality code.
    let mut bad2 = call("INC-BAD-2", Urgency::A1);
    if let Payload::Call {
        municipality_code, ..
    } = &mut bad2.payload
    {
        *municipality_code = "AMSTERDAM".into();
    }
    env.produce_raw(&calls, "INC-BAD-2", &avro.encode(&bad2))
        .await;
    // A good alert as JSON, and a JSON alert without its unit_id.
    let alert = DispatchEvent {
        envelope: Envelope {
            event_id: Uuid::new_v4(),
            incident_id: "INC-GOOD".into(),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: dispatch_ingest::clock::now_ms() - 30_000,
        },
        payload: Payload::Alert {
            unit_id: "MMT-Volkel-H".into(),
            unit_type: UnitType::MmtHelicopter,
            mmt_station: Some("Volkel".into()),
            dispatch_kind: DispatchKind::Primary,
            urgency: Some(Urgency::A1),
        },
    };
    let json = to_json(&alert).to_string();
    env.produce_raw(&alerts, "INC-GOOD", json.as_bytes()).await;
    let mut no_unit = to_json(&alert);
    no_unit.as_object_mut().unwrap().remove("unit_id");
    no_unit["event_id"] = serde_json::json!(Uuid::new_v4().to_string());
    env.produce_raw(&alerts, "INC-BAD-3", no_unit.to_string().as_bytes())
        .await;

    let mut svc = env.spawn_service("dlq");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.assert_validation_auto(&svc).await;
    env.wait_for_count("1", 2, Duration::from_secs(60)).await;

    // Three records on the DLQ, each with its original key and bytes and the reason.
    let dead = env.read_dlq(3).await;
    let keys: Vec<&str> = dead.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(keys, ["INC-BAD-1", "INC-BAD-2", "INC-BAD-3"]);
    let (_, h1, payload1) = &dead[0];
    assert_eq!(h1["dlq.error.kind"], "malformed_avro");
    assert_eq!(h1["dlq.source.topic"], calls);
    assert_eq!(h1["dlq.source.partition"], bad1_p.to_string());
    assert_eq!(h1["dlq.source.offset"], bad1_o.to_string());
    assert_eq!(
        payload1.as_slice(),
        &bytes[..bytes.len() - 7],
        "original bytes kept"
    );
    let (_, h2, _) = &dead[1];
    assert_eq!(h2["dlq.error.kind"], "invalid_value");
    assert!(
        h2["dlq.error.message"].contains("`municipality_code`"),
        "{h2:?}"
    );
    assert!(
        h2["dlq.error.message"].contains(&format!("topic {calls} partition")),
        "{h2:?}"
    );
    let (_, h3, _) = &dead[2];
    assert_eq!(h3["dlq.error.kind"], "missing_field");
    assert!(h3["dlq.error.message"].contains("`unit_id`"), "{h3:?}");

    // consumed = inserted + dead-lettered, in the service's own metrics (which follow the
    // insert and the DLQ acknowledgement by a moment).
    svc.wait_for_metric("dispatch_ingest_records_inserted_total", 2.0)
        .await;
    svc.wait_for_metric("dispatch_ingest_records_dead_lettered_total", 3.0)
        .await;
    let m = svc.metrics().await;
    let consumed = common::metric_value(&m, "dispatch_ingest_records_consumed_total");
    let inserted = common::metric_value(&m, "dispatch_ingest_records_inserted_total");
    let dead_lettered = common::metric_value(&m, "dispatch_ingest_records_dead_lettered_total");
    assert_eq!((consumed, inserted, dead_lettered), (5.0, 2.0, 3.0), "{m}");
    svc.stop();
    env.cleanup().await;
}

#[derive(Debug, Default, PartialEq, clickhouse::Row, serde::Deserialize)]
struct EnrichedRow {
    event_type: String,
    urgency_vui: Option<String>,
    urgency_rank: Option<u8>,
    response_norm_seconds: Option<u16>,
    is_child: Option<u8>,
    is_trauma: Option<u8>,
    municipality_name: Option<String>,
    region_code: Option<String>,
    province_name: Option<String>,
    municipality_code_current: Option<String>,
    mmt_station_norm: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enriched_rows_land_for_all_five_streams() {
    let env = TestEnv::new("enrich").await;
    env.run_cli(&["migrate"]);
    let codec = Codec::bundled(WireFormat::Avro);
    // 2022-12-31 12:00 UTC: Brielle still exists; it became Voorne aan Zee the next day.
    let t = 1_672_488_000_000;
    let env_of = |incident: &str, at: i64| Envelope {
        event_id: Uuid::new_v4(),
        incident_id: incident.into(),
        dispatch_centre: "MKA Rotterdam-Rijnmond".into(),
        occurred_at_ms: at,
    };
    let events = vec![
        DispatchEvent {
            envelope: env_of("INC-E1", t),
            payload: Payload::Call {
                urgency: Urgency::B,
                municipality_code: "GM0501".into(),
                patient_age_years: Some(10),
                triage_code: Some("BURN".into()),
            },
        },
        DispatchEvent {
            envelope: env_of("INC-E2", t),
            payload: Payload::Call {
                urgency: Urgency::A0,
                municipality_code: "GM9999".into(),
                patient_age_years: None,
                triage_code: None,
            },
        },
        DispatchEvent {
            envelope: env_of("INC-E1", t + 60_000),
            payload: Payload::Alert {
                unit_id: "LL4".into(),
                unit_type: UnitType::MmtHelicopter,
                mmt_station: Some("Lifeliner 4".into()),
                dispatch_kind: DispatchKind::Primary,
                urgency: Some(Urgency::A1),
            },
        },
        DispatchEvent {
            envelope: env_of("INC-E1", t + 120_000),
            payload: Payload::Cancel {
                unit_id: "LL4".into(),
                cancel_reason: CancelReason::AmbulanceAssessedNotNeeded,
            },
        },
        DispatchEvent {
            envelope: env_of("INC-E1", t + 300_000),
            payload: Payload::OnScene {
                unit_id: "AMB-17-001".into(),
            },
        },
        DispatchEvent {
            envelope: env_of("INC-E1", t + 900_000),
            payload: Payload::Transport {
                unit_id: "AMB-17-001".into(),
                mode: TransportMode::Ambulance,
                mmt_physician_accompanies: false,
                destination: Some("Erasmus MC".into()),
                patient_age_years: Some(10),
                trauma: Some(true),
            },
        },
    ];
    let records = common::records_for(&env, &codec, &events, |_| 0);
    env.produce_many(&records).await;
    let mut svc = env.spawn_service("enrich");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.assert_validation_auto(&svc).await;
    env.wait_for_count("1", events.len() as u64, Duration::from_secs(60))
        .await;

    let rows: Vec<EnrichedRow> = env
        .clickhouse()
        .query(&format!(
            "SELECT event_type, urgency_vui, urgency_rank, response_norm_seconds, is_child, is_trauma, \
             municipality_name, region_code, province_name, municipality_code_current, mmt_station_norm \
             FROM {}.dispatch_events ORDER BY occurred_at_ms, event_type, incident_id",
            env.database
        ))
        .fetch_all()
        .await
        .unwrap();
    let s = |v: &str| Some(v.to_string());
    let expected = vec![
        EnrichedRow {
            event_type: "call".into(),
            urgency_vui: s("B2"),
            urgency_rank: Some(5),
            is_child: Some(1),
            is_trauma: Some(1),
            municipality_name: s("Brielle"),
            region_code: s("VR17"),
            province_name: s("Zuid-Holland"),
            municipality_code_current: s("GM1992"),
            ..Default::default()
        },
        EnrichedRow {
            event_type: "call".into(),
            urgency_vui: s("A0"),
            urgency_rank: Some(1),
            response_norm_seconds: Some(900),
            municipality_name: s("unknown"),
            region_code: s("unknown"),
            province_name: s("unknown"),
            municipality_code_current: s("GM9999"),
            ..Default::default()
        },
        EnrichedRow {
            event_type: "alert".into(),
            urgency_vui: s("A1"),
            urgency_rank: Some(2),
            response_norm_seconds: Some(900),
            mmt_station_norm: s("Eelde"),
            ..Default::default()
        },
        EnrichedRow {
            event_type: "cancel".into(),
            ..Default::default()
        },
        EnrichedRow {
            event_type: "on_scene".into(),
            ..Default::default()
        },
        EnrichedRow {
            event_type: "transport".into(),
            is_child: Some(1),
            is_trauma: Some(1),
            ..Default::default()
        },
    ];
    assert_eq!(rows, expected);
    // The unknown municipality was counted, not dropped.
    assert_eq!(
        svc.metric("dispatch_ingest_unknown_municipality_total")
            .await,
        1.0
    );
    svc.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_clickhouse_rejects_are_isolated_and_dead_lettered() {
    let env = TestEnv::new("rejects").await;
    env.run_cli(&["migrate"]);
    // Make the server reject some rows for real: a data check (a MATERIALIZED column computed
    // during the insert, before anything is written) refuses C2 calls, so exactly those are
    // rejected while the rest of their batch is fine. Runs on 18.16 and on current servers.
    env.clickhouse()
        .query(&format!(
            "ALTER TABLE {}.dispatch_events ADD COLUMN no_c2 UInt8 \
             MATERIALIZED throwIf(ifNull(urgency_vui, '') = 'C2')",
            env.database
        ))
        .execute()
        .await
        .unwrap();
    let urgencies = {
        use Urgency::*;
        [A1, C2, A2, B1, C2, A0, B2, C1, A1, A2]
    };
    let events: Vec<DispatchEvent> = (0..200)
        .map(|i| call(&format!("INC-R{i:03}"), urgencies[i % urgencies.len()]))
        .collect();
    let rejected = events
        .iter()
        .filter(|e| {
            matches!(
                &e.payload,
                Payload::Call {
                    urgency: Urgency::C2,
                    ..
                }
            )
        })
        .count();
    assert_eq!(rejected, 40);
    let codec = Codec::bundled(WireFormat::Avro);
    env.produce_many(&common::records_for(&env, &codec, &events, |_| 0))
        .await;
    let mut svc = env.spawn_service("rejects");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.assert_validation_auto(&svc).await;
    env.wait_for_count(
        "1",
        (events.len() - rejected) as u64,
        Duration::from_secs(60),
    )
    .await;
    let dead = env.read_dlq(rejected).await;
    for (key, headers, payload) in &dead {
        assert!(key.starts_with("INC-R"), "{key}");
        assert_eq!(headers["dlq.error.kind"], "clickhouse_rejected");
        assert!(
            headers["dlq.error.message"].contains("Unexpected value 7")
                || headers["dlq.error.message"].contains("7"),
            "{headers:?}"
        );
        let row: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert_eq!(row["urgency_vui"], "C2");
    }
    assert_eq!(env.count("urgency_vui = 'C2'").await, 0);
    svc.stop();
    // Every offset is accounted for: inserted or dead-lettered.
    let audit = env.run_cli(&["audit"]);
    assert!(
        audit.contains(&format!(
            "inserted {}, dead-lettered {rejected}, difference 0",
            events.len() - rejected
        )),
        "{audit}"
    );
    env.cleanup().await;
}

/// An insert retried after its acknowledgement was lost: on 24.1+ the server drops the second
/// copy (the deduplication token from the rows' source positions); on 18.16, which has no such
/// setting, both are accepted and the table design makes the copy harmless. Either way the retry
/// succeeds, and a batch with one record more is a different insert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_insert_is_deduplicated_on_24_1_and_later() {
    use dispatch_ingest::row::EventRow;
    use dispatch_ingest::sink::Sink;
    let env = TestEnv::new("dedup").await;
    env.run_cli(&["migrate"]);
    let sink = Sink::connect(&env.config().clickhouse).await.unwrap();
    let row = |offset: i64| EventRow {
        event_id: Uuid::new_v4(),
        event_type: "call".into(),
        incident_id: format!("INC-D{offset}"),
        source_topic: env.topic(Stream::Call).to_string(),
        source_offset: offset,
        wire_format: "avro".into(),
        ..Default::default()
    };
    let rows: Vec<EventRow> = (0..5).map(row).collect();
    let timeout = Duration::from_secs(30);
    sink.insert(&rows, timeout).await.unwrap();
    let mut again = rows.clone();
    again.reverse();
    for r in again.iter_mut() {
        r.ingested_at += 7; // re-enriched for the retry: other bytes, same records
    }
    sink.insert(&again, timeout).await.unwrap();
    let dedup = sink.deduplicates_inserts();
    assert_eq!(dedup, env.server_version().await >= (24, 1));
    // 18.16 may already have merged the copies away (ReplacingMergeTree): between 5 and 10.
    let copies = |n: u64| if dedup { n..=n } else { n..=2 * n };
    assert!(copies(5).contains(&env.count("1").await));
    let mut more = rows.clone();
    more.push(row(5));
    sink.insert(&more, timeout).await.unwrap();
    let n = env.count("1").await;
    assert!(
        if dedup {
            n == 11
        } else {
            (6..=16).contains(&n)
        },
        "{n} rows"
    );
    assert_eq!(
        env.scalar("SELECT uniqExact(source_offset) FROM {db}.dispatch_events")
            .await,
        6
    );
    env.cleanup().await;
}
