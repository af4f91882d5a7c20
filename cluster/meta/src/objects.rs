//! The S3 view of a bucket's tree: object key `a/b/c.txt` is the file `/a/b/c.txt`.
//!
//! Rules (docs/architecture.md, "One namespace, two doors"), each tested in `tests/objects.rs`:
//! - Keys that cannot be a path (empty segment, `.`/`..`, segment > 255 bytes, NUL) are
//!   refused with `InvalidArgument` (`KeyTooLongError` for length) and nothing changes.
//! - PutObject creates missing parent directories marked *implicit*. Implicit directories
//!   are never listed as objects and vanish with their last entry on every delete path
//!   (DeleteObject, DeleteObjects, unlink, rmdir, and a rename that empties them).
//! - A key ending in `/` with an empty body is an *explicit* directory (a marker): it
//!   stays when emptied and lists as `dir/`. Directories made through ksfs are explicit.
//!   A non-empty body on such a key is refused. Deleting `dir/` removes the marker: an
//!   empty directory goes, a non-empty one becomes implicit.
//! - Conflicts, code `ObjectConflict` (the gateway answers 409): PUT `a/b` when `a` is a
//!   file (errno ENOTDIR); PUT `a` when `a` is a directory, implicit or not (EISDIR);
//!   PUT `a/` when `a` is a file (ENOTDIR). Nothing changes.
//! - PUT over an existing file replaces it atomically: a new inode takes the dentry, the
//!   old one loses a link (readers holding it open finish on the old version; its
//!   stripes are released when the last link and open are gone).
//! - GET/HEAD of `a` when `a` is a directory, or of `a/` when it is implicit: NoSuchKey.
//!   Symlinks and device nodes are not objects (not listed, NoSuchKey).
//! - ETag: stored (unquoted) for objects written through S3; derived for content written
//!   through ksfs, see [`crate::inode::Inode::etag_quoted`].

use crate::error::{MetaError, Result, einval, fail, no_such_key};
use crate::inode::{Inode, unquote};
use crate::names::{KeyPath, parse_key};
use crate::objmeta::{self, Owner};
use crate::tree::{self, NewInode};
use crate::{bucket_rows, extents};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{
    BucketInfo, CopyObjectRequest, DeleteObjectsRequest, DeleteResult, Extent, FileKind,
    ObjectInfo, ObjectMeta, PutObjectRequest,
};
use sqlx::SqliteConnection;

fn conflict(errno: i32, message: String) -> MetaError {
    fail(errno, "ObjectConflict", message)
}

/// Walks a key's segments from the bucket root: (parent dir, dentry id, inode) of the
/// last segment, or None when any part is missing or a parent is not a directory.
pub async fn resolve(
    c: &mut SqliteConnection,
    root: u64,
    kp: &KeyPath<'_>,
) -> Result<Option<(u64, i64, Inode)>> {
    let mut dir = root;
    let n = kp.segments.len();
    for (i, seg) in kp.segments.iter().enumerate() {
        let Some((id, inode)) = tree::child(c, dir, seg).await? else {
            return Ok(None);
        };
        if i + 1 == n {
            return Ok(Some((dir, id, inode)));
        }
        if !inode.is_dir() {
            return Ok(None);
        }
        dir = inode.ino;
    }
    Ok(None)
}

/// The object a key names, if it is one: a regular file for `a`, an explicit directory
/// for `a/`.
pub async fn object_inode(
    c: &mut SqliteConnection,
    b: &BucketInfo,
    key: &str,
) -> Result<Option<(u64, i64, Inode)>> {
    let Ok(kp) = parse_key(key) else {
        return Ok(None);
    };
    let found = resolve(c, b.root_ino, &kp).await?;
    Ok(found.filter(|(_, _, i)| {
        if kp.dir {
            i.is_dir() && !i.implicit
        } else {
            i.is_file()
        }
    }))
}

