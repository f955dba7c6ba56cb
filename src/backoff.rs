//! The one retry policy of the crate: how long to wait before the next attempt (one exponential
//! [`Backoff`], built from `[retry]` with [`Backoff::from_config`]) and what kind of failure a
//! retry follows ([`RetryClass`]). Every retry loop (Schema Registry lookups, ClickHouse inserts,
//! dead-letter writes, Kafka consumer errors) waits with it and records each retry through
//! `telemetry::retry` (a metric and a rate-limited log line). After a Kafka consumer error the
//! wait is the policy's first step every time (librdkafka reconnects by itself).

use std::time::Duration;

use rand::Rng;

use crate::config::RetryConfig;

/// What kind of failure a retry follows (the `class` label of `dispatch_ingest_retries_total`).
/// Failures that no retry can fix (row data ClickHouse rejects, a schema id the registry does not
/// know) are never retried and have no class here: they are dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RetryClass {
    /// Network, timeouts, overload, a server restarting, a registry outage: it passes by itself.
    Transient,
    /// A deployment problem that waits for an operator (a table that does not match or a
    /// missing grant, a dead-letter topic that is missing or may not be written): retried so the
    /// pipeline resumes by itself once it is fixed, logged as an error.
    NeedsOperator,
}

impl RetryClass {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            RetryClass::Transient => "transient",
            RetryClass::NeedsOperator => "needs_operator",
        }
    }
}

/// Which loop retries (the `operation` label of `dispatch_ingest_retries_total`; the log lines of
/// one operation are rate-limited together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RetryOperation {
    /// A ClickHouse insert of a batch (or of part of one being split).
    Insert,
    /// A record waiting for the Schema Registry before it is decoded again.
    SchemaRegistry,
    /// One HTTP request to the Schema Registry, retried quickly inside one lookup
    /// (`schema_registry.retries`).
    SchemaRegistryRequest,
    /// A write to the dead-letter topic.
    DeadLetter,
    /// The Kafka consumer reported an error instead of a record.
    KafkaReceive,
    /// The startup connection check (TLS or SASL configured) found no broker answering yet.
    KafkaStartupCheck,
    /// An audit's metadata or watermark request while a partition's leader moves or is not yet
    /// known.
    KafkaMetadata,
    /// `migrate` waiting while another migrator holds the migration lock.
    MigrationLock,
}

impl RetryOperation {
    /// Every operation, each a value of the `operation` label of `dispatch_ingest_retries_total`.
    pub const ALL: [RetryOperation; 8] = [
        RetryOperation::Insert,
        RetryOperation::SchemaRegistry,
        RetryOperation::SchemaRegistryRequest,
        RetryOperation::DeadLetter,
        RetryOperation::KafkaReceive,
        RetryOperation::KafkaStartupCheck,
        RetryOperation::KafkaMetadata,
        RetryOperation::MigrationLock,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            RetryOperation::Insert => "insert",
            RetryOperation::SchemaRegistry => "schema_registry",
            RetryOperation::SchemaRegistryRequest => "schema_registry_request",
            RetryOperation::DeadLetter => "dead_letter",
            RetryOperation::KafkaReceive => "kafka_receive",
            RetryOperation::KafkaStartupCheck => "kafka_startup_check",
            RetryOperation::KafkaMetadata => "kafka_metadata",
            RetryOperation::MigrationLock => "migration_lock",
        }
    }
}

/// Exponential backoff: the first wait is `initial`, each later one twice the one before, up to
/// `max`. With `jitter` above 0, each wait is drawn from `[step * (1 - jitter), step)`, so
/// clients that failed together do not all retry at the same moment.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// No step after the first grows past this.
    max: Duration,
    /// The random share of each step, from 0 (none: wait exactly the step) to 1.
    jitter: f64,
    /// The step of the next wait.
    step: Duration,
}

impl Backoff {
    /// A backoff whose first step is `initial`. `jitter` is clamped to `0..=1`.
    pub fn new(initial: Duration, max: Duration, jitter: f64) -> Backoff {
        Backoff {
            max,
            jitter: jitter.clamp(0.0, 1.0),
            step: initial,
        }
    }

