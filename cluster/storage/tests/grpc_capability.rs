//! The real gRPC server on port-0 listeners: shard I/O with a valid capability works
//! (streamed put and ranged get); a missing, wrong or expired capability is refused with
//! PermissionDenied and nothing is read or written. `/metrics` serves Prometheus text.

mod common;

use common::*;
use kdss_common::{CapabilityKey, ShardTarget};
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{
    DeleteShardRequest, GetShardRequest, NodeInfoRequest, ShardKey, ShardOp, StatShardRequest,
};
use kdss_storage::StorageConfig;
use std::path::Path;
use tonic::Code;

const SECRET: &str = "capability-cluster-secret-0123456789abcdef";

fn config(disk: &Path) -> StorageConfig {
    let text = format!(
        "[node]\nid = \"node-t\"\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
         [cluster]\nid = \"{CLUSTER}\"\nsecret = \"{SECRET}\"\n[[disk]]\npath = \"{}\"\n",
        disk.display()
    );
    StorageConfig::parse(Path::new("storage.toml"), &text).unwrap()
}

#[tokio::test]
async fn capabilities_are_checked_before_any_disk_io() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("d0.img");
    let disk_id = kdss_storage::format_disk(&disk, 32 << 20, CLUSTER)
        .unwrap()
        .0;
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ga, ha) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kdss_storage::serve(config(&disk), grpc, http, async move {
        let _ = stopped.await;
    }));
    let mut c = loop {
        match StorageClient::connect(format!("http://{ga}")).await {
            Ok(c) => break c,
            Err(_) => tokio::task::yield_now().await,
        }
    };
    let signer = CapabilityKey::new(SECRET);
    let far = kdss_common::time::now_ms() + 60_000;
    let data = content(common::key(7, 0), 350_000);
    let len = data.len() as u64;
    let on = |stripe, disk_id| ShardTarget {
        stripe_id: stripe,
        shard_index: 0,
        disk_id,
    };
    let t = on(7, disk_id);
    let key = SignAs(&signer, t, len);

    // Refusals: missing, wrong secret, wrong op, wrong shard, expired, another disk (the
    // node has only this one: the request names it, the capability another), a longer or a
    // shorter shard than signed.
    let bad = [
        None,
        Some(CapabilityKey::new("other").sign(t, ShardOp::Write, len, far)),
        Some(key.sign(7, 0, ShardOp::Read, far)),
        Some(key.sign(8, 0, ShardOp::Write, far)),
        Some(key.sign(7, 0, ShardOp::Write, kdss_common::time::now_ms() - 1)),
        Some(signer.sign(on(7, disk_id ^ 1), ShardOp::Write, len, far)),
        Some(signer.sign(t, ShardOp::Write, len - 1, far)),
        Some(signer.sign(t, ShardOp::Write, len + 1, far)),
    ];
    for cap in bad {
        let e = c
            .put_shard(put_stream(7, disk_id, cap.clone(), &data))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{cap:?}: {e}");
        assert_eq!(
            kdss_common::rpc_error::code_of(&e),
            Some("CapabilityRefused")
        );
    }
    let info = c.node_info(NodeInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.disks[0].records, 0, "a refused put wrote nothing");
    let stat = |cap| StatShardRequest {
        key: Some(ShardKey {
            stripe_id: 7,
            shard_index: 0,
        }),
        disk_id,
        cap,
    };
    assert!(
        !c.stat_shard(stat(Some(key.sign(7, 0, ShardOp::Read, far))))
            .await
            .unwrap()
            .into_inner()
            .exists
    );

    // A valid capability: streamed put, ranged get.
    let reply = c
        .put_shard(put_stream(
            7,
            disk_id,
            Some(key.sign(7, 0, ShardOp::Write, far)),
            &data,
        ))
        .await
        .unwrap();
    assert_eq!(reply.into_inner().disk_id, disk_id);
    // A capability is for one write: the stored shard is not overwritten with it.
    let e = c
        .put_shard(put_stream(
            7,
            disk_id,
            Some(key.sign(7, 0, ShardOp::Write, far)),
            &vec![0u8; data.len()],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e}");
    let get = |cap, offset, len| GetShardRequest {
        key: Some(ShardKey {
            stripe_id: 7,
            shard_index: 0,
        }),
        disk_id,
        cap,
        offset,
        len,
        internal: false,
    };
    let mut s = c
        .get_shard(get(Some(key.sign(7, 0, ShardOp::Read, far)), 1000, 200_000))
        .await
        .unwrap()
        .into_inner();
    let mut got = Vec::new();
    let mut shard_len = 0;
    while let Some(ch) = s.message().await.unwrap() {
        if got.is_empty() {
            shard_len = ch.shard_len;
        }
        got.extend_from_slice(&ch.data);
    }
    assert_eq!(shard_len, 350_000);
    assert_eq!(got, data[1000..201_000]);
    for cap in [
        None,
        Some(key.sign(7, 0, ShardOp::Write, far)),
        Some(key.sign(7, 0, ShardOp::Read, 1)),
    ] {
        let e = c.get_shard(get(cap, 0, 0)).await.map(|_| ()).unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);
    }
    let del = |cap| DeleteShardRequest {
        key: Some(ShardKey {
            stripe_id: 7,
            shard_index: 0,
        }),
        disk_id,
        cap,
    };
    let e = c
        .delete_shard(del(Some(key.sign(7, 0, ShardOp::Read, far))))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        c.stat_shard(stat(Some(key.sign(7, 0, ShardOp::Read, far))))
            .await
            .unwrap()
            .into_inner()
            .exists
    );
    assert!(
        c.delete_shard(del(Some(key.sign(7, 0, ShardOp::Delete, far))))
            .await
            .unwrap()
            .into_inner()
            .existed
    );
    let e = c
        .get_shard(get(Some(key.sign(7, 0, ShardOp::Read, far)), 0, 0))
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Metrics over HTTP.
    let mut sock = tokio::net::TcpStream::connect(ha).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    sock.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    sock.read_to_string(&mut body).await.unwrap();
    assert!(
        body.contains("kdss_storage_disk_bytes_written_total"),
        "{body}"
    );
    assert!(
        body.contains("kdss_storage_request_duration_seconds_bucket"),
        "{body}"
    );
    assert!(body.contains("result=\"error\""), "{body}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    // Clean shutdown left a checkpoint: the next open is L0.
    let d = kdss_storage::engine::Disk::open(&disk, CLUSTER, Default::default()).unwrap();
    assert_eq!(
        d.recovery().index,
        kdss_storage::engine::IndexSource::Checkpoint
    );
}

/// Signs for shard 0 of a stripe on the test's disk with the test's shard length, so the
/// checks above read as (stripe, shard, op, expiry).
struct SignAs<'a>(&'a CapabilityKey, ShardTarget, u64);

impl SignAs<'_> {
    fn sign(
        &self,
        stripe: u64,
        shard: u32,
        op: ShardOp,
        exp: u64,
    ) -> kdss_proto::storage::Capability {
        let t = ShardTarget {
            stripe_id: stripe,
            shard_index: shard,
            ..self.1
        };
        self.0.sign(t, op, self.2, exp)
    }
}
