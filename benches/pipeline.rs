//! Throughput of the per-event work: decoding (plain Avro, Confluent-framed Avro, JSON) and
//! enrichment to the ClickHouse row. `cargo bench`; the end-to-end figure (Kafka -> ClickHouse)
//! comes from bench/e2e.sh.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dispatch_ingest::decode::Codec;
use dispatch_ingest::enrich::{self, reference::Reference, Enricher, Meta, Norms};
use dispatch_ingest::event::SourcePosition;
use dispatch_ingest::event::WireFormat;
use dispatch_ingest::generate::{sample_events, SampleOptions};

const NOW: i64 = 1_735_689_600_000;

fn bench(c: &mut Criterion) {
    let events = sample_events(&SampleOptions {
        incidents: 2_000,
        seed: 1,
        start_ms: NOW - 86_400_000,
        spacing_ms: 30_000,
    });
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(events.len() as u64));
    for format in [
        WireFormat::Avro,
        WireFormat::AvroConfluent,
        WireFormat::Json,
    ] {
        let codec = Codec::bundled(format);
        let encoded: Vec<_> = events
            .iter()
            .map(|e| (e.stream(), codec.encode_with_id(e, 1)))
            .collect();
        group.bench_function(format.to_string(), |b| {
            b.iter(|| {
                for (stream, bytes) in &encoded {
                    std::hint::black_box(codec.decode_local(*stream, bytes, NOW).unwrap());
                }
            })
        });
    }
    group.finish();

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/reference");
    let enricher = Enricher::new(
        Reference::load(&dir).unwrap(),
        18,
        Norms {
            a0: 900,
            a1: 900,
            a2: 1800,
        },
    );
    let position = SourcePosition {
        topic: "dispatch.calls".into(),
        partition: 0,
        offset: 0,
    };
    let meta = Meta {
        position: &position,
        format: WireFormat::Avro,
        schema_id: None,
        ingested_at: 0,
    };
    let mut group = c.benchmark_group("enrich");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("to_row", |b| {
        b.iter(|| {
            for e in &events {
                std::hint::black_box(enrich::to_row(e, &meta, &enricher));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
