//! A storage node whose disk hangs in fdatasync (the fault layer's `hang`, switched on
//! through the node's signed `POST /fault`) against a real cluster: a write through the
//! client still completes, because a shard put past `shard_put_deadline` counts as failed
//! and its shard moves to another disk through the master; the committed extent map never
//! names the hung disk, the object reads back byte-exact, and once the fault is cleared
//! the abandoned put drains and the disk takes new shards again.
//!
//! Without the put deadline the write waits on the hung fdatasync forever; the test's
//! own timeout turns that into a failure instead of a hang.

use std::time::Duration;

use bytes::Bytes;
use kdss_client::{Client, ClientConfig};
use kdss_proto::master as pb;
use kdss_proto::storage::NodeInfoRequest;
use kdss_proto::storage::storage_client::StorageClient;
use kdss_testkit::{Cluster, ClusterOpts};

/// How long a write may take with the disk hung: the deadline a few times over (stripes
/// run in parallel, each replaced shard costs one deadline and one ReplaceShard), plus a
/// wide margin for a loaded machine. Only a hang gets near it.
const WRITE_LIMIT: Duration = Duration::from_secs(90);

fn client_for(c: &Cluster) -> ClientConfig {
    let (ak, sk) = c.admin_keys();
    ClientConfig {
        masters: c.masters(),
        access_key: ak,
        secret_key: sk,
        chunk_size: 1 << 20,
        rpc_timeout: Duration::from_secs(20),
        shard_deadline: Duration::from_secs(2),
        shard_put_deadline: Duration::from_secs(2),
        shard_put_deadline_per_mib: Duration::ZERO,
        ..ClientConfig::default()
    }
}

fn bytes_of(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes `data` as object `key` and returns the disks its committed stripes name.
async fn put(client: &Client, bucket: &str, key: &str, data: &[u8]) -> Vec<u64> {
    let mut w = client.stream_writer(bucket);
    for piece in data.chunks(300_000) {
        w.write(Bytes::copy_from_slice(piece)).await.expect("write");
    }
    let wd = w.finish().await.expect("the stripes became durable");
    client
        .put_object(wd.put_request(bucket, key))
        .await
        .expect("PutObject");
    let h = client
        .master()
        .head_object(pb::HeadObjectRequest {
            bucket: bucket.into(),
            key: key.into(),
            with_extents: true,
        })
        .await
        .expect("HeadObject");
    h.stripes
        .iter()
        .flat_map(|s| s.shards.iter().map(|l| l.disk_id))
        .collect()
}

async fn read(client: &Client, bucket: &str, key: &str) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let (info, r) = client.open_object(bucket, key).await.expect("open");
    let mut got = Vec::new();
    r.into_async_read(0, info.size)
        .read_to_end(&mut got)
        .await
        .expect("read");
    got
}

/// Shard bytes node 0 admitted to `path`'s write queue and has not made durable.
async fn queued(c: &Cluster, path: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(&c.layout.nodes[0].http)
        .await
        .expect("metrics port");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    let want = format!("path=\"{path}\"");
    body.lines()
        .find(|l| l.starts_with("kdss_storage_disk_write_queue_bytes{") && l.contains(&want))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no write queue gauge for {path}:\n{body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_disk_costs_a_deadline_not_the_write() {
    let cluster = Cluster::start(ClusterOpts {
        storage_extra_toml: "[fault]\nenabled = true\n\n[scrub]\nenabled = false\n\n\
                             [compactor]\nenabled = false\n"
            .into(),
        ..ClusterOpts::default()
    })
    .await
    .expect("cluster");
    let bucket = cluster.bucket();
    let hung_path = cluster.layout.nodes[0].disks[0].display().to_string();
    let mut node0 = StorageClient::connect(format!("http://{}", cluster.layout.nodes[0].grpc))
        .await
        .expect("node 0");
    let hung = node0
        .node_info(NodeInfoRequest {})
        .await
        .expect("NodeInfo")
        .into_inner()
        .disks
        .iter()
        .find(|d| d.path == hung_path)
        .expect("the disk is listed")
        .disk_id;

    cluster
        .inject_fault(0, &format!("disk={hung_path}&kind=hang&op=sync"))
        .await
        .expect("the node takes the signed fault");
    let client = Client::connect(client_for(&cluster))
        .await
        .expect("connect");
    // Eight stripes of 5+2 over 8 disks: all but certainly several were placed on the
    // hung disk at first.
    let data = bytes_of(11, (8 << 20) + 5);
    let disks = tokio::time::timeout(WRITE_LIMIT, put(&client, &bucket, "hung.bin", &data))
        .await
        .expect("the write did not finish while a disk hung (no put deadline?)");
    assert!(
        !disks.contains(&hung),
        "the committed map names the hung disk {hung}: {disks:?}"
    );
    assert!(
        queued(&cluster, &hung_path).await > 0,
        "no put ever reached the hung disk: the test proved nothing"
    );
    assert!(
        read(&client, &bucket, "hung.bin").await == data,
        "read back differs"
    );

    // Cleared: the abandoned puts drain, and a fresh client (one that has not seen the
    // disk time out) gets shards placed there and durable again.
    cluster
        .inject_fault(0, &format!("disk={hung_path}&kind=clear"))
        .await
        .expect("clear");
    let t = std::time::Instant::now();
    while queued(&cluster, &hung_path).await > 0 {
        assert!(t.elapsed() < WRITE_LIMIT, "the hung puts never drained");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fresh = Client::connect(client_for(&cluster))
        .await
        .expect("connect");
    let mut used = false;
    for i in 0..6 {
        let key = format!("after-{i}.bin");
        let body = bytes_of(100 + i, 1 << 20);
        let disks = tokio::time::timeout(WRITE_LIMIT, put(&fresh, &bucket, &key, &body))
            .await
            .expect("a write after the clear finished");
        assert!(read(&fresh, &bucket, &key).await == body, "{key} differs");
        if disks.contains(&hung) {
            used = true;
            break;
        }
    }
    assert!(used, "the cleared disk never took a shard again");
}
