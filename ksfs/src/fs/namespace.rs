//! Namespace operations: names, directories, links, attributes without data, statfs.
//! Each is one master call (the master keeps the tree; docs/architecture.md, "Metadata").

use super::names::{Miss, PAGE};
use super::{Caller, Ksfs, name_str};
use fuser::{Errno, FileType, INodeNo};
use kdss_proto::master as pb;

/// One directory entry as the kernel wants it: the offset to resume after it, its
/// inode, kind and name, and (readdirplus) its attributes.
#[derive(Debug, Clone)]
pub struct DirItem {
    /// Offset the kernel passes back to continue after this entry.
    pub offset: u64,
    /// Master inode number.
    pub ino: u64,
    /// File type.
    pub kind: FileType,
    /// Entry name.
    pub name: String,
    /// Attributes (readdirplus only).
    pub attr: Option<pb::Attr>,
}

/// Kernel offsets 1 and 2 are "." and ".."; master cookie `c` is offset `c + 2`.
const DOTS: u64 = 2;

/// Entries fetched per ReadDir call.
const READDIR_BATCH: u32 = 256;

impl Ksfs {
    /// The master inode for a kernel inode.
    pub fn ino(&self, i: INodeNo) -> u64 {
        self.inos.to_master(i)
    }

    /// Finds `name` in `parent`.
    ///
    /// The kernel turns a file handle back into an inode with a lookup of "." in it
    /// (FUSE_EXPORT_SUPPORT, `open_by_handle_at`): an inode no name reaches any more (nlink
    /// 0, kept only by the recycle bin or an open elsewhere) is ENOENT there, which the
    /// kernel reports as ESTALE, as a local filesystem would. ".." is the master's answer
    /// from its tree, so a directory's handle reconnects after a remount too.
    pub async fn lookup(&self, parent: u64, name: &std::ffi::OsStr) -> Result<pb::Attr, Errno> {
        let root = self.inos.to_master(INodeNo(1));
        if name == "." {
            let a = self.getattr(parent).await?;
            if a.nlink == 0 {
                return Err(Errno::ENOENT);
            }
            return Ok(a);
        }
        if name == ".." && parent == root {
            return self.getattr(parent).await;
        }
        let name = name_str(name)?;
        let ttl = self.entry_ttl.min(self.attr_ttl);
        let paged = if ttl.is_zero() {
            None
        } else if let Some(a) = self.names.hit(parent, &name, ttl) {
            Some(Ok(a))
        } else if let Miss::Page { cookie, seq } = self.names.on_miss(parent, ttl) {
            self.lookup_in_page(parent, &name, cookie, seq).await
        } else {
            None
        };
        let mut a = match paged {
            Some(r) => r?,
            None => {
                let a = self.lookup_at_master(parent, name).await?;
                self.names.found(parent, ttl);
                a
            }
        };
        self.overlay(&mut a);
        Ok(a)
    }

    /// The master's answer for `name` in `parent`, never a cached one.
    pub async fn lookup_at_master(&self, parent: u64, name: String) -> Result<pb::Attr, Errno> {
        let req = pb::LookupRequest {
            bucket: self.bucket.clone(),
            parent,
            name,
        };
        let r = self.call(self.client.master().lookup(req));
        r.await?.attr.ok_or(Errno::EIO)
    }

    /// Reads a page of `parent` from `cookie` (see `names`) and finds `name` in it: None
    /// when the page cannot tell (it ends before the directory does, or the read failed).
    async fn lookup_in_page(
        &self,
        parent: u64,
        name: &str,
        cookie: u64,
        seq: u64,
    ) -> Option<Result<pb::Attr, Errno>> {
        let req = pb::ReadDirRequest {
            bucket: self.bucket.clone(),
            ino: parent,
            cookie,
            limit: PAGE,
            plus: true,
        };
        let reply = self.call(self.client.master().read_dir(req)).await.ok()?;
        let next = match reply.entries.last() {
            Some(e) if !reply.eof => Some(e.cookie),
            _ => None,
        };
        let mut found = None;
        let mut entries = Vec::with_capacity(reply.entries.len());
        for e in reply.entries {
            let Some(a) = e.attr else { continue };
            if e.name == name {
                found = Some(a);
            }
            entries.push((e.name, a));
        }
        self.names.store(parent, seq, entries, next);
        match found {
            Some(a) => Some(Ok(a)),
            // The whole directory, read just now: the name is not there.
            None if cookie == 0 && next.is_none() => Some(Err(Errno::ENOENT)),
            None => None,
        }
    }

