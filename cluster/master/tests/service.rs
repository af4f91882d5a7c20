//! The Master gRPC service in-process on port-0 listeners: authentication and bucket access,
//! namespace calls through Raft, placement with capabilities, statfs and status.

mod common;

use common::{ADMIN_KEY, SECRET, single_master};
use kdss_common::rpc_error::{code_of, errno_of};
use kdss_master::bench::{Credential, client};
use kdss_proto::master as pb;
use kdss_proto::storage::{DiskInfo, DiskState, ShardOp};
use tonic::Code;

fn cred(key: &str, secret: &str) -> Credential {
    Credential {
        access_key: key.into(),
        secret_key: secret.into(),
        on_behalf_of: None,
    }
}

#[tokio::test]
async fn calls_without_a_valid_key_or_grant_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = single_master(dir.path(), "").await;
    let addr = m.grpc_addr.to_string();
    let mut admin = client(&addr, common::admin()).unwrap();

    // No credential at all.
    let ch = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut anon = pb::master_client::MasterClient::new(ch);
    let e = anon
        .list_buckets(pb::ListBucketsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);

    // A wrong secret, and an unknown key.
    let e = client(&addr, cred(ADMIN_KEY, "wrong-secret"))
        .unwrap()
        .list_buckets(pb::ListBucketsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    let e = client(&addr, cred("nobody", "whatever"))
        .unwrap()
        .list_buckets(pb::ListBucketsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");

    // Two users; alice owns a bucket, bob is not granted.
    let mk = |name: &str| pb::CreateUserRequest {
        name: name.into(),
        access_key: format!("{name}-key"),
        secret_key: format!("{name}-secret-123"),
        role: pb::Role::User as i32,
    };
    admin.create_user(mk("alice")).await.unwrap();
    admin.create_user(mk("bob")).await.unwrap();
    let mut alice = client(&addr, cred("alice-key", "alice-secret-123")).unwrap();
    let mut bob = client(&addr, cred("bob-key", "bob-secret-123")).unwrap();
    let b = alice
        .create_bucket(pb::CreateBucketRequest {
            name: "alices".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .bucket
        .unwrap();
    assert_eq!(b.owner, "alice-key");
    assert_eq!((b.k, b.m), (5, 2), "the [ec] default applies");
    let mkdir = |bucket: &str| pb::MkdirRequest {
        bucket: bucket.into(),
        parent: b.root_ino,
        name: "x".into(),
        mode: 0o755,
        ..Default::default()
    };
    let e = bob.mkdir(mkdir("alices")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert_eq!(code_of(&e), Some("AccessDenied"));
    let e = bob
        .list_objects(pb::ListObjectsRequest {
            bucket: "alices".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let listed = bob
        .list_buckets(pb::ListBucketsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(listed.buckets.is_empty(), "bob sees no bucket: {listed:?}");
    // Users are not admins.
    let e = bob.list_users(pb::ListUsersRequest {}).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // After a grant bob gets in.
    alice
        .grant_bucket(pb::GrantBucketRequest {
            bucket: "alices".into(),
            access_key: "bob-key".into(),
        })
        .await
        .unwrap();
    bob.mkdir(mkdir("alices")).await.unwrap();
    // Domain errors carry errno and code.
    let e = alice.mkdir(mkdir("alices")).await.unwrap_err();
    assert_eq!(errno_of(&e), kdss_common::rpc_error::errno::EEXIST, "{e}");
    // The service identity acting for bob has bob's rights, no more.
    let mut svc_bob = client(
        &addr,
        Credential {
            access_key: kdss_common::auth::SERVICE_ACCESS_KEY.into(),
            secret_key: SECRET.into(),
            on_behalf_of: Some("bob-key".into()),
        },
    )
    .unwrap();
    let e = svc_bob
        .list_users(pb::ListUsersRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // GetUserSecret is for the service identity only.
    let e = admin
        .get_user_secret(pb::GetUserSecretRequest {
            access_key: "bob-key".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let s = client(&addr, common::service())
        .unwrap()
        .get_user_secret(pb::GetUserSecretRequest {
            access_key: "bob-key".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(s.secret_key, "bob-secret-123");
    m.stop().await.unwrap();
}

fn node(id: &str, disks: std::ops::Range<u64>) -> pb::RegisterNodeRequest {
    pb::RegisterNodeRequest {
        node_id: id.into(),
        grpc_addr: format!("127.0.0.1:{}", 7000 + disks.start),
        http_addr: String::new(),
        disks: disks
            .map(|d| DiskInfo {
                disk_id: d,
                capacity_bytes: 1 << 30,
                used_bytes: 0,
                free_bytes: 1 << 30,
                state: DiskState::Online as i32,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn allocation_spreads_shards_and_signs_capabilities() {
    let dir = tempfile::tempdir().unwrap();
    let m = single_master(dir.path(), "").await;
    let addr = m.grpc_addr.to_string();
    let mut admin = client(&addr, common::admin()).unwrap();
    let mut svc = client(&addr, common::service()).unwrap();
    let b = admin
        .create_bucket(pb::CreateBucketRequest {
            name: "data".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .bucket
        .unwrap();
    let alloc = pb::AllocateStripeRequest {
        bucket: "data".into(),
        data_len: 5 << 20,
        shard_len: 1 << 20,
    };
    // No storage nodes: a clear capacity error naming what is needed.
    let e = admin.allocate_stripe(alloc.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    assert!(
        e.message().contains("needs 7") && e.message().contains("0 available"),
        "{e}"
    );
    // Storage nodes register only with the service identity.
    assert_eq!(
        admin
            .register_node(node("n0", 1..3))
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    for (i, n) in ["n0", "n1", "n2", "n3"].iter().enumerate() {
        let d = 1 + 2 * i as u64;
        svc.register_node(node(n, d..d + 2)).await.unwrap();
    }
    let s = admin
        .allocate_stripe(alloc)
        .await
        .unwrap()
        .into_inner()
        .stripe
        .unwrap();
    assert_eq!(s.shards.len(), 7);
    let mut per_node = std::collections::HashMap::new();
    let key = kdss_common::CapabilityKey::new(SECRET);
    for sh in &s.shards {
        *per_node.entry(sh.node_id.clone()).or_insert(0) += 1;
        assert!(!sh.node_addr.is_empty());
        let now = kdss_common::time::now_ms();
        let target = kdss_common::ShardTarget {
            stripe_id: s.stripe_id,
            shard_index: sh.shard_index,
            disk_id: sh.disk_id,
        };
        // Bound to the placed disk and the shard length; short-lived.
        key.verify_write(sh.cap.as_ref(), target, s.shard_len, now)
            .unwrap();
        let exp = sh.cap.as_ref().unwrap().expires_unix_ms;
        assert!(
            exp <= now + 2 * 60 * 1000,
            "write capabilities live 2 minutes"
        );
    }
    assert!(per_node.values().all(|&n| n <= 2), "{per_node:?}");
    // Commit it into a file and read the extents back with READ capabilities.
    let f = admin
        .create(pb::CreateRequest {
            bucket: "data".into(),
            parent: b.root_ino,
            name: "f".into(),
            kind: pb::FileKind::Regular as i32,
            mode: 0o644,
            exclusive: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attr
        .unwrap();
    admin
        .commit_write(pb::CommitWriteRequest {
            bucket: "data".into(),
            ino: f.ino,
            extents: vec![pb::Extent {
                file_offset: 0,
                len: 5 << 20,
                stripe_id: s.stripe_id,
                stripe_offset: 0,
            }],
            mtime_ns: 1,
            expect_version: None,
            ..Default::default()
        })
        .await
        .unwrap();
    let x = admin
        .get_extents(pb::GetExtentsRequest {
            bucket: "data".into(),
            ino: f.ino,
            offset: 0,
            len: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(x.attr.unwrap().size, 5 << 20);
    assert_eq!(x.stripes.len(), 1);
    for sh in &x.stripes[0].shards {
        let target = kdss_common::ShardTarget {
            stripe_id: s.stripe_id,
            shard_index: sh.shard_index,
            disk_id: sh.disk_id,
        };
        let len = key
            .verify(
                sh.cap.as_ref(),
                target,
                ShardOp::Read,
                kdss_common::time::now_ms(),
            )
            .unwrap();
        assert_eq!(len, s.shard_len);
    }
    // The stripe is committed now: its writer may no longer move its shards.
    let before = x.stripes[0].shards[0].disk_id;
    let e = admin
        .replace_shard(pb::ReplaceShardRequest {
            bucket: "data".into(),
            stripe_id: s.stripe_id,
            shard_index: 0,
            failed_disk_id: before,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().contains("committed"), "{e}");
    // statfs: usable = free raw x 5/7.
    let st = admin
        .stat_fs(pb::StatFsRequest {
            bucket: "data".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        st.blocks * st.block_size,
        (8u64 << 30) * 5 / 7 / 4096 * 4096
    );
    // ClusterStatus names this master as leader and lists the nodes.
    let cs = admin
        .cluster_status(pb::ClusterStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cs.leader_id, 1);
    assert_eq!(cs.nodes.len(), 4);
    assert!(cs.commit_index > 0);
    // /metrics and /health answer.
    let (code, body) = common::http_get(&m.http_addr.to_string(), "/metrics")
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains("kdss_master_raft_term") && body.contains("kdss_master_op_duration_seconds"),
        "{body}"
    );
    let (code, _) = common::http_get(&m.http_addr.to_string(), "/health")
        .await
        .unwrap();
    assert_eq!(code, 200);
    m.stop().await.unwrap();
}
