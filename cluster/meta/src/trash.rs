//! The recycle bin (docs/architecture.md, "Space lifecycle"). When the last link of a regular file
//! goes — S3 DELETE / DeleteObjects, a PUT or CopyObject over it, unlink, rename over it —
//! its inode is kept (nlink 0) with its extents, so every stripe it references keeps its
//! reference, and a `trash` row names it with the path it had and the time of deletion.
//!
//! - Restore links the inode back at that path (creating missing parents as implicit
//!   directories); if the path is taken now the restore fails with `RestoreConflict` and
//!   nothing changes.
//! - Purge deletes the row; the inode is then freed unless a handle still holds it open
//!   (it goes at the last Release), and its stripes lose a reference each: those at zero
//!   go to `gc_stripes`, from which the collector deletes their shards.
//! - What a partial overwrite or a truncate drops, and the parts of an aborted multipart
//!   upload, are not restorable items: their stripe references are released at once.
//!
//! Retention lives with the master (`[gc] auto_gc_pending_hours`): its collector proposes
//! a purge of the items deleted before `now - retention`; apply itself never reads a clock.

use crate::error::{Result, einval, fail};
use crate::names::parse_key;
use crate::{bucket_rows, objects, tree};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{
    ListTrashReply, ListTrashRequest, PurgeTrashReply, PurgeTrashRequest, RestoreTrashReply,
    RestoreTrashRequest, TrashItem,
};
use sqlx::{SqliteConnection, SqlitePool};

/// Items a ListTrash returns when the request gives no limit.
pub const LIST_DEFAULT_LIMIT: u32 = 1000;

/// The path of directory `dir` below its bucket root ("" for the root), from its chain of
/// dentries read in one recursive statement (a directory has exactly one dentry). Every
/// unlink of a file asks this for its recycle-bin item, so a walk of one query per level
/// was one hand-off to the database worker per level on each unlink.
pub async fn dir_path(c: &mut SqliteConnection, dir: u64) -> Result<String> {
    let parts: Vec<String> = sqlx::query_scalar(
        "WITH RECURSIVE up (ino, name, depth) AS ( \
           SELECT parent, name, 0 FROM dentries WHERE ino = ? \
           UNION ALL \
           SELECT d.parent, d.name, up.depth + 1 FROM dentries d JOIN up ON d.ino = up.ino \
           WHERE up.depth < 100000) \
         SELECT name FROM up ORDER BY depth DESC",
    )
    .bind(dir as i64)
    .fetch_all(&mut *c)
    .await?;
    Ok(parts.join("/"))
}

/// Puts the regular file `ino`, whose last link `name` in `parent` was just removed, into
/// the bin (idempotent: an inode has at most one item).
pub async fn bin(
    c: &mut SqliteConnection,
    ino: u64,
    parent: u64,
    name: &str,
    now: i64,
) -> Result<()> {
    let dir = dir_path(c, parent).await?;
    let path = if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    };
    sqlx::query(
        "INSERT OR IGNORE INTO trash (bucket, path, ino, size, deleted_ns) \
         SELECT bucket, ?, ino, size, ? FROM inodes WHERE ino = ?",
    )
    .bind(&path)
    .bind(now)
    .bind(ino as i64)
    .execute(&mut *c)
    .await?;
    Ok(())
}

fn no_such_item(id: u64) -> crate::MetaError {
    fail(
        errno::ENOENT,
        "NoSuchTrashItem",
        format!("recycle bin item {id} does not exist (restored or purged?)"),
    )
}

/// Restores item `r.id` at the path it had. `RestoreConflict` (EEXIST) when something
/// else lives at that path now, or a parent is a file; `NoSuchBucket` when its bucket was
/// deleted. Nothing changes on failure.
pub async fn restore(
    c: &mut SqliteConnection,
    r: &RestoreTrashRequest,
    now: i64,
) -> Result<RestoreTrashReply> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT bucket, path, ino FROM trash WHERE id = ?")
            .bind(r.id as i64)
            .fetch_optional(&mut *c)
            .await?;
    let Some((bucket, path, ino)) = row else {
        return Err(no_such_item(r.id));
    };
    let b = bucket_rows::need_bucket(c, &bucket).await?;
    let kp = parse_key(&path)?;
    let inode = tree::get(c, ino as u64).await?.ok_or_else(|| {
        crate::MetaError::Corrupt(format!("trash item {} lost inode {ino}", r.id))
    })?;
    let taken = |what: String| {
        fail(
            errno::EEXIST,
            "RestoreConflict",
            format!("cannot restore {bucket}/{path}: {what}; move it away first"),
        )
    };
    let parent = match objects::ensure_parents(c, &b, &kp, now, &inode.owner).await {
        Ok(p) => p,
        Err(e) if e.failure().is_some() => return Err(taken("a parent is a file now".into())),
        Err(e) => return Err(e),
    };
    let name = kp.segments[kp.segments.len() - 1];
    if tree::child(c, parent, name).await?.is_some() {
        return Err(taken("the path is taken now".into()));
    }
    tree::add_dentry(c, parent, name, ino as u64, false).await?;
    sqlx::query("UPDATE inodes SET nlink = 1, ctime_ns = ? WHERE ino = ?")
        .bind(now)
        .bind(ino)
        .execute(&mut *c)
        .await?;
    tree::touch_dir(c, parent, now).await?;
    sqlx::query("DELETE FROM trash WHERE id = ?")
        .bind(r.id as i64)
        .execute(&mut *c)
        .await?;
    Ok(RestoreTrashReply { bucket, path })
}