    /// The policy of `[retry]`: steps from `initial_ms` doubling to `max_ms`, each drawn with
    /// `jitter`.
    pub fn from_config(c: &RetryConfig) -> Backoff {
        Backoff::new(
            Duration::from_millis(c.initial_ms),
            Duration::from_millis(c.max_ms),
            c.jitter,
        )
    }

    /// The same policy with its steps capped at `cap` (when `max` is larger): for a wait that
    /// polls for something another party finishes (a lock, a broker starting) within a deadline,
    /// where waiting up to `max` between looks would overshoot the deadline.
    pub fn capped(mut self, cap: Duration) -> Backoff {
        self.max = self.max.min(cap);
        self.step = self.step.min(cap);
        self
    }

    /// The wait before the next attempt; the step after it doubles (capped at `max`).
    pub fn next_wait(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(self.max);
        if self.jitter > 0.0 {
            step.mul_f64(rand::rng().random_range(1.0 - self.jitter..1.0))
        } else {
            step
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steps_double_up_to_max() {
        let mut b = Backoff::new(ms(100), ms(1000), 0.0);
        let waits: Vec<Duration> = (0..6).map(|_| b.next_wait()).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
    }

    #[test]
    fn a_first_step_above_max_is_waited_once() {
        let mut b = Backoff::new(ms(500), ms(300), 0.0);
        assert_eq!((b.next_wait(), b.next_wait()), (ms(500), ms(300)));
    }

    #[test]
    fn from_config_draws_every_wait_within_the_jittered_step() {
        let c = RetryConfig {
            initial_ms: 100,
            max_ms: 400,
            jitter: 0.25,
        };
        for _ in 0..50 {
            let mut b = Backoff::from_config(&c);
            let waits: Vec<Duration> = (0..5).map(|_| b.next_wait()).collect();
            for (w, step) in waits.iter().zip([100, 200, 400, 400, 400]) {
                assert!(*w >= ms(step * 3 / 4) && *w < ms(step), "{waits:?}");
            }
        }
        let mut exact = Backoff::from_config(&RetryConfig {
            jitter: 0.0,
            ..RetryConfig::default()
        });
        assert_eq!((exact.next_wait(), exact.next_wait()), (ms(200), ms(400)));
    }

    #[test]
    fn capped_keeps_every_step_at_or_below_the_cap() {
        let mut b = Backoff::new(ms(200), ms(10_000), 0.0).capped(ms(500));
        let waits: Vec<Duration> = (0..4).map(|_| b.next_wait()).collect();
        assert_eq!(waits, [ms(200), ms(400), ms(500), ms(500)]);
        let mut high = Backoff::new(ms(2000), ms(10_000), 0.0).capped(ms(500));
        assert_eq!(high.next_wait(), ms(500));
        let mut low = Backoff::new(ms(100), ms(300), 0.0).capped(ms(1000));
        let waits: Vec<Duration> = (0..3).map(|_| low.next_wait()).collect();
        assert_eq!(waits, [ms(100), ms(200), ms(300)]);
    }

    #[test]
    fn labels_are_distinct() {
        let labels: std::collections::BTreeSet<&str> =
            RetryOperation::ALL.iter().map(|o| o.label()).collect();
        assert_eq!(labels.len(), RetryOperation::ALL.len());
        assert_ne!(
            RetryClass::Transient.label(),
            RetryClass::NeedsOperator.label()
        );
    }

    #[test]
    fn jitter_waits_between_the_jittered_share_and_the_step() {
        let mut b = Backoff::new(ms(1000), ms(1000), 0.5);
        let waits: Vec<Duration> = (0..200).map(|_| b.next_wait()).collect();
        assert!(
            waits.iter().all(|w| *w >= ms(500) && *w < ms(1000)),
            "{waits:?}"
        );
        assert!(
            waits.iter().any(|w| *w != waits[0]),
            "all waits equal: {waits:?}"
        );
    }
}
