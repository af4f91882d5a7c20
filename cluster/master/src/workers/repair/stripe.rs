//! Repairing one stripe: for each shard to rebuild, choose a new disk by the spread rule
//! and hand the shard to the one mover ([`crate::workers::mover`]), which builds it there
//! (a copy from a readable old copy, or decoded from k others), commits the new location
//! only if the stripe is unchanged, and deletes the old copy last.

use crate::placement::{DiskCandidate, Need, place_replacement, with_suspect};
use crate::service::State;
use crate::workers::Throttle;
use crate::workers::mover::state::MoveState;
use crate::workers::mover::{self, Move, Moved};
use kdss_proto::master::{DiskStatus, ShardLocation, StripeInfo};
use std::collections::BTreeSet;

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

/// Repairs one stripe (see the module doc).
pub async fn repair(
    st: &State,
    rs: &MoveState,
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

/// Where a shard of the stripe ranks as a source: None when it cannot be read (its disk
/// lost or offline, the record corrupt), online disks before suspect and draining ones.
fn rank(st: &State, damage: &Damage, stripe: u64, sh: &ShardLocation) -> Option<u8> {
    let status = st.registry.disk_status(sh.disk_id);
    if damage.lost.contains(&sh.disk_id)
        || damage
            .corrupt
            .contains(&(stripe, sh.shard_index, sh.disk_id))
        || status == DiskStatus::Offline
    {
        None
    } else if status == DiskStatus::Online && !damage.draining.contains(&sh.disk_id) {
        Some(0)
    } else {
        Some(1)
    }
}

/// The disk that receives the rebuilt shard: the spread rule over healthy disks (suspect
/// ones only when nothing else has room or keeps the failure-domain rule), counting where
/// the stripe's other shards sit, never a disk of the stripe or a damaged one.
fn target(
    st: &State,
    damage: &Damage,
    info: &StripeInfo,
    old: &ShardLocation,
) -> Option<DiskCandidate> {
    let existing = st.registry.locate(
        info.shards
            .iter()
            .filter(|s| s.shard_index != old.shard_index)
            .map(|s| (s.node_id.as_str(), s.disk_id)),
    );
    let mut exclude: Vec<u64> = damage
        .lost
        .iter()
        .chain(&damage.draining)
        .copied()
        .collect();
    exclude.push(old.disk_id);
    let need = Need {
        shards: 1,
        m: info.m as usize,
        shard_len: info.shard_len,
        existing: &existing,
        exclude: &exclude,
    };
    let healthy = st.registry.writable_disks();
    let suspect = st.registry.suspect_disks();
    with_suspect(&healthy, &suspect, &need, |c| {
        place_replacement(c, &need, &old.node_id, &mut rand::rng())
    })
    .ok()
}

#[allow(clippy::too_many_arguments)]
async fn rebuild_one(
    st: &State,
    rs: &MoveState,
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
    let srcs = mover::sources(st, info, index, |sh| rank(st, damage, stripe, sh));
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
    tracing::debug!(stripe, shard = index, cause = ?cause, "repair: rebuilding");
    let mv = Move {
        info,
        old: &old,
        to: &to,
        sources: srcs,
        job: "repair",
    };
    match mover::move_shard(st, rs, deletes, mv).await {
        Moved::Committed => {
            if let Some(sh) = info.shards.iter_mut().find(|s| s.shard_index == index) {
                sh.node_id = to.node_id.clone();
                sh.disk_id = to.disk_id;
            }
            Outcome::Done
        }
        Moved::Stale => Outcome::Done,
        Moved::Failed => Outcome::Retry,
    }
}