/// Purges the items `r` selects (by id; or deleted before a time; or all; each optionally
/// within one bucket). Their inodes are freed unless still open; their stripes lose a
/// reference each. EINVAL when the request selects nothing explicitly.
pub async fn purge(
    c: &mut SqliteConnection,
    r: &PurgeTrashRequest,
    now: i64,
) -> Result<PurgeTrashReply> {
    let by_bucket = !r.bucket.is_empty();
    let rows: Vec<(i64, i64, i64)> = if !r.ids.is_empty() {
        let mut out = Vec::with_capacity(r.ids.len());
        for id in &r.ids {
            let row: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT t.id, t.ino, i.size FROM trash t JOIN inodes i ON i.ino = t.ino \
                 WHERE t.id = ? AND (t.bucket = ? OR NOT ?)",
            )
            .bind(*id as i64)
            .bind(&r.bucket)
            .bind(by_bucket)
            .fetch_optional(&mut *c)
            .await?;
            out.extend(row);
        }
        out
    } else if r.all || r.deleted_before_ns > 0 {
        let before = if r.all { i64::MAX } else { r.deleted_before_ns };
        sqlx::query_as(
            "SELECT t.id, t.ino, i.size FROM trash t JOIN inodes i ON i.ino = t.ino \
             WHERE t.deleted_ns < ? AND (t.bucket = ? OR NOT ?) ORDER BY t.id",
        )
        .bind(before)
        .bind(&r.bucket)
        .bind(by_bucket)
        .fetch_all(&mut *c)
        .await?
    } else {
        return Err(einval(
            "purge needs item ids, a deletion time bound, or `all`",
        ));
    };
    let mut reply = PurgeTrashReply::default();
    for (id, ino, size) in rows {
        sqlx::query("DELETE FROM trash WHERE id = ?")
            .bind(id)
            .execute(&mut *c)
            .await?;
        tree::free_if_unreferenced(c, ino as u64, now).await?;
        reply.items += 1;
        reply.bytes += size.max(0) as u64;
    }
    Ok(reply)
}

/// ListTrash: items after `after_id` by id, optionally of one bucket. `retention_ns` (0 =
/// kept until purged by hand) fills each item's purge due time.
pub async fn list(
    pool: &SqlitePool,
    r: &ListTrashRequest,
    retention_ns: i64,
) -> Result<ListTrashReply> {
    let limit = if r.limit == 0 {
        LIST_DEFAULT_LIMIT
    } else {
        r.limit.min(10_000)
    };
    let rows: Vec<(i64, String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT t.id, t.bucket, t.path, t.ino, i.size, t.deleted_ns FROM trash t \
         JOIN inodes i ON i.ino = t.ino WHERE t.id > ? AND (t.bucket = ? OR NOT ?) \
         ORDER BY t.id LIMIT ?",
    )
    .bind(r.after_id as i64)
    .bind(&r.bucket)
    .bind(!r.bucket.is_empty())
    .bind(limit as i64)
    .fetch_all(pool)
    .await?;
    let items = rows
        .into_iter()
        .map(|(id, bucket, path, ino, size, deleted_ns)| TrashItem {
            id: id as u64,
            bucket,
            path,
            size: size.max(0) as u64,
            deleted_ns,
            purge_due_ns: if retention_ns > 0 {
                deleted_ns.saturating_add(retention_ns)
            } else {
                0
            },
            ino: ino as u64,
        })
        .collect();
    Ok(ListTrashReply {
        items,
        retention_hours: 0,
    })
}

/// (items, logical bytes) in the bin.
pub async fn totals(pool: &SqlitePool) -> Result<(u64, u64)> {
    let (n, bytes): (i64, Option<i64>) =
        sqlx::query_as("SELECT COUNT(*), SUM(i.size) FROM trash t JOIN inodes i ON i.ino = t.ino")
            .fetch_one(pool)
            .await?;
    Ok((n.max(0) as u64, bytes.unwrap_or(0).max(0) as u64))
}
