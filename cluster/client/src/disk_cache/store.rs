//! The cache's files: their names and places, the index rebuilt from them at open, reading
//! and verifying blocks out of them, and the writer thread that makes them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use bytes::Bytes;

use super::entry::{Header, MAX_BLOCKS};
use super::index::{FileId, on_disk};
use super::{Core, DiskCacheError, Run, io_err};
use crate::cache::BLOCK_SIZE;

const BS: usize = BLOCK_SIZE as usize;

/// Creates `d` with mode 0700 unless it exists (as a directory).
pub(super) fn make_dir(d: &Path) -> Result<(), DiskCacheError> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => Ok(()),
        Err(e) => Err(io_err(d)(e)),
    }
}

/// The file name of `f`: `<cluster tag>-<stripe>-<shard>-<first block>-<count>.run`, in hex.
fn file_name(f: FileId) -> String {
    let ((tag, (s, sh, b)), n) = f;
    format!("{tag:08x}-{s:x}-{sh:x}-{b:x}-{n:x}.run")
}

/// The file a name stands for; None for anything else (a format-1 `.blk` entry included).
fn parse_name(name: &str) -> Option<FileId> {
    let mut it = name.strip_suffix(".run")?.split('-');
    let tag = u32::from_str_radix(it.next()?, 16).ok()?;
    let s = u64::from_str_radix(it.next()?, 16).ok()?;
    let sh = u32::from_str_radix(it.next()?, 16).ok()?;
    let b = u64::from_str_radix(it.next()?, 16).ok()?;
    let n = u32::from_str_radix(it.next()?, 16).ok()?;
    let fits = (1..=MAX_BLOCKS as u32).contains(&n) && b.checked_add(u64::from(n)).is_some();
    (it.next().is_none() && fits).then_some(((tag, (s, sh, b)), n))
}

