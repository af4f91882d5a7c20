//! Stripe bookkeeping reads for the master's background engines: a stripe's placement
//! and reference count, the stripes on a disk (repair), released stripes (GC) and
//! stripes allocated but never committed (stale writes). Re-exported by `read`.

use crate::error::{Result, fail};
use crate::extents;
use kdss_common::rpc_error::errno;
use kdss_proto::master::StripeInfo;
use sqlx::SqlitePool;

/// A stripe with its placement; with `bucket`, ENOENT unless the stripe belongs to it.
pub async fn stripe_info(
    pool: &SqlitePool,
    bucket: Option<&str>,
    stripe_id: u64,
) -> Result<StripeInfo> {
    let mut c = pool.begin().await?;
    let owner: Option<String> =
        sqlx::query_scalar("SELECT bucket FROM stripes WHERE stripe_id = ?")
            .bind(stripe_id as i64)
            .fetch_optional(&mut *c)
            .await?;
    let missing = || {
        fail(
            errno::ENOENT,
            "NoSuchStripe",
            format!("no stripe {stripe_id}"),
        )
    };
    match owner {
        Some(b) if bucket.is_none_or(|want| want == b) => extents::stripe_info(&mut c, stripe_id)
            .await?
            .ok_or_else(missing),
        _ => Err(missing()),
    }
}

/// Bookkeeping of one stripe, for GC and repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeState {
    /// The stripe.
    pub stripe_id: u64,
    /// The bucket it was allocated for.
    pub bucket: String,
    /// Extent rows (files and parts) naming it.
    pub refcount: u64,
    /// It was referenced at least once (an allocated stripe never committed is a stale
    /// write after a while).
    pub committed: bool,
    /// Released to the GC (its shards may be deleted).
    pub released: bool,
    /// Allocation time.
    pub created_ns: i64,
}

/// The reference count and state of a stripe.
pub async fn stripe_state(pool: &SqlitePool, stripe_id: u64) -> Result<Option<StripeState>> {
    let row: Option<(i64, String, i64, i64, i64, Option<i64>)> = sqlx::query_as(
        "SELECT s.stripe_id, s.bucket, s.refcount, s.committed, s.created_ns, g.stripe_id \
         FROM stripes s LEFT JOIN gc_stripes g ON g.stripe_id = s.stripe_id WHERE s.stripe_id = ?",
    )
    .bind(stripe_id as i64)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(
        |(id, bucket, refcount, committed, created_ns, gc)| StripeState {
            stripe_id: id as u64,
            bucket,
            refcount: refcount as u64,
            committed: committed != 0,
            released: gc.is_some(),
            created_ns,
        },
    ))
}

/// Live stripes with a shard on `disk_id` (released ones excluded), by id, with their
/// whole placement: what repair rebuilds when the disk fails.
pub async fn stripes_on_disk(pool: &SqlitePool, disk_id: u64) -> Result<Vec<StripeInfo>> {
    let mut c = pool.begin().await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT stripe_id FROM stripe_shards WHERE disk_id = ? \
         AND stripe_id NOT IN (SELECT stripe_id FROM gc_stripes) ORDER BY stripe_id",
    )
    .bind(disk_id as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = extents::stripe_info(&mut c, id as u64).await? {
            out.push(s);
        }
    }
    Ok(out)
}

/// Stripes released to the GC (refcount 0 after commit): (stripe, released_ns), oldest
/// first, at most `limit`, with their placement.
pub async fn gc_stripes(pool: &SqlitePool, limit: u32) -> Result<Vec<(StripeInfo, i64)>> {
    let mut c = pool.begin().await?;
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT stripe_id, released_ns FROM gc_stripes ORDER BY released_ns, stripe_id LIMIT ?",
    )
    .bind(limit as i64)
    .fetch_all(&mut *c)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, at) in rows {
        if let Some(s) = extents::stripe_info(&mut c, id as u64).await? {
            out.push((s, at));
        }
    }
    Ok(out)
}

/// Stripes allocated before `created_before_ns` and never committed (stale writes).
pub async fn stale_stripes(
    pool: &SqlitePool,
    created_before_ns: i64,
    limit: u32,
) -> Result<Vec<u64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT stripe_id FROM stripes WHERE committed = 0 AND created_ns < ? ORDER BY stripe_id LIMIT ?",
    )
    .bind(created_before_ns)
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    Ok(ids.into_iter().map(|i| i as u64).collect())
}
