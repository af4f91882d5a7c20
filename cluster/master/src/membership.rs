//! Storage nodes and their disks, as their heartbeats report them. Kept in memory on every
//! master (not replicated): a master that receives a heartbeat directly from a node records
//! it and relays it to the other masters, so every member, and a newly elected leader in
//! particular, knows the nodes without waiting for the next heartbeat. A node is offline once
//! it missed [`OFFLINE_AFTER_MISSED`] heartbeats.
//!
//! Each report carries the node's failure domain (zone, rack), kept with the node so that
//! placement can spread stripes across it ([`crate::placement`]).
//!
//! Beside the reports it caches the replicated disk states (suspect, offline, draining;
//! refreshed from the database by the health loop and after every change), so placement and
//! read grants need no query per call.

use crate::meta_api::DiskStateRow;
use crate::placement::DiskCandidate;
use kdss_common::Location;
use kdss_proto::master as pb;
use kdss_proto::master::DiskStatus;
use kdss_proto::storage::{DiskInfo, DiskState};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The heartbeat period the master asks nodes for.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(2);
/// Heartbeats a node may miss before it counts as offline.
pub const OFFLINE_AFTER_MISSED: u32 = 3;

#[derive(Debug, Clone)]
struct NodeEntry {
    grpc_addr: String,
    http_addr: String,
    disks: Vec<DiskInfo>,
    seen: Instant,
    seen_ms: u64,
    /// Client bytes per second on the node's disks between its last two reports.
    client_rate: f64,
    /// Its failure domain, as it last reported it.
    location: Location,
}

/// The registry of storage nodes.
#[derive(Debug, Default)]
pub struct Registry {
    nodes: Mutex<BTreeMap<String, NodeEntry>>,
    states: Mutex<BTreeMap<u64, DiskStateRow>>,
}

/// A node's last report as the health pass and `disk list` read it.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The node.
    pub node_id: String,
    /// Time since its last heartbeat reached this master.
    pub age: Duration,
    /// Heard from within the missed-heartbeat limit.
    pub online: bool,
    /// Its disks as last reported.
    pub disks: Vec<DiskInfo>,
}

/// Cluster-wide raw capacity of the disks that can take data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capacity {
    /// Sum of capacity of online nodes' disks.
    pub capacity: u64,
    /// Sum of their used bytes (live + dead).
    pub used: u64,
    /// Sum of free bytes of writable disks.
    pub free_writable: u64,
}

impl Capacity {
    /// Used share in whole percent; None without any disk. The one figure the write
    /// refusal, the capacity gauges and the alert log compare with `[capacity]`.
    pub fn used_pct(&self) -> Option<u64> {
        self.used.saturating_mul(100).checked_div(self.capacity)
    }
}

/// Client traffic on the cluster's disks: what balance compares with its pause threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClientLoad {
    /// Shard bytes clients read and wrote per second, summed over online nodes.
    pub bytes_per_sec: f64,
    /// Disks of those nodes.
    pub disks: usize,
}

impl ClientLoad {
    /// The mean per disk (0 without disks).
    pub fn per_disk(&self) -> f64 {
        if self.disks == 0 {
            0.0
        } else {
            self.bytes_per_sec / self.disks as f64
        }
    }
}

/// Client bytes per second since `old`: the growth of the node's counters over the time
/// between the reports. A restarted node's counters start again at 0, which counts as
/// none; two reports close together (a relay right after the node's own) keep the last
/// rate.
fn client_rate(old: &NodeEntry, disks: &[DiskInfo], now: Instant) -> f64 {
    let secs = now.duration_since(old.seen).as_secs_f64();
    if secs < 0.2 {
        return old.client_rate;
    }
    let sum = |d: &[DiskInfo]| d.iter().map(|d| d.client_bytes).sum::<u64>();
    sum(disks).saturating_sub(sum(&old.disks)) as f64 / secs
}

/// Why a registration or heartbeat is refused: recording it would make two nodes one, or
/// one disk two. Shard locations name a node and a disk id, so either would send reads and
/// writes to the wrong place. The node keeps retrying and logs this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterConflict {
    /// A second machine started with a node id that an online node uses.
    #[error(
        "node id {node_id} is in use by the online node at {other_addr}; give the node at \
         {addr} its own [node] id in storage.toml"
    )]
    NodeId {
        node_id: String,
        addr: String,
        other_addr: String,
    },
    /// A device that is a copy of another node's formatted device (same disk id).
    #[error(
        "disk {disk:016x} ({path}) of node {node_id} is already reported by the online node \
         {other}: disk ids are unique per formatted device, so this one is a copy of a \
         formatted device; format it with `kdss format-disk` instead of copying an image"
    )]
    DiskId {
        disk: u64,
        path: String,
        node_id: String,
        other: String,
    },
}

