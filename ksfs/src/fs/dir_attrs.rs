//! Directories' attributes as this mount's last change of them left them.
//!
//! After a create or an unlink the kernel drops its copy of the parent's attributes and,
//! with `default_permissions`, asks for them again before the next operation in that
//! directory: one more master call per small file. The master's reply to the change
//! carries the parent's new attributes; answering from them for `attr_ttl` shows no older
//! state than the kernel's own cache of a GetAttr would. Every other change this mount
//! makes to a directory (attributes, xattrs, atime, renames, removals) drops the copy.

use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Directories kept before the map starts over (it only ever saves calls).
const MAX_DIRS: usize = 10_000;

/// See the module doc.
#[derive(Default)]
pub struct DirAttrs {
    dirs: Mutex<HashMap<u64, (pb::Attr, Instant)>>,
}

impl DirAttrs {
    /// Remembers the parent attributes a change's reply carried (none from older masters).
    pub fn put(&self, parent: Option<pb::Attr>) {
        let Some(a) = parent else { return };
        let mut d = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if d.len() >= MAX_DIRS {
            d.clear();
        }
        d.insert(a.ino, (a, Instant::now()));
    }

    /// The attributes of `ino` if a change here left them less than `ttl` ago.
    pub fn fresh(&self, ino: u64, ttl: Duration) -> Option<pb::Attr> {
        let d = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        d.get(&ino)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(a, _)| *a)
    }

    /// `ino` changed in a way no reply described.
    pub fn forget(&self, ino: u64) {
        let mut d = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        d.remove(&ino);
    }

    /// A change whose effects on directories are not all known here (rename, rmdir).
    pub fn forget_all(&self) {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(ino: u64, mtime_ns: i64) -> pb::Attr {
        pb::Attr {
            ino,
            mtime_ns,
            ..Default::default()
        }
    }

    #[test]
    fn a_copy_serves_within_its_ttl_and_not_after_a_change_it_did_not_describe() {
        let c = DirAttrs::default();
        c.put(None);
        assert!(c.fresh(7, Duration::from_secs(1)).is_none());
        c.put(Some(dir(7, 1)));
        c.put(Some(dir(7, 2)));
        assert_eq!(
            c.fresh(7, Duration::from_secs(1)).map(|a| a.mtime_ns),
            Some(2)
        );
        assert!(c.fresh(7, Duration::ZERO).is_none(), "past the ttl");
        c.forget(7);
        assert!(c.fresh(7, Duration::from_secs(1)).is_none());
        c.put(Some(dir(8, 1)));
        c.forget_all();
        assert!(c.fresh(8, Duration::from_secs(1)).is_none());
    }
}
