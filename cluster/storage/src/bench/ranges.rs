//! Random 4 KiB range reads of 1 MiB shards, for records of both layouts on the same
//! device: what per-block checksums save a small read (issue 19). Layout 1 must read and
//! check the whole record for any range; layout 2 reads the blocks the range touches.

use super::{Figure, parallel};
use crate::engine::{Disk, DiskCounters, ShardKey};
use crate::error::StorageError;
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Reads 4 KiB at random offsets of random shards of `keys` from `threads` threads for
/// `dur`; returns the reads/s figure and the device KiB fetched per read.
pub(super) fn random_4k(
    disk: &Disk,
    keys: &[ShardKey],
    shard_len: u64,
    threads: usize,
    dur: Duration,
    label: &str,
) -> Result<Vec<Figure>, StorageError> {
    let n = AtomicU64::new(0);
    let dev0 = DiskCounters::get(&disk.counters().device_read_bytes);
    let t0 = Instant::now();
    parallel(threads, |_, _| {
        if t0.elapsed() >= dur || keys.is_empty() {
            return Ok(false);
        }
        let mut rng = rand::rng();
        let key = keys[rng.random_range(0..keys.len())];
        let off = rng.random_range(0..shard_len - 4096);
        let r = disk.read(key, off, 4096)?;
        std::hint::black_box(r.data());
        n.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    })?;
    let secs = t0.elapsed().as_secs_f64();
    let reads = n.load(Ordering::Relaxed).max(1);
    let fetched = DiskCounters::get(&disk.counters().device_read_bytes) - dev0;
    Ok(vec![
        Figure {
            name: format!("4 KiB of 1 MiB, {label}"),
            value: reads as f64 / secs,
            unit: "reads/s",
        },
        Figure {
            name: format!("  device KiB per read, {label}"),
            value: fetched as f64 / reads as f64 / 1024.0,
            unit: "KiB",
        },
    ])
}