/// The ObjectInfo of an object inode. Checksums and parts describe the content S3 wrote:
/// once ksfs rewrote it (the stored ETag is gone) they are not reported.
pub async fn info(c: &mut SqliteConnection, key: &str, i: &Inode) -> Result<ObjectInfo> {
    let mut meta = objmeta::read(c, Owner::Inode(i.ino)).await?;
    if i.etag.is_none() {
        meta.checksums.clear();
        meta.checksum_type.clear();
        meta.parts.clear();
    }
    Ok(ObjectInfo {
        key: key.to_string(),
        size: if i.is_dir() { 0 } else { i.size },
        etag: i.etag_quoted(),
        mtime_ns: i.mtime_ns,
        meta: Some(meta),
        ino: i.ino,
        is_dir: i.is_dir(),
        owner: i.owner.clone(),
        version: i.version,
    })
}

/// Creates the missing parent directories of a key (implicit); returns the parent of
/// the last segment. ObjectConflict when a parent is not a directory.
pub(crate) async fn ensure_parents(
    c: &mut SqliteConnection,
    b: &BucketInfo,
    kp: &KeyPath<'_>,
    now: i64,
    caller: &str,
) -> Result<u64> {
    let mut dir = b.root_ino;
    for (i, seg) in kp.segments[..kp.segments.len() - 1].iter().enumerate() {
        dir = match tree::child(c, dir, seg).await? {
            Some((_, inode)) if inode.is_dir() => inode.ino,
            Some(_) => {
                let path = kp.segments[..=i].join("/");
                return Err(conflict(
                    errno::ENOTDIR,
                    format!("{path:?} is an object, not a directory"),
                ));
            }
            None => {
                let d = tree::create_inode(
                    c,
                    NewInode {
                        bucket: &b.name,
                        kind: FileKind::Directory,
                        mode: b.default_dir_mode,
                        uid: b.default_uid,
                        gid: b.default_gid,
                        rdev: 0,
                        now,
                        symlink: None,
                        implicit: true,
                        owner: caller,
                    },
                )
                .await?;
                tree::add_dentry(c, dir, seg, d.ino, true).await?;
                tree::touch_dir(c, dir, now).await?;
                d.ino
            }
        };
    }
    Ok(dir)
}

/// What a new object holds.
pub struct Body<'a> {
    /// Extents, offsets from 0 (already validated by the caller).
    pub extents: Vec<Extent>,
    /// Size in bytes.
    pub size: u64,
    /// ETag, unquoted.
    pub etag: String,
    /// Inline content (base layer).
    pub inline: &'a [u8],
    /// Metadata to store.
    pub meta: ObjectMeta,
}

