//! Access times on reads, by the mount's [`AtimePolicy`](crate::atime::AtimePolicy).
//!
//! An open for reading whose atime is due marks the inode and makes the kernel drop its
//! cached pages (otherwise it serves them without asking us); the first read that reaches
//! ksfs then commits the new atime before it answers, so a `stat` right after `cat` sees
//! it (the kernel refetches atime after a FUSE read). The commit keeps ctime as the
//! master has it: a read is not a change.

use super::Ksfs;
use kdss_proto::master as pb;
use std::collections::HashSet;
use std::sync::Mutex;

/// Inodes opened for reading whose atime is due (cleared by their first read).
#[derive(Default)]
pub struct AtimeDue {
    inos: Mutex<HashSet<u64>>,
}

/// Marks remembered before the set is cleared (opens that never read leave one each).
const MAX_MARKS: usize = 100_000;

impl AtimeDue {
    fn mark(&self, ino: u64) {
        let mut s = self.inos.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() >= MAX_MARKS {
            s.clear();
        }
        s.insert(ino);
    }

    fn take(&self, ino: u64) -> bool {
        let mut s = self.inos.lock().unwrap_or_else(|e| e.into_inner());
        !s.is_empty() && s.remove(&ino)
    }
}

impl Ksfs {
    /// At an open for reading with attributes `a`: true when the atime is due (the
    /// kernel must then drop its cached pages so the read reaches us).
    pub fn atime_due_at_open(&self, a: &pb::Attr) -> bool {
        let due = self.atime.due(a, kdss_common::time::now_ns());
        if due {
            self.atime_due.mark(a.ino);
        }
        due
    }

    /// After a read of `ino` succeeded: commits its atime if its open marked it due.
    pub async fn touch_atime(&self, ino: u64) {
        if self.atime_due.take(ino) {
            self.commit_atime(ino).await;
        }
    }

    /// A readdir from the start of directory `ino`: commits its atime if due.
    pub async fn touch_dir_atime(&self, ino: u64) {
        if self.atime.dirs {
            self.commit_atime(ino).await;
        }
    }

    /// Re-checks the rule on fresh attributes and sets atime to the master's now, passing
    /// the current ctime back so that it stays. Failures are logged: a read never fails
    /// for its atime.
    async fn commit_atime(&self, ino: u64) {
        let a = match self.getattr(ino).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(ino, error = ?e, "atime: getattr failed");
                return;
            }
        };
        if !self.atime.due(&a, kdss_common::time::now_ns()) {
            return;
        }
        let req = pb::SetAttrRequest {
            bucket: self.bucket.clone(),
            ino,
            atime_now: true,
            ctime_ns: Some(a.ctime_ns),
            ..Default::default()
        };
        if let Err(e) = self.set_attr_raw(req).await {
            tracing::debug!(ino, error = ?e, "atime update failed");
        }
    }
}
