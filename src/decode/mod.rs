//! Wire formats into [`DispatchEvent`]s: plain Avro (with a configured writer schema, resolved
//! against the bundled reader schema) and JSON (one object per message, Avro field names).
//!
//! Both formats go through the same path: the bytes become an Avro [`Value`] shaped by the reader
//! schema (JSON is converted field by field using that schema), and one extraction function turns
//! the value into an event and validates it. So a rule (required field, enum symbol, timestamp
//! range, municipality code) is written once and holds for every format. Errors are typed and
//! name the field; the caller adds topic, partition and offset ([`RecordError`]).
//!
//! Confluent framing (magic byte 0, 4-byte big-endian schema id, Avro datum) takes the writer
//! schema from the Schema Registry ([`registry`]); an unreachable registry is reported as
//! [`DecodeFailure::Registry`], which the pipeline waits out instead of dead-lettering.
//!
//! The inverse ([`Codec::encode`]) is here too, for the generator and the tests.

pub mod registry;

use std::collections::HashMap;

use apache_avro::schema::{Name, RecordSchema, Schema, UnionSchema};
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::types::Value;
use uuid::Uuid;

use crate::config::TopicsConfig;
use crate::event::{
    is_municipality_code, DispatchEvent, Envelope, Payload, SourcePosition, Stream, WireFormat,
};
use registry::{RegistryClient, RegistryError};

/// Why a record could not be decoded. `kind()` is stable (metrics labels, DLQ headers).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid Avro datum of the writer schema (kind `malformed_avro`).
    #[error("malformed Avro data: {0}")]
    MalformedAvro(String),
    /// The Avro record decoded but bytes were left over; the count (kind `malformed_avro`).
    #[error("{0} trailing bytes after the Avro record")]
    TrailingBytes(usize),
    /// The bytes are not a JSON object (kind `malformed_json`).
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// A required field is absent; its name (kind `missing_field`).
    #[error("field `{0}` is missing")]
    MissingField(String),
    /// A field has a value of the wrong type (kind `wrong_type`).
    #[error("field `{field}`: expected {expected}, found {found}")]
    WrongType {
        /// Field name.
        field: String,
        /// The type the schema asks for.
        expected: &'static str,
        /// The type that was found.
        found: String,
    },
    /// An enum symbol the schema does not list, in an enum without a default (kind `unknown_enum_symbol`).
    #[error("field `{field}`: unknown enum symbol {symbol:?} and the schema has no default")]
    UnknownSymbol {
        /// Field name.
        field: String,
        /// The symbol that was sent.
        symbol: String,
    },
    /// A field's value breaks a domain rule, e.g. an age outside 0..=130 (kind `invalid_value`).
    #[error("field `{field}`: {message}")]
    InvalidValue {
        /// Field name.
        field: String,
        /// The rule the value breaks.
        message: String,
    },
    /// A Confluent frame whose first byte is not 0; the byte found (kind `wrong_magic_byte`).
    #[error("Confluent framing: magic byte is {0:#04x}, expected 0x00")]
    WrongMagicByte(u8),
    /// A Confluent frame shorter than its 5-byte header; its length (kind `truncated_frame`).
    #[error("Confluent framing: {0} bytes, shorter than the 5-byte header")]
    TooShort(usize),
    /// The schema registry has no schema with this id (kind `unknown_schema_id`).
    #[error("schema id {0} is not known to the schema registry")]
    UnknownSchemaId(u32),
    /// The registry's schema for this id is not an Avro schema or does not parse (kind `bad_writer_schema`).
    #[error("writer schema id {id} is unusable: {message}")]
    BadWriterSchema {
        /// Schema registry id of the writer schema.
        id: u32,
        /// Why it is unusable.
        message: String,
    },
    /// The registry's writer schema is outside the stream's contract ([`writer_schema_problem`]: too deep, recursive, an array or map, or not resolvable to the bundled schema) (kind `foreign_writer_schema`).
    #[error("writer schema id {id} is outside the contract of stream {stream}: {reason}")]
    ForeignWriterSchema {
        /// The stream whose topic the record came from.
        stream: Stream,
        /// Schema registry id of the writer schema.
        id: u32,
        /// What makes the schema incompatible.
        reason: String,
    },
    /// The record exceeds `decode.max_record_bytes` and was not decoded (kind `record_too_large`).
    #[error("record of {bytes} bytes is larger than decode.max_record_bytes ({limit})")]
    RecordTooLarge {
        /// Size of the record's value in bytes.
        bytes: usize,
        /// `decode.max_record_bytes`.
        limit: usize,
    },
}

