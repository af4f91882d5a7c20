//! The placement property over random topologies: for every EC preset, a placed stripe
//! keeps at most m shards in each domain of the highest level that has enough members,
//! and replacing one of its shards (the repair path) keeps that.
//!
//! "Enough members" is counted here on its own, from the disks that can take a shard:
//! a level qualifies when the sum over its domains of min(m, usable disks) reaches the
//! shards to place (a domain cannot hold more than m, nor more than it has disks).

use super::*;
use proptest::prelude::*;
use rand::SeedableRng;
use std::collections::BTreeMap;

const PRESETS: [(usize, usize); 4] = [(5, 2), (9, 2), (18, 3), (29, 3)];
const SHARD: u64 = 1000;

/// A random cluster: up to 3 zones x 4 racks x 4 nodes x 4 disks, some disks too full for
/// a shard. Shapes are drawn per node from `shape` so that racks and zones are uneven.
fn topology(zones: usize, shape: &[(u8, u8, u8)], frees: &[u64]) -> Vec<DiskCandidate> {
    let mut v = Vec::new();
    for (n, &(z, r, disks)) in shape.iter().enumerate() {
        for d in 0..usize::from(disks) {
            let free = frees[(n * 4 + d) % frees.len()];
            v.push(DiskCandidate {
                node_id: format!("node-{n}"),
                disk_id: (n * 10 + d) as u64 + 1,
                // A quarter of the disks have no room for a shard.
                free_bytes: if free.is_multiple_of(4) {
                    SHARD - 1
                } else {
                    free + SHARD
                },
                location: Location::from_labels(
                    &format!("z{}", usize::from(z) % zones),
                    &format!("r{r}"),
                ),
            });
        }
    }
    v
}

fn domain(level: Level, d: &DiskCandidate) -> String {
    match level {
        Level::Zone => d.location.zone.clone(),
        Level::Rack => d.location.to_string(),
        Level::Host => d.node_id.clone(),
        Level::Disk => d.disk_id.to_string(),
    }
}

/// The highest level with enough members for `shards` more shards, `held` already placed,
/// and the room it has (sum of min(m - held, usable) over its domains).
fn enough(
    disks: &[&DiskCandidate],
    held: &[DiskCandidate],
    shards: usize,
    m: usize,
) -> (Level, usize) {
    for level in Level::DOMAINS {
        let mut usable: BTreeMap<String, usize> = BTreeMap::new();
        let mut have: BTreeMap<String, usize> = BTreeMap::new();
        for d in disks {
            *usable.entry(domain(level, d)).or_default() += 1;
        }
        for d in held {
            *have.entry(domain(level, d)).or_default() += 1;
        }
        let room: usize = usable
            .iter()
            .map(|(k, &n)| n.min(m.saturating_sub(have.get(k).copied().unwrap_or(0))))
            .sum();
        if room >= shards {
            return (level, room);
        }
    }
    (Level::Disk, 0)
}

fn most_in_a_domain(level: Level, stripe: &[DiskCandidate]) -> usize {
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for d in stripe {
        *per.entry(domain(level, d)).or_default() += 1;
    }
    per.into_values().max().unwrap_or(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_domain_of_the_highest_level_with_enough_members_holds_more_than_m(
        zones in 1usize..4,
        shape in proptest::collection::vec((0u8..3, 0u8..4, 1u8..5), 1..48),
        frees in proptest::collection::vec(0u64..1_000_000, 1..64),
        preset in 0usize..4,
        seed in any::<u64>(),
        victim in any::<usize>(),
    ) {
        let (k, m) = PRESETS[preset];
        let width = k + m;
        let c = topology(zones, &shape, &frees);
        let usable: Vec<&DiskCandidate> = c.iter().filter(|d| d.free_bytes >= SHARD).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let need = Need { shards: width, m, shard_len: SHARD, existing: &[], exclude: &[] };
        let placed = place_shards(&c, &need, &mut rng);
        let Ok(stripe) = placed else {
            // Placement refuses only when there are not enough disks.
            prop_assert!(usable.len() < width, "refused with {} usable disks", usable.len());
            return Ok(());
        };
        prop_assert!(usable.len() >= width);
        prop_assert_eq!(stripe.len(), width);
        let distinct: std::collections::BTreeSet<u64> = stripe.iter().map(|d| d.disk_id).collect();
        prop_assert_eq!(distinct.len(), width, "a disk got two shards");
        prop_assert!(stripe.iter().all(|d| d.free_bytes >= SHARD), "a full disk got a shard");
        let (level, room) = enough(&usable, &[], width, m);
        prop_assert_eq!(level, rule_level(&c, &need));
        if level != Level::Disk {
            let most = most_in_a_domain(level, &stripe);
            prop_assert!(most <= m, "a {} holds {} shards > m = {}: {:?}", level, most, m, stripe);
        }

        // Repair: shard `victim` is lost with its disk; the replacement keeps the rule.
        let lost = &stripe[victim % width];
        let existing: Vec<DiskCandidate> =
            stripe.iter().filter(|d| d.disk_id != lost.disk_id).cloned().collect();
        let exclude = [lost.disk_id];
        let repair = Need { shards: 1, m, shard_len: SHARD, existing: &existing, exclude: &exclude };
        let left: Vec<&DiskCandidate> = usable
            .iter()
            .copied()
            .filter(|d| d.disk_id != lost.disk_id && !existing.iter().any(|e| e.disk_id == d.disk_id))
            .collect();
        let (level2, _) = enough(&left, &existing, 1, m);
        if room > width {
            // With a place to spare, losing a shard never lowers the level.
            prop_assert!(level2 <= level, "{} after repair, {} before", level2, level);
        }
        match place_replacement(&c, &repair, &lost.node_id, &mut rng) {
            Err(_) => prop_assert!(left.is_empty(), "no replacement with {} disks left", left.len()),
            Ok(r) => {
                prop_assert!(r.disk_id != lost.disk_id);
                prop_assert!(!existing.iter().any(|e| e.disk_id == r.disk_id));
                let mut after = existing.clone();
                after.push(r.clone());
                // The stripe keeps the rule at the level it was placed at, whenever the
                // cluster left after the loss still can.
                if level2 <= level && level != Level::Disk {
                    let most = most_in_a_domain(level, &after);
                    prop_assert!(most <= m, "after repair a {} holds {} > m = {}", level, most, m);
                }
                // And the new shard never takes its domain past m at the highest level that
                // has room for it (one shard may qualify a level the stripe never could).
                if level2 != Level::Disk {
                    let mine = domain(level2, &r);
                    let there = after.iter().filter(|d| domain(level2, d) == mine).count();
                    prop_assert!(there <= m, "repair put a {}th shard in {} {}", there, level2, mine);
                }
            }
        }
    }
}