/// Writes an object at `key`: creates parents, replaces an existing file atomically, or
/// makes a directory marker explicit.
pub async fn write_object(
    c: &mut SqliteConnection,
    b: &BucketInfo,
    key: &str,
    kp: &KeyPath<'_>,
    body: Body<'_>,
    now: i64,
    caller: &str,
) -> Result<ObjectInfo> {
    if kp.dir && (body.size > 0 || !body.extents.is_empty() || !body.inline.is_empty()) {
        return Err(einval(format!(
            "key {key:?} ends in '/': a directory takes no body"
        )));
    }
    if body.inline.len() as u64 > body.size {
        return Err(einval("inline data larger than the object size"));
    }
    let parent = ensure_parents(c, b, kp, now, caller).await?;
    let name = kp.segments[kp.segments.len() - 1];
    let existing = tree::child(c, parent, name).await?;
    if kp.dir {
        let ino = match existing {
            Some((_, i)) if i.is_dir() => {
                sqlx::query("UPDATE inodes SET implicit = 0, ctime_ns = ? WHERE ino = ?")
                    .bind(now)
                    .bind(i.ino as i64)
                    .execute(&mut *c)
                    .await?;
                i.ino
            }
            Some(_) => {
                return Err(conflict(
                    errno::ENOTDIR,
                    format!("{name:?} is an object, not a directory"),
                ));
            }
            None => {
                let d = tree::create_inode(
                    c,
                    NewInode {
                        bucket: &b.name,
                        kind: FileKind::Directory,
                        mode: b.default_dir_mode,
                        uid: b.default_uid,
                        gid: b.default_gid,
                        rdev: 0,
                        now,
                        symlink: None,
                        implicit: false,
                        owner: caller,
                    },
                )
                .await?;
                tree::add_dentry(c, parent, name, d.ino, true).await?;
                tree::touch_dir(c, parent, now).await?;
                d.ino
            }
        };
        objmeta::write(c, Owner::Inode(ino), &body.meta).await?;
        let i = tree::get(c, ino)
            .await?
            .ok_or_else(|| MetaError::Corrupt("dir vanished".into()))?;
        return info(c, key, &i).await;
    }
    if let Some((_, i)) = &existing
        && i.is_dir()
    {
        return Err(conflict(
            errno::EISDIR,
            format!("{key:?} is a directory (it has objects below it)"),
        ));
    }
    let new = tree::create_inode(
        c,
        NewInode {
            bucket: &b.name,
            kind: FileKind::Regular,
            mode: b.default_file_mode,
            uid: b.default_uid,
            gid: b.default_gid,
            rdev: 0,
            now,
            symlink: None,
            implicit: false,
            owner: caller,
        },
    )
    .await?;
    let inline = (!body.inline.is_empty()).then_some(body.inline);
    sqlx::query("UPDATE inodes SET size = ?, etag = ?, inline_data = ? WHERE ino = ?")
        .bind(body.size as i64)
        .bind(unquote(&body.etag))
        .bind(inline)
        .bind(new.ino as i64)
        .execute(&mut *c)
        .await?;
    for e in &body.extents {
        extents::insert(c, new.ino, e).await?;
    }
    objmeta::write(c, Owner::Inode(new.ino), &body.meta).await?;
    if let Some((id, old)) = existing {
        tree::remove_dentry(c, id, parent, false).await?;
        tree::drop_link(c, old.ino, parent, name, now).await?;
    }
    tree::add_dentry(c, parent, name, new.ino, false).await?;
    tree::touch_dir(c, parent, now).await?;
    let i = tree::get(c, new.ino)
        .await?
        .ok_or_else(|| MetaError::Corrupt("object vanished".into()))?;
    info(c, key, &i).await
}

/// PutObject: validates the key, the conditions (If-Match / If-None-Match: *) and the
/// extents, then writes.
pub async fn put_object(
    c: &mut SqliteConnection,
    r: &PutObjectRequest,
    now: i64,
    caller: &str,
) -> Result<ObjectInfo> {
    let b = bucket_rows::need_bucket(c, &r.bucket).await?;
    let kp = parse_key(&r.key)?;
    let current = object_inode(c, &b, &r.key).await?;
    if let Some(want) = &r.if_match {
        let Some((_, _, i)) = &current else {
            return Err(no_such_key(&r.key));
        };
        if want.trim() != "*" && unquote(want) != unquote(&i.etag_quoted()) {
            return Err(fail(
                errno::EEXIST,
                "PreconditionFailed",
                "If-Match does not match the ETag",
            ));
        }
    }
    if r.if_none_match_star && current.is_some() {
        return Err(fail(
            errno::EEXIST,
            "PreconditionFailed",
            format!("{:?} exists (If-None-Match: *)", r.key),
        ));
    }
    let list = extents::validate_list(c, Some(&r.bucket), &r.extents, r.size).await?;
    let body = Body {
        extents: list,
        size: r.size,
        etag: r.etag.clone(),
        inline: &r.inline_data,
        meta: r.meta.clone().unwrap_or_default(),
    };
    write_object(c, &b, &r.key, &kp, body, now, caller).await
}

