//! The record engine of one disk: format and open (recovery L0/L1/L2), group-committed
//! appends, checksum-verified reads, tombstone deletes, compaction and scrubbing.
//!
//! Public entry points: [`format`], [`Disk::open`], and on a [`Disk`]: `put`, `read`,
//! `delete`, `stat`, `compact_once`, `scrub_pass`, `stats`, `close`. Blocking methods do
//! device I/O on the calling thread; async callers use the `*_async` variants or
//! `spawn_blocking`. Dropping a `Disk` without `close` is what a crash leaves (no checkpoint).

mod admission;
mod compact;
mod geometry;
mod index;
mod open;
mod read;
mod scan;
mod scrub;
mod stats;
mod writer;

pub use admission::{Admitted, DEFAULT_WRITE_QUEUE_BYTES};
pub use compact::CompactReport;
pub use geometry::Geometry;
pub use index::ShardKey;
pub use open::{FormatOptions, IndexSource, OpenOptions, RecoveryReport, format};
pub use read::ShardRead;
pub use scrub::ScrubReport;
pub use stats::{DiskCounters, DiskStats};
pub use writer::Placed;

use crate::device::Device;
use crate::device::aligned::AlignedBuf;
use crate::error::StorageError;
use index::State;
use kdss_common::DiskId;
use kdss_format::{Layout, RecordKind, record_footprint};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::thread::JoinHandle;
use tokio::sync::oneshot;
use writer::{Cmd, Op, Request};

/// Offset of `len` bytes of shard data inside a new record buffer (after the header and the
/// checksum table).
pub fn data_offset(len: usize) -> usize {
    Layout::V2.data_offset(len as u64) as usize
}

/// A record buffer for `len` bytes of shard data: aligned, sized to the record's footprint,
/// with the data to be copied in at [`data_offset`]. Filling it directly as bytes arrive
/// saves a copy on the put path.
pub fn record_buf(len: usize) -> AlignedBuf {
    AlignedBuf::zeroed(record_footprint(len as u64) as usize)
}

/// A record buffer holding a copy of `data` at [`data_offset`], for callers that already
/// have the whole shard in memory.
pub fn record_buf_of(data: &[u8]) -> AlignedBuf {
    let mut buf = record_buf(data.len());
    let at = data_offset(data.len());
    buf.as_mut_slice()[at..at + data.len()].copy_from_slice(data);
    buf
}

/// Shared state of an open disk.
pub(crate) struct Inner {
    pub id: DiskId,
    pub dev: Device,
    pub geo: Geometry,
    pub state: Mutex<State>,
    /// Readers hold it shared across lookup + pread; freeing a segment takes it exclusively,
    /// so a reader never reads a segment that is being reused.
    pub read_gate: RwLock<()>,
    pub failed: AtomicBool,
    pub counters: Arc<DiskCounters>,
    pub superblock: Mutex<kdss_format::SuperBlock>,
    /// Unix ms of the last foreground request, for the compactor's idle test.
    pub last_foreground_ms: AtomicU64,
    /// Shards whose current record failed its checksum, with that record's version: see
    /// [`Disk::corrupt_shards`].
    pub corrupt: Mutex<HashMap<ShardKey, u64>>,
    /// The layout new shard records get.
    pub layout: Layout,
}

impl Inner {
    /// Marks the disk failed after an I/O error: no more writes, never synced again.
    pub fn fail(&self, what: &str, e: &std::io::Error) {
        DiskCounters::add(&self.counters.io_errors, 1);
        if !self.failed.swap(true, Ordering::SeqCst) {
            tracing::error!(disk = %self.id, path = %self.dev.path().display(), error = %e,
                "{what} failed; disk is now failed and accepts no more writes");
        }
    }

    fn touch(&self) {
        self.last_foreground_ms
            .store(kdss_common::time::now_ms(), Ordering::Relaxed);
    }
}

/// An open disk. Shared between tasks behind an `Arc`.
pub struct Disk {
    inner: Arc<Inner>,
    tx: Mutex<Option<mpsc::Sender<Cmd>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    report: RecoveryReport,
    queue: admission::WriteQueue,
}

impl Disk {
    pub(crate) fn start(inner: Inner, report: RecoveryReport, queue_bytes: u64) -> Disk {
        let inner = Arc::new(inner);
        let (tx, rx) = mpsc::channel();
        let w = inner.clone();
        let handle = std::thread::Builder::new()
            .name(format!("kdss-writer-{:x}", inner.id.0))
            .spawn(move || writer::run(w, rx))
            .expect("spawn writer thread");
        Disk {
            inner,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            report,
            queue: admission::WriteQueue::new(queue_bytes),
        }
    }

    /// Opens a formatted device, recovering its index (see [`RecoveryReport`]).
    pub fn open(path: &Path, cluster_id: &str, opts: OpenOptions) -> Result<Disk, StorageError> {
        open::open(path, cluster_id, opts)
    }

    /// The disk id written at format time.
    pub fn id(&self) -> DiskId {
        self.inner.id
    }

    /// The device path.
    pub fn path(&self) -> &Path {
        self.inner.dev.path()
    }

