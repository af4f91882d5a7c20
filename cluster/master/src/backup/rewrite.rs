//! The edits `kdss master restore` makes to a restored namespace database before any
//! master opens it: the Raft position and membership of the new group, the id sequences
//! moved past whatever the lost group may have handed out after the backup, and the
//! restore point (what the backup knew), which the collector reads to report orphans.
//!
//! Every master of the new group gets the same edits from the same backup and config, so
//! their databases are identical, as if Raft had written them.

use super::BackupError;
use crate::config::MasterConfig;
use crate::raft::{LogId, Node, NodeId};
use kdss_format::BackupHeader;
use openraft::{CommittedLeaderId, Membership, StoredMembership};
use std::collections::{BTreeMap, BTreeSet};

/// How far restore moves each id sequence past the backup's: more stripes than could
/// have been written between a backup and the disaster (2^32 stripes of even 1 MiB is
/// 4 PiB), and still far from the end of the 63-bit id space.
pub const ID_GAP: i64 = 1 << 32;

/// The AUTOINCREMENT sequences that restore moves. Stripes: a new stripe never reuses the
/// id of an orphan (a stripe written after the backup), so the orphan's shards stay
/// unreferenced and the collector deletes them. Inodes and open handles: a ksfs client
/// still holding a number of the lost group gets "no such file" rather than another file,
/// and an ETag derived from (ino, version) never names two contents.
const MOVED: [&str; 3] = ["stripes", "inodes", "opens"];

const POINT_DDL: &str = "CREATE TABLE IF NOT EXISTS kdss_restore_point (\
    id INTEGER PRIMARY KEY CHECK (id = 0), backup_index INTEGER NOT NULL, \
    backup_created_ms INTEGER NOT NULL, last_stripe_id INTEGER NOT NULL, \
    next_stripe_id INTEGER NOT NULL, restored_ms INTEGER NOT NULL)";

/// Where a restored group starts: the stripes the backup knew end at `last_stripe_id`;
/// ids above it and below `next_stripe_id` can only be stripes the lost group wrote after
/// the backup (orphans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorePoint {
    /// Raft index the backup went up to.
    pub backup_index: u64,
    /// When the backup was taken, ms since the Unix epoch.
    pub backup_created_ms: u64,
    /// The highest stripe id the backup knew.
    pub last_stripe_id: u64,
    /// The first stripe id the restored group hands out.
    pub next_stripe_id: u64,
}

impl RestorePoint {
    /// True for a stripe id the lost group may have written after the backup.
    pub fn after_backup(&self, stripe: u64) -> bool {
        stripe > self.last_stripe_id && stripe < self.next_stripe_id
    }
}

/// The restore point of this namespace, if it was restored from a backup (the latest
/// restore when it was restored more than once).
pub async fn restore_point(pool: &sqlx::SqlitePool) -> Result<Option<RestorePoint>, sqlx::Error> {
    let exists: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kdss_restore_point'",
    )
    .fetch_optional(pool)
    .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT backup_index, backup_created_ms, last_stripe_id, next_stripe_id \
         FROM kdss_restore_point WHERE id = 0",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(i, c, l, n)| RestorePoint {
        backup_index: i as u64,
        backup_created_ms: c as u64,
        last_stripe_id: l as u64,
        next_stripe_id: n as u64,
    }))
}

