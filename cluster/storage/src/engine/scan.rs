//! Recovery level L2: rebuild the index from the device alone by walking every in-use
//! segment. A record counts only if its header and data checksums verify and its seq is
//! above the segment's open seq; anything else (a torn tail, leftovers of an earlier life
//! of the segment, rot) is skipped block by block and never indexed.

use super::geometry::Geometry;
use super::index::{Entry, Loc, Seg, SegKind, ShardKey, State};
use crate::device::Device;
use crate::device::aligned::AlignedBuf;
use crate::error::StorageError;
use kdss_format::record::HEADER_LEN;
use kdss_format::{BLOCK, RecordHeader, RecordKind, SegmentHeader};
use std::collections::HashMap;

const WINDOW: u64 = 8 << 20;

/// One verified record found by the scan.
#[derive(Clone, Debug)]
pub(crate) struct Scanned {
    pub key: ShardKey,
    pub kind: RecordKind,
    pub loc: Loc,
    pub seq: u64,
}

/// A sliding aligned read window over one segment.
struct Window<'a> {
    dev: &'a Device,
    base: u64,
    seg_size: u64,
    buf: AlignedBuf,
    start: u64,
    len: u64,
}

impl Window<'_> {
    /// Makes `[pos, pos + n)` (segment-relative) available and returns it.
    fn get(&mut self, pos: u64, n: u64) -> std::io::Result<&[u8]> {
        if pos < self.start || pos + n > self.start + self.len {
            let want = n.max(WINDOW.min(self.seg_size)).min(self.seg_size - pos);
            let want = want.div_ceil(BLOCK) * BLOCK;
            if (self.buf.len() as u64) < want {
                self.buf = AlignedBuf::zeroed(want as usize);
            }
            self.dev.read_at(
                &mut self.buf.as_mut_slice()[..want as usize],
                self.base + pos,
            )?;
            self.start = pos;
            self.len = want;
        }
        let from = (pos - self.start) as usize;
        Ok(&self.buf.as_slice()[from..from + n as usize])
    }
}

/// Walks segment `i` (opened at `open_seq`); returns its write pointer.
pub(crate) fn scan_segment(
    dev: &Device,
    geo: &Geometry,
    i: u32,
    open_seq: u64,
    out: &mut Vec<Scanned>,
    skipped: &mut u64,
) -> std::io::Result<u64> {
    let seg_size = geo.segment_size;
    let mut w = Window {
        dev,
        base: geo.seg_offset(i),
        seg_size,
        buf: AlignedBuf::zeroed(WINDOW.min(seg_size) as usize),
        start: 0,
        len: 0,
    };
    let mut pos = BLOCK;
    let mut write_ptr = BLOCK;
    while pos + BLOCK <= seg_size {
        let h = match RecordHeader::decode(w.get(pos, HEADER_LEN as u64)?) {
            Ok(h) if h.seq > open_seq && pos + h.footprint() <= seg_size => h,
            _ => {
                pos += BLOCK;
                continue;
            }
        };
        let fp = h.footprint();
        let rec = w.get(pos, fp)?;
        if kdss_format::decode_record(rec).is_err() {
            *skipped += 1;
            tracing::warn!(
                segment = i,
                offset = pos,
                stripe = h.stripe_id,
                shard = h.shard_index,
                "record fails its data checksum (torn or corrupt); skipped"
            );
            pos += BLOCK;
            continue;
        }
        out.push(Scanned {
            key: ShardKey {
                stripe: h.stripe_id,
                shard: h.shard_index,
            },
            kind: h.kind,
            loc: Loc {
                seg: i,
                offset: geo.seg_offset(i) + pos,
                len: h.data_len,
                crc: h.data_crc,
                version: h.version,
                layout: h.layout,
            },
            seq: h.seq,
        });
        pos += fp;
        write_ptr = pos;
    }
    Ok(write_ptr)
}

/// Rebuilds the state from the device; returns it with the counts of records indexed and
/// skipped.
pub(crate) fn rebuild(dev: &Device, geo: &Geometry) -> Result<(State, u64, u64), StorageError> {
    let io = |source| StorageError::Io {
        path: dev.path().to_path_buf(),
        op: "scan",
        source,
    };
    let mut st = State::empty(geo.segment_count);
    let mut found = Vec::new();
    let mut skipped = 0;
    let mut max_seq = 0u64;
    let mut hb = AlignedBuf::zeroed(BLOCK as usize);
    for i in 0..geo.segment_count {
        dev.read_at(hb.as_mut_slice(), geo.seg_offset(i))
            .map_err(io)?;
        let Ok(h) = SegmentHeader::decode(hb.as_slice()) else {
            continue;
        };
        if h.index != i {
            continue;
        }
        let wp = scan_segment(dev, geo, i, h.open_seq, &mut found, &mut skipped).map_err(io)?;
        st.segs[i as usize] = Seg {
            kind: SegKind::Sealed,
            open_seq: h.open_seq,
            write_ptr: wp,
            live: 0,
            unsettled: 0,
        };
        max_seq = max_seq.max(h.open_seq);
    }
    // The segment opened last is the open one.
    st.open = st
        .segs
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind != SegKind::Free)
        .max_by_key(|(_, s)| s.open_seq)
        .map(|(i, _)| i as u32);
    if let Some(o) = st.open {
        st.segs[o as usize].kind = SegKind::Open;
    }
    let records = found.len() as u64;
    let mut by_key: HashMap<ShardKey, Vec<Scanned>> = HashMap::new();
    for r in found {
        max_seq = max_seq.max(r.seq);
        by_key.entry(r.key).or_default().push(r);
    }
    for (key, mut recs) in by_key {
        recs.sort_by_key(|r| (r.loc.version, r.seq));
        let win = recs.pop().expect("at least one record");
        let mut older: Vec<u32> = recs.iter().map(|r| r.loc.seg).collect();
        older.sort_unstable();
        older.dedup();
        if win.kind == RecordKind::Tombstone && older.is_empty() {
            continue;
        }
        st.segs[win.loc.seg as usize].live += win.loc.footprint();
        st.index.insert(
            key,
            Entry {
                kind: win.kind,
                loc: win.loc,
                older,
            },
        );
    }
    st.next_seq = max_seq + 1;
    Ok((st, records, skipped))
}
