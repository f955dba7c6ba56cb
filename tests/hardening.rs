//! Production hardening (issue #10) against the real local Kafka broker and ClickHouse server:
//! records from producers that are not ours, failing stages, and health that tells the truth.

mod common;

use std::process::Command;
use std::time::Duration;

use dispatch_ingest::decode::Codec;
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::event::{DispatchEvent, Envelope, Payload, Stream, Urgency};
use dispatch_ingest::kafka::{read_headers, RawHeader};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use uuid::Uuid;

use common::TestEnv;

fn call(incident: &str) -> DispatchEvent {
    DispatchEvent {
        envelope: Envelope {
            event_id: Uuid::new_v4(),
            incident_id: incident.into(),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: dispatch_ingest::clock::now_ms() - 60_000,
        },
        payload: Payload::Call {
            urgency: Urgency::A1,
            municipality_code: "GM0344".into(),
            patient_age_years: Some(34),
            triage_code: None,
        },
    }
}

/// A header key that is not UTF-8, as librdkafka-based producers can write.
const BAD_KEY: &[u8] = b"\xff\xfetrace";

/// Produce `payload` to partition 0 of `topic` with kcat (a librdkafka producer that is not
/// ours), with a non-UTF-8 header key and a header without a value (null).
fn kcat_produce(env: &TestEnv, topic: &str, key: &str, payload: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("payload");
    std::fs::write(&file, payload).unwrap();
    let mut bad_header = BAD_KEY.to_vec();
    bad_header.extend_from_slice(b"=x");
    let out = Command::new("kcat")
        .args([
            "-P", "-b", &env.kafka, "-t", topic, "-p", "0", "-k", key, "-H",
        ])
        .arg(std::ffi::OsStr::from_bytes(&bad_header))
        .args(["-H", "nullvalue"])
        .arg(&file)
        .output()
        .expect("kcat (deploy/local/install.sh installs it)");
    assert!(
        out.status.success(),
        "kcat -P failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every DLQ record's headers, raw, in offset order over partitions.
async fn dlq_headers(env: &TestEnv, n: usize) -> Vec<Vec<RawHeader>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", env.kafka.clone())
        .set("group.id", format!("{}-raw-dlq", env.group))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&env.dlq_topic]).unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("DLQ record within 60 s")
            .unwrap();
        out.push(msg.headers().map(read_headers).unwrap_or_default());
    }
    out
}

/// Defect 1: a header key that is not UTF-8 and a null header value crashed the consumer
/// (rdkafka's `Headers::iter` unwraps `to_str()`). The good record lands, the bad one is
/// dead-lettered with the odd headers kept byte for byte, and the offset is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_header_keys_and_null_values_are_processed_not_fatal() {
    let env = TestEnv::new("hdr").await;
    env.run_cli(&["migrate"]);
    let codec = Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Call).to_string();
    let good = call("INC-HDR-GOOD");
    kcat_produce(&env, &topic, "INC-HDR-GOOD", &codec.encode(&good));
    kcat_produce(&env, &topic, "INC-HDR-BAD", b"not avro at all");

    let mut svc = env.spawn_service("hdr");
    svc.wait_healthy(Duration::from_secs(30)).await;
    let id = good.envelope.event_id;
    env.wait_for_count(
        &format!("event_id = toUUID('{id}')"),
        1,
        Duration::from_secs(60),
    )
    .await;
    let dead = dlq_headers(&env, 1).await;
    let h = &dead[0];
    assert!(
        h.iter()
            .any(|x| x.key == BAD_KEY && x.value.as_deref() == Some(&b"x"[..])),
        "the non-UTF-8 header key is kept on the DLQ copy: {h:?}"
    );
    assert!(
        h.iter().any(|x| x.key == b"nullvalue" && x.value.is_none()),
        "the null header value stays null on the DLQ copy: {h:?}"
    );
    svc.wait_for_metric("dispatch_ingest_records_dead_lettered_total", 1.0)
        .await;
    assert!(
        svc.child.try_wait().unwrap().is_none(),
        "service still running"
    );
    svc.stop();
    assert_eq!(env.committed(&topic, 0), Some(2));
    assert!(
        !svc.log_text().contains("panicked"),
        "no panic: {}",
        svc.log_text()
    );
    env.cleanup().await;
}

