//! File data: open handles, per-inode write buffers and read snapshots.
//!
//! Writes are buffered in one `FileWriter` per inode (the kernel may send a write with any
//! handle of the inode, mmap write-back included) and made durable + committed on
//! flush (every `close`), fsync and release: close-to-open consistency. Reads first
//! flush this mount's own pending writes, then read a snapshot taken after the latest
//! open or local change, so a reader sees its own writes and, after open, others' closes.

use super::{Caller, Ksfs, name_str};
use fuser::Errno;
use kdss_client::{FileReader, FileWriter};
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The open files of the mount and the state of each inode they name.
#[derive(Default)]
pub struct OpenFiles {
    handles: Mutex<HashMap<u64, Handle>>,
    inodes: Mutex<HashMap<u64, Arc<InodeData>>>,
    /// Content version the kernel page cache of each inode holds (FOPEN_KEEP_CACHE).
    cached: Mutex<HashMap<u64, u64>>,
    next_fh: AtomicU64,
}

/// One `open()` as the kernel knows it.
struct Handle {
    ino: u64,
}

/// Per-inode state shared by every handle of the inode.
#[derive(Default)]
struct InodeData {
    opens: AtomicUsize,
    dirty: AtomicBool,
    /// End of the highest byte written and not yet flushed.
    dirty_end: AtomicU64,
    dirty_mtime_ns: AtomicI64,
    /// When this mount created the inode (None once it changed an xattr of it): the kernel
    /// asks for `security.capability` before every write, and a file just created here
    /// has none.
    created_at: Mutex<Option<std::time::Instant>>,
    /// Bumped whenever a local change drops the read snapshot: an open that fetched a
    /// snapshot installs it only if nothing changed here while it was on the way.
    changes: AtomicU64,
    /// The open registered at the master, once this mount unlinks or replaces the inode
    /// while it is open here (keeps the unlinked inode alive until the last release).
    pinned: Mutex<Option<u64>>,
    io: tokio::sync::Mutex<InodeIo>,
}

#[derive(Default)]
struct InodeIo {
    writer: Option<FileWriter>,
    reader: Option<Arc<FileReader>>,
}

/// Page-cache entries remembered before the table is cleared (bounded memory).
const MAX_CACHED: usize = 100_000;

/// Beyond this a punch/zero range is refused rather than written as zeros.
const MAX_ZERO_FILL: u64 = 256 << 20;

