//! User secrets for SigV4, fetched from the master with GetUserSecret (service identity
//! only) and kept briefly so a burst of requests costs one master call, while a deleted
//! user or a rotated key stops working within the TTL.
//!
//! Unknown keys cost the master as little as known ones: "unknown" is remembered for
//! `[s3] unknown_key_cache_secs`, concurrent misses on one key share one lookup, lookups of
//! different keys run at most [`MAX_CONCURRENT_LOOKUPS`] at a time, and a key that cannot
//! exist (longer than the master allows, or with spaces or commas) is refused without
//! asking. Both caches are bounded in entries.

use crate::error::{Code, S3Error, S3Result};
use crate::metrics::{GatewayMetrics, LookupResult};
use kdss_client::Client;
use kdss_proto::master as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Master lookups of different keys in flight at once (a flood of random keys queues here
/// instead of at the master).
pub const MAX_CONCURRENT_LOOKUPS: usize = 16;

/// Entries each cache holds at most; past it expired entries go, then everything.
const MAX_ENTRIES: usize = 10_000;

/// Longest access key the master accepts (`kdss_meta::accounts::create_user`).
const MAX_ACCESS_KEY_LEN: usize = 128;

/// The cache. Cheap to clone.
#[derive(Clone)]
pub struct SecretCache {
    client: Client,
    ttl: Duration,
    unknown_ttl: Duration,
    known: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    unknown: Arc<Mutex<HashMap<String, Instant>>>,
    /// One lock per key being looked up: concurrent misses wait for the first.
    pending: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    lookups: Arc<tokio::sync::Semaphore>,
    metrics: Arc<GatewayMetrics>,
}

fn invalid_key() -> S3Error {
    S3Error::new(
        Code::InvalidAccessKeyId,
        "The AWS Access Key Id you provided does not exist in our records.",
    )
}

/// Drops expired entries when the map is full, and clears it if that was not enough.
fn make_room<V>(map: &mut HashMap<String, V>, expired: impl Fn(&V) -> bool) {
    if map.len() >= MAX_ENTRIES {
        map.retain(|_, v| !expired(v));
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
}

/// Removes the per-key lock when the last request that waited on it is done, even when
/// that request is cancelled (the client went away) mid-lookup.
struct PendingGuard<'a> {
    cache: &'a SecretCache,
    key: &'a str,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let mut pending = self.cache.pending.lock().expect("poisoned");
        // Only the map's reference and ours are left: nobody else waits on this lock.
        let ours = pending
            .get(self.key)
            .is_some_and(|l| Arc::ptr_eq(l, &self.lock));
        if ours && Arc::strong_count(&self.lock) <= 2 {
            pending.remove(self.key);
        }
    }
}

impl SecretCache {
    /// A cache over `client` (signed in as the service identity): secrets kept for `ttl`,
    /// unknown keys remembered for `unknown_ttl` (zero: not remembered).
    pub fn new(
        client: Client,
        ttl: Duration,
        unknown_ttl: Duration,
        metrics: Arc<GatewayMetrics>,
    ) -> Self {
        SecretCache {
            client,
            ttl,
            unknown_ttl,
            known: Arc::default(),
            unknown: Arc::default(),
            pending: Arc::default(),
            lookups: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_LOOKUPS)),
            metrics,
        }
    }

    /// What the caches say about `access_key`: `Some(Ok)` a fresh secret, `Some(Err)` a
    /// fresh "unknown", `None` ask the master.
    fn cached(&self, access_key: &str) -> Option<S3Result<String>> {
        if let Some((s, at)) = self.known.lock().expect("poisoned").get(access_key)
            && at.elapsed() < self.ttl
        {
            return Some(Ok(s.clone()));
        }
        if let Some(at) = self.unknown.lock().expect("poisoned").get(access_key)
            && at.elapsed() < self.unknown_ttl
        {
            return Some(Err(invalid_key()));
        }
        None
    }

    /// The secret of `access_key`, or InvalidAccessKeyId.
    pub async fn secret(&self, access_key: &str) -> S3Result<String> {
        if access_key.is_empty()
            || access_key.len() > MAX_ACCESS_KEY_LEN
            || access_key.contains(|c: char| c.is_whitespace() || c == ',')
        {
            return Err(invalid_key());
        }
        if let Some(r) = self.cached(access_key) {
            return r;
        }
        let lock = self
            .pending
            .lock()
            .expect("poisoned")
            .entry(access_key.to_string())
            .or_default()
            .clone();
        let guard = PendingGuard {
            cache: self,
            key: access_key,
            lock,
        };
        let _turn = guard.lock.lock().await;
        // Whoever held the lock before us may have answered our question.
        if let Some(r) = self.cached(access_key) {
            return r;
        }
        let _permit = self.lookups.acquire().await.expect("never closed");
        let req = pb::GetUserSecretRequest {
            access_key: access_key.to_string(),
        };
        let reply = self.client.master().get_user_secret(req).await;
        match reply {
            Ok(r) => {
                self.metrics.secret_lookup(LookupResult::Found);
                let mut map = self.known.lock().expect("poisoned");
                make_room(&mut map, |(_, at)| at.elapsed() >= self.ttl);
                map.insert(
                    access_key.to_string(),
                    (r.secret_key.clone(), Instant::now()),
                );
                drop(map);
                self.unknown.lock().expect("poisoned").remove(access_key);
                Ok(r.secret_key)
            }
            Err(e) => {
                let not_found = matches!(&e, kdss_client::ClientError::Master(s)
                    if s.code() == tonic::Code::NotFound);
                if not_found {
                    self.metrics.secret_lookup(LookupResult::Unknown);
                    if !self.unknown_ttl.is_zero() {
                        let mut map = self.unknown.lock().expect("poisoned");
                        make_room(&mut map, |at| at.elapsed() >= self.unknown_ttl);
                        map.insert(access_key.to_string(), Instant::now());
                    }
                    Err(invalid_key())
                } else {
                    self.metrics.secret_lookup(LookupResult::Error);
                    Err(e.into())
                }
            }
        }
    }
}