/// Defect 7: a stage that panics used to end the run with "pipeline stopped" and exit 0, so a
/// supervisor saw a clean stop. Now: non-zero exit, an error line naming the stage and cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_stage_exits_non_zero_with_the_cause_logged() {
    let mut env = TestEnv::new("panic").await;
    env.run_cli(&["migrate"]);
    env.set_env(dispatch_ingest::pipeline::Fault::ENV, "panic:process");
    let codec = Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Call).to_string();
    env.produce_raw(&topic, "INC-PANIC", &codec.encode(&call("INC-PANIC")))
        .await;
    let mut svc = env.spawn_service("panic");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = svc.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "service still running 60 s after a stage panicked; log:\n{}",
            svc.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = svc.log_text();
    assert_eq!(status.code(), Some(1), "exit code; log:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("pipeline stage failed"))
        .unwrap_or_else(|| panic!("no stage failure line; log:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["level"], "ERROR", "{line}");
    assert_eq!(v["stage"], "process", "{line}");
    assert!(
        v["cause"].as_str().unwrap().contains("injected fault"),
        "{line}"
    );
    assert!(!log.contains("consumed 1 inserted"), "no success summary");
    // Nothing was inserted, so nothing was committed: the record is read again on restart.
    assert_eq!(env.committed(&topic, 0).unwrap_or(0), 0);
    env.cleanup().await;
}

/// Defect 7, the metric: run the pipeline in this process with the Prometheus recorder, inject
/// a panic into the sink stage, and read `dispatch_ingest_stage_failures_total{stage="sink"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_stage_is_counted_and_returned_as_an_error() {
    let env = TestEnv::new("stagefail").await;
    env.run_cli(&["migrate"]);
    let handle = dispatch_ingest::telemetry::install_recorder().unwrap();
    let codec = Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Call).to_string();
    env.produce_raw(&topic, "INC-SINK", &codec.encode(&call("INC-SINK")))
        .await;
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        dispatch_ingest::pipeline::run_with_fault(
            env.config(),
            std::future::pending(),
            dispatch_ingest::telemetry::Health::default(),
            Some(dispatch_ingest::pipeline::Fault::Panic("sink")),
        ),
    )
    .await
    .expect("the run ends by itself when a stage fails");
    match result {
        Err(dispatch_ingest::pipeline::PipelineError::StageFailed { stage, cause }) => {
            assert_eq!(stage, "sink");
            assert!(cause.contains("injected fault"), "{cause}");
        }
        other => panic!("expected a stage failure, got {other:?}"),
    }
    let text = handle.render();
    assert_eq!(
        common::metric_value(
            &text,
            "dispatch_ingest_stage_failures_total{stage=\"sink\"}"
        ),
        1.0,
        "{text}"
    );
    env.cleanup().await;
}

