//! Formatting a device, opening it with recovery, and the clean-shutdown checkpoint.
//!
//! Recovery levels: L1 when one superblock copy is invalid (the other is used and both are
//! rewritten); L0 when the clean-shutdown flag is set and the checkpoint verifies and is not
//! stale; L2 (a scan of every in-use segment) otherwise.

use super::geometry::Geometry;
use super::index::{SegKind, State};
use super::{Disk, Inner, scan};
use crate::device::Device;
use crate::device::aligned::AlignedBuf;
use crate::device::fault::FaultLayer;
use crate::error::StorageError;
use kdss_common::DiskId;
use kdss_format::{
    BLOCK, Checkpoint, FormatError, RecordHeader, SegmentHeader, SuperBlock, cluster_hash,
    round_up_block,
};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

/// Options of [`format`].
#[derive(Clone, Debug, Default)]
pub struct FormatOptions {
    /// Segment size; `None` picks one from the device size.
    pub segment_size: Option<u64>,
    /// Reformat a device that already carries a KDSS superblock (its data is lost).
    pub force: bool,
}

/// Options of [`Disk::open`].
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    /// Test-only fault injection on this disk's I/O.
    pub fault: Option<Arc<FaultLayer>>,
    /// The layout of the shard records this disk writes. Always the current one, except in
    /// tests that need records as the first format wrote them.
    #[doc(hidden)]
    pub layout: kdss_format::Layout,
    /// Bound of the disk's write queue in bytes ([`super::Disk::admit`]); `None` for
    /// [`super::DEFAULT_WRITE_QUEUE_BYTES`].
    pub write_queue_bytes: Option<u64>,
}

/// Where the index came from on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexSource {
    /// L0: the clean-shutdown checkpoint.
    Checkpoint,
    /// L2: a scan of the device; `reason` says why the checkpoint was not used.
    Scan {
        reason: String,
        records: u64,
        skipped: u64,
    },
}

/// What recovery did on open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// L1: the newest superblock copy was invalid and the other one was used.
    pub superblock_fallback: bool,
    pub index: IndexSource,
    pub elapsed_ms: u64,
}

fn io<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

fn read_superblocks(dev: &Device) -> Result<[Result<SuperBlock, FormatError>; 2], StorageError> {
    if dev.size() < 2 * BLOCK {
        return Err(StorageError::Unformatted {
            path: dev.path().to_path_buf(),
            reason: format!("only {} bytes", dev.size()),
        });
    }
    let mut b = AlignedBuf::zeroed(2 * BLOCK as usize);
    dev.read_at(b.as_mut_slice(), 0)
        .map_err(io(dev.path(), "read superblock"))?;
    let s = b.as_slice();
    Ok([
        SuperBlock::decode(&s[..BLOCK as usize]),
        SuperBlock::decode(&s[BLOCK as usize..]),
    ])
}

fn write_superblock(dev: &Device, sb: &SuperBlock) -> std::io::Result<()> {
    let mut b = AlignedBuf::zeroed(BLOCK as usize);
    b.as_mut_slice().copy_from_slice(&sb.encode());
    dev.write_at(b.as_slice(), SuperBlock::copy_offset(sb.slot()))
}

