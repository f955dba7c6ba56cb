//! The wall clock, read in one place. Only the outer layers read it (`pipeline` stamps what it
//! decodes and inserts, `sink` and `report` stamp their bookkeeping rows); enrichment never does:
//! it gets the time as data (`enrich::Meta::ingested_at`).

/// The current time in UTC milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The current time in UTC seconds since the Unix epoch, as ClickHouse's `DateTime` stores it
/// (0 if the clock is before 1970).
pub fn now_secs() -> u32 {
    (now_ms() / 1000).clamp(0, i64::from(u32::MAX)) as u32
}
