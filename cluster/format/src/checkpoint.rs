//! The index checkpoint written on clean shutdown (recovery level L0): the segment table and
//! every index entry, so a clean restart needs no scan. Its crc32c and length live in the
//! superblock; a checkpoint that fails them is ignored and the index is rebuilt (L2).
//!
//! Byte layout (little-endian):
//!
//! ```text
//! 0..8    magic b"KDSSCKP1"
//! 8..16   next seq
//! 16..20  segment count S
//! 20..28  entry count E
//! then S segments of 17 bytes: state u8 (0 free, 1 open, 2 sealed), open seq u64, write ptr u64
//! then E entries: stripe u64, shard u32, kind u8 (1 shard, 2 tombstone; bit 0x80 set for a
//!                 layout-2 record, clear in checkpoints of the first format), segment u32,
//!                 offset u64, len u32, crc u32, version u64, older count u16,
//!                 older segments u32 * count
//! ```

use crate::{FormatError, Layout, get_u32, get_u64};

const MAGIC: &[u8; 8] = b"KDSSCKP1";

/// One segment's state in the checkpoint.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CheckpointSegment {
    /// 0 free, 1 open, 2 sealed.
    pub state: u8,
    pub open_seq: u64,
    /// Bytes used from the segment start (header block included).
    pub write_ptr: u64,
}

/// One index entry in the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointEntry {
    pub stripe_id: u64,
    pub shard_index: u32,
    /// 1 shard, 2 tombstone.
    pub kind: u8,
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
    pub version: u64,
    /// Segments still holding superseded records of this shard.
    pub older: Vec<u32>,
    /// The record's layout, so a clean restart knows where its data starts.
    pub layout: Layout,
}

/// The kind byte's flag for a layout-2 record.
const LAYOUT_2: u8 = 0x80;

/// The whole checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Checkpoint {
    pub next_seq: u64,
    pub segments: Vec<CheckpointSegment>,
    pub entries: Vec<CheckpointEntry>,
}

fn truncated(need: usize, have: usize) -> FormatError {
    FormatError::Truncated {
        what: "checkpoint",
        need: need as u64,
        have: have as u64,
    }
}

impl Checkpoint {
    /// Encodes; the caller stores the crc32c of the result in the superblock.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(28 + self.segments.len() * 17 + self.entries.len() * 48);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.next_seq.to_le_bytes());
        b.extend_from_slice(&(self.segments.len() as u32).to_le_bytes());
        b.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        for s in &self.segments {
            b.push(s.state);
            b.extend_from_slice(&s.open_seq.to_le_bytes());
            b.extend_from_slice(&s.write_ptr.to_le_bytes());
        }
        for e in &self.entries {
            b.extend_from_slice(&e.stripe_id.to_le_bytes());
            b.extend_from_slice(&e.shard_index.to_le_bytes());
            b.push(match e.layout {
                Layout::V1 => e.kind,
                Layout::V2 => e.kind | LAYOUT_2,
            });
            b.extend_from_slice(&e.segment.to_le_bytes());
            b.extend_from_slice(&e.offset.to_le_bytes());
            b.extend_from_slice(&e.len.to_le_bytes());
            b.extend_from_slice(&e.crc.to_le_bytes());
            b.extend_from_slice(&e.version.to_le_bytes());
            let n = e.older.len().min(u16::MAX as usize);
            b.extend_from_slice(&(n as u16).to_le_bytes());
            for s in &e.older[..n] {
                b.extend_from_slice(&s.to_le_bytes());
            }
        }
        b
    }

    /// Decodes bytes whose crc32c the caller has already checked against the superblock.
    pub fn decode(b: &[u8]) -> Result<Self, FormatError> {
        if b.len() < 28 {
            return Err(truncated(28, b.len()));
        }
        if &b[0..8] != MAGIC {
            return Err(FormatError::BadMagic { what: "checkpoint" });
        }
        let next_seq = get_u64(b, 8);
        let nseg = get_u32(b, 16) as usize;
        let nent = get_u64(b, 20) as usize;
        let mut at = 28usize;
        let need = at.saturating_add(nseg.saturating_mul(17));
        if b.len() < need {
            return Err(truncated(need, b.len()));
        }
        let mut segments = Vec::with_capacity(nseg);
        for _ in 0..nseg {
            segments.push(CheckpointSegment {
                state: b[at],
                open_seq: get_u64(b, at + 1),
                write_ptr: get_u64(b, at + 9),
            });
            at += 17;
        }
        let mut entries = Vec::with_capacity(nent.min(b.len() / 43));
        for _ in 0..nent {
            if b.len() < at + 43 {
                return Err(truncated(at + 43, b.len()));
            }
            let n = u16::from_le_bytes([b[at + 41], b[at + 42]]) as usize;
            let mut e = CheckpointEntry {
                stripe_id: get_u64(b, at),
                shard_index: get_u32(b, at + 8),
                kind: b[at + 12] & !LAYOUT_2,
                segment: get_u32(b, at + 13),
                offset: get_u64(b, at + 17),
                len: get_u32(b, at + 25),
                crc: get_u32(b, at + 29),
                version: get_u64(b, at + 33),
                older: Vec::with_capacity(n),
                layout: if b[at + 12] & LAYOUT_2 != 0 {
                    Layout::V2
                } else {
                    Layout::V1
                },
            };
            at += 43;
            if b.len() < at + 4 * n {
                return Err(truncated(at + 4 * n, b.len()));
            }
            for _ in 0..n {
                e.older.push(get_u32(b, at));
                at += 4;
            }
            entries.push(e);
        }
        if at != b.len() {
            return Err(FormatError::Invalid {
                what: "checkpoint",
                detail: format!("{} trailing bytes", b.len() - at),
            });
        }
        Ok(Checkpoint {
            next_seq,
            segments,
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut c = Checkpoint {
            next_seq: 10,
            segments: vec![CheckpointSegment {
                state: 1,
                open_seq: 3,
                write_ptr: 8192,
            }],
            entries: vec![CheckpointEntry {
                stripe_id: 1,
                shard_index: 2,
                kind: 1,
                segment: 0,
                offset: 4096,
                len: 5,
                crc: 6,
                version: 7,
                older: vec![1, 2],
                layout: Layout::V1,
            }],
        };
        let mut v2 = c.entries[0].clone();
        v2.layout = Layout::V2;
        v2.stripe_id = 9;
        c.entries.push(v2);
        let e = c.encode();
        assert_eq!(
            e[28 + 17 + 12],
            1,
            "a layout-1 entry is written as the first format wrote it"
        );
        assert_eq!(Checkpoint::decode(&e).unwrap(), c);
        for cut in 0..e.len() {
            assert!(Checkpoint::decode(&e[..cut]).is_err());
        }
    }
}
