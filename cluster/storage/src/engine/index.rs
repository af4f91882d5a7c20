//! The in-memory index (shard → record location) and the segment table, with the one place
//! that applies a durable record to them. Everything here is rebuildable from the device.

use kdss_format::{Checkpoint, CheckpointEntry, CheckpointSegment, Layout, RecordKind};
use std::collections::HashMap;

/// A shard's identity on a disk.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardKey {
    pub stripe: u64,
    pub shard: u32,
}

/// Where a record sits and what it holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub seg: u32,
    /// Device offset of the record header.
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
    pub version: u64,
    /// Where the record's data starts and how it is checksummed.
    pub layout: Layout,
}

impl Loc {
    /// Device bytes the record occupies.
    pub fn footprint(&self) -> u64 {
        self.layout.footprint(self.len as u64)
    }
}

/// The current record of a shard: its data, or the tombstone that deleted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: RecordKind,
    pub loc: Loc,
    /// Segments still holding superseded records of this shard. A tombstone is kept while
    /// this is non-empty, so deleted data never comes back after a rebuild.
    pub older: Vec<u32>,
}

impl Entry {
    /// Device bytes of the current record.
    pub fn footprint(&self) -> u64 {
        self.loc.footprint()
    }
}

/// Life cycle of a segment.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SegKind {
    Free,
    Open,
    Sealed,
}

/// One segment's state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Seg {
    pub kind: SegKind,
    pub open_seq: u64,
    /// Bytes used from the segment start, header block included.
    pub write_ptr: u64,
    /// Bytes of current records (live shards and needed tombstones).
    pub live: u64,
    /// Records placed here whose sync has not completed: they reach the index only then,
    /// so the compactor must not judge (or free) the segment before this is back to 0.
    pub unsettled: u32,
}

impl Seg {
    /// A free segment.
    pub fn free() -> Self {
        Seg {
            kind: SegKind::Free,
            open_seq: 0,
            write_ptr: 0,
            live: 0,
            unsettled: 0,
        }
    }
}

/// Index plus segment table plus the next sequence number: the engine's mutable state.
#[derive(Debug)]
pub struct State {
    pub index: HashMap<ShardKey, Entry>,
    pub segs: Vec<Seg>,
    pub open: Option<u32>,
    pub next_seq: u64,
    /// Puts written but not yet synced and applied (the writer pipelines batches), so a
    /// delete queued behind a put still writes its tombstone.
    pub pending: HashMap<ShardKey, u32>,
}

fn push_unique(v: &mut Vec<u32>, s: u32) {
    if !v.contains(&s) {
        v.push(s);
    }
}

impl State {
    /// An empty state for a freshly formatted device.
    pub fn empty(segments: u32) -> Self {
        State {
            index: HashMap::new(),
            segs: vec![Seg::free(); segments as usize],
            open: None,
            next_seq: 1,
            pending: HashMap::new(),
        }
    }

    /// Number of free segments.
    pub fn free_segments(&self) -> usize {
        self.segs.iter().filter(|s| s.kind == SegKind::Free).count()
    }

    /// Applies a durable record. `expect` is set for a relocation by the compactor: it only
    /// takes effect if the shard still points at the record being moved; otherwise the new
    /// copy is dead and only noted in `older`.
    pub fn apply(&mut self, key: ShardKey, kind: RecordKind, loc: Loc, expect: Option<Loc>) {
        let fp = loc.footprint();
        match (self.index.get_mut(&key), expect) {
            (Some(e), Some(old)) if e.loc != old => push_unique(&mut e.older, loc.seg),
            (None, Some(_)) => {}
            (Some(e), _) => {
                let old_fp = e.footprint();
                let s = &mut self.segs[e.loc.seg as usize];
                s.live = s.live.saturating_sub(old_fp);
                push_unique(&mut e.older, e.loc.seg);
                e.kind = kind;
                e.loc = loc;
                self.segs[loc.seg as usize].live += fp;
            }
            (None, None) => {
                self.index.insert(
                    key,
                    Entry {
                        kind,
                        loc,
                        older: Vec::new(),
                    },
                );
                self.segs[loc.seg as usize].live += fp;
            }
        }
    }

    /// The live shard record of `key`, if any.
    pub fn live(&self, key: &ShardKey) -> Option<Loc> {
        self.index
            .get(key)
            .filter(|e| e.kind == RecordKind::Shard)
            .map(|e| e.loc)
    }

    /// Serializes for the clean-shutdown checkpoint.
    pub fn to_checkpoint(&self) -> Checkpoint {
        Checkpoint {
            next_seq: self.next_seq,
            segments: self
                .segs
                .iter()
                .map(|s| CheckpointSegment {
                    state: match s.kind {
                        SegKind::Free => 0,
                        SegKind::Open => 1,
                        SegKind::Sealed => 2,
                    },
                    open_seq: s.open_seq,
                    write_ptr: s.write_ptr,
                })
                .collect(),
            entries: self
                .index
                .iter()
                .map(|(k, e)| CheckpointEntry {
                    stripe_id: k.stripe,
                    shard_index: k.shard,
                    kind: e.kind as u8,
                    segment: e.loc.seg,
                    offset: e.loc.offset,
                    len: e.loc.len,
                    crc: e.loc.crc,
                    version: e.loc.version,
                    older: e.older.clone(),
                    layout: e.loc.layout,
                })
                .collect(),
        }
    }

    /// Rebuilds from a checkpoint; `None` if it does not describe `segments` segments or
    /// refers to segments that do not exist.
    pub fn from_checkpoint(c: &Checkpoint, segments: u32) -> Option<Self> {
        if c.segments.len() != segments as usize {
            return None;
        }
        let mut st = State::empty(segments);
        st.next_seq = c.next_seq;
        for (i, s) in c.segments.iter().enumerate() {
            let kind = match s.state {
                0 => SegKind::Free,
                1 => SegKind::Open,
                2 => SegKind::Sealed,
                _ => return None,
            };
            if kind == SegKind::Open {
                st.open = Some(i as u32);
            }
            st.segs[i] = Seg {
                kind,
                open_seq: s.open_seq,
                write_ptr: s.write_ptr,
                live: 0,
                unsettled: 0,
            };
        }
        for e in &c.entries {
            let kind = match e.kind {
                1 => RecordKind::Shard,
                2 => RecordKind::Tombstone,
                _ => return None,
            };
            if e.segment >= segments || e.older.iter().any(|s| *s >= segments) {
                return None;
            }
            let loc = Loc {
                seg: e.segment,
                offset: e.offset,
                len: e.len,
                crc: e.crc,
                version: e.version,
                layout: e.layout,
            };
            st.segs[e.segment as usize].live += loc.footprint();
            st.index.insert(
                ShardKey {
                    stripe: e.stripe_id,
                    shard: e.shard_index,
                },
                Entry {
                    kind,
                    loc,
                    older: e.older.clone(),
                },
            );
        }
        Some(st)
    }
}
