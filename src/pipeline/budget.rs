//! The bytes of records in flight, bounded: a [`Budget`] of byte permits (a tokio `Semaphore`)
//! that the source takes for every record it reads ([`record_bytes`]: value, key and headers
//! plus [`RECORD_OVERHEAD_BYTES`]) before handing it on. The permit ([`Held`]) travels with the
//! record and then with its row, and goes back to the budget when it is dropped: after the row's
//! insert and acknowledgement, after the dead-letter write, or when the record is dropped
//! (shutdown, a failed stage). While ClickHouse is down the budget runs out and the source
//! waits, however large the records are; the channels' capacity only bounds their count.
//!
//! A record larger than the whole budget takes all of it (it waits until nothing else is in
//! flight), so it still passes and nothing deadlocks.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::kafka::RawRecord;

/// What a record occupies beside its value, key and headers: the `RawRecord`, then the
/// `EventRow` with its strings (enrichment adds names), the `Done`, and the allocator's share.
pub const RECORD_OVERHEAD_BYTES: usize = 2048;

/// The bytes a record counts against the budget.
pub fn record_bytes(record: &RawRecord) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.as_ref().map_or(0, Vec::len))
        .sum();
    record.payload.as_ref().map_or(0, Vec::len)
        + record.key.as_ref().map_or(0, Vec::len)
        + headers
        + RECORD_OVERHEAD_BYTES
}

/// The byte budget of records in flight (`memory.limit_mb / 2`, see `config::MemoryBudget`).
#[derive(Debug, Clone)]
pub struct Budget {
    permits: Arc<Semaphore>,
    total: u32,
}

/// Bytes taken from a [`Budget`]; given back on drop.
#[derive(Debug)]
pub struct Held {
    _permit: OwnedSemaphorePermit,
    bytes: usize,
}

impl Held {
    /// The bytes this holds (at most the budget's total).
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Budget {
    /// A budget of `bytes` (capped at `u32::MAX`, the most one semaphore acquire can take).
    pub fn new(bytes: usize) -> Budget {
        let total = u32::try_from(bytes).unwrap_or(u32::MAX).max(1);
        Budget {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
        }
    }

    /// Size of the budget in bytes (at least 1, at most `u32::MAX`).
    pub fn total(&self) -> usize {
        self.total as usize
    }

    /// Bytes not taken now.
    pub fn available(&self) -> usize {
        self.permits.available_permits()
    }

    /// Take `bytes`, waiting until they are free; more than the total takes the total, so an
    /// oversized record waits for the others to finish instead of forever. Waiters are served
    /// in order (the semaphore is fair).
    pub async fn acquire(&self, bytes: usize) -> Held {
        let n = u32::try_from(bytes).unwrap_or(u32::MAX).min(self.total);
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(n)
            .await
            .expect("the budget's semaphore is never closed");
        Held {
            _permit: permit,
            bytes: n as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::event::{SourcePosition, Stream};
    use crate::kafka::RawHeader;

    async fn pending<F: std::future::Future>(f: F) -> bool {
        tokio::time::timeout(Duration::from_millis(50), f)
            .await
            .is_err()
    }

    #[tokio::test]
    async fn bytes_come_back_when_the_held_permit_is_dropped() {
        let budget = Budget::new(1000);
        let a = budget.acquire(600).await;
        assert_eq!((a.bytes(), budget.available()), (600, 400));
        let b = budget.acquire(400).await;
        assert_eq!(budget.available(), 0);
        assert!(pending(budget.acquire(1)).await, "nothing left: waits");
        drop(a);
        assert_eq!(budget.available(), 600);
        let c = budget.acquire(600).await;
        assert_eq!(budget.available(), 0);
        drop((b, c));
        assert_eq!(budget.available(), 1000, "everything given back");
    }

    #[tokio::test]
    async fn a_record_larger_than_the_budget_takes_all_of_it_and_passes() {
        let budget = Budget::new(1000);
        let small = budget.acquire(10).await;
        let big = budget.acquire(5000);
        tokio::pin!(big);
        assert!(
            pending(&mut big).await,
            "waits while anything else is in flight"
        );
        drop(small);
        let big = tokio::time::timeout(Duration::from_secs(1), big)
            .await
            .expect("passes once alone");
        assert_eq!((big.bytes(), budget.available()), (1000, 0));
        drop(big);
        assert_eq!(budget.available(), 1000);
    }

    #[tokio::test]
    async fn waiters_are_served_in_order_so_a_large_one_is_not_starved() {
        let budget = Budget::new(100);
        let first = budget.acquire(60).await;
        let large = tokio::spawn({
            let b = budget.clone();
            async move { b.acquire(100).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // A small request behind the large one waits, although 40 bytes are free.
        let small = budget.acquire(10);
        tokio::pin!(small);
        assert!(pending(&mut small).await);
        drop(first);
        let large = large.await.unwrap();
        assert_eq!(large.bytes(), 100);
        assert!(pending(&mut small).await);
        drop(large);
        assert_eq!(small.await.bytes(), 10);
    }

    #[test]
    fn a_record_counts_value_key_headers_and_its_overhead() {
        let record = RawRecord {
            position: SourcePosition {
                topic: "t".into(),
                partition: 0,
                offset: 1,
            },
            stream: Stream::Call,
            key: Some(vec![0; 7]),
            payload: Some(vec![0; 1_000_000]),
            headers: vec![
                RawHeader {
                    key: b"k".to_vec(),
                    value: Some(vec![0; 20]),
                },
                RawHeader {
                    key: b"null".to_vec(),
                    value: None,
                },
            ],
            generation: 1,
            kafka_timestamp_ms: None,
        };
        assert_eq!(
            record_bytes(&record),
            1_000_000 + 7 + 21 + 4 + RECORD_OVERHEAD_BYTES
        );
        let empty = RawRecord {
            key: None,
            payload: None,
            headers: Vec::new(),
            ..record
        };
        assert_eq!(record_bytes(&empty), RECORD_OVERHEAD_BYTES);
    }

    #[test]
    fn a_budget_beyond_u32_is_capped() {
        assert_eq!(Budget::new(usize::MAX).total(), u32::MAX as usize);
        assert_eq!(Budget::new(0).total(), 1);
    }
}
