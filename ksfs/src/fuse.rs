//! The FUSE adapter: each kernel request is handed to the tokio runtime and answered from
//! the task, so the FUSE thread only parses requests and never waits on the network.

use crate::attr::{file_attr, kind_of_mode, ns_of};
use crate::fs::{Caller, Ksfs};
use fuser::{
    Errno, FileHandle, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig,
    LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use kdss_proto::master as pb;
use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::runtime::Handle;

/// Largest single write the kernel sends us (FUSE caps it at 256 pages by default).
pub const MAX_WRITE: u32 = 1 << 20;

/// The `fuser::Filesystem` over [`Ksfs`].
pub struct KsfsFuse {
    fs: Arc<Ksfs>,
    rt: Handle,
}

impl KsfsFuse {
    /// An adapter running operations of `fs` on the runtime `rt`.
    pub fn new(fs: Arc<Ksfs>, rt: Handle) -> Self {
        KsfsFuse { fs, rt }
    }

    /// Runs kernel operation `op` on the runtime, timed and counted in the metrics.
    fn spawn<F>(&self, op: &'static str, f: impl FnOnce(Arc<Ksfs>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let timer = self.fs.metrics.op(op);
        let work = f(self.fs.clone());
        self.rt.spawn(async move {
            work.await;
            drop(timer);
        });
    }
}

fn entry(fs: &Ksfs, reply: ReplyEntry, r: Result<pb::Attr, Errno>) {
    match r {
        Ok(a) => {
            fs.dir_modes.note(&a);
            reply.entry_with_ttls(
                &fs.attr_ttl,
                &fs.entry_ttl,
                &file_attr(&fs.inos, &a),
                Generation(0),
            )
        }
        Err(e) => reply.error(e),
    }
}

fn attr(fs: &Ksfs, reply: ReplyAttr, r: Result<pb::Attr, Errno>) {
    match r {
        Ok(a) => {
            fs.dir_modes.note(&a);
            reply.attr(&fs.attr_ttl, &file_attr(&fs.inos, &a))
        }
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

fn xattr_reply(reply: ReplyXattr, size: u32, r: Result<Vec<u8>, Errno>) {
    match r {
        Ok(v) if size == 0 => reply.size(v.len() as u32),
        Ok(v) if v.len() > size as usize => reply.error(Errno::ERANGE),
        Ok(v) => reply.data(&v),
        Err(e) => reply.error(e),
    }
}

fn time_ns(t: Option<TimeOrNow>) -> (Option<i64>, bool) {
    match t {
        None => (None, false),
        Some(TimeOrNow::Now) => (None, true),
        Some(TimeOrNow::SpecificTime(t)) => (Some(ns_of(t)), false),
    }
}

fn is_write(flags: OpenFlags) -> bool {
    flags.acc_mode() != OpenAccMode::O_RDONLY
}

fn caller(req: &Request) -> Caller {
    Caller {
        uid: req.uid(),
        gid: req.gid(),
        pid: req.pid(),
    }
}

fn is_read(flags: OpenFlags) -> bool {
    flags.acc_mode() != OpenAccMode::O_WRONLY
}

impl Filesystem for KsfsFuse {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // No FUSE_HANDLE_KILLPRIV_V2: the kernel then clears setuid/setgid itself (a
        // SETATTR, only when its cached mode has them) before a write, truncate or
        // fallocate by a caller without CAP_FSETID, with FUSE's own rule (setgid only with
        // group exec; VFS also drops it when the caller is not in the file's group, which
        // `Ksfs::fallocate` adds). With it, every write would have to carry that work.
        for flag in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_POSIX_ACL,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ASYNC_DIO,
            InitFlags::FUSE_CACHE_SYMLINKS,
            // File handles (name_to_handle_at / NFS export): the kernel finds an inode by
            // number with a lookup of "." in it (see `Ksfs::lookup`).
            InitFlags::FUSE_EXPORT_SUPPORT,
            // The umask comes with the request; we apply it, or a default ACL instead.
            InitFlags::FUSE_DONT_MASK,
        ] {
            if config.add_capabilities(flag).is_err() {
                tracing::debug!(?flag, "kernel does not offer capability");
            }
        }
        if let Err(nearest) = config.set_max_write(MAX_WRITE) {
            let _ = config.set_max_write(nearest);
        }
        if let Err(nearest) = config.set_max_readahead(MAX_WRITE) {
            let _ = config.set_max_readahead(nearest);
        }
        let _ = config.set_max_background(64);
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let name = name.to_owned();
        self.spawn("lookup", move |fs| async move {
            let r = fs.lookup(fs.ino(parent), &name).await;
            entry(&fs, reply, r)
        });
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.spawn("getattr", move |fs| async move {
            let r = fs.getattr(fs.ino(ino)).await;
            attr(&fs, reply, r)
        });
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let (atime_ns, atime_now) = time_ns(atime);
        let (mtime_ns, mtime_now) = time_ns(mtime);
        self.spawn("setattr", move |fs| async move {
            let req = pb::SetAttrRequest {
                bucket: fs.bucket.clone(),
                ino: fs.ino(ino),
                mode: mode.map(|m| m & 0o7777),
                uid,
                gid,
                size,
                atime_ns,
                mtime_ns,
                atime_now,
                mtime_now,
                ctime_ns: ctime.map(ns_of),
                keep_ctime: false,
            };
            let r = fs.setattr(req).await;
            attr(&fs, reply, r)
        });
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.spawn("readlink", move |fs| async move {
            match fs.readlink(fs.ino(ino)).await {
                Ok(t) => reply.data(&t),
                Err(e) => reply.error(e),
            }
        });
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let (who, name) = (caller(req), name.to_owned());
        self.spawn("mknod", move |fs| async move {
            let Some(kind) = kind_of_mode(mode).filter(|k| *k != pb::FileKind::Directory) else {
                return reply.error(Errno::EINVAL);
            };
            let owner = fs.new_owner(fs.ino(parent), mode, umask, false, who).await;
            let (mode, gid, inherited) = match owner {
                Ok(v) => v,
                Err(e) => return reply.error(e),
            };
            let uid = who.uid;
            let r = fs
                .mknod(fs.ino(parent), &name, kind, mode, uid, gid, rdev, true)
                .await;
            if let Ok(a) = &r {
                fs.set_inherited(a.ino, inherited).await;
            }
            entry(&fs, reply, r)
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let (who, name) = (caller(req), name.to_owned());
        self.spawn("mkdir", move |fs| async move {
            let owner = fs.new_owner(fs.ino(parent), mode, umask, true, who).await;
            let (mode, gid, inherited) = match owner {
                Ok(v) => v,
                Err(e) => return reply.error(e),
            };
            let uid = who.uid;
            let r = fs.mkdir(fs.ino(parent), &name, mode, uid, gid).await;
            if let Ok(a) = &r {
                fs.set_inherited(a.ino, inherited).await;
            }
            entry(&fs, reply, r)
        });
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.spawn("unlink", move |fs| async move {
            empty(reply, fs.unlink(fs.ino(parent), &name).await)
        });
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.spawn("rmdir", move |fs| async move {
            empty(reply, fs.rmdir(fs.ino(parent), &name).await)
        });
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let who = caller(req);
        let (name, target) = (link_name.to_owned(), target.to_owned());
        self.spawn("symlink", move |fs| async move {
            let gid = match fs.new_owner(fs.ino(parent), 0o777, 0, false, who).await {
                Ok((_, gid, _)) => gid,
                Err(e) => return reply.error(e),
            };
            let uid = who.uid;
            let r = fs.symlink(fs.ino(parent), &name, &target, uid, gid).await;
            entry(&fs, reply, r)
        });
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let who = caller(req);
        let (name, newname): (OsString, OsString) = (name.to_owned(), newname.to_owned());
        self.spawn("rename", move |fs| async move {
            let (p, np) = (fs.ino(parent), fs.ino(newparent));
            let r = fs.rename(p, &name, np, &newname, flags.bits(), who).await;
            empty(reply, r)
        });
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let newname = newname.to_owned();
        self.spawn("link", move |fs| async move {
            let r = fs.link(fs.ino(ino), fs.ino(newparent), &newname).await;
            entry(&fs, reply, r)
        });
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.spawn("open", move |fs| async move {
            match fs.open(fs.ino(ino), is_read(flags)).await {
                Ok(o) => {
                    let f = if o.keep_cache {
                        FopenFlags::FOPEN_KEEP_CACHE
                    } else {
                        FopenFlags::empty()
                    };
                    reply.opened(FileHandle(o.fh), f)
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.spawn("read", move |fs| async move {
            match fs.read(fs.ino(ino), offset, size).await {
                Ok(b) => reply.data(&b),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let data = data.to_vec();
        self.spawn("write", move |fs| async move {
            match fs.write(fs.ino(ino), offset, &data).await {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.spawn("flush", move |fs| async move {
            empty(reply, fs.flush(fs.ino(ino)).await)
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn("release", move |fs| async move {
            empty(reply, fs.release(fh.0).await)
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn("fsync", move |fs| async move {
            empty(reply, fs.flush(fs.ino(ino)).await)
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        self.spawn("readdir", move |fs| async move {
            match fs.readdir(fs.ino(ino), offset, false).await {
                Ok(items) => {
                    for d in items {
                        if reply.add(fs.inos.to_fuse(d.ino), d.offset, d.kind, &d.name) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        self.spawn("readdirplus", move |fs| async move {
            match fs.readdir(fs.ino(ino), offset, true).await {
                Ok(items) => {
                    for d in items {
                        let a = d.attr.unwrap_or_default();
                        fs.dir_modes.note(&a);
                        let mut fa = file_attr(&fs.inos, &a);
                        fa.ino = fs.inos.to_fuse(d.ino);
                        let ttl = if d.name == "." || d.name == ".." {
                            std::time::Duration::ZERO
                        } else {
                            fs.entry_ttl.min(fs.attr_ttl)
                        };
                        if reply.add(fa.ino, d.offset, &d.name, &ttl, &fa, Generation(0)) {
                            break;
                        }
                    }
                    reply.ok()
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        // Counted so that a directory removed while open stays `fstat`-able (fs/dirs.rs).
        self.fs.dirs.open(self.fs.ino(ino));
        reply.opened(FileHandle(0), FopenFlags::empty());
    }

    fn releasedir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.dirs.release(self.fs.ino(ino));
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // Namespace mutations are durable (Raft-committed) before they are answered.
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.spawn("statfs", move |fs| async move {
            match fs.statfs().await {
                Ok(s) => {
                    let bsize = if s.block_size == 0 {
                        4096
                    } else {
                        s.block_size as u32
                    };
                    let name_max = if s.name_max == 0 { 255 } else { s.name_max };
                    reply.statfs(
                        s.blocks,
                        s.blocks_free,
                        s.blocks_avail,
                        s.files,
                        s.files_free,
                        bsize,
                        name_max,
                        bsize,
                    )
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        let (name, value, who) = (name.to_owned(), value.to_vec(), caller(req));
        self.spawn("setxattr", move |fs| async move {
            let ino = fs.ino(ino);
            if name == "system.posix_acl_access" {
                // The kernel leaves the mode bits an access ACL implies to us.
                match fs.acl_to_mode(ino, &value, who).await {
                    Ok(true) => {
                        // Nothing beyond the mode: keep no ACL, as local filesystems do.
                        let r = match fs.removexattr(ino, &name).await {
                            Err(e) if e == Errno::ENODATA => Ok(()),
                            r => r,
                        };
                        return empty(reply, r);
                    }
                    Ok(false) => {}
                    Err(e) => return reply.error(e),
                }
            }
            empty(reply, fs.setxattr(ino, &name, value, flags).await)
        });
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let name = name.to_owned();
        self.spawn("getxattr", move |fs| async move {
            let r = fs.getxattr(fs.ino(ino), &name).await;
            xattr_reply(reply, size, r)
        });
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.spawn("listxattr", move |fs| async move {
            let r = fs.listxattr(fs.ino(ino)).await;
            xattr_reply(reply, size, r)
        });
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let name = name.to_owned();
        self.spawn("removexattr", move |fs| async move {
            empty(reply, fs.removexattr(fs.ino(ino), &name).await)
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (who, name) = (caller(req), name.to_owned());
        let exclusive = flags & libc::O_EXCL != 0;
        let write = is_write(OpenFlags(flags));
        self.spawn("create", move |fs| async move {
            let owner = fs.new_owner(fs.ino(parent), mode, umask, false, who).await;
            let (mode, gid, inherited) = match owner {
                Ok(v) => v,
                Err(e) => return reply.error(e),
            };
            let uid = who.uid;
            let r = fs
                .create(fs.ino(parent), &name, mode, uid, gid, exclusive, write)
                .await;
            if let Ok(o) = &r {
                fs.set_inherited(o.attr.ino, inherited).await;
            }
            match r {
                Ok(o) => reply.created(
                    &fs.entry_ttl,
                    &file_attr(&fs.inos, &o.attr),
                    Generation(0),
                    FileHandle(o.fh),
                    FopenFlags::empty(),
                ),
                Err(e) => reply.error(e),
            }
        });
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let who = caller(req);
        self.spawn("fallocate", move |fs| async move {
            empty(
                reply,
                fs.fallocate(fs.ino(ino), offset, length, mode, who).await,
            )
        });
    }
}
