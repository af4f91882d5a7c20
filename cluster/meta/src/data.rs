//! Data-path mutations: stripe allocation (placement decided on the leader, the id
//! assigned here), shard replacement, and committing written extents onto a file.

use crate::error::{Result, einval, fail, no_such_bucket};
use crate::{extents, tree};
use kdss_common::limits::{INLINE_NOT_POSSIBLE, MAX_INLINE_BYTES};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{
    Attr, CommitWriteRequest, CreateStripeOp, ReplaceShardOp, ShardLocation, StripeInfo,
};
use sqlx::SqliteConnection;

/// Records a new stripe and its shard placement, owned by `caller` (its writer); the id
/// comes from SQLite (AUTOINCREMENT: monotonic, never reused, the same on every master).
pub async fn create_stripe(
    c: &mut SqliteConnection,
    op: &CreateStripeOp,
    now: i64,
    caller: &str,
) -> Result<StripeInfo> {
    let policy: Option<(i64, i64)> = sqlx::query_as("SELECT k, m FROM buckets WHERE name = ?")
        .bind(&op.bucket)
        .fetch_optional(&mut *c)
        .await?;
    if policy.is_none() {
        return Err(no_such_bucket(&op.bucket));
    }
    let width = (op.k + op.m) as usize;
    if op.k == 0 || op.shards.len() != width {
        return Err(einval(format!(
            "stripe {}+{} needs {width} shard locations, got {}",
            op.k,
            op.m,
            op.shards.len()
        )));
    }
    if op.data_len > op.shard_len.saturating_mul(op.k as u64) {
        return Err(einval("data_len larger than k * shard_len"));
    }
    let mut seen = vec![false; width];
    for s in &op.shards {
        let i = s.shard_index as usize;
        if i >= width || seen[i] {
            return Err(einval(format!("bad or repeated shard index {i}")));
        }
        seen[i] = true;
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO stripes (bucket, k, m, shard_len, data_len, created_ns, owner) \
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING stripe_id",
    )
    .bind(&op.bucket)
    .bind(op.k as i64)
    .bind(op.m as i64)
    .bind(op.shard_len as i64)
    .bind(op.data_len as i64)
    .bind(now)
    .bind(caller)
    .fetch_one(&mut *c)
    .await?;
    for s in &op.shards {
        sqlx::query(
            "INSERT INTO stripe_shards (stripe_id, shard_index, node_id, disk_id) VALUES (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(s.shard_index as i64)
        .bind(&s.node_id)
        .bind(s.disk_id as i64)
        .execute(&mut *c)
        .await?;
    }
    extents::stripe_info(c, id as u64)
        .await?
        .ok_or_else(|| crate::MetaError::Corrupt(format!("stripe {id} vanished")))
}

/// Refuses unless `caller` may move a shard of stripe `stripe_id` with ReplaceShard: only
/// the writer that allocated it, only while it is still being written (never committed,
/// never released). A committed stripe may be shared by copies in other buckets; its
/// shards move only through the leader's own path (repair, drain, balance: MoveShard).
pub async fn check_replaceable(
    c: &mut SqliteConnection,
    stripe_id: u64,
    caller: &str,
) -> Result<()> {
    let row: Option<(i64, String, bool)> = sqlx::query_as(
        "SELECT s.committed, s.owner, \
         EXISTS(SELECT 1 FROM gc_stripes g WHERE g.stripe_id = s.stripe_id) \
         FROM stripes s WHERE s.stripe_id = ?",
    )
    .bind(stripe_id as i64)
    .fetch_optional(&mut *c)
    .await?;
    let Some((committed, owner, released)) = row else {
        return Err(fail(
            errno::ENOENT,
            "NoSuchStripe",
            format!("no stripe {stripe_id}"),
        ));
    };
    if committed != 0 || released {
        return Err(fail(
            errno::EPERM,
            "StripeCommitted",
            format!(
                "stripe {stripe_id} is committed: ReplaceShard only moves shards of a stripe \
                 its writer has not committed yet (repair and balance move committed ones)"
            ),
        ));
    }
    if owner != caller {
        return Err(fail(
            errno::EPERM,
            "NotStripeWriter",
            format!("stripe {stripe_id} is being written by another user, not {caller:?}"),
        ));
    }
    Ok(())
}

/// Moves one shard of a stripe still being written to another disk (a failed write
/// target), for its writer `caller` only (see [`check_replaceable`]).
pub async fn replace_shard(
    c: &mut SqliteConnection,
    op: &ReplaceShardOp,
    caller: &str,
) -> Result<ShardLocation> {
    check_replaceable(c, op.stripe_id, caller).await?;
    let done = sqlx::query(
        "UPDATE stripe_shards SET node_id = ?, disk_id = ? WHERE stripe_id = ? AND shard_index = ?",
    )
    .bind(&op.node_id)
    .bind(op.disk_id as i64)
    .bind(op.stripe_id as i64)
    .bind(op.shard_index as i64)
    .execute(&mut *c)
    .await?;
    if done.rows_affected() == 0 {
        return Err(fail(
            errno::ENOENT,
            "NoSuchShard",
            format!("stripe {} has no shard {}", op.stripe_id, op.shard_index),
        ));
    }
    Ok(ShardLocation {
        shard_index: op.shard_index,
        node_id: op.node_id.clone(),
        node_addr: String::new(),
        disk_id: op.disk_id,
        cap: None,
        ..Default::default()
    })
}

/// Overlays written extents onto a regular file: covered ranges are replaced, size =
/// max(size, end of the written range), version + 1, mtime from the request (or now).
/// Inline content stays as the base layer under the extents. ESTALE if `expect_version`
/// no longer matches.
pub async fn commit_write(
    c: &mut SqliteConnection,
    r: &CommitWriteRequest,
    now: i64,
) -> Result<Attr> {
    let inode = tree::inode_in(c, &r.bucket, r.ino).await?;
    if inode.is_dir() {
        return Err(fail(
            errno::EISDIR,
            "IsADirectory",
            format!("inode {} is a directory", r.ino),
        ));
    }
    if !inode.is_file() {
        return Err(einval(format!("inode {} is not a regular file", r.ino)));
    }
    if let Some(v) = r.expect_version
        && v != inode.version
    {
        return Err(fail(
            errno::ESTALE,
            "Stale",
            format!(
                "inode {} is at version {}, expected {v}",
                r.ino, inode.version
            ),
        ));
    }
    if !r.inline_data.is_empty() {
        return commit_inline(c, r, inode, now).await;
    }
    let mut end = inode.size;
    for e in &r.extents {
        extents::validate(c, Some(&r.bucket), e).await?;
        end = end.max(e.file_offset + e.len);
    }
    for e in &r.extents {
        extents::overlay(c, r.ino, e, now).await?;
    }
    let mtime = if r.mtime_ns != 0 { r.mtime_ns } else { now };
    let row = sqlx::query(
        "UPDATE inodes SET size = ?, version = version + 1, mtime_ns = ?, ctime_ns = ?, \
         etag = NULL WHERE ino = ? RETURNING *",
    )
    .bind(end as i64)
    .bind(mtime)
    .bind(now)
    .bind(r.ino as i64)
    .fetch_one(&mut *c)
    .await?;
    Ok(crate::inode::Inode::from_row(&row)?.attr())
}

/// The inline form of CommitWrite: the bytes are laid over the file's inline content
/// (zero-filled up to the old size). Only for files without extents whose new size stays
/// within [`MAX_INLINE_BYTES`]; otherwise InlineNotPossible, and the writer writes stripes.
async fn commit_inline(
    c: &mut SqliteConnection,
    r: &CommitWriteRequest,
    inode: crate::inode::Inode,
    now: i64,
) -> Result<Attr> {
    if !r.extents.is_empty() {
        return Err(einval(
            "a CommitWrite carries either extents or inline data",
        ));
    }
    let end = r
        .inline_offset
        .checked_add(r.inline_data.len() as u64)
        .ok_or_else(|| einval("inline_offset + length overflows"))?;
    let new_size = end.max(inode.size);
    let not_possible = |why: &str| {
        fail(
            errno::EFBIG,
            INLINE_NOT_POSSIBLE,
            format!(
                "inode {} cannot hold {new_size} bytes inline (limit {MAX_INLINE_BYTES}{why})",
                r.ino
            ),
        )
    };
    if new_size > MAX_INLINE_BYTES as u64 {
        return Err(not_possible(""));
    }
    let mut data = inode.inline_data.unwrap_or_default();
    data.resize(new_size as usize, 0);
    let at = r.inline_offset as usize;
    data[at..at + r.inline_data.len()].copy_from_slice(&r.inline_data);
    let mtime = if r.mtime_ns != 0 { r.mtime_ns } else { now };
    // The check that the file has no extents rides in the update (one statement, not
    // three, on every small file's close): no row back means it has some.
    let row = sqlx::query(
        "UPDATE inodes SET size = ?, inline_data = ?, version = version + 1, mtime_ns = ?, \
         ctime_ns = ?, etag = NULL \
         WHERE ino = ? AND NOT EXISTS (SELECT 1 FROM extents WHERE ino = inodes.ino) RETURNING *",
    )
    .bind(new_size as i64)
    .bind(&data)
    .bind(mtime)
    .bind(now)
    .bind(r.ino as i64)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        Some(row) => Ok(crate::inode::Inode::from_row(&row)?.attr()),
        None => Err(not_possible(", the file has extents")),
    }
}
