//! Access times on reads, by the mount's [`AtimePolicy`](crate::atime::AtimePolicy).
//!
//! An open for reading whose atime is due marks the inode and makes the kernel drop its
//! cached pages (otherwise it serves them without asking us). The first read that reaches
//! ksfs answers at once and hands the new atime to a background batcher: an atime is not
//! data, and a Raft commit in every first read halved small-file read rates (issue 19).
//! The batcher gathers the atimes of [`GATHER`] and sends them as one SetAtimes (one call,
//! one Raft entry, an UPDATE per inode) instead of a SetAttr each, which cost the master
//! more than the reads themselves. Until an atime lands, this mount shows it in every
//! attribute it answers (the kernel refetches attributes after a FUSE read), so `stat`
//! right after `cat` sees it here; other mounts see it once committed. SetAtimes sets
//! atime alone: a read is not a change, and no ctime read before is written back over a
//! change made since. A crash may lose atimes not yet committed, as `lazytime` on a local
//! filesystem may.

use super::Ksfs;
use super::NameCache;
use kdss_client::{ClientError, MasterClient};
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Inodes opened for reading whose atime is due (cleared by their first read), and the
/// atimes handed to the batcher that have not landed yet.
#[derive(Default)]
pub struct AtimeDue {
    due: Mutex<HashMap<u64, (Instant, i64)>>,
    pending: Arc<Mutex<HashMap<u64, i64>>>,
    batcher: OnceLock<mpsc::Sender<Queued>>,
}

/// One atime for the batcher: inode, atime, and the ctime its open saw (for a master that
/// predates SetAtimes, which gets a SetAttr with `keep_ctime` instead).
type Queued = (u64, i64, i64);

/// Marks remembered before the set is cleared (opens that never read leave one each).
const MAX_MARKS: usize = 100_000;

/// Atimes waiting for the batcher; a read that finds the queue full commits its atime
/// itself before answering, so a burst of reads cannot queue work without bound.
const QUEUED_MAX: usize = 4096;

/// How long the batcher gathers atimes after the first before sending them.
pub const GATHER: Duration = Duration::from_millis(20);

/// Most atimes in one SetAtimes (the master's limit).
const BATCH_MAX: usize = 1000;

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
        // Ignored by masters that know keep_ctime; older ones store it as sent.
        ctime_ns: Some(ctime_ns),
        ..Default::default()
    }
}

/// What the batcher needs of the mount (it outlives no `Ksfs` borrow).
struct Batcher {
    master: MasterClient,
    bucket: String,
    deadline: Duration,
    pending: Arc<Mutex<HashMap<u64, i64>>>,
    names: Arc<NameCache>,
}

impl Batcher {
    /// Sends what arrives, gathered for [`GATHER`], until the mount drops the queue.
    async fn run(self, mut rx: mpsc::Receiver<Queued>) {
        let mut batch = Vec::new();
        while let Some(first) = rx.recv().await {
            batch.push(first);
            let until = tokio::time::Instant::now() + GATHER;
            while batch.len() < BATCH_MAX {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(q)) => batch.push(q),
                    _ => break,
                }
            }
            self.commit(&batch).await;
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (ino, atime_ns, _) in batch.drain(..) {
                self.names.mark(ino);
                if p.get(&ino) == Some(&atime_ns) {
                    p.remove(&ino);
                }
            }
        }
    }

    /// One SetAtimes; a master that predates it gets a SetAttr each. Failures are
    /// logged: a read never fails for its atime.
    async fn commit(&self, batch: &[Queued]) {
        let req = pb::SetAtimesRequest {
            bucket: self.bucket.clone(),
            updates: batch
                .iter()
                .map(|&(ino, atime_ns, _)| pb::AtimeUpdate { ino, atime_ns })
                .collect(),
        };
        match tokio::time::timeout(self.deadline, self.master.set_atimes(req)).await {
            Ok(Ok(_)) => return,
            Ok(Err(ClientError::Master(s))) if s.code() == tonic::Code::Unimplemented => {}
            Ok(Err(e)) => {
                tracing::debug!(inodes = batch.len(), error = %e, "atime updates failed");
                return;
            }
            Err(_) => {
                tracing::debug!(inodes = batch.len(), "atime updates timed out");
                return;
            }
        }
        for &(ino, atime_ns, ctime_ns) in batch {
            let req = atime_request(&self.bucket, ino, atime_ns, ctime_ns);
            match tokio::time::timeout(self.deadline, self.master.set_attr(req)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::debug!(ino, error = %e, "atime update failed"),
                Err(_) => tracing::debug!(ino, "atime update timed out"),
            }
        }
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
    /// through the batcher when its queue has room. The open's verdict is trusted within
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
        let queue = self.atime_due.batcher.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUED_MAX);
            let b = Batcher {
                master: self.client.master().clone(),
                bucket: self.bucket.clone(),
                deadline: self.timeout,
                pending: self.atime_due.pending.clone(),
                names: self.names.clone(),
            };
            tokio::spawn(b.run(rx));
            tx
        });
        // Shown here from now on, until the batcher has sent it.
        let queued = {
            let mut p = self
                .atime_due
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let shown = p.insert(ino, now);
            let queued = queue.try_send((ino, now, ctime_ns)).is_ok();
            if !queued {
                match shown {
                    Some(t) => p.insert(ino, t),
                    None => p.remove(&ino),
                };
            }
            queued
        };
        if queued {
            return;
        }
        self.set_atime(atime_request(&self.bucket, ino, now, ctime_ns))
            .await;
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
