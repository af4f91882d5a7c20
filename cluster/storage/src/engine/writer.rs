//! The append path: one writer thread per disk takes every queued append, places the records
//! back to back in the open segment and writes them with one pwritev per contiguous run; a
//! syncer thread then makes the batch durable with ONE fdatasync (group commit), applies it
//! to the index, and only then answers each caller. The two threads pipeline: batch N+1 is
//! written while batch N is synced. After a write or sync error the disk is failed and never
//! synced again.

use super::index::{Loc, SegKind, ShardKey};
use super::{Inner, stats::DiskCounters};
use crate::device::aligned::AlignedBuf;
use crate::error::StorageError;
use kdss_format::{BLOCK, Layout, RecordHeader, RecordKind, SegmentHeader};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use tokio::sync::oneshot;

/// Most bytes one batch writes before it is synced.
const MAX_BATCH_BYTES: u64 = 64 << 20;

/// Free segments that new shards leave untouched. A full disk must still take tombstones,
/// since deletes are how its space comes back, so new shards stop two segments short;
/// tombstones stop one short, which stays the compactor's: it needs a whole free segment to
/// move a victim's live records into before the victim is freed.
pub(crate) const PUT_RESERVE_SEGMENTS: usize = 2;

/// What a caller asks the writer for.
pub(crate) enum Op {
    /// New shard data in a record buffer (data at offset 64), with its share of the write
    /// queue, given back when the request is answered and dropped.
    Put {
        buf: AlignedBuf,
        len: u32,
        crc: u32,
        _admitted: Option<super::Admitted>,
    },
    /// A tombstone, if the shard exists.
    Delete,
    /// The compactor moving a current record; applied only if the shard still points at
    /// `expect`.
    Relocate {
        buf: AlignedBuf,
        kind: RecordKind,
        expect: Loc,
    },
}

impl Op {
    /// Free segments this append must leave behind.
    fn reserved_segments(&self) -> usize {
        match self {
            Op::Put { .. } => PUT_RESERVE_SEGMENTS,
            Op::Delete => 1,
            Op::Relocate { .. } => 0,
        }
    }
}

/// Where a durable record landed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    /// Device offset of the record (0 when a delete found nothing).
    pub offset: u64,
    /// For deletes: whether the shard existed.
    pub existed: bool,
}

pub(crate) struct Request {
    pub key: ShardKey,
    pub op: Op,
    pub reply: oneshot::Sender<Result<Placed, StorageError>>,
}

pub(crate) enum Cmd {
    Append(Request),
    Stop,
}

struct Slot {
    req: Request,
    /// Placement and the header written, or why it was refused.
    placed: Result<Option<(Loc, RecordKind, Option<Loc>)>, StorageError>,
    tomb_buf: Option<AlignedBuf>,
}

/// Runs until `Stop` or until every sender is gone.
pub(crate) fn run(inner: Arc<Inner>, rx: Receiver<Cmd>) {
    let (stx, srx) = std::sync::mpsc::sync_channel::<SyncJob>(1);
    let si = inner.clone();
    let syncer = std::thread::Builder::new()
        .name(format!("kdss-sync-{:x}", inner.id.0))
        .spawn(move || sync_loop(si, srx))
        .expect("spawn syncer thread");
    write_loop(&inner, rx, &stx);
    drop(stx);
    let _ = syncer.join();
}

/// A written batch waiting for its fdatasync.
struct SyncJob {
    slots: Vec<Slot>,
    written: u64,
}

/// The slots' records are applied or failed: their segments are settled by that much.
fn settle(st: &mut super::index::State, slots: &[Slot]) {
    for s in slots {
        if let Ok(Some((loc, _, _))) = &s.placed {
            let seg = &mut st.segs[loc.seg as usize];
            seg.unsettled = seg.unsettled.saturating_sub(1);
        }
    }
}

