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
//! ids the restored namespace would hand out again. So restore raises the stripe id
//! sequence by [`STRIPE_ID_GAP`]: new stripes never reuse an orphan's id, and the orphans
//! are shards no stripe maps, which the collector's inventory finds and deletes.

use super::BackupError;
use super::file::{CHUNK, read_header};
use crate::config::MasterConfig;
use crate::raft::{LogId, Node, NodeId};
use kdss_format::BackupHeader;
use openraft::{CommittedLeaderId, Membership, StoredMembership};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// How far restore moves the stripe id sequence past the backup's: more stripes than
/// could have been written between a backup and the disaster (2^32 stripes of even 1 MiB
/// is 4 PiB), and still far from the end of the 63-bit id space.
pub const STRIPE_ID_GAP: i64 = 1 << 32;

/// What a restore did, for the operator.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The backup's header.
    pub header: BackupHeader,
    /// The data directory written.
    pub data_dir: PathBuf,
    /// The group's members (id, gRPC address).
    pub members: Vec<(NodeId, String)>,
    /// The last stripe id the backup knew; stripes above it and below `next_stripe_id`
    /// were written after the backup (their shards are orphans).
    pub last_stripe_id: i64,
    /// The first stripe id the restored group hands out.
    pub next_stripe_id: i64,
}

/// Restores the backup at `from` into `cfg`'s data directory. Checks everything first —
/// header, body checksum, cluster id, an empty data directory — and changes nothing when
/// a check fails.
pub async fn restore(cfg: &MasterConfig, from: &Path) -> Result<Restored, BackupError> {
    let header = super::file::verify(from)?;
    if header.cluster_id != cfg.cluster.id {
        return Err(BackupError::ForeignCluster {
            path: from.to_path_buf(),
            backup: header.cluster_id,
            config: cfg.cluster.id.clone(),
        });
    }
    let dir = cfg.master.data_dir.clone();
    check_empty(&dir)?;
    std::fs::create_dir_all(&dir).map_err(BackupError::io(format!("create {}", dir.display())))?;
    let staging = dir.join("meta-restoring.db");
    let out = write_namespace(cfg, from, &header, &staging).await;
    let (last, next) = match out {
        Ok(v) => v,
        Err(e) => {
            remove_db(&staging);
            return Err(e);
        }
    };
    let live = dir.join("meta.db");
    std::fs::rename(&staging, &live).map_err(BackupError::io(format!(
        "rename {} to {}",
        staging.display(),
        live.display()
    )))?;
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
        last_stripe_id: last,
        next_stripe_id: next,
    })
}

/// Refuses a data directory that holds anything.
fn check_empty(dir: &Path) -> Result<(), BackupError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(BackupError::io(format!("list {}", dir.display()))(e)),
    };
    let names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    if names.is_empty() {
        return Ok(());
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
/// Raft position and stripe id sequence. Returns (last stripe id of the backup, first id
/// the new group hands out).
async fn write_namespace(
    cfg: &MasterConfig,
    from: &Path,
    header: &BackupHeader,
    staging: &Path,
) -> Result<(i64, i64), BackupError> {
    copy_body(from, header, staging)?;
    let opts = SqliteConnectOptions::new()
        .filename(staging)
        .journal_mode(SqliteJournalMode::Delete);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .map_err(BackupError::db(format!("open {}", staging.display())))?;
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
    let mut buf = vec![0u8; CHUNK];
    let (mut len, mut crc) = (0u64, 0u32);
    loop {
        let n = src
            .read(&mut buf)
            .map_err(BackupError::io(format!("read {}", from.display())))?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        len += n as u64;
        dst.write_all(&buf[..n])
            .map_err(BackupError::io(format!("write {}", staging.display())))?;
    }
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

/// The Raft position and membership of the new group, and the stripe id gap.
async fn rewrite(
    pool: &sqlx::SqlitePool,
    cfg: &MasterConfig,
    header: &BackupHeader,
) -> Result<(i64, i64), BackupError> {
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('stripes', 'kdss_raft_applied')",
    )
    .fetch_one(pool)
    .await
    .map_err(BackupError::db("read the backup's schema"))?;
    if tables != 2 {
        return Err(BackupError::Database {
            what: "check the backup's body".into(),
            message: "it is a database but not a KDSS namespace (no stripes or Raft tables)".into(),
        });
    }
    let members = cfg.members();
    let first = members.iter().map(|p| p.id).min().unwrap_or(cfg.master.id);
    let log_id = LogId::new(CommittedLeaderId::new(0, first), header.applied_index);
    let voters: BTreeSet<NodeId> = members.iter().map(|p| p.id).collect();
    let nodes: BTreeMap<NodeId, Node> = members
        .iter()
        .map(|p| {
            (
                p.id,
                Node {
                    addr: p.grpc_addr.clone(),
                },
            )
        })
        .collect();
    let membership = StoredMembership::new(Some(log_id), Membership::new(vec![voters], nodes));
    let la = serde_json::to_string(&Some(log_id)).map_err(|e| BackupError::Database {
        what: "encode the log id".into(),
        message: e.to_string(),
    })?;
    let mem = serde_json::to_string(&membership).map_err(|e| BackupError::Database {
        what: "encode the membership".into(),
        message: e.to_string(),
    })?;
    let mut tx = pool.begin().await.map_err(BackupError::db("begin"))?;
    sqlx::query(
        "INSERT INTO kdss_raft_applied (id, last_applied, membership) VALUES (0, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET last_applied = excluded.last_applied, \
         membership = excluded.membership",
    )
    .bind(la)
    .bind(mem)
    .execute(&mut *tx)
    .await
    .map_err(BackupError::db("write the new group's Raft position"))?;
    let last: i64 = sqlx::query_scalar(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'stripes'), 0), \
         coalesce((SELECT max(stripe_id) FROM stripes), 0))",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(BackupError::db("read the stripe id sequence"))?;
    let next = last + STRIPE_ID_GAP;
    sqlx::query("DELETE FROM sqlite_sequence WHERE name = 'stripes'")
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db("move the stripe id sequence"))?;
    sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ('stripes', ?)")
        .bind(next - 1)
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db("move the stripe id sequence"))?;
    tx.commit().await.map_err(BackupError::db("commit"))?;
    Ok((last, next))
}
