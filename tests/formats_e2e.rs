//! Wire formats end to end against the real Kafka broker and ClickHouse server: all five streams
//! in JSON and in Confluent-framed Avro (writer schemas from a Schema Registry, including an
//! evolved one), framing errors on the DLQ, and a registry outage that holds records back
//! instead of dead-lettering them.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use dispatch_ingest::decode::Codec;
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::event::{DispatchEvent, Stream};
use dispatch_ingest::generate::{sample_events, SampleOptions};

use common::registry::TestRegistry;
use common::TestEnv;

fn sample(seed: u64, incidents: u32) -> Vec<DispatchEvent> {
    sample_events(&SampleOptions {
        incidents,
        seed,
        start_ms: dispatch_ingest::clock::now_ms() - 6 * 3600 * 1000,
        spacing_ms: 20_000,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_five_streams_land_from_json() {
    let mut env = TestEnv::new("json").await;
    env.set_all_formats(WireFormat::Json);
    env.run_cli(&["migrate"]);
    let codec = Codec::bundled(WireFormat::Json);
    let events = sample(11, 150);
    let records = common::records_for(&env, &codec, &events, |_| 0);
    env.produce_many(&records).await;
    let mut svc = env.spawn_service("json");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.wait_for_count("1", events.len() as u64, Duration::from_secs(90))
        .await;
    let expected = common::per_stream(&events);
    assert_eq!(expected.len(), 5, "the sample covers all five streams");
    assert_eq!(env.landed_per_stream().await, expected);
    assert_eq!(env.count("wire_format != 'json'").await, 0);
    svc.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_five_streams_land_from_confluent_avro_with_registry() {
    let mut env = TestEnv::new("confluent").await;
    env.set_all_formats(WireFormat::AvroConfluent);
    let registry = TestRegistry::new(common::free_port(), Some(("ingest", "s3cret")));
    registry.start().await;
    env.set_env(
        "DISPATCH_INGEST__SCHEMA_REGISTRY__URL",
        &format!("http://127.0.0.1:{}", registry.port),
    );
    env.set_env("DISPATCH_INGEST__SCHEMA_REGISTRY__USERNAME", "ingest");
    env.set_env("DISPATCH_INGEST__SCHEMA_REGISTRY__PASSWORD", "s3cret");
    env.run_cli(&["migrate"]);

    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let ids: BTreeMap<Stream, u32> = Stream::ALL
        .into_iter()
        .map(|s| (s, registry.add(s.schema_json())))
        .collect();
    let events = sample(12, 150);
    let mut records = common::records_for(&env, &codec, &events, |s| ids[&s]);
    // A call written by a newer producer with schema v2 (extra field, new urgency symbol).
    let v2_json = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/call_received.v2.avsc"),
    )
    .unwrap();
    let v2 = apache_avro::Schema::parse_str(&v2_json).unwrap();
    let v2_id = registry.add(&v2_json);
    let v2_event_id = uuid::Uuid::new_v4();
    let mut rec = apache_avro::types::Record::new(&v2).unwrap();
    rec.put("event_id", v2_event_id.to_string());
    rec.put("incident_id", "INC-V2");
    rec.put("dispatch_centre", "MKA Zuid-Nederland");
    rec.put(
        "occurred_at",
        apache_avro::types::Value::TimestampMillis(dispatch_ingest::clock::now_ms() - 5_000),
    );
    let v2_symbols: Vec<String> = serde_json::from_str::<serde_json::Value>(&v2_json).unwrap()
        ["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "urgency")
        .map(|f| serde_json::from_value(f["type"]["symbols"].clone()).unwrap())
        .unwrap();
    let a3 = v2_symbols.iter().position(|s| s == "A3").unwrap() as u32;
    rec.put("urgency", apache_avro::types::Value::Enum(a3, "A3".into()));
    rec.put("municipality_code", "GM0935");
    rec.put(
        "patient_age_years",
        apache_avro::types::Value::Union(1, Box::new(apache_avro::types::Value::Int(4))),
    );
    rec.put(
        "caller_language",
        apache_avro::types::Value::Union(
            1,
            Box::new(apache_avro::types::Value::String("en".into())),
        ),
    );
    let mut framed = vec![0u8];
    framed.extend_from_slice(&v2_id.to_be_bytes());
    framed.extend_from_slice(&apache_avro::to_avro_datum(&v2, rec).unwrap());
    let calls = env.topic(Stream::Call).to_string();
    records.push((calls.clone(), "INC-V2".into(), framed));
    // Framing errors: wrong magic byte, unknown schema id.
    let mut wrong_magic = codec.encode_with_id(&events[0], ids[&events[0].stream()]);
    wrong_magic[0] = 0x7b;
    records.push((
        env.topic(events[0].stream()).to_string(),
        "BAD-MAGIC".into(),
        wrong_magic,
    ));
    records.push((
        calls.clone(),
        "BAD-ID".into(),
        codec.encode_with_id(&events[0], 9999),
    ));
    env.produce_many(&records).await;

    let mut svc = env.spawn_service("confluent");
    svc.wait_healthy(Duration::from_secs(30)).await;
    env.wait_for_count("1", events.len() as u64 + 1, Duration::from_secs(90))
        .await;
    let mut expected = common::per_stream(&events);
    *expected.get_mut("call").unwrap() += 1;
    assert_eq!(env.landed_per_stream().await, expected);
    let v2_urgency: String = env
        .clickhouse()
        .query(&format!(
            "SELECT assumeNotNull(urgency) FROM {}.dispatch_events WHERE event_id = toUUID('{v2_event_id}')",
            env.database
        ))
        .fetch_one()
        .await
        .unwrap();
    assert_eq!(
        v2_urgency, "UNKNOWN",
        "the v2-only symbol took the reader's enum default"
    );

    let dead = env.read_dlq(2).await;
    assert_eq!(dead[0].0, "BAD-ID");
    assert_eq!(dead[0].1["dlq.error.kind"], "unknown_schema_id");
    assert!(
        dead[0].1["dlq.error.message"].contains("9999"),
        "{:?}",
        dead[0]
    );
    assert_eq!(dead[1].0, "BAD-MAGIC");
    assert_eq!(dead[1].1["dlq.error.kind"], "wrong_magic_byte");
    // The generator registers the schemas (TopicNameStrategy subjects) and frames with their ids.
    let out = env.run_cli(&["generate", "sample", "--incidents", "10", "--seed", "5"]);
    let produced: u64 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    env.wait_for_count(
        "1",
        events.len() as u64 + 1 + produced,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(env.dlq_len(), 2);
    // Schemas are cached: one lookup per id (5 streams + v2 + the unknown one, which may be
    // asked again by the quick retries only if it were retriable, which a 404 is not).
    assert!(
        registry.requests() <= 7,
        "registry asked {} times",
        registry.requests()
    );
    svc.stop();
    env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_outage_holds_records_back_instead_of_dead_lettering() {
    let mut env = TestEnv::new("regdown").await;
    env.set_all_formats(WireFormat::AvroConfluent);
    let port = common::free_port();
    env.set_env(
        "DISPATCH_INGEST__SCHEMA_REGISTRY__URL",
        &format!("http://127.0.0.1:{port}"),
    );
    env.set_env("DISPATCH_INGEST__SCHEMA_REGISTRY__TIMEOUT_MS", "500");
    env.run_cli(&["migrate"]);
    let registry = TestRegistry::new(port, None);
    let id = registry.add(Stream::Call.schema_json());
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let events: Vec<_> = sample(13, 20)
        .into_iter()
        .filter(|e| e.stream() == Stream::Call)
        .collect();
    let records = common::records_for(&env, &codec, &events, |_| id);
    env.produce_many(&records).await;

    // The registry is down: the service keeps running, inserts nothing, dead-letters nothing.
    // Not ready (the registry check fails), but live.
    let mut svc = env.spawn_service("regdown");
    svc.wait_for_http("/health", 200, "ok", Duration::from_secs(30))
        .await;
    let start = std::time::Instant::now();
    while svc
        .metric("dispatch_ingest_schema_registry_errors_total")
        .await
        < 2.0
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no registry errors counted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(env.count("1").await, 0);
    assert_eq!(
        env.dlq_len(),
        0,
        "an unreachable registry must not dead-letter records"
    );

    // The registry comes up: everything lands, still nothing dead-lettered.
    registry.start().await;
    env.wait_for_count("1", events.len() as u64, Duration::from_secs(90))
        .await;
    assert_eq!(env.dlq_len(), 0);
    svc.stop();
    env.cleanup().await;
}
