//! Mode and group of new inodes, and the mode bits an access ACL carries: work the kernel
//! does for local filesystems (`inode_init_owner`, `posix_acl_update_mode`) but leaves to
//! a FUSE filesystem.
//!
//! - In a setgid directory a new inode takes the directory's group, and a new directory
//!   is setgid too (xfstests generic/444).
//! - A new file keeps setgid only if its creator is in its group (or root).
//! - Setting `system.posix_acl_access` sets the group/other/owner mode bits from the ACL
//!   (the mask entry stands for the group bits), drops an ACL that the mode alone says, and
//!   clears setgid when the caller is not in the file's group (generic/375).
//!
//! The parent's mode and group come from the attributes this mount last gave the kernel
//! (no extra master call while they are fresh).

use super::Ksfs;
use fuser::Errno;
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Who asks: the caller of the kernel request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// Effective uid.
    pub uid: u32,
    /// Effective (primary) gid.
    pub gid: u32,
    /// Process id (for its supplementary groups).
    pub pid: u32,
}

impl Caller {
    /// Whether the caller is root or in group `gid` (primary or supplementary).
    pub fn in_group(&self, gid: u32) -> bool {
        self.uid == 0 || self.gid == gid || supplementary_groups(self.pid).contains(&gid)
    }
}

fn supplementary_groups(pid: u32) -> Vec<u32> {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    s.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Mode and group of directories as this mount last saw them.
#[derive(Default)]
pub struct DirModes {
    dirs: Mutex<HashMap<u64, (u32, u32, Instant)>>,
}

/// Directories remembered before the table is cleared (bounded memory).
const MAX_DIRS: usize = 100_000;

impl DirModes {
    /// Remembers a directory's mode and group from attributes sent to the kernel.
    pub fn note(&self, a: &pb::Attr) {
        if a.kind != pb::FileKind::Directory as i32 {
            return;
        }
        let mut d = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        if d.len() >= MAX_DIRS {
            d.clear();
        }
        d.insert(a.ino, (a.mode, a.gid, Instant::now()));
    }

    fn fresh(&self, ino: u64, ttl: Duration) -> Option<(u32, u32)> {
        let d = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        d.get(&ino)
            .filter(|(_, _, at)| at.elapsed() <= ttl)
            .map(|(m, g, _)| (*m, *g))
    }
}

const S_ISGID: u32 = libc::S_ISGID;
const S_IXGRP: u32 = libc::S_IXGRP;

/// ACL entry tags (linux/posix_acl_xattr.h).
const ACL_USER_OBJ: u16 = 0x01;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;

/// The rwx bits an access ACL gives (owner, group or mask, other), and whether the mode
/// alone says it all (only the three base entries). None if the value does not parse.
pub fn acl_mode(value: &[u8]) -> Option<(u32, bool)> {
    let body = value.get(4..)?;
    if body.len() % 8 != 0 {
        return None;
    }
    let (mut user, mut group, mut mask, mut other) = (None, None, None, None);
    let mut equivalent = true;
    for e in body.chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]) as u32 & 0o7;
        match tag {
            ACL_USER_OBJ => user = Some(perm),
            ACL_GROUP_OBJ => group = Some(perm),
            ACL_MASK => {
                mask = Some(perm);
                equivalent = false;
            }
            ACL_OTHER => other = Some(perm),
            _ => equivalent = false,
        }
    }
    let g = mask.or(group)?;
    Some(((user? << 6) | (g << 3) | other?, equivalent))
}

impl Ksfs {
    /// Mode and group for a new inode in `parent` (see the module doc).
    pub async fn new_owner(
        &self,
        parent: u64,
        mode: u32,
        is_dir: bool,
        caller: Caller,
    ) -> Result<(u32, u32), Errno> {
        let ttl = self.attr_ttl.max(Duration::from_secs(1));
        let (pmode, pgid) = match self.dir_modes.fresh(parent, ttl) {
            Some(v) => v,
            None => {
                let a = self.getattr(parent).await?;
                self.dir_modes.note(&a);
                (a.mode, a.gid)
            }
        };
        let (mut mode, mut gid) = (mode, caller.gid);
        if pmode & S_ISGID != 0 {
            gid = pgid;
            if is_dir {
                mode |= S_ISGID;
            }
        }
        if !is_dir && mode & S_ISGID != 0 && mode & S_IXGRP != 0 && !caller.in_group(gid) {
            mode &= !S_ISGID;
        }
        Ok((mode, gid))
    }

    /// After `system.posix_acl_access` was given `value`: the mode bits follow the ACL.
    /// Returns true when the ACL says nothing beyond the mode (then it is not stored).
    pub async fn acl_to_mode(&self, ino: u64, value: &[u8], caller: Caller) -> Result<bool, Errno> {
        let Some((bits, equivalent)) = acl_mode(value) else {
            return Err(Errno::EINVAL);
        };
        let a = self.getattr(ino).await?;
        let mut mode = (a.mode & 0o7777 & !0o777) | bits;
        if !caller.in_group(a.gid) {
            mode &= !S_ISGID;
        }
        if mode != a.mode & 0o7777 {
            let req = pb::SetAttrRequest {
                bucket: self.bucket.clone(),
                ino,
                mode: Some(mode),
                ..Default::default()
            };
            self.set_attr_raw(req).await?;
        }
        Ok(equivalent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16)]) -> Vec<u8> {
        let mut v = 2u32.to_le_bytes().to_vec();
        for (tag, perm) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        v
    }

    #[test]
    fn acl_gives_mode_bits_with_the_mask_as_group() {
        let base = acl(&[(ACL_USER_OBJ, 7), (ACL_GROUP_OBJ, 5), (ACL_OTHER, 4)]);
        assert_eq!(acl_mode(&base), Some((0o754, true)));
        let masked = acl(&[
            (ACL_USER_OBJ, 6),
            (0x02, 7),
            (ACL_GROUP_OBJ, 4),
            (ACL_MASK, 7),
            (ACL_OTHER, 0),
        ]);
        assert_eq!(acl_mode(&masked), Some((0o670, false)));
        assert_eq!(acl_mode(&[2, 0, 0, 0, 1]), None);
        assert_eq!(acl_mode(&acl(&[(ACL_USER_OBJ, 7)])), None);
    }

    #[test]
    fn root_and_members_are_in_the_group() {
        let me = Caller {
            uid: 5,
            gid: 7,
            pid: std::process::id(),
        };
        assert!(me.in_group(7));
        assert!(!me.in_group(123_456));
        assert!(Caller { uid: 0, ..me }.in_group(123_456));
    }
}
