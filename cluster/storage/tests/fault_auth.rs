//! `POST /fault` (test-only `[fault]` section) can fail or corrupt a disk, so it answers
//! only the service identity: a request without a credential, signed with another secret
//! or under another access key is refused 401 and injects nothing; a request signed with
//! the cluster secret injects its fault.

mod common;

use common::*;
use kdss_common::{CapabilityKey, auth};
use kdss_launch::{fault_credential, post_fault, service_credential};
use kdss_proto::storage::ShardOp;
use kdss_proto::storage::storage_client::StorageClient;
use kdss_storage::StorageConfig;
use std::path::Path;

const SECRET: &str = "fault-door-cluster-secret-0123456789abcdef";

#[tokio::test]
async fn fault_needs_the_service_credential_and_injects_nothing_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("d0.img");
    let disk_id = kdss_storage::format_disk(&disk, 32 << 20, CLUSTER)
        .unwrap()
        .0;
    let text = format!(
        "[node]\nid = \"node-f\"\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
         [cluster]\nid = \"{CLUSTER}\"\nsecret = \"{SECRET}\"\n[[disk]]\npath = \"{}\"\n\
         [fault]\nenabled = true\n",
        disk.display()
    );
    let cfg = StorageConfig::parse(Path::new("storage.toml"), &text).unwrap();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ga, ha) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kdss_storage::serve(cfg, grpc, http, async move {
        let _ = stopped.await;
    }));
    let mut c = loop {
        match StorageClient::connect(format!("http://{ga}")).await {
            Ok(c) => break c,
            Err(_) => tokio::task::yield_now().await,
        }
    };
    let key = CapabilityKey::new(SECRET);
    let far = kdss_common::time::now_ms() + 60_000;
    let mut put = async |stripe: u64| {
        let data = content(common::key(stripe, 0), 10_000);
        let target = kdss_common::ShardTarget {
            stripe_id: stripe,
            shard_index: 0,
            disk_id,
        };
        let cap = key.sign(target, ShardOp::Write, data.len() as u64, far);
        c.put_shard(put_stream(stripe, disk_id, Some(cap), &data))
            .await
    };

    let addr = ha.to_string();
    let query = format!("disk={disk_id}&kind=eio&op=write");
    let now = kdss_common::time::now_ms();
    let refused = [
        ("no credential", None),
        (
            "signed with another secret",
            Some(fault_credential(
                auth::SERVICE_ACCESS_KEY,
                "another-cluster-secret-0123456789abcdef",
                &query,
                now,
            )),
        ),
        (
            "a user's access key",
            Some(fault_credential("AKIAUSER", SECRET, &query, now)),
        ),
        (
            "signed for another query",
            Some(fault_credential(
                auth::SERVICE_ACCESS_KEY,
                SECRET,
                "disk=x&kind=clear",
                now,
            )),
        ),
        ("not KDSS2", Some(format!("Bearer {SECRET}"))),
        (
            "expired",
            Some(fault_credential(
                auth::SERVICE_ACCESS_KEY,
                SECRET,
                &query,
                now - auth::MAX_SKEW_MS - 60_000,
            )),
        ),
    ];
    // Shards are written once: each check writes a stripe of its own.
    for (stripe, (why, cred)) in (10u64..).zip(refused) {
        let (status, body) = post_fault(&addr, &query, cred.as_deref()).await.unwrap();
        assert_eq!(status, 401, "{why}: {body}");
        put(stripe)
            .await
            .unwrap_or_else(|e| panic!("after a refused /fault ({why}): {e}"));
    }
    // A bad query is only looked at once the caller is known.
    let (status, _) = post_fault(&addr, "disk=x&kind=nonsense", None)
        .await
        .unwrap();
    assert_eq!(status, 401);

    let (status, body) = post_fault(&addr, &query, Some(&service_credential(SECRET, &query)))
        .await
        .unwrap();
    assert_eq!((status, body.as_str()), (200, "injected\n"));
    assert!(put(2).await.is_err(), "the signed fault fails writes");

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
