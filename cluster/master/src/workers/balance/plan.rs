//! Planning one round of a balance: which shards go from the fullest disks to the emptiest,
//! so that the spread between them falls to the target, without breaking the spread rule.
//!
//! Pure: it works on the usage and stripe maps the pass read, and projects each move's
//! effect on both disks, so one round plans many moves from one heartbeat's figures.
//! A move is planned only when it leaves the target no fuller than the source, so rounds
//! converge and never bounce a shard back and forth.

use kdss_common::Location;
use kdss_common::topology::Level;
use kdss_proto::master::StripeInfo;
use std::collections::{BTreeMap, BTreeSet};

/// A disk in service, as the round sees it.
#[derive(Debug, Clone)]
pub struct DiskLoad {
    /// Its node.
    pub node_id: String,
    /// The disk.
    pub disk_id: u64,
    /// Bytes it holds.
    pub capacity: u64,
    /// Live bytes on it.
    pub used: u64,
    /// Appendable bytes left.
    pub free: u64,
    /// It may take new shards (online; a suspect disk only gives).
    pub writable: bool,
    /// Zone and rack of its node.
    pub location: Location,
}

impl DiskLoad {
    fn pct_with(&self, used: u64) -> f64 {
        if self.capacity == 0 {
            100.0
        } else {
            used as f64 * 100.0 / self.capacity as f64
        }
    }

    fn pct(&self) -> f64 {
        self.pct_with(self.used)
    }
}

/// One shard to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMove {
    /// The stripe.
    pub stripe_id: u64,
    /// The shard.
    pub shard_index: u32,
    /// The disk it leaves.
    pub from_disk: u64,
    /// The node that receives it.
    pub to_node: String,
    /// The disk that receives it.
    pub to_disk: u64,
    /// Its bytes.
    pub bytes: u64,
}

/// The spread rule for one move: the target holds no shard of the stripe, and at every
/// failure-domain level (zone, rack, host) where the target's domain is not the source's,
/// the target's domain ends with no more shards of the stripe than the source's domain had,
/// so no domain's share of any stripe grows past what placement gave the largest one and
/// the per-domain limit of m placement kept holds. `located` gives where a node sits
/// (`None` for a node the round does not know: its shards count in no domain but its own).
pub fn spread_ok<'a>(
    info: &StripeInfo,
    from: &DiskLoad,
    to: &DiskLoad,
    located: impl Fn(&str) -> Option<&'a Location>,
) -> bool {
    if info.shards.iter().any(|s| s.disk_id == to.disk_id) {
        return false;
    }
    let key = |level: Level, node: &str, loc: Option<&Location>| -> Option<String> {
        match level {
            Level::Zone => loc.map(|l| l.zone.clone()),
            Level::Rack => loc.map(|l| l.to_string()),
            _ => Some(node.to_string()),
        }
    };
    Level::DOMAINS.iter().all(|&level| {
        let src = key(level, &from.node_id, Some(&from.location));
        let dst = key(level, &to.node_id, Some(&to.location));
        if src == dst {
            return true;
        }
        let on = |k: &Option<String>| {
            info.shards
                .iter()
                .filter(|s| key(level, &s.node_id, located(&s.node_id)) == *k)
                .count()
        };
        on(&dst) < on(&src)
    })
}

/// Spread, in percentage points, between the fullest and the emptiest disk.
pub fn spread(disks: &[DiskLoad]) -> f64 {
    let pcts = disks.iter().map(DiskLoad::pct);
    let (lo, hi) = pcts.fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p), hi.max(p)));
    if disks.len() < 2 { 0.0 } else { hi - lo }
}

