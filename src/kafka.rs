//! What every Kafka client of the crate shares: the librdkafka properties built from `[kafka]`
//! ([`client_config`]), the owned record as read ([`RawRecord`], [`RawHeader`]) and header access
//! that accepts keys that are not UTF-8. The consumer (`source`), the DLQ producer (`dlq`), the
//! audit and the generator build on it without depending on each other.

use rdkafka::config::ClientConfig;
use rdkafka::message::{BorrowedHeaders, Headers, OwnedHeaders};

use crate::config::KafkaConfig;
use crate::event::{SourcePosition, Stream};
use crate::security;

/// A record as read from Kafka, owned, with where it came from.
#[derive(Debug, Clone)]
pub struct RawRecord {
    /// Topic, partition and offset of the record.
    pub position: SourcePosition,
    /// The stream its topic carries.
    pub stream: Stream,
    /// The record's key (the incident id, as producers write it), if any.
    pub key: Option<Vec<u8>>,
    /// The record's value (the encoded event); `None` for a tombstone.
    pub payload: Option<Vec<u8>>,
    /// The record's headers, in order.
    pub headers: Vec<RawHeader>,
    /// Assignment generation of the partition when the record was read (see `source::OffsetTracker`).
    pub generation: u64,
    /// The Kafka record timestamp (create or log-append time), UTC milliseconds, when set.
    pub kafka_timestamp_ms: Option<i64>,
}

/// A Kafka record header as the broker holds it: the key is bytes (librdkafka-based producers
/// such as kcat or sarama may write keys that are not UTF-8) and the value may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    /// Header key, as bytes.
    pub key: Vec<u8>,
    /// Header value; `None` when null.
    pub value: Option<Vec<u8>>,
}

impl RawHeader {
    /// The key as text, with invalid UTF-8 replaced (for matching and logging only).
    pub fn key_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.key)
    }
}

/// Read every header as bytes. rdkafka's `Headers::get`/`iter` unwrap the key's `to_str()` and
/// panic on a key that is not UTF-8, so this reads through librdkafka directly.
pub fn read_headers(headers: &BorrowedHeaders) -> Vec<RawHeader> {
    // `BorrowedHeaders` is a zero-sized view whose address is librdkafka's headers object.
    let native = headers as *const BorrowedHeaders as *const rdkafka::bindings::rd_kafka_headers_t;
    let mut out = Vec::with_capacity(headers.count());
    for idx in 0..headers.count() {
        let mut name: *const std::os::raw::c_char = std::ptr::null();
        let mut value: *const std::os::raw::c_void = std::ptr::null();
        let mut size: usize = 0;
        // SAFETY: `native` is valid for the lifetime of `headers`; librdkafka returns pointers
        // into the headers object (a NUL-terminated name, `size` value bytes or null), which we
        // copy before `headers` can go away.
        let err = unsafe {
            rdkafka::bindings::rd_kafka_header_get_all(
                native, idx, &mut name, &mut value, &mut size,
            )
        };
        if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
            || name.is_null()
        {
            break;
        }
        let key = unsafe { std::ffi::CStr::from_ptr(name) }
            .to_bytes()
            .to_vec();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value as *const u8, size) }.to_vec());
        out.push(RawHeader { key, value });
    }
    out
}

/// Append a header with a key of any bytes and a possibly null value (rdkafka's
/// `OwnedHeaders::insert` takes only `&str` keys).
pub fn add_raw_header(headers: &mut OwnedHeaders, key: &[u8], value: Option<&[u8]>) {
    let native = headers.as_borrowed() as *const BorrowedHeaders
        as *mut rdkafka::bindings::rd_kafka_headers_t;
    let (ptr, len) = match value {
        Some(v) => (v.as_ptr() as *const std::os::raw::c_void, v.len() as isize),
        None => (std::ptr::null(), 0),
    };
    // SAFETY: `headers` is an owned, writable librdkafka headers object borrowed mutably here;
    // librdkafka copies the name and value.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_header_add(
            native,
            key.as_ptr() as *const std::os::raw::c_char,
            key.len() as isize,
            ptr,
            len,
        )
    };
    debug_assert_eq!(
        err,
        rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
    );
}

/// A record that is finished: inserted, or acknowledged by the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// Topic of the finished record.
    pub topic: String,
    /// Partition of the finished record.
    pub partition: i32,
    /// Offset of the finished record.
    pub offset: i64,
    /// Assignment generation the record was read in; completions of an older generation are ignored.
    pub generation: u64,
    /// The record's Kafka timestamp (for the Kafka -> inserted latency histogram).
    pub kafka_timestamp_ms: Option<i64>,
}

impl RawRecord {
    /// The completion of this record, to report once it is inserted or dead-lettered.
    pub fn done(&self) -> Done {
        Done {
            topic: self.position.topic.clone(),
            partition: self.position.partition,
            offset: self.position.offset,
            generation: self.generation,
            kafka_timestamp_ms: self.kafka_timestamp_ms,
        }
    }
}

/// librdkafka properties shared by the consumer, the DLQ producer and the generator.
pub fn client_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.bootstrap_servers)
        .set("client.id", &k.client_id);
    security::apply_kafka(k, &mut c);
    for (key, value) in &k.extra {
        c.set(key, value);
    }
    c
}
