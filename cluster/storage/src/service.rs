//! The shard gRPC service (`kdss.storage.v1.Storage`). Every shard call verifies its
//! capability with the cluster secret before touching a disk (invariant 6); puts stream in
//! and are acknowledged only once durable; gets stream out in chunks of a verified read.

use crate::config::RebuildSection;
use crate::engine::{Disk, ShardKey, data_offset, record_buf};
use crate::error::StorageError;
use crate::metrics::Metrics;
use crate::rebuild::Rebuilder;
use futures::Stream;
use kdss_common::rpc_error::{errno, status};
use kdss_common::{CapabilityKey, DiskId};
use kdss_proto::storage::storage_server::Storage;
use kdss_proto::storage::{
    Capability, DeleteShardReply, DeleteShardRequest, DiskInfo, DiskState, GetShardChunk,
    GetShardRequest, ListShardsChunk, ListShardsRequest, ListedShard, NodeInfoReply,
    NodeInfoRequest, PutShardReply, PutShardRequest, ShardOp, StatShardReply, StatShardRequest,
};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tonic::{Code, Request, Response, Status, Streaming};

/// Size of the chunks a get streams back.
pub const GET_CHUNK: usize = 1 << 20;
/// Corrupt shards one DiskInfo names at most (the rest follow once these are repaired).
const MAX_CORRUPT_REPORTED: usize = 1024;
/// Shards per message of an inventory stream (about 20 bytes each on the wire).
const LIST_CHUNK: usize = 4096;

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

    pub(crate) fn check(
        &self,
        cap: Option<&Capability>,
        key: ShardKey,
        ops: &[ShardOp],
    ) -> Result<(), Status> {
        let now = kdss_common::time::now_ms();
        let mut last = None;
        for op in ops {
            match self.key.verify(cap, key.stripe, key.shard, *op, now) {
                Ok(()) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        let e = last.expect("at least one op");
        Err(status(
            Code::PermissionDenied,
            errno::EACCES,
            "CapabilityRefused",
            e.to_string(),
        ))
    }

    /// The heartbeat's view of every disk.
    pub fn disk_infos(&self) -> Vec<DiskInfo> {
        self.disks
            .iter()
            .map(|d| disk_info(d, self.client_bytes[&d.id()].load(Ordering::Relaxed)))
            .collect()
    }

    /// Counts `bytes` of client traffic on `disk`.
    fn count_client(&self, disk: DiskId, bytes: u64) {
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

/// The gRPC service over a node's disks.
#[derive(Clone, Debug)]
pub struct StorageService {
    node: Arc<NodeShared>,
}

impl StorageService {
    /// A service over `node`.
    pub fn new(node: Arc<NodeShared>) -> Self {
        StorageService { node }
    }

    fn done<T>(&self, op: &str, t0: Instant, r: Result<T, Status>) -> Result<T, Status> {
        self.node
            .metrics
            .observe(op, r.is_ok(), t0.elapsed().as_secs_f64());
        r
    }

    async fn put(&self, req: Request<Streaming<PutShardRequest>>) -> Result<PutShardReply, Status> {
        let mut stream = req.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| bad_request("empty put stream"))?;
        let key = shard_key(first.key)?;
        self.node
            .check(first.cap.as_ref(), key, &[ShardOp::Write])?;
        let disk = self.node.disk(first.disk_id)?.clone();
        let total = first.total_len;
        let max = disk.geometry().max_shard_len();
        if total > max {
            return Err(StorageError::ShardTooLarge {
                disk: disk.id(),
                len: total,
                max,
            }
            .to_status());
        }
        let total = total as usize;
        let mut buf = record_buf(total);
        let at = data_offset(total);
        let mut filled = 0usize;
        let mut crc = 0u32;
        let mut absorb = |data: &[u8]| -> Result<(), Status> {
            if filled + data.len() > total {
                return Err(bad_request(format!("more data than total_len {total}")));
            }
            buf.as_mut_slice()[at + filled..at + filled + data.len()].copy_from_slice(data);
            crc = crc32c::crc32c_append(crc, data);
            filled += data.len();
            Ok(())
        };
        absorb(&first.data)?;
        while let Some(m) = stream.message().await? {
            absorb(&m.data)?;
        }
        if filled != total {
            return Err(bad_request(format!(
                "stream ended after {filled} of {total} bytes"
            )));
        }
        if crc != first.crc32c {
            return Err(status(
                Code::DataLoss,
                errno::EIO,
                "ChecksumMismatch",
                format!(
                    "shard crc32c {crc:#010x} does not match the declared {:#010x}",
                    first.crc32c
                ),
            ));
        }
        let placed = disk
            .put_async(key, buf, total, crc)
            .await
            .map_err(|e| e.to_status())?;
        self.node.count_client(disk.id(), total as u64);
        Ok(PutShardReply {
            disk_id: disk.id().0,
            offset: placed.offset,
        })
    }

    async fn get(
        &self,
        req: GetShardRequest,
    ) -> Result<Vec<Result<GetShardChunk, Status>>, Status> {
        let key = shard_key(req.key)?;
        self.node.check(req.cap.as_ref(), key, &[ShardOp::Read])?;
        let disk = self.node.disk(req.disk_id)?.clone();
        let disk_id = disk.id();
        let (offset, len) = (req.offset, req.len);
        let read = tokio::task::spawn_blocking(move || disk.read(key, offset, len))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| e.to_status())?;
        let shard_len = read.shard_len;
        let bytes = read.into_bytes();
        if !req.internal {
            self.node.count_client(disk_id, bytes.len() as u64);
        }
        let mut chunks = Vec::with_capacity(bytes.len() / GET_CHUNK + 1);
        let mut at = 0;
        loop {
            let end = (at + GET_CHUNK).min(bytes.len());
            chunks.push(Ok(GetShardChunk {
                data: bytes.slice(at..end),
                shard_len: if at == 0 { shard_len } else { 0 },
            }));
            at = end;
            if at >= bytes.len() {
                break;
            }
        }
        Ok(chunks)
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<GetShardChunk, Status>> + Send>>;
type ListStream = Pin<Box<dyn Stream<Item = Result<ListShardsChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Storage for StorageService {
    #[tracing::instrument(skip_all)]
    async fn put_shard(
        &self,
        req: Request<Streaming<PutShardRequest>>,
    ) -> Result<Response<PutShardReply>, Status> {
        let t0 = Instant::now();
        let r = self.put(req).await;
        self.done("put", t0, r).map(Response::new)
    }

    type GetShardStream = ChunkStream;

    #[tracing::instrument(skip_all)]
    async fn get_shard(
        &self,
        req: Request<GetShardRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let t0 = Instant::now();
        let r = self.get(req.into_inner()).await;
        let chunks = self.done("get", t0, r)?;
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    #[tracing::instrument(skip_all)]
    async fn delete_shard(
        &self,
        req: Request<DeleteShardRequest>,
    ) -> Result<Response<DeleteShardReply>, Status> {
        let t0 = Instant::now();
        let req = req.into_inner();
        let r = async {
            let key = shard_key(req.key)?;
            self.node.check(req.cap.as_ref(), key, &[ShardOp::Delete])?;
            let disk = self.node.disk(req.disk_id)?;
            let existed = disk.delete_async(key).await.map_err(|e| e.to_status())?;
            Ok(DeleteShardReply { existed })
        }
        .await;
        self.done("delete", t0, r).map(Response::new)
    }

    #[tracing::instrument(skip_all)]
    async fn stat_shard(
        &self,
        req: Request<StatShardRequest>,
    ) -> Result<Response<StatShardReply>, Status> {
        let t0 = Instant::now();
        let req = req.into_inner();
        let r = (|| {
            let key = shard_key(req.key)?;
            self.node.check(
                req.cap.as_ref(),
                key,
                &[ShardOp::Read, ShardOp::Write, ShardOp::Delete],
            )?;
            let disk = self.node.disk(req.disk_id)?;
            Ok(match disk.stat(key) {
                Some((len, crc32c)) => StatShardReply {
                    exists: true,
                    len,
                    crc32c,
                },
                None => StatShardReply {
                    exists: false,
                    len: 0,
                    crc32c: 0,
                },
            })
        })();
        self.done("stat", t0, r).map(Response::new)
    }

    type ListShardsStream = ListStream;

    #[tracing::instrument(skip_all)]
    async fn list_shards(
        &self,
        req: Request<ListShardsRequest>,
    ) -> Result<Response<ListStream>, Status> {
        let req = req.into_inner();
        let key = ShardKey {
            stripe: 0,
            shard: 0,
        };
        self.node.check(req.cap.as_ref(), key, &[ShardOp::List])?;
        let disk = self.node.disk(req.disk_id)?.clone();
        let shards = tokio::task::spawn_blocking(move || disk.live_shards())
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        let chunks: Vec<Result<ListShardsChunk, Status>> = shards
            .chunks(LIST_CHUNK)
            .map(|c| {
                Ok(ListShardsChunk {
                    shards: c
                        .iter()
                        .map(|(k, len)| ListedShard {
                            stripe_id: k.stripe,
                            shard_index: k.shard,
                            len: *len,
                        })
                        .collect(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    #[tracing::instrument(skip_all)]
    async fn rebuild_shard(
        &self,
        req: Request<kdss_proto::storage::RebuildShardRequest>,
    ) -> Result<Response<kdss_proto::storage::RebuildShardReply>, Status> {
        let t0 = Instant::now();
        let r = crate::rebuild::rebuild_shard(&self.node, req.into_inner()).await;
        self.done("rebuild", t0, r).map(Response::new)
    }

    async fn node_info(
        &self,
        _req: Request<NodeInfoRequest>,
    ) -> Result<Response<NodeInfoReply>, Status> {
        Ok(Response::new(NodeInfoReply {
            node_id: self.node.node_id.clone(),
            disks: self.node.disk_infos(),
        }))
    }
}
