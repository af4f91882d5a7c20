//! The parent of each directory this mount has seen, for lookups of "..": the master
//! keeps no ".." entry, and the kernel asks for one when it turns a directory's file
//! handle back into a path (open_by_handle_at after the dentry cache was dropped, NFS
//! export; xfstests generic/467, generic/477). Learned from lookups, mkdir, readdir and
//! renames; a directory never seen here answers ENOENT (the kernel then says ESTALE).

use std::collections::HashMap;
use std::sync::Mutex;

/// Directory → parent directory (master inodes).
#[derive(Default)]
pub struct DirParents {
    map: Mutex<HashMap<u64, u64>>,
}

/// Entries remembered before the table is cleared (bounded memory).
const MAX_DIRS: usize = 1 << 20;

impl DirParents {
    /// Remembers that directory `dir` is in `parent`.
    pub fn note(&self, dir: u64, parent: u64) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= MAX_DIRS {
            m.clear();
        }
        m.insert(dir, parent);
    }

    /// The parent of `dir`, if known.
    pub fn get(&self, dir: u64) -> Option<u64> {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&dir).copied()
    }

    /// Whether any directory is known (only then does a rename need re-learning).
    pub fn any(&self) -> bool {
        !self
            .map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}