impl Registry {
    /// Records a registration or heartbeat, unless it would clash with an online node:
    /// the same node id at another address, or a disk id another node reports. An offline
    /// node's report does not count, so a node that moved to a new address or a disk
    /// moved to another machine is accepted once the old report aged out.
    pub fn record(&self, r: &pb::RegisterNodeRequest) -> Result<(), RegisterConflict> {
        let now = Instant::now();
        let mut nodes = self.nodes.lock().expect("registry lock");
        for (id, e) in nodes.iter().filter(|(_, e)| Self::online(e, now)) {
            if *id == r.node_id {
                if e.grpc_addr != r.grpc_addr {
                    return Err(RegisterConflict::NodeId {
                        node_id: id.clone(),
                        addr: r.grpc_addr.clone(),
                        other_addr: e.grpc_addr.clone(),
                    });
                }
                continue;
            }
            if let Some(d) = r
                .disks
                .iter()
                .find(|d| e.disks.iter().any(|o| o.disk_id == d.disk_id))
            {
                return Err(RegisterConflict::DiskId {
                    disk: d.disk_id,
                    path: d.path.clone(),
                    node_id: r.node_id.clone(),
                    other: id.clone(),
                });
            }
        }
        let client_rate = nodes
            .get(&r.node_id)
            .map_or(0.0, |old| client_rate(old, &r.disks, now));
        let e = NodeEntry {
            grpc_addr: r.grpc_addr.clone(),
            http_addr: r.http_addr.clone(),
            disks: r.disks.clone(),
            seen: now,
            seen_ms: kdss_common::time::now_ms(),
            client_rate,
            location: Location::from_labels(&r.zone, &r.rack),
        };
        nodes.insert(r.node_id.clone(), e);
        Ok(())
    }

    fn online(e: &NodeEntry, now: Instant) -> bool {
        now.duration_since(e.seen) < HEARTBEAT_INTERVAL * OFFLINE_AFTER_MISSED
    }

    /// Replaces the cached disk states with the replicated table's rows.
    pub fn set_states(&self, rows: Vec<DiskStateRow>) {
        *self.states.lock().expect("states lock") =
            rows.into_iter().map(|r| (r.disk_id, r)).collect();
    }

    /// The cached replicated state rows, by disk id.
    pub fn state_rows(&self) -> BTreeMap<u64, DiskStateRow> {
        self.states.lock().expect("states lock").clone()
    }

    /// The master's verdict on a disk: online unless a state row says otherwise.
    pub fn disk_status(&self, disk_id: u64) -> DiskStatus {
        self.states
            .lock()
            .expect("states lock")
            .get(&disk_id)
            .map_or(DiskStatus::Online, |r| r.status)
    }

    /// Disks that may take new shards: node online, disk ONLINE on the node (not read-only
    /// or failed) and online for the master (not suspect, offline or draining).
    pub fn writable_disks(&self) -> Vec<DiskCandidate> {
        self.disks_with_status(DiskStatus::Online)
    }

    /// Disks the node would write to but the master finds suspect: placement uses them
    /// only when the healthy ones are not enough.
    pub fn suspect_disks(&self) -> Vec<DiskCandidate> {
        self.disks_with_status(DiskStatus::Suspect)
    }

    fn disks_with_status(&self, want: DiskStatus) -> Vec<DiskCandidate> {
        let now = Instant::now();
        let states = self.state_rows();
        let nodes = self.nodes.lock().expect("registry lock");
        let mut v = Vec::new();
        for (id, e) in nodes.iter().filter(|(_, e)| Self::online(e, now)) {
            for d in &e.disks {
                let status = states
                    .get(&d.disk_id)
                    .map_or(DiskStatus::Online, |r| r.status);
                if d.state == DiskState::Online as i32 && status == want {
                    v.push(DiskCandidate {
                        node_id: id.clone(),
                        disk_id: d.disk_id,
                        free_bytes: d.free_bytes,
                        location: e.location.clone(),
                    });
                }
            }
        }
        v
    }

