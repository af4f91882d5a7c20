//! Shard placement (invariant 3), as a pure function over the disks that may take a shard.
//!
//! Failure domains nest: zones hold racks, racks hold hosts (storage nodes), hosts hold
//! disks ([`kdss_common::topology`]). A stripe is placed so that no domain at the highest
//! level that has enough members holds more than m of its shards, the way Ceph's CRUSH
//! rules choose a failure domain: losing that whole domain leaves at least k shards.
//!
//! - **The rule level** ([`rule_level`]) is the highest of zone, rack and host whose
//!   domains can take the stripe with at most m shards each: the sum over its domains of
//!   min(m - shards already there, usable disks there) reaches the shards to place. Below
//!   it (or when no level qualifies) placement still keeps every shard on its own disk.
//! - **Each shard** goes, among the disks whose rule-level domain still holds fewer than
//!   m shards, to the least-loaded zone, then the least-loaded rack in it, then the
//!   least-loaded host, then a disk; ties at each level broken at random weighted by free
//!   space. This spreads as evenly as the topology allows at every level, and it never
//!   runs dry: each pick uses up exactly one of the rule level's places, and there were
//!   enough of them.
//!
//! The caller filters out offline, read-only, failed and full disks before calling, and
//! passes the stripe's other shards (`existing`) when it replaces one.

use kdss_common::Location;
use kdss_common::topology::{self, Level};
use rand::Rng;
use std::collections::HashMap;

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

/// A disk that may take a shard, or one that holds a shard of the stripe already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCandidate {
    /// Node holding the disk (the host level).
    pub node_id: String,
    /// The disk.
    pub disk_id: u64,
    /// Appendable bytes left.
    pub free_bytes: u64,
    /// Zone and rack of the node.
    pub location: Location,
}

/// What a placement call must place.
#[derive(Debug, Clone, Copy)]
pub struct Need<'a> {
    /// Shards to place now (k + m for a new stripe, 1 for a replacement).
    pub shards: usize,
    /// The stripe's m: most shards one failure domain may hold.
    pub m: usize,
    /// Bytes of each shard; a disk needs that much free.
    pub shard_len: u64,
    /// Disks already holding shards of this stripe: they count towards each domain's load
    /// and are never chosen again.
    pub existing: &'a [DiskCandidate],
    /// Disks that must not be chosen (e.g. the failed one).
    pub exclude: &'a [u64],
}

/// Why a stripe cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Fewer writable disks with room for a shard than shards to place.
    #[error(
        "not enough writable disks: a stripe needs {needed} distinct disks with {shard_len} bytes \
         free, {available} available"
    )]
    TooFewDisks {
        needed: usize,
        available: usize,
        shard_len: u64,
    },
}

/// The domain of `d` at `level` (racks are named within their zone).
fn key(level: Level, d: &DiskCandidate) -> (&str, &str) {
    match level {
        Level::Zone => (&d.location.zone, ""),
        Level::Rack => (&d.location.zone, &d.location.rack),
        Level::Host => (&d.node_id, ""),
        Level::Disk => ("", ""),
    }
}

/// The candidates that may take a shard: room for it, not excluded, not holding a shard
/// of the stripe, each disk once (a disk reported twice must not get two shards).
fn usable<'a>(candidates: &'a [DiskCandidate], need: &Need) -> Vec<&'a DiskCandidate> {
    let mut free: Vec<&DiskCandidate> = candidates
        .iter()
        .filter(|d| d.free_bytes >= need.shard_len)
        .filter(|d| !need.exclude.contains(&d.disk_id))
        .filter(|d| !need.existing.iter().any(|e| e.disk_id == d.disk_id))
        .collect();
    free.sort_by_key(|d| d.disk_id);
    free.dedup_by_key(|d| d.disk_id);
    free
}

/// The highest level at which `candidates` can take `need.shards` more shards with at most
/// `need.m` of the stripe per domain, counting the stripe's `existing` shards; [`Level::Disk`]
/// when not even hosts can.
pub fn rule_level(candidates: &[DiskCandidate], need: &Need) -> Level {
    level_of(&usable(candidates, need), need)
}

fn level_of(free: &[&DiskCandidate], need: &Need) -> Level {
    for level in Level::DOMAINS {
        let mut per: HashMap<(&str, &str), (usize, usize)> = HashMap::new();
        for d in free {
            per.entry(key(level, d)).or_default().0 += 1;
        }
        for e in need.existing {
            per.entry(key(level, e)).or_default().1 += 1;
        }
        if topology::can_honour(per.into_values(), need.shards, need.m) {
            return level;
        }
    }
    Level::Disk
}