/// Why [`Codec::decode`] gave no event: the record is bad (dead-letter it), or the schema
/// registry could not be asked (retry later; the record is fine as far as we know).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DecodeFailure {
    /// The record is bad: dead-letter it.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// The schema registry could not be asked: retry later; the record waits.
    #[error(transparent)]
    Registry(RegistryError),
}

impl DecodeError {
    /// Stable short name of the error, used as a metrics label and in the DLQ headers (e.g. `missing_field`).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::MalformedAvro(_) | DecodeError::TrailingBytes(_) => "malformed_avro",
            DecodeError::MalformedJson(_) => "malformed_json",
            DecodeError::MissingField(_) => "missing_field",
            DecodeError::WrongType { .. } => "wrong_type",
            DecodeError::UnknownSymbol { .. } => "unknown_enum_symbol",
            DecodeError::InvalidValue { .. } => "invalid_value",
            DecodeError::WrongMagicByte(_) => "wrong_magic_byte",
            DecodeError::TooShort(_) => "truncated_frame",
            DecodeError::UnknownSchemaId(_) => "unknown_schema_id",
            DecodeError::BadWriterSchema { .. } => "bad_writer_schema",
            DecodeError::ForeignWriterSchema { .. } => "foreign_writer_schema",
            DecodeError::RecordTooLarge { .. } => "record_too_large",
        }
    }
}

/// A [`DecodeError`] with the record's position, e.g.
/// `topic dispatch.calls partition 2 offset 17: field `municipality_code`: ...`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{position}: {error}")]
pub struct RecordError {
    /// Topic, partition and offset of the record.
    pub position: SourcePosition,
    /// What was wrong with it.
    pub error: DecodeError,
}

/// Earliest accepted `occurred_at`: 2000-01-01T00:00:00Z.
pub const MIN_OCCURRED_AT_MS: i64 = 946_684_800_000;
/// How far in the future `occurred_at` may be.
pub const MAX_FUTURE_MS: i64 = 24 * 3600 * 1000;

/// What one record and one writer schema may cost to decode (config section `[decode]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Larger messages are dead-lettered undecoded.
    pub max_record_bytes: usize,
    /// Deepest nesting (records, unions, named references) a registry schema may have.
    pub max_schema_depth: usize,
    /// apache-avro's limit on one allocation (a string's or a block's length); process-wide.
    pub max_allocation_bytes: usize,
}

impl DecodeLimits {
    /// The limits of the `[decode]` config section.
    pub fn from_config(c: &crate::config::DecodeConfig) -> DecodeLimits {
        DecodeLimits {
            max_record_bytes: c.max_record_bytes,
            max_schema_depth: c.max_schema_depth,
            max_allocation_bytes: c.max_allocation_bytes,
        }
    }
}

impl Default for DecodeLimits {
    /// The defaults of the `[decode]` config section.
    fn default() -> Self {
        DecodeLimits::from_config(&crate::config::DecodeConfig::default())
    }
}

/// Why a writer schema from the registry is not accepted for a stream, checked once per
/// (stream, id) before any datum is decoded with it: nesting deeper than the limit, a recursive
/// named type, an array or a map (none is in any stream's contract, and their block counts let a
/// few bytes claim millions of items, which apache-avro reserves up front), or a schema that does
/// not resolve against the stream's reader schema.
pub fn writer_schema_problem(writer: &Schema, reader: &Schema, max_depth: usize) -> Option<String> {
    fn walk<'a>(
        schema: &'a Schema,
        depth: usize,
        max_depth: usize,
        named: &mut HashMap<Name, &'a Schema>,
        enclosing: &mut Vec<Name>,
    ) -> Result<(), String> {
        if depth > max_depth {
            return Err(format!("nested deeper than {max_depth} levels"));
        }
        match schema {
            Schema::Array(_) | Schema::Map(_) => Err(format!(
                "it has {}, which no stream's contract has",
                if matches!(schema, Schema::Array(_)) {
                    "an array"
                } else {
                    "a map"
                }
            )),
            Schema::Ref { name } => {
                if enclosing.contains(name) {
                    return Err(format!("type {} is recursive", name.fullname(None)));
                }
                let target = *named
                    .get(name)
                    .ok_or_else(|| format!("type {} is not defined", name.fullname(None)))?;
                walk(target, depth + 1, max_depth, named, enclosing)
            }
            Schema::Record(r) => {
                named.insert(r.name.clone(), schema);
                enclosing.push(r.name.clone());
                for f in &r.fields {
                    walk(&f.schema, depth + 1, max_depth, named, enclosing)?;
                }
                enclosing.pop();
                Ok(())
            }
            Schema::Enum(e) => {
                named.insert(e.name.clone(), schema);
                Ok(())
            }
            Schema::Fixed(f) => {
                named.insert(f.name.clone(), schema);
                Ok(())
            }
            Schema::Union(u) => u
                .variants()
                .iter()
                .try_for_each(|v| walk(v, depth + 1, max_depth, named, enclosing)),
            _ => Ok(()),
        }
    }
    if let Err(reason) = walk(writer, 1, max_depth, &mut HashMap::new(), &mut Vec::new()) {
        return Some(reason);
    }
    // apache-avro's check wants every writer symbol in the reader's enum; resolution maps an
    // unknown symbol to the reader enum's default, so symbols of such enums are left out first.
    let mut defaults = HashMap::new();
    enums_with_default(reader, &mut defaults);
    let mut writer = writer.clone();
    keep_reader_symbols(&mut writer, &defaults);
    SchemaCompatibility::can_read(&writer, reader)
        .err()
        .map(|e| format!("it does not resolve against the reader schema: {e}"))
}

