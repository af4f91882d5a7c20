//! The scrubber: re-reads every live record, verifying its checksums, at a pace the caller
//! sets, and reports the corrupt ones (counted in the disk's checksum errors and metrics).

use super::index::{Entry, ShardKey};
use super::{Disk, DiskCounters};
use crate::error::StorageError;
use kdss_format::RecordKind;
use std::sync::atomic::Ordering;

/// What one scrub pass found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScrubReport {
    pub records: u64,
    pub bytes: u64,
    pub corrupt: Vec<ShardKey>,
}

impl Disk {
    /// Verifies every live record once, in device order. `pace(bytes)` is called after each
    /// record (it may sleep to hold a bandwidth budget) and returns false to stop early.
    /// Blocking; run it on a blocking thread.
    pub fn scrub_pass(
        &self,
        mut pace: impl FnMut(u64) -> bool,
    ) -> Result<ScrubReport, StorageError> {
        let inner = &self.inner;
        let mut todo: Vec<(ShardKey, Entry)> = {
            let st = inner.state.lock().expect("state lock");
            st.index
                .iter()
                .filter(|(_, e)| e.kind == RecordKind::Shard)
                .map(|(k, e)| (*k, e.clone()))
                .collect()
        };
        todo.sort_by_key(|(_, e)| e.loc.offset);
        inner
            .counters
            .scrub_pass_total
            .store(todo.len() as u64, Ordering::Relaxed);
        inner.counters.scrub_pass_done.store(0, Ordering::Relaxed);
        let mut report = ScrubReport::default();
        for (key, entry) in todo {
            let res = {
                let _gate = inner.read_gate.read().expect("read gate");
                let still = inner.state.lock().expect("state lock").index.get(&key) == Some(&entry);
                if !still {
                    continue;
                }
                self.read_record(key, &entry)
            };
            let n = entry.footprint();
            match res {
                Ok(_) => {}
                Err(StorageError::ChecksumMismatch { .. }) => {
                    DiskCounters::add(&inner.counters.scrub_corrupt, 1);
                    report.corrupt.push(key);
                }
                Err(e) => return Err(e),
            }
            report.records += 1;
            report.bytes += n;
            DiskCounters::add(&inner.counters.scrub_bytes, n);
            DiskCounters::add(&inner.counters.scrub_pass_done, 1);
            if !pace(n) {
                break;
            }
        }
        DiskCounters::add(&inner.counters.scrub_passes, 1);
        if !report.corrupt.is_empty() {
            tracing::error!(disk = %inner.id, corrupt = report.corrupt.len(), "scrub found corrupt records");
        }
        Ok(report)
    }
}
