//! Translation between the master's namespace records and what the kernel sees:
//! inode numbers (the bucket root is FUSE inode 1), file kinds and attributes.

use fuser::{FileAttr, FileType, INodeNo};
use kdss_proto::master as pb;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Block size reported in `st_blksize`.
pub const BLKSIZE: u32 = 4096;

/// Maps master inode numbers to FUSE inode numbers and back. The kernel insists that the
/// root is inode 1, so the bucket root and master inode 1 swap places (a bijection, so
/// every other inode keeps its number).
#[derive(Debug, Clone, Copy)]
pub struct InoMap {
    root: u64,
}

impl InoMap {
    /// A map for a bucket whose root has master inode `root`.
    pub fn new(root: u64) -> Self {
        InoMap { root }
    }
    /// The master inode behind a kernel inode number.
    pub fn to_master(&self, fuse: INodeNo) -> u64 {
        let f = fuse.0;
        if f == 1 {
            self.root
        } else if f == self.root {
            1
        } else {
            f
        }
    }
    /// The kernel inode number of a master inode.
    pub fn to_fuse(&self, master: u64) -> INodeNo {
        if master == self.root {
            INodeNo(1)
        } else if master == 1 {
            INodeNo(self.root)
        } else {
            INodeNo(master)
        }
    }
}

/// The kernel's file type for a master kind.
pub fn file_type(kind: i32) -> FileType {
    match pb::FileKind::try_from(kind).unwrap_or(pb::FileKind::Regular) {
        pb::FileKind::Directory => FileType::Directory,
        pb::FileKind::Symlink => FileType::Symlink,
        pb::FileKind::Fifo => FileType::NamedPipe,
        pb::FileKind::Socket => FileType::Socket,
        pb::FileKind::CharDevice => FileType::CharDevice,
        pb::FileKind::BlockDevice => FileType::BlockDevice,
        pb::FileKind::Regular | pb::FileKind::Unspecified => FileType::RegularFile,
    }
}

/// The master kind for the `S_IFMT` bits of a mode (mknod).
pub fn kind_of_mode(mode: u32) -> Option<pb::FileKind> {
    Some(match mode & libc::S_IFMT {
        libc::S_IFREG | 0 => pb::FileKind::Regular,
        libc::S_IFIFO => pb::FileKind::Fifo,
        libc::S_IFSOCK => pb::FileKind::Socket,
        libc::S_IFCHR => pb::FileKind::CharDevice,
        libc::S_IFBLK => pb::FileKind::BlockDevice,
        libc::S_IFDIR => pb::FileKind::Directory,
        _ => return None,
    })
}

/// A `SystemTime` from nanoseconds since the epoch (negative = before it).
pub fn time_of(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Nanoseconds since the epoch of a `SystemTime`.
pub fn ns_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

/// The kernel's view of a master attribute record.
pub fn file_attr(map: &InoMap, a: &pb::Attr) -> FileAttr {
    FileAttr {
        ino: map.to_fuse(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: time_of(a.atime_ns),
        mtime: time_of(a.mtime_ns),
        ctime: time_of(a.ctime_ns),
        crtime: time_of(a.crtime_ns),
        kind: file_type(a.kind),
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: BLKSIZE,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ino_map_is_a_bijection_that_puts_the_root_at_one() {
        let m = InoMap::new(57);
        assert_eq!(m.to_fuse(57), INodeNo(1));
        assert_eq!(m.to_master(INodeNo(1)), 57);
        assert_eq!(m.to_fuse(1), INodeNo(57));
        assert_eq!(m.to_master(INodeNo(57)), 1);
        for i in [2u64, 3, 56, 58, 1 << 40] {
            assert_eq!(m.to_master(m.to_fuse(i)), i);
        }
        let same = InoMap::new(1);
        assert_eq!(same.to_fuse(1), INodeNo(1));
        assert_eq!(same.to_master(INodeNo(5)), 5);
    }

    #[test]
    fn times_round_trip_including_before_the_epoch() {
        for ns in [0i64, 1, 1_700_000_000_123_456_789, -5_000_000_001] {
            assert_eq!(ns_of(time_of(ns)), ns);
        }
    }

    #[test]
    fn attr_carries_kind_mode_and_blocks() {
        let a = pb::Attr {
            ino: 9,
            kind: pb::FileKind::Directory as i32,
            mode: 0o41755,
            size: 513,
            nlink: 2,
            ..Default::default()
        };
        let f = file_attr(&InoMap::new(9), &a);
        assert_eq!(f.ino, INodeNo(1));
        assert_eq!(f.kind, FileType::Directory);
        assert_eq!(f.perm, 0o1755);
        assert_eq!(f.blocks, 2);
        assert_eq!(
            kind_of_mode(libc::S_IFIFO | 0o644),
            Some(pb::FileKind::Fifo)
        );
        assert_eq!(kind_of_mode(0o644), Some(pb::FileKind::Regular));
    }
}
