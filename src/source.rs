//! The Kafka side of the pipeline: the consumer, rebalance handling, and the per-partition offset
//! tracker that decides what may be committed.
//!
//! At-least-once: `enable.auto.offset.store=false`, so librdkafka commits (periodically, on
//! revocation and on close) only offsets we stored explicitly, and we store for a partition only
//! the offset below which every record was inserted into ClickHouse or acknowledged by the
//! dead-letter topic ([`OffsetTracker`]). Stored values are "next offset to read" (last done + 1),
//! as Kafka commits expect.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use crate::config::{Config, OffsetReset};
use crate::event::{SourcePosition, Stream};
use crate::kafka::{client_config, read_headers, Done, RawRecord};
use crate::telemetry::{self, Health};

#[derive(Debug)]
struct PartitionState {
    generation: u64,
    in_flight: BTreeSet<i64>,
    max_done: Option<i64>,
    stored: Option<i64>,
}

/// Per partition: which offsets are read but not finished. The committable position is the
/// lowest unfinished offset, or one past the highest finished offset when nothing is pending,
/// so a record finished early never lets the commit pass one that is still in flight.
///
/// Each assignment of a partition gets a new generation; completions carrying an older
/// generation (records read before a revocation) are ignored, because the new owner of the
/// partition re-reads them from the committed offset.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    parts: HashMap<(String, i32), PartitionState>,
    next_generation: u64,
}

impl OffsetTracker {
    /// A partition was assigned: start tracking it; returns its new generation.
    pub fn assign(&mut self, topic: &str, partition: i32) -> u64 {
        self.next_generation += 1;
        let generation = self.next_generation;
        self.parts.insert(
            (topic.to_string(), partition),
            PartitionState {
                generation,
                in_flight: BTreeSet::new(),
                max_done: None,
                stored: None,
            },
        );
        generation
    }

    /// A partition was revoked: forget it (completions of its generation are ignored from now on).
    pub fn revoke(&mut self, topic: &str, partition: i32) {
        self.parts.remove(&(topic.to_string(), partition));
    }

    /// A record was read; returns the generation to carry with it.
    pub fn begin(&mut self, topic: &str, partition: i32, offset: i64) -> u64 {
        if !self.parts.contains_key(&(topic.to_string(), partition)) {
            self.assign(topic, partition);
        }
        let state = self
            .parts
            .get_mut(&(topic.to_string(), partition))
            .expect("just assigned");
        state.in_flight.insert(offset);
        state.generation
    }

    /// A record is finished. Returns false when it belongs to an earlier assignment.
    pub fn done(&mut self, done: &Done) -> bool {
        match self.parts.get_mut(&(done.topic.clone(), done.partition)) {
            Some(state) if state.generation == done.generation => {
                state.in_flight.remove(&done.offset);
                state.max_done = Some(state.max_done.map_or(done.offset, |m| m.max(done.offset)));
                true
            }
            _ => false,
        }
    }

    /// The next offset to store for this partition, if it advanced since the last call.
    pub fn committable(&mut self, topic: &str, partition: i32) -> Option<i64> {
        let state = self.parts.get_mut(&(topic.to_string(), partition))?;
        let next = match state.in_flight.first() {
            Some(lowest) => *lowest,
            None => state.max_done? + 1,
        };
        if state.stored.is_some_and(|s| s >= next) {
            return None;
        }
        // Nothing finished yet in this assignment: nothing new to store.
        state.max_done?;
        state.stored = Some(next);
        Some(next)
    }

    /// Records read but not finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.parts.values().map(|s| s.in_flight.len()).sum()
    }
}

/// Consumer context: logs and counts rebalances, commits on revocation, keeps the tracker's
/// assignment in step with the group's.
pub struct SourceContext {
    tracker: Arc<Mutex<OffsetTracker>>,
    health: Health,
    /// Since when the group has given this member no partitions (None: some are assigned).
    unassigned_since: Mutex<Option<Instant>>,
}

impl ClientContext for SourceContext {
    /// librdkafka's statistics (every `telemetry.health_interval_ms`): broker states, the group's
    /// assignment and the consumer lag feed readiness.
    fn stats(&self, stats: Statistics) {
        let mut since = self.unassigned_since.lock().expect("unassigned lock");
        health_from_stats(&self.health, &stats, &mut since);
    }
}