/// The enums of `schema` that have a default, by name, with their symbols.
fn enums_with_default<'a>(schema: &'a Schema, out: &mut HashMap<Name, &'a [String]>) {
    match schema {
        Schema::Enum(e) if e.default.is_some() => {
            out.insert(e.name.clone(), &e.symbols);
        }
        Schema::Record(r) => r
            .fields
            .iter()
            .for_each(|f| enums_with_default(&f.schema, out)),
        Schema::Union(u) => u.variants().iter().for_each(|v| enums_with_default(v, out)),
        _ => {}
    }
}

/// Drop the symbols a reader enum with a default lacks from the writer's enum of that name.
fn keep_reader_symbols(schema: &mut Schema, reader_enums: &HashMap<Name, &[String]>) {
    match schema {
        Schema::Enum(e) => {
            if let Some(symbols) = reader_enums.get(&e.name) {
                e.symbols.retain(|s| symbols.contains(s));
            }
        }
        Schema::Record(r) => r
            .fields
            .iter_mut()
            .for_each(|f| keep_reader_symbols(&mut f.schema, reader_enums)),
        Schema::Union(u) => {
            let mut variants = u.variants().to_vec();
            variants
                .iter_mut()
                .for_each(|v| keep_reader_symbols(v, reader_enums));
            if let Ok(rebuilt) = UnionSchema::new(variants) {
                *u = rebuilt;
            }
        }
        _ => {}
    }
}

/// Schemas for one stream: what the producer wrote with, and what we read as.
#[derive(Debug)]
struct StreamSchemas {
    writer: Schema,
    reader: Schema,
    /// Writer and reader are the same schema: no resolution needed (the common, fast case).
    same: bool,
    format: WireFormat,
}

/// The bundled (current) schema of a stream, parsed once.
pub fn bundled_schema(stream: Stream) -> &'static Schema {
    static SCHEMAS: std::sync::OnceLock<HashMap<Stream, Schema>> = std::sync::OnceLock::new();
    SCHEMAS
        .get_or_init(|| {
            Stream::ALL
                .into_iter()
                .map(|s| {
                    let schema = Schema::parse_str(s.schema_json())
                        .unwrap_or_else(|e| panic!("bundled schema of {s} does not parse: {e}"));
                    (s, schema)
                })
                .collect()
        })
        .get(&stream)
        .expect("every stream has a schema")
}

/// A reader over a byte slice that remembers whether anyone tried to read past its end.
struct EofTracking<'a> {
    data: &'a [u8],
    pos: usize,
    hit_eof: bool,
}

impl std::io::Read for EofTracking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let rest = &self.data[self.pos..];
        if rest.is_empty() && !buf.is_empty() {
            self.hit_eof = true;
            return Ok(0);
        }
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// Split a Confluent-framed message into schema id and Avro datum.
pub fn confluent_header(bytes: &[u8]) -> Result<(u32, &[u8]), DecodeError> {
    if bytes.len() < 5 {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    if bytes[0] != 0 {
        return Err(DecodeError::WrongMagicByte(bytes[0]));
    }
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    Ok((id, &bytes[5..]))
}

/// Decodes and encodes the five streams.
pub struct Codec {
    streams: HashMap<Stream, StreamSchemas>,
    registry: Option<std::sync::Arc<RegistryClient>>,
    /// Per (stream, registry id): is that writer schema the bundled reader schema (then the
    /// datum is decoded without resolution), or why it is not accepted for the stream.
    registry_same: std::sync::Mutex<HashMap<(Stream, u32), Result<bool, String>>>,
    limits: DecodeLimits,
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Codec")
            .field("streams", &self.streams)
            .field("registry", &self.registry.is_some())
            .finish()
    }
}

