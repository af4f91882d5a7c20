//! The inode row and its conversions: one place that knows the `inodes` columns.

use crate::error::Result;
use kdss_proto::master::{Attr, FileKind};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// One inode as stored. u64 wire values are kept as their i64 bit pattern in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Inode {
    /// Inode number (global across buckets, never reused: AUTOINCREMENT).
    pub ino: u64,
    /// The bucket whose tree holds it.
    pub bucket: String,
    /// FileKind number.
    pub kind: i32,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Access time.
    pub atime_ns: i64,
    /// Modification time.
    pub mtime_ns: i64,
    /// Change time.
    pub ctime_ns: i64,
    /// Creation time.
    pub crtime_ns: i64,
    /// Link count (directories: 2 + subdirectories).
    pub nlink: u32,
    /// Device number for device nodes.
    pub rdev: u32,
    /// Bumps on every content change.
    pub version: u64,
    /// Symlink target.
    pub symlink: Option<Vec<u8>>,
    /// Content stored in metadata (the base layer under the extents).
    pub inline_data: Option<Vec<u8>>,
    /// Directory created implicitly by a PutObject.
    pub implicit: bool,
    /// ETag stored by the S3 door (unquoted); None = derived from (ino, version).
    pub etag: Option<String>,
    /// Access key of the user that wrote it through S3.
    pub owner: String,
}

impl Inode {
    /// Reads an inode from a `SELECT * FROM inodes` row.
    pub fn from_row(r: &SqliteRow) -> Result<Inode> {
        Ok(Inode {
            ino: r.try_get::<i64, _>("ino")? as u64,
            bucket: r.try_get("bucket")?,
            kind: r.try_get::<i64, _>("kind")? as i32,
            mode: r.try_get::<i64, _>("mode")? as u32,
            uid: r.try_get::<i64, _>("uid")? as u32,
            gid: r.try_get::<i64, _>("gid")? as u32,
            size: r.try_get::<i64, _>("size")? as u64,
            atime_ns: r.try_get("atime_ns")?,
            mtime_ns: r.try_get("mtime_ns")?,
            ctime_ns: r.try_get("ctime_ns")?,
            crtime_ns: r.try_get("crtime_ns")?,
            nlink: r.try_get::<i64, _>("nlink")? as u32,
            rdev: r.try_get::<i64, _>("rdev")? as u32,
            version: r.try_get::<i64, _>("version")? as u64,
            symlink: r.try_get("symlink")?,
            inline_data: r.try_get("inline_data")?,
            implicit: r.try_get::<i64, _>("implicit")? != 0,
            etag: r.try_get("etag")?,
            owner: r.try_get("owner")?,
        })
    }

    /// The wire attributes.
    pub fn attr(&self) -> Attr {
        Attr {
            ino: self.ino,
            kind: self.kind,
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            atime_ns: self.atime_ns,
            mtime_ns: self.mtime_ns,
            ctime_ns: self.ctime_ns,
            crtime_ns: self.crtime_ns,
            nlink: self.nlink,
            rdev: self.rdev,
            version: self.version,
        }
    }

    /// Is it a directory?
    pub fn is_dir(&self) -> bool {
        self.kind == FileKind::Directory as i32
    }

    /// Is it a regular file?
    pub fn is_file(&self) -> bool {
        self.kind == FileKind::Regular as i32
    }

    /// The ETag S3 shows, quoted. Stored for objects written through S3; for content
    /// written through ksfs it is derived, stable while the content does not change:
    /// `"<md5hex of "kdss:<ino>:<version>">-1"`. The `-1` suffix marks it as not being the
    /// MD5 of the content, so clients do not try to verify downloads against it.
    pub fn etag_quoted(&self) -> String {
        match &self.etag {
            Some(e) => format!("\"{e}\""),
            None if self.is_dir() => format!("\"{EMPTY_MD5}\""),
            None => format!("\"{}\"", derived_etag(self.ino, self.version)),
        }
    }
}

/// MD5 of zero bytes: the ETag of directory markers.
pub const EMPTY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";

/// The documented ETag of content written through ksfs (see [`Inode::etag_quoted`]).
pub fn derived_etag(ino: u64, version: u64) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(format!("kdss:{ino}:{version}").as_bytes());
    format!("{}-1", hex::encode(digest))
}

/// Strips the quotes S3 puts around ETags.
pub fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}