    /// Where each shard of `shards` (node, disk) sits, for placement's per-domain counts
    /// when it replaces one shard of a stripe. A node this master never heard from (gone
    /// since before the master started) counts in the default domain.
    pub fn locate<'a>(
        &self,
        shards: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Vec<DiskCandidate> {
        let nodes = self.nodes.lock().expect("registry lock");
        shards
            .into_iter()
            .map(|(node, disk)| DiskCandidate {
                node_id: node.to_string(),
                disk_id: disk,
                free_bytes: 0,
                location: nodes
                    .get(node)
                    .map(|e| e.location.clone())
                    .unwrap_or_default(),
            })
            .collect()
    }

    /// Every node's failure domain, as last reported.
    pub fn locations(&self) -> BTreeMap<String, Location> {
        let nodes = self.nodes.lock().expect("registry lock");
        nodes
            .iter()
            .map(|(id, e)| (id.clone(), e.location.clone()))
            .collect()
    }

    /// The gRPC address of a node, if it ever registered.
    pub fn addr_of(&self, node_id: &str) -> Option<String> {
        self.nodes
            .lock()
            .expect("registry lock")
            .get(node_id)
            .map(|e| e.grpc_addr.clone())
    }

    /// Is the node online now (heard from within the grace of missed heartbeats)?
    pub fn is_online(&self, node_id: &str) -> bool {
        let now = Instant::now();
        self.nodes
            .lock()
            .expect("registry lock")
            .get(node_id)
            .is_some_and(|e| Self::online(e, now))
    }

    /// Raw capacity figures over online nodes. Failed and offline disks count nowhere;
    /// draining ones count as used space but not as room for new shards.
    pub fn capacity(&self) -> Capacity {
        let now = Instant::now();
        let states = self.state_rows();
        let nodes = self.nodes.lock().expect("registry lock");
        let mut c = Capacity::default();
        for e in nodes.values().filter(|e| Self::online(e, now)) {
            for d in &e.disks {
                let status = states
                    .get(&d.disk_id)
                    .map_or(DiskStatus::Online, |r| r.status);
                if d.state == DiskState::Failed as i32 || status == DiskStatus::Offline {
                    continue;
                }
                c.capacity += d.capacity_bytes;
                c.used += d.used_bytes + d.dead_bytes;
                let takes_shards = matches!(status, DiskStatus::Online | DiskStatus::Suspect);
                if d.state == DiskState::Online as i32 && takes_shards {
                    c.free_writable += d.free_bytes;
                }
            }
        }
        c
    }

    /// What clients ask of the online nodes' disks now, from their last two heartbeats.
    pub fn client_load(&self) -> ClientLoad {
        let now = Instant::now();
        let nodes = self.nodes.lock().expect("registry lock");
        let online = nodes.values().filter(|e| Self::online(e, now));
        online.fold(ClientLoad::default(), |l, e| ClientLoad {
            bytes_per_sec: l.bytes_per_sec + e.client_rate,
            disks: l.disks + e.disks.len(),
        })
    }

    /// Every node's last report with its age (the health pass and `disk list`).
    pub fn reports(&self) -> Vec<NodeReport> {
        let now = Instant::now();
        let nodes = self.nodes.lock().expect("registry lock");
        nodes
            .iter()
            .map(|(id, e)| NodeReport {
                node_id: id.clone(),
                age: now.duration_since(e.seen),
                online: Self::online(e, now),
                disks: e.disks.clone(),
            })
            .collect()
    }

