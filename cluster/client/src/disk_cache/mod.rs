//! The disk tier of the read cache (ksfs `[mount] cache_dir`): shard blocks kept in files
//! under a local directory, so a remount, or a read after the memory cache let a block go,
//! finds them without asking a storage node. Stripes never change once committed, so a
//! block is never stale by content; what keeps it from being served to the wrong reader is
//! the header of each file (cluster name, stripe, shard, first block, block count, a crc32c
//! per block and one of the header), checked on every read: a bad header is a miss for the
//! whole file, which is deleted; a block cut short or failing its crc32c is a miss for that
//! block alone, which is forgotten (the file stays until evicted). Both are counted.
//!
//! One file holds a run of up to 64 consecutive blocks of one shard, as one fetch brought
//! them (issue 19: a file create and rename per 64 KiB block cost a quarter of the writer
//! thread's CPU); the in-memory index maps each block to its file, so a read of one block
//! reads the header page and that block only. The client gets no per-block checksum from
//! the storage node (its reply carries data only), so the writer computes each block's
//! crc32c itself, just before writing that block, while the bytes are in the CPU cache.
//!
//! Reads are synchronous file reads (the caller runs them on a blocking thread); writes go
//! through a small queue to one writer thread, off the read's path, and are dropped when the
//! queue is full. Each file is written in `tmp/` and renamed into `blocks/`, so a crash
//! leaves whole files and temp files, which the next start removes. Files are not fsynced:
//! a block whose data did not reach the disk before a power loss fails its checksum later.
//! Files of the one-block-per-file format (1, `*.blk`) are deleted at the first open by a
//! build that writes runs: a cache can be refilled, so it is not converted.

mod entry;
mod index;
mod store;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use crate::cache::BLOCK_SIZE;
use index::Index;
use store::make_dir;

