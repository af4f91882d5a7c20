//! The replicated half of repair (docs/architecture.md, "Repair"): which stripes have a
//! shard to rebuild, and the one mutation that points a shard at its rebuilt copy.
//!
//! The leader's repair job reads [`damaged`] to build its queue, rebuilds a shard on a
//! storage node, then proposes [`move_shard`]. That op is conditional: it applies only if
//! the shard still sits where the job found it and the stripe is still live, so a stripe
//! that was deleted, collected or repaired by another leader meanwhile is left alone and
//! the job's copy stays unreferenced (the inventory collects it).

use crate::error::{Result, fail};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{MoveShardOp, SetSettingOp};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection, SqlitePool};

/// A live, committed stripe with shards on disks being repaired, and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damaged {
    /// The stripe.
    pub stripe_id: u64,
    /// Its shards on the given disks.
    pub shards: u32,
    /// The stripe's parity count: `m - shards` is the redundancy it has left.
    pub m: u32,
    /// Bytes of each shard.
    pub shard_len: u64,
}

/// Committed, live stripes with at least one shard on `disks`, the most damaged first
/// (fewest shards left to lose), then by id. Stripes still being written are left to their
/// writer; released ones to the collector.
pub async fn damaged(pool: &SqlitePool, disks: &[u64]) -> Result<Vec<Damaged>> {
    if disks.is_empty() {
        return Ok(Vec::new());
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT s.stripe_id, COUNT(*), s.m, s.shard_len FROM stripe_shards h \
         JOIN stripes s ON s.stripe_id = h.stripe_id \
         WHERE s.committed = 1 AND s.stripe_id NOT IN (SELECT stripe_id FROM gc_stripes) \
         AND h.disk_id IN (",
    );
    let mut sep = q.separated(", ");
    for d in disks {
        sep.push_bind(*d as i64);
    }
    q.push(") GROUP BY s.stripe_id");
    let rows: Vec<(i64, i64, i64, i64)> = q.build_query_as().fetch_all(pool).await?;
    let mut out: Vec<Damaged> = rows
        .into_iter()
        .map(|(id, n, m, len)| Damaged {
            stripe_id: id as u64,
            shards: n as u32,
            m: m as u32,
            shard_len: len as u64,
        })
        .collect();
    out.sort_by_key(|d| (i64::from(d.m) - i64::from(d.shards), d.stripe_id));
    Ok(out)
}

/// Shards the stripe map places on each disk (0 for a disk that is drained).
pub async fn shards_per_disk(pool: &SqlitePool) -> Result<Vec<(u64, u64)>> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT disk_id, COUNT(*) FROM stripe_shards GROUP BY disk_id")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(d, n)| (d as u64, n as u64))
        .collect())
}

/// Applies a MoveShardOp: ESTALE, changing nothing, unless the shard is still on
/// `from_node`/`from_disk` of a committed stripe the collector has not taken.
pub async fn move_shard(c: &mut SqliteConnection, op: &MoveShardOp) -> Result<()> {
    let moved = sqlx::query(
        "UPDATE stripe_shards SET node_id = ?1, disk_id = ?2 \
         WHERE stripe_id = ?3 AND shard_index = ?4 AND node_id = ?5 AND disk_id = ?6 \
         AND stripe_id IN (SELECT stripe_id FROM stripes WHERE stripe_id = ?3 AND committed = 1) \
         AND stripe_id NOT IN (SELECT stripe_id FROM gc_stripes WHERE stripe_id = ?3) \
         AND NOT EXISTS (SELECT 1 FROM stripe_shards WHERE stripe_id = ?3 AND disk_id = ?2)",
    )
    .bind(&op.to_node)
    .bind(op.to_disk as i64)
    .bind(op.stripe_id as i64)
    .bind(op.shard_index as i64)
    .bind(&op.from_node)
    .bind(op.from_disk as i64)
    .execute(&mut *c)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(fail(
            errno::ESTALE,
            "StripeChanged",
            format!(
                "shard {} of stripe {} is no longer on disk {} of {} (or the stripe is gone, or \
                 disk {} already holds one of its shards): not moved",
                op.shard_index, op.stripe_id, op.from_disk, op.from_node, op.to_disk
            ),
        ));
    }
    Ok(())
}

/// Applies a SetSettingOp: an empty value removes the key.
pub async fn set_setting(c: &mut SqliteConnection, op: &SetSettingOp) -> Result<()> {
    if op.key.is_empty() {
        return Err(crate::error::einval("a setting needs a key"));
    }
    if op.value.is_empty() {
        sqlx::query("DELETE FROM settings WHERE key = ?")
            .bind(&op.key)
            .execute(&mut *c)
            .await?;
    } else {
        sqlx::query("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)")
            .bind(&op.key)
            .bind(&op.value)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// A run-time setting, if an operator set one.
pub async fn setting(pool: &SqlitePool, key: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
            .bind(key)
            .fetch_optional(pool)
            .await?,
    )
}
