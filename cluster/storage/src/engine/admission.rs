//! The bound on shard bytes queued for one disk's writer and not yet durable. A put takes
//! its share before it is handed to the writer and keeps it until the writer has
//! answered (even if its caller gave up), so a device that slows down (or hangs in
//! fdatasync) makes new puts wait at the door instead of the writer's queue growing
//! without bound. Puts waiting at the door hold their received shard; the gRPC server's
//! per-connection concurrency limit bounds how many do.

use super::stats::DiskCounters;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of shard data one disk admits at once unless `[limits] write_queue_bytes` says
/// otherwise: four full group-commit batches.
pub const DEFAULT_WRITE_QUEUE_BYTES: u64 = 256 << 20;

/// Granule of the budget (permits count these, so a u32 of them covers any budget).
const UNIT: u64 = 4096;

/// The admission budget of one disk.
#[derive(Debug)]
pub(crate) struct WriteQueue {
    sem: Arc<Semaphore>,
    /// Permits in the whole budget.
    units: u32,
}

/// A put's share of the budget; given back on drop (after the put answered or failed).
#[derive(Debug)]
pub struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
    bytes: u64,
    counters: Arc<DiskCounters>,
}

impl WriteQueue {
    pub(crate) fn new(bytes: u64) -> WriteQueue {
        let units = bytes.div_ceil(UNIT).clamp(1, u32::MAX as u64 >> 2) as u32;
        WriteQueue {
            sem: Arc::new(Semaphore::new(units as usize)),
            units,
        }
    }

    /// Waits until `bytes` more fit (a shard larger than the whole budget waits for all of
    /// it, so it still gets in once the queue is empty).
    pub(crate) async fn admit(&self, bytes: u64, counters: &Arc<DiskCounters>) -> Admitted {
        let want = bytes.div_ceil(UNIT).clamp(1, self.units as u64) as u32;
        // The semaphore is never closed.
        let permit = self.sem.clone().acquire_many_owned(want).await.ok();
        let now = counters
            .write_queue_bytes
            .fetch_add(bytes, Ordering::SeqCst)
            + bytes;
        counters
            .write_queue_peak_bytes
            .fetch_max(now, Ordering::SeqCst);
        Admitted {
            _permit: permit,
            bytes,
            counters: counters.clone(),
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        DiskCounters::sub(&self.counters.write_queue_bytes, self.bytes);
    }
}
