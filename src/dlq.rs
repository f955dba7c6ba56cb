//! The dead-letter topic: records that cannot be decoded or validated are written there with
//! their original key and bytes, and headers that say why and where they came from. A record's
//! offset counts as finished only after the dead-letter write is acknowledged.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::backoff::{Backoff, RetryClass, RetryOperation};
use crate::config::{KafkaConfig, RetryConfig};
use crate::event::SourcePosition;
use crate::kafka::{add_raw_header, client_config, RawHeader, RawRecord};
use crate::telemetry::{self, Health};

/// Header: the error kind, a stable short name such as `missing_field` (also the `kind` label of the dead-letter metric).
pub const HEADER_ERROR_KIND: &str = "dlq.error.kind";
/// Header: the error message, cut to [`MAX_ERROR_MESSAGE_BYTES`].
pub const HEADER_ERROR_MESSAGE: &str = "dlq.error.message";
/// Header: the topic the record was read from.
pub const HEADER_SOURCE_TOPIC: &str = "dlq.source.topic";
/// Header: the partition the record was read from (decimal).
pub const HEADER_SOURCE_PARTITION: &str = "dlq.source.partition";
/// Header: the offset of the record (decimal).
pub const HEADER_SOURCE_OFFSET: &str = "dlq.source.offset";
/// Set when the copy's value was cut to fit the producer's `message.max.bytes`: the original
/// value's size in bytes and its SHA-256 (hex).
pub const HEADER_ORIGINAL_SIZE: &str = "dlq.original.size";
/// Header: the SHA-256 (hex) of the original value, set with [`HEADER_ORIGINAL_SIZE`] when the copy was cut.
pub const HEADER_ORIGINAL_SHA256: &str = "dlq.original.sha256";

/// The error text in the headers is cut to this many bytes.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 1024;

/// The dead-letter producer: writes a copy of a bad record, with the reason and source position in headers, to `kafka.dlq_topic`.
pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
    /// Key, value and headers of a copy together stay below this.
    max_bytes: usize,
    health: Health,
    /// `[retry]`: the waits between write attempts.
    retry: RetryConfig,
}

/// librdkafka's default `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;

/// Produce errors that no retry can fix: the copy is too large, the topic does not exist or
/// may not be written, the record is invalid for the broker.
pub fn is_permanent(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::UnknownTopic
                | C::UnknownTopicOrPartition
                | C::TopicAuthorizationFailed
                | C::ClusterAuthorizationFailed
                | C::InvalidRecord
                | C::InvalidMessageSize
        )
    )
}

