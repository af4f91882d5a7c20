//! Primitives over the POSIX tree of a bucket: inodes, dentries, links, and freeing an
//! inode when its last link and last open are gone. Every namespace operation is built
//! from these, so the invariants (nlink, refcounts, implicit directories) live here.

use crate::error::{Result, enoent, fail};
use crate::extents;
use crate::inode::Inode;
use kdss_common::rpc_error::errno;
use kdss_proto::master::FileKind;
use sqlx::SqliteConnection;

/// Reads an inode, wherever it lives.
pub async fn get(c: &mut SqliteConnection, ino: u64) -> Result<Option<Inode>> {
    let row = sqlx::query("SELECT * FROM inodes WHERE ino = ?")
        .bind(ino as i64)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(Inode::from_row).transpose()
}

/// Reads an inode of `bucket`; ENOENT when it is absent or belongs to another bucket.
pub async fn inode_in(c: &mut SqliteConnection, bucket: &str, ino: u64) -> Result<Inode> {
    match get(c, ino).await? {
        Some(i) if i.bucket == bucket => Ok(i),
        _ => Err(enoent(format!("inode {ino}"))),
    }
}

/// Reads a directory of `bucket`: ENOENT, or ENOTDIR when it is not a directory.
pub async fn dir_in(c: &mut SqliteConnection, bucket: &str, ino: u64) -> Result<Inode> {
    let i = inode_in(c, bucket, ino).await?;
    if !i.is_dir() {
        return Err(not_a_dir(ino));
    }
    Ok(i)
}

fn not_a_dir(ino: u64) -> crate::MetaError {
    fail(
        errno::ENOTDIR,
        "NotADirectory",
        format!("inode {ino} is not a directory"),
    )
}

/// The entry `name` of directory `parent`: (dentry id, inode).
pub async fn child(
    c: &mut SqliteConnection,
    parent: u64,
    name: &str,
) -> Result<Option<(i64, Inode)>> {
    let row = sqlx::query(
        "SELECT d.id AS dentry_id, i.* FROM dentries d JOIN inodes i ON i.ino = d.ino \
         WHERE d.parent = ? AND d.name = ?",
    )
    .bind(parent as i64)
    .bind(name)
    .fetch_optional(&mut *c)
    .await?;
    match row {
        None => Ok(None),
        Some(r) => {
            use sqlx::Row;
            Ok(Some((r.try_get("dentry_id")?, Inode::from_row(&r)?)))
        }
    }
}

/// The entry `name` of directory `parent` of `bucket`, with the checks of [`dir_in`] (ENOENT,
/// ENOTDIR) made by the same statement: one round trip to the database worker instead of
/// two on the busiest paths (lookup, create, unlink).
pub async fn entry_in(
    c: &mut SqliteConnection,
    bucket: &str,
    parent: u64,
    name: &str,
) -> Result<Option<(i64, Inode)>> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT p.bucket AS parent_bucket, p.kind AS parent_kind, d.id AS dentry_id, i.* \
         FROM inodes p LEFT JOIN dentries d ON d.parent = p.ino AND d.name = ? \
         LEFT JOIN inodes i ON i.ino = d.ino WHERE p.ino = ?",
    )
    .bind(name)
    .bind(parent as i64)
    .fetch_optional(&mut *c)
    .await?;
    let Some(r) = row else {
        return Err(enoent(format!("inode {parent}")));
    };
    if r.try_get::<String, _>("parent_bucket")? != bucket {
        return Err(enoent(format!("inode {parent}")));
    }
    if r.try_get::<i64, _>("parent_kind")? != FileKind::Directory as i64 {
        return Err(not_a_dir(parent));
    }
    match r.try_get::<Option<i64>, _>("dentry_id")? {
        // A dentry whose inode row is gone would be a broken tree; read it as absent, as
        // the inner join of `child` does.
        Some(id) if r.try_get::<Option<i64>, _>("ino")?.is_some() => {
            Ok(Some((id, Inode::from_row(&r)?)))
        }
        _ => Ok(None),
    }
}

/// What a new inode looks like.
pub struct NewInode<'a> {
    pub bucket: &'a str,
    pub kind: FileKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
    pub now: i64,
    pub symlink: Option<&'a [u8]>,
    pub implicit: bool,
    pub owner: &'a str,
}

