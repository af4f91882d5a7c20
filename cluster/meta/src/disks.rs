//! Disk states: the master's replicated verdict on each disk (docs/architecture.md, "Disk
//! states"). A disk without a row is online; a row says suspect, offline or draining, why,
//! since when, and whether an operator set it.
//!
//! Two rules live here, in apply, so that every member decides them the same way whatever
//! the proposer's cache said:
//! - an automatic change never replaces a state an operator set (offline or draining by
//!   hand stays until an operator says otherwise);
//! - online removes the row, whoever sets it (an operator's `online` clears an automatic
//!   suspect or offline too).

use crate::error::{Result, einval};
use kdss_proto::master::{DiskStatus, SetDiskStateOp};
use sqlx::{SqliteConnection, SqlitePool};

/// One disk that is not plainly online.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskStateRow {
    /// The disk (ids are unique in the cluster).
    pub disk_id: u64,
    /// The node that reported it when the state was set.
    pub node_id: String,
    /// Suspect, offline or draining.
    pub status: DiskStatus,
    /// Why, in words an operator reads in `disk list`.
    pub reason: String,
    /// When the state was set (apply time of the op).
    pub since_ns: i64,
    /// Set by hand: the automatic health pass leaves it alone.
    pub by_operator: bool,
}

type Row = (i64, String, i32, String, i64, i64);

fn from_row((disk_id, node_id, status, reason, since_ns, operator): Row) -> DiskStateRow {
    DiskStateRow {
        disk_id: disk_id as u64,
        node_id,
        status: DiskStatus::try_from(status).unwrap_or(DiskStatus::Offline),
        reason,
        since_ns,
        by_operator: operator != 0,
    }
}

macro_rules! select_rows {
    ($tail:literal) => {
        concat!(
            "SELECT disk_id, node_id, status, reason, since_ns, operator FROM disk_states ",
            $tail
        )
    };
}

/// Applies a SetDiskStateOp (see the module rules). Setting the state a disk already has
/// keeps its `since` and only updates the reason.
pub async fn set_state(c: &mut SqliteConnection, op: &SetDiskStateOp, now: i64) -> Result<()> {
    let status = DiskStatus::try_from(op.status)
        .map_err(|_| einval(format!("unknown disk status {}", op.status)))?;
    if op.disk_id == 0 {
        return Err(einval("disk id 0 is not a disk"));
    }
    let current: Option<Row> = sqlx::query_as(select_rows!("WHERE disk_id = ?"))
        .bind(op.disk_id as i64)
        .fetch_optional(&mut *c)
        .await?;
    let current = current.map(from_row);
    if !op.by_operator && current.as_ref().is_some_and(|r| r.by_operator) {
        return Ok(());
    }
    match status {
        DiskStatus::Unspecified => Err(einval("a disk state must be given")),
        DiskStatus::Online => {
            sqlx::query("DELETE FROM disk_states WHERE disk_id = ?")
                .bind(op.disk_id as i64)
                .execute(&mut *c)
                .await?;
            Ok(())
        }
        DiskStatus::Suspect | DiskStatus::Offline | DiskStatus::Draining => {
            let since = match &current {
                Some(r) if r.status == status => r.since_ns,
                _ => now,
            };
            sqlx::query(
                "INSERT OR REPLACE INTO disk_states \
                 (disk_id, node_id, status, reason, since_ns, operator) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(op.disk_id as i64)
            .bind(&op.node_id)
            .bind(status as i32)
            .bind(&op.reason)
            .bind(since)
            .bind(op.by_operator as i64)
            .execute(&mut *c)
            .await?;
            Ok(())
        }
    }
}

/// Every disk that is not plainly online, by disk id.
pub async fn list(pool: &SqlitePool) -> Result<Vec<DiskStateRow>> {
    let rows: Vec<Row> = sqlx::query_as(select_rows!("ORDER BY disk_id"))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// The disks in one state (offline ones are what repair rebuilds from; draining ones what
/// it moves off), by disk id. Online disks have no row: ask the registry for those.
pub async fn list_by_state(pool: &SqlitePool, status: DiskStatus) -> Result<Vec<DiskStateRow>> {
    let rows: Vec<Row> = sqlx::query_as(select_rows!("WHERE status = ? ORDER BY disk_id"))
        .bind(status as i32)
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}
