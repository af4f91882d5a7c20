//! RebuildShard between real storage nodes (in-process servers on loopback, files as disks):
//! an EC 5+2 stripe is encoded with the client's codec and written to three nodes; a fourth
//! node rebuilds a lost data or parity shard by decoding, or copies a shard from its holder.
//! Unreadable, corrupt and missing sources are skipped and reported; too few readable
//! sources or a refused capability leave the target disk without the shard. Corrupt
//! records show up in `NodeInfo` until the shard is deleted.

mod common;

use bytes::Bytes;
use common::CLUSTER;
use kdss_common::{CapabilityKey, ShardTarget};
use kdss_proto::master::ShardLocation;
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{
    DeleteShardRequest, NodeInfoRequest, RebuildShardReply, RebuildShardRequest, RebuildSource,
    ShardKey, ShardOp, StatShardRequest,
};
use kdss_shard::ec::{Codecs, EncodedStripe, encode};
use kdss_shard::{NodePool, ShardFault};
use kdss_storage::StorageConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

const SECRET: &str = "rebuild-cluster-secret-0123456789abcdef";
const K: u32 = 5;
const M: u32 = 2;

/// One storage node serving in this process until dropped.
struct Node {
    id: String,
    addr: String,
    http: std::net::SocketAddr,
    disks: Vec<(u64, PathBuf)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), kdss_storage::StorageError>>>,
}

impl Node {
    async fn start(dir: &Path, id: &str, disks: usize) -> Node {
        let mut text = format!(
            "[node]\nid = \"{id}\"\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             [cluster]\nid = \"{CLUSTER}\"\nsecret = \"{SECRET}\"\n\
             [compactor]\nenabled = false\n[scrub]\nenabled = false\n\
             [rebuild]\nfetch_timeout_ms = 5000\n"
        );
        let mut ds = Vec::new();
        for i in 0..disks {
            let p = dir.join(format!("{id}-d{i}.img"));
            let disk_id = kdss_storage::format_disk(&p, 32 << 20, CLUSTER).unwrap().0;
            text.push_str(&format!("[[disk]]\npath = \"{}\"\n", p.display()));
            ds.push((disk_id, p));
        }
        let cfg = StorageConfig::parse(Path::new("storage.toml"), &text).unwrap();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = grpc.local_addr().unwrap().to_string();
        let http_addr = http.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(kdss_storage::serve(cfg, grpc, http, async move {
            let _ = stopped.await;
        }));
        Node {
            id: id.to_string(),
            addr,
            http: http_addr,
            disks: ds,
            stop: Some(stop),
            task: Some(task),
        }
    }

