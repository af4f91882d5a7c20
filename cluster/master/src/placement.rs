//! Shard placement (invariant 3), as a pure function over the disks that may take a shard.
//!
//! Every shard goes to the node that holds the fewest shards of the stripe so far (across
//! nodes first), ties broken at random weighted by the node's free space; within the node, to
//! an unused disk chosen at random weighted by its free space. With N nodes that each have
//! enough disks, no node gets more than ceil(width / N) shards, which is <= m whenever the
//! cluster has enough nodes for the policy. The caller filters out offline, read-only,
//! failed and full disks before calling.

use rand::Rng;

/// A disk that may take a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCandidate {
    /// Node holding the disk.
    pub node_id: String,
    /// The disk.
    pub disk_id: u64,
    /// Appendable bytes left.
    pub free_bytes: u64,
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

/// Chooses `width` distinct disks for a stripe's shards, in shard order.
///
/// `existing` lists (node, disk) already holding shards of this stripe (used when replacing
/// one shard: they count towards the per-node spread and are never chosen again); `exclude`
/// lists disks that must not be chosen (e.g. the failed one).
pub fn place_shards<R: Rng>(
    candidates: &[DiskCandidate],
    width: usize,
    shard_len: u64,
    existing: &[(String, u64)],
    exclude: &[u64],
    rng: &mut R,
) -> Result<Vec<DiskCandidate>, PlacementError> {
    let mut free: Vec<&DiskCandidate> = candidates
        .iter()
        .filter(|d| d.free_bytes >= shard_len)
        .filter(|d| !exclude.contains(&d.disk_id))
        .filter(|d| !existing.iter().any(|(_, disk)| *disk == d.disk_id))
        .collect();
    // Deduplicate disk ids defensively (a disk reported twice must not get two shards).
    free.sort_by_key(|d| d.disk_id);
    free.dedup_by_key(|d| d.disk_id);
    if free.len() < width {
        return Err(PlacementError::TooFewDisks {
            needed: width,
            available: free.len(),
            shard_len,
        });
    }
    let mut per_node: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (node, _) in existing {
        *per_node.entry(node.as_str()).or_default() += 1;
    }
    let mut chosen = Vec::with_capacity(width);
    for _ in 0..width {
        // Nodes that still have an unused disk, with their load and free space.
        let mut nodes: Vec<(&str, usize, u128)> = Vec::new();
        for d in &free {
            match nodes.iter_mut().find(|(n, _, _)| *n == d.node_id) {
                Some(e) => e.2 += d.free_bytes as u128,
                None => nodes.push((
                    &d.node_id,
                    per_node.get(d.node_id.as_str()).copied().unwrap_or(0),
                    d.free_bytes as u128,
                )),
            }
        }
        let least = nodes.iter().map(|n| n.1).min().expect("free is not empty");
        nodes.retain(|n| n.1 == least);
        let node = weighted_pick(&nodes, |n| n.2, rng).0;
        let on_node: Vec<usize> = (0..free.len())
            .filter(|&i| free[i].node_id == node)
            .collect();
        let pick = weighted_pick(&on_node, |&i| free[i].free_bytes as u128, rng);
        let d = free.remove(*pick);
        *per_node.entry(node).or_default() += 1;
        chosen.push(d.clone());
    }
    Ok(chosen)
}

