//! Corpus replay for the decoder fuzz target (`fuzz/fuzz_targets/decode.rs`), on stable Rust in
//! every test run: the committed seeds decode, and many deterministic mutations of them (bit flips,
//! truncations, insertions, splices) give typed errors without a panic. The time-bounded libFuzzer
//! run itself is in `deploy/local/test.sh` (`cargo +nightly fuzz run decode`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use dispatch_ingest::decode::Codec;
use dispatch_ingest::event::Stream;
use dispatch_ingest::fuzzing::{decode_any, selector, FORMATS, NOW_MS};
use dispatch_ingest::generate::{sample_events, SampleOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode")
}

/// Two events of every stream in every format, each prefixed with its selector byte.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let events = sample_events(&SampleOptions {
        incidents: 100,
        seed: 99,
        start_ms: NOW_MS - 10 * 86_400_000,
        spacing_ms: 60_000,
    });
    let mut out = Vec::new();
    for format in FORMATS {
        let codec = Codec::bundled(format);
        for stream in Stream::ALL {
            for (i, e) in events
                .iter()
                .filter(|e| e.stream() == stream)
                .take(2)
                .enumerate()
            {
                let mut bytes = vec![selector(stream, format)];
                bytes.extend(codec.encode_with_id(e, 1));
                out.push((format!("{format}-{}-{i}", stream.name()), bytes));
            }
        }
    }
    out
}

#[test]
fn seed_corpus_is_current() {
    let dir = seed_dir();
    let seeds = seeds();
    assert_eq!(seeds.len(), 30);
    if std::env::var_os("UPDATE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    for (name, bytes) in &seeds {
        let on_disk = std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("seed {name}: {e}; run with UPDATE_FUZZ_SEEDS=1"));
        assert_eq!(
            &on_disk, bytes,
            "seed {name} is stale; run with UPDATE_FUZZ_SEEDS=1"
        );
    }
}

#[test]
fn seeds_decode_and_mutations_never_panic() {
    let mut rng = StdRng::seed_from_u64(2024);
    let seeds = seeds();
    let mut error_kinds = BTreeSet::new();
    let mut decoded = 0usize;
    for (name, seed) in &seeds {
        let got = decode_any(seed).expect("non-empty");
        assert!(got.is_ok(), "seed {name} must decode: {got:?}");
        for _ in 0..400 {
            let mut m = seed.clone();
            match rng.random_range(0..5) {
                0 => {
                    let i = rng.random_range(1..m.len());
                    m[i] ^= 1 << rng.random_range(0..8);
                }
                1 => m.truncate(rng.random_range(1..m.len())),
                2 => {
                    let i = rng.random_range(1..=m.len());
                    let extra: Vec<u8> =
                        (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                    m.splice(i..i, extra);
                }
                3 => {
                    let other = &seeds[rng.random_range(0..seeds.len())].1;
                    let cut = rng.random_range(1..m.len());
                    m.truncate(cut);
                    m.extend_from_slice(&other[rng.random_range(1..other.len())..]);
                }
                _ => {
                    let i = rng.random_range(1..m.len());
                    m[i] = rng.random();
                }
            }
            match decode_any(&m) {
                Some(Ok(_)) => decoded += 1,
                Some(Err(e)) => {
                    error_kinds.insert(e.kind());
                }
                None => {}
            }
        }
    }
    // The mutations reach the error paths of all three formats, and some still decode.
    for kind in [
        "malformed_avro",
        "malformed_json",
        "wrong_magic_byte",
        "invalid_value",
    ] {
        assert!(
            error_kinds.contains(kind),
            "no mutation produced {kind}: {error_kinds:?}"
        );
    }
    assert!(decoded > 0);
}

#[test]
fn local_fuzz_findings_replay_without_panic() {
    // Inputs libFuzzer kept or flagged in local runs (git-ignored), if any.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for sub in ["corpus/decode", "artifacts/decode"] {
        let Ok(entries) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for entry in entries {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let _ = decode_any(&data);
        }
    }
    // Edge inputs: empty, selector only, every selector with an empty and a 1-byte message.
    assert!(decode_any(&[]).is_none());
    for sel in 0..=u8::MAX {
        let _ = decode_any(&[sel]);
        let _ = decode_any(&[sel, 0]);
    }
}
