//! Examples of the placement rule; the property over random topologies is in `props.rs`.

use super::*;
use rand::SeedableRng;
use std::collections::{HashMap, HashSet};

/// `nodes` nodes of `disks` disks, node n in rack `rack(n)` of zone "z"; disk ids n*100+d+1.
pub(super) fn racked(
    nodes: usize,
    disks: usize,
    rack: impl Fn(usize) -> usize,
    free: impl Fn(usize, usize) -> u64,
) -> Vec<DiskCandidate> {
    let mut v = Vec::new();
    for n in 0..nodes {
        for d in 0..disks {
            v.push(DiskCandidate {
                node_id: format!("node-{n}"),
                disk_id: (n * 100 + d) as u64 + 1,
                free_bytes: free(n, d),
                location: Location::from_labels("z", &format!("rack-{}", rack(n))),
            });
        }
    }
    v
}

/// An unlabelled cluster: every node in the default zone and rack.
fn cluster(nodes: usize, disks: usize, free: impl Fn(usize, usize) -> u64) -> Vec<DiskCandidate> {
    let mut v = racked(nodes, disks, |_| 0, free);
    for d in &mut v {
        d.location = Location::default();
    }
    v
}

fn need(shards: usize, m: usize, shard_len: u64) -> Need<'static> {
    Need {
        shards,
        m,
        shard_len,
        existing: &[],
        exclude: &[],
    }
}

fn per<F: Fn(&DiskCandidate) -> String>(p: &[DiskCandidate], f: F) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for d in p {
        *m.entry(f(d)).or_default() += 1;
    }
    m
}

fn per_node(p: &[DiskCandidate]) -> HashMap<String, usize> {
    per(p, |d| d.node_id.clone())
}

fn per_rack(p: &[DiskCandidate]) -> HashMap<String, usize> {
    per(p, |d| d.location.to_string())
}

fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

#[test]
fn seven_shards_on_four_nodes_of_two_disks_never_put_more_than_m_on_a_node() {
    let c = cluster(4, 2, |_, _| 1 << 30);
    for seed in 0..500 {
        let p = place_shards(&c, &need(7, 2, 1 << 20), &mut rng(seed)).unwrap();
        let disks: HashSet<u64> = p.iter().map(|d| d.disk_id).collect();
        assert_eq!(disks.len(), 7);
        assert!(per_node(&p).values().all(|&n| n <= 2), "{p:?}");
    }
}

#[test]
fn a_rack_of_two_nodes_gets_no_more_than_m_where_spreading_by_node_gave_it_three() {
    // The e2e rack-loss test's shape: 5 nodes x 2 disks round-robin in 4 racks, so rack-0
    // holds node-0 and node-4. By node alone, 7 shards on 5 nodes go 2,2,1,1,1 and rack-0
    // gets 3 or 4 of them in 7 stripes out of 10.
    let c = racked(5, 2, |n| n % 4, |_, _| 1 << 30);
    assert_eq!(rule_level(&c, &need(7, 2, 1)), Level::Rack);
    for seed in 0..500 {
        let p = place_shards(&c, &need(7, 2, 1), &mut rng(seed)).unwrap();
        let racks = per_rack(&p);
        assert!(racks.values().all(|&n| n <= 2), "{racks:?}");
        assert_eq!(racks.len(), 4, "{racks:?}");
    }
}

#[test]
fn too_few_racks_fall_back_to_hosts_then_disks() {
    // 3 racks cannot keep 7 shards at 2 per rack; 6 hosts can.
    let c = racked(6, 2, |n| n % 3, |_, _| 1 << 30);
    assert_eq!(rule_level(&c, &need(7, 2, 1)), Level::Host);
    let p = place_shards(&c, &need(7, 2, 1), &mut rng(3)).unwrap();
    assert!(per_node(&p).values().all(|&n| n <= 2));
    // And spread as evenly as 3 racks allow: 3,2,2.
    let mut r: Vec<usize> = per_rack(&p).into_values().collect();
    r.sort();
    assert_eq!(r, vec![2, 2, 3]);
    // 2 hosts of 4 disks: not even hosts, only distinct disks.
    let c = cluster(2, 4, |_, _| 1 << 30);
    assert_eq!(rule_level(&c, &need(7, 2, 1)), Level::Disk);
    assert_eq!(
        place_shards(&c, &need(7, 2, 1), &mut rng(1)).unwrap().len(),
        7
    );
}

#[test]
fn zones_come_before_racks() {
    // 4 zones of 2 racks of 1 node x 2 disks: 7 shards at most 2 per zone.
    let mut c = racked(8, 2, |n| n, |_, _| 1 << 30);
    for d in &mut c {
        let n: usize = d.node_id[5..].parse().unwrap();
        d.location.zone = format!("zone-{}", n / 2);
    }
    assert_eq!(rule_level(&c, &need(7, 2, 1)), Level::Zone);
    for seed in 0..200 {
        let p = place_shards(&c, &need(7, 2, 1), &mut rng(seed)).unwrap();
        let zones = per(&p, |d| d.location.zone.clone());
        assert!(zones.values().all(|&n| n <= 2), "{zones:?}");
        // Within a zone's two shards, two racks.
        assert!(per_rack(&p).values().all(|&n| n == 1), "{p:?}");
    }
}

