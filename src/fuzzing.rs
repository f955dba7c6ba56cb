//! The decoder's fuzzing entry point, shared by the `cargo fuzz` target (`fuzz/`) and the corpus
//! replay test, so both exercise exactly the same code.

use std::sync::OnceLock;

use apache_avro::Schema;

use crate::decode::{Codec, DecodeError, DecodeLimits};
use crate::event::{DispatchEvent, Stream, WireFormat};

/// The formats in selector order.
pub const FORMATS: [WireFormat; 3] = [
    WireFormat::Avro,
    WireFormat::AvroConfluent,
    WireFormat::Json,
];

/// A fixed clock (2025-01-01), so a fuzz run is reproducible.
pub const NOW_MS: i64 = 1_735_689_600_000;

fn codecs() -> &'static [Codec; 3] {
    static CODECS: OnceLock<[Codec; 3]> = OnceLock::new();
    CODECS.get_or_init(|| FORMATS.map(|f| Codec::bundled(f).with_limits(DecodeLimits::default())))
}

/// Writer schemas a registry could serve for any id, hostile ones included: arrays and maps of
/// nullable unions (a few bytes can claim millions of items), recursion, deep nesting, and a
/// stream's record with an extra array field. Selected by `data[0] / 15` (1 and up; 0 is the
/// configured schema).
pub const REGISTRY_SCHEMAS: [&str; 5] = [
    r#"{"type":"array","items":["null","long"]}"#,
    r#"{"type":"map","values":["null","string"]}"#,
    r#"{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]},{"name":"kids","type":{"type":"array","items":"Node"}}]}"#,
    r#"{"type":"record","name":"A","fields":[{"name":"b","type":{"type":"record","name":"B","fields":[{"name":"c","type":["null",{"type":"record","name":"C","fields":[{"name":"d","type":"long"}]}]}]}}]}"#,
    "stream+array",
];

/// The writer schema `REGISTRY_SCHEMAS[i]` for `stream`, parsed once.
pub fn registry_schema(stream: Stream, i: usize) -> &'static Schema {
    static PARSED: OnceLock<Vec<Vec<Schema>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        Stream::ALL
            .iter()
            .map(|s| {
                REGISTRY_SCHEMAS
                    .iter()
                    .map(|json| {
                        let json = if *json == "stream+array" {
                            with_array_field(s.schema_json())
                        } else {
                            json.to_string()
                        };
                        Schema::parse_str(&json).expect("fuzzing schemas parse")
                    })
                    .collect()
            })
            .collect()
    });
    let s = Stream::ALL
        .iter()
        .position(|x| *x == stream)
        .expect("stream");
    &parsed[s][i]
}

/// A stream's schema with one more field: an array of nullable longs.
fn with_array_field(schema_json: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(schema_json).expect("bundled schema");
    v["fields"]
        .as_array_mut()
        .expect("a record")
        .push(serde_json::json!({
            "name": "extra",
            "type": {"type": "array", "items": ["null", "long"]},
            "default": []
        }));
    v.to_string()
}

/// The selector byte for a stream and format.
pub fn selector(stream: Stream, format: WireFormat) -> u8 {
    let s = Stream::ALL
        .iter()
        .position(|x| *x == stream)
        .expect("stream") as u8;
    let f = FORMATS.iter().position(|x| *x == format).expect("format") as u8;
    f * 5 + s
}

/// Decode `data[1..]` as the stream and format `data[0]` selects; from `data[0] >= 15` on, as a
/// Confluent datum whose registry schema is one of [`REGISTRY_SCHEMAS`].
pub fn decode_any(data: &[u8]) -> Option<Result<DispatchEvent, DecodeError>> {
    let (&sel, msg) = data.split_first()?;
    let stream = Stream::ALL[usize::from(sel % 5)];
    let variant = usize::from(sel / 15) % (REGISTRY_SCHEMAS.len() + 1);
    if variant == 0 {
        let codec = &codecs()[usize::from(sel / 5 % 3)];
        return Some(codec.decode_local(stream, msg, NOW_MS));
    }
    let writer = registry_schema(stream, variant - 1);
    let id = 1000 + variant as u32;
    Some(codecs()[1].decode_registered(stream, id, writer, msg, NOW_MS))
}