impl OpenFiles {
    /// Applies this mount's unflushed writes (size, mtime) to attributes from the master.
    pub fn overlay(&self, a: &mut pb::Attr) {
        let d = self
            .inodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&a.ino)
            .cloned();
        if let Some(d) = d
            && d.dirty.load(Ordering::Acquire)
        {
            a.size = a.size.max(d.dirty_end.load(Ordering::Acquire));
            let m = d.dirty_mtime_ns.load(Ordering::Acquire);
            a.mtime_ns = a.mtime_ns.max(m);
            a.ctime_ns = a.ctime_ns.max(m);
        }
    }

    fn inode(&self, ino: u64) -> Arc<InodeData> {
        self.inodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(ino)
            .or_default()
            .clone()
    }

    fn add_handle(&self, ino: u64) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let mut inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
            inodes
                .entry(ino)
                .or_default()
                .opens
                .fetch_add(1, Ordering::AcqRel);
        }
        self.handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(fh, Handle { ino });
        fh
    }

    fn remove_handle(&self, fh: u64) -> Option<Handle> {
        let h = self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&fh)?;
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = inodes.get(&h.ino) {
            d.opens.fetch_sub(1, Ordering::AcqRel);
        }
        Some(h)
    }

    /// Drops the inode's state once nothing holds it open and nothing is unflushed.
    fn forget_if_idle(&self, ino: u64) {
        let mut inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = inodes.get(&ino)
            && d.opens.load(Ordering::Acquire) == 0
            && !d.dirty.load(Ordering::Acquire)
            && Arc::strong_count(d) == 1
        {
            inodes.remove(&ino);
        }
    }

    fn is_open(&self, ino: u64) -> bool {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        inodes
            .get(&ino)
            .is_some_and(|d| d.opens.load(Ordering::Acquire) > 0)
    }

    /// Records the content version the page cache holds; true if it was already that.
    fn cache_version(&self, ino: u64, version: u64) -> bool {
        let mut c = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= MAX_CACHED {
            c.clear();
        }
        c.insert(ino, version) == Some(version)
    }

    /// Master handles still open (released at unmount).
    pub fn open_master_handles(&self) -> Vec<u64> {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        inodes
            .values()
            .filter_map(|d| *d.pinned.lock().unwrap_or_else(|e| e.into_inner()))
            .collect()
    }

    /// Whether this mount created `ino` less than `ttl` ago and changed none of its xattrs
    /// since (it still has none: `security.capability` needs no master call).
    pub fn created_without_xattrs(&self, ino: u64, ttl: std::time::Duration) -> bool {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        inodes.get(&ino).is_some_and(|d| {
            d.created_at
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some_and(|t| t.elapsed() < ttl)
        })
    }

    /// This mount sets or removes an xattr of `ino`.
    pub fn xattrs_changed(&self, ino: u64) {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = inodes.get(&ino) {
            *d.created_at.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Whether any file is open on this mount (only then can a name removal orphan one).
    pub fn any_open(&self) -> bool {
        !self
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    fn take_pin_if_closed(&self, ino: u64) -> Option<u64> {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        let d = inodes.get(&ino)?;
        if d.opens.load(Ordering::Acquire) > 0 {
            return None;
        }
        d.pinned.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Inodes with unflushed writes (flushed at unmount).
    pub fn dirty_inodes(&self) -> Vec<u64> {
        let inodes = self.inodes.lock().unwrap_or_else(|e| e.into_inner());
        inodes
            .iter()
            .filter(|(_, d)| d.dirty.load(Ordering::Acquire))
            .map(|(i, _)| *i)
            .collect()
    }
}

/// Forgets the inode's read snapshot after a local change (the next read takes a new one).
fn drop_snapshot(d: &InodeData, io: &mut InodeIo) {
    d.changes.fetch_add(1, Ordering::AcqRel);
    io.reader = None;
}

/// A read snapshot fetched by an open, with the inode's change count before it was asked for.
struct Snapshot {
    reader: FileReader,
    changes_seen: u64,
}

/// What `open` tells the kernel.
pub struct Opened {
    /// Our handle.
    pub fh: u64,
    /// The page cache still holds this content version: keep it.
    pub keep_cache: bool,
    /// Attributes at open.
    pub attr: pb::Attr,
}

impl Ksfs {
    /// Opens a file: attributes from the master decide whether the kernel may keep its
    /// cached pages (close-to-open). Nothing is registered at the master until this mount
    /// removes a name of the open inode (`pin_if_open`), so open/close cost no Raft commit.
    /// An open for reading whose atime is due drops the cached pages (`crate::atime`).
    ///
    /// An open for reading asks for attributes and the read snapshot (extents, inline
    /// bytes) in one master call, so reading a small file costs one round trip, not two.
    pub async fn open(&self, ino: u64, read: bool) -> Result<Opened, Errno> {
        let r = self.open_inode(ino, read).await;
        if r.as_ref().err() == Some(&Errno::ESTALE) {
            // The kernel looks the name up again: the master must answer, not a page
            // fetched while the name still led here.
            self.names.mark(ino);
        }
        r
    }

    async fn open_inode(&self, ino: u64, read: bool) -> Result<Opened, Errno> {
        let (attr, snapshot) = if read {
            // Held across the call: the inode state (and its change count) stays put.
            let d = self.files.inode(ino);
            let changes_seen = d.changes.load(Ordering::Acquire);
            let (mut attr, reader) = self
                .call(self.client.open_with_attr(&self.bucket, ino))
                .await
                .map_err(stale_if_gone)?;
            drop(d);
            self.overlay(&mut attr);
            let s = Snapshot {
                reader,
                changes_seen,
            };
            (attr, Some(s))
        } else {
            (self.getattr(ino).await.map_err(stale_if_gone)?, None)
        };
        if attr.nlink == 0 && !self.files.is_open(ino) {
            // Unlinked by another mount, alive only for the opens that pinned it; a new
            // open reached it through a name the kernel still caches.
            return Err(Errno::ESTALE);
        }
        let atime_due = read && self.atime_due_at_open(&attr);
        let mut o = self.opened(ino, attr, snapshot).await?;
        o.keep_cache &= !atime_due;
        Ok(o)
    }

    async fn opened(
        &self,
        ino: u64,
        mut attr: pb::Attr,
        snapshot: Option<Snapshot>,
    ) -> Result<Opened, Errno> {
        let fh = self.files.add_handle(ino);
        let keep_cache = self.files.cache_version(ino, attr.version);
        let d = self.files.inode(ino);
        let mut io = d.io.lock().await;
        match snapshot {
            // Taken at this open and nothing changed here since: the first read uses it.
            Some(s)
                if d.changes.load(Ordering::Acquire) == s.changes_seen
                    && !d.dirty.load(Ordering::Acquire) =>
            {
                io.reader = Some(Arc::new(s.reader));
            }
            // Someone else changed the file: read a fresh snapshot.
            _ if !keep_cache => io.reader = None,
            _ => {}
        }
        drop(io);
        drop(d);
        self.overlay(&mut attr);
        Ok(Opened {
            fh,
            keep_cache,
            attr,
        })
    }

    /// Before this mount unlinks or replaces the inode named `name` in `parent`: if it is
    /// open here, register the open at the master so the inode outlives its last name
    /// until the last release (open-then-unlinked files).
    pub async fn pin_if_open(&self, parent: u64, name: &std::ffi::OsStr) -> Result<(), Errno> {
        if !self.files.any_open() {
            return Ok(());
        }
        // The master's own answer: a name another mount replaced is not pinned by mistake.
        let ino = match self.lookup_at_master(parent, name_str(name)?).await {
            Ok(a) => a.ino,
            Err(e) if e == Errno::ENOENT => return Ok(()),
            Err(e) => return Err(e),
        };
        if !self.files.is_open(ino) {
            return Ok(());
        }
        let d = self.files.inode(ino);
        if d.pinned.lock().unwrap_or_else(|e| e.into_inner()).is_some() {
            return Ok(());
        }
        let req = pb::OpenRequest {
            bucket: self.bucket.clone(),
            ino,
            session: self.session.clone(),
            write: true,
        };
        let reply = self.call(self.client.master().open(req)).await?;
        let old = d
            .pinned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(reply.handle);
        if let Some(old) = old {
            self.release_master(old).await;
        }
        Ok(())
    }

    /// Creates a regular file and opens it.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
        exclusive: bool,
        write: bool,
    ) -> Result<Opened, Errno> {
        let attr = self
            .mknod(
                parent,
                name,
                pb::FileKind::Regular,
                mode,
                uid,
                gid,
                0,
                exclusive,
            )
            .await?;
        let _ = write;
        let ino = attr.ino;
        let o = self.opened(ino, attr, None).await?;
        *self
            .files
            .inode(ino)
            .created_at
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
        Ok(o)
    }

    /// Reads `size` bytes at `offset` (short at end of file; holes are zeros).
    pub async fn read(&self, ino: u64, offset: u64, size: u32) -> Result<bytes::Bytes, Errno> {
        let d = self.files.inode(ino);
        let reader = {
            let mut io = d.io.lock().await;
            self.flush_locked(ino, &d, &mut io).await?;
            match &io.reader {
                Some(r) => r.clone(),
                None => {
                    let r = Arc::new(
                        self.data(self.client.open_reader(&self.bucket, ino))
                            .await?,
                    );
                    io.reader = Some(r.clone());
                    r
                }
            }
        };
        drop(d);
        let out = self.data(reader.read_at(offset, size as u64)).await;
        if let Ok(b) = &out {
            self.metrics.read(b.len());
            self.touch_atime(ino).await;
        }
        self.files.forget_if_idle(ino);
        out
    }

    /// Buffers a write; it becomes durable at the next flush, fsync or release.
    pub async fn write(&self, ino: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        let d = self.files.inode(ino);
        let mut io = d.io.lock().await;
        let w = io
            .writer
            .get_or_insert_with(|| self.client.file_writer(&self.bucket, ino));
        let written = self.data(w.write_at(offset, data)).await;
        if written.is_err() {
            // A full window may have been committed before the failure, and the inode is
            // not marked dirty, so no flush will mark it. A write that succeeds leaves it
            // dirty: its attributes are overlaid until the flush, which marks it.
            self.names.mark(ino);
        }
        written?;
        self.metrics.written(data.len());
        d.dirty_end.fetch_max(end, Ordering::AcqRel);
        d.dirty_mtime_ns
            .store(kdss_common::time::now_ns(), Ordering::Release);
        d.dirty.store(true, Ordering::Release);
        drop_snapshot(&d, &mut io);
        if !self.files.is_open(ino) {
            // A late write-back after the last release: nothing will flush it later.
            self.flush_locked(ino, &d, &mut io).await?;
            drop(io);
            drop(d);
            self.files.forget_if_idle(ino);
        }
        Ok(data.len() as u32)
    }

    async fn flush_locked(&self, ino: u64, d: &InodeData, io: &mut InodeIo) -> Result<(), Errno> {
        if !d.dirty.load(Ordering::Acquire) {
            return Ok(());
        }
        let Some(w) = io.writer.as_mut() else {
            d.dirty.store(false, Ordering::Release);
            drop_snapshot(d, io);
            return Ok(());
        };
        let flushed = self.data(w.flush()).await;
        self.names.mark(ino);
        let attr = flushed?;
        d.dirty.store(false, Ordering::Release);
        d.dirty_end.store(0, Ordering::Release);
        drop_snapshot(d, io);
        // The page cache already holds what we wrote.
        self.files.cache_version(ino, attr.version);
        Ok(())
    }

    /// Makes this mount's writes to `ino` durable and committed.
    pub async fn flush(&self, ino: u64) -> Result<(), Errno> {
        let d = self.files.inode(ino);
        let mut io = d.io.lock().await;
        let r = self.flush_locked(ino, &d, &mut io).await;
        drop(io);
        drop(d);
        self.files.forget_if_idle(ino);
        r
    }

    /// Flushes, then drops the handle here and at the master.
    pub async fn release(&self, fh: u64) -> Result<(), Errno> {
        let Some(h) = self.files.remove_handle(fh) else {
            return Ok(());
        };
        let flushed = self.flush(h.ino).await;
        if let Err(e) = &flushed {
            tracing::warn!(ino = h.ino, error = ?e, "flush at release failed");
        }
        if let Some(pin) = self.files.take_pin_if_closed(h.ino) {
            self.release_master(pin).await;
        }
        self.files.forget_if_idle(h.ino);
        flushed
    }

    /// Tells the master an open handle is closed (failures only logged: the session
    /// expiry cleans up after a mount that cannot reach it).
    pub async fn release_master(&self, handle: u64) {
        let req = pb::ReleaseRequest {
            bucket: self.bucket.clone(),
            handle,
            session: self.session.clone(),
        };
        let r = self.call(self.client.master().release(req)).await;
        if let Err(e) = r {
            tracing::warn!(handle, error = ?e, "release at the master failed");
        }
    }

    /// SetAttr after flushing pending writes, so a later flush cannot undo a truncate or
    /// an explicit mtime (`cp -p`, `tar x` write, then set times, then close).
    pub async fn setattr(&self, req: pb::SetAttrRequest) -> Result<pb::Attr, Errno> {
        let ino = req.ino;
        let d = self.files.inode(ino);
        let mut io = d.io.lock().await;
        self.flush_locked(ino, &d, &mut io).await?;
        let resized = req.size.is_some();
        let r = self.set_attr_raw(req).await;
        if resized {
            drop_snapshot(&d, &mut io);
            if let Ok(a) = &r {
                self.files.cache_version(ino, a.version);
            }
        }
        drop(io);
        drop(d);
        self.files.forget_if_idle(ino);
        r
    }

    /// fallocate: plain allocation extends the size (holes read as zeros, space is
    /// taken when written; ENOSPC past the cluster's free space); punch-hole and
    /// zero-range write zeros over the range.
    pub async fn fallocate(
        &self,
        ino: u64,
        offset: u64,
        len: u64,
        mode: i32,
        caller: Caller,
    ) -> Result<(), Errno> {
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let keep_size = mode & libc::FALLOC_FL_KEEP_SIZE != 0;
        let zeroing = mode & (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE) != 0;
        let known =
            libc::FALLOC_FL_KEEP_SIZE | libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        if mode & !known != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let a = self.getattr(ino).await?;
        let size = a.size;
        self.drop_setid_bits(&a, caller).await?;
        if zeroing {
            let zero_end = if keep_size { end.min(size) } else { end };
            if zero_end > offset {
                if zero_end - offset > MAX_ZERO_FILL {
                    return Err(Errno::EOPNOTSUPP);
                }
                let zeros = vec![0u8; (1 << 20).min(zero_end - offset) as usize];
                let mut at = offset;
                while at < zero_end {
                    let n = (zero_end - at).min(zeros.len() as u64) as usize;
                    self.write(ino, at, &zeros[..n]).await?;
                    at += n as u64;
                }
            }
            // Buffered like any write (a read flushes first; close and fsync make it
            // durable): a punch per 4 KiB block must not cost a stripe each.
            return Ok(());
        }
        // No space is reserved, but growing a file past what the cluster has free fails
        // as on a local filesystem (xfstests generic/213). Only the part past EOF counts
        // (ksfs allocates nothing for holes), so a call inside the file costs no statfs.
        let grows_by = end.saturating_sub(offset.max(size));
        if grows_by > 0 {
            let st = self.statfs().await?;
            if grows_by > st.blocks_avail.saturating_mul(st.block_size.max(1)) {
                return Err(Errno::ENOSPC);
            }
        }
        if !keep_size && end > size {
            let req = pb::SetAttrRequest {
                bucket: self.bucket.clone(),
                ino,
                size: Some(end),
                ..Default::default()
            };
            self.setattr(req).await?;
        }
        Ok(())
    }

    /// Flushes every inode with pending writes (unmount).
    pub async fn flush_all(&self) {
        for ino in self.files.dirty_inodes() {
            if let Err(e) = self.flush(ino).await {
                tracing::error!(ino, error = ?e, "could not flush at unmount");
            }
        }
    }

    /// Keeps this mount's open-file session alive at the master until the task is dropped.
    pub async fn keep_alive(&self, ttl: std::time::Duration) {
        let every = ttl / 3;
        loop {
            let req = pb::KeepAliveRequest {
                session: self.session.clone(),
                ttl_ms: ttl.as_millis() as u64,
            };
            let r = self.call(self.client.master().keep_alive(req)).await;
            if let Err(e) = r {
                tracing::warn!(error = ?e, "session keep-alive failed");
            }
            tokio::time::sleep(every).await;
        }
    }
}

/// A new open of an inode that no longer exists came through a name the kernel cached
/// (`entry_ttl`) after another mount removed or replaced it. ESTALE makes the kernel look
/// the name up again (`LOOKUP_REVAL`) and open what it names now, so a file replaced by a
/// rename elsewhere is seen at the next open here: close-to-open across mounts with the
/// default entry cache, not only with `entry_ttl = 0`.
fn stale_if_gone(e: Errno) -> Errno {
    if e == Errno::ENOENT { Errno::ESTALE } else { e }
}