/// Formats `path` (created and sized to `size` bytes if it is a missing or smaller regular
/// file) for `cluster_id`, returning the new disk id. A device that already carries a KDSS
/// superblock is refused unless `opts.force`.
pub fn format(
    path: &Path,
    size: u64,
    cluster_id: &str,
    opts: FormatOptions,
) -> Result<DiskId, StorageError> {
    crate::device::ensure_sized(path, size)?;
    let dev = Device::open(path, None)?;
    if !opts.force {
        let [a, b] = read_superblocks(&dev)?;
        if let Ok(sb) = SuperBlock::pick(a, b) {
            return Err(StorageError::AlreadyFormatted {
                path: path.to_path_buf(),
                disk: DiskId(sb.disk_id),
            });
        }
    }
    let geo = Geometry::choose(path, dev.size(), opts.segment_size)?;
    // Free every segment: leftovers of an earlier format must never count as in use.
    let zero = AlignedBuf::zeroed(BLOCK as usize);
    for i in 0..geo.segment_count {
        dev.write_at(zero.as_slice(), geo.seg_offset(i))
            .map_err(io(path, "write"))?;
    }
    let disk_id = loop {
        let id = rand::random::<u64>();
        if id != 0 {
            break id;
        }
    };
    let ckpt = State::empty(geo.segment_count).to_checkpoint().encode();
    let mut cb = AlignedBuf::zeroed(ckpt.len());
    cb.as_mut_slice()[..ckpt.len()].copy_from_slice(&ckpt);
    dev.write_at(cb.as_slice(), geo.checkpoint_offset)
        .map_err(io(path, "write checkpoint"))?;
    let mut sb = SuperBlock {
        generation: 1,
        clean: true,
        disk_id,
        cluster_hash: cluster_hash(cluster_id),
        cluster_id: cluster_id.to_string(),
        device_size: geo.device_size,
        segment_size: geo.segment_size,
        data_start: geo.data_start,
        segment_count: geo.segment_count as u64,
        checkpoint_offset: geo.checkpoint_offset,
        checkpoint_capacity: geo.checkpoint_capacity,
        checkpoint_len: ckpt.len() as u64,
        checkpoint_crc: crc32c::crc32c(&ckpt),
        next_seq: 1,
    };
    for g in [1, 2] {
        sb.generation = g;
        write_superblock(&dev, &sb).map_err(io(path, "write superblock"))?;
    }
    dev.sync().map_err(io(path, "fdatasync"))?;
    tracing::info!(path = %path.display(), disk = %DiskId(disk_id), segments = geo.segment_count,
        segment_size = geo.segment_size, "formatted");
    Ok(DiskId(disk_id))
}

/// Opens and recovers a device.
pub(super) fn open(path: &Path, cluster_id: &str, opts: OpenOptions) -> Result<Disk, StorageError> {
    let t0 = Instant::now();
    let dev = Device::open(path, opts.fault)?;
    let [a, b] = read_superblocks(&dev)?;
    let fallback = a.is_err() != b.is_err();
    let sb = match SuperBlock::pick(a, b) {
        Ok(sb) => sb,
        Err(FormatError::BadMagic { .. }) => {
            return Err(StorageError::Unformatted {
                path: path.to_path_buf(),
                reason: "no KDSS superblock (wrong magic)".into(),
            });
        }
        Err(e) => {
            return Err(StorageError::Unformatted {
                path: path.to_path_buf(),
                reason: format!("both superblock copies are invalid: {e}"),
            });
        }
    };
    if fallback {
        tracing::warn!(path = %path.display(), "one superblock copy is invalid; using the other (L1)");
    }
    if sb.cluster_hash != cluster_hash(cluster_id) {
        return Err(StorageError::ForeignCluster {
            path: path.to_path_buf(),
            found: sb.cluster_id.clone(),
            expected: cluster_id.to_string(),
        });
    }
    if sb.device_size > dev.size() {
        return Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            detail: format!(
                "formatted for {} bytes, device has {}",
                sb.device_size,
                dev.size()
            ),
        });
    }
    let geo = Geometry::from_superblock(&sb);
    let loaded = if sb.clean {
        load_checkpoint(&dev, &geo, &sb)
    } else {
        Err("the clean-shutdown flag is not set".to_string())
    };
    let (state, index) = match loaded {
        Ok(st) => (st, IndexSource::Checkpoint),
        Err(reason) => {
            tracing::info!(path = %path.display(), %reason, "rebuilding the index by scanning (L2)");
            let (st, records, skipped) = scan::rebuild(&dev, &geo)?;
            (
                st,
                IndexSource::Scan {
                    reason,
                    records,
                    skipped,
                },
            )
        }
    };
    // From now on the checkpoint is stale: clear the flag in both copies (repairing L1).
    let mut sb2 = sb.clone();
    sb2.clean = false;
    sb2.checkpoint_len = 0;
    for _ in 0..2 {
        sb2.generation += 1;
        write_superblock(&dev, &sb2).map_err(io(path, "write superblock"))?;
    }
    dev.sync().map_err(io(path, "fdatasync"))?;
    let report = RecoveryReport {
        superblock_fallback: fallback,
        index,
        elapsed_ms: t0.elapsed().as_millis() as u64,
    };
    tracing::info!(path = %path.display(), disk = %DiskId(sb.disk_id), ?report, "disk open");
    let inner = Inner {
        id: DiskId(sb.disk_id),
        dev,
        geo,
        state: Mutex::new(state),
        read_gate: RwLock::new(()),
        failed: AtomicBool::new(false),
        counters: Default::default(),
        superblock: Mutex::new(sb2),
        last_foreground_ms: AtomicU64::new(0),
        corrupt: Default::default(),
        layout: opts.layout,
    };
    let queue = opts
        .write_queue_bytes
        .unwrap_or(super::DEFAULT_WRITE_QUEUE_BYTES);
    Ok(Disk::start(inner, report, queue))
}

