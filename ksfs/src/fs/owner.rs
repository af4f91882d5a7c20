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
//! - fallocate by a caller other than root drops setuid, and setgid as VFS does (also
//!   without group exec when the caller is not in the file's group).
//!
//! - A parent's default ACL is inherited (posix_acl_create): the new inode's mode is
//!   masked by it instead of by the umask, and it gets the ACL (a directory also as its
//!   default ACL). The kernel sends the umask with the request (FUSE_DONT_MASK).
//!
//! The parent's mode, group and default ACL are cached for the attribute TTL (at least a
//! second), so a burst of creates in one directory costs no extra master calls.

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

/// Mode and group of directories as this mount last saw them, and their default ACLs.
#[derive(Default)]
pub struct DirModes {
    dirs: Mutex<HashMap<u64, (u32, u32, Instant)>>,
    default_acls: Mutex<HashMap<u64, CachedAcl>>,
}

/// A directory's default ACL (None: it has none) and when it was read.
type CachedAcl = (Option<Vec<u8>>, Instant);

/// ACLs a new inode gets from its parent's default ACL (set once it exists).
#[derive(Debug, Default)]
pub struct Inherited {
    /// `system.posix_acl_access`, when the mode alone cannot say it.
    pub access: Option<Vec<u8>>,
    /// `system.posix_acl_default` (directories).
    pub default: Option<Vec<u8>>,
}

/// posix_acl_create: masks the rwx bits of `mode` with a default ACL; returns the new mode
/// and the access ACL (None when the mode says it all). None if `acl` does not parse.
pub fn acl_create(acl: &[u8], mode: u32) -> Option<(u32, Option<Vec<u8>>)> {
    let mut out = acl.get(..4)?.to_vec();
    let body = acl.get(4..)?;
    if body.len() % 8 != 0 {
        return None;
    }
    let has_mask = body
        .chunks_exact(8)
        .any(|e| u16::from_le_bytes([e[0], e[1]]) == ACL_MASK);
    let (mut u, mut g, mut o) = (0, 0, 0);
    let mut equivalent = true;
    for e in body.chunks_exact(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let mut perm = u16::from_le_bytes([e[2], e[3]]) as u32 & 0o7;
        match tag {
            ACL_USER_OBJ => {
                perm &= (mode >> 6) & 0o7;
                u = perm;
            }
            ACL_GROUP_OBJ if !has_mask => {
                perm &= (mode >> 3) & 0o7;
                g = perm;
            }
            ACL_MASK => {
                perm &= (mode >> 3) & 0o7;
                g = perm;
                equivalent = false;
            }
            ACL_OTHER => {
                perm &= mode & 0o7;
                o = perm;
            }
            ACL_GROUP_OBJ => {}
            _ => equivalent = false,
        }
        out.extend_from_slice(&e[..2]);
        out.extend_from_slice(&(perm as u16).to_le_bytes());
        out.extend_from_slice(&e[4..]);
    }
    let mode = (mode & !0o777) | (u << 6) | (g << 3) | o;
    Some((mode, (!equivalent).then_some(out)))
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

    /// Forgets the cached default ACL of `dir` (it was just set or removed here).
    pub fn forget_default_acl(&self, dir: u64) {
        let mut c = self.default_acls.lock().unwrap_or_else(|e| e.into_inner());
        c.remove(&dir);
    }

    fn fresh(&self, ino: u64, ttl: Duration) -> Option<(u32, u32)> {
        let d = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        d.get(&ino)
            .filter(|(_, _, at)| at.elapsed() <= ttl)
            .map(|(m, g, _)| (*m, *g))
    }
}

