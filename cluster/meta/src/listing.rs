//! ListObjects in UTF-8 byte order of full keys, walking the tree (not loading it).
//!
//! Children are fetched in `sort_name` order (name, or `name/` for a directory): since no
//! sort name is a prefix of a sibling's (except a file `a` before anything below `a/`,
//! whose key it precedes anyway), a depth-first walk in that order yields keys in byte
//! order — `a.b` before `a/b`, unlike a plain tree walk. A page seeks to its start key
//! with one indexed query per path segment, then reads children in batches; a common
//! prefix (delimiter) is skipped by seeking past it, so a page costs about
//! O(depth + page size) queries whatever the bucket holds.

use crate::bucket_rows;
use crate::error::Result;
use crate::inode::Inode;
use crate::tree;
use kdss_proto::master::{ListObjectsReply, ListObjectsRequest, ObjectInfo};
use sqlx::SqliteConnection;
use std::collections::VecDeque;

/// Most keys + common prefixes one page returns (as S3).
pub const MAX_KEYS: u32 = 1000;
const BATCH: i64 = 128;

/// One key the walk yields: a regular file, or an explicit directory marker (`dir/`).
pub struct Entry {
    /// The full key.
    pub key: Vec<u8>,
    /// Its inode.
    pub inode: Inode,
}

struct Frame {
    dir: u64,
    prefix: Vec<u8>,
    after: Vec<u8>,
    inclusive: bool,
    buf: VecDeque<(Vec<u8>, String, Inode)>,
    exhausted: bool,
}

impl Frame {
    fn new(dir: u64, prefix: Vec<u8>, after: Vec<u8>, inclusive: bool) -> Frame {
        Frame {
            dir,
            prefix,
            after,
            inclusive,
            buf: VecDeque::new(),
            exhausted: false,
        }
    }

    async fn fill(&mut self, c: &mut SqliteConnection) -> Result<()> {
        let sql = if self.inclusive {
            "SELECT d.sort_name AS sort_name, d.name AS dname, i.* FROM dentries d \
             JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND d.sort_name >= ? \
             ORDER BY d.sort_name LIMIT ?"
        } else {
            "SELECT d.sort_name AS sort_name, d.name AS dname, i.* FROM dentries d \
             JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND d.sort_name > ? \
             ORDER BY d.sort_name LIMIT ?"
        };
        let rows = sqlx::query(sql)
            .bind(self.dir as i64)
            .bind(&self.after)
            .bind(BATCH)
            .fetch_all(&mut *c)
            .await?;
        use sqlx::Row;
        self.exhausted = (rows.len() as i64) < BATCH;
        for r in &rows {
            let sort: Vec<u8> = r.try_get("sort_name")?;
            let name: String = r.try_get("dname")?;
            self.buf.push_back((sort, name, Inode::from_row(r)?));
        }
        if let Some((last, _, _)) = self.buf.back() {
            self.after = last.clone();
            self.inclusive = false;
        }
        Ok(())
    }
}

/// A depth-first walk of a bucket's tree in key order, from a seek position.
pub struct Walker {
    stack: Vec<Frame>,
    pending: Option<Entry>,
}

impl Walker {
    /// Positions the walk at the first key `> bound` (or `>= bound` when `inclusive`).
    /// `bound` is bytes: it may end in 0xFF to skip everything under a prefix.
    pub async fn seek(
        c: &mut SqliteConnection,
        root: u64,
        bound: &[u8],
        inclusive: bool,
    ) -> Result<Walker> {
        let mut w = Walker {
            stack: Vec::new(),
            pending: None,
        };
        let (mut dir, mut prefix, mut rem) = (root, Vec::new(), bound);
        loop {
            let Some(slash) = rem.iter().position(|&b| b == b'/') else {
                w.stack
                    .push(Frame::new(dir, prefix, rem.to_vec(), inclusive));
                return Ok(w);
            };
            let (comp, rest) = (&rem[..slash], &rem[slash + 1..]);
            let mut after = comp.to_vec();
            after.push(b'/');
            w.stack
                .push(Frame::new(dir, prefix.clone(), after.clone(), false));
            let child = match std::str::from_utf8(comp) {
                Ok(name) if !name.is_empty() => tree::child(c, dir, name).await?,
                _ => None,
            };
            let Some((_, inode)) = child.filter(|(_, i)| i.is_dir()) else {
                return Ok(w);
            };
            let mut sub = prefix;
            sub.extend_from_slice(&after);
            if inclusive && rest.is_empty() && !inode.implicit {
                w.pending = Some(Entry {
                    key: sub.clone(),
                    inode: inode.clone(),
                });
            }
            dir = inode.ino;
            prefix = sub;
            rem = rest;
        }
    }