/// Per-stream settings for [`Codec::new`].
#[derive(Debug, Clone)]
pub struct StreamFormat {
    /// The stream the settings are for.
    pub stream: Stream,
    /// Wire format of the stream's topic.
    pub format: WireFormat,
    /// Writer schema JSON for plain Avro; `None` means the bundled schema.
    pub writer_schema: Option<String>,
}

impl Codec {
    /// Bundled schemas, the given format for every stream.
    pub fn bundled(format: WireFormat) -> Codec {
        let formats: Vec<StreamFormat> = Stream::ALL
            .into_iter()
            .map(|stream| StreamFormat {
                stream,
                format,
                writer_schema: None,
            })
            .collect();
        Codec::new(&formats).expect("bundled schemas parse")
    }

    /// The codec `[topics]` describes: each stream's wire format and, for plain Avro, its writer
    /// schema file (unreadable or empty: the bundled schema).
    pub fn from_config(topics: &TopicsConfig) -> Result<Codec, apache_avro::Error> {
        let formats: Vec<StreamFormat> = Stream::ALL
            .into_iter()
            .map(|stream| {
                let t = topics.get(stream);
                StreamFormat {
                    stream,
                    format: t.format,
                    writer_schema: (!t.writer_schema.is_empty())
                        .then(|| std::fs::read_to_string(&t.writer_schema).unwrap_or_default()),
                }
            })
            .collect();
        Codec::new(&formats)
    }

    /// A codec for the given streams; fails when a writer schema does not parse.
    pub fn new(formats: &[StreamFormat]) -> Result<Codec, apache_avro::Error> {
        let mut streams = HashMap::new();
        for f in formats {
            let reader = bundled_schema(f.stream).clone();
            let writer = match &f.writer_schema {
                Some(json) => Schema::parse_str(json)?,
                None => reader.clone(),
            };
            let same = writer.canonical_form() == reader.canonical_form();
            streams.insert(
                f.stream,
                StreamSchemas {
                    writer,
                    reader,
                    same,
                    format: f.format,
                },
            );
        }
        Ok(Codec {
            streams,
            registry: None,
            registry_same: std::sync::Mutex::new(HashMap::new()),
            limits: DecodeLimits::default(),
        })
    }

    /// Apply these limits. apache-avro's allocation limit is process-wide and can be set only
    /// once: the first codec to set it wins, a later different value is reported.
    pub fn with_limits(mut self, limits: DecodeLimits) -> Codec {
        let effective = apache_avro::util::max_allocation_bytes(limits.max_allocation_bytes);
        if effective != limits.max_allocation_bytes {
            tracing::warn!(
                effective,
                configured = limits.max_allocation_bytes,
                "apache-avro's allocation limit was already set in this process"
            );
        }
        self.limits = limits;
        self
    }

    /// Use this registry for Confluent-framed topics.
    pub fn with_registry(mut self, registry: std::sync::Arc<RegistryClient>) -> Codec {
        self.registry = Some(registry);
        self
    }

    fn schemas(&self, stream: Stream) -> &StreamSchemas {
        self.streams
            .get(&stream)
            .unwrap_or_else(|| panic!("codec built without stream {stream}"))
    }

    /// The wire format configured for `stream`.
    pub fn format(&self, stream: Stream) -> WireFormat {
        self.schemas(stream).format
    }

