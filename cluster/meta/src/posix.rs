//! POSIX namespace mutations with errno-level failures: create/mknod, mkdir, symlink,
//! unlink, rmdir, link, setattr (truncate or extend), and xattrs. Rename lives in
//! `rename.rs`.

use crate::error::{Result, einval, enoent, fail};
use crate::extents;
use crate::names::check_entry_name;
use crate::tree::{self, NewInode};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{
    Attr, CreateRequest, FileKind, LinkRequest, MkdirRequest, RemoveXattrRequest, SetAtimesRequest,
    SetAttrRequest, SetXattrRequest, SymlinkRequest, UnlinkRequest,
};
use sqlx::SqliteConnection;

/// Largest xattr value (as Linux XATTR_SIZE_MAX).
pub const XATTR_VALUE_MAX: usize = 64 * 1024;
/// Longest xattr name (as Linux XATTR_NAME_MAX).
pub const XATTR_NAME_MAX: usize = 255;

/// Checks an xattr's name (1 to [`XATTR_NAME_MAX`] bytes, ERANGE as Linux) and value (at
/// most [`XATTR_VALUE_MAX`] bytes, E2BIG as Linux).
pub fn check_xattr(name: &str, value: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(fail(
            errno::ERANGE,
            "InvalidArgument",
            format!(
                "xattr name is {} bytes; it must be 1 to {XATTR_NAME_MAX} bytes",
                name.len()
            ),
        ));
    }
    if value.len() > XATTR_VALUE_MAX {
        return Err(fail(
            errno::E2BIG,
            "InvalidArgument",
            format!(
                "xattr value is {} bytes, above the limit of {XATTR_VALUE_MAX} bytes",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn eexist(name: &str) -> crate::MetaError {
    fail(
        errno::EEXIST,
        "AlreadyExists",
        format!("{name:?} already exists"),
    )
}

/// Creates a regular file, fifo, socket or device node. With `exclusive` an existing
/// entry is EEXIST; without, an existing regular file is returned as it is. Like mkdir and
/// symlink, returns the parent's attributes too when it changed the parent.
pub async fn create(
    c: &mut SqliteConnection,
    r: &CreateRequest,
    now: i64,
    caller: &str,
) -> Result<(Attr, Option<Attr>)> {
    check_entry_name(&r.name)?;
    let kind = FileKind::try_from(r.kind).unwrap_or(FileKind::Unspecified);
    let kind = match kind {
        FileKind::Unspecified => FileKind::Regular,
        FileKind::Directory | FileKind::Symlink => {
            return Err(einval("create makes files and nodes; use mkdir or symlink"));
        }
        k => k,
    };
    if let Some((_, existing)) = tree::entry_in(c, &r.bucket, r.parent, &r.name).await? {
        if r.exclusive || !existing.is_file() || kind != FileKind::Regular {
            return Err(if existing.is_dir() && !r.exclusive {
                fail(
                    errno::EISDIR,
                    "IsADirectory",
                    format!("{:?} is a directory", r.name),
                )
            } else {
                eexist(&r.name)
            });
        }
        return Ok((existing.attr(), None));
    }
    let inode = tree::create_inode(
        c,
        NewInode {
            bucket: &r.bucket,
            kind,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            rdev: r.rdev,
            now,
            symlink: None,
            implicit: false,
            owner: caller,
        },
    )
    .await?;
    tree::add_dentry(c, r.parent, &r.name, inode.ino, false).await?;
    let parent = tree::touch_dir(c, r.parent, now).await?;
    Ok((inode.attr(), parent.map(|p| p.attr())))
}

/// Creates a directory (EEXIST if the name is taken).
pub async fn mkdir(
    c: &mut SqliteConnection,
    r: &MkdirRequest,
    now: i64,
    caller: &str,
) -> Result<(Attr, Option<Attr>)> {
    check_entry_name(&r.name)?;
    if tree::entry_in(c, &r.bucket, r.parent, &r.name)
        .await?
        .is_some()
    {
        return Err(eexist(&r.name));
    }
    let inode = tree::create_inode(
        c,
        NewInode {
            bucket: &r.bucket,
            kind: FileKind::Directory,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            rdev: 0,
            now,
            symlink: None,
            implicit: false,
            owner: caller,
        },
    )
    .await?;
    tree::add_dentry(c, r.parent, &r.name, inode.ino, true).await?;
    let parent = tree::touch_dir(c, r.parent, now).await?;
    Ok((inode.attr(), parent.map(|p| p.attr())))
}

/// Creates a symbolic link (mode 0777; size = length of the target).
pub async fn symlink(
    c: &mut SqliteConnection,
    r: &SymlinkRequest,
    now: i64,
    caller: &str,
) -> Result<(Attr, Option<Attr>)> {
    check_entry_name(&r.name)?;
    crate::sizes::check_symlink_target(&r.target)?;
    if tree::entry_in(c, &r.bucket, r.parent, &r.name)
        .await?
        .is_some()
    {
        return Err(eexist(&r.name));
    }
    let inode = tree::create_inode(
        c,
        NewInode {
            bucket: &r.bucket,
            kind: FileKind::Symlink,
            mode: 0o777,
            uid: r.uid,
            gid: r.gid,
            rdev: 0,
            now,
            symlink: Some(r.target.as_bytes()),
            implicit: false,
            owner: caller,
        },
    )
    .await?;
    tree::add_dentry(c, r.parent, &r.name, inode.ino, false).await?;
    let parent = tree::touch_dir(c, r.parent, now).await?;
    Ok((inode.attr(), parent.map(|p| p.attr())))
}

/// Removes a non-directory entry (EISDIR for a directory). The inode goes when its last
/// link and last open handle are gone; an emptied implicit parent vanishes.
pub async fn unlink(c: &mut SqliteConnection, r: &UnlinkRequest, now: i64) -> Result<Option<Attr>> {
    let Some((id, inode)) = tree::entry_in(c, &r.bucket, r.parent, &r.name).await? else {
        return Err(enoent(&r.name));
    };
    if inode.is_dir() {
        return Err(fail(
            errno::EISDIR,
            "IsADirectory",
            format!("{:?} is a directory", r.name),
        ));
    }
    tree::remove_dentry(c, id, r.parent, false).await?;
    let parent = tree::touch_dir(c, r.parent, now).await?;
    tree::drop_link(c, inode.ino, r.parent, &r.name, now).await?;
    let parent = tree::after_removal(c, r.parent, parent, now).await?;
    Ok(parent.map(|p| p.attr()))
}

/// Removes an empty directory (ENOTDIR, ENOTEMPTY). Like unlink, returns the parent's
/// attributes after (None when it was implicit and went with its last entry).
pub async fn rmdir(c: &mut SqliteConnection, r: &UnlinkRequest, now: i64) -> Result<Option<Attr>> {
    let Some((id, inode)) = tree::entry_in(c, &r.bucket, r.parent, &r.name).await? else {
        return Err(enoent(&r.name));
    };
    if !inode.is_dir() {
        return Err(fail(
            errno::ENOTDIR,
            "NotADirectory",
            format!("{:?} is not a directory", r.name),
        ));
    }
    if tree::has_children(c, inode.ino).await? {
        return Err(fail(
            errno::ENOTEMPTY,
            "NotEmpty",
            format!("{:?} is not empty", r.name),
        ));
    }
    let parent = tree::remove_empty_dir(c, id, r.parent, inode.ino, now).await?;
    let parent = tree::after_removal(c, r.parent, parent, now).await?;
    Ok(parent.map(|p| p.attr()))
}

/// Adds a hard link (EPERM for directories, ENOENT for an already unlinked inode).
pub async fn link(c: &mut SqliteConnection, r: &LinkRequest, now: i64) -> Result<Attr> {
    check_entry_name(&r.new_name)?;
    let inode = tree::inode_in(c, &r.bucket, r.ino).await?;
    if inode.is_dir() {
        return Err(fail(
            errno::EPERM,
            "IsADirectory",
            "hard links to directories are not allowed",
        ));
    }
    if inode.nlink == 0 {
        return Err(enoent(format!("inode {} (unlinked)", r.ino)));
    }
    if tree::entry_in(c, &r.bucket, r.new_parent, &r.new_name)
        .await?
        .is_some()
    {
        return Err(eexist(&r.new_name));
    }
    tree::add_dentry(c, r.new_parent, &r.new_name, r.ino, false).await?;
    tree::adjust_nlink(c, r.ino, 1).await?;
    sqlx::query("UPDATE inodes SET ctime_ns = ? WHERE ino = ?")
        .bind(now)
        .bind(r.ino as i64)
        .execute(&mut *c)
        .await?;
    tree::touch_dir(c, r.new_parent, now).await?;
    Ok(tree::inode_in(c, &r.bucket, r.ino).await?.attr())
}

/// Sets the access times a mount's reads left (see `SetAtimesRequest`): one statement per
/// inode; inodes of other buckets or gone since are skipped, not refused.
pub async fn set_atimes(c: &mut SqliteConnection, r: &SetAtimesRequest) -> Result<()> {
    for u in &r.updates {
        sqlx::query("UPDATE inodes SET atime_ns = ? WHERE ino = ? AND bucket = ?")
            .bind(u.atime_ns)
            .bind(u.ino as i64)
            .bind(&r.bucket)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// Changes mode, owner, size (truncate drops or trims extents and inline data; extending
/// leaves a hole that reads as zeros) and times. Any change sets ctime.
pub async fn setattr(c: &mut SqliteConnection, r: &SetAttrRequest, now: i64) -> Result<Attr> {
    let mut inode = tree::inode_in(c, &r.bucket, r.ino).await?;
    if let Some(m) = r.mode {
        inode.mode = m & 0o7777;
    }
    if let Some(u) = r.uid {
        inode.uid = u;
    }
    if let Some(g) = r.gid {
        inode.gid = g;
    }
    if let Some(size) = r.size {
        if inode.is_dir() {
            return Err(fail(
                errno::EISDIR,
                "IsADirectory",
                "cannot set the size of a directory",
            ));
        }
        if !inode.is_file() {
            return Err(einval("size can be set on regular files only"));
        }
        if size > i64::MAX as u64 {
            return Err(fail(errno::EFBIG, "InvalidArgument", "size too large"));
        }
        if size < inode.size {
            extents::truncate(c, r.ino, size, now).await?;
            if let Some(d) = inode.inline_data.as_mut() {
                d.truncate(size as usize);
            }
        }
        if size != inode.size {
            inode.version += 1;
            inode.etag = None;
        }
        inode.size = size;
        inode.mtime_ns = now;
    }
    if let Some(a) = r.atime_ns {
        inode.atime_ns = a;
    } else if r.atime_now {
        inode.atime_ns = now;
    }
    if let Some(m) = r.mtime_ns {
        inode.mtime_ns = m;
    } else if r.mtime_now {
        inode.mtime_ns = now;
    }
    if !r.keep_ctime {
        inode.ctime_ns = r.ctime_ns.unwrap_or(now);
    }
    sqlx::query(
        "UPDATE inodes SET mode = ?, uid = ?, gid = ?, size = ?, atime_ns = ?, mtime_ns = ?, \
         ctime_ns = ?, version = ?, etag = ?, inline_data = ? WHERE ino = ?",
    )
    .bind(inode.mode as i64)
    .bind(inode.uid as i64)
    .bind(inode.gid as i64)
    .bind(inode.size as i64)
    .bind(inode.atime_ns)
    .bind(inode.mtime_ns)
    .bind(inode.ctime_ns)
    .bind(inode.version as i64)
    .bind(&inode.etag)
    .bind(&inode.inline_data)
    .bind(r.ino as i64)
    .execute(&mut *c)
    .await?;
    Ok(inode.attr())
}

/// Sets an xattr: flags 1 = XATTR_CREATE (EEXIST if present), 2 = XATTR_REPLACE
/// (ENODATA if absent).
pub async fn set_xattr(c: &mut SqliteConnection, r: &SetXattrRequest, now: i64) -> Result<()> {
    tree::inode_in(c, &r.bucket, r.ino).await?;
    check_xattr(&r.name, &r.value)?;
    if r.flags & !3 != 0 || r.flags == 3 {
        return Err(einval(format!("bad xattr flags {}", r.flags)));
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM xattrs WHERE ino = ? AND name = ?")
        .bind(r.ino as i64)
        .bind(&r.name)
        .fetch_optional(&mut *c)
        .await?;
    if r.flags == 1 && exists.is_some() {
        return Err(fail(
            errno::EEXIST,
            "AlreadyExists",
            format!("xattr {:?} exists", r.name),
        ));
    }
    if r.flags == 2 && exists.is_none() {
        return Err(fail(
            errno::ENODATA,
            "NoData",
            format!("no xattr {:?}", r.name),
        ));
    }
    sqlx::query("INSERT OR REPLACE INTO xattrs (ino, name, value) VALUES (?, ?, ?)")
        .bind(r.ino as i64)
        .bind(&r.name)
        .bind(&r.value)
        .execute(&mut *c)
        .await?;
    touch_ctime(c, r.ino, now).await
}

/// Removes an xattr (ENODATA if absent).
pub async fn remove_xattr(
    c: &mut SqliteConnection,
    r: &RemoveXattrRequest,
    now: i64,
) -> Result<()> {
    tree::inode_in(c, &r.bucket, r.ino).await?;
    let done = sqlx::query("DELETE FROM xattrs WHERE ino = ? AND name = ?")
        .bind(r.ino as i64)
        .bind(&r.name)
        .execute(&mut *c)
        .await?;
    if done.rows_affected() == 0 {
        return Err(fail(
            errno::ENODATA,
            "NoData",
            format!("no xattr {:?}", r.name),
        ));
    }
    touch_ctime(c, r.ino, now).await
}

async fn touch_ctime(c: &mut SqliteConnection, ino: u64, now: i64) -> Result<()> {
    sqlx::query("UPDATE inodes SET ctime_ns = ? WHERE ino = ?")
        .bind(now)
        .bind(ino as i64)
        .execute(&mut *c)
        .await?;
    Ok(())
}