/// Inserts a new inode (nlink 2 for directories, 1 otherwise; no dentry yet).
pub async fn create_inode(c: &mut SqliteConnection, n: NewInode<'_>) -> Result<Inode> {
    let nlink = if n.kind == FileKind::Directory { 2 } else { 1 };
    let size = n.symlink.map(|s| s.len() as i64).unwrap_or(0);
    let row = sqlx::query(
        "INSERT INTO inodes (bucket, kind, mode, uid, gid, size, atime_ns, mtime_ns, ctime_ns, \
         crtime_ns, nlink, rdev, version, symlink, implicit, owner) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?) RETURNING *",
    )
    .bind(n.bucket)
    .bind(n.kind as i64)
    .bind((n.mode & 0o7777) as i64)
    .bind(n.uid as i64)
    .bind(n.gid as i64)
    .bind(size)
    .bind(n.now)
    .bind(n.now)
    .bind(n.now)
    .bind(n.now)
    .bind(nlink)
    .bind(n.rdev as i64)
    .bind(n.symlink)
    .bind(n.implicit as i64)
    .bind(n.owner)
    .fetch_one(&mut *c)
    .await?;
    Inode::from_row(&row)
}

/// The byte string children are ordered by for S3 listing: directories sort as `name/`.
pub fn sort_name(name: &str, is_dir: bool) -> Vec<u8> {
    let mut v = name.as_bytes().to_vec();
    if is_dir {
        v.push(b'/');
    }
    v
}

/// Adds the entry `name` → `ino` to `parent`; for a directory child bumps the parent's
/// nlink. Returns the dentry id (the readdir cookie).
pub async fn add_dentry(
    c: &mut SqliteConnection,
    parent: u64,
    name: &str,
    ino: u64,
    is_dir: bool,
) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO dentries (parent, name, sort_name, ino) VALUES (?, ?, ?, ?) RETURNING id",
    )
    .bind(parent as i64)
    .bind(name)
    .bind(sort_name(name, is_dir))
    .bind(ino as i64)
    .fetch_one(&mut *c)
    .await?;
    if is_dir {
        adjust_nlink(c, parent, 1).await?;
    }
    Ok(id)
}

/// Removes a dentry; for a directory child drops the parent's nlink.
pub async fn remove_dentry(
    c: &mut SqliteConnection,
    id: i64,
    parent: u64,
    is_dir: bool,
) -> Result<()> {
    sqlx::query("DELETE FROM dentries WHERE id = ?")
        .bind(id)
        .execute(&mut *c)
        .await?;
    if is_dir {
        adjust_nlink(c, parent, -1).await?;
    }
    Ok(())
}

/// Adds `delta` to an inode's nlink.
pub async fn adjust_nlink(c: &mut SqliteConnection, ino: u64, delta: i64) -> Result<()> {
    sqlx::query("UPDATE inodes SET nlink = nlink + ? WHERE ino = ?")
        .bind(delta)
        .bind(ino as i64)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Sets mtime and ctime of a directory whose entries changed; returns it as it is now (the
/// reply of a create or unlink carries it, without another read).
pub async fn touch_dir(c: &mut SqliteConnection, ino: u64, now: i64) -> Result<Option<Inode>> {
    let row = sqlx::query("UPDATE inodes SET mtime_ns = ?, ctime_ns = ? WHERE ino = ? RETURNING *")
        .bind(now)
        .bind(now)
        .bind(ino as i64)
        .fetch_optional(&mut *c)
        .await?;
    row.as_ref().map(Inode::from_row).transpose()
}

/// Does directory `ino` have any entry?
pub async fn has_children(c: &mut SqliteConnection, ino: u64) -> Result<bool> {
    let n: Option<i64> = sqlx::query_scalar("SELECT 1 FROM dentries WHERE parent = ? LIMIT 1")
        .bind(ino as i64)
        .fetch_optional(&mut *c)
        .await?;
    Ok(n.is_some())
}

/// The parent directory of a directory (None for a bucket root).
pub async fn parent_of_dir(c: &mut SqliteConnection, ino: u64) -> Result<Option<u64>> {
    let p: Option<i64> = sqlx::query_scalar("SELECT parent FROM dentries WHERE ino = ? LIMIT 1")
        .bind(ino as i64)
        .fetch_optional(&mut *c)
        .await?;
    Ok(p.map(|p| p as u64))
}

/// The directory ".." of directory `dir` names: the one holding its entry, or `dir` itself
/// for a bucket root. The kernel asks for it when it reconnects a directory's file handle
/// to the tree after a remount or a dropped dentry cache, so it must come from the tree,
/// not from what one client happened to see.
pub async fn dotdot(c: &mut SqliteConnection, dir: u64) -> Result<u64> {
    Ok(parent_of_dir(c, dir).await?.unwrap_or(dir))
}

/// Drops one link of a non-directory inode, the one named `name` in `parent` (already
/// removed from the tree): nlink - 1, ctime. When the last link of a regular file goes, the
/// file goes to the recycle bin (see [`crate::trash`]) with the path it had; other kinds
/// are freed once no link and no open handle remain.
pub async fn drop_link(
    c: &mut SqliteConnection,
    ino: u64,
    parent: u64,
    name: &str,
    now: i64,
) -> Result<()> {
    let left: Option<(i64, i64)> = sqlx::query_as(
        "UPDATE inodes SET nlink = MAX(nlink - 1, 0), ctime_ns = ? WHERE ino = ? \
         RETURNING nlink, kind",
    )
    .bind(now)
    .bind(ino as i64)
    .fetch_optional(&mut *c)
    .await?;
    match left {
        // The bin holds it now: nothing to free.
        Some((0, kind)) if kind == FileKind::Regular as i64 => {
            crate::trash::bin(c, ino, parent, name, now).await
        }
        Some((0, _)) => free_unless_held(c, ino, now).await,
        _ => Ok(()),
    }
}

/// Frees an inode that has no link, no open handle and no recycle-bin item; keeps it
/// otherwise (an unlinked file stays readable by those who have it open, a binned one
/// stays restorable).
pub async fn free_if_unreferenced(c: &mut SqliteConnection, ino: u64, now: i64) -> Result<()> {
    let nlink: Option<i64> = sqlx::query_scalar("SELECT nlink FROM inodes WHERE ino = ?")
        .bind(ino as i64)
        .fetch_optional(&mut *c)
        .await?;
    if nlink != Some(0) {
        return Ok(());
    }
    free_unless_held(c, ino, now).await
}

/// Frees inode `ino`, known to have no link left, unless an open handle or a recycle-bin
/// item still holds it.
async fn free_unless_held(c: &mut SqliteConnection, ino: u64, now: i64) -> Result<()> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM opens WHERE ino = ?1 UNION ALL SELECT 1 FROM trash WHERE ino = ?1 LIMIT 1",
    )
    .bind(ino as i64)
    .fetch_optional(&mut *c)
    .await?;
    if held.is_none() {
        free_inode(c, ino, now).await?;
    }
    Ok(())
}