    /// Every node as ClusterStatus shows it.
    pub fn statuses(&self) -> Vec<pb::NodeStatus> {
        let now = Instant::now();
        let nodes = self.nodes.lock().expect("registry lock");
        nodes
            .iter()
            .map(|(id, e)| pb::NodeStatus {
                node_id: id.clone(),
                grpc_addr: e.grpc_addr.clone(),
                http_addr: e.http_addr.clone(),
                online: Self::online(e, now),
                last_heartbeat_ms: e.seen_ms as i64,
                disks: e.disks.clone(),
                zone: e.location.zone.clone(),
                rack: e.location.rack.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(id: u64, state: DiskState, free: u64) -> DiskInfo {
        DiskInfo {
            disk_id: id,
            capacity_bytes: 100,
            used_bytes: 100 - free,
            free_bytes: free,
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn only_online_disks_of_online_nodes_are_writable() {
        let r = Registry::default();
        r.record(&pb::RegisterNodeRequest {
            node_id: "n1".into(),
            grpc_addr: "127.0.0.1:1".into(),
            http_addr: String::new(),
            disks: vec![
                disk(1, DiskState::Online, 50),
                disk(2, DiskState::Readonly, 50),
                disk(3, DiskState::Failed, 50),
            ],
            ..Default::default()
        })
        .unwrap();
        let w = r.writable_disks();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].disk_id, 1);
        assert_eq!(
            r.capacity(),
            Capacity {
                capacity: 200,
                used: 100,
                free_writable: 50
            }
        );
        // Age the node past the offline limit: nothing is writable any more.
        r.nodes.lock().unwrap().get_mut("n1").unwrap().seen =
            Instant::now() - HEARTBEAT_INTERVAL * (OFFLINE_AFTER_MISSED + 1);
        assert!(r.writable_disks().is_empty());
        assert!(!r.statuses()[0].online);
    }

    fn report(node: &str, addr: &str, disks: &[u64]) -> pb::RegisterNodeRequest {
        pb::RegisterNodeRequest {
            node_id: node.into(),
            grpc_addr: addr.into(),
            http_addr: String::new(),
            disks: disks
                .iter()
                .map(|&i| disk(i, DiskState::Online, 50))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_node_cannot_take_an_online_nodes_id_or_disk() {
        let r = Registry::default();
        r.record(&report("node-1", "10.0.0.1:6800", &[1, 2]))
            .unwrap();
        // Its own heartbeat, and a new node with new disks: fine.
        r.record(&report("node-1", "10.0.0.1:6800", &[1, 2]))
            .unwrap();
        r.record(&report("node-5", "10.0.0.5:6800", &[7, 8]))
            .unwrap();

        let e = r
            .record(&report("node-1", "10.0.0.6:6800", &[9]))
            .unwrap_err();
        assert!(matches!(e, RegisterConflict::NodeId { .. }), "{e}");
        assert!(e.to_string().contains("its own [node] id"), "{e}");
        let e = r
            .record(&report("node-6", "10.0.0.6:6800", &[9, 2]))
            .unwrap_err();
        assert_eq!(
            e,
            RegisterConflict::DiskId {
                disk: 2,
                path: String::new(),
                node_id: "node-6".into(),
                other: "node-1".into(),
            }
        );
        assert!(e.to_string().contains("kdss format-disk"), "{e}");
        assert_eq!(r.statuses().len(), 2, "refused reports are not recorded");

        // Once node-1 is offline, its disk may show up elsewhere (a moved disk), and its
        // id at a new address (a moved node).
        r.nodes.lock().unwrap().get_mut("node-1").unwrap().seen =
            Instant::now() - HEARTBEAT_INTERVAL * (OFFLINE_AFTER_MISSED + 1);
        r.record(&report("node-6", "10.0.0.6:6800", &[9, 2]))
            .unwrap();
        r.record(&report("node-1", "10.0.0.7:6800", &[1])).unwrap();
    }

    fn row(disk_id: u64, status: DiskStatus) -> DiskStateRow {
        DiskStateRow {
            disk_id,
            node_id: "n1".into(),
            status,
            reason: "test".into(),
            since_ns: 1,
            by_operator: true,
        }
    }

    #[test]
    fn disk_states_decide_placement_and_capacity() {
        let r = Registry::default();
        r.record(&pb::RegisterNodeRequest {
            node_id: "n1".into(),
            grpc_addr: "127.0.0.1:1".into(),
            http_addr: String::new(),
            disks: (1..=4).map(|i| disk(i, DiskState::Online, 50)).collect(),
            ..Default::default()
        })
        .unwrap();
        r.set_states(vec![
            row(2, DiskStatus::Suspect),
            row(3, DiskStatus::Offline),
            row(4, DiskStatus::Draining),
        ]);
        let ids = |v: Vec<DiskCandidate>| v.iter().map(|d| d.disk_id).collect::<Vec<_>>();
        assert_eq!(ids(r.writable_disks()), vec![1]);
        assert_eq!(ids(r.suspect_disks()), vec![2]);
        assert_eq!(r.disk_status(3), DiskStatus::Offline);
        assert_eq!(r.disk_status(9), DiskStatus::Online);
        // The offline disk counts nowhere; the draining one as used space, not as room.
        assert_eq!(
            r.capacity(),
            Capacity {
                capacity: 300,
                used: 150,
                free_writable: 100
            }
        );
    }
}