/// Defect 10: `check-config` masks every secret (also `kafka.extra` keys holding keys, and
/// passwords inside URLs); a config error never echoes a secret; `kafka.extra` cannot turn the
/// delivery guarantee off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_and_config_errors_show_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        r#"
[kafka]
sasl_password = "PLANTED-SASL"
[kafka.extra]
"ssl.key.pem" = "PLANTED-KEY-PEM"
"sasl.oauthbearer.config" = "PLANTED-OAUTH"
"ssl.keystore.password" = "PLANTED-KEYSTORE"
"ssl.truststore.location" = "/etc/ssl/trust.jks"
[clickhouse]
url = "http://ingest:PLANTED-CH-URL@127.0.0.1:8123"
password = "PLANTED-CH"
"#,
    )
    .unwrap();
    let run = |extra_env: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dispatch-ingest"));
        cmd.arg("--config").arg(&file).arg("check-config");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&[]);
    let shown =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{shown}");
    assert!(!shown.contains("PLANTED"), "a secret is shown:\n{shown}");
    assert!(
        shown.contains("http://ingest:***@127.0.0.1:8123"),
        "{shown}"
    );
    assert!(
        shown.contains("/etc/ssl/trust.jks"),
        "not a secret: {shown}"
    );

    // An invalid value of a secret key: the error names the key, not the value.
    let out = run(&[("DISPATCH_INGEST__CLICKHOUSE__URL", "ftp://u:PLANTED-BAD@x")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("clickhouse.url") && !err.contains("PLANTED"),
        "{err}"
    );

    for key in [
        "ENABLE.AUTO.COMMIT",
        "ENABLE.AUTO.OFFSET.STORE",
        "ISOLATION.LEVEL",
    ] {
        let var = format!("DISPATCH_INGEST__KAFKA__EXTRA__{key}");
        let out = run(&[(var.as_str(), "read_uncommitted")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{key}: {err}");
        assert!(
            err.contains(&format!("kafka.extra.{}", key.to_lowercase()))
                && err.contains("cannot be overridden"),
            "{err}"
        );
    }
}

/// Defect 10: per-record warnings name the position and the error kind, never field values,
/// and are rate limited; the service's log holds neither planted patient values nor secrets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_patient_values_or_secrets_and_record_warnings_are_rate_limited() {
    let mut env = TestEnv::new("logs").await;
    env.run_cli(&["migrate"]);
    env.set_env("DISPATCH_INGEST__KAFKA__SASL_PASSWORD", "PLANTED-SASL");
    env.set_env(
        "DISPATCH_INGEST__CLICKHOUSE__URL",
        &env.clickhouse_url.replace("http://", "http://default:@"),
    );
    let codec = Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Call).to_string();
    let mut records = Vec::new();
    for i in 0..40 {
        let mut ev = call(&format!("INC-LOG-{i}"));
        if let Payload::Call {
            municipality_code,
            patient_age_years,
            triage_code,
            ..
        } = &mut ev.payload
        {
            // Invalid (dead-lettered, the error names the code) and unknown-but-valid codes.
            *municipality_code = if i % 2 == 0 {
                "PLANTEDMUNI".into()
            } else {
                "GM9917".into()
            };
            *patient_age_years = Some(117);
            *triage_code = Some("PLANTEDTRIAGE".into());
        }
        records.push((topic.clone(), format!("INC-LOG-{i}"), codec.encode(&ev)));
    }
    env.produce_many(&records).await;
    let mut svc = env.spawn_service("logs");
    svc.wait_healthy(Duration::from_secs(60)).await;
    svc.wait_for_metric("dispatch_ingest_records_dead_lettered_total", 20.0)
        .await;
    env.wait_for_count("1", 20, Duration::from_secs(60)).await;
    svc.stop();
    let log = svc.log_text();
    for planted in ["PLANTEDMUNI", "GM9917", "PLANTEDTRIAGE", "PLANTED-SASL"] {
        assert!(!log.contains(planted), "{planted} in the log:\n{log}");
    }
    // The planted age as a number of its own: "117" inside a longer number (a timestamp's
    // microseconds, a port, a duration) is not the patient's age.
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    let age_at = log.match_indices("117").find(|(i, _)| {
        !digit(log[..*i].chars().next_back()) && !digit(log[i + 3..].chars().next())
    });
    assert!(
        age_at.is_none(),
        "the planted age 117 in the log at byte {:?}:\n{log}",
        age_at.map(|(i, _)| i)
    );
    let warnings = log
        .lines()
        .filter(|l| l.contains("record sent to the dead-letter topic"))
        .count() as u32;
    assert!(
        (1..=dispatch_ingest::telemetry::RECORD_WARNINGS_PER_MINUTE).contains(&warnings),
        "{warnings} per-record warnings for 20 dead-lettered records:\n{log}"
    );
    env.cleanup().await;
}