    /// How the last open recovered.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The device layout.
    pub fn geometry(&self) -> Geometry {
        self.inner.geo
    }

    /// Counters for metrics.
    pub fn counters(&self) -> &DiskCounters {
        &self.inner.counters
    }

    /// The fault layer, when test configuration installed one.
    pub fn fault(&self) -> Option<&Arc<crate::device::fault::FaultLayer>> {
        self.inner.dev.fault()
    }

    /// The device under the disk (latency and S.M.A.R.T. for the health report).
    pub fn device(&self) -> &Device {
        &self.inner.dev
    }

    /// Whether an I/O error has failed the disk.
    pub fn is_failed(&self) -> bool {
        self.inner.failed.load(Ordering::SeqCst)
    }

    fn send(
        &self,
        key: ShardKey,
        op: Op,
    ) -> Result<oneshot::Receiver<Result<Placed, StorageError>>, StorageError> {
        if self.is_failed() {
            return Err(StorageError::DiskFailed {
                disk: self.inner.id,
            });
        }
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.lock().expect("tx lock");
        let tx = tx.as_ref().ok_or(StorageError::Stopped(self.inner.id))?;
        tx.send(Cmd::Append(Request { key, op, reply }))
            .map_err(|_| StorageError::Stopped(self.inner.id))?;
        Ok(rx)
    }

    fn put_op(
        &self,
        mut buf: AlignedBuf,
        len: usize,
        crc: u32,
        admitted: Option<Admitted>,
    ) -> Result<Op, StorageError> {
        self.inner.touch();
        let max = self.inner.geo.max_shard_len();
        if len as u64 > max {
            return Err(StorageError::ShardTooLarge {
                disk: self.inner.id,
                len: len as u64,
                max,
            });
        }
        assert!(
            buf.len() as u64 >= record_footprint(len as u64),
            "record_buf sized the buffer"
        );
        // The block table is computed here, on the caller's thread, not the disk's writer.
        match self.inner.layout {
            Layout::V2 => kdss_format::blocks::fill_table(buf.as_mut_slice(), len),
            Layout::V1 => {
                let at = data_offset(len);
                let to = Layout::V1.data_offset(len as u64) as usize;
                buf.as_mut_slice().copy_within(at..at + len, to);
            }
        }
        Ok(Op::Put {
            buf,
            len: len as u32,
            crc,
            _admitted: admitted,
        })
    }

    /// Waits until a put of `len` bytes fits in this disk's write queue
    /// (`[limits] write_queue_bytes`): callers take this before they hand the put to the
    /// writer ([`Disk::put_admitted`]), which holds it until the put answered, so a slow
    /// device pushes back on the senders instead of its queue growing.
    pub async fn admit(&self, len: u64) -> Admitted {
        self.queue.admit(len, &self.inner.counters).await
    }

    /// Appends a shard whose `len` bytes sit at [`data_offset`] of `buf` (from
    /// [`record_buf`]) with crc32c `crc`; returns once the record is durable and indexed.
    pub fn put(
        &self,
        key: ShardKey,
        buf: AlignedBuf,
        len: usize,
        crc: u32,
    ) -> Result<Placed, StorageError> {
        let op = self.put_op(buf, len, crc, None)?;
        self.send(key, op)?
            .blocking_recv()
            .map_err(|_| StorageError::Stopped(self.inner.id))?
    }

    /// [`Disk::put`] for async callers: waits without holding a thread.
    pub async fn put_async(
        &self,
        key: ShardKey,
        buf: AlignedBuf,
        len: usize,
        crc: u32,
    ) -> Result<Placed, StorageError> {
        self.put_admitted(None, key, buf, len, crc).await
    }

    /// [`Disk::put_async`] holding `admitted` (from [`Disk::admit`]) until the writer has
    /// answered: a caller that gives up early does not free room its buffer still takes.
    pub async fn put_admitted(
        &self,
        admitted: Option<Admitted>,
        key: ShardKey,
        buf: AlignedBuf,
        len: usize,
        crc: u32,
    ) -> Result<Placed, StorageError> {
        let op = self.put_op(buf, len, crc, admitted)?;
        self.send(key, op)?
            .await
            .map_err(|_| StorageError::Stopped(self.inner.id))?
    }

    /// Convenience for tests and the bench: copies `data` into a record buffer and puts it.
    pub fn put_bytes(&self, key: ShardKey, data: &[u8]) -> Result<Placed, StorageError> {
        self.put(key, record_buf_of(data), data.len(), crc32c::crc32c(data))
    }

    /// Deletes a shard by appending a tombstone; returns whether it existed.
    pub fn delete(&self, key: ShardKey) -> Result<bool, StorageError> {
        self.inner.touch();
        let r = self.send(key, Op::Delete)?.blocking_recv();
        Ok(r.map_err(|_| StorageError::Stopped(self.inner.id))??
            .existed)
    }

    /// [`Disk::delete`] for async callers.
    pub async fn delete_async(&self, key: ShardKey) -> Result<bool, StorageError> {
        self.inner.touch();
        let r = self.send(key, Op::Delete)?.await;
        Ok(r.map_err(|_| StorageError::Stopped(self.inner.id))??
            .existed)
    }

