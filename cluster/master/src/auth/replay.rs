//! The replay cache: every nonce a master accepted, for as long as its credential could
//! still pass the time window, so the same credential is never taken twice.
//!
//! An entry for a credential of time `t` is needed until `t + MAX_SKEW_MS` (after that the
//! window refuses it anyway), so entries sit in one-second buckets by credential time and a
//! bucket is dropped once its whole second is out of the window. A replay carries the same
//! `t` (it is signed), so a lookup touches one bucket. The cache is split into shards by
//! nonce, each behind its own mutex, so concurrent calls rarely wait on each other.
//!
//! Bounded: each shard holds at most `capacity / SHARDS` nonces. When a shard is full it
//! drops its oldest bucket and from then on refuses credentials older than that bucket (the
//! accepted window shrinks from the past side; a legitimate client signs just before sending,
//! so its calls still pass). Only when the full shard's oldest bucket is the one being
//! inserted into is the call refused ([`AuthError::Busy`]). The floor falls back as time
//! moves past it.

use kdss_common::auth::{AuthError, MAX_SKEW_MS, NONCE_BYTES};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

/// Shards of the cache; a power of two.
const SHARDS: usize = 16;
/// Width of a time bucket.
const BUCKET_MS: u64 = 1000;
/// Default bound on remembered nonces, all shards together: 2^21 (2 Mi) entries, about
/// 100 MB at worst; with credentials living ~2 minutes that is ~17 000 calls/s sustained
/// before the window starts shrinking.
pub const DEFAULT_CAPACITY: usize = 1 << 21;

/// The nonce alone (128 random bits), whoever signed it: a follower forwarding a call
/// signs it as the service identity with the caller's nonce, and the leader must see that
/// as the same nonce the caller used.
type Entry = [u8; NONCE_BYTES];

#[derive(Default)]
struct Shard {
    buckets: BTreeMap<u64, HashSet<Entry>>,
    len: usize,
    /// Credentials older than this (ms) are refused: their bucket was dropped under load.
    floor_ms: u64,
}

/// Nonces seen within the window; see the module doc.
pub struct ReplayCache {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new(DEFAULT_CAPACITY)
    }
}

impl ReplayCache {
    /// A cache of at most `capacity` nonces (rounded to a multiple of the shard count).
    pub fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Records the nonce of a verified credential of time `unix_ms`; Err when it was
    /// already seen (a replay), or when the cache cannot take it.
    pub fn check_and_insert(
        &self,
        nonce: &[u8; NONCE_BYTES],
        unix_ms: u64,
        now_ms: u64,
    ) -> Result<(), AuthError> {
        let entry = *nonce;
        let shard = &self.shards[usize::from(nonce[0]) % self.shards.len()];
        let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
        s.expire(now_ms);
        if unix_ms < s.floor_ms {
            return Err(AuthError::Skew {
                skew_ms: now_ms.saturating_sub(unix_ms),
                max_ms: now_ms.saturating_sub(s.floor_ms),
            });
        }
        let bucket = unix_ms / BUCKET_MS;
        if s.buckets.get(&bucket).is_some_and(|b| b.contains(&entry)) {
            return Err(AuthError::Replay(hex::encode(nonce)));
        }
        while s.len >= self.per_shard {
            let Some((&oldest, _)) = s.buckets.first_key_value() else {
                break;
            };
            if oldest >= bucket {
                return Err(AuthError::Busy);
            }
            let dropped = s.buckets.remove(&oldest).map_or(0, |b| b.len());
            s.len -= dropped;
            s.floor_ms = (oldest + 1) * BUCKET_MS;
            tracing::warn!(
                floor_ms = s.floor_ms,
                "replay cache full: refusing credentials older than the dropped second"
            );
        }
        s.buckets.entry(bucket).or_default().insert(entry);
        s.len += 1;
        Ok(())
    }