/// DeleteObject: true when something was deleted. Missing or invalid keys are not an
/// error (S3 semantics). Emptied implicit parents vanish.
pub async fn delete_object(
    c: &mut SqliteConnection,
    bucket: &str,
    key: &str,
    now: i64,
) -> Result<bool> {
    let b = bucket_rows::need_bucket(c, bucket).await?;
    let Ok(kp) = parse_key(key) else {
        return Ok(false);
    };
    let Some((parent, id, inode)) = object_inode(c, &b, key).await? else {
        return Ok(false);
    };
    if kp.dir {
        if tree::has_children(c, inode.ino).await? {
            sqlx::query("UPDATE inodes SET implicit = 1 WHERE ino = ?")
                .bind(inode.ino as i64)
                .execute(&mut *c)
                .await?;
            sqlx::query("DELETE FROM object_meta WHERE ino = ?")
                .bind(inode.ino as i64)
                .execute(&mut *c)
                .await?;
            return Ok(true);
        }
        tree::remove_empty_dir(c, id, parent, inode.ino, now).await?;
    } else {
        tree::remove_dentry(c, id, parent, false).await?;
        tree::touch_dir(c, parent, now).await?;
        tree::drop_link(
            c,
            inode.ino,
            parent,
            kp.segments[kp.segments.len() - 1],
            now,
        )
        .await?;
    }
    tree::prune_implicit(c, parent, now).await?;
    Ok(true)
}

/// DeleteObjects: each key on its own (a savepoint per key), a result per key.
pub async fn delete_objects(
    c: &mut SqliteConnection,
    r: &DeleteObjectsRequest,
    now: i64,
) -> Result<Vec<DeleteResult>> {
    bucket_rows::need_bucket(c, &r.bucket).await?;
    let mut out = Vec::with_capacity(r.keys.len());
    for key in &r.keys {
        sqlx::query("SAVEPOINT meta_key").execute(&mut *c).await?;
        let res = delete_object(c, &r.bucket, key, now).await;
        let result = match res {
            Ok(_) => DeleteResult {
                key: key.clone(),
                ok: true,
                code: String::new(),
                message: String::new(),
            },
            Err(MetaError::Failure(f)) => {
                sqlx::query("ROLLBACK TO meta_key").execute(&mut *c).await?;
                DeleteResult {
                    key: key.clone(),
                    ok: false,
                    code: f.code,
                    message: f.message,
                }
            }
            Err(e) => {
                sqlx::query("ROLLBACK TO meta_key").execute(&mut *c).await?;
                sqlx::query("RELEASE meta_key").execute(&mut *c).await?;
                return Err(e);
            }
        };
        sqlx::query("RELEASE meta_key").execute(&mut *c).await?;
        out.push(result);
    }
    Ok(out)
}

/// CopyObject: the destination shares the source's extents (a stripe reference each),
/// with the source's metadata (COPY) or the given one (REPLACE). The ETag is kept.
pub async fn copy_object(
    c: &mut SqliteConnection,
    r: &CopyObjectRequest,
    now: i64,
    caller: &str,
) -> Result<ObjectInfo> {
    let sb = bucket_rows::need_bucket(c, &r.src_bucket).await?;
    let db = bucket_rows::need_bucket(c, &r.dst_bucket).await?;
    let dkp = parse_key(&r.dst_key)?;
    let Some((_, _, src)) = object_inode(c, &sb, &r.src_key).await? else {
        return Err(no_such_key(&r.src_key));
    };
    let src_meta = info(c, &r.src_key, &src).await?.meta.unwrap_or_default();
    let meta = if r.replace_meta {
        // REPLACE changes the metadata; checksums and parts describe the content, kept.
        let mut m = r.meta.clone().unwrap_or_default();
        m.checksums = src_meta.checksums;
        m.checksum_type = src_meta.checksum_type;
        m.parts = src_meta.parts;
        m
    } else {
        src_meta
    };
    let list = extents::all(c, src.ino).await?;
    let inline = src.inline_data.clone().unwrap_or_default();
    let body = Body {
        extents: list,
        size: if src.is_dir() { 0 } else { src.size },
        etag: unquote(&src.etag_quoted()).to_string(),
        inline: &inline,
        meta,
    };
    write_object(c, &db, &r.dst_key, &dkp, body, now, caller).await
}