    /// Current attributes (with this mount's unflushed writes applied).
    pub async fn getattr(&self, ino: u64) -> Result<pb::Attr, Errno> {
        if let Some(mut a) = self.dir_attrs.fresh(ino, self.attr_ttl) {
            self.overlay(&mut a);
            return Ok(a);
        }
        let req = pb::GetAttrRequest {
            bucket: self.bucket.clone(),
            ino,
        };
        let r = self.call(self.client.master().get_attr(req));
        let mut a = match r.await {
            Ok(r) => r.attr.ok_or(Errno::EIO)?,
            Err(e) => return self.removed_dir_attr(ino, e),
        };
        self.overlay(&mut a);
        Ok(a)
    }

    /// SetAttr as the master sees it (size changes go through `truncate`).
    pub async fn set_attr_raw(&self, req: pb::SetAttrRequest) -> Result<pb::Attr, Errno> {
        let ino = req.ino;
        self.dir_attrs.forget(ino);
        let r = self.call(self.client.master().set_attr(req)).await;
        self.names.mark(ino);
        r?.attr.ok_or(Errno::EIO)
    }

    /// Creates a non-directory node (regular file, fifo, socket, device).
    #[allow(clippy::too_many_arguments)]
    pub async fn mknod(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        kind: pb::FileKind,
        mode: u32,
        uid: u32,
        gid: u32,
        rdev: u32,
        exclusive: bool,
    ) -> Result<pb::Attr, Errno> {
        let req = pb::CreateRequest {
            bucket: self.bucket.clone(),
            parent,
            name: name_str(name)?,
            kind: kind as i32,
            mode: mode & 0o7777,
            uid,
            gid,
            rdev,
            exclusive,
        };
        let r = self.call(self.client.master().create(req)).await?;
        self.added(parent, name, r)
    }

    /// Creates a directory.
    pub async fn mkdir(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<pb::Attr, Errno> {
        let req = pb::MkdirRequest {
            bucket: self.bucket.clone(),
            parent,
            name: name_str(name)?,
            mode: mode & 0o7777,
            uid,
            gid,
        };
        let r = self.call(self.client.master().mkdir(req)).await?;
        self.added(parent, name, r)
    }

    /// Creates a symbolic link.
    pub async fn symlink(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        target: &std::path::Path,
        uid: u32,
        gid: u32,
    ) -> Result<pb::Attr, Errno> {
        let target = target.to_str().ok_or(Errno::EINVAL)?.to_string();
        if target.len() > 4095 {
            return Err(Errno::ENAMETOOLONG);
        }
        let req = pb::SymlinkRequest {
            bucket: self.bucket.clone(),
            parent,
            name: name_str(name)?,
            target,
            uid,
            gid,
        };
        let r = self.call(self.client.master().symlink(req)).await?;
        self.added(parent, name, r)
    }

    /// Removes a non-directory name (the inode lives on while it is open anywhere).
    pub async fn unlink(&self, parent: u64, name: &std::ffi::OsStr) -> Result<(), Errno> {
        self.pin_if_open(parent, name).await?;
        let req = pb::UnlinkRequest {
            bucket: self.bucket.clone(),
            parent,
            name: name_str(name)?,
        };
        let r = self.call(self.client.master().unlink(req)).await;
        self.names.removed(parent, &name_str(name)?);
        self.dir_attrs.put(r?.parent);
        Ok(())
    }

    /// Removes an empty directory (kept for `fstat` while it is open here).
    pub async fn rmdir(&self, parent: u64, name: &std::ffi::OsStr) -> Result<(), Errno> {
        let open = self.open_dir_at(parent, name).await;
        let req = pb::UnlinkRequest {
            bucket: self.bucket.clone(),
            parent,
            name: name_str(name)?,
        };
        let r = self.call(self.client.master().rmdir(req)).await;
        // The removed directory may be remembered as a parent: it answers no more.
        self.dir_attrs.forget_all();
        self.names.forget_all();
        self.dir_attrs.put(r?.parent);
        self.removed_dir(open);
        Ok(())
    }

    /// Renames, with the Linux `RENAME_NOREPLACE` / `RENAME_EXCHANGE` / `RENAME_WHITEOUT`
    /// flags (the master checks their combinations). A whiteout left at the old name
    /// belongs to `caller`, as one made by mknod would.
    #[allow(clippy::too_many_arguments)]
    pub async fn rename(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        new_parent: u64,
        new_name: &std::ffi::OsStr,
        flags: u32,
        caller: Caller,
    ) -> Result<(), Errno> {
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
        if flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        let replaced = flags & libc::RENAME_EXCHANGE == 0;
        let open_dir = if replaced {
            self.pin_if_open(new_parent, new_name).await?;
            Some(self.open_dir_at(new_parent, new_name).await)
        } else {
            None
        };
        let req = pb::RenameRequest {
            bucket: self.bucket.clone(),
            parent,
            name: name_str(name)?,
            new_parent,
            new_name: name_str(new_name)?,
            flags,
            whiteout_uid: caller.uid,
            whiteout_gid: caller.gid,
        };
        let r = self.call(self.client.master().rename(req)).await;
        // Both parents, and a moved directory's own ctime and "..", changed.
        self.dir_attrs.forget_all();
        self.names.forget_all();
        r?;
        if let Some(d) = open_dir {
            self.removed_dir(d);
        }
        Ok(())
    }

    /// Adds a hard link.
    pub async fn link(
        &self,
        ino: u64,
        new_parent: u64,
        new_name: &std::ffi::OsStr,
    ) -> Result<pb::Attr, Errno> {
        let req = pb::LinkRequest {
            bucket: self.bucket.clone(),
            ino,
            new_parent,
            new_name: name_str(new_name)?,
        };
        let r = self.call(self.client.master().link(req)).await?;
        let mut a = self.added(new_parent, new_name, r)?;
        self.overlay(&mut a);
        Ok(a)
    }

    /// After a change that added `name` to `parent`: the new entry's attributes, kept
    /// with the parent's from the reply.
    fn added(
        &self,
        parent: u64,
        name: &std::ffi::OsStr,
        r: pb::AttrReply,
    ) -> Result<pb::Attr, Errno> {
        self.dir_attrs.put(r.parent);
        let a = r.attr.ok_or(Errno::EIO)?;
        self.names.added(parent, &name_str(name)?, &a);
        Ok(a)
    }

    /// The target of a symbolic link.
    pub async fn readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let req = pb::ReadlinkRequest {
            bucket: self.bucket.clone(),
            ino,
        };
        let r = self.call(self.client.master().readlink(req));
        Ok(r.await?.target)
    }

