//! Shard I/O against storage nodes: one lazily connected channel per node address, streaming
//! PutShard with the write capability and the shard's crc32c in the header, and ranged
//! GetShard. Shard bytes travel as `Bytes` slices: no copy on our side before tonic's.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use kdss_proto::master as mpb;
use kdss_proto::storage as spb;
use tonic::transport::Channel;

/// Bytes of shard data per PutShard message (well under the 4 MiB gRPC message default).
const PUT_PIECE: usize = 1 << 20;

/// Why one shard could not be read; decides whether a degraded read can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardFault {
    /// The node does not have it (lost disk, never written).
    Missing(String),
    /// The node found a checksum mismatch or the reply was inconsistent.
    Corrupt(String),
    /// The capability was refused (expired): fresh extents may help.
    Denied(String),
    /// Past the shard deadline.
    Slow,
    /// Node unreachable or another failure.
    Failed(String),
    /// Fewer than k shards of the stripe could be read: the data is unavailable.
    Unrecoverable {
        stripe_id: u64,
        available: usize,
        needed: usize,
    },
}

impl std::fmt::Display for ShardFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShardFault::Missing(s) => write!(f, "missing: {s}"),
            ShardFault::Corrupt(s) => write!(f, "corrupt: {s}"),
            ShardFault::Denied(s) => write!(f, "capability refused: {s}"),
            ShardFault::Slow => f.write_str("past the shard deadline"),
            ShardFault::Failed(s) => write!(f, "failed: {s}"),
            ShardFault::Unrecoverable {
                stripe_id,
                available,
                needed,
            } => {
                write!(
                    f,
                    "stripe {stripe_id}: only {available} of {needed} shards readable"
                )
            }
        }
    }
}

impl ShardFault {
    fn of(s: &tonic::Status) -> ShardFault {
        let msg = format!("{:?}: {}", s.code(), s.message());
        match s.code() {
            tonic::Code::NotFound => ShardFault::Missing(msg),
            tonic::Code::DataLoss => ShardFault::Corrupt(msg),
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => ShardFault::Denied(msg),
            _ => ShardFault::Failed(msg),
        }
    }
}

/// Channels to storage nodes, by address, shared by all readers and writers of a client.
pub struct NodePool {
    channels: Mutex<HashMap<String, Channel>>,
    connect_timeout: Duration,
    internal: bool,
}

impl NodePool {
    /// An empty pool; channels are created on first use.
    pub fn new(connect_timeout: Duration) -> Self {
        NodePool {
            channels: Mutex::new(HashMap::new()),
            connect_timeout,
            internal: false,
        }
    }

    /// A pool for a storage node's own fetches (rebuilds): its reads are marked internal,
    /// so the nodes do not count them as client load, which balance yields to.
    pub fn internal(connect_timeout: Duration) -> Self {
        NodePool {
            internal: true,
            ..Self::new(connect_timeout)
        }
    }

    fn channel(&self, addr: &str) -> Result<Channel, String> {
        let mut map = self.channels.lock().expect("node pool lock");
        if let Some(c) = map.get(addr) {
            return Ok(c.clone());
        }
        let c = crate::channel::lazy_channel(addr, self.connect_timeout)?;
        map.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    fn client(&self, addr: &str) -> Result<spb::storage_client::StorageClient<Channel>, String> {
        Ok(spb::storage_client::StorageClient::new(self.channel(addr)?)
            .max_decoding_message_size(64 << 20)
            .max_encoding_message_size(64 << 20))
    }

    /// Streams one shard to the disk `loc` names; returns once the node acknowledged it
    /// durable. Errors name the node.
    pub async fn put_shard(
        &self,
        loc: &mpb::ShardLocation,
        stripe_id: u64,
        shard: Bytes,
        crc: u32,
    ) -> Result<(), crate::ShardError> {
        let storage_err = |status: tonic::Status| crate::ShardError::Storage {
            node: format!("{} ({})", loc.node_id, loc.node_addr),
            status,
        };
        let mut client = self
            .client(&loc.node_addr)
            .map_err(crate::ShardError::Connect)?;
        let total_len = shard.len() as u64;
        let mut msgs = Vec::with_capacity(shard.len() / PUT_PIECE + 1);
        let mut first = true;
        let mut pos = 0;
        while first || pos < shard.len() {
            let end = (pos + PUT_PIECE).min(shard.len());
            let data = shard.slice(pos..end);
            let msg = if first {
                spb::PutShardRequest {
                    key: Some(spb::ShardKey {
                        stripe_id,
                        shard_index: loc.shard_index,
                    }),
                    disk_id: loc.disk_id,
                    cap: loc.cap.clone(),
                    total_len,
                    crc32c: crc,
                    data,
                }
            } else {
                spb::PutShardRequest {
                    data,
                    ..Default::default()
                }
            };
            msgs.push(msg);
            first = false;
            pos = end;
        }
        client
            .put_shard(futures::stream::iter(msgs))
            .await
            .map_err(storage_err)?;
        Ok(())
    }

    /// Reads `len` bytes at `offset` of a shard (`len` 0 = to its end).
    pub async fn get_range(
        &self,
        loc: &mpb::ShardLocation,
        stripe_id: u64,
        offset: u64,
        len: u64,
    ) -> Result<Bytes, ShardFault> {
        let mut client = self.client(&loc.node_addr).map_err(ShardFault::Failed)?;
        let req = spb::GetShardRequest {
            key: Some(spb::ShardKey {
                stripe_id,
                shard_index: loc.shard_index,
            }),
            disk_id: loc.disk_id,
            cap: loc.cap.clone(),
            offset,
            len,
            internal: self.internal,
        };
        let mut stream = client
            .get_shard(req)
            .await
            .map_err(|s| ShardFault::of(&s))?
            .into_inner();
        let mut parts: Vec<Bytes> = Vec::new();
        while let Some(c) = stream.next().await {
            let c = c.map_err(|s| ShardFault::of(&s))?;
            if !c.data.is_empty() {
                parts.push(c.data);
            }
        }
        let got: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if len != 0 && got != len {
            return Err(ShardFault::Corrupt(format!(
                "node {} returned {got} bytes for a {len}-byte range",
                loc.node_id
            )));
        }
        Ok(match parts.len() {
            0 => Bytes::new(),
            1 => parts.pop().expect("one part"),
            _ => {
                let mut b = BytesMut::with_capacity(got as usize);
                for p in parts {
                    b.extend_from_slice(&p);
                }
                b.freeze()
            }
        })
    }
}
