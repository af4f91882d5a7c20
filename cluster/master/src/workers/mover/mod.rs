//! The one shard mover that repair, drain and balance share. Moving shard `i` of a stripe
//! to a new disk takes three steps, in this order:
//! 1. the new disk's node builds the shard (`RebuildShard`): it copies a readable copy of
//!    shard `i` itself, or decodes it from k other shards;
//! 2. the stripe map points at the new copy (`MoveShardOp` through Raft), only if shard `i`
//!    is still where the caller found it and the stripe is live; otherwise (ESTALE) the new
//!    copy is nobody's and is deleted at once;
//! 3. the old copy is deleted, if its node answers.
//!
//! A crash anywhere leaves the stripe as redundant as before: until step 2 commits, the map
//! names the old copy and the new one is an unreferenced shard the inventory collects;
//! after it, the map names a verified copy and the old one is the leftover.

pub mod state;

use crate::auth::Caller;
use crate::placement::DiskCandidate;
use crate::service::State;
use crate::workers::Throttle;
use crate::workers::gc::{Deleted, delete_shard};
use kdss_common::ShardTarget;
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::{MoveShardOp, ShardLocation, StripeInfo};
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{
    RebuildShardReply, RebuildShardRequest, RebuildSource, ShardKey, ShardOp,
};
use state::MoveState;
use std::time::Duration;

/// How one move ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The map points at the new copy.
    Committed,
    /// The stripe changed meanwhile (rewritten, deleted, the shard moved by someone
    /// else): nothing to do any more.
    Stale,
    /// The new copy could not be built or committed; a later pass retries.
    Failed,
}

/// One move: shard `old.shard_index` of `info` from where `old` says to `to`, built from
/// `sources` (best first; a copy of the shard itself lets the node copy instead of decode).
pub struct Move<'a> {
    /// The stripe as the caller read it.
    pub info: &'a StripeInfo,
    /// The shard's current location.
    pub old: &'a ShardLocation,
    /// The disk that receives it.
    pub to: &'a DiskCandidate,
    /// Where the node reads from.
    pub sources: Vec<RebuildSource>,
    /// The job, for logs ("repair", "balance").
    pub job: &'static str,
}

/// Time a rebuild may take: fetching k shards and writing one, on a loaded cluster.
fn rebuild_timeout(shard_len: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_secs(shard_len / (4 << 20))
}

/// The sources a node builds shard `index` from, best first: a copy of the shard itself,
/// then the other shards by `rank` (lower first). `rank` returns None for a copy that
/// cannot be read (its node silent, its disk lost, the record corrupt).
pub fn sources(
    st: &State,
    info: &StripeInfo,
    index: u32,
    rank: impl Fn(&ShardLocation) -> Option<u8>,
) -> Vec<RebuildSource> {
    let mut v: Vec<(u8, &ShardLocation)> = info
        .shards
        .iter()
        .filter(|sh| st.registry.is_online(&sh.node_id))
        .filter_map(|sh| {
            let r = rank(sh)?;
            Some((if sh.shard_index == index { 0 } else { r + 1 }, sh))
        })
        .collect();
    v.sort_by_key(|(rank, sh)| (*rank, sh.shard_index));
    v.into_iter()
        .map(|(_, sh)| RebuildSource {
            shard_index: sh.shard_index,
            node_id: sh.node_id.clone(),
            node_addr: st.registry.addr_of(&sh.node_id).unwrap_or_default(),
            disk_id: sh.disk_id,
            cap: Some(st.capability(
                ShardTarget {
                    stripe_id: info.stripe_id,
                    shard_index: sh.shard_index,
                    disk_id: sh.disk_id,
                },
                ShardOp::Read,
                info.shard_len,
            )),
        })
        .collect()
}

/// Moves one shard (see the module doc), paced by `pace`'s bandwidth and counted in it.
pub async fn move_shard(st: &State, pace: &MoveState, deletes: &Throttle, mv: Move<'_>) -> Moved {
    let Move {
        info,
        old,
        to,
        sources,
        job,
    } = mv;
    let stripe = info.stripe_id;
    let index = old.shard_index;
    let key = ShardKey {
        stripe_id: stripe,
        shard_index: index,
    };
    pace.take(info.shard_len).await;
    pace.started();
    let t0 = std::time::Instant::now();
    let reply = match call_rebuild(st, info, index, to, sources).await {
        Ok(r) => r,
        Err(e) => {
            pace.finished(Moved::Failed, info.shard_len);
            tracing::warn!(job, stripe, shard = index, node = %to.node_id, error = %e,
                "shard move: the new copy could not be built; retried next pass");
            return Moved::Failed;
        }
    };
    let op = MoveShardOp {
        stripe_id: stripe,
        shard_index: index,
        from_node: old.node_id.clone(),
        from_disk: old.disk_id,
        to_node: to.node_id.clone(),
        to_disk: to.disk_id,
    };
    if let Err(e) = st.propose(&Caller::service(), Op::MoveShard(op)).await {
        if rpc_error::errno_of(&e) == errno::ESTALE {
            pace.finished(Moved::Stale, info.shard_len);
            // The stripe changed under us: the new copy is nobody's; drop it now.
            delete_shard(st, deletes, &to.node_id, to.disk_id, key).await;
            tracing::info!(
                job,
                stripe,
                shard = index,
                "shard move: stripe changed meanwhile; copy dropped"
            );
            return Moved::Stale;
        }
        pace.finished(Moved::Failed, info.shard_len);
        tracing::warn!(job, stripe, shard = index, error = %e,
            "shard move: cannot commit the new location");
        return Moved::Failed;
    }
    pace.finished(Moved::Committed, info.shard_len);
    tracing::info!(
        job,
        stripe,
        shard = index,
        from_disk = format!("{:016x}", old.disk_id),
        to_node = %to.node_id,
        to_disk = format!("{:016x}", to.disk_id),
        bytes = info.shard_len,
        read = reply.bytes_read,
        ms = t0.elapsed().as_millis() as u64,
        "shard moved"
    );
    // The old copy goes last. A node that does not answer (offline, dead disk) keeps it
    // until the inventory finds it unreferenced.
    if let Deleted::Failed = delete_shard(st, deletes, &old.node_id, old.disk_id, key).await {
        tracing::debug!(
            job,
            stripe,
            shard = index,
            "shard move: old copy left to the inventory"
        );
    }
    Moved::Committed
}

async fn call_rebuild(
    st: &State,
    info: &StripeInfo,
    index: u32,
    to: &DiskCandidate,
    sources: Vec<RebuildSource>,
) -> Result<RebuildShardReply, String> {
    let addr = st
        .registry
        .addr_of(&to.node_id)
        .ok_or_else(|| format!("node {} has no address", to.node_id))?;
    let ch = st.channel(&addr).map_err(|e| e.message().to_string())?;
    let target = ShardTarget {
        stripe_id: info.stripe_id,
        shard_index: index,
        disk_id: to.disk_id,
    };
    let mut req = tonic::Request::new(RebuildShardRequest {
        key: Some(ShardKey {
            stripe_id: info.stripe_id,
            shard_index: index,
        }),
        disk_id: to.disk_id,
        cap: Some(st.capability(target, ShardOp::Write, info.shard_len)),
        data_shards: info.k,
        parity_shards: info.m,
        shard_len: info.shard_len,
        sources,
    });
    req.set_timeout(rebuild_timeout(info.shard_len));
    StorageClient::new(ch)
        .max_decoding_message_size(16 << 20)
        .rebuild_shard(req)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}