fn sync_loop(inner: Arc<Inner>, rx: Receiver<SyncJob>) {
    while let Ok(job) = rx.recv() {
        let mut result = if inner.failed.load(Ordering::SeqCst) {
            Err(std::io::Error::other("disk already failed"))
        } else {
            Ok(())
        };
        if result.is_ok() {
            result = inner.dev.sync();
            DiskCounters::add(&inner.counters.syncs, 1);
            if let Err(e) = &result {
                inner.fail("fdatasync", e);
            }
        }
        let mut st = inner.state.lock().expect("state lock");
        settle(&mut st, &job.slots);
        for s in &job.slots {
            if matches!(s.req.op, Op::Put { .. })
                && let Some(n) = st.pending.get_mut(&s.req.key)
            {
                *n -= 1;
                if *n == 0 {
                    st.pending.remove(&s.req.key);
                }
            }
        }
        if result.is_err() {
            drop(st);
            for s in job.slots {
                let _ = s
                    .req
                    .reply
                    .send(Err(StorageError::DiskFailed { disk: inner.id }));
            }
            continue;
        }
        DiskCounters::add(&inner.counters.bytes_written, job.written);
        let mut replies = Vec::with_capacity(job.slots.len());
        for s in job.slots {
            let reply = match s.placed {
                Ok(Some((loc, kind, expect))) => {
                    st.apply(s.req.key, kind, loc, expect);
                    DiskCounters::add(&inner.counters.records_written, 1);
                    Ok(Placed {
                        offset: loc.offset,
                        existed: true,
                    })
                }
                Ok(None) => Ok(Placed {
                    offset: 0,
                    existed: false,
                }),
                Err(e) => Err(e),
            };
            replies.push((s.req.reply, reply));
        }
        drop(st);
        for (tx, r) in replies {
            let _ = tx.send(r);
        }
    }
}