    /// Decode one message of `stream`, asking the schema registry for Confluent-framed ones.
    /// `now_ms` bounds `occurred_at` (at most a day ahead). Returns the event and, for
    /// Confluent framing, the writer schema id.
    pub async fn decode(
        &self,
        stream: Stream,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<(DispatchEvent, Option<u32>), DecodeFailure> {
        if self.schemas(stream).format != WireFormat::AvroConfluent {
            return Ok((self.decode_local(stream, bytes, now_ms)?, None));
        }
        let (id, datum) = confluent_header(bytes)?;
        let registry = self
            .registry
            .as_ref()
            .expect("config validation requires schema_registry.url for avro-confluent topics");
        let writer = registry.schema(id).await.map_err(|e| match e {
            RegistryError::NotFound { id } => {
                DecodeFailure::Invalid(DecodeError::UnknownSchemaId(id))
            }
            RegistryError::BadSchema { id, message } => {
                DecodeFailure::Invalid(DecodeError::BadWriterSchema { id, message })
            }
            other => DecodeFailure::Registry(other),
        })?;
        Ok((
            self.decode_registered(stream, id, &writer, datum, now_ms)?,
            Some(id),
        ))
    }

    /// Decode a Confluent datum written with the registry's schema `id` (`writer`): the schema
    /// must be within the stream's contract ([`writer_schema_problem`], checked once per id)
    /// before any byte is decoded with it.
    pub fn decode_registered(
        &self,
        stream: Stream,
        id: u32,
        writer: &Schema,
        datum: &[u8],
        now_ms: i64,
    ) -> Result<DispatchEvent, DecodeError> {
        let schemas = self.schemas(stream);
        let same = self
            .registry_same
            .lock()
            .expect("lock")
            .entry((stream, id))
            .or_insert_with(|| {
                if schemas.same && writer.canonical_form() == schemas.reader.canonical_form() {
                    return Ok(true);
                }
                match writer_schema_problem(writer, &schemas.reader, self.limits.max_schema_depth) {
                    Some(reason) => Err(reason),
                    None => Ok(false),
                }
            })
            .clone()
            .map_err(|reason| DecodeError::ForeignWriterSchema { stream, id, reason })?;
        // The configured writer is the bundled schema for Confluent topics (config validation),
        // so passing it selects the resolution-free path when the registry's schema is that one.
        let writer: &Schema = if same { &schemas.writer } else { writer };
        self.decode_avro(stream, writer, datum, now_ms)
    }

    fn check_size(&self, bytes: &[u8]) -> Result<(), DecodeError> {
        if bytes.len() > self.limits.max_record_bytes {
            return Err(DecodeError::RecordTooLarge {
                bytes: bytes.len(),
                limit: self.limits.max_record_bytes,
            });
        }
        Ok(())
    }

    /// Decode an Avro datum written with `writer`, resolved against the bundled reader schema.
    pub fn decode_avro(
        &self,
        stream: Stream,
        writer: &Schema,
        datum: &[u8],
        now_ms: i64,
    ) -> Result<DispatchEvent, DecodeError> {
        self.check_size(datum)?;
        let schemas = self.schemas(stream);
        // Resolution costs more than decoding; skip it when the writer is the reader schema.
        let reader = if std::ptr::eq(writer, &schemas.writer) && schemas.same {
            None
        } else {
            Some(&schemas.reader)
        };
        let mut input = EofTracking {
            data: datum,
            pos: 0,
            hit_eof: false,
        };
        let value = apache_avro::from_avro_datum(writer, &mut input, reader)
            .map_err(|e| DecodeError::MalformedAvro(e.to_string()))?;
        // apache-avro reads a union (and some values) at end of input as null instead of failing,
        // so a truncated datum could pass with fields silently null: any read past the end is a
        // truncation.
        if input.hit_eof {
            return Err(DecodeError::MalformedAvro(format!(
                "truncated: the {} bytes end before the record does",
                datum.len()
            )));
        }
        let rest = datum.len() - input.pos;
        if rest > 0 {
            return Err(DecodeError::TrailingBytes(rest));
        }
        extract(stream, &value, now_ms)
    }

    /// Decode without the network: plain Avro and JSON as configured; a Confluent-framed message
    /// is checked for its header and its datum read with the configured writer schema (what the
    /// registry would have to return). For tests and fuzzing; the pipeline uses [`Codec::decode`].
    pub fn decode_local(
        &self,
        stream: Stream,
        bytes: &[u8],
        now_ms: i64,
    ) -> Result<DispatchEvent, DecodeError> {
        let schemas = self.schemas(stream);
        let value = match schemas.format {
            WireFormat::Avro => return self.decode_avro(stream, &schemas.writer, bytes, now_ms),
            WireFormat::AvroConfluent => {
                let (_, datum) = confluent_header(bytes)?;
                return self.decode_avro(stream, &schemas.writer, datum, now_ms);
            }
            WireFormat::Json => {
                self.check_size(bytes)?;
                let json: serde_json::Value = serde_json::from_slice(bytes)
                    .map_err(|e| DecodeError::MalformedJson(e.to_string()))?;
                json_to_avro(&json, &schemas.reader, "")?
            }
        };
        extract(stream, &value, now_ms)
    }

    /// Encode an event in its stream's configured format with the bundled schema. For
    /// `avro-confluent`, `schema_id` is the id the bundled schema has in the registry.
    pub fn encode_with_id(&self, event: &DispatchEvent, schema_id: u32) -> Vec<u8> {
        let schemas = self.schemas(event.stream());
        let datum = || {
            apache_avro::to_avro_datum(&schemas.reader, to_avro_value(event))
                .expect("events built by this crate match the bundled schema")
        };
        match schemas.format {
            WireFormat::Avro => datum(),
            WireFormat::AvroConfluent => {
                let mut out = Vec::with_capacity(64);
                out.push(0);
                out.extend_from_slice(&schema_id.to_be_bytes());
                out.extend_from_slice(&datum());
                out
            }
            WireFormat::Json => serde_json::to_vec(&to_json(event)).expect("json"),
        }
    }

    /// [`Codec::encode_with_id`] with schema id 0 (irrelevant unless the format is Confluent).
    pub fn encode(&self, event: &DispatchEvent) -> Vec<u8> {
        self.encode_with_id(event, 0)
    }
}

/// The event as a JSON object with the Avro field names: the envelope, and the payload as serde
/// writes it (its fields carry the Avro field names, a domain enum is written as its symbol; the
/// `type` tag is not a field of any schema).
pub fn to_json(event: &DispatchEvent) -> serde_json::Value {
    let e = &event.envelope;
    let mut map = match serde_json::to_value(&event.payload) {
        Ok(serde_json::Value::Object(map)) => map,
        other => unreachable!("a payload serialises to an object, not {other:?}"),
    };
    map.remove("type");
    map.insert("event_id".into(), e.event_id.to_string().into());
    map.insert("incident_id".into(), e.incident_id.clone().into());
    map.insert("dispatch_centre".into(), e.dispatch_centre.clone().into());
    map.insert("occurred_at".into(), e.occurred_at_ms.into());
    serde_json::Value::Object(map)
}

/// The event as an Avro record of its bundled schema (for Avro container files and
/// [`Codec::encode`]): [`to_json`] read by the conversion that reads JSON messages, so the
/// domain -> wire mapping is the JSON one and the record has the schema's field order, unions
/// and enum indexes by construction.
pub fn to_avro_value(event: &DispatchEvent) -> Value {
    json_to_avro(&to_json(event), bundled_schema(event.stream()), "")
        .expect("events built by this crate match the bundled schema")
}

/// Convert a JSON value to an Avro value of `schema`, applying field defaults and enum defaults
/// the way Avro schema resolution would. `path` names the field for errors.
fn json_to_avro(
    json: &serde_json::Value,
    schema: &Schema,
    path: &str,
) -> Result<Value, DecodeError> {
    use serde_json::Value as J;
    let wrong = |expected: &'static str| DecodeError::WrongType {
        field: path.to_string(),
        expected,
        found: json_type(json),
    };
    match schema {
        Schema::Record(RecordSchema { fields, .. }) => {
            let J::Object(obj) = json else {
                return Err(if path.is_empty() {
                    DecodeError::MalformedJson(format!(
                        "expected an object, found {}",
                        json_type(json)
                    ))
                } else {
                    wrong("object")
                });
            };
            let mut out = Vec::with_capacity(fields.len());
            for f in fields {
                let fpath = if path.is_empty() {
                    f.name.clone()
                } else {
                    format!("{path}.{}", f.name)
                };
                let v = match obj.get(&f.name) {
                    Some(v) => json_to_avro(v, &f.schema, &fpath)?,
                    None => match &f.default {
                        Some(default) => json_to_avro(default, &f.schema, &fpath)?,
                        None => return Err(DecodeError::MissingField(fpath)),
                    },
                };
                out.push((f.name.clone(), v));
            }
            Ok(Value::Record(out))
        }
        Schema::Union(UnionSchema { .. }) => {
            let union = match schema {
                Schema::Union(u) => u,
                _ => unreachable!(),
            };
            if json.is_null() {
                if let Some(i) = union.variants().iter().position(|v| *v == Schema::Null) {
                    return Ok(Value::Union(i as u32, Box::new(Value::Null)));
                }
                return Err(wrong("a non-null value"));
            }
            for (i, variant) in union.variants().iter().enumerate() {
                if *variant == Schema::Null {
                    continue;
                }
                if let Ok(v) = json_to_avro(json, variant, path) {
                    return Ok(Value::Union(i as u32, Box::new(v)));
                }
            }
            // Report the error of the first non-null branch, which names what was expected.
            let first = union
                .variants()
                .iter()
                .find(|v| **v != Schema::Null)
                .expect("union with a non-null branch");
            json_to_avro(json, first, path)
        }
        Schema::Enum(e) => {
            let J::String(s) = json else {
                return Err(wrong("an enum symbol string"));
            };
            if let Some(i) = e.symbols.iter().position(|x| x == s) {
                Ok(Value::Enum(i as u32, s.clone()))
            } else if let Some(d) = &e.default {
                let i = e.symbols.iter().position(|x| x == d).unwrap_or(0);
                Ok(Value::Enum(i as u32, d.clone()))
            } else {
                Err(DecodeError::UnknownSymbol {
                    field: path.to_string(),
                    symbol: s.clone(),
                })
            }
        }
        Schema::String => match json {
            J::String(s) => Ok(Value::String(s.clone())),
            _ => Err(wrong("a string")),
        },
        Schema::Uuid => match json {
            J::String(s) => Ok(Value::String(s.clone())),
            _ => Err(wrong("a UUID string")),
        },
        Schema::Boolean => json
            .as_bool()
            .map(Value::Boolean)
            .ok_or_else(|| wrong("a boolean")),
        Schema::Int => json
            .as_i64()
            .and_then(|i| i32::try_from(i).ok())
            .map(Value::Int)
            .ok_or_else(|| wrong("a 32-bit integer")),
        Schema::Long => json
            .as_i64()
            .map(Value::Long)
            .ok_or_else(|| wrong("an integer")),
        Schema::TimestampMillis => json
            .as_i64()
            .map(Value::TimestampMillis)
            .ok_or_else(|| wrong("epoch milliseconds (integer)")),
        Schema::Null => match json {
            J::Null => Ok(Value::Null),
            _ => Err(wrong("null")),
        },
        _ => Err(DecodeError::InvalidValue {
            field: path.to_string(),
            message: format!("schema type {schema:?} is not supported for JSON input"),
        }),
    }
}

