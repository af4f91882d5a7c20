//! Which entry files the cache directory holds, in memory: each file's run of blocks, its
//! size and its recency, and for each block the file that holds it. The size bound is kept
//! here (evicting the least recently used file first) and a lookup that misses costs no
//! disk access. Rebuilt from the directory's file names at start, oldest modification
//! first, so a remount finds what the last mount cached.

use std::collections::HashMap;

use lru::LruCache;

use crate::cache::BlockKey;

/// A block's identity in the cache: a hash of the cluster name it was written for, and its
/// key. Entries of another cluster count against the bound like any other until evicted.
pub type EntryId = (u32, BlockKey);

/// An entry file's identity: the [`EntryId`] of its first block and its block count.
pub type FileId = (EntryId, u32);

/// The space a file of `len` bytes takes: whole 4 KiB file-system blocks, so the bound is
/// close to what `du` shows.
pub fn on_disk(len: u64) -> u64 {
    len.div_ceil(4096) * 4096
}

/// The ids of the blocks file `f` holds.
pub fn blocks_of(f: FileId) -> impl Iterator<Item = EntryId> {
    let ((tag, (s, sh, first)), n) = f;
    (first..first + u64::from(n)).map(move |b| (tag, (s, sh, b)))
}

/// Files by recency with their on-disk sizes, bounded by `limit` bytes, and the file of
/// each block.
pub struct Index {
    files: LruCache<FileId, u64>,
    blocks: HashMap<EntryId, FileId>,
    bytes: u64,
    limit: u64,
}

impl Index {
    /// An empty index bounded by `limit` bytes.
    pub fn new(limit: u64) -> Index {
        Index {
            files: LruCache::unbounded(),
            blocks: HashMap::new(),
            bytes: 0,
            limit,
        }
    }

    /// The file holding block `id`, marking that file recently used.
    pub fn touch(&mut self, id: &EntryId) -> Option<FileId> {
        let f = *self.blocks.get(id)?;
        self.files.get(&f);
        Some(f)
    }

    /// Whether block `id` is held, without touching recency.
    pub fn contains(&self, id: &EntryId) -> bool {
        self.blocks.contains_key(id)
    }

    /// Records file `f` (`size` bytes on disk) as most recently used, as the holder of all
    /// its blocks, and returns the files evicted to stay within the limit, for the caller to
    /// delete. A file larger than the whole limit is returned itself.
    pub fn insert(&mut self, f: FileId, size: u64) -> Vec<FileId> {
        if size > self.limit {
            return vec![f];
        }
        if let Some(old) = self.files.put(f, size) {
            self.bytes -= old;
        }
        self.bytes += size;
        for b in blocks_of(f) {
            // A file left by a crash between an eviction's index update and its delete may
            // hold some of the same blocks: the newer one serves them.
            self.blocks.insert(b, f);
        }
        let mut evicted = Vec::new();
        while self.bytes > self.limit {
            match self.files.pop_lru() {
                Some((g, s)) => {
                    self.bytes -= s;
                    self.unmap(g);
                    evicted.push(g);
                }
                None => break,
            }
        }
        evicted
    }

    /// Forgets block `id` alone (found torn or corrupt); its file stays until evicted.
    pub fn forget_block(&mut self, id: &EntryId) {
        self.blocks.remove(id);
    }

    /// Forgets file `f` (deleted, or its header found bad); returns how many blocks it
    /// still held.
    pub fn remove(&mut self, f: &FileId) -> usize {
        match self.files.pop(f) {
            Some(s) => {
                self.bytes -= s;
                self.unmap(*f)
            }
            None => 0,
        }
    }

    /// Drops the block entries that point at `f`; returns how many there were.
    fn unmap(&mut self, f: FileId) -> usize {
        let mut n = 0;
        for b in blocks_of(f) {
            if self.blocks.get(&b) == Some(&f) {
                self.blocks.remove(&b);
                n += 1;
            }
        }
        n
    }

    /// Bytes on disk of the files held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Blocks held.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Files held.
    pub fn files(&self) -> usize {
        self.files.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(b: u64, n: u32) -> FileId {
        ((1, (9, 0, b)), n)
    }

    fn id(b: u64) -> EntryId {
        (1, (9, 0, b))
    }

    #[test]
    fn evicts_least_recently_used_files_past_the_limit() {
        let mut ix = Index::new(3 * 4096);
        for b in 0..3 {
            assert!(ix.insert(file(b, 1), 4096).is_empty());
        }
        assert_eq!(ix.touch(&id(0)), Some(file(0, 1))); // 1 is now the oldest
        assert_eq!(ix.insert(file(3, 1), 4096), vec![file(1, 1)]);
        assert!(!ix.contains(&id(1)));
        assert_eq!(ix.insert(file(4, 1), 8192), vec![file(2, 1), file(0, 1)]);
        assert_eq!((ix.files(), ix.bytes()), (2, 3 * 4096));
        assert_eq!(
            ix.insert(file(5, 1), 4 * 4096),
            vec![file(5, 1)],
            "larger than the bound"
        );
        ix.remove(&file(3, 1));
        assert_eq!((ix.files(), ix.blocks(), ix.bytes()), (1, 1, 8192));
    }

    #[test]
    fn a_run_maps_each_block_and_goes_as_one_file() {
        let mut ix = Index::new(10 * 4096);
        assert!(ix.insert(file(10, 4), 4 * 4096).is_empty());
        assert!(ix.insert(file(20, 2), 2 * 4096).is_empty());
        assert_eq!(ix.touch(&id(12)), Some(file(10, 4)));
        assert_eq!(ix.touch(&id(14)), None);
        ix.forget_block(&id(12));
        assert_eq!((ix.files(), ix.blocks()), (2, 5), "the file stays");
        // 20..22 is now the oldest file, then 10..14.
        assert_eq!(
            ix.insert(file(30, 8), 8 * 4096),
            vec![file(20, 2), file(10, 4)]
        );
        assert_eq!((ix.files(), ix.blocks(), ix.bytes()), (1, 8, 8 * 4096));
    }

    #[test]
    fn an_overlapping_older_file_keeps_only_the_blocks_no_newer_file_holds() {
        let mut ix = Index::new(100 * 4096);
        ix.insert(file(0, 4), 4 * 4096);
        ix.insert(file(2, 4), 4 * 4096);
        assert_eq!(ix.touch(&id(1)), Some(file(0, 4)));
        assert_eq!(ix.touch(&id(3)), Some(file(2, 4)));
        assert_eq!(ix.remove(&file(0, 4)), 2);
        assert_eq!(
            ix.touch(&id(3)),
            Some(file(2, 4)),
            "not the older file's to drop"
        );
        assert_eq!(ix.blocks(), 4);
    }

    #[test]
    fn sizes_round_up_to_file_system_blocks() {
        assert_eq!(on_disk(0), 0);
        assert_eq!(on_disk(1), 4096);
        assert_eq!(on_disk(65536 + 42), 69632);
    }
}