/// Readiness checks `kafka`, `assignment` and `lag` from one statistics sample.
pub fn health_from_stats(
    health: &Health,
    stats: &Statistics,
    unassigned_since: &mut Option<Instant>,
) {
    let brokers: Vec<_> = stats
        .brokers
        .values()
        .filter(|b| b.source != "internal")
        .collect();
    let kafka = if brokers.iter().any(|b| b.state == "UP") {
        Ok(())
    } else {
        let mut states: Vec<String> = brokers
            .iter()
            .map(|b| format!("{} {}", b.name, b.state))
            .collect();
        states.sort();
        Err(format!(
            "kafka: no broker reachable ({})",
            states.join(", ")
        ))
    };
    health.set_check("kafka", kafka);
    let assigned = stats.cgrp.as_ref().map_or(0, |g| g.assignment_size);
    let assignment = if assigned > 0 {
        *unassigned_since = None;
        Ok(())
    } else {
        let since = *unassigned_since.get_or_insert_with(Instant::now);
        let grace = health.join_grace();
        if since.elapsed() <= grace {
            Ok(())
        } else {
            let (state, join) = stats.cgrp.as_ref().map_or(("none", "none"), |g| {
                (g.state.as_str(), g.join_state.as_str())
            });
            Err(format!(
                "assignment: no partitions assigned for {} s (group state {state}, join state {join}; grace {} s)",
                since.elapsed().as_secs(),
                grace.as_secs()
            ))
        }
    };
    health.set_check("assignment", assignment);
    let mut total = 0i64;
    for (topic, t) in &stats.topics {
        for (partition, p) in &t.partitions {
            if *partition < 0 || !p.desired || p.consumer_lag < 0 {
                continue;
            }
            telemetry::consumer_lag(topic, *partition, p.consumer_lag);
            total += p.consumer_lag;
        }
    }
    health.sample_lag(total);
}

fn describe(tpl: &TopicPartitionList) -> String {
    tpl.elements()
        .iter()
        .map(|e| format!("{}/{}", e.topic(), e.partition()))
        .collect::<Vec<_>>()
        .join(",")
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            telemetry::rebalance("revoke", &describe(tpl));
            // Commit what is stored for the partitions we are about to lose; records still in
            // flight for them will be re-read by the new owner.
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => telemetry::offsets_committed(),
                Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
                Err(e) => telemetry::offset_commit_failed(&e),
            }
            let mut tracker = self.tracker.lock().expect("tracker lock");
            for e in tpl.elements() {
                tracker.revoke(e.topic(), e.partition());
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                telemetry::rebalance("assign", &describe(tpl));
                let mut tracker = self.tracker.lock().expect("tracker lock");
                for e in tpl.elements() {
                    tracker.assign(e.topic(), e.partition());
                }
            }
            Rebalance::Error(e) => telemetry::kafka_error(e),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => telemetry::offsets_committed(),
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => telemetry::offset_commit_failed(&e),
        }
    }
}

/// The Kafka consumer of the five stream topics.
pub struct KafkaSource {
    consumer: StreamConsumer<SourceContext>,
    tracker: Arc<Mutex<OffsetTracker>>,
    config: Config,
}

impl KafkaSource {
    /// A consumer of the configured topics with a health state of its own.
    pub fn new(config: &Config) -> KafkaResult<KafkaSource> {
        KafkaSource::with_health(config, Health::default())
    }