    /// Directory entries after kernel offset `offset` ("." and ".." first).
    pub async fn readdir(&self, ino: u64, offset: u64, plus: bool) -> Result<Vec<DirItem>, Errno> {
        let mut out = Vec::new();
        if offset < 1 {
            out.push(DirItem {
                offset: 1,
                ino,
                kind: FileType::Directory,
                name: ".".into(),
                attr: None,
            });
        }
        if offset < DOTS {
            out.push(DirItem {
                offset: DOTS,
                ino,
                kind: FileType::Directory,
                name: "..".into(),
                attr: None,
            });
        }
        if offset == 0 {
            self.touch_dir_atime(ino).await;
        }
        if self.dirs.removed(ino).is_some() {
            // Removed while open here: the master no longer has it; it is empty.
            return self.with_dot_attrs(ino, out, plus).await;
        }
        let cookie = offset.saturating_sub(DOTS);
        let req = pb::ReadDirRequest {
            bucket: self.bucket.clone(),
            ino,
            cookie,
            limit: READDIR_BATCH,
            plus,
        };
        let r = self.call(self.client.master().read_dir(req));
        let reply = r.await?;
        for e in reply.entries {
            let Some(offset) = e.cookie.checked_add(DOTS) else {
                continue;
            };
            let mut attr = e.attr;
            if let Some(a) = attr.as_mut() {
                self.overlay(a);
            }
            out.push(DirItem {
                offset,
                ino: e.ino,
                kind: crate::attr::file_type(e.kind),
                name: e.name,
                attr,
            });
        }
        self.with_dot_attrs(ino, out, plus).await
    }

    /// readdirplus: "." and ".." (and any entry the master sent bare) need attributes.
    async fn with_dot_attrs(
        &self,
        ino: u64,
        mut out: Vec<DirItem>,
        plus: bool,
    ) -> Result<Vec<DirItem>, Errno> {
        if plus {
            let mut dir = None;
            for d in out.iter_mut().filter(|d| d.attr.is_none()) {
                if d.name == "." || d.name == ".." {
                    if dir.is_none() {
                        dir = Some(self.getattr(ino).await?);
                    }
                    let mut a = dir.unwrap_or_default();
                    a.ino = d.ino;
                    d.attr = Some(a);
                } else {
                    d.attr = Some(self.getattr(d.ino).await?);
                }
            }
        }
        Ok(out)
    }

    /// Capacity and inode counts of the cluster as this bucket sees it.
    pub async fn statfs(&self) -> Result<pb::StatFsReply, Errno> {
        let req = pb::StatFsRequest {
            bucket: self.bucket.clone(),
        };
        self.call(self.client.master().stat_fs(req)).await
    }
}
