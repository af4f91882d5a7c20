//! Repairing one stripe: for each shard to rebuild, choose a new disk by the spread rule,
//! have that disk's node rebuild the shard (`RebuildShard`: copy it from a readable old
//! copy, or decode it from k others), point the stripe map at it only if the shard is
//! still where this pass found it (`MoveShardOp`), then delete the old copy if its node
//! answers. A crash anywhere leaves the stripe as redundant as before: until the move
//! commits, the map still names the old copy, and the new one is an unreferenced shard the
//! inventory collects.

use super::state::RepairState;
use crate::auth::Caller;
use crate::placement::{DiskCandidate, place_replacement};
use crate::service::{CAPABILITY_TTL_MS, State};
use crate::workers::Throttle;
use crate::workers::gc::{Deleted, delete_shard};
use kdss_common::rpc_error::{self, errno};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::{DiskStatus, MoveShardOp, ShardLocation, StripeInfo};
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{
    RebuildShardReply, RebuildShardRequest, RebuildSource, ShardKey, ShardOp,
};
use std::collections::BTreeSet;
use std::time::Duration;

/// Why a shard is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Its disk is offline or failed: the copy is gone or unreachable.
    Lost,
    /// Its disk is draining: the copy is readable and moves off.
    Draining,
    /// Its node reported the record corrupt.
    Corrupt,
}

/// What the pass knows about the cluster, shared by the stripes it repairs.
#[derive(Debug, Default)]
pub struct Damage {
    /// Disks whose shards are lost (offline, failed).
    pub lost: BTreeSet<u64>,
    /// Disks being drained.
    pub draining: BTreeSet<u64>,
    /// Shards their nodes reported corrupt: (stripe, shard, disk).
    pub corrupt: BTreeSet<(u64, u32, u64)>,
}

impl Damage {
    /// Why shard `sh` of `stripe` needs rebuilding, if it does.
    pub fn cause(&self, stripe: u64, sh: &ShardLocation) -> Option<Cause> {
        if self.lost.contains(&sh.disk_id) {
            Some(Cause::Lost)
        } else if self.corrupt.contains(&(stripe, sh.shard_index, sh.disk_id)) {
            Some(Cause::Corrupt)
        } else if self.draining.contains(&sh.disk_id) {
            Some(Cause::Draining)
        } else {
            None
        }
    }
}

/// How one stripe's repair ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every shard that needed it was rebuilt and committed (or none needed it any more).
    Done,
    /// Some shard could not be rebuilt now; a later pass retries.
    Retry,
    /// Fewer than k shards are readable: the stripe's data is lost.
    Unrepairable,
}

/// Time a rebuild may take: fetching k shards and writing one, on a loaded cluster.
fn rebuild_timeout(shard_len: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_secs(shard_len / (4 << 20))
}

/// Repairs one stripe (see the module doc).
pub async fn repair(
    st: &State,
    rs: &RepairState,
    deletes: &Throttle,
    damage: &Damage,
    stripe_id: u64,
) -> Outcome {
    let mut info = match kdss_meta::read::stripe_info(&st.pool(), None, stripe_id).await {
        Ok(i) => i,
        // Gone since the queue was built (deleted, collected): nothing to do.
        Err(_) => return Outcome::Done,
    };
    let todo: Vec<(u32, Cause)> = info
        .shards
        .iter()
        .filter_map(|sh| damage.cause(stripe_id, sh).map(|c| (sh.shard_index, c)))
        .collect();
    let mut outcome = Outcome::Done;
    for (index, cause) in todo {
        match rebuild_one(st, rs, deletes, damage, &mut info, index, cause).await {
            Outcome::Done => {}
            Outcome::Retry => outcome = Outcome::Retry,
            Outcome::Unrepairable => return Outcome::Unrepairable,
        }
    }
    outcome
}

/// A shard's copy that can be read: its node answers and its disk is not lost.
fn readable(st: &State, damage: &Damage, stripe: u64, sh: &ShardLocation) -> bool {
    st.registry.is_online(&sh.node_id)
        && !damage.lost.contains(&sh.disk_id)
        && !damage
            .corrupt
            .contains(&(stripe, sh.shard_index, sh.disk_id))
        && st.registry.disk_status(sh.disk_id) != DiskStatus::Offline
}

/// The sources a node rebuilds `index` from: a readable copy of the shard itself first
/// (a draining disk), then the other shards, online disks before suspect and draining ones.
fn sources(st: &State, damage: &Damage, info: &StripeInfo, index: u32) -> Vec<RebuildSource> {
    let exp = kdss_common::time::now_ms() + CAPABILITY_TTL_MS;
    let mut v: Vec<(u8, &ShardLocation)> = info
        .shards
        .iter()
        .filter(|sh| readable(st, damage, info.stripe_id, sh))
        .map(|sh| {
            let rank = if sh.shard_index == index {
                0
            } else if st.registry.disk_status(sh.disk_id) == DiskStatus::Online
                && !damage.draining.contains(&sh.disk_id)
            {
                1
            } else {
                2
            };
            (rank, sh)
        })
        .collect();
    v.sort_by_key(|(rank, sh)| (*rank, sh.shard_index));
    v.into_iter()
        .map(|(_, sh)| RebuildSource {
            shard_index: sh.shard_index,
            node_id: sh.node_id.clone(),
            node_addr: st.registry.addr_of(&sh.node_id).unwrap_or_default(),
            disk_id: sh.disk_id,
            cap: Some(
                st.caps
                    .sign(info.stripe_id, sh.shard_index, ShardOp::Read, exp),
            ),
        })
        .collect()
}