/// Plans up to `max_moves` moves that bring the spread of `disks` to `target_pct` or
/// below. `on_disk` holds, per source disk, the stripes with a shard there (the pass
/// reads them for the fullest disks only). One move per stripe per round.
pub fn plan(
    disks: &[DiskLoad],
    on_disk: &BTreeMap<u64, Vec<StripeInfo>>,
    target_pct: f64,
    max_moves: usize,
) -> Vec<PlannedMove> {
    let mut d: Vec<DiskLoad> = disks.to_vec();
    let mut cursor: BTreeMap<u64, usize> = BTreeMap::new();
    let mut exhausted: BTreeSet<u64> = BTreeSet::new();
    let mut touched: BTreeSet<u64> = BTreeSet::new();
    let mut moves = Vec::new();
    let located: BTreeMap<&str, &Location> = disks
        .iter()
        .map(|d| (d.node_id.as_str(), &d.location))
        .collect();
    while moves.len() < max_moves && spread(&d) > target_pct {
        let Some(src) = (0..d.len())
            .filter(|&i| !exhausted.contains(&d[i].disk_id) && on_disk.contains_key(&d[i].disk_id))
            .max_by(|&a, &b| d[a].pct().total_cmp(&d[b].pct()))
        else {
            break;
        };
        let mut targets: Vec<usize> = (0..d.len())
            .filter(|&i| i != src && d[i].writable && d[i].pct() < d[src].pct())
            .collect();
        targets.sort_by(|&a, &b| d[a].pct().total_cmp(&d[b].pct()));
        let stripes = &on_disk[&d[src].disk_id];
        let start = cursor.get(&d[src].disk_id).copied().unwrap_or(0);
        let mut found = None;
        for (i, info) in stripes.iter().enumerate().skip(start) {
            if touched.contains(&info.stripe_id) {
                continue;
            }
            let Some(sh) = info.shards.iter().find(|s| s.disk_id == d[src].disk_id) else {
                continue;
            };
            let len = info.shard_len;
            let to = targets.iter().copied().find(|&t| {
                d[t].free >= len
                    && d[t].pct_with(d[t].used + len)
                        <= d[src].pct_with(d[src].used.saturating_sub(len))
                    && spread_ok(info, &d[src], &d[t], |n| located.get(n).copied())
            });
            if let Some(t) = to {
                found = Some((i, t, sh.shard_index, len, info.stripe_id));
                break;
            }
        }
        let Some((i, t, shard_index, len, stripe_id)) = found else {
            exhausted.insert(d[src].disk_id);
            continue;
        };
        cursor.insert(d[src].disk_id, i + 1);
        touched.insert(stripe_id);
        d[src].used = d[src].used.saturating_sub(len);
        d[t].used += len;
        d[t].free = d[t].free.saturating_sub(len);
        moves.push(PlannedMove {
            stripe_id,
            shard_index,
            from_disk: d[src].disk_id,
            to_node: d[t].node_id.clone(),
            to_disk: d[t].disk_id,
            bytes: len,
        });
    }
    moves
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdss_proto::master::ShardLocation;

    fn disk(node: &str, id: u64, used: u64) -> DiskLoad {
        DiskLoad {
            node_id: node.into(),
            disk_id: id,
            capacity: 1000,
            used,
            free: 1000 - used,
            writable: true,
            location: Location::default(),
        }
    }

    /// [`disk`] in rack `rack`.
    fn racked(node: &str, id: u64, used: u64, rack: &str) -> DiskLoad {
        DiskLoad {
            location: Location::from_labels("z", rack),
            ..disk(node, id, used)
        }
    }

    /// A stripe of `len`-byte shards on (node, disk) pairs, shard i on the i-th pair.
    fn stripe(id: u64, len: u64, at: &[(&str, u64)]) -> StripeInfo {
        StripeInfo {
            stripe_id: id,
            shard_len: len,
            k: at.len() as u32 - 1,
            m: 1,
            shards: at
                .iter()
                .enumerate()
                .map(|(i, (n, d))| ShardLocation {
                    shard_index: i as u32,
                    node_id: n.to_string(),
                    disk_id: *d,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_empty_disk_is_filled_until_the_spread_is_within_target() {
        // Three full-ish disks on three nodes, a fourth node empty.
        let disks = [
            disk("a", 1, 600),
            disk("b", 2, 600),
            disk("c", 3, 600),
            disk("d", 4, 0),
        ];
        let stripes: Vec<StripeInfo> = (0..60)
            .map(|i| stripe(i, 10, &[("a", 1), ("b", 2), ("c", 3)]))
            .collect();
        let on_disk: BTreeMap<u64, Vec<StripeInfo>> =
            [1, 2, 3].iter().map(|&d| (d, stripes.clone())).collect();
        let moves = plan(&disks, &on_disk, 5.0, 10_000);
        let mut used: BTreeMap<u64, i64> =
            disks.iter().map(|d| (d.disk_id, d.used as i64)).collect();
        for m in &moves {
            *used.get_mut(&m.from_disk).unwrap() -= m.bytes as i64;
            *used.get_mut(&m.to_disk).unwrap() += m.bytes as i64;
            assert_eq!(m.to_disk, 4, "only the empty disk gains: {m:?}");
        }
        let hi = *used.values().max().unwrap() as f64 / 10.0;
        let lo = *used.values().min().unwrap() as f64 / 10.0;
        assert!(
            hi - lo <= 5.0,
            "spread {hi}-{lo} after {} moves",
            moves.len()
        );
        // 1800 bytes over four disks is 450 each: 45 shards to the new disk, give or take
        // the target's slack.
        assert!((40..=46).contains(&moves.len()), "{} moves", moves.len());
        let stripes_moved: BTreeSet<u64> = moves.iter().map(|m| m.stripe_id).collect();
        assert_eq!(
            stripes_moved.len(),
            moves.len(),
            "one move per stripe per round"
        );
    }

    #[test]
    fn the_spread_rule_keeps_a_node_from_taking_a_second_shard_of_a_stripe() {
        // Disk 4 is on node "b", which already holds shard 1 of every stripe on disk 2.
        let disks = [
            disk("a", 1, 900),
            disk("b", 2, 100),
            disk("c", 3, 500),
            disk("b", 4, 0),
        ];
        let s = stripe(7, 100, &[("a", 1), ("b", 2), ("c", 3)]);
        let on_disk = BTreeMap::from([(1, vec![s.clone()])]);
        let moves = plan(&disks, &on_disk, 5.0, 10);
        assert!(moves.is_empty(), "{moves:?}");
        let here = |_: &str| Some(&*DEFAULT);
        assert!(!spread_ok(&s, &disks[0], &disks[3], here));
        assert!(
            spread_ok(&s, &disks[1], &disks[3], here),
            "within one node a disk may change"
        );
        assert!(
            !spread_ok(&s, &disks[0], &disks[1], here),
            "a disk of the stripe never takes another"
        );
    }

    static DEFAULT: std::sync::LazyLock<Location> = std::sync::LazyLock::new(Location::default);

    #[test]
    fn a_move_never_gives_a_rack_more_shards_of_a_stripe_than_the_source_rack_had() {
        // Racks r1 (nodes a, d) and r2 (node b), r3 (node c): the stripe has 1 in r1 (on a),
        // 1 in r2, 1 in r3. Node d is empty and in r1, so a to d stays in the rack.
        let disks = [
            racked("a", 1, 900, "r1"),
            racked("b", 2, 900, "r2"),
            racked("c", 3, 900, "r3"),
            racked("d", 4, 0, "r1"),
            racked("e", 5, 0, "r2"),
        ];
        let s = stripe(7, 100, &[("a", 1), ("b", 2), ("c", 3)]);
        let loc: BTreeMap<&str, &Location> = disks
            .iter()
            .map(|d| (d.node_id.as_str(), &d.location))
            .collect();
        let at = |n: &str| loc.get(n).copied();
        assert!(
            spread_ok(&s, &disks[0], &disks[3], at),
            "same rack, new host"
        );
        assert!(
            !spread_ok(&s, &disks[0], &disks[4], at),
            "r2 would hold 2 of the stripe where r1 held 1"
        );
        let on_disk = BTreeMap::from([(1, vec![s.clone()])]);
        let moves = plan(&disks, &on_disk, 5.0, 10);
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].to_disk, 4, "{moves:?}");
    }

    #[test]
    fn nothing_moves_when_within_target_or_when_a_move_would_overshoot() {
        let disks = [disk("a", 1, 520), disk("b", 2, 500)];
        let on_disk = BTreeMap::from([(1, vec![stripe(1, 10, &[("a", 1)])])]);
        assert!(plan(&disks, &on_disk, 5.0, 10).is_empty());
        // A 100-byte shard from 52 % to 48 % would leave the target fuller than the source.
        let disks = [disk("a", 1, 540), disk("b", 2, 480)];
        let on_disk = BTreeMap::from([(1, vec![stripe(1, 100, &[("a", 1)])])]);
        assert!(plan(&disks, &on_disk, 1.0, 10).is_empty());
    }

    #[test]
    fn a_read_only_disk_gives_but_never_takes() {
        let mut ro = disk("b", 2, 0);
        ro.writable = false;
        let disks = [disk("a", 1, 800), ro, disk("c", 3, 400)];
        let on_disk = BTreeMap::from([(1, vec![stripe(1, 100, &[("a", 1)])])]);
        let moves = plan(&disks, &on_disk, 5.0, 10);
        assert_eq!(moves.len(), 1);
        assert_eq!(moves[0].to_disk, 3);
    }
}