const S_ISUID: u32 = libc::S_ISUID;
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
    /// The default ACL of directory `dir` (cached like its mode).
    async fn default_acl(&self, dir: u64, ttl: Duration) -> Result<Option<Vec<u8>>, Errno> {
        {
            let c = self
                .dir_modes
                .default_acls
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some((acl, at)) = c.get(&dir)
                && at.elapsed() <= ttl
            {
                return Ok(acl.clone());
            }
        }
        let acl = match self
            .getxattr(dir, "system.posix_acl_default".as_ref())
            .await
        {
            Ok(v) => Some(v),
            Err(e) if e == Errno::ENODATA => None,
            Err(e) => return Err(e),
        };
        let mut c = self
            .dir_modes
            .default_acls
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if c.len() >= MAX_DIRS {
            c.clear();
        }
        c.insert(dir, (acl.clone(), Instant::now()));
        Ok(acl)
    }

    /// Mode, group and inherited ACLs for a new inode in `parent` (see the module doc).
    pub async fn new_owner(
        &self,
        parent: u64,
        mode: u32,
        umask: u32,
        is_dir: bool,
        caller: Caller,
    ) -> Result<(u32, u32, Inherited), Errno> {
        let ttl = self.attr_ttl.max(Duration::from_secs(1));
        let mut inherited = Inherited::default();
        let mode = match self.default_acl(parent, ttl).await? {
            Some(acl) => match acl_create(&acl, mode) {
                Some((m, access)) => {
                    inherited.access = access;
                    inherited.default = is_dir.then_some(acl);
                    m
                }
                None => mode & !umask,
            },
            None => mode & !umask,
        };
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
        Ok((mode, gid, inherited))
    }

    /// Gives a new inode the ACLs it inherited (failures logged: the inode exists).
    pub async fn set_inherited(&self, ino: u64, inherited: Inherited) {
        for (name, v) in [
            ("system.posix_acl_access", inherited.access),
            ("system.posix_acl_default", inherited.default),
        ] {
            if let Some(v) = v
                && let Err(e) = self.setxattr(ino, name.as_ref(), v, 0).await
            {
                tracing::warn!(ino, name, error = ?e, "could not set an inherited ACL");
            }
        }
    }

    /// Before a fallocate by `caller` (VFS `setattr_should_drop_suidgid`): a regular
    /// file loses setuid, and setgid when it is group-executable or the caller is not in
    /// its group; root (CAP_FSETID) keeps both. The kernel's FUSE SETATTR only drops
    /// setgid with group exec (xfstests generic/683-685).
    pub async fn drop_setid_bits(&self, a: &pb::Attr, caller: Caller) -> Result<(), Errno> {
        if caller.uid == 0 || a.kind != pb::FileKind::Regular as i32 {
            return Ok(());
        }
        let mut mode = a.mode & 0o7777;
        mode &= !S_ISUID;
        if mode & S_ISGID != 0 && (mode & S_IXGRP != 0 || !caller.in_group(a.gid)) {
            mode &= !S_ISGID;
        }
        if mode == a.mode & 0o7777 {
            return Ok(());
        }
        let req = pb::SetAttrRequest {
            bucket: self.bucket.clone(),
            ino: a.ino,
            mode: Some(mode),
            ..Default::default()
        };
        self.set_attr_raw(req).await?;
        // The kernel may have cached the mode of its own kill-priv SETATTR (setgid kept);
        // `stat` asking only for the mode would show it for the attribute TTL.
        self.invalidate_attrs(a.ino);
        Ok(())
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
    fn default_acl_masks_the_mode_instead_of_the_umask() {
        let named = acl(&[
            (ACL_USER_OBJ, 7),
            (0x02, 7),
            (ACL_GROUP_OBJ, 5),
            (ACL_MASK, 7),
            (ACL_OTHER, 5),
        ]);
        let (mode, access) = acl_create(&named, 0o40777).unwrap();
        assert_eq!(mode, 0o40775);
        assert_eq!(acl_mode(&access.unwrap()), Some((0o775, false)));
        let base = acl(&[(ACL_USER_OBJ, 7), (ACL_GROUP_OBJ, 0), (ACL_OTHER, 0)]);
        assert_eq!(acl_create(&base, 0o100666), Some((0o100600, None)));
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
