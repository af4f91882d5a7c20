//! Slow-disk detection: a disk is slow in a window when its p99 latency (reads or writes)
//! stands well above the median p99 of the other disks judged in the same window. Pure:
//! the health pass feeds it the latest reports; tests feed it numbers.

use std::collections::BTreeMap;

/// One disk's latency figures for the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencyView {
    /// The disk.
    pub disk_id: u64,
    /// Read p99 in microseconds.
    pub read_p99_us: u64,
    /// Reads measured in the window.
    pub read_samples: u64,
    /// Write p99 in microseconds.
    pub write_p99_us: u64,
    /// Writes (and syncs) measured in the window.
    pub write_samples: u64,
}

/// When a latency counts as slow (from `[health]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowRule {
    /// Above this multiple of the peers' median p99 ...
    pub factor: f64,
    /// ... and above this absolute p99, in microseconds.
    pub floor_us: u64,
    /// Samples a disk needs to be judged (and to count as a peer).
    pub min_samples: u64,
    /// Peers needed for a median worth comparing with.
    pub min_peers: usize,
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// The disks that are slow in this window, each with the reason `disk list` shows. The
/// median is taken over the *other* judged disks, so one slow disk does not raise the bar
/// it is measured against.
pub fn slow_disks(disks: &[LatencyView], rule: &SlowRule) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    type Pick = fn(&LatencyView) -> (u64, u64);
    let ops: [(&str, Pick); 2] = [
        ("read", |d| (d.read_p99_us, d.read_samples)),
        ("write", |d| (d.write_p99_us, d.write_samples)),
    ];
    for (name, pick) in ops {
        let judged: Vec<(u64, u64)> = disks
            .iter()
            .map(|d| (d.disk_id, pick(d)))
            .filter(|(_, (_, n))| *n >= rule.min_samples)
            .map(|(id, (p99, _))| (id, p99))
            .collect();
        for &(id, p99) in &judged {
            let peers: Vec<u64> = judged
                .iter()
                .filter(|(other, _)| *other != id)
                .map(|(_, p)| *p)
                .collect();
            if peers.len() < rule.min_peers {
                continue;
            }
            let m = median(peers);
            if p99 > rule.floor_us && p99 as f64 > rule.factor * m as f64 {
                out.entry(id).or_insert_with(|| {
                    format!("slow: {name} p99 {} vs peers' median {}", ms(p99), ms(m))
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: SlowRule = SlowRule {
        factor: 4.0,
        floor_us: 20_000,
        min_samples: 20,
        min_peers: 3,
    };

    fn disk(id: u64, read_p99_ms: u64, samples: u64) -> LatencyView {
        LatencyView {
            disk_id: id,
            read_p99_us: read_p99_ms * 1000,
            read_samples: samples,
            ..Default::default()
        }
    }

    #[test]
    fn one_disk_far_above_its_peers_is_slow_with_the_figures_as_reason() {
        let v = [
            disk(1, 5, 100),
            disk(2, 6, 100),
            disk(3, 4, 100),
            disk(4, 90, 100),
        ];
        let slow = slow_disks(&v, &RULE);
        assert_eq!(slow.keys().copied().collect::<Vec<_>>(), vec![4]);
        assert_eq!(slow[&4], "slow: read p99 90.0 ms vs peers' median 5.0 ms");
    }

    #[test]
    fn fast_disks_below_the_floor_are_never_slow() {
        // 10x the median, but 10 ms is below the 20 ms floor.
        let v = [
            disk(1, 1, 100),
            disk(2, 1, 100),
            disk(3, 1, 100),
            disk(4, 10, 100),
        ];
        assert!(slow_disks(&v, &RULE).is_empty());
    }

    #[test]
    fn too_few_samples_or_peers_judge_nothing() {
        let few_samples = [
            disk(1, 5, 100),
            disk(2, 5, 100),
            disk(3, 5, 100),
            disk(4, 90, 5),
        ];
        assert!(slow_disks(&few_samples, &RULE).is_empty());
        let few_peers = [disk(1, 5, 100), disk(2, 5, 100), disk(4, 90, 100)];
        assert!(slow_disks(&few_peers, &RULE).is_empty());
    }

    #[test]
    fn a_uniformly_slow_cluster_has_no_slow_disk() {
        let v = [
            disk(1, 80, 100),
            disk(2, 90, 100),
            disk(3, 85, 100),
            disk(4, 95, 100),
        ];
        assert!(slow_disks(&v, &RULE).is_empty());
    }
}