    /// Nonces remembered now (all shards).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len)
            .sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    /// Drops the buckets whose every credential is now outside the window.
    fn expire(&mut self, now_ms: u64) {
        while let Some((&b, _)) = self.buckets.first_key_value() {
            // Latest credential time in bucket b is (b+1)*BUCKET_MS - 1.
            if (b + 1) * BUCKET_MS + MAX_SKEW_MS > now_ms {
                break;
            }
            let dropped = self.buckets.remove(&b).map_or(0, |s| s.len());
            self.len -= dropped;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(i: u64) -> [u8; NONCE_BYTES] {
        let mut n = [0u8; NONCE_BYTES];
        n[..8].copy_from_slice(&i.to_le_bytes());
        n[8..].copy_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
        n
    }

    #[test]
    fn a_nonce_is_taken_once() {
        let c = ReplayCache::new(1000);
        let now = 10 * MAX_SKEW_MS;
        assert_eq!(c.check_and_insert(&nonce(1), now, now), Ok(()));
        assert!(matches!(
            c.check_and_insert(&nonce(1), now, now + 5),
            Err(AuthError::Replay(_))
        ));
        assert_eq!(c.check_and_insert(&nonce(2), now, now), Ok(()));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn entries_expire_with_the_window() {
        let c = ReplayCache::new(1000);
        let t = 10 * MAX_SKEW_MS;
        // One shard (expiry is per shard, when it is next used).
        let n = |i: u64| {
            let mut n = nonce(i);
            n[0] = 3;
            n
        };
        c.check_and_insert(&n(1), t, t).unwrap();
        // Still remembered while the credential could pass the window.
        c.check_and_insert(&n(2), t, t + MAX_SKEW_MS).unwrap();
        assert_eq!(c.len(), 2);
        assert!(matches!(
            c.check_and_insert(&n(1), t, t + MAX_SKEW_MS),
            Err(AuthError::Replay(_))
        ));
        // Gone once every time of its bucket is out of the window.
        c.check_and_insert(&n(3), t + 2 * MAX_SKEW_MS, t + MAX_SKEW_MS + BUCKET_MS)
            .unwrap();
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_full_cache_shrinks_the_window_and_never_grows() {
        let cap = SHARDS * 4;
        let c = ReplayCache::new(cap);
        let t0 = 10 * MAX_SKEW_MS;
        // A flood of distinct valid credentials, one second apart in time.
        for i in 0..(cap as u64 * 10) {
            let t = t0 + (i / 8) * BUCKET_MS;
            let _ = c.check_and_insert(&nonce(i), t, t);
            assert!(c.len() <= cap, "cache grew to {}", c.len());
        }
        // An old credential (dropped under load) is now refused as out of the window,
        // never accepted a second time.
        let r = c.check_and_insert(&nonce(0), t0, t0 + 60 * BUCKET_MS);
        assert!(matches!(r, Err(AuthError::Skew { .. })), "{r:?}");
    }

    #[test]
    fn a_shard_full_within_one_second_refuses_busy() {
        let c = ReplayCache::new(SHARDS);
        let t = 10 * MAX_SKEW_MS;
        let mut n0 = nonce(1);
        n0[0] = 0;
        let mut n1 = nonce(2);
        n1[0] = SHARDS as u8; // same shard
        c.check_and_insert(&n0, t, t).unwrap();
        assert_eq!(c.check_and_insert(&n1, t, t), Err(AuthError::Busy));
    }

    /// Prints the cost of an insert with 1, 2 and 4 threads, sharded and with a single
    /// shard (one mutex) for comparison. No assertion on time.
    #[test]
    fn cost_of_check_and_insert() {
        let now = kdss_common::time::now_ms();
        let n = 200_000u64;
        // Twice each, interleaved: the first runs also pay for fresh pages.
        for (name, shards) in [
            ("16 shards", SHARDS),
            ("1 shard", 1),
            ("16 shards", SHARDS),
            ("1 shard", 1),
        ] {
            for threads in [1u64, 2, 4] {
                let c = ReplayCache {
                    shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
                    per_shard: DEFAULT_CAPACITY / shards,
                };
                let nonces: Vec<Vec<[u8; NONCE_BYTES]>> = (0..threads)
                    .map(|_| (0..n).map(|_| rand::random()).collect())
                    .collect();
                let t = std::time::Instant::now();
                std::thread::scope(|s| {
                    for mine in &nonces {
                        let c = &c;
                        s.spawn(move || {
                            for nn in mine {
                                c.check_and_insert(nn, now, now).unwrap();
                            }
                        });
                    }
                });
                let wall = t.elapsed().as_nanos() as f64;
                println!(
                    "replay cache, {name}, {threads} thread(s): {:.0} ns wall per insert per \
                     thread, {:.0} inserts/s in all",
                    wall / n as f64,
                    (n * threads) as f64 / (wall / 1e9)
                );
            }
        }
    }
}