/// Chooses `need.shards` distinct disks for a stripe's shards, in shard order, by the rule
/// of the module doc.
pub fn place_shards<R: Rng>(
    candidates: &[DiskCandidate],
    need: &Need,
    rng: &mut R,
) -> Result<Vec<DiskCandidate>, PlacementError> {
    let mut free = usable(candidates, need);
    let too_few = |available| PlacementError::TooFewDisks {
        needed: need.shards,
        available,
        shard_len: need.shard_len,
    };
    if free.len() < need.shards {
        return Err(too_few(free.len()));
    }
    let rule = level_of(&free, need);
    let mut load: HashMap<(Level, (&str, &str)), usize> = HashMap::new();
    for e in need.existing {
        for level in Level::DOMAINS {
            *load.entry((level, key(level, e))).or_default() += 1;
        }
    }
    let mut chosen = Vec::with_capacity(need.shards);
    for _ in 0..need.shards {
        let at = |load: &HashMap<_, usize>, level, d: &DiskCandidate| {
            load.get(&(level, key(level, d))).copied().unwrap_or(0)
        };
        let mut pool: Vec<usize> = (0..free.len())
            .filter(|&i| rule == Level::Disk || at(&load, rule, free[i]) < need.m)
            .collect();
        if pool.is_empty() {
            // Cannot happen (see the module doc); refuse rather than break the rule.
            return Err(too_few(free.len()));
        }
        for level in Level::DOMAINS {
            let least = pool.iter().map(|&i| at(&load, level, free[i])).min();
            pool.retain(|&i| Some(at(&load, level, free[i])) == least);
            let mut domains: Vec<((&str, &str), u128)> = Vec::new();
            for &i in &pool {
                let k = key(level, free[i]);
                match domains.iter_mut().find(|(d, _)| *d == k) {
                    Some(e) => e.1 += u128::from(free[i].free_bytes),
                    None => domains.push((k, u128::from(free[i].free_bytes))),
                }
            }
            let pick = weighted_pick(&domains, |d| d.1, rng).0;
            pool.retain(|&i| key(level, free[i]) == pick);
        }
        let i = *weighted_pick(&pool, |&i| u128::from(free[i].free_bytes), rng);
        let d = free.remove(i);
        for level in Level::DOMAINS {
            *load.entry((level, key(level, d))).or_default() += 1;
        }
        chosen.push(d.clone());
    }
    Ok(chosen)
}

/// Chooses the disk that takes over one shard of a stripe (a write to it failed, or repair
/// rebuilds it).
///
/// The old shard's node holds one shard fewer once the shard is gone, so the spread rule
/// alone would favour its other disks, yet a node that just failed a write (dead, stalled,
/// partitioned) is the worst place to retry. Other nodes come first, as long as leaving the
/// failed node out does not lower the rule level; its other disks only when nothing else
/// keeps the rule or has room.
pub fn place_replacement<R: Rng>(
    candidates: &[DiskCandidate],
    need: &Need,
    failed_node: &str,
    rng: &mut R,
) -> Result<DiskCandidate, PlacementError> {
    let need = Need { shards: 1, ..*need };
    let elsewhere: Vec<DiskCandidate> = candidates
        .iter()
        .filter(|d| d.node_id != failed_node)
        .cloned()
        .collect();
    let placed = if rule_level(&elsewhere, &need) <= rule_level(candidates, &need) {
        place_shards(&elsewhere, &need, rng).or_else(|_| place_shards(candidates, &need, rng))
    } else {
        place_shards(candidates, &need, rng)
    };
    placed.map(|mut v| v.remove(0))
}

/// Places with the healthy disks, or with the suspect ones too when the healthy ones
/// cannot, or when adding them lets the stripe keep the rule at a higher level (a suspect
/// disk may fail, but a stripe that a rack outage can take down fails for sure).
pub fn with_suspect<T>(
    healthy: &[DiskCandidate],
    suspect: &[DiskCandidate],
    need: &Need,
    mut place: impl FnMut(&[DiskCandidate]) -> Result<T, PlacementError>,
) -> Result<T, PlacementError> {
    if suspect.is_empty() {
        return place(healthy);
    }
    let all: Vec<DiskCandidate> = healthy.iter().chain(suspect).cloned().collect();
    if rule_level(healthy, need) <= rule_level(&all, need) {
        place(healthy).or_else(|_| place(&all))
    } else {
        place(&all)
    }
}

/// Picks one item at random with probability proportional to `weight` (uniform if all 0).
fn weighted_pick<'a, T, R: Rng>(items: &'a [T], weight: impl Fn(&T) -> u128, rng: &mut R) -> &'a T {
    let total: u128 = items.iter().map(&weight).sum();
    if total == 0 {
        return &items[rng.random_range(0..items.len())];
    }
    let mut x = rng.random_range(0..total);
    for it in items {
        let w = weight(it);
        if x < w {
            return it;
        }
        x -= w;
    }
    items.last().expect("items is not empty")
}
