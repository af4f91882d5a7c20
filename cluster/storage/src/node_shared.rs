//! What the shard service, the rebuilds, the heartbeat and the HTTP endpoint of a node
//! share: its open disks, the capability key, the metrics and the rebuild slots, and the
//! small request checks every handler applies.

use crate::config::RebuildSection;
use crate::engine::{Disk, ShardKey};
use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::rebuild::rebuilder::Rebuilder;
use kdss_common::rpc_error::{errno, status};
use kdss_common::{CapError, CapabilityKey, DiskId, ShardTarget};
use kdss_proto::storage::{Capability, DiskInfo, DiskState, ShardOp};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::{Code, Status};

/// Corrupt shards one DiskInfo names at most (the rest follow once these are repaired).
const MAX_CORRUPT_REPORTED: usize = 1024;
/// What the service, the heartbeat and the HTTP endpoint share.
#[derive(Debug)]
pub struct NodeShared {
    pub node_id: String,
    pub disks: Vec<Arc<Disk>>,
    by_id: HashMap<DiskId, Arc<Disk>>,
    key: CapabilityKey,
    pub metrics: Metrics,
    /// Slots, channels and codecs of RebuildShard.
    pub(crate) rebuild: Rebuilder,
    /// Bytes clients read and wrote per disk since start; heartbeats carry them so the
    /// master can tell busy clients (which balance yields to) from its own traffic.
    client_bytes: HashMap<DiskId, AtomicU64>,
}

impl NodeShared {
    /// Bundles the open disks of a node with the cluster secret and the rebuild limits.
    pub fn new(
        node_id: String,
        disks: Vec<Arc<Disk>>,
        cluster_secret: &str,
        rebuild: &RebuildSection,
    ) -> Self {
        let by_id = disks.iter().map(|d| (d.id(), d.clone())).collect();
        let metrics = Metrics::new(disks.clone());
        let client_bytes = disks.iter().map(|d| (d.id(), AtomicU64::new(0))).collect();
        NodeShared {
            client_bytes,
            node_id,
            disks,
            by_id,
            key: CapabilityKey::new(cluster_secret),
            metrics,
            rebuild: Rebuilder::new(rebuild),
        }
    }

    pub(crate) fn disk(&self, id: u64) -> Result<&Arc<Disk>, Status> {
        self.by_id
            .get(&DiskId(id))
            .ok_or_else(|| StorageError::NoSuchDisk(DiskId(id)).to_status())
    }

    /// Refuses unless `cap` allows one of `ops` on `key` of disk `disk_id` (PermissionDenied,
    /// code CapabilityRefused); called before the disk is touched.
    pub(crate) fn check(
        &self,
        cap: Option<&Capability>,
        key: ShardKey,
        disk_id: u64,
        ops: &[ShardOp],
    ) -> Result<(), Status> {
        let now = kdss_common::time::now_ms();
        let target = target(key, disk_id);
        let mut last = None;
        for op in ops {
            match self.key.verify(cap, target, *op, now) {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(refused(last.expect("at least one op")))
    }

    /// Refuses unless `cap` allows writing exactly `total_len` bytes as `key` on disk
    /// `disk_id`.
    pub(crate) fn check_write(
        &self,
        cap: Option<&Capability>,
        key: ShardKey,
        disk_id: u64,
        total_len: u64,
    ) -> Result<(), Status> {
        let now = kdss_common::time::now_ms();
        self.key
            .verify_write(cap, target(key, disk_id), total_len, now)
            .map_err(refused)
    }

    /// The heartbeat's view of every disk.
    pub fn disk_infos(&self) -> Vec<DiskInfo> {
        self.disks
            .iter()
            .map(|d| disk_info(d, self.client_bytes[&d.id()].load(Ordering::Relaxed)))
            .collect()
    }

    /// Counts `bytes` of client traffic on `disk`.
    pub(crate) fn count_client(&self, disk: DiskId, bytes: u64) {
        if let Some(c) = self.client_bytes.get(&disk) {
            c.fetch_add(bytes, Ordering::Relaxed);
        }
    }
}

/// One disk as the wire describes it, with the client bytes counted on it.
pub fn disk_info(d: &Disk, client_bytes: u64) -> DiskInfo {
    let s = d.stats();
    let (corrupt, corrupt_shards_more) = d.corrupt_shards(MAX_CORRUPT_REPORTED);
    let state = if s.failed {
        DiskState::Failed
    } else if s.readonly {
        DiskState::Readonly
    } else {
        DiskState::Online
    };
    DiskInfo {
        disk_id: d.id().0,
        path: d.path().display().to_string(),
        capacity_bytes: s.capacity,
        used_bytes: s.used,
        dead_bytes: s.dead,
        free_bytes: s.free,
        state: state as i32,
        io_errors: s.io_errors,
        checksum_errors: s.checksum_errors,
        records: s.records,
        health: Some(health_report(d.device())),
        corrupt_shards: corrupt
            .into_iter()
            .map(|k| kdss_proto::storage::ShardKey {
                stripe_id: k.stripe,
                shard_index: k.shard,
            })
            .collect(),
        corrupt_shards_more,
        client_bytes,
    }
}

/// What the master needs to judge a disk: latency over the recent window and S.M.A.R.T.
fn health_report(dev: &crate::device::Device) -> kdss_proto::storage::DiskHealthReport {
    use crate::device::latency::IoKind;
    let lat = dev.latency();
    let (r, w) = (
        lat.percentiles(IoKind::Read),
        lat.percentiles(IoKind::Write),
    );
    let smart = dev.smart();
    kdss_proto::storage::DiskHealthReport {
        window_ms: lat.window().as_millis() as u64,
        read_p50_us: r.p50_us,
        read_p99_us: r.p99_us,
        read_samples: r.samples,
        write_p50_us: w.p50_us,
        write_p99_us: w.p99_us,
        write_samples: w.samples,
        smart_status: smart.text,
        smart_failing: smart.failing,
    }
}

fn target(key: ShardKey, disk_id: u64) -> ShardTarget {
    ShardTarget {
        stripe_id: key.stripe,
        shard_index: key.shard,
        disk_id,
    }
}

fn refused(e: CapError) -> Status {
    status(
        Code::PermissionDenied,
        errno::EACCES,
        "CapabilityRefused",
        e.to_string(),
    )
}

pub(crate) fn shard_key(k: Option<kdss_proto::storage::ShardKey>) -> Result<ShardKey, Status> {
    let k = k.ok_or_else(|| {
        status(
            Code::InvalidArgument,
            errno::EINVAL,
            "InvalidArgument",
            "missing shard key",
        )
    })?;
    Ok(ShardKey {
        stripe: k.stripe_id,
        shard: k.shard_index,
    })
}

pub(crate) fn bad_request(msg: impl Into<String>) -> Status {
    status(Code::InvalidArgument, errno::EINVAL, "InvalidArgument", msg)
}
