//! Read-path tests against an in-process storage service that serves shards from memory and
//! injects the faults a real node cannot be made to show on demand: a slow shard, a shard
//! that reports a checksum failure, a missing shard, and a count of GetShard calls (to
//! prove single-flight and caching). The real-cluster tests are in tests/cluster_data_path.rs.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kdss_proto::master as mpb;
use kdss_proto::storage as spb;
use spb::storage_server::{Storage, StorageServer};
use tonic::{Request, Response, Status};

use crate::{Client, ClientConfig, ClientError};

#[derive(Clone, Copy)]
enum Fault {
    Missing,
    Corrupt,
    Slow,
}

#[derive(Default)]
struct MemNode {
    shards: Mutex<HashMap<(u64, u32), Bytes>>,
    faults: Mutex<HashMap<(u64, u32), Fault>>,
    gets: AtomicU64,
}

/// The service handle (the node state is shared with the test).
struct NodeSvc(Arc<MemNode>);

impl std::ops::Deref for NodeSvc {
    type Target = MemNode;
    fn deref(&self) -> &MemNode {
        &self.0
    }
}

type ChunkStream = Pin<Box<dyn futures::Stream<Item = Result<spb::GetShardChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Storage for NodeSvc {
    async fn put_shard(
        &self,
        _r: Request<tonic::Streaming<spb::PutShardRequest>>,
    ) -> Result<Response<spb::PutShardReply>, Status> {
        Err(Status::unimplemented("read-path tests only"))
    }
    type GetShardStream = ChunkStream;
    async fn get_shard(
        &self,
        r: Request<spb::GetShardRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let r = r.into_inner();
        let key = r
            .key
            .map(|k| (k.stripe_id, k.shard_index))
            .unwrap_or_default();
        let fault = self.faults.lock().unwrap().get(&key).copied();
        match fault {
            Some(Fault::Missing) => return Err(Status::not_found("no such shard")),
            Some(Fault::Corrupt) => return Err(Status::data_loss("crc32c mismatch")),
            Some(Fault::Slow) => tokio::time::sleep(Duration::from_secs(5)).await,
            None => {}
        }
        let shard = self.shards.lock().unwrap().get(&key).cloned();
        let shard = shard.ok_or_else(|| Status::not_found("no such shard"))?;
        let end = if r.len == 0 {
            shard.len() as u64
        } else {
            r.offset + r.len
        };
        let data = shard.slice(r.offset as usize..end as usize);
        // Several messages, as a real node streams them.
        let mut msgs = Vec::new();
        let mut pos = 0;
        while pos < data.len() {
            let n = (data.len() - pos).min(100_000);
            msgs.push(Ok(spb::GetShardChunk {
                data: data.slice(pos..pos + n),
                shard_len: shard.len() as u64,
            }));
            pos += n;
        }
        Ok(Response::new(Box::pin(futures::stream::iter(msgs))))
    }
    async fn delete_shard(
        &self,
        _r: Request<spb::DeleteShardRequest>,
    ) -> Result<Response<spb::DeleteShardReply>, Status> {
        Err(Status::unimplemented("read-path tests only"))
    }
    async fn stat_shard(
        &self,
        _r: Request<spb::StatShardRequest>,
    ) -> Result<Response<spb::StatShardReply>, Status> {
        Err(Status::unimplemented("read-path tests only"))
    }
    async fn node_info(
        &self,
        _r: Request<spb::NodeInfoRequest>,
    ) -> Result<Response<spb::NodeInfoReply>, Status> {
        Err(Status::unimplemented("read-path tests only"))
    }
    type ListShardsStream =
        Pin<Box<dyn futures::Stream<Item = Result<spb::ListShardsChunk, Status>> + Send>>;
    async fn list_shards(
        &self,
        _r: Request<spb::ListShardsRequest>,
    ) -> Result<Response<Self::ListShardsStream>, Status> {
        Err(Status::unimplemented("read-path tests only"))
    }
    async fn rebuild_shard(
        &self,
        _r: Request<spb::RebuildShardRequest>,
    ) -> Result<Response<spb::RebuildShardReply>, Status> {
        Err(Status::unimplemented("read-path tests only"))
    }
}

struct Fixture {
    node: Arc<MemNode>,
    client: Client,
    data: Vec<u8>,
    extents: Vec<mpb::Extent>,
    stripes: Vec<mpb::StripeInfo>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Two 5+2 stripes of `chunk` bytes on one in-memory node, mapped as a file with a hole of
/// 1000 bytes between them. `data` is the file content (hole = zeros).
async fn fixture(chunk: usize, cache_bytes: u64) -> Fixture {
    let node = Arc::new(MemNode::default());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let svc = StorageServer::new(NodeSvc(node.clone()));
    let server = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(l))
            .await;
    });
    let codec = crate::ec::Codecs::default().get(5, 2).unwrap();
    let mut data = Vec::new();
    let mut extents = Vec::new();
    let mut stripes = Vec::new();
    for sid in [11u64, 12] {
        let content: Vec<u8> = (0..chunk)
            .map(|i| (i as u64 * 31 + sid * 7) as u8 ^ (i >> 9) as u8)
            .collect();
        let sl = crate::layout::shard_len_for(chunk as u64, 5);
        let enc = crate::ec::encode(&codec, &Bytes::from(content.clone()), sl as usize).unwrap();
        let mut shards = Vec::new();
        for (i, s) in enc.shards.into_iter().enumerate() {
            node.shards.lock().unwrap().insert((sid, i as u32), s);
            shards.push(mpb::ShardLocation {
                shard_index: i as u32,
                node_id: format!("mem-{i}"),
                node_addr: addr.clone(),
                disk_id: 1,
                cap: None,
                disk_status: 0,
            });
        }
        if sid == 12 {
            data.extend(std::iter::repeat_n(0u8, 1000));
        }
        extents.push(mpb::Extent {
            file_offset: data.len() as u64,
            len: chunk as u64,
            stripe_id: sid,
            stripe_offset: 0,
        });
        data.extend_from_slice(&content);
        stripes.push(mpb::StripeInfo {
            stripe_id: sid,
            k: 5,
            m: 2,
            shard_len: sl,
            data_len: chunk as u64,
            shards,
        });
    }
    // The master is never contacted by these reads: a closed port stands in for it.
    let cfg = ClientConfig {
        masters: vec!["127.0.0.1:1".into()],
        chunk_size: chunk,
        cache_bytes,
        shard_deadline: Duration::from_millis(300),
        rpc_timeout: Duration::from_secs(1),
        ..ClientConfig::default()
    };
    let client = Client::connect_lazy(cfg).unwrap();
    Fixture {
        node,
        client,
        data,
        extents,
        stripes,
        server,
    }
}

