//! dispatch-ingest: Dutch emergency-dispatch event streams from Kafka into ClickHouse.
//!
//! Dispatch centres (meldkamers ambulancezorg) publish five event streams: a 112 call
//! accepted, a unit alerted, an alert cancelled, a unit on scene, a patient transported. This
//! crate consumes them, decodes and enriches every event on its own (stateless per event) and
//! writes it to ClickHouse, where joins across an incident's events and the report rollups live.
//!
//! # Layout
//!
//! The modules follow the data's path, and imports point the same way:
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
//! * [`enrich`]: pure functions that add derived columns to an event; the clock is the ingest
//!   time in [`enrich::Meta`].
//! * [`sink`]: ClickHouse client, server-version detection, migrations and batched inserts.
//! * [`dlq`]: the dead-letter producer.
//! * [`pipeline`]: the only module that knows every stage; wires them over bounded channels and
//!   takes a shutdown future so it can be stopped from a test as well as from a signal.
//!
//! Leaves the stages share: [`event`] (the domain types: streams, events, positions, wire
//! formats), [`row`] (the ClickHouse row that `enrich` builds and `sink` inserts), [`kafka`]
//! (client properties and the raw record every Kafka client uses), [`config`] (TOML +
//! environment as plain data, validated before anything starts; each component builds itself
//! from its section, e.g. [`enrich::Enricher::from_config`]), [`security`] (TLS and SASL),
//! [`telemetry`] (the one place where every metric is named; logs; `/metrics` and `/health`)
//! [`cluster`] (migrations for a replicated cluster), [`backoff`] (the one retry policy: the wait
//! between retries, from `[retry]`, and the retry classes) and [`clock`] (the wall clock, read
//! only by the outer layers).
//!
//! Beside them: [`audit`] (does every committed record sit in ClickHouse or on the DLQ?),
//! [`generate`] (sample and synthetic streams), [`report`] (what landed, for people), [`cli`]
//! (the `dispatch-ingest` command) and [`fuzzing`] (fuzz target entry points).
//!
//! Which module may import which is written down once, in the "Module graph" table of
//! `docs/architecture.md`; `tests/architecture.rs` fails on any other import.

#![warn(missing_docs)]

pub mod audit;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod decode;
pub mod dlq;
pub mod enrich;
pub mod event;
pub mod fuzzing;
pub mod generate;
pub mod kafka;
pub mod pipeline;
pub mod report;
pub mod row;
pub mod security;
pub mod sink;
pub mod source;
pub mod telemetry;