    async fn client(&self) -> StorageClient<Channel> {
        loop {
            match StorageClient::connect(format!("http://{}", self.addr)).await {
                Ok(c) => {
                    return c
                        .max_decoding_message_size(64 << 20)
                        .max_encoding_message_size(64 << 20);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// The node's `/metrics` text.
    async fn metrics(&self) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut sock = tokio::net::TcpStream::connect(self.http).await.unwrap();
        sock.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        sock.read_to_string(&mut body).await.unwrap();
        body
    }

    /// Stops the server and waits for its disks to close.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

fn cap(
    stripe: u64,
    shard: u32,
    disk_id: u64,
    op: ShardOp,
    len: u64,
) -> Option<kdss_proto::storage::Capability> {
    let far = kdss_common::time::now_ms() + 600_000;
    let t = ShardTarget {
        stripe_id: stripe,
        shard_index: shard,
        disk_id,
    };
    Some(CapabilityKey::new(SECRET).sign(t, op, len, far))
}

fn skey(stripe: u64, shard: u32) -> Option<ShardKey> {
    Some(ShardKey {
        stripe_id: stripe,
        shard_index: shard,
    })
}

/// Three source nodes of three disks each and a target node of two disks; one stripe
/// written with shard i on node i % 3, disk i / 3.
struct Setup {
    _dir: tempfile::TempDir,
    sources: Vec<Node>,
    target: Node,
    pool: NodePool,
    stripe: u64,
    enc: EncodedStripe,
    shard_len: u64,
}

impl Setup {
    async fn new(stripe: u64) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let mut sources = Vec::new();
        for i in 0..3 {
            sources.push(Node::start(dir.path(), &format!("node-{i}"), 3).await);
        }
        let target = Node::start(dir.path(), "node-t", 2).await;
        for n in sources.iter().chain([&target]) {
            n.client().await;
        }
        let codec = Codecs::default().get(K, M).unwrap();
        let len = 5 * 120_000 + 321;
        let chunk: Vec<u8> = (0..len)
            .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let shard_len = (len as u64).div_ceil(K as u64);
        let enc = encode(&codec, &Bytes::from(chunk), shard_len as usize).unwrap();
        let s = Setup {
            _dir: dir,
            sources,
            target,
            pool: NodePool::new(Duration::from_secs(5)),
            stripe,
            enc,
            shard_len,
        };
        for i in 0..K + M {
            let loc = s.loc(i, ShardOp::Write);
            s.pool
                .put_shard(
                    &loc,
                    stripe,
                    s.enc.shards[i as usize].clone(),
                    s.enc.crcs[i as usize],
                )
                .await
                .unwrap();
        }
        s
    }

    fn holder(&self, shard: u32) -> (&Node, u64, &Path) {
        let n = &self.sources[shard as usize % 3];
        let (id, p) = &n.disks[shard as usize / 3];
        (n, *id, p)
    }

    fn loc(&self, shard: u32, op: ShardOp) -> ShardLocation {
        let (n, disk, _) = self.holder(shard);
        ShardLocation {
            shard_index: shard,
            node_id: n.id.clone(),
            node_addr: n.addr.clone(),
            disk_id: disk,
            cap: cap(self.stripe, shard, disk, op, self.shard_len),
            disk_status: 0,
        }
    }

    fn source(&self, shard: u32) -> RebuildSource {
        let (n, disk, _) = self.holder(shard);
        RebuildSource {
            shard_index: shard,
            node_id: n.id.clone(),
            node_addr: n.addr.clone(),
            disk_id: disk,
            cap: cap(self.stripe, shard, disk, ShardOp::Read, self.shard_len),
        }
    }

    fn request(&self, shard: u32, target_disk: usize, sources: &[u32]) -> RebuildShardRequest {
        RebuildShardRequest {
            key: skey(self.stripe, shard),
            disk_id: self.target.disks[target_disk].0,
            cap: cap(
                self.stripe,
                shard,
                self.target.disks[target_disk].0,
                ShardOp::Write,
                self.shard_len,
            ),
            data_shards: K,
            parity_shards: M,
            shard_len: self.shard_len,
            sources: sources.iter().map(|i| self.source(*i)).collect(),
        }
    }

    async fn rebuild(&self, req: RebuildShardRequest) -> Result<RebuildShardReply, tonic::Status> {
        self.target
            .client()
            .await
            .rebuild_shard(req)
            .await
            .map(|r| r.into_inner())
    }

    async fn delete(&self, shard: u32) {
        let (n, disk, _) = self.holder(shard);
        let existed = n
            .client()
            .await
            .delete_shard(DeleteShardRequest {
                key: skey(self.stripe, shard),
                disk_id: disk,
                cap: cap(self.stripe, shard, disk, ShardOp::Delete, 0),
            })
            .await
            .unwrap()
            .into_inner()
            .existed;
        assert!(existed);
    }

    /// Flips one byte inside the data of `shard`'s record on its holder's device file.
    fn corrupt(&self, shard: u32) {
        let (_, _, path) = self.holder(shard);
        let image = std::fs::read(path).unwrap();
        let needle = &self.enc.shards[shard as usize][5000..5064];
        let at = image
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("shard bytes on the device") as u64;
        let mut b = common::peek(path, at + 10, 1);
        b[0] ^= 0xff;
        common::poke(path, at + 10, &b);
    }

    /// The shard as the target node now serves it.
    async fn read_target(&self, shard: u32, target_disk: usize) -> Result<Bytes, ShardFault> {
        let loc = ShardLocation {
            shard_index: shard,
            node_id: self.target.id.clone(),
            node_addr: self.target.addr.clone(),
            disk_id: self.target.disks[target_disk].0,
            cap: cap(
                self.stripe,
                shard,
                self.target.disks[target_disk].0,
                ShardOp::Read,
                self.shard_len,
            ),
            disk_status: 0,
        };
        self.pool.get_range(&loc, self.stripe, 0, 0).await
    }

    async fn target_has(&self, shard: u32, target_disk: usize) -> bool {
        self.target
            .client()
            .await
            .stat_shard(StatShardRequest {
                key: skey(self.stripe, shard),
                disk_id: self.target.disks[target_disk].0,
                cap: cap(
                    self.stripe,
                    shard,
                    self.target.disks[target_disk].0,
                    ShardOp::Read,
                    self.shard_len,
                ),
            })
            .await
            .unwrap()
            .into_inner()
            .exists
    }

    async fn stop(self) {
        for n in self.sources {
            n.stop().await;
        }
        self.target.stop().await;
    }
}

#[tokio::test]
async fn decode_rebuilds_a_lost_data_shard_and_a_lost_parity_shard() {
    let s = Setup::new(41).await;
    s.delete(1).await;
    s.delete(5).await;

    // Shard 5 is listed first but gone: it is skipped and the next source taken.
    let r = s
        .rebuild(s.request(1, 0, &[5, 0, 2, 3, 4, 6]))
        .await
        .unwrap();
    assert_eq!(r.crc32c, s.enc.crcs[1]);
    assert_eq!(r.sources_failed, vec![5]);
    let mut used = r.sources_used.clone();
    used.sort();
    assert_eq!(used, vec![0, 2, 3, 4, 6]);
    assert_eq!(r.bytes_read, 5 * s.shard_len);
    assert_eq!(s.read_target(1, 0).await.unwrap(), s.enc.shards[1]);

    // A parity shard, on the other disk of the target.
    let r = s.rebuild(s.request(5, 1, &[0, 2, 3, 4, 6])).await.unwrap();
    assert_eq!(r.crc32c, s.enc.crcs[5]);
    assert!(r.sources_failed.is_empty());
    assert_eq!(s.read_target(5, 1).await.unwrap(), s.enc.shards[5]);

    let m = s.target.metrics().await;
    assert!(
        m.contains("kdss_storage_rebuilds_total{outcome=\"decode\"} 2"),
        "{m}"
    );
    let stored = format!("kdss_storage_rebuilt_bytes_total {}", 2 * s.shard_len);
    assert!(m.contains(&stored), "{m}");
    let fetched = format!(
        "kdss_storage_rebuild_source_bytes_total {}",
        10 * s.shard_len
    );
    assert!(m.contains(&fetched), "{m}");
    s.stop().await;
}

#[tokio::test]
async fn a_corrupt_source_is_skipped_and_reported() {
    let s = Setup::new(42).await;
    s.corrupt(0);
    let r = s
        .rebuild(s.request(6, 0, &[0, 1, 2, 3, 4, 5]))
        .await
        .unwrap();
    assert_eq!(r.sources_failed, vec![0]);
    let mut used = r.sources_used.clone();
    used.sort();
    assert_eq!(used, vec![1, 2, 3, 4, 5]);
    assert_eq!(r.crc32c, s.enc.crcs[6]);
    assert_eq!(s.read_target(6, 0).await.unwrap(), s.enc.shards[6]);
    s.stop().await;
}

#[tokio::test]
async fn fewer_than_k_readable_is_an_error_and_writes_nothing() {
    let s = Setup::new(43).await;
    s.delete(0).await;
    s.delete(2).await;
    s.corrupt(4);
    let e = s
        .rebuild(s.request(1, 0, &[0, 2, 3, 4, 5, 6]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    let msg = e.message();
    assert!(msg.contains("43/1"), "{msg}");
    assert!(msg.contains("only 3 of the 5"), "{msg}");
    assert!(msg.contains("shard 4: corrupt"), "{msg}");
    assert!(!s.target_has(1, 0).await);
    s.stop().await;
}

#[tokio::test]
async fn copy_mode_fetches_only_the_shard_itself() {
    let s = Setup::new(44).await;
    let r = s.rebuild(s.request(3, 1, &[0, 1, 3, 2, 4])).await.unwrap();
    assert_eq!(r.sources_used, vec![3]);
    assert_eq!(r.bytes_read, s.shard_len);
    assert_eq!(r.crc32c, s.enc.crcs[3]);
    assert_eq!(s.read_target(3, 1).await.unwrap(), s.enc.shards[3]);

    // The copy's source is unreadable: the shard is decoded from the others instead.
    s.delete(2).await;
    let r = s
        .rebuild(s.request(2, 0, &[2, 0, 1, 3, 4, 5]))
        .await
        .unwrap();
    assert_eq!(r.sources_failed, vec![2]);
    assert_eq!(r.sources_used.len(), 5);
    assert_eq!(s.read_target(2, 0).await.unwrap(), s.enc.shards[2]);
    s.stop().await;
}

#[tokio::test]
async fn refused_requests_write_nothing() {
    let s = Setup::new(45).await;
    let mut wrong_op = s.request(1, 0, &[0, 2, 3, 4, 5]);
    wrong_op.cap = cap(45, 1, wrong_op.disk_id, ShardOp::Read, s.shard_len);
    let mut wrong_key = s.request(1, 0, &[0, 2, 3, 4, 5]);
    wrong_key.cap = cap(46, 1, wrong_key.disk_id, ShardOp::Write, s.shard_len);
    let mut no_cap = s.request(1, 0, &[0, 2, 3, 4, 5]);
    no_cap.cap = None;
    // A capability for the target's other disk, and one for a shorter shard than asked.
    let mut wrong_disk = s.request(1, 0, &[0, 2, 3, 4, 5]);
    wrong_disk.cap = s.request(1, 1, &[]).cap;
    let mut longer = s.request(1, 0, &[0, 2, 3, 4, 5]);
    longer.shard_len += 1;
    for req in [wrong_op, wrong_key, no_cap, wrong_disk, longer] {
        let e = s.rebuild(req).await.unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    }

    let mut not_preset = s.request(1, 0, &[0, 2, 3, 4, 5]);
    not_preset.data_shards = 4;
    let mut twice = s.request(1, 0, &[0, 2, 3, 4, 5]);
    twice.sources.push(s.source(0));
    let mut no_len = s.request(1, 0, &[0, 2, 3, 4, 5]);
    no_len.shard_len = 0;
    no_len.cap = cap(45, 1, no_len.disk_id, ShardOp::Write, 0);
    let too_few_named = s.request(1, 0, &[0, 2, 3]);
    for (req, want) in [
        (not_preset, "not a supported preset"),
        (twice, "named by two sources"),
        (no_len, "shard_len"),
        (too_few_named, "decoding needs 5"),
    ] {
        let e = s.rebuild(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
        assert!(e.message().contains(want), "{e}");
    }
    let mut no_disk = s.request(1, 0, &[0, 2, 3, 4, 5]);
    no_disk.disk_id = 12345;
    // A valid capability for that disk, so the refusal is about the disk itself.
    no_disk.cap = cap(s.stripe, 1, 12345, ShardOp::Write, s.shard_len);
    assert_eq!(s.rebuild(no_disk).await.unwrap_err().code(), Code::NotFound);
    assert!(!s.target_has(1, 0).await);
    let info = s
        .target
        .client()
        .await
        .node_info(NodeInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(info.disks.iter().all(|d| d.records == 0));
    s.stop().await;
}

#[tokio::test]
async fn a_corrupt_record_is_reported_until_its_shard_is_deleted() {
    let s = Setup::new(47).await;
    s.corrupt(3);
    let (node, disk, _) = s.holder(3);
    let corrupt_of = |info: kdss_proto::storage::NodeInfoReply| {
        let d = info.disks.into_iter().find(|d| d.disk_id == disk).unwrap();
        (d.corrupt_shards, d.corrupt_shards_more)
    };
    let info = node.client().await.node_info(NodeInfoRequest {}).await;
    assert_eq!(corrupt_of(info.unwrap().into_inner()), (vec![], false));

    // A read finds it.
    let e = s.pool.get_range(&s.loc(3, ShardOp::Read), 47, 0, 0).await;
    assert!(matches!(e, Err(ShardFault::Corrupt(_))), "{e:?}");
    let info = node.client().await.node_info(NodeInfoRequest {}).await;
    let (keys, more) = corrupt_of(info.unwrap().into_inner());
    assert_eq!(keys, vec![skey(47, 3).unwrap()]);
    assert!(!more);

    s.delete(3).await;
    let info = node.client().await.node_info(NodeInfoRequest {}).await;
    assert_eq!(corrupt_of(info.unwrap().into_inner()), (vec![], false));
    s.stop().await;
}

/// The scrubber's findings join the same set, and writing the shard again clears it.
#[test]
fn scrub_reports_corrupt_shards_and_a_rewrite_clears_them() {
    use kdss_storage::engine::{Disk, OpenOptions};
    let dir = tempfile::tempdir().unwrap();
    let p = common::fresh(dir.path(), 16 << 20, 1 << 20);
    let d = Disk::open(&p, CLUSTER, OpenOptions::default()).unwrap();
    let k = common::key(9, 4);
    let data = common::content(k, 40_000);
    let placed = d.put_bytes(k, &data).unwrap();
    d.put_bytes(common::key(9, 5), b"healthy").unwrap();
    let mut b = common::peek(&p, placed.offset + 64 + 777, 1);
    b[0] ^= 0x10;
    common::poke(&p, placed.offset + 64 + 777, &b);
    assert_eq!(d.corrupt_shards(10), (vec![], false));
    let rep = d.scrub_pass(|_| true).unwrap();
    assert_eq!(rep.corrupt, vec![k]);
    assert_eq!(d.corrupt_shards(10), (vec![k], false));
    assert_eq!(d.corrupt_shards(0), (vec![], true));
    d.put_bytes(k, &data).unwrap();
    assert_eq!(d.corrupt_shards(10), (vec![], false));
    assert_eq!(d.read(k, 0, 0).unwrap().data(), &data[..]);
}
