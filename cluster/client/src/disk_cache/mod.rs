//! The disk tier of the read cache (ksfs `[mount] cache_dir`): shard blocks kept as files
//! under a local directory, so a remount, or a read after the memory cache let a block go,
//! finds it without asking a storage node. Stripes never change once committed, so a block
//! is never stale by content; what keeps it from being served to the wrong reader is the
//! header of each entry (cluster name, block key, length, crc32c of the data), checked on
//! every read: anything that does not match is a miss, is deleted and is counted.
//!
//! Reads are synchronous file reads (the caller runs them on a blocking thread); writes go
//! through a small queue to one writer thread, off the read's path, and are dropped when the
//! queue is full. Each write goes to `tmp/` and is renamed into `blocks/`, so a crash leaves
//! whole entries and temp files, which the next start removes. Entries are not fsynced: one
//! whose data did not reach the disk before a power loss fails its checksum later.

mod entry;
mod index;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

use crate::cache::BLOCK_SIZE;
use index::{EntryId, Index, on_disk};

/// Bytes of fetched data the write queue may hold; past it new writes are dropped.
const QUEUE_BYTES: u64 = 8 << 20;
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
    /// Entries found torn, corrupt, unreadable or of another cluster (deleted).
    pub corrupt: u64,
    /// Entries written.
    pub writes: u64,
    /// Blocks not written because the write queue was full (or a write failed).
    pub dropped: u64,
    /// Entries deleted to stay within the size bound.
    pub evictions: u64,
    /// Bytes on disk of the entries held.
    pub bytes: u64,
    /// Entries held.
    pub entries: u64,
}

/// A persistent block cache in one directory, for one cluster.
pub struct DiskCache {
    core: Arc<Core>,
    tx: SyncSender<Run>,
}

/// Fetched bytes of blocks `first..` of one shard, to be written as entries.
struct Run {
    stripe: u64,
    shard: u32,
    first: u64,
    data: Bytes,
}

struct Core {
    root: PathBuf,
    cluster: String,
    /// Hash of `cluster` in entry names, so two clusters' entries never share a file.
    tag: u32,
    index: Mutex<Index>,
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
        let mut out = BytesMut::with_capacity(len);
        for b in b0..b1 {
            let id = (c.tag, (stripe, shard, b));
            if !c.index.lock().expect("disk cache index").touch(&id) {
                c.misses.fetch_add(n, Ordering::Relaxed);
                return None;
            }
            match c.read_entry(id) {
                Some(d) if b + 1 == b1 || d.len() as u64 == BLOCK_SIZE => out.extend_from_slice(&d),
                _ => {
                    c.misses.fetch_add(n, Ordering::Relaxed);
                    return None;
                }
            }
        }
        if out.len() != len {
            c.misses.fetch_add(n, Ordering::Relaxed);
            return None;
        }
        c.hits.fetch_add(n, Ordering::Relaxed);
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
        let (bytes, entries) = {
            let ix = c.index.lock().expect("disk cache index");
            (ix.bytes(), ix.len() as u64)
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
        }
    }

    /// Bytes waiting in the write queue (tests wait for it to drain).
    pub fn queued_bytes(&self) -> u64 {
        self.core.queued.load(Ordering::Acquire)
    }
}

/// Creates `d` with mode 0700 unless it exists (as a directory).
fn make_dir(d: &Path) -> Result<(), DiskCacheError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => Ok(()),
        Err(e) => Err(io_err(d)(e)),
    }
}

/// The entry file name of `id`: `<cluster tag>-<stripe>-<shard>-<block>.blk`, in hex.
fn entry_name(id: EntryId) -> String {
    let (tag, (s, sh, b)) = id;
    format!("{tag:08x}-{s:x}-{sh:x}-{b:x}.blk")
}

/// The id an entry file name stands for.
fn parse_name(name: &str) -> Option<EntryId> {
    let mut it = name.strip_suffix(".blk")?.split('-');
    let tag = u32::from_str_radix(it.next()?, 16).ok()?;
    let s = u64::from_str_radix(it.next()?, 16).ok()?;
    let sh = u32::from_str_radix(it.next()?, 16).ok()?;
    let b = u64::from_str_radix(it.next()?, 16).ok()?;
    it.next().is_none().then_some((tag, (s, sh, b)))
}

