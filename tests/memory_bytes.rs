//! Memory is bounded by bytes, not by a count of records: a backlog of records of about 1 MB
//! each (within `decode.max_record_bytes`) read while ClickHouse is down must keep the service's
//! peak resident memory (`VmHWM`) within `memory.limit_mb` plus the process's base. Before the
//! byte budget, the channels held up to `batch.channel_capacity` (10,000) records each however
//! large, so the whole backlog ended up in memory. When ClickHouse is back, every record lands.

mod common;

use std::time::{Duration, Instant};

use common::servers::PrivateServer;
use common::TestEnv;
use dispatch_ingest::event::{DispatchEvent, Envelope, Payload, Stream, TransportMode, WireFormat};

/// `memory.limit_mb` of the service under test.
const LIMIT_MB: u64 = 64;
/// What the process needs beside its record data (code, threads, TLS roots, librdkafka's and the
/// allocator's own): 32 MiB at start (debug build). Measured peaks with LIMIT_MB = 64: 80 MiB
/// while ClickHouse is down, 97-109 MiB while draining (the insert's request buffers and the
/// allocator's slack come on top); without the byte budget 322 MiB (everything read).
const BASE_MB: u64 = 80;
/// Records of this many bytes of free text (`destination`), under the producer's and the
/// broker's 1,000,000-byte message limit and `decode.max_record_bytes` (1 MiB).
const TEXT_BYTES: usize = 960 * 1024;
/// About 280 MiB of records: more than four times the limit.
const RECORDS: usize = 300;

/// The text of every record is this long (whole repetitions of a 48-byte line).
const TEXT_BYTES_IN_ROW: usize = TEXT_BYTES / 48 * 48;

fn big_event(i: usize) -> DispatchEvent {
    // Varied text, so neither Kafka nor anything else can share it.
    let line = format!("Ziekenhuis {i:05} afdeling spoedeisende hulp;    ");
    assert_eq!(line.len(), 48);
    let destination = line.repeat(TEXT_BYTES_IN_ROW / 48);
    DispatchEvent {
        envelope: Envelope {
            event_id: uuid::Uuid::new_v4(),
            incident_id: format!("INC-MEM-{i:05}"),
            dispatch_centre: "MKA Midden-Nederland".into(),
            occurred_at_ms: dispatch_ingest::clock::now_ms() - 60_000,
        },
        payload: Payload::Transport {
            unit_id: "17-123".into(),
            mode: TransportMode::Ambulance,
            mmt_physician_accompanies: false,
            destination: Some(destination),
            patient_age_years: None,
            trauma: None,
        },
    }
}

/// Peak and current resident memory of a process, in MiB (`VmHWM`, `VmRSS`).
fn memory_mb(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status:\n{status}"))
            / 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_records_while_clickhouse_is_down_stay_within_the_memory_limit() {
    let started = Instant::now();
    let ch = PrivateServer::clickhouse();
    ch.up();
    let mut env = TestEnv::with_servers("membytes", &common::kafka_bootstrap(), &ch.url()).await;
    env.run_cli(&["migrate"]);
    env.set_env("DISPATCH_INGEST__MEMORY__LIMIT_MB", &LIMIT_MB.to_string());
    // At most a quarter of the limit (validation refuses more).
    env.set_env("DISPATCH_INGEST__BATCH__MAX_BYTES", &(8 << 20).to_string());
    // Retry quickly once ClickHouse is back.
    env.set_env("DISPATCH_INGEST__RETRY__MAX_MS", "1000");
    env.set_env("DISPATCH_INGEST__CLICKHOUSE__REQUEST_TIMEOUT_MS", "10000");
    let mut svc = env.spawn_service("membytes");
    svc.wait_healthy(Duration::from_secs(60)).await;
    let pid = svc.child.id();
    let (at_start, _) = memory_mb(pid);
    ch.down();

    let codec = dispatch_ingest::decode::Codec::bundled(WireFormat::Avro);
    let topic = env.topic(Stream::Transport).to_string();
    for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(50) {
        let records: Vec<(String, String, Vec<u8>)> = chunk
            .iter()
            .map(|&i| {
                let e = big_event(i);
                let bytes = codec.encode(&e);
                assert!(bytes.len() < 1_000_000, "{} bytes", bytes.len());
                (topic.clone(), e.envelope.incident_id.clone(), bytes)
            })
            .collect();
        env.produce_many(&records).await;
    }

    // The service reads until its budget is full; wait until it stops taking records.
    let consumed_metric = "dispatch_ingest_records_consumed_total";
    let mut last = (-1.0, Instant::now());
    loop {
        let n = svc.metric(consumed_metric).await;
        if n != last.0 {
            last = (n, Instant::now());
        } else if n > 0.0 && last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "still consuming ({n})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let consumed = last.0 as usize;
    let (peak, now) = memory_mb(pid);
    println!(
        "memory.limit_mb {LIMIT_MB}: {RECORDS} records of {TEXT_BYTES} bytes produced while ClickHouse is down; \
         {consumed} read; VmHWM {peak} MiB (at start {at_start} MiB), VmRSS {now} MiB"
    );
    assert!(
        peak <= LIMIT_MB + BASE_MB,
        "peak resident memory {peak} MiB exceeds memory.limit_mb {LIMIT_MB} + {BASE_MB} MiB base \
         ({consumed} of {RECORDS} records read)"
    );
    assert!(
        consumed < RECORDS / 2,
        "{consumed} of {RECORDS} records read while ClickHouse is down: not held back by bytes"
    );

    // ClickHouse back: every record lands, none dead-lettered.
    ch.up();
    env.wait_for_events(RECORDS as u64, Duration::from_secs(90))
        .await;
    // (`countIf` over a Nullable column is Nullable on 18.16: count rows instead.)
    let full = env
        .scalar(
            "SELECT count() FROM {db}.dispatch_events WHERE ifNull(length(destination), 0) = {len}"
                .replace("{len}", &TEXT_BYTES_IN_ROW.to_string())
                .as_str(),
        )
        .await;
    let rows = env.scalar("SELECT count() FROM {db}.dispatch_events").await;
    assert_eq!(
        (rows, full),
        (RECORDS as u64, RECORDS as u64),
        "every row once, with its full text"
    );
    assert_eq!(env.dlq_len(), 0, "nothing dead-lettered");
    let (peak_after, _) = memory_mb(pid);
    println!(
        "after draining: VmHWM {peak_after} MiB; total {:?}",
        started.elapsed()
    );
    assert!(
        peak_after <= LIMIT_MB + BASE_MB,
        "peak resident memory {peak_after} MiB while draining exceeds {LIMIT_MB} + {BASE_MB} MiB"
    );
    svc.stop();
    env.cleanup().await;
}
