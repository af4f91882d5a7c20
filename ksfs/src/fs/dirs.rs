//! Open directories, and directories removed while open here.
//!
//! The master frees a directory as soon as `rmdir` or a `rename` over it removes it (it
//! keeps unlinked inodes only for open *files*). POSIX still lets a process that holds the
//! directory open `fstat` it (nlink 0, xfstests generic/035) and read it (no entries). So
//! this mount counts its open directories (opendir/releasedir) and, when it removes one
//! that is open, keeps its last attributes until the last release: `getattr` answers from
//! them and `readdir` lists only "." and "..".

use super::Ksfs;
use fuser::Errno;
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::Mutex;

/// Directories open on this mount (by master inode).
#[derive(Default)]
pub struct OpenDirs {
    dirs: Mutex<HashMap<u64, DirState>>,
}

#[derive(Default)]
struct DirState {
    opens: usize,
    /// Attributes at removal (nlink 0), once this mount removed the open directory.
    removed: Option<pb::Attr>,
}

impl OpenDirs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, DirState>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more open handle of `ino`.
    pub fn open(&self, ino: u64) {
        self.lock().entry(ino).or_default().opens += 1;
    }

    /// One handle of `ino` closed; the last one forgets it (and its removed attributes).
    pub fn release(&self, ino: u64) {
        let mut dirs = self.lock();
        if let Some(d) = dirs.get_mut(&ino) {
            d.opens = d.opens.saturating_sub(1);
            if d.opens == 0 {
                dirs.remove(&ino);
            }
        }
    }

    /// Whether any directory is open (only then can a removal orphan one).
    pub fn any_open(&self) -> bool {
        !self.lock().is_empty()
    }

    fn is_open(&self, ino: u64) -> bool {
        self.lock().get(&ino).is_some_and(|d| d.opens > 0)
    }

    /// Remembers `attr` (as removed: nlink 0, ctime `now_ns`) while the directory is open.
    fn mark_removed(&self, mut attr: pb::Attr, now_ns: i64) {
        attr.nlink = 0;
        attr.ctime_ns = attr.ctime_ns.max(now_ns);
        if let Some(d) = self.lock().get_mut(&attr.ino) {
            d.removed = Some(attr);
        }
    }

    /// The attributes of `ino` if it is an open directory this mount removed.
    pub fn removed(&self, ino: u64) -> Option<pb::Attr> {
        self.lock().get(&ino).and_then(|d| d.removed)
    }
}

/// A directory that is about to be removed while open here (see the module doc).
pub struct RemovedDir(Option<pb::Attr>);

impl Ksfs {
    /// Before `rmdir` or a rename over `parent/name`: the directory's attributes if it is
    /// open on this mount (one lookup, and only when some directory is open).
    pub async fn open_dir_at(&self, parent: u64, name: &std::ffi::OsStr) -> RemovedDir {
        if !self.dirs.any_open() {
            return RemovedDir(None);
        }
        match self.lookup(parent, name).await {
            Ok(a) if a.kind == pb::FileKind::Directory as i32 && self.dirs.is_open(a.ino) => {
                RemovedDir(Some(a))
            }
            _ => RemovedDir(None),
        }
    }

    /// After the removal succeeded: keep the directory's attributes while it is open.
    pub fn removed_dir(&self, r: RemovedDir) {
        if let RemovedDir(Some(a)) = r {
            self.dirs.mark_removed(a, kdss_common::time::now_ns());
        }
    }

    /// `getattr`'s answer for an inode the master no longer has: the kept attributes of an
    /// open directory this mount removed, else ENOENT.
    pub fn removed_dir_attr(&self, ino: u64, e: Errno) -> Result<pb::Attr, Errno> {
        match self.dirs.removed(ino) {
            Some(a) if e == Errno::ENOENT => Ok(a),
            _ => Err(e),
        }
    }
}
