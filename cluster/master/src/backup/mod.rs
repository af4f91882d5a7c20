//! Metadata backup and restore (issue 18): the namespace is the only map from names to
//! stripes, so losing every master's disk would leave the storage nodes full of unreadable
//! shards. A backup is the leader's applied namespace copied the way a Raft snapshot is
//! (`VACUUM INTO`, [`crate::raft::StateMachine::copy_to`]) behind a
//! [`kdss_format::BackupHeader`] naming the cluster, the Raft index it goes up to, when it
//! was taken and the body's checksum.
//!
//! - [`file`]: taking a copy, writing a backup file, reading one back, listing a directory.
//! - [`config`]: `[backup] dir, interval, keep` in master.toml.
//! - [`job`]: scheduled backups on the leader with retention.
//! - [`restore`]: `kdss master restore`, which turns a backup into the data directory of a
//!   new master group; [`rewrite`]: the edits it makes to the restored database, and the
//!   restore point the collector reads to report orphans of writes after the backup.

pub mod config;
pub mod file;
pub mod job;
pub mod restore;
pub mod rewrite;
#[cfg(test)]
mod tests;

pub use config::BackupSection;
pub use file::{BackupInfo, Taken};
pub use job::{BackupJob, Backups};
pub use restore::{Restored, restore};
pub use rewrite::{RestorePoint, restore_point};

use std::path::PathBuf;

/// Why a backup could not be taken, read or restored. Each names the file or directory and
/// the problem, so the operator can act on the message alone.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a usable backup (not one, damaged, cut off): nothing was changed.
    #[error("{path} is not a usable metadata backup: {source}; nothing was changed")]
    Corrupt {
        /// The backup file.
        path: PathBuf,
        /// What its check found.
        source: kdss_format::FormatError,
    },
    /// The backup belongs to another cluster than the config names.
    #[error(
        "{path} is a backup of cluster {backup:?}, but the config is for cluster {config:?}; \
         refusing to restore another cluster's namespace (its stripes are not on these \
         storage nodes); nothing was changed (--allow-other-cluster overrides this check)"
    )]
    ForeignCluster {
        /// The backup file.
        path: PathBuf,
        /// Cluster id in the backup's header.
        backup: String,
        /// `[cluster] id` of the config.
        config: String,
    },
    /// Restore only writes into an empty data directory.
    #[error(
        "the master's data directory {dir} is not empty (it holds {entries}); restore writes \
         a new master group and never overwrites one: stop this master, move or delete the \
         directory's contents, then run the restore again; nothing was changed"
    )]
    NotEmpty {
        /// `[master] data_dir`.
        dir: PathBuf,
        /// Some of what is in it.
        entries: String,
    },
    /// The namespace copy could not be made or edited.
    #[error("{what}: {message}")]
    Database {
        /// What was being done.
        what: String,
        /// The database's message.
        message: String,
    },
}

impl BackupError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
        let what = what.into();
        move |source| BackupError::Io { what, source }
    }

    /// A database error with what was being done.
    pub fn db(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> BackupError {
        let what = what.into();
        move |e| BackupError::Database {
            what,
            message: e.to_string(),
        }
    }
}