    /// Length and crc32c of a live shard.
    pub fn stat(&self, key: ShardKey) -> Option<(u64, u32)> {
        let st = self.inner.state.lock().expect("state lock");
        st.live(&key).map(|l| (l.len as u64, l.crc))
    }

    /// Every live shard with its length, in key order: the disk's inventory, which the
    /// master compares with its stripe map to find shards nobody references. A snapshot
    /// taken under the state lock; puts still in the writer's pipeline are not in it.
    pub fn live_shards(&self) -> Vec<(ShardKey, u64)> {
        let mut v: Vec<(ShardKey, u64)> = {
            let st = self.inner.state.lock().expect("state lock");
            st.index
                .iter()
                .filter(|(_, e)| e.kind == kdss_format::RecordKind::Shard)
                .map(|(k, e)| (*k, e.loc.len as u64))
                .collect()
        };
        v.sort_unstable_by_key(|(k, _)| *k);
        v
    }

    /// Remembers that the record `version` of `key` failed its checksum, if it is still the
    /// shard's live record (a put or delete that raced the read has already replaced it).
    pub(super) fn note_corrupt(&self, key: ShardKey, version: u64) {
        let live = {
            let st = self.inner.state.lock().expect("state lock");
            st.live(&key).map(|l| l.version)
        };
        if live == Some(version) {
            self.inner
                .corrupt
                .lock()
                .expect("corrupt lock")
                .insert(key, version);
        }
    }

    /// The live shards of this disk whose record failed its checksum (found by a read or
    /// the scrubber), in key order, at most `limit`; the flag says more were left out. The
    /// master's repair job rebuilds them on another disk. A shard leaves the set as soon as
    /// it is deleted or written again (its live record is then another version).
    ///
    /// The set lives in memory only: a restart forgets it, and the next scrub pass (or the
    /// next read of a corrupt shard) finds the same records again.
    pub fn corrupt_shards(&self, limit: usize) -> (Vec<ShardKey>, bool) {
        let st = self.inner.state.lock().expect("state lock");
        let mut set = self.inner.corrupt.lock().expect("corrupt lock");
        set.retain(|k, v| st.live(k).map(|l| l.version) == Some(*v));
        drop(st);
        let mut keys: Vec<ShardKey> = set.keys().copied().collect();
        drop(set);
        keys.sort_unstable();
        let more = keys.len() > limit;
        keys.truncate(limit);
        (keys, more)
    }

    /// Space and health for the heartbeat and metrics.
    pub fn stats(&self) -> DiskStats {
        let geo = &self.inner.geo;
        let st = self.inner.state.lock().expect("state lock");
        let mut used = 0;
        let mut dead = 0;
        let mut free = 0;
        for (i, s) in st.segs.iter().enumerate() {
            match s.kind {
                index::SegKind::Free => free += geo.segment_size - kdss_format::BLOCK,
                _ => {
                    used += s.live;
                    dead += s.write_ptr.saturating_sub(kdss_format::BLOCK + s.live);
                    if st.open == Some(i as u32) {
                        free += geo.segment_size - s.write_ptr;
                    }
                }
            }
        }
        let records = st
            .index
            .values()
            .filter(|e| e.kind == RecordKind::Shard)
            .count() as u64;
        let free_segs = st.free_segments();
        drop(st);
        // What new shards may use: the reserved free segments are for tombstones and the
        // compactor, and an open segment taken out of them is theirs too.
        let reserve = writer::PUT_RESERVE_SEGMENTS;
        let free = if free_segs < reserve {
            0
        } else {
            free - reserve as u64 * (geo.segment_size - kdss_format::BLOCK)
        };
        DiskStats {
            capacity: geo.capacity(),
            used,
            dead,
            free,
            records,
            failed: self.is_failed(),
            readonly: free < geo.max_shard_len().min(4 << 20),
            io_errors: DiskCounters::get(&self.inner.counters.io_errors),
            checksum_errors: DiskCounters::get(&self.inner.counters.checksum_errors),
        }
    }

    /// Clean shutdown: stops the writer, writes the index checkpoint and sets the
    /// clean-shutdown flag (so the next open is L0). A failed disk is left as it is.
    pub fn close(&self) -> Result<(), StorageError> {
        self.stop_writer();
        if self.is_failed() {
            return Ok(());
        }
        open::write_checkpoint(&self.inner)
    }

    fn stop_writer(&self) {
        if let Some(tx) = self.tx.lock().expect("tx lock").take() {
            let _ = tx.send(Cmd::Stop);
        }
        if let Some(h) = self.writer.lock().expect("writer lock").take() {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Disk({} at {})", self.inner.id, self.path().display())
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        // Without close(): no checkpoint, exactly what a crash leaves.
        self.stop_writer();
    }
}

impl Disk {
    /// Milliseconds since the last foreground request (the compactor's idle test).
    pub fn idle_for_ms(&self) -> u64 {
        kdss_common::time::now_ms()
            .saturating_sub(self.inner.last_foreground_ms.load(Ordering::Relaxed))
    }
}