fn json_type(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => format!("boolean {b}"),
        serde_json::Value::Number(n) => format!("number {n}"),
        serde_json::Value::String(s) => format!("string {s:?}"),
        serde_json::Value::Array(_) => "an array".into(),
        serde_json::Value::Object(_) => "an object".into(),
    }
}

/// Field access on a resolved record, with errors that name the field.
struct Fields<'a> {
    fields: &'a [(String, Value)],
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Result<&'a Value, DecodeError> {
        let v = self
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .ok_or_else(|| DecodeError::MissingField(name.to_string()))?;
        Ok(match v {
            Value::Union(_, inner) => inner,
            other => other,
        })
    }

    fn wrong(name: &str, expected: &'static str, found: &Value) -> DecodeError {
        DecodeError::WrongType {
            field: name.to_string(),
            expected,
            found: format!("{found:?}"),
        }
    }

    fn string(&self, name: &str) -> Result<String, DecodeError> {
        match self.get(name)? {
            Value::String(s) => Ok(s.clone()),
            other => Err(Self::wrong(name, "a string", other)),
        }
    }

    fn non_empty(&self, name: &str) -> Result<String, DecodeError> {
        let s = self.string(name)?;
        if s.trim().is_empty() {
            return Err(DecodeError::InvalidValue {
                field: name.to_string(),
                message: "must not be empty".into(),
            });
        }
        Ok(s)
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(Self::wrong(name, "a string or null", other)),
        }
    }

    /// The domain value of an enum field. The value is already resolved against the bundled
    /// reader schema, so its symbol is one of that schema's (a symbol the reader lacks became
    /// the enum's default); a symbol without a domain variant is reported as unknown.
    fn symbol<T: std::str::FromStr>(&self, name: &str) -> Result<T, DecodeError> {
        match self.get(name)? {
            Value::Enum(_, s) => parse_symbol(name, s),
            other => Err(Self::wrong(name, "an enum symbol", other)),
        }
    }

    fn opt_symbol<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            Value::Enum(_, s) => parse_symbol(name, s).map(Some),
            other => Err(Self::wrong(name, "an enum symbol or null", other)),
        }
    }

    fn opt_int(&self, name: &str) -> Result<Option<i32>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            Value::Int(i) => Ok(Some(*i)),
            other => Err(Self::wrong(name, "an int or null", other)),
        }
    }

    fn boolean(&self, name: &str) -> Result<bool, DecodeError> {
        match self.get(name)? {
            Value::Boolean(b) => Ok(*b),
            other => Err(Self::wrong(name, "a boolean", other)),
        }
    }

    fn opt_boolean(&self, name: &str) -> Result<Option<bool>, DecodeError> {
        match self.get(name)? {
            Value::Null => Ok(None),
            Value::Boolean(b) => Ok(Some(*b)),
            other => Err(Self::wrong(name, "a boolean or null", other)),
        }
    }

    fn uuid(&self, name: &str) -> Result<Uuid, DecodeError> {
        match self.get(name)? {
            Value::Uuid(u) => Ok(*u),
            Value::String(s) => Uuid::parse_str(s).map_err(|e| DecodeError::InvalidValue {
                field: name.to_string(),
                message: format!("{s:?} is not a UUID: {e}"),
            }),
            other => Err(Self::wrong(name, "a UUID", other)),
        }
    }

    fn timestamp_ms(&self, name: &str) -> Result<i64, DecodeError> {
        match self.get(name)? {
            Value::TimestampMillis(t) | Value::Long(t) => Ok(*t),
            other => Err(Self::wrong(name, "timestamp-millis", other)),
        }
    }
}

