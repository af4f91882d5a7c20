//! Access times on reads, by the mount's [`AtimePolicy`](crate::atime::AtimePolicy).
//!
//! An open for reading whose atime is due marks the inode and makes the kernel drop its
//! cached pages (otherwise it serves them without asking us); the first read that reaches
//! ksfs then commits the new atime before it answers, so a `stat` right after `cat` sees
//! it (the kernel refetches atime after a FUSE read). The commit keeps ctime as the
//! master has it: a read is not a change. The ctime comes from the open's attributes
//! when they are younger than `attr_ttl` (the mount's coherence window, as for the kernel's
//! attribute cache), else from a fresh GetAttr: a small-file read is then one SetAttr
//! after the open, not a GetAttr and a SetAttr.

use super::Ksfs;
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Inodes opened for reading whose atime is due (cleared by their first read), with the
/// ctime the open saw and when (None once this mount changed the inode since).
#[derive(Default)]
pub struct AtimeDue {
    inos: Mutex<HashMap<u64, Option<(i64, Instant)>>>,
}

/// Marks remembered before the set is cleared (opens that never read leave one each).
const MAX_MARKS: usize = 100_000;

impl AtimeDue {
    fn mark(&self, ino: u64, ctime_ns: i64) {
        let mut s = self.inos.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() >= MAX_MARKS {
            s.clear();
        }
        s.insert(ino, Some((ctime_ns, Instant::now())));
    }

    /// This mount changed `ino` (data, mode, xattrs, links): the ctime its open saw is old.
    pub fn changed(&self, ino: u64) {
        let mut s = self.inos.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = s.get_mut(&ino) {
            *e = None;
        }
    }

    /// A rename here changed an inode this mount does not know by number: every open's
    /// ctime is old (renames are rare beside reads).
    pub fn changed_all(&self) {
        let mut s = self.inos.lock().unwrap_or_else(|e| e.into_inner());
        s.values_mut().for_each(|e| *e = None);
    }

    /// Whether `ino` is marked, and the ctime its open saw if still current.
    fn take(&self, ino: u64) -> Option<Option<(i64, Instant)>> {
        let mut s = self.inos.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_empty() {
            return None;
        }
        s.remove(&ino)
    }
}

impl Ksfs {
    /// At an open for reading with attributes `a`: true when the atime is due (the
    /// kernel must then drop its cached pages so the read reaches us).
    pub fn atime_due_at_open(&self, a: &pb::Attr) -> bool {
        let due = self.atime.due(a, kdss_common::time::now_ns());
        if due {
            self.atime_due.mark(a.ino, a.ctime_ns);
        }
        due
    }

    /// After a read of `ino` succeeded: commits its atime if its open marked it due.
    pub async fn touch_atime(&self, ino: u64) {
        match self.atime_due.take(ino) {
            Some(Some((ctime_ns, seen))) if seen.elapsed() < self.attr_ttl => {
                self.set_atime(ino, ctime_ns).await;
            }
            Some(_) => self.commit_atime(ino).await,
            None => {}
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
        self.set_atime(ino, a.ctime_ns).await;
    }

    /// Sets atime to the master's now, keeping ctime at `ctime_ns`.
    async fn set_atime(&self, ino: u64, ctime_ns: i64) {
        let req = pb::SetAttrRequest {
            bucket: self.bucket.clone(),
            ino,
            atime_now: true,
            ctime_ns: Some(ctime_ns),
            ..Default::default()
        };
        if let Err(e) = self.set_attr_raw(req).await {
            tracing::debug!(ino, error = ?e, "atime update failed");
        }
    }
}