impl Core {
    /// `blocks/<xx>/<name>`: 256 subdirectories keep directories small.
    fn path(&self, id: EntryId) -> PathBuf {
        let (_, (s, sh, b)) = id;
        let sub = (s.wrapping_mul(0x9e37_79b9) ^ b ^ u64::from(sh)) & 0xff;
        self.root
            .join("blocks")
            .join(format!("{sub:02x}"))
            .join(entry_name(id))
    }

    /// Indexes the entries on disk, oldest written first (least recently used).
    fn rebuild_index(&self) -> Result<(), DiskCacheError> {
        let blocks = self.root.join("blocks");
        let mut found = Vec::new();
        for sub in std::fs::read_dir(&blocks).map_err(io_err(&blocks))? {
            let sub = sub.map_err(io_err(&blocks))?.path();
            let Ok(files) = std::fs::read_dir(&sub) else {
                // Not a subdirectory: blocks/ holds entries only.
                let _ = std::fs::remove_file(&sub);
                continue;
            };
            for f in files.flatten() {
                let path = f.path();
                let id = f.file_name().to_str().and_then(parse_name);
                match (id, f.metadata()) {
                    (Some(id), Ok(m)) if m.is_file() && self.path(id) == path => {
                        let when = m.modified().unwrap_or(std::time::UNIX_EPOCH);
                        found.push((when, id, on_disk(m.len())));
                    }
                    // Not ours, or misplaced: blocks/ holds entries only.
                    _ => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
            }
        }
        found.sort_unstable();
        let mut ix = self.index.lock().expect("disk cache index");
        for (_, id, size) in found {
            for gone in ix.insert(id, size) {
                self.evictions.fetch_add(1, Ordering::Relaxed);
                let _ = std::fs::remove_file(self.path(gone));
            }
        }
        Ok(())
    }

    /// Reads and verifies one entry; a bad one is deleted, forgotten and counted.
    fn read_entry(&self, id: EntryId) -> Option<Bytes> {
        let path = self.path(id);
        let why = match std::fs::read(&path) {
            Ok(buf) => match entry::decode(Bytes::from(buf), &self.cluster, id.1) {
                Ok(d) => return Some(d),
                Err(e) => e.to_string(),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Evicted between the index lookup and the read.
                self.index.lock().expect("disk cache index").remove(&id);
                return None;
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(path = %path.display(), %why, "disk cache entry dropped");
        self.corrupt.fetch_add(1, Ordering::Relaxed);
        let _ = std::fs::remove_file(&path);
        self.index.lock().expect("disk cache index").remove(&id);
        None
    }

    /// The writer thread: entries from the queue until the cache is dropped.
    fn write_loop(&self, rx: Receiver<Run>) {
        let mut seq = 0u64;
        while let Ok(run) = rx.recv() {
            let len = run.data.len() as u64;
            for (i, chunk) in run.data.chunks(BLOCK_SIZE as usize).enumerate() {
                let id = (self.tag, (run.stripe, run.shard, run.first + i as u64));
                if self.index.lock().expect("disk cache index").contains(&id) {
                    continue;
                }
                seq += 1;
                match self.write_entry(id, chunk, seq) {
                    Ok(()) => {
                        self.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "disk cache write failed");
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
    }

    /// Writes one entry to `tmp/`, renames it into place, indexes it and evicts past the
    /// bound.
    fn write_entry(&self, id: EntryId, data: &[u8], seq: u64) -> std::io::Result<()> {
        let bytes = entry::encode(&self.cluster, id.1, data);
        let tmp = self.root.join("tmp").join(format!("{seq}.tmp"));
        std::fs::write(&tmp, &bytes)?;
        let path = self.path(id);
        let placed = std::fs::rename(&tmp, &path).or_else(|_| {
            if let Some(parent) = path.parent() {
                make_dir(parent).map_err(|e| std::io::Error::other(e.to_string()))?;
            }
            std::fs::rename(&tmp, &path)
        });
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let evicted = self
            .index
            .lock()
            .expect("disk cache index")
            .insert(id, on_disk(bytes.len() as u64));
        for gone in evicted {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            let _ = std::fs::remove_file(self.path(gone));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
