//! The garbage collector, the first [`Job`]. One pass:
//! 1. purges the recycle-bin items older than `[gc] auto_gc_pending_hours` (0: none);
//! 2. releases stripes allocated and never committed for `stale_writing_minutes`;
//! 3. for every garbage stripe (refcount 0, in `gc_stripes`), deletes each remaining shard
//!    on its storage node with a signed DELETE capability (the node appends a tombstone;
//!    its compactor reclaims the segment later), then proposes `ForgetShards` for the
//!    shards whose node confirmed. A shard whose node is offline or failed stays mapped
//!    and is retried by the next pass: a node that was down catches up when it returns.
//!
//! 4. takes the inventory of every online node's disks and deletes shards the stripe map
//!    does not reference there, once they stayed so for `stale_writing_minutes`
//!    ([`super::inventory`]).
//!
//! A stripe's shards are deleted only `[gc] read_grace_sec` after its last reference went,
//! so a reader holding the old version's capabilities can finish.
//!
//! Every step is idempotent (deleting an absent shard is a no-op on the node, forgetting a
//! forgotten shard changes nothing), and nothing of a pass lives only in memory: a new
//! leader's pass continues from the replicated `gc_stripes` / `stripe_shards`.

use super::inventory::Inventory;
use super::{Job, Progress, Throttle};
use crate::auth::Caller;
use crate::config::GcSection;
use crate::service::State;
use kdss_common::ShardTarget;
use kdss_proto::master as pb;
use kdss_proto::master::mutation::Op;
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{DeleteShardRequest, ShardKey, ShardOp};
use std::sync::Arc;
use std::time::Duration;

/// Garbage stripes handled per batch (one `ForgetShards` proposal per batch).
const BATCH: u32 = 128;
/// Time a single shard delete may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// The collector with its settings.
pub struct GcJob {
    cfg: GcSection,
    throttle: Throttle,
    inventory: Inventory,
}

impl GcJob {
    /// A collector configured by `[gc]`.
    pub fn new(cfg: GcSection) -> Self {
        GcJob {
            throttle: Throttle::new(cfg.max_deletes_per_sec),
            inventory: Inventory::default(),
            cfg,
        }
    }
}

/// Recycle-bin retention in nanoseconds (0 = keep until purged by hand).
pub fn retention_ns(cfg: &GcSection) -> i64 {
    (cfg.auto_gc_pending_hours as i64).saturating_mul(3_600_000_000_000)
}

impl Job for GcJob {
    fn name(&self) -> &'static str {
        "gc"
    }

    fn interval(&self) -> Duration {
        Duration::from_secs(self.cfg.interval_sec)
    }

    async fn pass(&self, st: Arc<State>, progress: Arc<Progress>) -> Result<(), String> {
        let caller = Caller::service();
        let now = kdss_common::time::now_ns();
        let keep = retention_ns(&self.cfg);
        if keep > 0 {
            let op = Op::PurgeTrash(pb::PurgeTrashRequest {
                deleted_before_ns: now.saturating_sub(keep),
                ..Default::default()
            });
            match st.propose(&caller, op).await {
                Ok(pb::mutation_reply::Reply::PurgeTrash(p)) => {
                    progress.add("trash_items_expired", p.items);
                    progress.add("trash_bytes_expired", p.bytes);
                }
                Ok(_) => {}
                Err(e) => return Err(format!("purge expired bin items: {}", e.message())),
            }
        }
        let stale = (self.cfg.stale_writing_minutes * 60e9) as i64;
        let op = Op::ExpireStaleStripes(pb::ExpireStaleStripesOp {
            created_before_ns: now.saturating_sub(stale),
        });
        st.propose(&caller, op)
            .await
            .map_err(|e| format!("expire stale stripes: {}", e.message()))?;
        let grace = (self.cfg.read_grace_sec as i64).saturating_mul(1_000_000_000);
        let released_before = now.saturating_sub(grace);
        let mut after = 0;
        loop {
            let batch = kdss_meta::gc::candidates(&st.pool(), after, released_before, BATCH)
                .await
                .map_err(|e| format!("read garbage stripes: {e}"))?;
            let Some(last) = batch.last() else {
                break;
            };
            after = last.stripe_id;
            let mut done = Vec::new();
            for s in &batch {
                if s.shards.is_empty() {
                    // Nothing left on disk: let ForgetShards drop the rows.
                    done.push(ShardKey {
                        stripe_id: s.stripe_id,
                        shard_index: u32::MAX,
                    });
                    continue;
                }
                for sh in &s.shards {
                    if self.delete_one(&st, s, sh, &progress).await {
                        done.push(ShardKey {
                            stripe_id: s.stripe_id,
                            shard_index: sh.shard_index,
                        });
                    }
                }
            }
            if !done.is_empty() {
                let n = done.len() as u64;
                st.propose(
                    &caller,
                    Op::ForgetShards(pb::ForgetShardsOp { shards: done }),
                )
                .await
                .map_err(|e| format!("forget deleted shards: {}", e.message()))?;
                progress.add("shards_forgotten", n);
            }
        }
        self.inventory
            .pass(&st, &self.throttle, stale, &progress)
            .await
    }
}

