//! The read cache: blocks of shards (`(stripe, shard, block)` → bytes) in an LRU with a byte
//! budget. Stripes are immutable once committed, so a cached block never goes stale. The
//! block granularity lets a random 4 KiB read fetch one block instead of a whole shard, while
//! a sequential read fetches a whole shard range in one call and caches it block by block.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use lru::LruCache;

/// Bytes per cache block (shard coordinates). Small enough that a cold random 4 KiB read is
/// cheap, large enough that a 4 MiB stripe is a few dozen entries.
pub const BLOCK_SIZE: u64 = 64 << 10;

/// `(stripe_id, shard_index, block_index)`.
pub type BlockKey = (u64, u32, u64);

/// Hit/miss counters, for benches and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub bytes: u64,
    pub entries: u64,
    /// Stripe ranges read ahead into the cache for sequential readers.
    pub prefetches: u64,
    /// Bytes those read-aheads asked for.
    pub prefetch_bytes: u64,
}

/// An LRU of shard blocks bounded by bytes, not entries.
pub struct BlockCache {
    inner: Mutex<Inner>,
    budget: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    prefetches: AtomicU64,
    prefetch_bytes: AtomicU64,
}

struct Inner {
    lru: LruCache<BlockKey, Bytes>,
    bytes: u64,
}

impl BlockCache {
    /// A cache holding at most `budget` bytes (0 disables caching).
    pub fn new(budget: u64) -> Self {
        BlockCache {
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            prefetches: AtomicU64::new(0),
            prefetch_bytes: AtomicU64::new(0),
        }
    }

    /// The block, marking it recently used.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        let r = self.inner.lock().expect("cache lock").lru.get(key).cloned();
        if r.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Whether the block is cached, without touching recency or counters.
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.inner.lock().expect("cache lock").lru.contains(key)
    }

    /// Inserts (or replaces) a block and evicts the least recently used ones past the budget.
    pub fn insert(&self, key: BlockKey, data: Bytes) {
        let len = data.len() as u64;
        if len > self.budget {
            return;
        }
        let mut g = self.inner.lock().expect("cache lock");
        if let Some(old) = g.lru.put(key, data) {
            g.bytes -= old.len() as u64;
        }
        g.bytes += len;
        while g.bytes > self.budget {
            match g.lru.pop_lru() {
                Some((_, v)) => g.bytes -= v.len() as u64,
                None => break,
            }
        }
    }

    /// Drops everything (benches measure a cold cache with it).
    pub fn clear(&self) {
        let mut g = self.inner.lock().expect("cache lock");
        g.lru.clear();
        g.bytes = 0;
    }

    /// Counters and occupancy.
    pub fn stats(&self) -> CacheStats {
        let g = self.inner.lock().expect("cache lock");
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes: g.bytes,
            entries: g.lru.len() as u64,
            prefetches: self.prefetches.load(Ordering::Relaxed),
            prefetch_bytes: self.prefetch_bytes.load(Ordering::Relaxed),
        }
    }

    /// Counts one read-ahead of `len` bytes into the cache (the metrics' prefetch figures).
    pub fn note_prefetch(&self, len: u64) {
        self.prefetches.fetch_add(1, Ordering::Relaxed);
        self.prefetch_bytes.fetch_add(len, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let c = BlockCache::new(100);
        c.insert((1, 0, 0), Bytes::from(vec![0u8; 40]));
        c.insert((1, 0, 1), Bytes::from(vec![0u8; 40]));
        assert!(c.get(&(1, 0, 0)).is_some()); // (1,0,1) is now the oldest
        c.insert((1, 0, 2), Bytes::from(vec![0u8; 40]));
        assert!(c.get(&(1, 0, 1)).is_none());
        assert!(c.get(&(1, 0, 0)).is_some());
        assert_eq!(c.stats().bytes, 80);
    }

    #[test]
    fn a_block_larger_than_the_budget_is_not_cached() {
        let c = BlockCache::new(10);
        c.insert((1, 0, 0), Bytes::from(vec![0u8; 11]));
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 0,
                misses: 0,
                bytes: 0,
                entries: 0,
                prefetches: 0,
                prefetch_bytes: 0,
            }
        );
    }

    proptest! {
        /// Accounting stays exact and within budget through any insert sequence.
        #[test]
        fn bytes_match_entries_and_stay_in_budget(
            ops in proptest::collection::vec((0u64..20, 0usize..50), 1..200),
            budget in 0u64..300,
        ) {
            let c = BlockCache::new(budget);
            for (k, len) in ops {
                c.insert((k, 0, 0), Bytes::from(vec![1u8; len]));
                let g = c.inner.lock().unwrap();
                let sum: u64 = g.lru.iter().map(|(_, v)| v.len() as u64).sum();
                prop_assert_eq!(sum, g.bytes);
                prop_assert!(g.bytes <= budget);
            }
        }
    }
}