#[test]
fn too_few_disks_names_needed_and_available() {
    let c = cluster(2, 2, |n, _| if n == 0 { 1 << 30 } else { 10 });
    let e = place_shards(&c, &need(7, 2, 1 << 20), &mut rng(1)).unwrap_err();
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
    let p = place_shards(&c, &need(7, 2, 1), &mut rng(7)).unwrap();
    let failed = p[3].disk_id;
    let existing: Vec<DiskCandidate> = p.iter().filter(|d| d.disk_id != failed).cloned().collect();
    let n = Need {
        existing: &existing,
        exclude: &[failed],
        ..need(1, 2, 1)
    };
    let r = place_shards(&c, &n, &mut rng(7)).unwrap();
    assert!(!p.iter().any(|d| d.disk_id == r[0].disk_id));
    // Only the failed disk was left; excluding it leaves nothing.
    let n = Need { shards: 2, ..n };
    assert!(place_shards(&c, &n, &mut rng(7)).is_err());
}

#[test]
fn replacement_leaves_the_failed_node_unless_nothing_else_has_room() {
    // 5 nodes x 2 disks; EC 5+2 spread 2,2,1,1,1; the shard on node-4 (alone there) fails.
    let c = cluster(5, 2, |_, _| 1 << 30);
    let d = |n: usize, i: usize| (n * 100 + i) as u64 + 1;
    let stripe = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (3, 0), (4, 0)];
    let failed = d(4, 0);
    let existing: Vec<DiskCandidate> = c
        .iter()
        .filter(|c| stripe.iter().any(|&(n, i)| d(n, i) == c.disk_id) && c.disk_id != failed)
        .cloned()
        .collect();
    let n = Need {
        existing: &existing,
        exclude: &[failed],
        ..need(1, 2, 1)
    };
    for seed in 0..200 {
        let r = place_replacement(&c, &n, "node-4", &mut rng(seed)).unwrap();
        assert!(r.node_id == "node-2" || r.node_id == "node-3", "{r:?}");
    }
    // With the other nodes full, the failed node's spare disk is still better than none.
    let full = cluster(5, 2, |n, _| if n == 4 { 1 << 30 } else { 0 });
    let r = place_replacement(&full, &n, "node-4", &mut rng(1)).unwrap();
    assert_eq!(r.disk_id, d(4, 1));
}

#[test]
fn replacement_stays_in_the_rack_that_lost_the_shard_when_the_others_are_at_m() {
    // 4 racks: node-0 + node-4 in rack-0, one node in each other rack; the stripe holds
    // 2,2,2,1 and the shard on node-4 is lost. Only rack-0 has room under m = 2.
    let c = racked(5, 2, |n| n % 4, |_, _| 1 << 30);
    let d = |n: usize, i: usize| (n * 100 + i) as u64 + 1;
    let stripe = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)];
    let failed = d(0, 0);
    let existing: Vec<DiskCandidate> = c
        .iter()
        .filter(|c| stripe.iter().any(|&(n, i)| d(n, i) == c.disk_id) && c.disk_id != failed)
        .cloned()
        .collect();
    let n = Need {
        existing: &existing,
        exclude: &[failed],
        ..need(1, 2, 1)
    };
    for seed in 0..100 {
        let r = place_replacement(&c, &n, "node-0", &mut rng(seed)).unwrap();
        assert_eq!(r.location.rack, "rack-0", "{r:?}");
        assert_eq!(r.node_id, "node-4", "other nodes first: {r:?}");
    }
}

#[test]
fn suspect_disks_join_when_they_lift_the_rule_level() {
    // Healthy: racks 0-2 only (3 racks, 7 shards: hosts). A suspect node in rack 3 makes
    // four racks.
    let all = racked(4, 2, |n| n, |_, _| 1 << 30);
    let (healthy, suspect): (Vec<_>, Vec<_>) = all.into_iter().partition(|d| d.node_id != "node-3");
    let n = need(7, 2, 1);
    let p = with_suspect(&healthy, &suspect, &n, |c| place_shards(c, &n, &mut rng(1))).unwrap();
    assert!(per_rack(&p).values().all(|&n| n <= 2), "{p:?}");
    // Without a level to gain, healthy disks alone.
    let p = with_suspect(&healthy, &suspect, &need(3, 2, 1), |c| {
        place_shards(c, &need(3, 2, 1), &mut rng(1))
    })
    .unwrap();
    assert!(p.iter().all(|d| d.node_id != "node-3"));
}

#[test]
fn free_space_weights_the_choice() {
    let c = cluster(5, 1, |n, _| if n == 0 { 100 << 30 } else { 1 << 30 });
    let mut hits = 0;
    for seed in 0..400 {
        let p = place_shards(&c, &need(1, 2, 1), &mut rng(seed)).unwrap();
        hits += usize::from(p[0].node_id == "node-0");
    }
    assert!(
        hits > 300,
        "the emptiest disk should win most single picks, got {hits}/400"
    );
}
