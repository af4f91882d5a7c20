//! How full each disk is, from the nodes' last heartbeats and the replicated disk states:
//! what `balance status` shows and what a balance pass plans from.

use crate::health::status_name;
use crate::membership::NodeReport;
use kdss_proto::master as pb;
use kdss_proto::master::DiskStatus;
use kdss_proto::storage::DiskState;

/// One row per disk the nodes report, with the state that decides whether it counts: a
/// disk counts toward the imbalance when its node is heard from, the node has not failed
/// it, and the master has it online or suspect (it holds data and may take shards). An
/// offline or draining disk is shown but left out: its data is leaving it anyway.
pub fn disks(reports: &[NodeReport], status: impl Fn(u64) -> DiskStatus) -> Vec<pb::BalanceDisk> {
    let mut out = Vec::new();
    for n in reports {
        for d in &n.disks {
            let st = status(d.disk_id);
            let state = if !n.online {
                "node offline"
            } else if d.state == DiskState::Failed as i32 {
                "failed"
            } else {
                status_name(st)
            };
            let counted = n.online
                && d.state != DiskState::Failed as i32
                && matches!(st, DiskStatus::Online | DiskStatus::Suspect);
            out.push(pb::BalanceDisk {
                node_id: n.node_id.clone(),
                disk_id: d.disk_id,
                path: d.path.clone(),
                capacity_bytes: d.capacity_bytes,
                used_bytes: d.used_bytes,
                used_pct: used_pct(d.used_bytes, d.capacity_bytes),
                state: state.to_string(),
                counted,
            });
        }
    }
    out
}

/// Used share in percent (0 for a disk that reports no capacity).
pub fn used_pct(used: u64, capacity: u64) -> f64 {
    if capacity == 0 {
        0.0
    } else {
        used as f64 * 100.0 / capacity as f64
    }
}

/// Percentage points between the fullest and the emptiest counted disk; 0 with fewer
/// than two (nothing to even out).
pub fn imbalance(disks: &[pb::BalanceDisk]) -> f64 {
    let pcts = disks.iter().filter(|d| d.counted).map(|d| d.used_pct);
    let (lo, hi, n) = pcts.fold((f64::MAX, f64::MIN, 0), |(lo, hi, n), p| {
        (lo.min(p), hi.max(p), n + 1)
    });
    if n < 2 { 0.0 } else { hi - lo }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdss_proto::storage::DiskInfo;
    use std::time::Duration;

    fn node(id: &str, online: bool, disks: &[(u64, u64, DiskState)]) -> NodeReport {
        NodeReport {
            node_id: id.into(),
            age: Duration::ZERO,
            online,
            disks: disks
                .iter()
                .map(|&(disk_id, used, state)| DiskInfo {
                    disk_id,
                    capacity_bytes: 1000,
                    used_bytes: used,
                    state: state as i32,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_spread_counts_only_disks_that_hold_data_in_service() {
        let reports = [
            node(
                "n1",
                true,
                &[(1, 820, DiskState::Online), (2, 990, DiskState::Failed)],
            ),
            node(
                "n2",
                true,
                &[(3, 100, DiskState::Online), (4, 0, DiskState::Online)],
            ),
            node("n3", false, &[(5, 0, DiskState::Online)]),
            node("n4", true, &[(6, 500, DiskState::Readonly)]),
        ];
        let status = |id| match id {
            4 => DiskStatus::Draining,
            6 => DiskStatus::Suspect,
            _ => DiskStatus::Online,
        };
        let d = disks(&reports, status);
        let states: Vec<(&str, bool)> = d.iter().map(|d| (d.state.as_str(), d.counted)).collect();
        assert_eq!(
            states,
            [
                ("online", true),
                ("failed", false),
                ("online", true),
                ("draining", false),
                ("node offline", false),
                ("suspect", true),
            ]
        );
        assert_eq!(d[0].used_pct, 82.0);
        // Counted: 82 %, 10 %, 50 %.
        assert_eq!(imbalance(&d), 72.0);
    }

    #[test]
    fn one_disk_or_none_is_balanced() {
        assert_eq!(imbalance(&[]), 0.0);
        let d = disks(&[node("n1", true, &[(1, 900, DiskState::Online)])], |_| {
            DiskStatus::Online
        });
        assert_eq!(imbalance(&d), 0.0);
        assert_eq!(used_pct(5, 0), 0.0);
    }
}
