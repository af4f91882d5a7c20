//! RebuildShard: this node makes one shard of a stripe on one of its disks from the
//! stripe's surviving shards on other nodes. The master's repair job calls it to replace a
//! shard on a failed, draining or corrupt disk, and later balance moves shards with it.
//!
//! Copy mode: when a source holds the very shard (drain, balance), that one shard is
//! fetched whole and stored. Decode mode (or when the copy fails): whole shards are
//! fetched from k sources in parallel, a failing source is replaced by the next one, and
//! the wanted shard is reconstructed with the client's codec (kdss-shard) on a blocking
//! thread. Either way the shard is stored through the same group-committed engine path
//! as PutShard and acknowledged only once durable; when fewer than k sources are readable
//! nothing is written.

pub mod rebuilder;

use crate::engine::{Disk, ShardKey, record_buf_of};
use crate::error::StorageError;
use crate::node_shared::{NodeShared, bad_request, shard_key};
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kdss_common::EcPolicy;
use kdss_proto::master::ShardLocation;
use kdss_proto::storage::{RebuildShardReply, RebuildShardRequest, RebuildSource};
use kdss_shard::ShardFault;
use rebuilder::Rebuilder;
use std::sync::Arc;
use std::time::Instant;
use tonic::Status;

/// A request that passed every check, ready to run.
struct Plan {
    key: ShardKey,
    disk: Arc<Disk>,
    k: usize,
    m: usize,
    shard_len: u64,
    sources: Vec<RebuildSource>,
}

/// How the shard was made, for the reply's log line and the metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Copy,
    Decode,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Copy => "copy",
            Mode::Decode => "decode",
        }
    }
}

/// Serves one RebuildShard call, counting it in the node's metrics by outcome.
pub(crate) async fn rebuild_shard(
    node: &NodeShared,
    req: RebuildShardRequest,
) -> Result<RebuildShardReply, Status> {
    let plan = match plan(node, req) {
        Ok(p) => p,
        Err(e) => {
            node.metrics.observe_rebuild("refused", 0, 0);
            return Err(e);
        }
    };
    match run(node, &plan).await {
        Ok((reply, mode)) => {
            let m = &node.metrics;
            m.observe_rebuild(mode.name(), plan.shard_len, reply.bytes_read);
            Ok(reply)
        }
        Err(RunError::TooFew(s, fetched)) => {
            node.metrics.observe_rebuild("too_few_sources", 0, fetched);
            Err(s)
        }
        Err(RunError::Other(s, fetched)) => {
            node.metrics.observe_rebuild("failed", 0, fetched);
            Err(s)
        }
    }
}

/// Checks everything that needs no network: the capability (op WRITE for the key, as
/// PutShard), the disk, the EC shape, the length, the sources.
fn plan(node: &NodeShared, req: RebuildShardRequest) -> Result<Plan, Status> {
    let key = shard_key(req.key)?;
    node.check_write(req.cap.as_ref(), key, req.disk_id, req.shard_len)?;
    let disk = node.disk(req.disk_id)?.clone();
    let (k, m) = (req.data_shards, req.parity_shards);
    EcPolicy::new(k, m).map_err(|e| bad_request(e.to_string()))?;
    let n = k + m;
    if key.shard >= n {
        return Err(bad_request(format!(
            "shard index {} is outside a {k}+{m} stripe",
            key.shard
        )));
    }
    if req.shard_len == 0 {
        return Err(bad_request("shard_len must be positive"));
    }
    let max = disk.geometry().max_shard_len();
    if req.shard_len > max {
        return Err(StorageError::ShardTooLarge {
            disk: disk.id(),
            len: req.shard_len,
            max,
        }
        .to_status());
    }
    let stats = disk.stats();
    if stats.failed {
        return Err(StorageError::DiskFailed { disk: disk.id() }.to_status());
    }
    let need = kdss_format::record_footprint(req.shard_len);
    if stats.free < need {
        return Err(StorageError::DiskFull {
            disk: disk.id(),
            need,
            free: stats.free,
        }
        .to_status());
    }
    let mut seen = vec![false; n as usize];
    for s in &req.sources {
        if s.shard_index >= n {
            return Err(bad_request(format!(
                "source shard index {} is outside a {k}+{m} stripe",
                s.shard_index
            )));
        }
        if std::mem::replace(&mut seen[s.shard_index as usize], true) {
            return Err(bad_request(format!(
                "shard index {} is named by two sources",
                s.shard_index
            )));
        }
        if s.node_addr.is_empty() {
            return Err(bad_request(format!(
                "source of shard {} has no node address",
                s.shard_index
            )));
        }
    }
    let has_copy = seen[key.shard as usize];
    let others = req.sources.len() - has_copy as usize;
    if !has_copy && others < k as usize {
        return Err(bad_request(format!(
            "{others} sources for a {k}+{m} stripe: decoding needs {k}"
        )));
    }
    Ok(Plan {
        key,
        disk,
        k: k as usize,
        m: m as usize,
        shard_len: req.shard_len,
        sources: req.sources,
    })
}

