//! When a batch is full: a pure [`Batcher`] that collects rows and says when to insert them
//! (enough rows, enough bytes, enough of the in-flight byte budget held, or the first row has
//! waited long enough). It knows no clock and
//! no server: the caller passes the time in, so every threshold is a unit test.

use std::time::Duration;

use tokio::time::Instant;

/// The thresholds of `[batch]`: a batch is due at `max_rows` rows, at `max_bytes` bytes (the
/// rows' approximate size), when its rows hold `max_held` bytes of the in-flight budget
/// (`memory.limit_mb / 4`), or `max_wait` after its first row, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_rows: usize,
    pub max_bytes: usize,
    pub max_held: usize,
    pub max_wait: Duration,
}

/// A batch to insert: `rows` in arrival order, `bytes` their approximate size, `held` the
/// in-flight budget they hold, and `finished` the records that ended without a row while the
/// batch was open (released after its rows).
#[derive(Debug, PartialEq, Eq)]
pub struct Batch<R, F> {
    pub rows: Vec<R>,
    pub finished: Vec<F>,
    pub bytes: usize,
    pub held: usize,
}

/// Collects rows `R` and rowless finished records `F` into batches.
#[derive(Debug)]
pub struct Batcher<R, F> {
    limits: Limits,
    open: Batch<R, F>,
    started: Option<Instant>,
}

impl<R, F> Batcher<R, F> {
    pub fn new(limits: Limits) -> Batcher<R, F> {
        Batcher {
            limits,
            open: Batch {
                rows: Vec::new(),
                finished: Vec::new(),
                bytes: 0,
                held: 0,
            },
            started: None,
        }
    }

    /// Add a row of about `bytes` bytes holding `held` bytes of the in-flight budget, arriving
    /// at `now`; the batch when this row fills it.
    pub fn push(&mut self, row: R, bytes: usize, held: usize, now: Instant) -> Option<Batch<R, F>> {
        self.open.rows.push(row);
        self.open.bytes += bytes;
        self.open.held += held;
        self.started.get_or_insert(now);
        let full = self.open.rows.len() >= self.limits.max_rows
            || self.open.bytes >= self.limits.max_bytes
            || self.open.held >= self.limits.max_held;
        full.then(|| self.take()).flatten()
    }

    /// A record finished without a row. With no row waiting it is handed straight back (to be
    /// released now); otherwise it is held and released after the open batch's rows, so an
    /// offset is never released before the rows read before it.
    pub fn finish(&mut self, done: F) -> Option<F> {
        if self.open.rows.is_empty() {
            Some(done)
        } else {
            self.open.finished.push(done);
            None
        }
    }

    /// When the open batch is due by age (`None`: no row waiting).
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|t| t + self.limits.max_wait)
    }

    /// The open batch if it is due by age at `now`.
    pub fn due(&mut self, now: Instant) -> Option<Batch<R, F>> {
        match self.deadline() {
            Some(at) if now >= at => self.take(),
            _ => None,
        }
    }

    /// Whatever is open (at shutdown); `None` when nothing is.
    pub fn take(&mut self) -> Option<Batch<R, F>> {
        self.started = None;
        if self.open.rows.is_empty() && self.open.finished.is_empty() {
            return None;
        }
        Some(std::mem::replace(
            &mut self.open,
            Batch {
                rows: Vec::new(),
                finished: Vec::new(),
                bytes: 0,
                held: 0,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_rows: usize, max_bytes: usize, wait_ms: u64) -> Limits {
        Limits {
            max_rows,
            max_bytes,
            max_held: usize::MAX,
            max_wait: Duration::from_millis(wait_ms),
        }
    }

    #[test]
    fn a_batch_is_due_at_max_rows_and_not_before() {
        let mut b: Batcher<u32, ()> = Batcher::new(limits(3, usize::MAX, 1000));
        let t = Instant::now();
        assert_eq!(b.push(1, 10, 0, t), None);
        assert_eq!(b.push(2, 10, 0, t), None);
        let batch = b.push(3, 10, 0, t).expect("third row fills the batch");
        assert_eq!((batch.rows, batch.bytes), (vec![1, 2, 3], 30));
        assert_eq!(b.deadline(), None, "a new batch starts empty");
        assert_eq!(b.take(), None);
    }

    #[test]
    fn a_batch_is_due_when_its_bytes_reach_max_bytes() {
        let mut b: Batcher<u32, ()> = Batcher::new(limits(100, 250, 1000));
        let t = Instant::now();
        assert_eq!(b.push(1, 100, 0, t), None);
        assert_eq!(b.push(2, 149, 0, t), None);
        let batch = b.push(3, 1, 0, t).expect("250 bytes reach max_bytes");
        assert_eq!((batch.rows, batch.bytes), (vec![1, 2, 3], 250));
    }

    #[test]
    fn a_batch_is_due_max_wait_after_its_first_row() {
        let mut b: Batcher<u32, ()> = Batcher::new(limits(100, usize::MAX, 500));
        let t = Instant::now();
        assert_eq!(b.due(t), None, "nothing open, nothing due");
        b.push(1, 1, 0, t);
        b.push(2, 1, 0, t + Duration::from_millis(400));
        assert_eq!(b.deadline(), Some(t + Duration::from_millis(500)));
        assert_eq!(b.due(t + Duration::from_millis(499)), None);
        let batch = b.due(t + Duration::from_millis(500)).expect("due by age");
        assert_eq!(batch.rows, vec![1, 2]);
        assert_eq!(b.deadline(), None);
        b.push(3, 1, 0, t + Duration::from_millis(600));
        assert_eq!(
            b.deadline(),
            Some(t + Duration::from_millis(1100)),
            "the age counts from the first row of the new batch"
        );
    }

    #[test]
    fn a_batch_is_due_when_its_rows_hold_max_held_of_the_budget() {
        let mut b: Batcher<u32, ()> = Batcher::new(Limits {
            max_held: 3000,
            ..limits(100, usize::MAX, 1000)
        });
        let t = Instant::now();
        // Small rows of large records: the rows' bytes are far from max_bytes, the records
        // they came from hold the budget.
        assert_eq!(b.push(1, 100, 1500, t), None);
        let batch = b.push(2, 100, 1500, t).expect("3000 held reach max_held");
        assert_eq!(
            (batch.rows, batch.bytes, batch.held),
            (vec![1, 2], 200, 3000)
        );
        assert_eq!(b.push(3, 100, 10, t), None, "a new batch holds nothing yet");
    }

    #[test]
    fn a_rowless_record_is_released_at_once_or_after_the_open_rows() {
        let mut b: Batcher<u32, &str> = Batcher::new(limits(2, usize::MAX, 1000));
        let t = Instant::now();
        assert_eq!(b.finish("a"), Some("a"), "no rows open: release now");
        b.push(1, 1, 0, t);
        assert_eq!(b.finish("b"), None, "held behind row 1");
        let batch = b.push(2, 1, 0, t).expect("full");
        assert_eq!((batch.rows, batch.finished), (vec![1, 2], vec!["b"]));
        assert_eq!(b.finish("c"), Some("c"));
    }

    #[test]
    fn take_drains_what_is_open() {
        let mut b: Batcher<u32, &str> = Batcher::new(limits(10, usize::MAX, 1000));
        let t = Instant::now();
        b.push(7, 3, 0, t);
        b.finish("x");
        let batch = b.take().expect("open rows");
        assert_eq!(
            (batch.rows, batch.finished, batch.bytes),
            (vec![7], vec!["x"], 3)
        );
        assert_eq!(b.take(), None);
    }
}
