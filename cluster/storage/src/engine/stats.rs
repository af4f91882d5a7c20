//! Per-disk counters, read by the metrics endpoint and the heartbeat.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters and progress gauges of one disk.
#[derive(Debug, Default)]
pub struct DiskCounters {
    pub bytes_written: AtomicU64,
    pub records_written: AtomicU64,
    pub bytes_read: AtomicU64,
    pub records_read: AtomicU64,
    /// Device bytes shard reads fetched to serve and verify them: the whole record for a
    /// layout-1 record, the touched checksum blocks for a layout-2 one.
    pub device_read_bytes: AtomicU64,
    pub io_errors: AtomicU64,
    pub checksum_errors: AtomicU64,
    pub syncs: AtomicU64,
    pub compactions: AtomicU64,
    pub compacted_bytes: AtomicU64,
    pub compaction_running: AtomicU64,
    pub scrub_passes: AtomicU64,
    pub scrub_bytes: AtomicU64,
    pub scrub_corrupt: AtomicU64,
    /// Records checked in the current scrub pass and records in it.
    pub scrub_pass_done: AtomicU64,
    pub scrub_pass_total: AtomicU64,
    /// Shard bytes admitted to the disk's write queue and not yet answered, and the most
    /// there ever were at once (see `engine::admission`).
    pub write_queue_bytes: AtomicU64,
    pub write_queue_peak_bytes: AtomicU64,
}

impl DiskCounters {
    /// Adds `n` to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtracts `n` from a gauge.
    pub fn sub(c: &AtomicU64, n: u64) {
        c.fetch_sub(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// A snapshot of a disk's space and health, as the heartbeat reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskStats {
    pub capacity: u64,
    pub used: u64,
    pub dead: u64,
    pub free: u64,
    pub records: u64,
    pub failed: bool,
    pub readonly: bool,
    pub io_errors: u64,
    pub checksum_errors: u64,
}
