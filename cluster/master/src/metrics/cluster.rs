//! What a master knows about the cluster, as gauges refreshed at each scrape: nodes by
//! state and the age of each node's last heartbeat, disks by state, usable capacity and
//! the used share, and how far each Raft member's log trails the leader's.
//!
//! Every member serves these from its own registry (heartbeats reach every master), so a
//! scrape of any master answers; the replication lag only comes from the leader.

use crate::membership::{Capacity, NodeReport};
use kdss_common::EcPolicy;
use kdss_proto::master::DiskStatus;
use kdss_proto::storage::DiskState;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

/// The states a disk is counted in (`kdss_master_disks{state}`), each always exported so an
/// alert on a state has a series to compare even while no disk is in it.
pub const DISK_STATES: [&str; 6] = [
    "online",
    "suspect",
    "offline",
    "draining",
    "failed",
    "unreachable",
];

fn label(name: &str, value: impl Into<String>) -> Labels {
    vec![(name.to_string(), value.into())]
}

/// The state a disk is counted in: its node failed it, its node is silent, or else the
/// master's replicated verdict.
pub fn disk_state_name(
    node_online: bool,
    disk: &kdss_proto::storage::DiskInfo,
    status: DiskStatus,
) -> &'static str {
    if disk.state == DiskState::Failed as i32 {
        return "failed";
    }
    if !node_online {
        return "unreachable";
    }
    crate::health::status_name(status)
}

/// Gauges of nodes, disks, capacity and replication.
pub struct ClusterGauges {
    nodes: Family<Labels, Gauge>,
    heartbeat_age: Family<Labels, FloatGauge>,
    disks: Family<Labels, Gauge>,
    usable: Gauge,
    used_ratio: FloatGauge,
    replication_lag: Family<Labels, Gauge>,
}

impl ClusterGauges {
    /// Registers the gauges in `r` (whose prefix is `kdss_master`).
    pub fn register(r: &mut Registry) -> Self {
        let g = ClusterGauges {
            nodes: Family::default(),
            heartbeat_age: Family::default(),
            disks: Family::default(),
            usable: Gauge::default(),
            used_ratio: FloatGauge::default(),
            replication_lag: Family::default(),
        };
        r.register(
            "nodes",
            "storage nodes by state (online: heard from within 3 heartbeats)",
            g.nodes.clone(),
        );
        r.register(
            "node_heartbeat_age_seconds",
            "seconds since the node's last heartbeat reached this master",
            g.heartbeat_age.clone(),
        );
        r.register(
            "disks",
            "disks by state (online, suspect, offline, draining, failed by its node, unreachable: node silent)",
            g.disks.clone(),
        );
        r.register(
            "capacity_usable_bytes",
            "free bytes of writable disks times k/(k+m) of the default EC policy: user data that still fits",
            g.usable.clone(),
        );
        r.register(
            "capacity_used_ratio",
            "used share of the online disks' raw capacity, 0 to 1",
            g.used_ratio.clone(),
        );
        r.register(
            "raft_replication_lag_entries",
            "log entries a member is behind the leader's last log (leader only; includes itself at 0)",
            g.replication_lag.clone(),
        );
        g
    }

    /// Refreshes node and disk gauges from the registry's reports; `status` is the
    /// replicated verdict of a disk.
    pub fn update_nodes(&self, reports: &[NodeReport], status: impl Fn(u64) -> DiskStatus) {
        self.heartbeat_age.clear();
        let (mut online, mut offline) = (0, 0);
        let mut disks: BTreeMap<&str, i64> = DISK_STATES.iter().map(|s| (*s, 0)).collect();
        for r in reports {
            if r.online {
                online += 1;
            } else {
                offline += 1;
            }
            self.heartbeat_age
                .get_or_create(&label("node", r.node_id.clone()))
                .set(r.age.as_secs_f64());
            for d in &r.disks {
                *disks
                    .entry(disk_state_name(r.online, d, status(d.disk_id)))
                    .or_default() += 1;
            }
        }
        self.nodes
            .get_or_create(&label("state", "online"))
            .set(online);
        self.nodes
            .get_or_create(&label("state", "offline"))
            .set(offline);
        for (state, n) in disks {
            self.disks.get_or_create(&label("state", state)).set(n);
        }
    }

    /// Refreshes the usable bytes and the used share from the capacity figures.
    pub fn update_capacity(&self, c: &Capacity, ec: EcPolicy) {
        self.usable
            .set((c.free_writable as f64 * ec.efficiency()) as i64);
        let ratio = if c.capacity == 0 {
            0.0
        } else {
            c.used as f64 / c.capacity as f64
        };
        self.used_ratio.set(ratio);
    }

    /// Refreshes the replication lag: `matched` is each member's last replicated index
    /// (None: nothing yet) as the leader sees it, `last_log` the leader's last index. An
    /// empty map (this master is no leader) exports nothing.
    pub fn update_replication(&self, last_log: u64, matched: &BTreeMap<u64, Option<u64>>) {
        self.replication_lag.clear();
        for (peer, m) in matched {
            let lag = last_log.saturating_sub(m.unwrap_or(0));
            self.replication_lag
                .get_or_create(&label("peer", peer.to_string()))
                .set(lag as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdss_proto::storage::DiskInfo;
    use std::time::Duration;

    fn report(id: &str, online: bool, disks: &[(u64, DiskState)]) -> NodeReport {
        NodeReport {
            node_id: id.into(),
            age: Duration::from_secs(if online { 1 } else { 45 }),
            online,
            disks: disks
                .iter()
                .map(|(d, s)| DiskInfo {
                    disk_id: *d,
                    state: *s as i32,
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn disks_are_counted_by_the_state_an_operator_would_act_on() {
        let mut r = Registry::with_prefix("kdss_master");
        let g = ClusterGauges::register(&mut r);
        let reports = [
            report(
                "n1",
                true,
                &[(1, DiskState::Online), (2, DiskState::Failed)],
            ),
            report(
                "n2",
                true,
                &[(3, DiskState::Online), (4, DiskState::Online)],
            ),
            report("n3", false, &[(5, DiskState::Online)]),
        ];
        g.update_nodes(&reports, |d| {
            if d == 4 {
                DiskStatus::Draining
            } else {
                DiskStatus::Online
            }
        });
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        for line in [
            "kdss_master_nodes{state=\"online\"} 2",
            "kdss_master_nodes{state=\"offline\"} 1",
            "kdss_master_disks{state=\"online\"} 2",
            "kdss_master_disks{state=\"failed\"} 1",
            "kdss_master_disks{state=\"draining\"} 1",
            "kdss_master_disks{state=\"unreachable\"} 1",
            "kdss_master_disks{state=\"suspect\"} 0",
            "kdss_master_node_heartbeat_age_seconds{node=\"n3\"} 45.0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