/// The disk that receives the rebuilt shard: the spread rule over healthy disks (suspect
/// ones only when nothing else has room), never a disk of the stripe or a damaged one.
fn target(
    st: &State,
    damage: &Damage,
    info: &StripeInfo,
    old: &ShardLocation,
) -> Option<DiskCandidate> {
    let existing: Vec<(String, u64)> = info
        .shards
        .iter()
        .filter(|s| s.shard_index != old.shard_index)
        .map(|s| (s.node_id.clone(), s.disk_id))
        .collect();
    let mut exclude: Vec<u64> = damage
        .lost
        .iter()
        .chain(&damage.draining)
        .copied()
        .collect();
    exclude.push(old.disk_id);
    let mut rng = rand::rng();
    let healthy = st.registry.writable_disks();
    place_replacement(
        &healthy,
        info.shard_len,
        &existing,
        &old.node_id,
        &exclude,
        &mut rng,
    )
    .or_else(|_| {
        let mut all = healthy.clone();
        all.extend(st.registry.suspect_disks());
        place_replacement(
            &all,
            info.shard_len,
            &existing,
            &old.node_id,
            &exclude,
            &mut rng,
        )
    })
    .ok()
}

#[allow(clippy::too_many_arguments)]
async fn rebuild_one(
    st: &State,
    rs: &RepairState,
    deletes: &Throttle,
    damage: &Damage,
    info: &mut StripeInfo,
    index: u32,
    cause: Cause,
) -> Outcome {
    let Some(old) = info.shards.iter().find(|s| s.shard_index == index).cloned() else {
        return Outcome::Done;
    };
    let stripe = info.stripe_id;
    let srcs = sources(st, damage, info, index);
    let has_copy = srcs.first().is_some_and(|s| s.shard_index == index);
    let others = srcs.iter().filter(|s| s.shard_index != index).count();
    if !has_copy && others < info.k as usize {
        tracing::error!(
            stripe,
            shard = index,
            readable = others,
            needed = info.k,
            "repair: fewer than k shards readable; the stripe cannot be rebuilt now"
        );
        return Outcome::Unrepairable;
    }
    let Some(to) = target(st, damage, info, &old) else {
        tracing::warn!(
            stripe,
            shard = index,
            "repair: no disk has room for the shard"
        );
        return Outcome::Retry;
    };
    rs.take(info.shard_len).await;
    rs.started();
    let t0 = std::time::Instant::now();
    let rebuilt = call_rebuild(st, info, index, &to, srcs).await;
    let reply = match rebuilt {
        Ok(r) => r,
        Err(e) => {
            rs.finished(None);
            tracing::warn!(stripe, shard = index, node = %to.node_id, error = %e,
                "repair: rebuild failed; retried next pass");
            return Outcome::Retry;
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
    match st.propose(&Caller::service(), Op::MoveShard(op)).await {
        Ok(_) => {}
        Err(e) => {
            rs.finished(None);
            let key = ShardKey {
                stripe_id: stripe,
                shard_index: index,
            };
            if rpc_error::errno_of(&e) == errno::ESTALE {
                // The stripe changed under us: the new copy is nobody's; drop it now.
                delete_shard(st, deletes, &to.node_id, to.disk_id, key).await;
                tracing::info!(
                    stripe,
                    shard = index,
                    "repair: stripe changed meanwhile; copy dropped"
                );
                return Outcome::Done;
            }
            tracing::warn!(stripe, shard = index, error = %e, "repair: cannot commit the new location");
            return Outcome::Retry;
        }
    }
    rs.finished(Some(info.shard_len));
    tracing::info!(
        stripe,
        shard = index,
        cause = ?cause,
        from_disk = format!("{:016x}", old.disk_id),
        to_node = %to.node_id,
        to_disk = format!("{:016x}", to.disk_id),
        bytes = info.shard_len,
        read = reply.bytes_read,
        ms = t0.elapsed().as_millis() as u64,
        "repair: shard rebuilt"
    );
    if let Some(sh) = info.shards.iter_mut().find(|s| s.shard_index == index) {
        sh.node_id = to.node_id.clone();
        sh.disk_id = to.disk_id;
    }
    // The old copy goes last. A node that does not answer (offline, dead disk) keeps it
    // until the inventory finds it unreferenced.
    let key = ShardKey {
        stripe_id: stripe,
        shard_index: index,
    };
    if let Deleted::Failed = delete_shard(st, deletes, &old.node_id, old.disk_id, key).await {
        tracing::debug!(
            stripe,
            shard = index,
            "repair: old copy left to the inventory"
        );
    }
    Outcome::Done
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
    let exp = kdss_common::time::now_ms() + CAPABILITY_TTL_MS;
    let mut req = tonic::Request::new(RebuildShardRequest {
        key: Some(ShardKey {
            stripe_id: info.stripe_id,
            shard_index: index,
        }),
        disk_id: to.disk_id,
        cap: Some(st.caps.sign(info.stripe_id, index, ShardOp::Write, exp)),
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