/// Makes the restored database the start of `cfg`'s group: checks it is a KDSS namespace,
/// writes the new Raft position (term 0 at the backup's index, the config's members as
/// voters), moves the id sequences and records the restore point, in one transaction.
pub async fn rewrite(
    pool: &sqlx::SqlitePool,
    cfg: &MasterConfig,
    header: &BackupHeader,
) -> Result<RestorePoint, BackupError> {
    check_schema(pool).await?;
    let (la, mem) = new_position(cfg, header)?;
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
    let mut point = RestorePoint {
        backup_index: header.applied_index,
        backup_created_ms: header.created_ms,
        last_stripe_id: 0,
        next_stripe_id: 0,
    };
    for table in MOVED {
        let (last, next) = move_sequence(&mut tx, table).await?;
        if table == "stripes" {
            (point.last_stripe_id, point.next_stripe_id) = (last as u64, next as u64);
        }
    }
    sqlx::query(POINT_DDL)
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db("create the restore point table"))?;
    sqlx::query(
        "INSERT OR REPLACE INTO kdss_restore_point (id, backup_index, backup_created_ms, \
         last_stripe_id, next_stripe_id, restored_ms) VALUES (0, ?, ?, ?, ?, ?)",
    )
    .bind(point.backup_index as i64)
    .bind(point.backup_created_ms as i64)
    .bind(point.last_stripe_id as i64)
    .bind(point.next_stripe_id as i64)
    .bind(kdss_common::time::now_ms() as i64)
    .execute(&mut *tx)
    .await
    .map_err(BackupError::db("record the restore point"))?;
    tx.commit().await.map_err(BackupError::db("commit"))?;
    Ok(point)
}

/// Refuses a database that is not a KDSS namespace (a valid header around another file).
async fn check_schema(pool: &sqlx::SqlitePool) -> Result<(), BackupError> {
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('stripes', 'inodes', 'opens', 'kdss_raft_applied')",
    )
    .fetch_one(pool)
    .await
    .map_err(|e| BackupError::Database {
        what: "read the backup's schema".into(),
        message: format!("{e} (the body is not a SQLite database)"),
    })?;
    if tables != 4 {
        return Err(BackupError::Database {
            what: "check the backup's body".into(),
            message: "it is a database but not a KDSS namespace (stripes, inodes, opens or \
                      the Raft position missing)"
                .into(),
        });
    }
    Ok(())
}

/// The log id and membership of the new group, JSON-encoded as the state machine keeps
/// them. Term 0 keeps every entry the new group appends (term 1 and up) above it, whatever
/// term the lost group had reached.
fn new_position(
    cfg: &MasterConfig,
    header: &BackupHeader,
) -> Result<(String, String), BackupError> {
    let members = cfg.members();
    let first = members.iter().map(|p| p.id).min().unwrap_or(cfg.master.id);
    let log_id = LogId::new(CommittedLeaderId::new(0, first), header.applied_index);
    let voters: BTreeSet<NodeId> = members.iter().map(|p| p.id).collect();
    let nodes: BTreeMap<NodeId, Node> = members
        .iter()
        .map(|p| {
            let addr = p.grpc_addr.clone();
            (p.id, Node { addr })
        })
        .collect();
    let membership = StoredMembership::new(Some(log_id), Membership::new(vec![voters], nodes));
    let encode = |what: &str, r: serde_json::Result<String>| {
        r.map_err(|e| BackupError::Database {
            what: format!("encode the {what}"),
            message: e.to_string(),
        })
    };
    Ok((
        encode("log id", serde_json::to_string(&Some(log_id)))?,
        encode("membership", serde_json::to_string(&membership))?,
    ))
}

/// Moves one AUTOINCREMENT sequence [`ID_GAP`] past the highest id the table ever used;
/// returns (that highest id, the next id handed out).
async fn move_sequence(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<(i64, i64), BackupError> {
    // One literal query per table: names cannot be bound as parameters.
    let top: &'static str = match table {
        "stripes" => {
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), \
             coalesce((SELECT max(stripe_id) FROM stripes), 0))"
        }
        "inodes" => {
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), \
             coalesce((SELECT max(ino) FROM inodes), 0))"
        }
        _ => {
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), \
             coalesce((SELECT max(handle) FROM opens), 0))"
        }
    };
    let what = format!("move the {table} id sequence");
    let last: i64 = sqlx::query_scalar(top)
        .bind(table)
        .fetch_one(&mut *tx)
        .await
        .map_err(BackupError::db(what.clone()))?;
    let next = last + ID_GAP;
    sqlx::query("DELETE FROM sqlite_sequence WHERE name = ?")
        .bind(table)
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db(what.clone()))?;
    sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)")
        .bind(table)
        .bind(next - 1)
        .execute(&mut *tx)
        .await
        .map_err(BackupError::db(what))?;
    Ok((last, next))
}