/// Deletes an inode and everything hanging off it; its stripes lose a reference each.
pub async fn free_inode(c: &mut SqliteConnection, ino: u64, now: i64) -> Result<()> {
    extents::drop_all(c, ino, now).await?;
    for sql in [
        "DELETE FROM xattrs WHERE ino = ?",
        "DELETE FROM object_meta WHERE ino = ?",
        "DELETE FROM inodes WHERE ino = ?",
    ] {
        sqlx::query(sql).bind(ino as i64).execute(&mut *c).await?;
    }
    Ok(())
}

/// Removes the empty directory entry `id` (name in `parent`) and frees the directory;
/// returns `parent` as it is now.
pub async fn remove_empty_dir(
    c: &mut SqliteConnection,
    id: i64,
    parent: u64,
    dir: u64,
    now: i64,
) -> Result<Option<Inode>> {
    remove_dentry(c, id, parent, true).await?;
    let p = touch_dir(c, parent, now).await?;
    free_inode(c, dir, now).await?;
    Ok(p)
}

/// After a name left `parent` (now `p`, as [`touch_dir`] returned it): prunes `parent`
/// if it is implicit and empty, and returns what is left of it for the caller's reply
/// (None when it went too).
pub async fn after_removal(
    c: &mut SqliteConnection,
    parent: u64,
    p: Option<Inode>,
    now: i64,
) -> Result<Option<Inode>> {
    match p {
        Some(p) if !p.implicit => Ok(Some(p)),
        _ => {
            prune_implicit(c, parent, now).await?;
            get(c, parent).await
        }
    }
}

/// Removes `dir` and its ancestors while they are implicit (made by a PutObject for a
/// key's parents) and empty: implicit directories vanish with their last object.
pub async fn prune_implicit(c: &mut SqliteConnection, mut dir: u64, now: i64) -> Result<()> {
    loop {
        let Some(inode) = get(c, dir).await? else {
            return Ok(());
        };
        if !inode.implicit || has_children(c, dir).await? {
            return Ok(());
        }
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT id, parent FROM dentries WHERE ino = ? LIMIT 1")
                .bind(dir as i64)
                .fetch_optional(&mut *c)
                .await?;
        let Some((id, parent)) = row else {
            return Ok(());
        };
        remove_empty_dir(c, id, parent as u64, dir, now).await?;
        dir = parent as u64;
    }
}

/// Is `ino` the directory `ancestor` or below it? (Walks up the parents of directories.)
pub async fn is_within(c: &mut SqliteConnection, mut ino: u64, ancestor: u64) -> Result<bool> {
    loop {
        if ino == ancestor {
            return Ok(true);
        }
        match parent_of_dir(c, ino).await? {
            Some(p) => ino = p,
            None => return Ok(false),
        }
    }
}
