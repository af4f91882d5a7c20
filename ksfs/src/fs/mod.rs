//! The filesystem itself: every kernel operation as an async function over the client
//! library. The FUSE adapter (`crate::fuse`) runs these on the tokio runtime and replies
//! from the task, so the FUSE thread never waits on the network.
//!
//! Every cluster call is bounded by the configured timeout and becomes EIO past it: a
//! process using the mount never hangs in D state on a dead master.

mod atime;
mod data;
mod dir_attrs;
mod dirs;
mod names;
mod namespace;
mod owner;
mod xattr;

pub use atime::{AtimeDue, GATHER};
pub use data::OpenFiles;
pub use dir_attrs::DirAttrs;
pub use dirs::OpenDirs;
pub use names::NameCache;
pub use owner::{Caller, DirModes, acl_mode};

use crate::atime::AtimePolicy;
use crate::attr::InoMap;
use crate::metrics::{CallKind, Failure};
use fuser::Errno;
use kdss_client::{Client, ClientError};
use std::future::Future;
use std::time::Duration;

/// What the operations need: the client, the bucket and the mount's tuning.
pub struct Ksfs {
    /// The one data path (and the master connection).
    pub client: Client,
    /// The mounted bucket.
    pub bucket: String,
    /// Kernel inode numbers ↔ master inodes.
    pub inos: InoMap,
    /// Kernel attribute cache lifetime.
    pub attr_ttl: Duration,
    /// Kernel entry cache lifetime.
    pub entry_ttl: Duration,
    /// Deadline of one master call.
    pub timeout: Duration,
    /// Deadline of one data operation (a flush may write a whole write window).
    pub data_timeout: Duration,
    /// Open files and per-inode write buffers.
    pub files: OpenFiles,
    /// This mount's open-file session at the master (Open/Release/KeepAlive).
    pub session: String,
    /// Open directories (and those removed while open here).
    pub dirs: OpenDirs,
    /// How reads update access times.
    pub atime: AtimePolicy,
    /// Inodes whose next read commits their atime.
    pub atime_due: AtimeDue,
    /// Directories' attributes from the replies to this mount's own changes.
    pub dir_attrs: DirAttrs,
    /// Pages of directories read when lookups scan them, kept true by this mount's changes.
    pub names: std::sync::Arc<NameCache>,
    /// Mode and group of directories as last sent to the kernel (setgid inheritance).
    pub dir_modes: DirModes,
    /// Tells the kernel about changes it did not ask for (set once the session exists).
    pub notifier: std::sync::OnceLock<fuser::Notifier>,
    /// Operation counts and latency, bytes, failed cluster calls (`/metrics`).
    pub metrics: std::sync::Arc<crate::metrics::KsfsMetrics>,
}

/// The errno a client failure shows to the caller.
pub fn errno(e: &ClientError) -> Errno {
    let n = e.errno();
    if n <= 0 {
        Errno::EIO
    } else {
        Errno::from_i32(n)
    }
}

impl Ksfs {
    /// Attributes as this mount shows them: the master's, with its own unflushed writes
    /// and uncommitted atimes applied.
    pub fn overlay(&self, a: &mut kdss_proto::master::Attr) {
        self.files.overlay(a);
        self.atime_due.overlay(a);
    }

    /// Drops the kernel's cached attributes of master inode `ino` (changed by ksfs on its
    /// own, not as the answer to a kernel request).
    pub fn invalidate_attrs(&self, ino: u64) {
        if let Some(n) = self.notifier.get()
            && let Err(e) = n.inval_inode(self.inos.to_fuse(ino), -1, 0)
        {
            tracing::debug!(ino, error = %e, "attribute invalidation refused");
        }
    }

    /// Runs one master call (`self.client.master().lookup(req)`) with the mount's deadline;
    /// a timeout is EIO.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, Errno> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "master call failed");
                Err(self.count_error(CallKind::Master, errno(&e)))
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, "master call timed out: EIO");
                self.metrics
                    .cluster_error(CallKind::Master, Failure::Timeout);
                Err(Errno::EIO)
            }
        }
    }

    /// Runs one data-path future with the data deadline; a timeout is EIO.
    pub async fn data<T>(
        &self,
        fut: impl Future<Output = Result<T, ClientError>>,
    ) -> Result<T, Errno> {
        match tokio::time::timeout(self.data_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "data call failed");
                Err(self.count_error(CallKind::Data, errno(&e)))
            }
            Err(_) => {
                tracing::warn!(timeout = ?self.data_timeout, "data call timed out: EIO");
                self.metrics.cluster_error(CallKind::Data, Failure::Timeout);
                Err(Errno::EIO)
            }
        }
    }

    /// Counts a failed cluster call by the errno it gives the caller; returns that errno.
    fn count_error(&self, call: CallKind, e: Errno) -> Errno {
        let kind = if e == Errno::EIO {
            Failure::Io
        } else {
            Failure::Refused
        };
        self.metrics.cluster_error(call, kind);
        e
    }
}

/// A name from the kernel as the UTF-8 the master stores (other bytes are refused).
pub fn name_str(name: &std::ffi::OsStr) -> Result<String, Errno> {
    let s = name.to_str().ok_or(Errno::EINVAL)?;
    if s.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_client_fault_reaches_the_user_as_eio_not_einval() {
        let e = errno(&ClientError::Internal("stripe task: panicked".into()));
        assert_eq!(e, Errno::EIO);
        assert_eq!(
            errno(&ClientError::Invalid("bad name".into())),
            Errno::EINVAL
        );
    }
}
