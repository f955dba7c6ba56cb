//! The insert step behind a small trait: [`Writer`] writes rows (the real one is ClickHouse with
//! its retries, a test uses a fake), and [`insert_isolating`] splits what the writer refuses
//! until each rejected row stands alone, so one bad row costs only itself.

use std::future::Future;
use std::ops::Range;

/// Why a writer did not take rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The row data (split and dead-letter).
    RowData(String),
    /// Too many partitions for one insert (split, never dead-letter).
    TooManyPartitions(String),
    /// The table does not accept the rows at all: stop the sink.
    Stop(String),
}

/// Writes rows, returning only once they are stored or refused (retries are the writer's).
pub trait Writer<R> {
    fn write(&self, rows: &[R]) -> impl Future<Output = Result<(), Refused>> + Send;
}

/// What [`insert_isolating`] did: the rows refused for their data (index into the rows and the
/// reason) and how many inserts succeeded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub rejected: Vec<(usize, String)>,
    pub inserts: usize,
}

/// Insert `rows` as the given `ranges` (in order). A range refused for its data or for too many
/// partitions is halved and each half tried again, first half first; a single row refused for
/// its data is recorded in [`Outcome::rejected`]. `Err` (stop the sink) when the writer says
/// [`Refused::Stop`] or refuses a single row as too many partitions.
pub async fn insert_isolating<R: Sync, W: Writer<R>>(
    writer: &W,
    rows: &[R],
    ranges: Vec<Range<usize>>,
) -> Result<Outcome, String> {
    let mut pending: Vec<Range<usize>> = ranges.into_iter().rev().collect();
    let mut outcome = Outcome::default();
    while let Some(range) = pending.pop() {
        match writer.write(&rows[range.clone()]).await {
            Ok(()) => outcome.inserts += 1,
            Err(Refused::Stop(cause)) => return Err(cause),
            Err(Refused::RowData(e)) if range.len() == 1 => outcome.rejected.push((range.start, e)),
            Err(Refused::TooManyPartitions(e)) if range.len() == 1 => {
                return Err(format!(
                    "a single row was refused as too many partitions: {e}"
                ))
            }
            Err(_) => {
                let mid = range.start + range.len() / 2;
                pending.push(mid..range.end);
                pending.push(range.start..mid);
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
// One range covering the whole batch is what the sink passes for a batch within one month.
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Refuses any write that contains a row in `bad` (or more than `max_rows` rows as too many
    /// partitions); keeps what it stored, in order.
    struct Fake {
        bad: Vec<u32>,
        max_rows: usize,
        stored: Mutex<Vec<u32>>,
        calls: Mutex<usize>,
    }

    impl Fake {
        fn new(bad: &[u32], max_rows: usize) -> Fake {
            Fake {
                bad: bad.to_vec(),
                max_rows,
                stored: Mutex::new(Vec::new()),
                calls: Mutex::new(0),
            }
        }
    }

    impl Writer<u32> for Fake {
        fn write(&self, rows: &[u32]) -> impl Future<Output = Result<(), Refused>> + Send {
            *self.calls.lock().unwrap() += 1;
            let result = if rows.len() > self.max_rows {
                Err(Refused::TooManyPartitions(format!("{} rows", rows.len())))
            } else if let Some(b) = rows.iter().find(|r| self.bad.contains(r)) {
                Err(Refused::RowData(format!("row {b} is bad")))
            } else {
                self.stored.lock().unwrap().extend_from_slice(rows);
                Ok(())
            };
            async move { result }
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn row_k_of_50000_rejected_dead_letters_only_that_row() {
        let k = 31_337u32;
        let rows: Vec<u32> = (0..50_000).collect();
        let fake = Fake::new(&[k], usize::MAX);
        let outcome = run(insert_isolating(&fake, &rows, vec![0..rows.len()])).unwrap();
        assert_eq!(
            outcome.rejected,
            vec![(k as usize, format!("row {k} is bad"))]
        );
        let expected: Vec<u32> = rows.iter().copied().filter(|&r| r != k).collect();
        assert_eq!(
            *fake.stored.lock().unwrap(),
            expected,
            "every other row stored once, in order"
        );
        // One failed try per halving on the way down to the bad row, plus the good halves.
        let calls = *fake.calls.lock().unwrap();
        assert!(calls <= 2 * 17 + 1, "{calls} writes for one bad row");
    }

    #[test]
    fn several_bad_rows_each_rejected_alone() {
        let rows: Vec<u32> = (0..1000).collect();
        let fake = Fake::new(&[0, 500, 501, 999], usize::MAX);
        let outcome = run(insert_isolating(&fake, &rows, vec![0..1000])).unwrap();
        let rejected: Vec<usize> = outcome.rejected.iter().map(|r| r.0).collect();
        assert_eq!(rejected, vec![0, 500, 501, 999]);
        assert_eq!(fake.stored.lock().unwrap().len(), 996);
    }

    #[test]
    fn too_many_partitions_splits_without_dead_lettering() {
        let rows: Vec<u32> = (0..10).collect();
        let fake = Fake::new(&[], 3);
        let outcome = run(insert_isolating(&fake, &rows, vec![0..10])).unwrap();
        assert!(outcome.rejected.is_empty());
        assert_eq!(*fake.stored.lock().unwrap(), rows);
        assert!(outcome.inserts > 1);
    }

    #[test]
    fn a_single_row_over_the_partition_limit_stops() {
        let rows = vec![1u32];
        let fake = Fake::new(&[], 0);
        let err = run(insert_isolating(&fake, &rows, vec![0..1])).unwrap_err();
        assert!(err.contains("too many partitions"), "{err}");
    }

    #[test]
    fn ranges_are_inserted_in_the_order_given() {
        let rows: Vec<u32> = (0..6).collect();
        let fake = Fake::new(&[], usize::MAX);
        let outcome = run(insert_isolating(&fake, &rows, vec![0..2, 2..5, 5..6])).unwrap();
        assert_eq!(outcome.inserts, 3);
        assert_eq!(*fake.stored.lock().unwrap(), rows);
    }

    struct Stopper;
    impl Writer<u32> for Stopper {
        async fn write(&self, _: &[u32]) -> Result<(), Refused> {
            Err(Refused::Stop("table gone".to_string()))
        }
    }

    #[test]
    fn stop_ends_the_insert_with_its_cause() {
        let rows: Vec<u32> = (0..4).collect();
        let err = run(insert_isolating(&Stopper, &rows, vec![0..4])).unwrap_err();
        assert_eq!(err, "table gone");
    }
}
