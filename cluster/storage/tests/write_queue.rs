//! The bounded write queue on the real gRPC server: with fdatasync slowed by the fault
//! layer, many concurrent PutShards all succeed, yet the shard bytes the disk admitted and
//! had not made durable never exceeded `[limits] write_queue_bytes` (the node's
//! `kdss_storage_disk_write_queue_peak_bytes` gauge): the slow device made senders wait
//! instead of the node buffering every shard that arrived.

mod common;

use common::*;
use kdss_common::{CapabilityKey, ShardTarget};
use kdss_proto::storage::ShardOp;
use kdss_proto::storage::storage_client::StorageClient;
use kdss_storage::StorageConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const SECRET: &str = "write-queue-cluster-secret-0123456789abcdef";
const QUEUE: u64 = 1 << 20;
const SHARD: usize = 256 << 10;
const PUTS: u64 = 32;

fn config(disk: &Path) -> StorageConfig {
    let text = format!(
        "[node]\nid = \"node-q\"\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
         [cluster]\nid = \"{CLUSTER}\"\nsecret = \"{SECRET}\"\n[[disk]]\npath = \"{d}\"\n\
         [limits]\nwrite_queue_bytes = {QUEUE}\n\
         [compactor]\nenabled = false\n[scrub]\nenabled = false\n\
         [fault]\nenabled = true\n\
         [[fault.rule]]\ndisk = \"{d}\"\nkind = \"latency\"\nop = \"sync\"\nlatency_ms = 100\n",
        d = disk.display()
    );
    StorageConfig::parse(Path::new("storage.toml"), &text).unwrap()
}

async fn gauge(http: SocketAddr, name: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(http).await.unwrap();
    sock.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    sock.read_to_string(&mut body).await.unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_makes_puts_wait_instead_of_queueing_past_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("d0.img");
    let disk_id = kdss_storage::format_disk(&disk, 128 << 20, CLUSTER)
        .unwrap()
        .0;
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ga, ha) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kdss_storage::serve(config(&disk), grpc, http, async move {
        let _ = stopped.await;
    }));
    let c = loop {
        match StorageClient::connect(format!("http://{ga}")).await {
            Ok(c) => break c,
            Err(_) => tokio::task::yield_now().await,
        }
    };
    let signer = CapabilityKey::new(SECRET);
    let far = kdss_common::time::now_ms() + 600_000;
    let puts = (0..PUTS).map(|stripe| {
        let mut c = c.clone();
        let t = ShardTarget {
            stripe_id: stripe,
            shard_index: 0,
            disk_id,
        };
        let cap = signer.sign(t, ShardOp::Write, SHARD as u64, far);
        let data = content(common::key(stripe, 0), SHARD);
        async move {
            c.put_shard(put_stream(stripe, disk_id, Some(cap), &data))
                .await
        }
    });
    let all = futures::future::join_all(puts);
    let results = tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("the puts finished (they wait for room, they do not hang)");
    for (i, r) in results.into_iter().enumerate() {
        r.unwrap_or_else(|e| panic!("put {i} failed: {e}"));
    }
    let peak = gauge(ha, "kdss_storage_disk_write_queue_peak_bytes").await;
    let now = gauge(ha, "kdss_storage_disk_write_queue_bytes").await;
    eprintln!(
        "write queue peak {peak} bytes (bound {QUEUE}, offered {})",
        PUTS * SHARD as u64
    );
    assert!(peak >= SHARD as u64, "the gauge saw the puts: {peak}");
    assert!(
        peak <= QUEUE,
        "{peak} bytes were admitted at once, past the {QUEUE}-byte bound"
    );
    assert_eq!(now, 0, "every admission was given back");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
