//! The compactor: picks the sealed segment with the largest dead share above a threshold,
//! relocates its current records through the ordinary group-commit path (a few MiB at a
//! time, so foreground appends are never held back for long), then frees it by erasing its
//! segment header. Tombstones move too, unless every older copy they shadow lies in the
//! segment being freed.
//!
//! A segment is sealed when a record does not fit, which can be while records placed in it
//! still wait for their sync (the index learns of them only after it). Such a segment is
//! not a candidate until they settle: judged earlier, it looked dead, was freed, and the
//! acknowledged shards then pointed into a free segment (lost at the next reopen).

use super::index::{SegKind, ShardKey};
use super::writer::Op;
use super::{Disk, DiskCounters, scan};
use crate::device::aligned::AlignedBuf;
use crate::error::StorageError;
use kdss_format::{BLOCK, RecordKind};
use std::sync::atomic::Ordering;

/// Bytes relocated before waiting for their acknowledgements.
const RELOCATE_GROUP: u64 = 8 << 20;

/// What one compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub segment: u32,
    pub relocated_records: u64,
    pub relocated_bytes: u64,
    pub dropped_tombstones: u64,
    /// Corrupt current records that could not be moved (their shard is lost on this disk).
    pub lost_records: u64,
}

struct RunningGuard<'a>(&'a std::sync::atomic::AtomicU64);
impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

impl Disk {
    /// Compacts one segment whose dead share is at least `threshold` (0.0..=1.0), if any.
    /// Blocking; run it on a blocking thread.
    pub fn compact_once(&self, threshold: f64) -> Result<Option<CompactReport>, StorageError> {
        if self.is_failed() {
            return Ok(None);
        }
        let inner = &self.inner;
        let geo = inner.geo;
        let victim = {
            let st = inner.state.lock().expect("state lock");
            st.segs
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kind == SegKind::Sealed && s.unsettled == 0)
                .map(|(i, s)| {
                    let used = s.write_ptr.saturating_sub(BLOCK).max(1);
                    let dead = used.saturating_sub(s.live);
                    (i as u32, dead as f64 / used as f64, dead)
                })
                .filter(|(_, ratio, dead)| *dead > 0 && *ratio >= threshold)
                .max_by(|a, b| a.1.total_cmp(&b.1))
        };
        let Some((seg, ratio, _)) = victim else {
            return Ok(None);
        };
        inner
            .counters
            .compaction_running
            .store(1, Ordering::Relaxed);
        let _running = RunningGuard(&inner.counters.compaction_running);
        tracing::debug!(disk = %inner.id, segment = seg, ratio, "compacting");
        let mut report = CompactReport {
            segment: seg,
            ..Default::default()
        };
        let open_seq = inner.state.lock().expect("state lock").segs[seg as usize].open_seq;
        let mut found = Vec::new();
        let mut skipped = 0;
        scan::scan_segment(&inner.dev, &geo, seg, open_seq, &mut found, &mut skipped).map_err(
            |e| StorageError::Io {
                path: self.path().to_path_buf(),
                op: "compaction read",
                source: e,
            },
        )?;
        let mut pending = Vec::new();
        let mut pending_bytes = 0u64;
        for r in &found {
            let entry = {
                let st = inner.state.lock().expect("state lock");
                match st.index.get(&r.key) {
                    Some(e) if e.loc == r.loc => e.clone(),
                    _ => continue,
                }
            };
            let buf = match entry.kind {
                RecordKind::Tombstone => {
                    if entry.older.iter().all(|s| *s == seg) {
                        continue; // dropped once the segment is freed
                    }
                    AlignedBuf::zeroed(BLOCK as usize)
                }
                RecordKind::Shard => {
                    let _gate = inner.read_gate.read().expect("read gate");
                    match self.read_record(r.key, &entry) {
                        Ok(b) => b,
                        Err(StorageError::ChecksumMismatch { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            pending_bytes += buf.len() as u64;
            report.relocated_bytes += buf.len() as u64;
            report.relocated_records += 1;
            pending.push(self.send(
                r.key,
                Op::Relocate {
                    buf,
                    kind: entry.kind,
                    expect: entry.loc,
                },
            )?);
            if pending_bytes >= RELOCATE_GROUP {
                wait_all(self, &mut pending)?;
                pending_bytes = 0;
            }
        }
        wait_all(self, &mut pending)?;
        // Whatever still points into the segment must be a droppable tombstone or a corrupt
        // record; anything else (a relocation refused for space) keeps the segment.
        let mut lost: Vec<ShardKey> = Vec::new();
        {
            let st = inner.state.lock().expect("state lock");
            for (k, e) in st.index.iter().filter(|(_, e)| e.loc.seg == seg) {
                match e.kind {
                    RecordKind::Tombstone if e.older.iter().all(|s| *s == seg) => {}
                    RecordKind::Shard if !found.iter().any(|r| r.loc == e.loc) => lost.push(*k),
                    _ => {
                        tracing::warn!(disk = %inner.id, segment = seg, "compaction left a record behind; segment kept");
                        return Ok(None);
                    }
                }
            }
        }
        // Free: wait for in-flight readers, erase the segment header durably, then forget it.
        let _gate = inner.read_gate.write().expect("read gate");
        let zero = AlignedBuf::zeroed(BLOCK as usize);
        if let Err(e) = inner
            .dev
            .write_at(zero.as_slice(), geo.seg_offset(seg))
            .and_then(|_| inner.dev.sync())
        {
            inner.fail("compaction", &e);
            return Err(StorageError::Io {
                path: self.path().to_path_buf(),
                op: "free segment",
                source: e,
            });
        }
        let mut st = inner.state.lock().expect("state lock");
        st.index.retain(|k, e| {
            if e.loc.seg == seg {
                if e.kind == RecordKind::Tombstone {
                    report.dropped_tombstones += 1;
                } else {
                    tracing::error!(disk = %inner.id, stripe = k.stripe, shard = k.shard,
                        "corrupt record could not be relocated; shard lost on this disk");
                    report.lost_records += 1;
                }
                return false;
            }
            true
        });
        for e in st.index.values_mut() {
            e.older.retain(|s| *s != seg);
        }
        st.segs[seg as usize] = super::index::Seg::free();
        drop(st);
        debug_assert_eq!(lost.len() as u64, report.lost_records);
        DiskCounters::add(&inner.counters.compactions, 1);
        DiskCounters::add(&inner.counters.compacted_bytes, report.relocated_bytes);
        tracing::info!(disk = %inner.id, ?report, "segment compacted and freed");
        Ok(Some(report))
    }
}

fn wait_all(
    disk: &Disk,
    pending: &mut Vec<tokio::sync::oneshot::Receiver<Result<super::Placed, StorageError>>>,
) -> Result<(), StorageError> {
    for rx in pending.drain(..) {
        match rx.blocking_recv() {
            Ok(Ok(_)) => {}
            Ok(Err(StorageError::DiskFull { .. })) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(StorageError::Stopped(disk.id())),
        }
    }
    Ok(())
}