/// The longest prefix of `s` within `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl DeadLetters {
    /// The producer of `[kafka]`'s `dlq_topic`, retrying failed writes with the policy of
    /// `[retry]`.
    pub fn new(k: &KafkaConfig, retry: &RetryConfig) -> rdkafka::error::KafkaResult<DeadLetters> {
        let message_max = k
            .extra
            .get("message.max.bytes")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
        let producer: FutureProducer = client_config(k)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()?;
        Ok(DeadLetters {
            producer,
            topic: k.dlq_topic.clone(),
            // Room for the record batch overhead and librdkafka's own framing.
            max_bytes: message_max.saturating_sub(16 * 1024),
            health: Health::default(),
            retry: retry.clone(),
        })
    }

    /// Report partitions stalled on the DLQ to `health` (`/ready`, `dispatch_ingest_dlq_stalled`).
    pub fn with_health(mut self, health: Health) -> DeadLetters {
        self.health = health;
        self
    }

    /// Write `record` to the dead-letter topic and wait for the acknowledgement, retrying with
    /// backoff until it is acknowledged: a bad record is never dropped.
    pub async fn send(&self, record: &RawRecord, kind: &str, message: &str) {
        self.send_parts(
            record.key.as_deref(),
            record.payload.as_deref(),
            &record.headers,
            &record.position,
            (kind, message),
            "process",
        )
        .await;
    }

    /// [`DeadLetters::send`] from parts: key, payload and headers to write, the source position.
    pub async fn send_parts(
        &self,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        extra_headers: &[RawHeader],
        pos: &SourcePosition,
        (kind, message): (&str, &str),
        caller: &'static str,
    ) {
        let partition = pos.partition.to_string();
        let offset = pos.offset.to_string();
        let message = cut(message, MAX_ERROR_MESSAGE_BYTES);
        // Bound the copy: headers first, the key kept, the value cut to what is left.
        let header_bytes: usize = extra_headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len) + 16)
            .sum::<usize>()
            + message.len()
            + kind.len()
            + pos.topic.len()
            + 512;
        let key = key.map(|k| &k[..k.len().min(self.max_bytes / 4)]);
        let room = self
            .max_bytes
            .saturating_sub(header_bytes + key.map_or(0, <[u8]>::len));
        let (payload, original) = match payload {
            Some(p) if p.len() > room => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(p);
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                (Some(&p[..room]), Some((p.len().to_string(), hex)))
            }
            other => (other, None),
        };
        let mut backoff = Backoff::from_config(&self.retry);
        let mut stalled = false;
        let mut attempt = 0u32;
        let subject = pos.to_string();
        loop {
            let mut headers = OwnedHeaders::new();
            for h in extra_headers {
                add_raw_header(&mut headers, &h.key, h.value.as_deref());
            }
            let ours = [
                (HEADER_ERROR_KIND, kind),
                (HEADER_ERROR_MESSAGE, message),
                (HEADER_SOURCE_TOPIC, pos.topic.as_str()),
                (HEADER_SOURCE_PARTITION, partition.as_str()),
                (HEADER_SOURCE_OFFSET, offset.as_str()),
            ];
            let truncated = original.iter().flat_map(|(size, digest)| {
                [
                    (HEADER_ORIGINAL_SIZE, size.as_str()),
                    (HEADER_ORIGINAL_SHA256, digest.as_str()),
                ]
            });
            for (key, value) in truncated.chain(ours) {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let mut fr: FutureRecord<'_, [u8], [u8]> =
                FutureRecord::to(&self.topic).headers(headers);
            if let Some(key) = key {
                fr = fr.key(key);
            }
            if let Some(payload) = payload {
                fr = fr.payload(payload);
            }
            match self
                .producer
                .send(fr, Timeout::After(Duration::from_secs(30)))
                .await
            {
                Ok(_) => {
                    if stalled {
                        self.health.set_dlq_stalled(pos, false);
                        tracing::warn!(%pos, dlq = %self.topic, "dead-letter topic writable again; the partition continues");
                    }
                    telemetry::record_dead_lettered(
                        &pos.topic,
                        kind,
                        pos.partition,
                        pos.offset,
                        message,
                    );
                    return;
                }
                Err((e, _)) => {
                    // A permanent error: no retry fixes it soon. The partition stops here (its
                    // offset is not committed past this record), /ready turns false, and we
                    // keep asking (up to retry.max_ms apart) in case an operator fixes the topic
                    // or its permissions.
                    let permanent = is_permanent(&e);
                    if permanent && !stalled {
                        stalled = true;
                        self.health.set_dlq_stalled(pos, true);
                    }
                    attempt += 1;
                    let wait = backoff.next_wait();
                    telemetry::retry(telemetry::RetryEvent {
                        operation: RetryOperation::DeadLetter,
                        class: if permanent {
                            RetryClass::NeedsOperator
                        } else {
                            RetryClass::Transient
                        },
                        attempt,
                        wait,
                        subject: &subject,
                        error: &format!("{e} (dead-letter topic {})", self.topic),
                        message: if permanent {
                            "dead-lettering is impossible; the partition is stopped at this record and nothing past it is committed"
                        } else {
                            "dead-letter write failed; retrying"
                        },
                    });
                    // Waiting here is not a wedge: the caller's loop is alive.
                    self.health.beat(caller);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}