impl Fixture {
    fn reader(&self) -> crate::FileReader {
        self.client.reader_from_extents(
            "b",
            self.data.len() as u64,
            self.extents.clone(),
            self.stripes.clone(),
            Bytes::new(),
        )
    }
    fn fault(&self, sid: u64, shard: u32, f: Fault) {
        self.node.faults.lock().unwrap().insert((sid, shard), f);
    }
    async fn check(&self, r: &crate::FileReader, off: u64, len: u64) {
        let got = r.read_at(off, len).await.expect("read");
        let s = off as usize;
        let e = ((off + len) as usize).min(self.data.len());
        assert!(got[..] == self.data[s..e], "range {off}+{len} differs");
    }
}

#[tokio::test]
async fn ranges_holes_and_tail_read_exactly() {
    let f = fixture(1 << 20, 64 << 20).await;
    let r = f.reader();
    let n = f.data.len() as u64;
    for (off, len) in [
        (0, 1),
        (0, 4096),
        (209_000, 5000),
        ((1 << 20) - 10, 1020),
        (0, n),
        (n - 5, 100),
    ] {
        f.check(&r, off, len).await;
    }
    assert!(r.read_at(n, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn missing_and_corrupt_shards_are_read_around() {
    let f = fixture(1 << 20, 64 << 20).await;
    f.fault(11, 0, Fault::Missing);
    f.fault(11, 3, Fault::Corrupt);
    f.fault(12, 4, Fault::Corrupt);
    f.fault(12, 6, Fault::Missing);
    let r = f.reader();
    f.check(&r, 0, f.data.len() as u64).await;
    f.client.clear_cache();
    f.check(&r, 100, 4096).await;
}

#[tokio::test]
async fn a_slow_shard_is_read_around_within_the_deadline() {
    let f = fixture(1 << 20, 64 << 20).await;
    f.fault(11, 1, Fault::Slow);
    let r = f.reader();
    let t = Instant::now();
    f.check(&r, 209_715, 300_000).await;
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn more_than_m_lost_is_unrecoverable_not_wrong_data() {
    let f = fixture(1 << 20, 64 << 20).await;
    for s in [0, 5, 6] {
        f.fault(11, s, Fault::Missing);
    }
    let r = f.reader();
    match r.read_at(0, 100).await {
        Err(ClientError::Unrecoverable {
            stripe_id: 11,
            available,
            needed: 5,
        }) => {
            assert!(available < 5)
        }
        other => panic!("expected Unrecoverable, got {other:?}"),
    }
    // The other stripe is still fine.
    f.check(&r, (1 << 20) + 1000, 5000).await;
}

#[tokio::test]
async fn concurrent_readers_share_one_fetch_and_the_cache_serves_repeats() {
    let f = fixture(1 << 20, 64 << 20).await;
    let r = f.reader();
    // 10 KiB inside data shard 0 of stripe 11: one block fetch however many readers.
    let reads = (0..8).map(|_| {
        let r = r.clone();
        async move { r.read_at(1000, 10_000).await }
    });
    for got in futures::future::join_all(reads).await {
        assert!(got.unwrap()[..] == f.data[1000..11_000]);
    }
    assert_eq!(f.node.gets.load(Ordering::SeqCst), 1);
    f.check(&r, 2000, 100).await;
    assert_eq!(
        f.node.gets.load(Ordering::SeqCst),
        1,
        "a cached block was fetched again"
    );
    assert!(f.client.cache_stats().hits > 0);
}

#[tokio::test]
async fn simulated_loss_reconstructs_from_parity() {
    let f = fixture(300_000, 0).await;
    let r = f.reader().with_simulated_loss(&[0, 2]);
    f.check(&r, 0, f.data.len() as u64).await;
    let r = f.reader().with_simulated_loss(&[0, 1, 2]);
    assert!(matches!(
        r.read_at(0, 10).await,
        Err(ClientError::Unrecoverable { .. })
    ));
}

#[tokio::test]
async fn stream_yields_the_range_in_order() {
    use futures::StreamExt;
    let f = fixture(1 << 20, 8 << 20).await;
    let mut got = Vec::new();
    let mut st = Box::pin(f.reader().stream(77, 1_500_000));
    while let Some(b) = st.next().await {
        got.extend_from_slice(&b.unwrap());
    }
    assert!(got[..] == f.data[77..1_500_077]);
}