/// L0: the checkpoint, if it verifies and nothing was appended after it.
fn load_checkpoint(dev: &Device, geo: &Geometry, sb: &SuperBlock) -> Result<State, String> {
    if sb.checkpoint_len == 0 {
        return Err("no checkpoint".into());
    }
    let mut b = AlignedBuf::zeroed(round_up_block(sb.checkpoint_len) as usize);
    dev.read_at(b.as_mut_slice(), sb.checkpoint_offset)
        .map_err(|e| format!("read: {e}"))?;
    let bytes = &b.as_slice()[..sb.checkpoint_len as usize];
    if crc32c::crc32c(bytes) != sb.checkpoint_crc {
        return Err("checkpoint checksum mismatch".into());
    }
    let c = Checkpoint::decode(bytes).map_err(|e| e.to_string())?;
    if c.next_seq != sb.next_seq {
        return Err("checkpoint is not the one the superblock names".into());
    }
    let st = State::from_checkpoint(&c, geo.segment_count)
        .ok_or_else(|| "checkpoint does not match the device geometry".to_string())?;
    // Stale check: nothing newer than the checkpoint may exist on the device.
    let mut blk = AlignedBuf::zeroed(BLOCK as usize);
    for (i, s) in st.segs.iter().enumerate() {
        let base = geo.seg_offset(i as u32);
        match s.kind {
            SegKind::Free => {
                dev.read_at(blk.as_mut_slice(), base)
                    .map_err(|e| format!("read: {e}"))?;
                if let Ok(h) = SegmentHeader::decode(blk.as_slice())
                    && h.open_seq >= c.next_seq
                {
                    return Err(format!("checkpoint is stale: segment {i} opened after it"));
                }
            }
            SegKind::Open if s.write_ptr + BLOCK <= geo.segment_size => {
                dev.read_at(blk.as_mut_slice(), base + s.write_ptr)
                    .map_err(|e| format!("read: {e}"))?;
                if let Ok(h) = RecordHeader::decode(blk.as_slice())
                    && h.seq >= c.next_seq
                {
                    return Err("checkpoint is stale: records were appended after it".into());
                }
            }
            _ => {}
        }
    }
    Ok(st)
}

/// Writes the index checkpoint and a superblock with the clean-shutdown flag.
pub(super) fn write_checkpoint(inner: &Inner) -> Result<(), StorageError> {
    let path = inner.dev.path();
    let ckpt = inner.state.lock().expect("state lock").to_checkpoint();
    let next_seq = ckpt.next_seq;
    let bytes = ckpt.encode();
    let mut sb = inner.superblock.lock().expect("superblock lock");
    if bytes.len() as u64 > inner.geo.checkpoint_capacity {
        tracing::warn!(path = %path.display(), len = bytes.len(),
            "index checkpoint does not fit its area; next open will scan (L2)");
        return Ok(());
    }
    let mut b = AlignedBuf::zeroed(bytes.len());
    b.as_mut_slice()[..bytes.len()].copy_from_slice(&bytes);
    let r = inner
        .dev
        .write_at(b.as_slice(), inner.geo.checkpoint_offset)
        .and_then(|_| inner.dev.sync())
        .and_then(|_| {
            sb.generation += 1;
            sb.clean = true;
            sb.checkpoint_len = bytes.len() as u64;
            sb.checkpoint_crc = crc32c::crc32c(&bytes);
            sb.next_seq = next_seq;
            write_superblock(&inner.dev, &sb)
        })
        .and_then(|_| inner.dev.sync());
    if let Err(e) = r {
        inner.fail("checkpoint", &e);
        return Err(StorageError::Io {
            path: path.to_path_buf(),
            op: "checkpoint",
            source: e,
        });
    }
    tracing::info!(path = %path.display(), entries = ckpt.entries.len(), "index checkpoint written");
    Ok(())
}
