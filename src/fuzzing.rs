//! The decoder's fuzzing entry point, shared by the `cargo fuzz` target (`fuzz/`) and the corpus
//! replay test, so both exercise exactly the same code.

use std::sync::OnceLock;

use crate::decode::{Codec, DecodeError};
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
    CODECS.get_or_init(|| FORMATS.map(Codec::bundled))
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

/// Decode `data[1..]` as the stream and format `data[0]` selects.
pub fn decode_any(data: &[u8]) -> Option<Result<DispatchEvent, DecodeError>> {
    let (&sel, msg) = data.split_first()?;
    let stream = Stream::ALL[usize::from(sel % 5)];
    let codec = &codecs()[usize::from(sel / 5 % 3)];
    Some(codec.decode_local(stream, msg, NOW_MS))
}
