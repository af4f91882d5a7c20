//! The replicated half of the garbage collector. A stripe is garbage once it sits in
//! `gc_stripes`: its last reference went (refcount reached zero), or it was allocated and
//! never committed for longer than the master's `stale_writing_minutes`
//! ([`expire_stale`]). The master's collector deletes each shard on its storage node with
//! a delete capability and then proposes [`forget_shards`]; the stripe row goes with its
//! last shard. Both steps are idempotent: a shard deleted twice is a no-op on the node,
//! a shard forgotten twice changes nothing here.
//!
//! Safety: only shards of stripes in `gc_stripes` are ever forgotten, and a stripe enters
//! `gc_stripes` only with refcount 0 (no extent of a file, a binned file or a multipart
//! part names it); `extents::validate` refuses new references to it.

use crate::error::Result;
use kdss_proto::master::{ExpireStaleStripesOp, ForgetShardsOp};
use sqlx::{SqliteConnection, SqlitePool};

/// Forgets shards whose deletion the storage nodes confirmed, then drops every stripe of
/// the op that is garbage and has no shard left. Shards of live stripes are never touched.
pub async fn forget_shards(c: &mut SqliteConnection, op: &ForgetShardsOp) -> Result<()> {
    let mut stripes = Vec::with_capacity(op.shards.len());
    for k in &op.shards {
        sqlx::query(
            "DELETE FROM stripe_shards WHERE stripe_id = ?1 AND shard_index = ?2 \
             AND stripe_id IN (SELECT stripe_id FROM gc_stripes WHERE stripe_id = ?1)",
        )
        .bind(k.stripe_id as i64)
        .bind(k.shard_index as i64)
        .execute(&mut *c)
        .await?;
        stripes.push(k.stripe_id);
    }
    stripes.sort_unstable();
    stripes.dedup();
    for s in stripes {
        let left: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM stripe_shards WHERE stripe_id = ? LIMIT 1")
                .bind(s as i64)
                .fetch_optional(&mut *c)
                .await?;
        if left.is_some() {
            continue;
        }
        let gone: Option<i64> =
            sqlx::query_scalar("DELETE FROM gc_stripes WHERE stripe_id = ? RETURNING stripe_id")
                .bind(s as i64)
                .fetch_optional(&mut *c)
                .await?;
        if gone.is_some() {
            // (A stripe row that is garbage holds no reference: refcount 0.)
            sqlx::query("DELETE FROM stripes WHERE stripe_id = ?")
                .bind(s as i64)
                .execute(&mut *c)
                .await?;
        }
    }
    Ok(())
}

/// Releases to the GC every stripe allocated before `created_before_ns` and never
/// committed (a writer that crashed or gave up). A writer that commits later is refused
/// (`InvalidStripe`) and retries with a new stripe.
pub async fn expire_stale(
    c: &mut SqliteConnection,
    op: &ExpireStaleStripesOp,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT OR IGNORE INTO gc_stripes (stripe_id, bucket, released_ns) \
         SELECT stripe_id, bucket, ? FROM stripes \
         WHERE committed = 0 AND refcount = 0 AND created_ns < ?",
    )
    .bind(now)
    .bind(op.created_before_ns)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// What the collector has left to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// Garbage stripes not forgotten yet.
    pub stripes: u64,
    /// Their shards not deleted yet.
    pub shards: u64,
    /// Raw bytes those shards occupy (shard_len each).
    pub bytes: u64,
    /// Stripes allocated and not committed (yet), whatever their age.
    pub writing: u64,
}

/// Counts the collector's backlog.
pub async fn pending(pool: &SqlitePool) -> Result<Pending> {
    let (stripes,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM gc_stripes")
        .fetch_one(pool)
        .await?;
    let (shards, bytes): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), SUM(s.shard_len) FROM gc_stripes g \
         JOIN stripe_shards ss ON ss.stripe_id = g.stripe_id \
         JOIN stripes s ON s.stripe_id = g.stripe_id",
    )
    .fetch_one(pool)
    .await?;
    let (writing,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM stripes WHERE committed = 0 \
         AND stripe_id NOT IN (SELECT stripe_id FROM gc_stripes)",
    )
    .fetch_one(pool)
    .await?;
    Ok(Pending {
        stripes: stripes.max(0) as u64,
        shards: shards.max(0) as u64,
        bytes: bytes.unwrap_or(0).max(0) as u64,
        writing: writing.max(0) as u64,
    })
}

/// Garbage stripes after `after_stripe`, by id, released before `released_before_ns` (the
/// read grace: readers that opened the old version may still read it until then), at most
/// `limit`, with the shards they still have (node_id, disk_id): the collector's work list.
pub async fn candidates(
    pool: &SqlitePool,
    after_stripe: u64,
    released_before_ns: i64,
    limit: u32,
) -> Result<Vec<kdss_proto::master::StripeInfo>> {
    let mut c = pool.begin().await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT stripe_id FROM gc_stripes WHERE stripe_id > ? AND released_ns < ? \
         ORDER BY stripe_id LIMIT ?",
    )
    .bind(after_stripe as i64)
    .bind(released_before_ns)
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match crate::extents::stripe_info(&mut c, id as u64).await? {
            Some(s) => out.push(s),
            // A garbage row whose stripe is already gone: report it shard-less so the
            // collector forgets it.
            None => out.push(kdss_proto::master::StripeInfo {
                stripe_id: id as u64,
                ..Default::default()
            }),
        }
    }
    Ok(out)
}

/// Of the shards a storage node lists on one disk, those the stripe map does not reference
/// there: the inventory half of the collector (a writer that moved a shard with
/// `ReplaceShard` and left the first copy, a crash between a shard write and its record, a
/// stripe forgotten while a stray copy survived). A shard counts as referenced, and is never
/// returned, when its stripe row says so for this node and disk, when its stripe is still
/// being written (not committed and not garbage: its writer may be moving it right now), or
/// when its stripe id is above every id this replica has allocated (a stripe it has not
/// applied yet). The caller deletes what this returns only after it stayed unreferenced for
/// the stale-writer delay.
pub async fn unreferenced(
    pool: &SqlitePool,
    node_id: &str,
    disk_id: u64,
    shards: &[(u64, u32)],
) -> Result<Vec<(u64, u32)>> {
    let mut c = pool.begin().await?;
    let top: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'stripes'")
            .fetch_optional(&mut *c)
            .await?;
    let top = top.unwrap_or(0).max(0) as u64;
    let mut out = Vec::new();
    for &(stripe, shard) in shards {
        if stripe > top {
            continue;
        }
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT s.committed, EXISTS(SELECT 1 FROM gc_stripes g WHERE g.stripe_id = s.stripe_id) \
             FROM stripes s WHERE s.stripe_id = ?",
        )
        .bind(stripe as i64)
        .fetch_optional(&mut *c)
        .await?;
        let Some((committed, garbage)) = row else {
            out.push((stripe, shard));
            continue;
        };
        if committed == 0 && garbage == 0 {
            continue;
        }
        let here: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM stripe_shards WHERE stripe_id = ? AND shard_index = ? \
             AND node_id = ? AND disk_id = ?",
        )
        .bind(stripe as i64)
        .bind(shard as i64)
        .bind(node_id)
        .bind(disk_id as i64)
        .fetch_optional(&mut *c)
        .await?;
        if here.is_none() {
            out.push((stripe, shard));
        }
    }
    Ok(out)
}
