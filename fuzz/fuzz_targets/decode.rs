//! Fuzz the decoder: any bytes, any stream, any wire format (plain Avro, Confluent-framed Avro,
//! JSON) must give an event or a typed error, never a panic.
//!
//! Input layout: the first byte selects the stream (`% 5`) and the format (`/ 5 % 3`); the rest is
//! the message. Seeds: `fuzz/seeds/decode/` (kept current by `tests/fuzz_replay.rs`).
#![no_main]

use dispatch_ingest::fuzzing::decode_any;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decode_any(data);
});