    /// The next key in byte order, or None at the end of the bucket.
    pub async fn next(&mut self, c: &mut SqliteConnection) -> Result<Option<Entry>> {
        loop {
            if let Some(p) = self.pending.take() {
                return Ok(Some(p));
            }
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            if top.buf.is_empty() {
                if !top.exhausted {
                    top.fill(c).await?;
                }
                if top.buf.is_empty() {
                    self.stack.pop();
                    continue;
                }
            }
            let Some((_, name, inode)) = top.buf.pop_front() else {
                continue;
            };
            let mut key = top.prefix.clone();
            key.extend_from_slice(name.as_bytes());
            if inode.is_dir() {
                key.push(b'/');
                self.stack
                    .push(Frame::new(inode.ino, key.clone(), Vec::new(), false));
                if !inode.implicit {
                    return Ok(Some(Entry { key, inode }));
                }
            } else if inode.is_file() {
                return Ok(Some(Entry { key, inode }));
            }
        }
    }
}

fn object_info(e: Entry) -> ObjectInfo {
    let i = &e.inode;
    ObjectInfo {
        key: String::from_utf8_lossy(&e.key).into_owned(),
        size: if i.is_dir() { 0 } else { i.size },
        etag: i.etag_quoted(),
        mtime_ns: i.mtime_ns,
        meta: None,
        ino: i.ino,
        is_dir: i.is_dir(),
        owner: i.owner.clone(),
        version: i.version,
    }
}

/// One page of ListObjects: keys after `start_after`, under `prefix`, with `delimiter`
/// folding into common prefixes; `max_keys` (capped at 1000; 0 = an empty page) counts
/// objects and prefixes. `next_marker` = the last key or prefix returned.
pub async fn list_objects(
    c: &mut SqliteConnection,
    r: &ListObjectsRequest,
) -> Result<ListObjectsReply> {
    let b = bucket_rows::need_bucket(c, &r.bucket).await?;
    let max = r.max_keys.min(MAX_KEYS) as usize;
    let mut out = ListObjectsReply::default();
    if max == 0 {
        return Ok(out);
    }
    let prefix = r.prefix.as_bytes();
    let start = r.start_after.as_bytes();
    let delim = r.delimiter.as_bytes();
    let mut w = if start >= prefix {
        Walker::seek(c, b.root_ino, start, false).await?
    } else {
        Walker::seek(c, b.root_ino, prefix, true).await?
    };
    let mut count = 0;
    while let Some(e) = w.next(c).await? {
        if !e.key.starts_with(prefix) {
            if e.key.as_slice() > prefix {
                break;
            }
            continue;
        }
        let tail = &e.key[prefix.len()..];
        let cut = (!delim.is_empty())
            .then(|| tail.windows(delim.len()).position(|win| win == delim))
            .flatten();
        if let Some(pos) = cut {
            let cp = e.key[..prefix.len() + pos + delim.len()].to_vec();
            let mut past = cp.clone();
            past.push(0xFF);
            if cp.as_slice() > start {
                if count == max {
                    out.is_truncated = true;
                    break;
                }
                out.next_marker = String::from_utf8_lossy(&cp).into_owned();
                out.common_prefixes.push(out.next_marker.clone());
                count += 1;
            }
            w = Walker::seek(c, b.root_ino, &past, false).await?;
            continue;
        }
        if count == max {
            out.is_truncated = true;
            break;
        }
        let info = object_info(e);
        out.next_marker = info.key.clone();
        out.objects.push(info);
        count += 1;
    }
    Ok(out)
}
