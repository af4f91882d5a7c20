//! Read queries, one per read RPC. Each runs in one read transaction (a consistent
//! snapshot) on the pool, except the two-statement Lookup; domain failures come back as
//! `MetaError::Failure`. Shard locations carry node_id and disk_id; the master fills
//! node_addr and capabilities. Stripe bookkeeping reads (refcounts, stripes on a disk, GC
//! candidates) are in `stripe_reads.rs` and re-exported here.

use crate::accounts::{self, bucket_from_row, user_from_row};
use crate::error::{Result, einval, fail, no_such_key};
use crate::inode::Inode;
use crate::objmeta::{self, Owner};
use crate::{extents, listing, multipart, objects, tree};
use kdss_common::rpc_error::errno;
use kdss_proto::master::*;
use sqlx::{Row, SqlitePool};

pub use crate::stripe_reads::*;

/// Entries a ReadDir returns when the request gives no limit.
pub const READDIR_DEFAULT_LIMIT: u32 = 1000;

/// Lookup: the attributes of `parent/name` (ENOENT, ENOTDIR). ".." is the directory's
/// parent in the tree ([`tree::dotdot`]), so a client can walk up from any directory it
/// holds only by number.
pub async fn lookup(pool: &SqlitePool, r: &LookupRequest) -> Result<AttrReply> {
    // No transaction (BEGIN and ROLLBACK would be two more hand-offs to the sqlx worker on
    // the busiest read of a mount): a name is one statement; ".." is three, and a change
    // between them answers as if the lookup came just before or just after it.
    let mut c = pool.acquire().await?;
    if r.name == ".." {
        tree::dir_in(&mut c, &r.bucket, r.parent).await?;
        let up = tree::dotdot(&mut c, r.parent).await?;
        return Ok(AttrReply {
            attr: Some(tree::inode_in(&mut c, &r.bucket, up).await?.attr()),
            parent: None,
        });
    }
    match tree::entry_in(&mut c, &r.bucket, r.parent, &r.name).await? {
        Some((_, i)) => Ok(AttrReply {
            attr: Some(i.attr()),
            parent: None,
        }),
        None => Err(crate::error::enoent(&r.name)),
    }
}

/// GetAttr (also answers for unlinked inodes still open).
pub async fn getattr(pool: &SqlitePool, r: &GetAttrRequest) -> Result<AttrReply> {
    let mut c = pool.acquire().await?;
    Ok(AttrReply {
        attr: Some(tree::inode_in(&mut c, &r.bucket, r.ino).await?.attr()),
        parent: None,
    })
}

/// Readlink (EINVAL when not a symlink).
pub async fn readlink(pool: &SqlitePool, r: &ReadlinkRequest) -> Result<ReadlinkReply> {
    let mut c = pool.acquire().await?;
    let i = tree::inode_in(&mut c, &r.bucket, r.ino).await?;
    match i.symlink {
        Some(target) if i.kind == FileKind::Symlink as i32 => Ok(ReadlinkReply { target }),
        _ => Err(einval(format!("inode {} is not a symlink", r.ino))),
    }
}

/// ReadDir: entries after `cookie` in dentry-id order, so a cookie stays valid while the
/// directory changes ("." and ".." are the FUSE layer's). Limit 0 = 1000.
pub async fn readdir(pool: &SqlitePool, r: &ReadDirRequest) -> Result<ReadDirReply> {
    let mut c = pool.begin().await?;
    tree::dir_in(&mut c, &r.bucket, r.ino).await?;
    let limit = if r.limit == 0 {
        READDIR_DEFAULT_LIMIT
    } else {
        r.limit.min(10_000)
    };
    let rows = sqlx::query(
        "SELECT d.id AS cookie, d.name AS dname, i.* FROM dentries d JOIN inodes i ON i.ino = d.ino \
         WHERE d.parent = ? AND d.id > ? ORDER BY d.id LIMIT ?",
    )
    .bind(r.ino as i64)
    .bind(r.cookie.min(i64::MAX as u64) as i64)
    .bind(limit as i64 + 1)
    .fetch_all(&mut *c)
    .await?;
    let eof = rows.len() <= limit as usize;
    let mut entries = Vec::with_capacity(rows.len().min(limit as usize));
    for row in rows.iter().take(limit as usize) {
        let i = Inode::from_row(row)?;
        entries.push(DirEntry {
            name: row.try_get("dname")?,
            ino: i.ino,
            kind: i.kind,
            cookie: row.try_get::<i64, _>("cookie")? as u64,
            attr: r.plus.then(|| i.attr()),
        });
    }
    Ok(ReadDirReply { entries, eof })
}

/// GetXattr (ENODATA when absent).
pub async fn get_xattr(pool: &SqlitePool, r: &GetXattrRequest) -> Result<GetXattrReply> {
    let mut c = pool.begin().await?;
    tree::inode_in(&mut c, &r.bucket, r.ino).await?;
    let v: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM xattrs WHERE ino = ? AND name = ?")
            .bind(r.ino as i64)
            .bind(&r.name)
            .fetch_optional(&mut *c)
            .await?;
    v.map(|value| GetXattrReply { value })
        .ok_or_else(|| fail(errno::ENODATA, "NoData", format!("no xattr {:?}", r.name)))
}