/// Bytes of fetched data the write queue may hold; past it new writes are dropped.
const QUEUE_BYTES: u64 = 8 << 20;
/// Verified file headers kept in memory (a few hundred bytes each).
const HEADERS_HELD: std::num::NonZeroUsize = std::num::NonZeroUsize::new(4096).unwrap();
/// Runs the write queue may hold (the byte bound is the one that matters).
const QUEUE_RUNS: usize = 256;

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskCacheError {
    #[error("cache directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cache directory {path}: {why}")]
    Invalid { path: PathBuf, why: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DiskCacheError + '_ {
    move |source| DiskCacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Counters and occupancy of the disk tier.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiskCacheStats {
    /// Blocks served from disk.
    pub hits: u64,
    /// Blocks looked for on disk and not served from it.
    pub misses: u64,
    /// Blocks found torn or corrupt, or in a file whose header is bad, unreadable or of
    /// another cluster (forgotten; a file with a bad header is deleted).
    pub corrupt: u64,
    /// Blocks written.
    pub writes: u64,
    /// Blocks not written because the write queue was full (or a write failed).
    pub dropped: u64,
    /// Files deleted to stay within the size bound.
    pub evictions: u64,
    /// Bytes on disk of the files held.
    pub bytes: u64,
    /// Blocks held.
    pub entries: u64,
    /// Files held (each a run of blocks of one shard).
    pub files: u64,
}

/// A persistent block cache in one directory, for one cluster.
pub struct DiskCache {
    core: Arc<Core>,
    tx: SyncSender<Run>,
}

/// Fetched bytes of blocks `first..` of one shard, to be written as entry files.
struct Run {
    stripe: u64,
    shard: u32,
    first: u64,
    data: Bytes,
}

struct Core {
    root: PathBuf,
    cluster: String,
    /// Hash of `cluster` in file names, so two clusters' blocks never share a file.
    tag: u32,
    index: Mutex<Index>,
    /// Headers already read and verified, so a hit reads only its blocks (one disk read,
    /// not two); each block is still checked against the crc32c its header gave.
    headers: Mutex<lru::LruCache<index::FileId, Arc<entry::Header>>>,
    queued: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    corrupt: AtomicU64,
    writes: AtomicU64,
    dropped: AtomicU64,
    evictions: AtomicU64,
}

impl DiskCache {
    /// Opens (creating it 0700 if needed) the cache at `dir`, bounded by `limit` bytes, for
    /// the cluster named `cluster`: removes temp files a crash left, indexes the entries
    /// there (evicting past the bound) and starts the writer thread. Blocking.
    pub fn open(dir: &Path, limit: u64, cluster: &str) -> Result<DiskCache, DiskCacheError> {
        if limit == 0 {
            return Err(DiskCacheError::Invalid {
                path: dir.into(),
                why: "the size bound is 0".into(),
            });
        }
        if cluster.len() > u16::MAX as usize {
            return Err(DiskCacheError::Invalid {
                path: dir.into(),
                why: "cluster name too long".into(),
            });
        }
        for d in [dir.to_path_buf(), dir.join("blocks"), dir.join("tmp")] {
            make_dir(&d)?;
        }
        let tmp = dir.join("tmp");
        for e in std::fs::read_dir(&tmp).map_err(io_err(&tmp))? {
            let e = e.map_err(io_err(&tmp))?;
            let _ = std::fs::remove_file(e.path());
        }
        let core = Arc::new(Core {
            root: dir.to_path_buf(),
            cluster: cluster.to_string(),
            tag: crc32c::crc32c(cluster.as_bytes()),
            index: Mutex::new(Index::new(limit)),
            headers: Mutex::new(lru::LruCache::new(HEADERS_HELD)),
            queued: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        });
        core.rebuild_index()?;
        let (tx, rx) = sync_channel(QUEUE_RUNS);
        let c = core.clone();
        std::thread::Builder::new()
            .name("kdss-disk-cache".into())
            .spawn(move || c.write_loop(rx))
            .map_err(io_err(dir))?;
        Ok(DiskCache { core, tx })
    }

    /// Whether blocks `[b0, b1)` of the shard are all on disk; counts them as misses when
    /// not, so a caller that gets `false` does no disk access at all.
    pub fn has_run(&self, stripe: u64, shard: u32, b0: u64, b1: u64) -> bool {
        let c = &self.core;
        let ix = c.index.lock().expect("disk cache index");
        let all = (b0..b1).all(|b| ix.contains(&(c.tag, (stripe, shard, b))));
        if !all {
            c.misses.fetch_add(b1 - b0, Ordering::Relaxed);
        }
        all
    }

    /// Blocks `[b0, b1)` of the shard read from disk and verified, as one buffer of
    /// `len` bytes; None (counted as misses) when any is absent, corrupt or short. Blocking.
    pub fn read_run(&self, stripe: u64, shard: u32, b0: u64, b1: u64, len: usize) -> Option<Bytes> {
        let c = &self.core;
        let n = b1 - b0;
        let mut parts = Vec::new();
        let mut b = b0;
        let ok = loop {
            if b == b1 {
                break true;
            }
            let id = (c.tag, (stripe, shard, b));
            let Some(f) = c.index.lock().expect("disk cache index").touch(&id) else {
                break false;
            };
            let ((_, (_, _, first)), count) = f;
            let end = b1.min(first + u64::from(count));
            match c.read_blocks(f, (b - first) as usize, (end - first) as usize) {
                // Every block but the request's last is whole.
                Some(d) if end == b1 || d.len() as u64 == (end - b) * BLOCK_SIZE => parts.push(d),
                _ => break false,
            }
            b = end;
        };
        if !ok || parts.iter().map(Bytes::len).sum::<usize>() != len {
            c.misses.fetch_add(n, Ordering::Relaxed);
            return None;
        }
        c.hits.fetch_add(n, Ordering::Relaxed);
        if parts.len() == 1 {
            return parts.pop();
        }
        let mut out = BytesMut::with_capacity(len);
        for p in parts {
            out.extend_from_slice(&p);
        }
        Some(out.freeze())
    }

    /// Queues the blocks of `data` (blocks `first..` of the shard, as fetched) to be written;
    /// drops them, counted, when the queue holds [`QUEUE_BYTES`] already.
    pub fn offer_run(&self, stripe: u64, shard: u32, first: u64, data: Bytes) {
        let c = &self.core;
        let blocks = (data.len() as u64).div_ceil(BLOCK_SIZE);
        {
            let ix = c.index.lock().expect("disk cache index");
            if (first..first + blocks).all(|b| ix.contains(&(c.tag, (stripe, shard, b)))) {
                return;
            }
        }
        let len = data.len() as u64;
        if c.queued.fetch_add(len, Ordering::AcqRel) + len > QUEUE_BYTES {
            c.queued.fetch_sub(len, Ordering::AcqRel);
            c.dropped.fetch_add(blocks, Ordering::Relaxed);
            return;
        }
        let run = Run {
            stripe,
            shard,
            first,
            data,
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(run) {
            c.queued.fetch_sub(len, Ordering::AcqRel);
            c.dropped.fetch_add(blocks, Ordering::Relaxed);
        }
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> DiskCacheStats {
        let c = &self.core;
        let (bytes, entries, files) = {
            let ix = c.index.lock().expect("disk cache index");
            (ix.bytes(), ix.blocks() as u64, ix.files() as u64)
        };
        DiskCacheStats {
            hits: c.hits.load(Ordering::Relaxed),
            misses: c.misses.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
            writes: c.writes.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            evictions: c.evictions.load(Ordering::Relaxed),
            bytes,
            entries,
            files,
        }
    }

    /// Bytes waiting in the write queue (tests wait for it to drain).
    pub fn queued_bytes(&self) -> u64 {
        self.core.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests;
