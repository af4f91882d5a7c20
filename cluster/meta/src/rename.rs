//! rename(2) with Linux semantics: atomic replace, RENAME_NOREPLACE, RENAME_EXCHANGE,
//! RENAME_WHITEOUT (what overlayfs asks of its upper layer), replacing an empty directory, ENOTEMPTY, EINVAL for a directory into its own subtree,
//! EISDIR / ENOTDIR when kinds disagree. A moved entry keeps its dentry id (its readdir
//! cookie). An implicit directory emptied by the move vanishes.

use crate::error::{Result, einval, enoent, fail};
use crate::names::check_entry_name;
use crate::tree::{self, NewInode};
use kdss_common::rpc_error::errno;
use kdss_proto::master::{FileKind, RenameRequest};
use sqlx::SqliteConnection;

/// Linux RENAME_NOREPLACE.
pub const RENAME_NOREPLACE: u32 = 1;
/// Linux RENAME_EXCHANGE.
pub const RENAME_EXCHANGE: u32 = 2;
/// Linux RENAME_WHITEOUT: the old name becomes a whiteout (a 0:0 character device).
pub const RENAME_WHITEOUT: u32 = 4;

async fn set_dentry(
    c: &mut SqliteConnection,
    id: i64,
    parent: u64,
    name: &str,
    ino: u64,
    is_dir: bool,
) -> Result<()> {
    sqlx::query("UPDATE dentries SET parent = ?, name = ?, sort_name = ?, ino = ? WHERE id = ?")
        .bind(parent as i64)
        .bind(name)
        .bind(tree::sort_name(name, is_dir))
        .bind(ino as i64)
        .bind(id)
        .execute(&mut *c)
        .await?;
    Ok(())
}

async fn set_ctime(c: &mut SqliteConnection, ino: u64, now: i64) -> Result<()> {
    sqlx::query("UPDATE inodes SET ctime_ns = ? WHERE ino = ?")
        .bind(now)
        .bind(ino as i64)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Puts a whiteout, owned by the ids the request carries, at `r.parent/r.name` (which the
/// move just freed), in the same mutation as the move: no one sees the name missing.
async fn leave_whiteout(
    c: &mut SqliteConnection,
    r: &RenameRequest,
    now: i64,
    caller: &str,
) -> Result<()> {
    let whiteout = tree::create_inode(
        c,
        NewInode {
            bucket: &r.bucket,
            kind: FileKind::CharDevice,
            mode: 0,
            uid: r.whiteout_uid,
            gid: r.whiteout_gid,
            rdev: 0,
            now,
            symlink: None,
            implicit: false,
            owner: caller,
        },
    )
    .await?;
    tree::add_dentry(c, r.parent, &r.name, whiteout.ino, false).await?;
    Ok(())
}

/// Renames `parent/name` to `new_parent/new_name`; `caller` owns a whiteout it leaves.
pub async fn rename(
    c: &mut SqliteConnection,
    r: &RenameRequest,
    now: i64,
    caller: &str,
) -> Result<()> {
    let known = RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT;
    if r.flags & !known != 0
        || (r.flags & RENAME_EXCHANGE != 0 && r.flags & (RENAME_NOREPLACE | RENAME_WHITEOUT) != 0)
    {
        return Err(einval(format!("bad rename flags {}", r.flags)));
    }
    check_entry_name(&r.new_name)?;
    let src = tree::entry_in(c, &r.bucket, r.parent, &r.name).await?;
    let dst = tree::entry_in(c, &r.bucket, r.new_parent, &r.new_name).await?;
    let Some((src_id, src)) = src else {
        return Err(enoent(&r.name));
    };
    if src.is_dir() && tree::is_within(c, r.new_parent, src.ino).await? {
        return Err(einval("cannot move a directory into its own subtree"));
    }
    if r.parent == r.new_parent && r.name == r.new_name {
        return Ok(());
    }
    if r.flags & RENAME_EXCHANGE != 0 {
        let Some((dst_id, dst)) = dst else {
            return Err(enoent(&r.new_name));
        };
        if dst.is_dir() && tree::is_within(c, r.parent, dst.ino).await? {
            return Err(einval("cannot move a directory into its own subtree"));
        }
        set_dentry(c, src_id, r.parent, &r.name, dst.ino, dst.is_dir()).await?;
        set_dentry(c, dst_id, r.new_parent, &r.new_name, src.ino, src.is_dir()).await?;
        if r.parent != r.new_parent {
            let delta = src.is_dir() as i64 - dst.is_dir() as i64;
            tree::adjust_nlink(c, r.parent, -delta).await?;
            tree::adjust_nlink(c, r.new_parent, delta).await?;
        }
        set_ctime(c, src.ino, now).await?;
        set_ctime(c, dst.ino, now).await?;
        tree::touch_dir(c, r.parent, now).await?;
        tree::touch_dir(c, r.new_parent, now).await?;
        return Ok(());
    }
    if let Some((dst_id, dst)) = dst {
        if dst.ino == src.ino {
            return Ok(());
        }
        if r.flags & RENAME_NOREPLACE != 0 {
            return Err(fail(
                errno::EEXIST,
                "AlreadyExists",
                format!("{:?} exists", r.new_name),
            ));
        }
        match (src.is_dir(), dst.is_dir()) {
            (true, false) => {
                return Err(fail(
                    errno::ENOTDIR,
                    "NotADirectory",
                    "cannot replace a file with a directory",
                ));
            }
            (false, true) => {
                return Err(fail(
                    errno::EISDIR,
                    "IsADirectory",
                    "cannot replace a directory with a file",
                ));
            }
            (true, true) => {
                if tree::has_children(c, dst.ino).await? {
                    return Err(fail(
                        errno::ENOTEMPTY,
                        "NotEmpty",
                        format!("{:?} is not empty", r.new_name),
                    ));
                }
                tree::remove_empty_dir(c, dst_id, r.new_parent, dst.ino, now).await?;
            }
            (false, false) => {
                tree::remove_dentry(c, dst_id, r.new_parent, false).await?;
                tree::drop_link(c, dst.ino, r.new_parent, &r.new_name, now).await?;
            }
        }
    }
    set_dentry(c, src_id, r.new_parent, &r.new_name, src.ino, src.is_dir()).await?;
    if src.is_dir() && r.parent != r.new_parent {
        tree::adjust_nlink(c, r.parent, -1).await?;
        tree::adjust_nlink(c, r.new_parent, 1).await?;
    }
    if r.flags & RENAME_WHITEOUT != 0 {
        leave_whiteout(c, r, now, caller).await?;
    }
    set_ctime(c, src.ino, now).await?;
    tree::touch_dir(c, r.parent, now).await?;
    tree::touch_dir(c, r.new_parent, now).await?;
    if r.parent != r.new_parent {
        tree::prune_implicit(c, r.parent, now).await?;
    }
    Ok(())
}