/// ListXattr, names in byte order.
pub async fn list_xattr(pool: &SqlitePool, r: &ListXattrRequest) -> Result<ListXattrReply> {
    let mut c = pool.begin().await?;
    tree::inode_in(&mut c, &r.bucket, r.ino).await?;
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM xattrs WHERE ino = ? ORDER BY name")
            .bind(r.ino as i64)
            .fetch_all(&mut *c)
            .await?;
    Ok(ListXattrReply { names })
}

/// GetExtents: the extents overlapping `[offset, offset+len)` (len 0 = to the end),
/// untrimmed, the stripes they name, the attributes, and the inline content (the base
/// layer the extents overlay; bytes past it and past every extent read as zeros).
pub async fn get_extents(pool: &SqlitePool, r: &GetExtentsRequest) -> Result<GetExtentsReply> {
    let mut c = pool.begin().await?;
    let i = tree::inode_in(&mut c, &r.bucket, r.ino).await?;
    if i.is_dir() {
        return Err(fail(
            errno::EISDIR,
            "IsADirectory",
            format!("inode {} is a directory", r.ino),
        ));
    }
    let end = if r.len == 0 {
        u64::MAX
    } else {
        r.offset.saturating_add(r.len)
    };
    let list = extents::overlapping(&mut c, r.ino, r.offset, end).await?;
    let stripes = extents::stripes_of(&mut c, &list).await?;
    Ok(GetExtentsReply {
        attr: Some(i.attr()),
        extents: list,
        stripes,
        inline_data: i.inline_data.unwrap_or_default(),
    })
}

/// HeadObject: the object's info with its metadata, and with `with_extents` its whole
/// extent map, stripes and inline content. NoSuchKey for directories that are not
/// explicit markers, symlinks and missing keys.
pub async fn head_object(pool: &SqlitePool, r: &HeadObjectRequest) -> Result<HeadObjectReply> {
    let mut c = pool.begin().await?;
    let b = accounts::need_bucket(&mut c, &r.bucket).await?;
    let Some((_, _, i)) = objects::object_inode(&mut c, &b, &r.key).await? else {
        return Err(no_such_key(&r.key));
    };
    let info = objects::info(&mut c, &r.key, &i).await?;
    let mut reply = HeadObjectReply {
        info: Some(info),
        ..Default::default()
    };
    if r.with_extents && !i.is_dir() {
        reply.extents = extents::all(&mut c, i.ino).await?;
        reply.stripes = extents::stripes_of(&mut c, &reply.extents).await?;
        reply.inline_data = i.inline_data.unwrap_or_default();
    }
    Ok(reply)
}

/// ListObjects (see [`listing`]).
pub async fn list_objects(pool: &SqlitePool, r: &ListObjectsRequest) -> Result<ListObjectsReply> {
    let mut c = pool.begin().await?;
    listing::list_objects(&mut c, r).await
}

/// ListParts of an upload, by part number after `part_number_marker` (max 1000).
pub async fn list_parts(pool: &SqlitePool, r: &ListPartsRequest) -> Result<ListPartsReply> {
    let mut c = pool.begin().await?;
    let seq = multipart::upload_seq(&mut c, &r.bucket, &r.key, &r.upload_id).await?;
    let max = if r.max_parts == 0 {
        1000
    } else {
        r.max_parts.min(1000)
    };
    let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(
        "SELECT part_number, size, etag, mtime_ns FROM parts WHERE seq = ? AND part_number > ? \
         ORDER BY part_number LIMIT ?",
    )
    .bind(seq)
    .bind(r.part_number_marker as i64)
    .bind(max as i64 + 1)
    .fetch_all(&mut *c)
    .await?;
    let is_truncated = rows.len() > max as usize;
    let parts: Vec<PartInfo> = rows
        .into_iter()
        .take(max as usize)
        .map(|(n, size, etag, mtime)| PartInfo {
            part_number: n as u32,
            size: size as u64,
            etag: format!("\"{etag}\""),
            mtime_ns: mtime,
        })
        .collect();
    let next = if is_truncated {
        parts.last().map(|p| p.part_number).unwrap_or(0)
    } else {
        0
    };
    Ok(ListPartsReply {
        parts,
        is_truncated,
        next_part_number_marker: next,
    })
}