/// A failed run: the status to answer and the source bytes fetched before it failed.
enum RunError {
    TooFew(Status, u64),
    Other(Status, u64),
}

/// Fetches, decodes if needed, and stores the shard.
async fn run(node: &NodeShared, p: &Plan) -> Result<(RebuildShardReply, Mode), RunError> {
    let rb = &node.rebuild;
    let _slot = rb
        .slots
        .acquire()
        .await
        .map_err(|_| RunError::Other(Status::unavailable("rebuild slots closed"), 0))?;
    let t0 = Instant::now();
    let (stripe, shard) = (p.key.stripe, p.key.shard);
    let mut bytes_read = 0u64;
    let mut failed: Vec<(u32, ShardFault)> = Vec::new();

    let mut made: Option<(Mode, Vec<u32>, Vec<Option<Bytes>>)> = None;
    if let Some(src) = p.sources.iter().find(|s| s.shard_index == shard) {
        match fetch(rb, src, stripe, p.shard_len).await {
            Ok(b) => {
                bytes_read += b.len() as u64;
                let mut v = vec![None; p.k + p.m];
                v[shard as usize] = Some(b);
                made = Some((Mode::Copy, vec![shard], v));
            }
            Err(f) => {
                tracing::warn!(stripe, shard, error = %f, "copy source failed; decoding instead");
                failed.push((shard, f));
            }
        }
    }
    let (mode, used, shards) = match made {
        Some(m) => m,
        None => {
            let (used, shards) = fetch_k(rb, p, &mut bytes_read, &mut failed).await;
            if used.len() < p.k {
                let failed_text = failed
                    .iter()
                    .map(|(i, f)| format!("shard {i}: {f}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let e = StorageError::TooFewSources {
                    stripe,
                    shard,
                    readable: used.len(),
                    needed: p.k,
                    failed: if failed_text.is_empty() {
                        "none".into()
                    } else {
                        failed_text
                    },
                };
                tracing::warn!(stripe, shard, error = %e, "rebuild impossible");
                return Err(RunError::TooFew(e.to_status(), bytes_read));
            }
            (Mode::Decode, used, shards)
        }
    };

    let codec = match mode {
        Mode::Copy => None,
        Mode::Decode => Some(
            rb.codecs
                .get(p.k as u32, p.m as u32)
                .map_err(|e| RunError::Other(Status::internal(e.to_string()), bytes_read))?,
        ),
    };
    let len = p.shard_len as usize;
    let (buf, crc) = tokio::task::spawn_blocking(move || {
        let bytes = match codec {
            None => shards
                .into_iter()
                .nth(shard as usize)
                .flatten()
                .unwrap_or_default(),
            Some(codec) => {
                let present = shards.into_iter().map(|s| s.map(|b| b.to_vec())).collect();
                kdss_shard::ec::reconstruct_shard(&codec, present, shard as usize)
                    .map_err(|e| e.to_string())?
            }
        };
        if bytes.len() != len {
            return Err(format!("made {} bytes, expected {len}", bytes.len()));
        }
        Ok((record_buf_of(&bytes), crc32c::crc32c(&bytes)))
    })
    .await
    .map_err(|e| RunError::Other(Status::internal(format!("rebuild task: {e}")), bytes_read))?
    .map_err(|e| {
        RunError::Other(
            Status::internal(format!("rebuilding shard {stripe}/{shard}: {e}")),
            bytes_read,
        )
    })?;
    p.disk
        .put_async(p.key, buf, len, crc)
        .await
        .map_err(|e| RunError::Other(e.to_status(), bytes_read))?;
    let sources_failed: Vec<u32> = failed.iter().map(|(i, _)| *i).collect();
    tracing::info!(
        stripe,
        shard,
        disk = %p.disk.id(),
        mode = mode.name(),
        bytes = p.shard_len,
        bytes_read,
        used = ?used,
        failed = ?sources_failed,
        ms = t0.elapsed().as_millis() as u64,
        "shard rebuilt"
    );
    Ok((
        RebuildShardReply {
            crc32c: crc,
            bytes_read,
            sources_used: used,
            sources_failed,
        },
        mode,
    ))
}

/// Fetches whole shards from the sources other than the wanted shard, k at a time in
/// parallel, starting the next source whenever one fails, until k are in hand or the
/// sources run out. Returns the indices read and the shards by index.
async fn fetch_k(
    rb: &Rebuilder,
    p: &Plan,
    bytes_read: &mut u64,
    failed: &mut Vec<(u32, ShardFault)>,
) -> (Vec<u32>, Vec<Option<Bytes>>) {
    let mut shards: Vec<Option<Bytes>> = vec![None; p.k + p.m];
    let mut used = Vec::with_capacity(p.k);
    let mut queue = p.sources.iter().filter(|s| s.shard_index != p.key.shard);
    let mut inflight = FuturesUnordered::new();
    let start = |s| fetch_indexed(rb, s, p.key.stripe, p.shard_len);
    for s in queue.by_ref().take(p.k) {
        inflight.push(start(s));
    }
    while let Some((idx, r)) = inflight.next().await {
        match r {
            Ok(b) => {
                *bytes_read += b.len() as u64;
                shards[idx as usize] = Some(b);
                used.push(idx);
                if used.len() == p.k {
                    break;
                }
            }
            Err(f) => {
                tracing::warn!(stripe = p.key.stripe, shard = idx, error = %f,
                    "rebuild source failed; trying the next");
                failed.push((idx, f));
                if let Some(s) = queue.next() {
                    inflight.push(start(s));
                }
            }
        }
    }
    (used, shards)
}

/// [`fetch`], tagged with the source's shard index.
async fn fetch_indexed(
    rb: &Rebuilder,
    src: &RebuildSource,
    stripe: u64,
    shard_len: u64,
) -> (u32, Result<Bytes, ShardFault>) {
    (src.shard_index, fetch(rb, src, stripe, shard_len).await)
}

/// Reads one whole source shard within the fetch deadline; a shard of another length than
/// the stripe's is refused as corrupt (the source node has already verified its checksum).
async fn fetch(
    rb: &Rebuilder,
    src: &RebuildSource,
    stripe: u64,
    shard_len: u64,
) -> Result<Bytes, ShardFault> {
    let loc = ShardLocation {
        shard_index: src.shard_index,
        node_id: src.node_id.clone(),
        node_addr: src.node_addr.clone(),
        disk_id: src.disk_id,
        cap: src.cap.clone(),
        disk_status: 0,
    };
    let b = tokio::time::timeout(rb.fetch_timeout, rb.pool.get_range(&loc, stripe, 0, 0))
        .await
        .map_err(|_| ShardFault::Slow)??;
    if b.len() as u64 != shard_len {
        return Err(ShardFault::Corrupt(format!(
            "node {} has {} bytes of shard {}, the stripe's shards are {shard_len}",
            src.node_id,
            b.len(),
            src.shard_index
        )));
    }
    Ok(b)
}
