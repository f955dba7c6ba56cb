//! How long to wait before the next attempt: one exponential [`Backoff`] for every retry loop
//! (Schema Registry lookups, ClickHouse inserts, dead-letter writes).

use std::time::Duration;

use rand::Rng;

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
