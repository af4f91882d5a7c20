//! Shard reads. A layout-1 record is read whole and checked against its one crc32c; a
//! layout-2 record is read only where the range needs it (the header block, the table
//! entries and the 4 KiB data blocks the range touches), each block checked on its own.
//! Bytes that fail a check are never returned, and the record is marked corrupt for repair.

use super::index::{Entry, Loc};
use super::{Disk, ShardKey};
use crate::device::aligned::AlignedBuf;
use crate::engine::DiskCounters;
use crate::error::StorageError;
use bytes::Bytes;
use kdss_format::{BLOCK, Layout, RecordHeader, RecordKind, decode_record};

/// A verified read: the buffer read from the device and the requested range inside it.
pub struct ShardRead {
    buf: AlignedBuf,
    start: usize,
    len: usize,
    /// Total length of the shard.
    pub shard_len: u64,
    /// crc32c of the whole shard.
    pub crc: u32,
}

impl ShardRead {
    /// The requested bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf.as_slice()[self.start..self.start + self.len]
    }

    /// The requested bytes as `Bytes`, without copying.
    pub fn into_bytes(self) -> Bytes {
        let (start, len) = (self.start, self.len);
        Bytes::from_owner(self.buf).slice(start..start + len)
    }
}

fn align_down(n: u64) -> u64 {
    n / BLOCK * BLOCK
}

fn align_up(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

impl Disk {
    /// Reads `len` bytes (0 = to the end) from `offset` of a shard, verified first.
    pub fn read(&self, key: ShardKey, offset: u64, len: u64) -> Result<ShardRead, StorageError> {
        self.inner.touch();
        let _gate = self.inner.read_gate.read().expect("read gate");
        let loc = {
            let st = self.inner.state.lock().expect("state lock");
            st.live(&key)
        }
        .ok_or(StorageError::NotFound {
            disk: self.inner.id,
            stripe: key.stripe,
            shard: key.shard,
        })?;
        let shard_len = loc.len as u64;
        let len = if len == 0 {
            shard_len.saturating_sub(offset)
        } else {
            len
        };
        if offset.checked_add(len).is_none_or(|e| e > shard_len) {
            return Err(StorageError::BadRange {
                offset,
                len,
                shard_len,
            });
        }
        let (buf, start) = match loc.layout {
            Layout::V2 if len > 0 => self.read_blocks(key, loc, offset, len)?,
            _ => {
                let entry = Entry {
                    kind: RecordKind::Shard,
                    loc,
                    older: vec![],
                };
                let buf = self.read_record(key, &entry)?;
                (
                    buf,
                    loc.layout.data_offset(shard_len) as usize + offset as usize,
                )
            }
        };
        DiskCounters::add(&self.inner.counters.records_read, 1);
        DiskCounters::add(&self.inner.counters.bytes_read, len);
        Ok(ShardRead {
            buf,
            start,
            len: len as usize,
            shard_len,
            crc: loc.crc,
        })
    }

    /// Reads `len` bytes of device at `at`, counting them.
    fn read_device(&self, at: u64, len: u64) -> Result<AlignedBuf, StorageError> {
        let mut buf = AlignedBuf::zeroed(len as usize);
        DiskCounters::add(&self.inner.counters.device_read_bytes, len);
        self.inner
            .dev
            .read_at(buf.as_mut_slice(), at)
            .map_err(|source| {
                DiskCounters::add(&self.inner.counters.io_errors, 1);
                StorageError::Io {
                    path: self.path().to_path_buf(),
                    op: "read",
                    source,
                }
            })?;
        Ok(buf)
    }

    /// The checked bytes of a layout-2 record around `[offset, offset + len)`: the buffer
    /// and where the range starts in it. One device read when the header block and the data
    /// blocks are close, else two.
    fn read_blocks(
        &self,
        key: ShardKey,
        loc: Loc,
        offset: u64,
        len: u64,
    ) -> Result<(AlignedBuf, usize), StorageError> {
        let span = kdss_format::blocks::span(loc.len as u64, offset, len);
        let head_end = align_up(span.table.end);
        let data_from = align_down(span.data.start);
        let data_to = align_up(span.data.end);
        let (head, body) = if data_from <= head_end {
            (None, self.read_device(loc.offset, data_to)?)
        } else {
            let head = self.read_device(loc.offset, head_end)?;
            (
                Some(head),
                self.read_device(loc.offset + data_from, data_to - data_from)?,
            )
        };
        let (head_bytes, body_base) = match &head {
            Some(h) => (h.as_slice(), data_from),
            None => (body.as_slice(), 0),
        };
        let header =
            RecordHeader::decode(head_bytes).map_err(|e| self.corrupt(key, loc, e.to_string()))?;
        self.check_header(key, loc, RecordKind::Shard, &header)?;
        let table = &head_bytes[span.table.start as usize..span.table.end as usize];
        let at = (span.data.start - body_base) as usize;
        let data = &body.as_slice()[at..at + (span.data.end - span.data.start) as usize];
        kdss_format::blocks::verify(table, data, span.first_block)
            .map_err(|e| self.corrupt(key, loc, e.to_string()))?;
        let skip = offset - span.first_block * kdss_format::CRC_BLOCK as u64;
        Ok((body, at + skip as usize))
    }

    /// Reads and verifies the whole record an index entry points at (caller holds the read
    /// gate).
    pub(super) fn read_record(&self, key: ShardKey, e: &Entry) -> Result<AlignedBuf, StorageError> {
        let loc = e.loc;
        let buf = self.read_device(loc.offset, e.footprint())?;
        match decode_record(buf.as_slice()) {
            Ok((h, _)) => self.check_header(key, loc, e.kind, &h)?,
            Err(err) => return Err(self.corrupt(key, loc, err.to_string())),
        }
        Ok(buf)
    }

    /// A record whose header is intact but is not the one the index names is corrupt too
    /// (a misdirected or lost write).
    fn check_header(
        &self,
        key: ShardKey,
        loc: Loc,
        kind: RecordKind,
        h: &RecordHeader,
    ) -> Result<(), StorageError> {
        if h.kind != kind
            || h.stripe_id != key.stripe
            || h.shard_index != key.shard
            || h.version != loc.version
            || h.data_len != loc.len
            || h.data_crc != loc.crc
            || h.layout != loc.layout
        {
            return Err(self.corrupt(
                key,
                loc,
                format!("record header does not match the index: {h:?}"),
            ));
        }
        Ok(())
    }

    /// Counts and logs a failed check, marks the shard corrupt, and names it in the error.
    fn corrupt(&self, key: ShardKey, loc: Loc, detail: String) -> StorageError {
        DiskCounters::add(&self.inner.counters.checksum_errors, 1);
        self.note_corrupt(key, loc.version);
        tracing::error!(disk = %self.inner.id, stripe = key.stripe, shard = key.shard,
            offset = loc.offset, "{detail}");
        StorageError::ChecksumMismatch {
            disk: self.inner.id,
            stripe: key.stripe,
            shard: key.shard,
            offset: loc.offset,
            detail,
        }
    }
}