/// ListMultipartUploads: uploads in progress by key then initiation order, after
/// (key_marker, upload_id_marker), under `prefix` (max 1000).
pub async fn list_multipart_uploads(
    pool: &SqlitePool,
    r: &ListMultipartUploadsRequest,
) -> Result<ListMultipartUploadsReply> {
    let mut c = pool.begin().await?;
    accounts::need_bucket(&mut c, &r.bucket).await?;
    let max = if r.max_uploads == 0 {
        1000
    } else {
        r.max_uploads.min(1000)
    };
    let marker_seq: i64 = if r.upload_id_marker.is_empty() {
        i64::MAX
    } else {
        sqlx::query_scalar("SELECT seq FROM uploads WHERE upload_id = ?")
            .bind(&r.upload_id_marker)
            .fetch_optional(&mut *c)
            .await?
            .unwrap_or(i64::MAX)
    };
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT key, upload_id, initiated_ns FROM uploads WHERE bucket = ? \
         AND substr(key, 1, length(?)) = ? AND (key > ? OR (key = ? AND seq > ?)) \
         ORDER BY key, seq LIMIT ?",
    )
    .bind(&r.bucket)
    .bind(&r.prefix)
    .bind(&r.prefix)
    .bind(&r.key_marker)
    .bind(&r.key_marker)
    .bind(if r.upload_id_marker.is_empty() {
        i64::MAX
    } else {
        marker_seq
    })
    .bind(max as i64 + 1)
    .fetch_all(&mut *c)
    .await?;
    let is_truncated = rows.len() > max as usize;
    let uploads = rows
        .into_iter()
        .take(max as usize)
        .map(|(key, upload_id, initiated_ns)| MultipartUpload {
            key,
            upload_id,
            initiated_ns,
        })
        .collect();
    Ok(ListMultipartUploadsReply {
        uploads,
        is_truncated,
    })
}

/// GetBucket (NoSuchBucket).
pub async fn get_bucket(pool: &SqlitePool, r: &BucketRequest) -> Result<BucketReply> {
    let mut c = pool.acquire().await?;
    Ok(BucketReply {
        bucket: Some(accounts::need_bucket(&mut c, &r.name).await?),
    })
}

/// Every bucket, by name.
pub async fn list_buckets(pool: &SqlitePool) -> Result<ListBucketsReply> {
    let rows = sqlx::query("SELECT * FROM buckets ORDER BY name")
        .fetch_all(pool)
        .await?;
    let buckets = rows.iter().map(bucket_from_row).collect::<Result<_>>()?;
    Ok(ListBucketsReply { buckets })
}

/// Every user, by access key (no secrets).
pub async fn list_users(pool: &SqlitePool) -> Result<ListUsersReply> {
    let rows = sqlx::query("SELECT * FROM users ORDER BY access_key")
        .fetch_all(pool)
        .await?;
    let users = rows.iter().map(user_from_row).collect::<Result<_>>()?;
    Ok(ListUsersReply { users })
}

/// A user with its secret and role, for authentication (None when unknown).
pub async fn user_by_access_key(
    pool: &SqlitePool,
    access_key: &str,
) -> Result<Option<GetUserSecretReply>> {
    let row = sqlx::query("SELECT * FROM users WHERE access_key = ?")
        .bind(access_key)
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        Ok(GetUserSecretReply {
            user: Some(user_from_row(&r)?),
            secret_key: r.try_get("secret_key")?,
        })
    })
    .transpose()
}

/// May the user reach the bucket? Admins reach every bucket; others the buckets they own
/// or were granted. False for a bucket that does not exist (unless admin).
pub async fn bucket_access(
    pool: &SqlitePool,
    bucket: &str,
    access_key: &str,
    role: i32,
) -> Result<bool> {
    if role == Role::Admin as i32 {
        return Ok(true);
    }
    let ok: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM buckets WHERE name = ? AND owner = ? \
         UNION ALL SELECT 1 FROM grants WHERE bucket = ? AND access_key = ? LIMIT 1",
    )
    .bind(bucket)
    .bind(access_key)
    .bind(bucket)
    .bind(access_key)
    .fetch_optional(pool)
    .await?;
    Ok(ok.is_some())
}

/// Number of inodes of a bucket (statfs `files`).
pub async fn file_count(pool: &SqlitePool, bucket: &str) -> Result<u64> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inodes WHERE bucket = ?")
        .bind(bucket)
        .fetch_one(pool)
        .await?;
    Ok(n as u64)
}

/// StatFs inputs the namespace knows: block size, files, name_max. The master fills
/// blocks/blocks_free/blocks_avail from cluster capacity and the bucket's EC policy.
pub async fn statfs(pool: &SqlitePool, r: &StatFsRequest) -> Result<StatFsReply> {
    let mut c = pool.acquire().await?;
    accounts::need_bucket(&mut c, &r.bucket).await?;
    drop(c);
    let files = file_count(pool, &r.bucket).await?;
    Ok(StatFsReply {
        block_size: 4096,
        files,
        files_free: (i64::MAX as u64) - files,
        name_max: crate::names::NAME_MAX as u32,
        ..Default::default()
    })
}

/// The object metadata of an inode (for a gateway answering GET with headers).
pub async fn object_meta(pool: &SqlitePool, ino: u64) -> Result<ObjectMeta> {
    let mut c = pool.acquire().await?;
    objmeta::read(&mut c, Owner::Inode(ino)).await
}
