//! Access times on reads, by the mount's [`AtimePolicy`](crate::atime::AtimePolicy).
//!
//! An open for reading whose atime is due marks the inode and makes the kernel drop its
//! cached pages (otherwise it serves them without asking us). The first read that reaches
//! ksfs answers at once and hands the new atime to a background commit: an atime is not
//! data, and a Raft commit in every first read halved small-file read rates (issue 19).
//! Until that commit lands, this mount shows the new atime in every attribute it answers
//! (the kernel refetches attributes after a FUSE read), so `stat` right after `cat` sees
//! it here; other mounts see it once committed. The commit keeps ctime as the master has
//! it (`keep_ctime`): a read is not a change, and no ctime read before is written back
//! over a change made since. A crash may lose an atime not yet committed, as `lazytime`
//! on a local filesystem may.

use super::Ksfs;
use kdss_client::MasterClient;
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Inodes opened for reading whose atime is due (cleared by their first read), and the
/// atimes handed to background commits that have not landed yet.
pub struct AtimeDue {
    due: Mutex<HashMap<u64, (Instant, i64)>>,
    pending: Arc<Mutex<HashMap<u64, i64>>>,
    commits: Arc<Semaphore>,
}

/// Marks remembered before the set is cleared (opens that never read leave one each).
const MAX_MARKS: usize = 100_000;

/// Atime commits running at once in the background; a read that finds none free commits
/// its atime itself before answering, so a burst of reads cannot queue work without bound.
const BACKGROUND_COMMITS: usize = 64;

impl Default for AtimeDue {
    fn default() -> Self {
        AtimeDue {
            due: Mutex::default(),
            pending: Arc::default(),
            commits: Arc::new(Semaphore::new(BACKGROUND_COMMITS)),
        }
    }
}

impl AtimeDue {
    fn mark(&self, ino: u64, ctime_ns: i64) {
        let mut s = self.due.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() >= MAX_MARKS {
            s.clear();
        }
        s.insert(ino, (Instant::now(), ctime_ns));
    }

    /// When `ino` was found due at an open and the ctime that open saw, if it is marked.
    fn take(&self, ino: u64) -> Option<(Instant, i64)> {
        let mut s = self.due.lock().unwrap_or_else(|e| e.into_inner());
        if s.is_empty() {
            return None;
        }
        s.remove(&ino)
    }

    /// Shows an atime this mount set but has not committed yet.
    pub fn overlay(&self, a: &mut pb::Attr) {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = p.get(&a.ino) {
            a.atime_ns = a.atime_ns.max(*t);
        }
    }
}

/// The SetAttr of an atime update: atime `atime_ns`, ctime left as stored.
fn atime_request(bucket: &str, ino: u64, atime_ns: i64, ctime_ns: i64) -> pb::SetAttrRequest {
    pb::SetAttrRequest {
        bucket: bucket.to_string(),
        ino,
        atime_ns: Some(atime_ns),
        keep_ctime: true,
        // Read by masters older than `keep_ctime`, which would otherwise set ctime to now.
        ctime_ns: Some(ctime_ns),
        ..Default::default()
    }
}

/// Commits one atime from a background task (no `Ksfs` to borrow there); failures are
/// logged: a read never fails for its atime.
async fn commit(master: MasterClient, req: pb::SetAttrRequest, deadline: Duration) {
    let ino = req.ino;
    match tokio::time::timeout(deadline, master.set_attr(req)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => tracing::debug!(ino, error = %e, "atime update failed"),
        Err(_) => tracing::debug!(ino, "atime update timed out"),
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

    /// After a read of `ino` succeeded: if its open marked it due, sets its atime to now,
    /// in the background when a commit slot is free. The open's verdict is trusted within
    /// `attr_ttl` (the mount's coherence window); an older one is checked again first.
    pub async fn touch_atime(&self, ino: u64) {
        let Some((seen, ctime_ns)) = self.atime_due.take(ino) else {
            return;
        };
        if seen.elapsed() >= self.attr_ttl {
            self.commit_atime(ino).await;
            return;
        }
        let now = kdss_common::time::now_ns();
        let req = atime_request(&self.bucket, ino, now, ctime_ns);
        let Ok(slot) = self.atime_due.commits.clone().try_acquire_owned() else {
            self.set_atime(req).await;
            return;
        };
        let pending = self.atime_due.pending.clone();
        pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ino, now);
        let (master, deadline) = (self.client.master().clone(), self.timeout);
        let names = self.names.clone();
        tokio::spawn(async move {
            commit(master, req, deadline).await;
            names.mark(ino);
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            if p.get(&ino) == Some(&now) {
                p.remove(&ino);
            }
            drop(slot);
        });
    }

    /// A readdir from the start of directory `ino`: commits its atime if due.
    pub async fn touch_dir_atime(&self, ino: u64) {
        if self.atime.dirs {
            self.commit_atime(ino).await;
        }
    }

    /// Re-checks the rule on fresh attributes and, if due, commits atime = now before
    /// returning. Failures are logged: a read never fails for its atime.
    async fn commit_atime(&self, ino: u64) {
        let a = match self.getattr(ino).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(ino, error = ?e, "atime: getattr failed");
                return;
            }
        };
        let now = kdss_common::time::now_ns();
        if !self.atime.due(&a, now) {
            return;
        }
        self.set_atime(atime_request(&self.bucket, ino, now, a.ctime_ns))
            .await;
    }

    /// Commits an atime before returning, through the mount's own SetAttr path.
    async fn set_atime(&self, req: pb::SetAttrRequest) {
        let ino = req.ino;
        if let Err(e) = self.set_attr_raw(req).await {
            tracing::debug!(ino, error = ?e, "atime update failed");
        }
    }
}