    /// A source whose client statistics feed `health` (readiness checks `kafka`, `assignment`,
    /// `lag`).
    pub fn with_health(config: &Config, health: Health) -> KafkaResult<KafkaSource> {
        let k = &config.kafka;
        let tracker = Arc::new(Mutex::new(OffsetTracker::default()));
        let memory = config.memory.budget(config.decode.max_record_bytes);
        let mut cc = client_config(k);
        cc.set("group.id", &k.group_id)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", k.commit_interval_ms.to_string())
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "auto.offset.reset",
                match k.auto_offset_reset {
                    OffsetReset::Earliest => "earliest",
                    OffsetReset::Latest => "latest",
                },
            )
            .set("session.timeout.ms", k.session_timeout_ms.to_string())
            .set("max.poll.interval.ms", k.max_poll_interval_ms.to_string())
            // The prefetch is bounded by bytes from `memory.limit_mb` (config::MemoryBudget).
            .set(
                "queued.max.messages.kbytes",
                memory.prefetch_kbytes.to_string(),
            )
            .set("fetch.max.bytes", memory.fetch_max_bytes.to_string())
            .set(
                "max.partition.fetch.bytes",
                memory.partition_fetch_bytes.to_string(),
            )
            .set(
                "statistics.interval.ms",
                config.telemetry.health_interval_ms.to_string(),
            );
        for (key, value) in &k.extra {
            cc.set(key, value);
        }
        let consumer: StreamConsumer<SourceContext> = cc.create_with_context(SourceContext {
            tracker: tracker.clone(),
            health,
            unassigned_since: Mutex::new(Some(Instant::now())),
        })?;
        let topics: Vec<&str> = Stream::ALL
            .iter()
            .map(|s| config.topics.get(*s).name.as_str())
            .collect();
        consumer.subscribe(&topics)?;
        tracing::info!(?topics, group = %k.group_id, "subscribed");
        Ok(KafkaSource {
            consumer,
            tracker,
            config: config.clone(),
        })
    }

    /// The next record. Errors are transient consumer errors (logged by the caller).
    pub async fn recv(&self) -> KafkaResult<RawRecord> {
        let msg = self.consumer.recv().await?;
        let topic = msg.topic().to_string();
        let stream = self
            .config
            .topics
            .stream_of(&topic)
            .expect("subscribed only to configured topics");
        let generation =
            self.tracker
                .lock()
                .expect("tracker lock")
                .begin(&topic, msg.partition(), msg.offset());
        telemetry::record_consumed(&topic);
        let headers = msg.headers().map(read_headers).unwrap_or_default();
        Ok(RawRecord {
            position: SourcePosition {
                topic,
                partition: msg.partition(),
                offset: msg.offset(),
            },
            stream,
            key: msg.key().map(<[u8]>::to_vec),
            payload: msg.payload().map(<[u8]>::to_vec),
            headers,
            generation,
            kafka_timestamp_ms: msg.timestamp().to_millis(),
        })
    }

    /// Mark records finished and store the offsets that advanced (committed by librdkafka's
    /// auto-commit, on revocation and on [`KafkaSource::commit`]).
    pub fn ack(&self, done: &[Done]) {
        let mut tpl = TopicPartitionList::new();
        {
            let mut tracker = self.tracker.lock().expect("tracker lock");
            let mut touched: Vec<(&str, i32)> = Vec::new();
            for d in done {
                if tracker.done(d) && !touched.contains(&(d.topic.as_str(), d.partition)) {
                    touched.push((d.topic.as_str(), d.partition));
                }
            }
            for (topic, partition) in touched {
                if let Some(next) = tracker.committable(topic, partition) {
                    if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(next))
                    {
                        telemetry::offset_commit_failed(&e);
                    }
                }
            }
        }
        if tpl.count() > 0 {
            if let Err(e) = self.consumer.store_offsets(&tpl) {
                // A partition revoked meanwhile: its records are re-read by the new owner.
                telemetry::offset_commit_failed(&e);
            }
        }
    }

    /// Commit the stored offsets synchronously (shutdown).
    pub fn commit(&self) -> KafkaResult<()> {
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {
                telemetry::offsets_committed();
                Ok(())
            }
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Records read but not yet finished, over all partitions.
    pub fn in_flight(&self) -> usize {
        self.tracker.lock().expect("tracker lock").in_flight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(offset: i64, generation: u64) -> Done {
        Done {
            topic: "t".into(),
            partition: 0,
            offset,
            generation,
            kafka_timestamp_ms: None,
        }
    }

    #[test]
    fn commit_waits_for_the_lowest_pending_offset() {
        let mut t = OffsetTracker::default();
        let g = t.assign("t", 0);
        for o in 10..15 {
            assert_eq!(t.begin("t", 0, o), g);
        }
        assert!(t.done(&d(12, g)));
        assert!(t.done(&d(13, g)));
        // 10 and 11 still in flight: the committable position is 10, which is where we started,
        // so nothing new to store.
        assert_eq!(t.committable("t", 0), Some(10));
        assert_eq!(t.committable("t", 0), None);
        assert!(t.done(&d(10, g)));
        assert_eq!(t.committable("t", 0), Some(11));
        assert!(t.done(&d(11, g)));
        assert!(t.done(&d(14, g)));
        assert_eq!(t.committable("t", 0), Some(15), "last done + 1");
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn nothing_done_means_nothing_to_commit() {
        let mut t = OffsetTracker::default();
        t.begin("t", 0, 5);
        assert_eq!(t.committable("t", 0), None);
    }

    #[test]
    fn completions_from_an_earlier_assignment_are_ignored() {
        let mut t = OffsetTracker::default();
        let g1 = t.assign("t", 0);
        t.begin("t", 0, 1);
        t.revoke("t", 0);
        let g2 = t.assign("t", 0);
        assert_ne!(g1, g2);
        assert!(!t.done(&d(1, g1)));
        assert_eq!(t.committable("t", 0), None);
        t.begin("t", 0, 1);
        assert!(t.done(&d(1, g2)));
        assert_eq!(t.committable("t", 0), Some(2));
    }

    /// Every order of finishing offsets 0..6: after each ack the stored position is the
    /// lowest unfinished offset (only the contiguous finished prefix is committed), and it
    /// never moves back.
    #[test]
    fn out_of_order_acks_commit_only_the_contiguous_prefix() {
        fn permutations(items: Vec<i64>) -> Vec<Vec<i64>> {
            if items.len() <= 1 {
                return vec![items];
            }
            let mut out = Vec::new();
            for i in 0..items.len() {
                let mut rest = items.clone();
                let first = rest.remove(i);
                for mut p in permutations(rest) {
                    p.insert(0, first);
                    out.push(p);
                }
            }
            out
        }
        for order in permutations((0..6).collect()) {
            let mut t = OffsetTracker::default();
            let g = t.assign("t", 0);
            for o in 0..6 {
                t.begin("t", 0, o);
            }
            let mut finished = std::collections::BTreeSet::new();
            let mut stored: Option<i64> = None;
            for o in &order {
                assert!(t.done(&d(*o, g)));
                finished.insert(*o);
                let prefix = (0..).find(|o| !finished.contains(o)).unwrap();
                if let Some(next) = t.committable("t", 0) {
                    assert!(stored.is_none_or(|s| next > s), "{order:?}: moved back");
                    stored = Some(next);
                }
                assert_eq!(stored, Some(prefix), "{order:?} after {o}");
            }
            assert_eq!(stored, Some(6));
        }
    }

    #[test]
    fn a_revoked_generation_cannot_move_the_new_owners_offset() {
        let mut t = OffsetTracker::default();
        let g1 = t.assign("t", 0);
        for o in 0..4 {
            t.begin("t", 0, o);
        }
        assert!(t.done(&d(0, g1)));
        assert_eq!(t.committable("t", 0), Some(1));
        t.revoke("t", 0);
        // Acks of the lost assignment after the revocation: ignored, nothing to store.
        assert!(!t.done(&d(1, g1)));
        assert_eq!(t.committable("t", 0), None);
        assert_eq!(
            t.in_flight(),
            0,
            "a revoked partition holds nothing in flight"
        );
        // Re-assigned: records are read again from the committed offset 1.
        let g2 = t.assign("t", 0);
        for o in 1..4 {
            assert_eq!(t.begin("t", 0, o), g2);
        }
        // Late acks of the first generation (offsets 2 and 3 finishing now) change nothing.
        assert!(!t.done(&d(2, g1)));
        assert!(!t.done(&d(3, g1)));
        assert_eq!(t.committable("t", 0), None);
        assert_eq!(t.in_flight(), 3);
        assert!(t.done(&d(2, g2)));
        assert!(t.done(&d(3, g2)));
        assert_eq!(t.committable("t", 0), Some(1), "offset 1 is still pending");
        assert!(t.done(&d(1, g2)));
        assert_eq!(t.committable("t", 0), Some(4));
    }

    #[test]
    fn an_assignment_without_a_revocation_starts_a_new_generation() {
        let mut t = OffsetTracker::default();
        let g1 = t.assign("t", 0);
        t.begin("t", 0, 10);
        let g2 = t.assign("t", 0);
        assert!(g2 > g1);
        assert!(!t.done(&d(10, g1)), "the earlier generation is over");
        assert_eq!(t.in_flight(), 0);
        t.begin("t", 0, 10);
        assert!(t.done(&d(10, g2)));
        assert_eq!(t.committable("t", 0), Some(11));
    }

    #[test]
    fn partitions_are_independent() {
        let mut t = OffsetTracker::default();
        let g = t.begin("t", 0, 7);
        let h = t.begin("t", 1, 3);
        assert!(t.done(&Done {
            topic: "t".into(),
            partition: 1,
            offset: 3,
            generation: h,
            kafka_timestamp_ms: None,
        }));
        assert_eq!(t.committable("t", 1), Some(4));
        assert_eq!(t.committable("t", 0), None);
        assert!(t.done(&d(7, g)));
        assert_eq!(t.committable("t", 0), Some(8));
    }
}