/// The one mapping from an Avro symbol to its domain enum (see [`crate::event`]).
fn parse_symbol<T: std::str::FromStr>(field: &str, symbol: &str) -> Result<T, DecodeError> {
    symbol.parse().map_err(|_| DecodeError::UnknownSymbol {
        field: field.to_string(),
        symbol: symbol.to_string(),
    })
}

fn extract(stream: Stream, value: &Value, now_ms: i64) -> Result<DispatchEvent, DecodeError> {
    let Value::Record(fields) = value else {
        return Err(DecodeError::MalformedAvro(format!(
            "expected a record, found {value:?}"
        )));
    };
    let f = Fields { fields };
    let occurred_at_ms = f.timestamp_ms("occurred_at")?;
    if occurred_at_ms < MIN_OCCURRED_AT_MS {
        return Err(DecodeError::InvalidValue {
            field: "occurred_at".into(),
            message: format!("{occurred_at_ms} ms is before 2000-01-01"),
        });
    }
    if occurred_at_ms > now_ms + MAX_FUTURE_MS {
        return Err(DecodeError::InvalidValue {
            field: "occurred_at".into(),
            message: format!("{occurred_at_ms} ms is more than a day in the future"),
        });
    }
    let envelope = Envelope {
        event_id: f.uuid("event_id")?,
        incident_id: f.non_empty("incident_id")?,
        dispatch_centre: f.non_empty("dispatch_centre")?,
        occurred_at_ms,
    };
    let age = |name: &str| -> Result<Option<i32>, DecodeError> {
        let age = f.opt_int(name)?;
        if let Some(a) = age {
            if !(0..=130).contains(&a) {
                return Err(DecodeError::InvalidValue {
                    field: name.to_string(),
                    message: format!("age {a} is outside 0..=130"),
                });
            }
        }
        Ok(age)
    };
    let payload = match stream {
        Stream::Call => {
            let municipality_code = f.string("municipality_code")?;
            if !is_municipality_code(&municipality_code) {
                return Err(DecodeError::InvalidValue {
                    field: "municipality_code".into(),
                    message: format!(
                        "{municipality_code:?} is not a CBS municipality code (GM + 4 digits)"
                    ),
                });
            }
            Payload::Call {
                urgency: f.symbol("urgency")?,
                municipality_code,
                patient_age_years: age("patient_age_years")?,
                triage_code: f.opt_string("triage_code")?,
            }
        }
        Stream::Alert => Payload::Alert {
            unit_id: f.non_empty("unit_id")?,
            unit_type: f.symbol("unit_type")?,
            mmt_station: f.opt_string("mmt_station")?,
            dispatch_kind: f.symbol("dispatch_kind")?,
            urgency: f.opt_symbol("urgency")?,
        },
        Stream::Cancel => Payload::Cancel {
            unit_id: f.non_empty("unit_id")?,
            cancel_reason: f.symbol("cancel_reason")?,
        },
        Stream::OnScene => Payload::OnScene {
            unit_id: f.non_empty("unit_id")?,
        },
        Stream::Transport => Payload::Transport {
            unit_id: f.non_empty("unit_id")?,
            mode: f.symbol("mode")?,
            mmt_physician_accompanies: f.boolean("mmt_physician_accompanies")?,
            destination: f.opt_string("destination")?,
            patient_age_years: age("patient_age_years")?,
            trauma: f.opt_boolean("trauma")?,
        },
    };
    Ok(DispatchEvent { envelope, payload })
}
