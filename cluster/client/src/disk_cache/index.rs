//! Which entries the cache directory holds, their sizes and their recency, in memory: the
//! size bound is kept here (evicting least recently used first) and a lookup that misses
//! costs no disk access. Rebuilt from the directory's file names at start, oldest
//! modification first, so a remount finds what the last mount cached.

use lru::LruCache;

use crate::cache::BlockKey;

/// An entry's identity: a hash of the cluster name it was written for, and its block.
/// Entries of another cluster count against the bound like any other until evicted.
pub type EntryId = (u32, BlockKey);

/// The space an entry of `len` bytes takes: whole 4 KiB file-system blocks, so the bound
/// is close to what `du` shows.
pub fn on_disk(len: u64) -> u64 {
    len.div_ceil(4096) * 4096
}

/// Entries by recency, with their on-disk sizes, bounded by `limit` bytes.
pub struct Index {
    lru: LruCache<EntryId, u64>,
    bytes: u64,
    limit: u64,
}

impl Index {
    /// An empty index bounded by `limit` bytes.
    pub fn new(limit: u64) -> Index {
        Index {
            lru: LruCache::unbounded(),
            bytes: 0,
            limit,
        }
    }

    /// Whether `id` is held, marking it recently used.
    pub fn touch(&mut self, id: &EntryId) -> bool {
        self.lru.get(id).is_some()
    }

    /// Whether `id` is held, without touching recency.
    pub fn contains(&self, id: &EntryId) -> bool {
        self.lru.contains(id)
    }

    /// Records `id` (`size` bytes on disk) as most recently used and returns the entries
    /// evicted to stay within the limit, for the caller to delete. An entry larger than the
    /// whole limit is returned itself.
    pub fn insert(&mut self, id: EntryId, size: u64) -> Vec<EntryId> {
        if size > self.limit {
            return vec![id];
        }
        if let Some(old) = self.lru.put(id, size) {
            self.bytes -= old;
        }
        self.bytes += size;
        let mut evicted = Vec::new();
        while self.bytes > self.limit {
            match self.lru.pop_lru() {
                Some((k, s)) => {
                    self.bytes -= s;
                    evicted.push(k);
                }
                None => break,
            }
        }
        evicted
    }

    /// Forgets `id` (deleted, or found corrupt).
    pub fn remove(&mut self, id: &EntryId) {
        if let Some(s) = self.lru.pop(id) {
            self.bytes -= s;
        }
    }

    /// Bytes on disk of the entries held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lru.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u64) -> EntryId {
        (1, (9, 0, b))
    }

    #[test]
    fn evicts_least_recently_used_past_the_limit() {
        let mut ix = Index::new(3 * 4096);
        for b in 0..3 {
            assert!(ix.insert(id(b), 4096).is_empty());
        }
        assert!(ix.touch(&id(0))); // 1 is now the oldest
        assert_eq!(ix.insert(id(3), 4096), vec![id(1)]);
        assert_eq!(ix.insert(id(4), 8192), vec![id(2), id(0)]);
        assert_eq!((ix.len(), ix.bytes()), (2, 3 * 4096));
        assert_eq!(
            ix.insert(id(5), 4 * 4096),
            vec![id(5)],
            "larger than the bound"
        );
        ix.remove(&id(3));
        assert_eq!((ix.len(), ix.bytes()), (1, 8192));
    }

    #[test]
    fn sizes_round_up_to_file_system_blocks() {
        assert_eq!(on_disk(0), 0);
        assert_eq!(on_disk(1), 4096);
        assert_eq!(on_disk(65536 + 42), 69632);
    }
}
