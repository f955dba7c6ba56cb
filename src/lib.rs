//! dispatch-ingest: Dutch emergency-dispatch event streams from Kafka into ClickHouse.
//!
//! Dispatch centres (meldkamers ambulancezorg) publish five event streams: a 112 call
//! accepted, a unit alerted, an alert cancelled, a unit on scene, a patient transported. This
//! crate consumes them, decodes and enriches every event on its own (stateless per event) and
//! writes it to ClickHouse, where joins across an incident's events and the report rollups live.
//!
//! # Layout
//!
//! The modules follow the data's path:
//!
//! ```text
//!  Kafka ──► source ──► decode ──► enrich ──► sink ──► ClickHouse
//!            (offsets)  (Avro/JSON) (pure)    (batches, inserts)
//!                  │        │                   │
//!                  │        └──► dlq (bad records, with the reason)
//!                  └◄──────── offsets stored only after insert / DLQ ack
//! ```
//!
//! * [`source`]: the Kafka consumer, rebalance handling and the per-partition offset tracker.
//! * [`decode`]: wire formats (plain Avro, JSON) into [`event::DispatchEvent`], with typed errors
//!   that name topic, partition, offset and field.
//! * [`enrich`]: pure functions that add derived columns to an event.
//! * [`sink`]: ClickHouse client, server-version detection, migrations and batched inserts.
//! * [`dlq`]: the dead-letter producer.
//! * [`pipeline`]: wires the stages over bounded channels; takes a shutdown future so it can be
//!   stopped from a test as well as from a signal.
//!
//! Beside them: [`audit`] (does every committed record sit in ClickHouse or on the DLQ?),
//! [`config`] (TOML + environment, validated before anything starts),
//! [`telemetry`] (the one place where every metric is named; logs; `/metrics` and `/health`),
//! [`event`] (the domain types shared by all stages), [`generate`] (sample and synthetic
//! streams), [`report`] (what landed, for people) and [`cli`] (the `dispatch-ingest` command).

pub mod audit;
pub mod cli;
pub mod config;
pub mod decode;
pub mod dlq;
pub mod enrich;
pub mod event;
pub mod fuzzing;
pub mod generate;
pub mod pipeline;
pub mod report;
pub mod security;
pub mod sink;
pub mod source;
pub mod telemetry;
