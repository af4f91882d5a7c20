//! The shard gRPC service (`kdss.storage.v1.Storage`). Every shard call verifies its
//! capability with the cluster secret before touching a disk (invariant 6); puts stream in
//! and are acknowledged only once durable; gets stream out in chunks of a verified read.

use crate::engine::{ShardKey, data_offset, record_buf};
use crate::error::StorageError;
use crate::node_shared::{NodeShared, bad_request, shard_key};
use futures::Stream;
use kdss_common::rpc_error::{errno, status};
use kdss_proto::storage::storage_server::Storage;
use kdss_proto::storage::{
    DeleteShardReply, DeleteShardRequest, GetShardChunk, GetShardRequest, ListShardsChunk,
    ListShardsRequest, ListedShard, NodeInfoReply, NodeInfoRequest, PutShardReply, PutShardRequest,
    ShardOp, StatShardReply, StatShardRequest,
};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Code, Request, Response, Status, Streaming};

/// Size of the chunks a get streams back.
pub const GET_CHUNK: usize = 1 << 20;
/// Shards per message of an inventory stream (about 20 bytes each on the wire).
const LIST_CHUNK: usize = 4096;

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
        let total = first.total_len;
        self.node
            .check_write(first.cap.as_ref(), key, first.disk_id, total)?;
        let disk = self.node.disk(first.disk_id)?.clone();
        // A capability is for one write: a shard already stored (written, perhaps committed
        // and shared by copies in other buckets) is never overwritten through PutShard.
        if disk.stat(key).is_some() {
            return Err(status(
                Code::AlreadyExists,
                errno::EEXIST,
                "ShardExists",
                format!(
                    "disk {} already holds shard {} of stripe {}; shards are written once",
                    disk.id(),
                    key.shard,
                    key.stripe
                ),
            ));
        }
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
        // Wait for room in the disk's write queue: a slow disk makes its senders wait here
        // rather than its queue grow. Not before the data is read: streams waiting here
        // with unread data would hold the connection's HTTP/2 window and starve the
        // admitted streams of theirs (a deadlock). What waits here is bounded by the
        // gRPC concurrency limit times the shard size.
        let admitted = disk.admit(total as u64).await;
        let placed = disk
            .put_admitted(Some(admitted), key, buf, total, crc)
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
        self.node
            .check(req.cap.as_ref(), key, req.disk_id, &[ShardOp::Read])?;
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
            self.node
                .check(req.cap.as_ref(), key, req.disk_id, &[ShardOp::Delete])?;
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
                req.disk_id,
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
        self.node
            .check(req.cap.as_ref(), key, req.disk_id, &[ShardOp::List])?;
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
