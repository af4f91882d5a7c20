//! What every identity of one [`crate::Client`] shares: storage channels, the read cache
//! (memory and, when configured, disk), the
//! in-flight fetch table (single-flight), codecs, bucket policies and recently failed nodes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, Shared as SharedFut};
use tokio::sync::Semaphore;

use crate::ClientConfig;
use crate::cache::{BlockCache, BlockKey};
use crate::disk_cache::DiskCache;
use crate::ec::Codecs;
use crate::shard_io::{NodePool, ShardFault};
use crate::write_budget::WriteBudget;

/// A fetch result several readers may await.
pub(crate) type FetchFut = SharedFut<BoxFuture<'static, Result<bytes::Bytes, ShardFault>>>;

/// One in-flight fetch of a run of blocks of one shard.
#[derive(Clone)]
pub(crate) struct InflightRun {
    /// Unique id, so a finished run removes only its own table entries.
    pub id: u64,
    /// Whether `complete` falls back to a degraded read.
    pub degrades: bool,
    /// First block of the run; the result starts at its first byte.
    pub first_block: u64,
    /// Resolves with the bytes read directly from the shard's own disk (never waits on other
    /// fetches, so degraded reads can wait on it without a cycle).
    pub direct: FetchFut,
    /// Resolves with the final bytes, reconstructed from other shards if the direct read failed.
    pub complete: FetchFut,
}

/// How long a node that failed or was slow is read around before being tried again.
pub(crate) const BAD_NODE_TTL: Duration = Duration::from_secs(10);

/// How long a disk whose shard put ran past its deadline gets no new shards from this
/// client: stripes the master places on it move their shard away at once instead of each
/// waiting out a deadline. Longer than a read's [`BAD_NODE_TTL`]: a put that hung cost a
/// whole deadline, a skipped target costs one ReplaceShard.
pub(crate) const SLOW_DISK_TTL: Duration = Duration::from_secs(30);

/// State shared by clones and `acting_for` views of one client.
pub(crate) struct Shared {
    pub cfg: ClientConfig,
    pub nodes: NodePool,
    pub cache: BlockCache,
    /// The read cache's disk tier, when the door configured one.
    pub disk: OnceLock<Arc<DiskCache>>,
    pub codecs: Codecs,
    pub inflight: Mutex<HashMap<BlockKey, InflightRun>>,
    bad_nodes: Mutex<HashMap<String, Instant>>,
    /// disk id → when a shard put to it ran past its deadline.
    slow_disks: Mutex<HashMap<u64, Instant>>,
    /// bucket → (k, m), learned from GetBucket; the client picks shard_len from k.
    pub policies: Mutex<HashMap<String, (u32, u32)>>,
    /// Admission of chunk reads (`cfg.max_inflight_reads` permits), shared by every reader.
    pub read_permits: Arc<Semaphore>,
    /// Buffered write bytes of every writer of the client (`cfg.write_buffer_total`).
    pub write_budget: Arc<WriteBudget>,
}

impl Shared {
    pub fn new(cfg: ClientConfig) -> Shared {
        Shared {
            nodes: NodePool::new(cfg.rpc_timeout.min(Duration::from_secs(3))),
            cache: BlockCache::new(cfg.cache_bytes),
            disk: OnceLock::new(),
            codecs: Codecs::default(),
            inflight: Mutex::new(HashMap::new()),
            bad_nodes: Mutex::new(HashMap::new()),
            slow_disks: Mutex::new(HashMap::new()),
            policies: Mutex::new(HashMap::new()),
            read_permits: Arc::new(Semaphore::new(cfg.max_inflight_reads.max(1))),
            write_budget: Arc::new(WriteBudget::new(cfg.write_buffer_total)),
            cfg,
        }
    }

    /// Remembers that `addr` failed, so reads go around it for a while.
    pub fn mark_bad(&self, addr: &str) {
        self.bad_nodes
            .lock()
            .expect("bad nodes lock")
            .insert(addr.to_string(), Instant::now());
    }

    /// Whether `addr` failed recently.
    pub fn is_bad(&self, addr: &str) -> bool {
        let mut g = self.bad_nodes.lock().expect("bad nodes lock");
        match g.get(addr) {
            Some(t) if t.elapsed() < BAD_NODE_TTL => true,
            Some(_) => {
                g.remove(addr);
                false
            }
            None => false,
        }
    }

    /// Remembers that a shard put to `disk` ran past its deadline.
    pub fn mark_slow_disk(&self, disk: u64) {
        self.slow_disks
            .lock()
            .expect("slow disks lock")
            .insert(disk, Instant::now());
    }

    /// Whether a shard put to `disk` ran past its deadline within [`SLOW_DISK_TTL`].
    pub fn is_slow_disk(&self, disk: u64) -> bool {
        let mut g = self.slow_disks.lock().expect("slow disks lock");
        match g.get(&disk) {
            Some(t) if t.elapsed() < SLOW_DISK_TTL => true,
            Some(_) => {
                g.remove(&disk);
                false
            }
            None => false,
        }
    }
}
