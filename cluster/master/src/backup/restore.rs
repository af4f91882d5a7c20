//! `kdss master restore -c master.toml --from FILE`: turns a backup into the data directory
//! of a new master group, without starting anything.
//!
//! The route through openraft (0.9): the restored database becomes the state machine, its
//! applied row rewritten to a fresh log position — term 0, the backup's index — with the
//! membership of the config's peers; the Raft log starts empty. On start openraft finds the
//! state machine ahead of the empty log, treats the gap as purged (the same path as after
//! installing a snapshot), builds a snapshot from the database for followers that need one,
//! and the lone voter (or the voters of `[cluster] peers`, which vote for it since their
//! logs are empty) elects a leader at term 1. Term 0 keeps every new entry's log id above
//! the restored one whatever term the old group had reached.
//!
//! Stripes written after the backup still have shards on the storage nodes, under stripe
//! ids the restored namespace would hand out again. So restore moves the id sequences
//! ([`super::rewrite`]): new stripes never reuse an orphan's id, and the orphans are
//! shards no stripe maps, which the collector's inventory reports and deletes.

use super::BackupError;
use super::file::{crc_stream, read_header};
use super::rewrite::{RestorePoint, rewrite};
use crate::config::MasterConfig;
use crate::raft::NodeId;
use kdss_format::BackupHeader;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What a restore did, for the operator.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's header.
    pub header: BackupHeader,
    /// The data directory written.
    pub data_dir: PathBuf,
    /// The group's members (id, gRPC address).
    pub members: Vec<(NodeId, String)>,
    /// What the backup knew and where the new group's stripe ids start.
    pub point: RestorePoint,
}

/// Restores the backup at `from` into `cfg`'s data directory. Checks everything first —
/// header, body checksum, cluster id (unless `allow_other_cluster`), an empty data
/// directory — and changes nothing when a check fails.
pub async fn restore(
    cfg: &MasterConfig,
    from: &Path,
    allow_other_cluster: bool,
) -> Result<Restored, BackupError> {
    let header = super::file::verify(from)?;
    if header.cluster_id != cfg.cluster.id && !allow_other_cluster {
        return Err(BackupError::ForeignCluster {
            path: from.to_path_buf(),
            backup: header.cluster_id,
            config: cfg.cluster.id.clone(),
        });
    }
    let dir = cfg.master.data_dir.clone();
    let existed = check_empty(&dir)?;
    std::fs::create_dir_all(&dir).map_err(BackupError::io(format!("create {}", dir.display())))?;
    let staging = dir.join("meta-restoring.db");
    let live = dir.join("meta.db");
    let out = match write_namespace(cfg, from, &header, &staging).await {
        Ok(point) => std::fs::rename(&staging, &live)
            .map(|()| point)
            .map_err(BackupError::io(format!(
                "rename {} to {}",
                staging.display(),
                live.display()
            ))),
        Err(e) => Err(e),
    };
    let point = match out {
        Ok(p) => p,
        Err(e) => {
            // Leave the directory as it was found: empty, or absent.
            remove_db(&staging);
            if !existed {
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(e);
        }
    };
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(Restored {
        header,
        data_dir: dir,
        members: cfg
            .members()
            .into_iter()
            .map(|p| (p.id, p.grpc_addr))
            .collect(),
        point,
    })
}

/// Refuses a data directory that holds anything; says whether it exists.
fn check_empty(dir: &Path) -> Result<bool, BackupError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(BackupError::io(format!("list {}", dir.display()))(e)),
    };
    let names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    if names.is_empty() {
        return Ok(true);
    }
    let mut shown: Vec<&str> = names.iter().take(4).map(String::as_str).collect();
    shown.sort_unstable();
    let more = if names.len() > 4 {
        format!(" and {} more", names.len() - 4)
    } else {
        String::new()
    };
    Err(BackupError::NotEmpty {
        dir: dir.to_path_buf(),
        entries: format!("{}{more}", shown.join(", ")),
    })
}

fn remove_db(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// Copies the body to `staging` (checking its crc32c again on the way), then rewrites its
/// Raft position and id sequences ([`rewrite`]).
async fn write_namespace(
    cfg: &MasterConfig,
    from: &Path,
    header: &BackupHeader,
    staging: &Path,
) -> Result<RestorePoint, BackupError> {
    copy_body(from, header, staging)?;
    let opts = SqliteConnectOptions::new()
        .filename(staging)
        .journal_mode(SqliteJournalMode::Delete);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(BackupError::db(format!(
            "{}: the body is not a SQLite database of a KDSS namespace (open {}); nothing \
             was changed",
            from.display(),
            staging.display()
        )))?;
    let out = rewrite(&pool, cfg, header).await;
    pool.close().await;
    out
}

fn copy_body(from: &Path, header: &BackupHeader, staging: &Path) -> Result<(), BackupError> {
    let mut src =
        std::fs::File::open(from).map_err(BackupError::io(format!("open {}", from.display())))?;
    let again = read_header(from, &mut src)?;
    let mut dst = std::fs::File::create(staging)
        .map_err(BackupError::io(format!("create {}", staging.display())))?;
    let (len, crc) = crc_stream(&mut src, from, |piece| {
        dst.write_all(piece)
            .map_err(BackupError::io(format!("write {}", staging.display())))
    })?;
    // The file could have changed since it was verified: what was copied must match too.
    if again != *header {
        return Err(BackupError::Corrupt {
            path: from.to_path_buf(),
            source: kdss_format::FormatError::Invalid {
                what: "backup header",
                detail: "changed while restoring".into(),
            },
        });
    }
    header
        .check_body(len, crc)
        .map_err(|source| BackupError::Corrupt {
            path: from.to_path_buf(),
            source,
        })?;
    dst.sync_all()
        .map_err(BackupError::io(format!("sync {}", staging.display())))
}