impl GcJob {
    /// Deletes one mapped shard of a garbage stripe; true once the node confirmed.
    async fn delete_one(
        &self,
        st: &State,
        s: &pb::StripeInfo,
        sh: &pb::ShardLocation,
        progress: &Progress,
    ) -> bool {
        let key = ShardKey {
            stripe_id: s.stripe_id,
            shard_index: sh.shard_index,
        };
        match delete_shard(st, &self.throttle, &sh.node_id, sh.disk_id, key).await {
            Deleted::Existed => {
                progress.add("shards_deleted", 1);
                progress.add("bytes_freed", s.shard_len);
                true
            }
            Deleted::Absent => {
                progress.add("shards_already_gone", 1);
                true
            }
            Deleted::NodeAway => {
                progress.add("shards_waiting_for_node", 1);
                false
            }
            Deleted::Failed => {
                progress.add("delete_errors", 1);
                false
            }
        }
    }
}

/// What a shard delete came to.
pub(super) enum Deleted {
    /// The node held the shard and appended its tombstone.
    Existed,
    /// The node did not hold it (deleted before): nothing to do.
    Absent,
    /// The node is offline or unknown: retried by a later pass.
    NodeAway,
    /// The call failed (logged): retried by a later pass.
    Failed,
}

/// Deletes one shard on `node`/`disk` with a signed DELETE capability, paced by `throttle`:
/// the one way the collector removes data from a storage node.
pub(super) async fn delete_shard(
    st: &State,
    throttle: &Throttle,
    node: &str,
    disk_id: u64,
    key: ShardKey,
) -> Deleted {
    let addr = match st.registry.addr_of(node) {
        Some(a) if st.registry.is_online(node) => a,
        _ => return Deleted::NodeAway,
    };
    let ch = match st.channel(&addr) {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(error = %e, node, "gc channel");
            return Deleted::Failed;
        }
    };
    throttle.take().await;
    let target = ShardTarget {
        stripe_id: key.stripe_id,
        shard_index: key.shard_index,
        disk_id,
    };
    let cap = st.capability(target, ShardOp::Delete, 0);
    let mut req = tonic::Request::new(DeleteShardRequest {
        key: Some(key),
        disk_id,
        cap: Some(cap),
    });
    req.set_timeout(DELETE_TIMEOUT);
    match StorageClient::new(ch).delete_shard(req).await {
        Ok(r) if r.get_ref().existed => Deleted::Existed,
        Ok(_) => Deleted::Absent,
        Err(e) => {
            tracing::warn!(
                stripe = key.stripe_id,
                shard = key.shard_index,
                node,
                disk = disk_id,
                error = %e.message(),
                "gc: shard delete failed; retried next pass"
            );
            Deleted::Failed
        }
    }
}
