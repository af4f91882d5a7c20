//! Extended attributes, POSIX ACLs included: the kernel (mounted with
//! `default_permissions` and FUSE_POSIX_ACL) enforces ACLs and stores them here as the
//! `system.posix_acl_access` / `system.posix_acl_default` xattrs.

use super::{Ksfs, name_str};
use fuser::Errno;
use kdss_proto::master as pb;

/// Largest xattr value Linux accepts (XATTR_SIZE_MAX).
const XATTR_SIZE_MAX: usize = 65536;

/// A directory's default ACL (cached for new inodes, `owner.rs`).
const DEFAULT_ACL: &str = "system.posix_acl_default";

/// File capabilities: the kernel reads this before every write to drop it.
const CAPS: &str = "security.capability";

impl Ksfs {
    /// The value of one xattr (ENODATA when absent).
    ///
    /// A file this mount created within `attr_ttl` has no file capabilities unless this
    /// mount gave it some: the kernel's check before each write is then answered here.
    pub async fn getxattr(&self, ino: u64, name: &std::ffi::OsStr) -> Result<Vec<u8>, Errno> {
        if name == CAPS && self.files.created_without_xattrs(ino, self.attr_ttl) {
            return Err(Errno::ENODATA);
        }
        let req = pb::GetXattrRequest {
            bucket: self.bucket.clone(),
            ino,
            name: name_str(name)?,
        };
        let r = self.call(self.client.master().get_xattr(req));
        Ok(r.await?.value)
    }

    /// Sets one xattr; `flags` are XATTR_CREATE / XATTR_REPLACE.
    pub async fn setxattr(
        &self,
        ino: u64,
        name: &std::ffi::OsStr,
        value: Vec<u8>,
        flags: i32,
    ) -> Result<(), Errno> {
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        self.files.xattrs_changed(ino);
        self.dir_attrs.forget(ino);
        let name = name_str(name)?;
        if name.is_empty() {
            return Err(Errno::ERANGE);
        }
        let default_acl = name == DEFAULT_ACL;
        let req = pb::SetXattrRequest {
            bucket: self.bucket.clone(),
            ino,
            name,
            value,
            flags: (flags & (libc::XATTR_CREATE | libc::XATTR_REPLACE)) as u32,
        };
        let r = self.call(self.client.master().set_xattr(req));
        let r = r.await.map(|_| ());
        self.names.mark(ino);
        if default_acl {
            // New inodes in the directory must inherit this one, not the cached one.
            self.dir_modes.forget_default_acl(ino);
        }
        r
    }

    /// The names of all xattrs, each followed by a NUL (the listxattr format).
    pub async fn listxattr(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let req = pb::ListXattrRequest {
            bucket: self.bucket.clone(),
            ino,
        };
        let r = self.call(self.client.master().list_xattr(req));
        let mut out = Vec::new();
        for n in r.await?.names {
            out.extend_from_slice(n.as_bytes());
            out.push(0);
        }
        Ok(out)
    }

    /// Removes one xattr (ENODATA when absent).
    pub async fn removexattr(&self, ino: u64, name: &std::ffi::OsStr) -> Result<(), Errno> {
        self.files.xattrs_changed(ino);
        self.dir_attrs.forget(ino);
        let name = name_str(name)?;
        let default_acl = name == DEFAULT_ACL;
        let req = pb::RemoveXattrRequest {
            bucket: self.bucket.clone(),
            ino,
            name,
        };
        let r = self.call(self.client.master().remove_xattr(req));
        let r = r.await.map(|_| ());
        self.names.mark(ino);
        if default_acl {
            self.dir_modes.forget_default_acl(ino);
        }
        r
    }
}