fn write_loop(inner: &Inner, rx: Receiver<Cmd>, stx: &std::sync::mpsc::SyncSender<SyncJob>) {
    loop {
        let first = match rx.recv() {
            Ok(Cmd::Append(r)) => r,
            Ok(Cmd::Stop) | Err(_) => return,
        };
        let mut batch = vec![first];
        let mut bytes = 0u64;
        let mut stop = false;
        while bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(Cmd::Append(r)) => {
                    bytes += match &r.op {
                        Op::Put { buf, .. } | Op::Relocate { buf, .. } => buf.len() as u64,
                        Op::Delete => BLOCK,
                    };
                    batch.push(r)
                }
                Ok(Cmd::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        process(inner, batch, stx);
        if stop {
            return;
        }
    }
}

fn process(inner: &Inner, batch: Vec<Request>, stx: &std::sync::mpsc::SyncSender<SyncJob>) {
    if inner.failed.load(Ordering::SeqCst) {
        for r in batch {
            let _ = r
                .reply
                .send(Err(StorageError::DiskFailed { disk: inner.id }));
        }
        return;
    }
    let mut seg_headers: Vec<(u64, AlignedBuf)> = Vec::new();
    let mut slots: Vec<Slot> = Vec::with_capacity(batch.len());
    {
        let mut st = inner.state.lock().expect("state lock");
        for mut req in batch {
            let (kind, len, crc, version, expect, layout) = match &req.op {
                Op::Put { len, crc, .. } => {
                    (RecordKind::Shard, *len, *crc, None, None, inner.layout)
                }
                Op::Delete => {
                    if st.live(&req.key).is_none() && !st.pending.contains_key(&req.key) {
                        let _ = req.reply.send(Ok(Placed {
                            offset: 0,
                            existed: false,
                        }));
                        continue;
                    }
                    let crc = crc32c::crc32c(&[]);
                    (RecordKind::Tombstone, 0, crc, None, None, Layout::V2)
                }
                Op::Relocate { kind, expect, .. } => (
                    *kind,
                    expect.len,
                    expect.crc,
                    Some(expect.version),
                    Some(*expect),
                    expect.layout,
                ),
            };
            let fp = layout.footprint(len as u64);
            let reserve = req.op.reserved_segments();
            let placed = inner.allocate(&mut st, fp, reserve, &mut seg_headers);
            let (seg, offset) = match placed {
                Ok(p) => p,
                Err(e) => {
                    let _ = req.reply.send(Err(e));
                    continue;
                }
            };
            let seq = st.next_seq;
            st.next_seq += 1;
            let version = version.unwrap_or(seq);
            let header = RecordHeader {
                kind,
                stripe_id: req.key.stripe,
                shard_index: req.key.shard,
                data_len: len,
                data_crc: crc,
                seq,
                version,
                layout,
            }
            .encode();
            let mut tomb_buf = None;
            match &mut req.op {
                Op::Put { buf, .. } | Op::Relocate { buf, .. } => {
                    buf.as_mut_slice()[..header.len()].copy_from_slice(&header)
                }
                Op::Delete => {
                    let mut b = AlignedBuf::zeroed(BLOCK as usize);
                    b.as_mut_slice()[..header.len()].copy_from_slice(&header);
                    tomb_buf = Some(b);
                }
            }
            if matches!(req.op, Op::Put { .. }) {
                *st.pending.entry(req.key).or_default() += 1;
            }
            let loc = Loc {
                seg,
                offset,
                len,
                crc,
                version,
                layout,
            };
            st.segs[seg as usize].unsettled += 1;
            slots.push(Slot {
                req,
                placed: Ok(Some((loc, kind, expect))),
                tomb_buf,
            });
        }
    }
    // Build the write list in device order: segment headers and records.
    let mut writes: Vec<(u64, &[u8])> = Vec::new();
    for (off, b) in &seg_headers {
        writes.push((*off, b.as_slice()));
    }
    for s in &slots {
        if let Ok(Some((loc, _, _))) = &s.placed {
            let buf = match (&s.req.op, &s.tomb_buf) {
                (Op::Put { buf, .. } | Op::Relocate { buf, .. }, _) => buf.as_slice(),
                (Op::Delete, Some(b)) => b.as_slice(),
                (Op::Delete, None) => continue,
            };
            let fp = loc.footprint() as usize;
            writes.push((loc.offset, &buf[..fp]));
        }
    }
    writes.sort_by_key(|w| w.0);
    let mut result = Ok(());
    let mut written = 0u64;
    let mut i = 0;
    while i < writes.len() && result.is_ok() {
        let start = writes[i].0;
        let mut end = start;
        let mut run: Vec<&[u8]> = Vec::new();
        while i < writes.len() && writes[i].0 == end {
            run.push(writes[i].1);
            end += writes[i].1.len() as u64;
            i += 1;
        }
        written += end - start;
        result = inner.dev.write_vectored_at(&run, start);
    }
    if let Err(e) = result {
        inner.fail("append", &e);
        let mut st = inner.state.lock().expect("state lock");
        settle(&mut st, &slots);
        for sl in &slots {
            if matches!(sl.req.op, Op::Put { .. }) {
                st.pending.remove(&sl.req.key);
            }
        }
        drop(st);
        for sl in slots {
            let _ = sl
                .req
                .reply
                .send(Err(StorageError::DiskFailed { disk: inner.id }));
        }
        return;
    }
    if slots.is_empty() && writes.is_empty() {
        return;
    }
    drop(writes);
    let _ = stx.send(SyncJob { slots, written });
}

impl Inner {
    /// Places `fp` bytes in the open segment, opening a new one when it is full, as long as
    /// `reserve` free segments stay untouched (see [`PUT_RESERVE_SEGMENTS`]): a segment that
    /// a tombstone or the compactor opened out of the reserve takes no new shards. A full
    /// device is refused here, before anything is written.
    fn allocate(
        &self,
        st: &mut super::index::State,
        fp: u64,
        reserve: usize,
        seg_headers: &mut Vec<(u64, AlignedBuf)>,
    ) -> Result<(u32, u64), StorageError> {
        let geo = &self.geo;
        if fp > geo.segment_size - BLOCK {
            return Err(StorageError::ShardTooLarge {
                disk: self.id,
                len: fp,
                max: geo.max_shard_len(),
            });
        }
        let free = st.free_segments();
        if let Some(o) = st.open.filter(|_| free >= reserve) {
            let s = &mut st.segs[o as usize];
            if s.write_ptr + fp <= geo.segment_size {
                let off = geo.seg_offset(o) + s.write_ptr;
                s.write_ptr += fp;
                return Ok((o, off));
            }
        }
        if free <= reserve {
            let open_left = st
                .open
                .filter(|_| free >= reserve)
                .map(|o| geo.segment_size - st.segs[o as usize].write_ptr)
                .unwrap_or(0);
            return Err(StorageError::DiskFull {
                disk: self.id,
                need: fp,
                free: open_left + free.saturating_sub(reserve) as u64 * (geo.segment_size - BLOCK),
            });
        }
        if let Some(o) = st.open {
            st.segs[o as usize].kind = SegKind::Sealed;
        }
        let n = st
            .segs
            .iter()
            .position(|s| s.kind == SegKind::Free)
            .expect("a free segment") as u32;
        let open_seq = st.next_seq;
        st.next_seq += 1;
        let s = &mut st.segs[n as usize];
        s.kind = SegKind::Open;
        s.open_seq = open_seq;
        s.write_ptr = BLOCK + fp;
        s.live = 0;
        st.open = Some(n);
        let mut hb = AlignedBuf::zeroed(BLOCK as usize);
        hb.as_mut_slice()
            .copy_from_slice(&SegmentHeader { open_seq, index: n }.encode());
        seg_headers.push((geo.seg_offset(n), hb));
        Ok((n, geo.seg_offset(n) + BLOCK))
    }
}
