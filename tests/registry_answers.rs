//! Schema registry answers (issue #10, defect 3): only Confluent's error code 40403 for an id
//! means "unknown schema" (the record is dead-lettered); a proxy 404, a wrong base path, another
//! 404 code, a 200 HTML page and a body that stalls are outages: the record waits, nothing is
//! dead-lettered, `/ready` names the registry. Against the test registry in `tests/common`.
//! Before, every 404 and every unreadable body dead-lettered good records.

mod common;

use std::time::Duration;

use dispatch_ingest::decode::registry::{RegistryClient, RegistryError, RegistrySettings};
use dispatch_ingest::decode::Codec;
use dispatch_ingest::event::Stream;
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::generate::{sample_events, SampleOptions};

use common::registry::{Mode, TestRegistry};
use common::TestEnv;

fn client(base: &str) -> RegistryClient {
    RegistryClient::new(RegistrySettings {
        url: base.to_string(),
        username: String::new(),
        password: String::new(),
        timeout: Duration::from_millis(500),
        retries: 0,
        ca_file: String::new(),
        retry: Default::default(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_error_code_40403_means_unknown_schema() {
    let registry = TestRegistry::new(common::free_port(), None);
    let id = registry.add(Stream::Call.schema_json());
    registry.start().await;
    let base = format!("http://127.0.0.1:{}", registry.port);

    match client(&base).schema(id + 100).await {
        Err(RegistryError::NotFound { id: got }) => assert_eq!(got, id + 100),
        other => panic!("40403 is an unknown id: {other:?}"),
    }
    let wrong_base = client(&format!("{base}/wrong/base"));
    let e = wrong_base.schema(id).await.unwrap_err();
    assert!(
        e.is_retriable() && !matches!(e, RegistryError::NotFound { .. }),
        "a wrong base path is an outage: {e}"
    );
    for mode in [
        Mode::Proxy404,
        Mode::Other404,
        Mode::Html200,
        Mode::StallMidBody,
    ] {
        registry.set_mode(mode);
        // A fresh client each time: nothing cached.
        let e = client(&base).schema(id).await.unwrap_err();
        assert!(
            e.is_retriable()
                && !matches!(
                    e,
                    RegistryError::NotFound { .. } | RegistryError::BadSchema { .. }
                ),
            "{mode:?} is an outage, not a bad record: {e}"
        );
    }
    registry.set_mode(Mode::Normal);
    assert!(client(&base).schema(id).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_404_holds_records_back_and_they_land_when_the_registry_answers() {
    let mut env = TestEnv::new("reg404").await;
    env.set_all_formats(WireFormat::AvroConfluent);
    let registry = TestRegistry::new(common::free_port(), None);
    let id = registry.add(Stream::Call.schema_json());
    registry.set_mode(Mode::Proxy404);
    registry.start().await;
    env.set_env(
        "DISPATCH_INGEST__SCHEMA_REGISTRY__URL",
        &format!("http://127.0.0.1:{}", registry.port),
    );
    env.set_env("DISPATCH_INGEST__SCHEMA_REGISTRY__TIMEOUT_MS", "500");
    env.run_cli(&["migrate"]);
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let events: Vec<_> = sample_events(&SampleOptions {
        incidents: 10,
        seed: 31,
        start_ms: dispatch_ingest::clock::now_ms() - 6 * 3600 * 1000,
        spacing_ms: 20_000,
    })
    .into_iter()
    .filter(|e| e.stream() == Stream::Call)
    .collect();
    let records = common::records_for(&env, &codec, &events, |_| id);
    env.produce_many(&records).await;

    let svc = env.spawn_service("reg404");
    let body = svc
        .wait_for_http("/ready", 503, "registry: ", Duration::from_secs(60))
        .await;
    assert!(body.contains("404"), "{body}");
    svc.wait_for_metric("dispatch_ingest_schema_registry_errors_total", 2.0)
        .await;
    assert_eq!(env.count("1").await, 0);
    assert_eq!(env.dlq_len(), 0, "a proxy 404 must not dead-letter records");

    registry.set_mode(Mode::Normal);
    env.wait_for_count("1", events.len() as u64, Duration::from_secs(90))
        .await;
    assert_eq!(env.dlq_len(), 0);
    let mut svc = svc;
    svc.stop();
    env.cleanup().await;
}

/// Issue #10, defect 4: a registered writer schema outside the stream's contract (here: a field
/// the reader reads as a string, written as a long, so resolution fails) and one that is a bare
/// array of nullable longs whose six-byte datum claims 400 million items: both records go to the
/// DLQ with kind `foreign_writer_schema` and a reason naming stream, id and why; the service stays
/// up and the good records land. Before, the array was decoded (reserving ~20 GB) and the other
/// was a decoding error that did not say the schema was foreign.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_writer_schema_dead_letters_its_records_with_the_reason() {
    let mut env = TestEnv::new("regforeign").await;
    env.set_all_formats(WireFormat::AvroConfluent);
    let registry = TestRegistry::new(common::free_port(), None);
    let good = registry.add(Stream::Call.schema_json());
    let mut schema: serde_json::Value = serde_json::from_str(Stream::Call.schema_json()).unwrap();
    for f in schema["fields"].as_array_mut().unwrap() {
        if f["name"] == "municipality_code" {
            f["type"] = serde_json::json!("long");
        }
    }
    let unresolvable = registry.add(&schema.to_string());
    let array = registry.add(r#"{"type":"array","items":["null","long"]}"#);
    registry.start().await;
    env.set_env(
        "DISPATCH_INGEST__SCHEMA_REGISTRY__URL",
        &format!("http://127.0.0.1:{}", registry.port),
    );
    env.run_cli(&["migrate"]);
    let codec = Codec::bundled(WireFormat::AvroConfluent);
    let events: Vec<_> = sample_events(&SampleOptions {
        incidents: 5,
        seed: 32,
        start_ms: dispatch_ingest::clock::now_ms() - 6 * 3600 * 1000,
        spacing_ms: 20_000,
    })
    .into_iter()
    .filter(|e| e.stream() == Stream::Call)
    .collect();
    env.produce_many(&common::records_for(&env, &codec, &events, |_| good))
        .await;
    let topic = env.topic(Stream::Call).to_string();
    let frame = |id: u32, datum: &[u8]| {
        let mut out = vec![0];
        out.extend(id.to_be_bytes());
        out.extend(datum);
        out
    };
    let encoded = codec.encode_with_id(&events[0], good);
    env.produce_raw(&topic, "A-FOREIGN", &frame(unresolvable, &encoded[5..]))
        .await;
    // A block of 400 million items (zig-zag varint), then one null branch: six bytes.
    let bomb = [0x80, 0x90, 0xbc, 0xfd, 0x02, 0x00];
    env.produce_raw(&topic, "B-ARRAY", &frame(array, &bomb))
        .await;

    let mut svc = env.spawn_service("regforeign");
    svc.wait_healthy(Duration::from_secs(60)).await;
    env.wait_for_count("1", events.len() as u64, Duration::from_secs(90))
        .await;
    let dead = env.read_dlq(2).await;
    for ((key, headers, _), (want_key, id, why)) in dead.iter().zip([
        (
            "A-FOREIGN",
            unresolvable,
            "does not resolve against the reader schema",
        ),
        ("B-ARRAY", array, "an array"),
    ]) {
        assert_eq!(key, want_key);
        assert_eq!(
            headers["dlq.error.kind"], "foreign_writer_schema",
            "{headers:?}"
        );
        let message = &headers["dlq.error.message"];
        assert!(
            message.contains(&format!(
                "writer schema id {id} is outside the contract of stream"
            )) && message.contains(why)
                && message.contains(&topic),
            "{message}"
        );
    }
    svc.wait_for_metric("dispatch_ingest_records_dead_lettered_total", 2.0)
        .await;
    svc.stop();
    env.cleanup().await;
}