/// Chooses the disk that takes over one shard of a stripe after a write to it failed.
///
/// The failed shard's node holds one shard fewer once the shard is gone, so the spread rule
/// alone would favour its other disks, yet a node that just failed a write (dead, stalled,
/// partitioned) is the worst place to retry. Other nodes come first; the failed node's other
/// disks only when nothing else has room.
pub fn place_replacement<R: Rng>(
    candidates: &[DiskCandidate],
    shard_len: u64,
    existing: &[(String, u64)],
    failed_node: &str,
    exclude: &[u64],
    rng: &mut R,
) -> Result<DiskCandidate, PlacementError> {
    let elsewhere: Vec<DiskCandidate> = candidates
        .iter()
        .filter(|d| d.node_id != failed_node)
        .cloned()
        .collect();
    place_shards(&elsewhere, 1, shard_len, existing, exclude, rng)
        .or_else(|_| place_shards(candidates, 1, shard_len, existing, exclude, rng))
        .map(|mut v| v.remove(0))
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use std::collections::{HashMap, HashSet};

    fn cluster(
        nodes: usize,
        disks: usize,
        free: impl Fn(usize, usize) -> u64,
    ) -> Vec<DiskCandidate> {
        let mut v = Vec::new();
        for n in 0..nodes {
            for d in 0..disks {
                v.push(DiskCandidate {
                    node_id: format!("node-{n}"),
                    disk_id: (n * 100 + d) as u64 + 1,
                    free_bytes: free(n, d),
                });
            }
        }
        v
    }

    fn per_node(p: &[DiskCandidate]) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for d in p {
            *m.entry(d.node_id.clone()).or_default() += 1;
        }
        m
    }

    #[test]
    fn seven_shards_on_four_nodes_of_two_disks_never_put_more_than_m_on_a_node() {
        let c = cluster(4, 2, |_, _| 1 << 30);
        for seed in 0..500 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let p = place_shards(&c, 7, 1 << 20, &[], &[], &mut rng).unwrap();
            let disks: HashSet<u64> = p.iter().map(|d| d.disk_id).collect();
            assert_eq!(disks.len(), 7);
            assert!(per_node(&p).values().all(|&n| n <= 2), "{p:?}");
        }
    }

    #[test]
    fn too_few_disks_names_needed_and_available() {
        let c = cluster(2, 2, |n, _| if n == 0 { 1 << 30 } else { 10 });
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let e = place_shards(&c, 7, 1 << 20, &[], &[], &mut rng).unwrap_err();
        assert_eq!(
            e,
            PlacementError::TooFewDisks {
                needed: 7,
                available: 2,
                shard_len: 1 << 20
            }
        );
        assert!(e.to_string().contains("needs 7") && e.to_string().contains("2 available"));
    }

    #[test]
    fn replacement_avoids_the_stripes_disks_and_the_failed_one() {
        let c = cluster(4, 2, |_, _| 1 << 30);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = place_shards(&c, 7, 1, &[], &[], &mut rng).unwrap();
        let failed = p[3].disk_id;
        let existing: Vec<(String, u64)> = p
            .iter()
            .filter(|d| d.disk_id != failed)
            .map(|d| (d.node_id.clone(), d.disk_id))
            .collect();
        let r = place_shards(&c, 1, 1, &existing, &[failed], &mut rng).unwrap();
        assert!(!p.iter().any(|d| d.disk_id == r[0].disk_id));
        // Only the failed disk was left; excluding it leaves nothing.
        assert!(place_shards(&c, 2, 1, &existing, &[failed], &mut rng).is_err());
    }

    #[test]
    fn replacement_leaves_the_failed_node_unless_nothing_else_has_room() {
        // 5 nodes x 2 disks; EC 5+2 spread 2,2,1,1,1; the shard on node-4 (alone there) fails.
        let c = cluster(5, 2, |_, _| 1 << 30);
        let d = |n: usize, i: usize| (n * 100 + i) as u64 + 1;
        let stripe = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (3, 0), (4, 0)];
        let failed = d(4, 0);
        let existing: Vec<(String, u64)> = stripe
            .iter()
            .map(|&(n, i)| (format!("node-{n}"), d(n, i)))
            .filter(|e| e.1 != failed)
            .collect();
        for seed in 0..200 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let r = place_replacement(&c, 1, &existing, "node-4", &[failed], &mut rng).unwrap();
            assert!(r.node_id == "node-2" || r.node_id == "node-3", "{r:?}");
        }
        // With the other nodes full, the failed node's spare disk is still better than none.
        let full = cluster(5, 2, |n, _| if n == 4 { 1 << 30 } else { 0 });
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let r = place_replacement(&full, 1, &existing, "node-4", &[failed], &mut rng).unwrap();
        assert_eq!(r.disk_id, d(4, 1));
    }

    #[test]
    fn free_space_weights_the_choice() {
        let c = cluster(5, 1, |n, _| if n == 0 { 100 << 30 } else { 1 << 30 });
        let mut hits = 0;
        for seed in 0..400 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let p = place_shards(&c, 1, 1, &[], &[], &mut rng).unwrap();
            hits += usize::from(p[0].node_id == "node-0");
        }
        assert!(
            hits > 300,
            "the emptiest disk should win most single picks, got {hits}/400"
        );
    }

    proptest! {
        #[test]
        fn placement_spreads_across_nodes_then_disks(
            nodes in 1usize..10, disks in 1usize..5, preset in 0usize..4, seed in any::<u64>(),
            frees in proptest::collection::vec(0u64..1_000_000, 50),
        ) {
            let (k, m) = [(5, 2), (9, 2), (18, 3), (29, 3)][preset];
            let width = k + m;
            let c = cluster(nodes, disks, |n, d| frees[(n * 5 + d) % 50] + 1000);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            match place_shards(&c, width, 1000, &[], &[], &mut rng) {
                Err(PlacementError::TooFewDisks { available, .. }) => {
                    prop_assert!(available < width);
                    prop_assert_eq!(available, nodes * disks);
                }
                Ok(p) => {
                    prop_assert_eq!(p.len(), width);
                    let set: HashSet<u64> = p.iter().map(|d| d.disk_id).collect();
                    prop_assert_eq!(set.len(), width);
                    let max = *per_node(&p).values().max().unwrap();
                    // Uniform nodes: the spread is as even as it can be.
                    prop_assert_eq!(max, width.div_ceil(nodes));
                    if nodes * m >= width {
                        prop_assert!(max <= m, "a node holds {} > m = {}", max, m);
                    }
                }
            }
        }
    }
}