/// Up to `len` bytes of `file` from `off`: fewer only at the end of the file.
fn read_upto(file: &File, off: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match file.read_at(&mut buf[got..], off + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

impl Core {
    /// `blocks/<xx>/<name>`: 256 subdirectories keep directories small.
    pub(super) fn path(&self, f: FileId) -> PathBuf {
        let ((_, (s, sh, b)), _) = f;
        let sub = (s.wrapping_mul(0x9e37_79b9) ^ b ^ u64::from(sh)) & 0xff;
        self.root
            .join("blocks")
            .join(format!("{sub:02x}"))
            .join(file_name(f))
    }

    /// Indexes the files on disk, oldest written first (least recently used); deletes
    /// anything else under `blocks/`.
    pub(super) fn rebuild_index(&self) -> Result<(), DiskCacheError> {
        let blocks = self.root.join("blocks");
        let mut found = Vec::new();
        for sub in std::fs::read_dir(&blocks).map_err(io_err(&blocks))? {
            let sub = sub.map_err(io_err(&blocks))?.path();
            let Ok(files) = std::fs::read_dir(&sub) else {
                // Not a subdirectory: blocks/ holds entry files only.
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
                    // Not ours, misplaced, or of format 1: blocks/ holds entry files only.
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

    /// Blocks `[i0, i1)` of file `f`, read and verified, as one buffer. A bad header
    /// deletes and forgets the file; a torn or corrupt block forgets that block. Counted.
    pub(super) fn read_blocks(&self, f: FileId, i0: usize, i1: usize) -> Option<Bytes> {
        let path = self.path(f);
        let ((tag, key), count) = f;
        let bad_file = |why: String| {
            tracing::warn!(path = %path.display(), %why, "disk cache file dropped");
            self.headers.lock().expect("disk cache headers").pop(&f);
            let lost = self.index.lock().expect("disk cache index").remove(&f);
            self.corrupt
                .fetch_add(lost.max(1) as u64, Ordering::Relaxed);
            let _ = std::fs::remove_file(&path);
            None
        };
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Evicted between the index lookup and the open.
                self.index.lock().expect("disk cache index").remove(&f);
                self.headers.lock().expect("disk cache headers").pop(&f);
                return None;
            }
            Err(e) => return bad_file(e.to_string()),
        };
        let known = self
            .headers
            .lock()
            .expect("disk cache headers")
            .get(&f)
            .cloned();
        let header = match known {
            Some(h) => h,
            None => {
                let head = Header::read_len(&self.cluster, count as usize);
                let h = match read_upto(&file, 0, head) {
                    Ok(buf) => match Header::decode(&buf, &self.cluster, key, count as usize) {
                        Ok(h) => Arc::new(h),
                        Err(e) => return bad_file(e.to_string()),
                    },
                    Err(e) => return bad_file(e.to_string()),
                };
                let mut held = self.headers.lock().expect("disk cache headers");
                held.put(f, h.clone());
                h
            }
        };
        let from = header.block_range(i0).start;
        let to = header.block_range(i1 - 1).end;
        let data = match read_upto(&file, from as u64, to - from) {
            Ok(d) => Bytes::from(d),
            Err(e) => return bad_file(e.to_string()),
        };
        for i in i0..i1 {
            if let Err(e) = header.block(i, &data, from) {
                tracing::warn!(path = %path.display(), why = %e, "disk cache block dropped");
                let (s, sh, first) = key;
                let id = (tag, (s, sh, first + i as u64));
                self.index
                    .lock()
                    .expect("disk cache index")
                    .forget_block(&id);
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                return None;
            }
        }
        Some(data)
    }

    /// The writer thread: files from the queue until the cache is dropped. Each run is
    /// written as files of up to [`MAX_BLOCKS`] of the blocks not held yet.
    pub(super) fn write_loop(&self, rx: Receiver<Run>) {
        let mut seq = 0u64;
        while let Ok(run) = rx.recv() {
            let len = run.data.len();
            let blocks = len.div_ceil(BS);
            let held = |i: usize| {
                let id = (self.tag, (run.stripe, run.shard, run.first + i as u64));
                self.index.lock().expect("disk cache index").contains(&id)
            };
            let mut i = 0;
            while i < blocks {
                if held(i) {
                    i += 1;
                    continue;
                }
                let mut j = i + 1;
                while j < blocks && j - i < MAX_BLOCKS && !held(j) {
                    j += 1;
                }
                let f = (
                    (self.tag, (run.stripe, run.shard, run.first + i as u64)),
                    (j - i) as u32,
                );
                seq += 1;
                let data = &run.data[i * BS..(j * BS).min(len)];
                match self.write_file(f, data, seq) {
                    Ok(()) => self.writes.fetch_add((j - i) as u64, Ordering::Relaxed),
                    Err(e) => {
                        tracing::debug!(error = %e, "disk cache write failed");
                        self.dropped.fetch_add((j - i) as u64, Ordering::Relaxed)
                    }
                };
                i = j;
            }
            self.queued.fetch_sub(len as u64, Ordering::AcqRel);
        }
    }

    /// Writes file `f` holding `data` to `tmp/`, renames it into place, indexes it and
    /// evicts past the bound.
    fn write_file(&self, f: FileId, data: &[u8], seq: u64) -> std::io::Result<()> {
        let tmp = self.root.join("tmp").join(format!("{seq}.tmp"));
        let written = (|| {
            let file = File::create(&tmp)?;
            let start = Header::read_len(&self.cluster, f.1 as usize);
            // Each block's crc32c just before its write, while its bytes are in cache; the
            // header goes last, in front.
            let mut crcs = Vec::with_capacity(f.1 as usize);
            for (i, block) in data.chunks(BS).enumerate() {
                crcs.push(crc32c::crc32c(block));
                file.write_all_at(block, (start + i * BS) as u64)?;
            }
            let mut h = Header::new(crcs, data.len());
            file.write_all_at(&h.encode(&self.cluster, f.0.1), 0)?;
            debug_assert_eq!(h.data_start, start);
            Ok::<u64, std::io::Error>((start + data.len()) as u64)
        })();
        let path = self.path(f);
        let placed = written.and_then(|size| {
            std::fs::rename(&tmp, &path)
                .or_else(|_| {
                    if let Some(parent) = path.parent() {
                        make_dir(parent).map_err(|e| std::io::Error::other(e.to_string()))?;
                    }
                    std::fs::rename(&tmp, &path)
                })
                .map(|()| size)
        });
        let size = match placed {
            Ok(size) => size,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let evicted = self
            .index
            .lock()
            .expect("disk cache index")
            .insert(f, on_disk(size));
        {
            let mut held = self.headers.lock().expect("disk cache headers");
            for g in std::iter::once(&f).chain(&evicted) {
                held.pop(g);
            }
        }
        // Files deleted with no lock held: readers look headers up meanwhile.
        for gone in evicted {
            self.evictions.fetch_add(1, Ordering::Relaxed);
            let _ = std::fs::remove_file(self.path(gone));
        }
        Ok(())
    }
}
