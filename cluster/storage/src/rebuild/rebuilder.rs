//! The limits and shared clients of a node's rebuilds, held by [`crate::node_shared::NodeShared`].

use crate::config::RebuildSection;
use kdss_shard::NodePool;
use kdss_shard::ec::Codecs;
use std::time::Duration;
use tokio::sync::Semaphore;

/// What rebuilds on one node share: the channels to other nodes, the codecs, and the slots
/// that bound how many run at once (each holds up to k whole shards in memory).
pub struct Rebuilder {
    pub(super) pool: NodePool,
    pub(super) codecs: Codecs,
    pub(super) slots: Semaphore,
    pub(super) fetch_timeout: Duration,
}

impl std::fmt::Debug for Rebuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuilder")
            .field("free_slots", &self.slots.available_permits())
            .field("fetch_timeout", &self.fetch_timeout)
            .finish()
    }
}

impl Rebuilder {
    /// Slots and deadlines from `[rebuild]`.
    pub fn new(cfg: &RebuildSection) -> Self {
        let fetch_timeout = Duration::from_millis(cfg.fetch_timeout_ms);
        Rebuilder {
            pool: NodePool::internal(fetch_timeout),
            codecs: Codecs::default(),
            slots: Semaphore::new(cfg.max_concurrent),
            fetch_timeout,
        }
    }
}
