//! The dead-letter topic: records that cannot be decoded or validated are written there with
//! their original key and bytes, and headers that say why and where they came from. A record's
//! offset counts as finished only after the dead-letter write is acknowledged.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::config::KafkaConfig;
use crate::event::SourcePosition;
use crate::source::{client_config, RawRecord};
use crate::telemetry;

pub const HEADER_ERROR_KIND: &str = "dlq.error.kind";
pub const HEADER_ERROR_MESSAGE: &str = "dlq.error.message";
pub const HEADER_SOURCE_TOPIC: &str = "dlq.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "dlq.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "dlq.source.offset";

pub struct DeadLetters {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetters {
    pub fn new(k: &KafkaConfig) -> rdkafka::error::KafkaResult<DeadLetters> {
        let producer: FutureProducer = client_config(k)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()?;
        Ok(DeadLetters {
            producer,
            topic: k.dlq_topic.clone(),
        })
    }

    /// Write `record` to the dead-letter topic and wait for the acknowledgement, retrying with
    /// backoff until it is acknowledged: a bad record is never dropped.
    pub async fn send(&self, record: &RawRecord, kind: &str, message: &str) {
        self.send_parts(
            record.key.as_deref(),
            record.payload.as_deref(),
            &record.headers,
            &record.position,
            kind,
            message,
        )
        .await;
    }

    /// [`DeadLetters::send`] from parts: key, payload and headers to write, the source position.
    pub async fn send_parts(
        &self,
        key: Option<&[u8]>,
        payload: Option<&[u8]>,
        extra_headers: &[(String, Vec<u8>)],
        pos: &SourcePosition,
        kind: &str,
        message: &str,
    ) {
        let partition = pos.partition.to_string();
        let offset = pos.offset.to_string();
        let mut backoff = Duration::from_millis(100);
        loop {
            let mut headers = OwnedHeaders::new();
            for (k, v) in extra_headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_slice()),
                });
            }
            let headers = headers
                .insert(Header {
                    key: HEADER_ERROR_KIND,
                    value: Some(kind),
                })
                .insert(Header {
                    key: HEADER_ERROR_MESSAGE,
                    value: Some(message),
                })
                .insert(Header {
                    key: HEADER_SOURCE_TOPIC,
                    value: Some(pos.topic.as_str()),
                })
                .insert(Header {
                    key: HEADER_SOURCE_PARTITION,
                    value: Some(partition.as_str()),
                })
                .insert(Header {
                    key: HEADER_SOURCE_OFFSET,
                    value: Some(offset.as_str()),
                });
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
                    tracing::warn!(error = %e, %pos, retry_in_ms = backoff.as_millis() as u64, "dead-letter write failed; retrying");
                    telemetry::retry("dead_letter");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
