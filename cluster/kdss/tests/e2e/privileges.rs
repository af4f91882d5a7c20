//! Least privilege on the data path, attacked through real gRPC clients with real user
//! credentials against a real master and real storage nodes: a writer of a bucket cannot
//! move shards of a committed stripe, use a capability on another disk or for a longer
//! shard, overwrite a stored shard, release or renew another user's handles and sessions,
//! or push oversized inline data into the Raft log. Every refusal leaves data and
//! metadata as they were.

use bytes::Bytes;
use kdss_client::{Client, ClientConfig, ClientError};
use kdss_common::{CapabilityKey, ShardTarget};
use kdss_proto::master as pb;
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{
    Capability, NodeInfoRequest, PutShardRequest, ShardKey, ShardOp, StatShardRequest,
};
use kdss_testkit::{Cluster, ClusterOpts};
use tonic::Code;

/// A user of the cluster with a bucket of their own.
struct User {
    client: Client,
    access_key: String,
    bucket: String,
    root: u64,
}

async fn connect(c: &Cluster, access_key: &str, secret_key: &str) -> Client {
    Client::connect(ClientConfig {
        masters: c.masters(),
        access_key: access_key.into(),
        secret_key: secret_key.into(),
        ..Default::default()
    })
    .await
    .expect("client connects")
}

/// Creates user `name` (role user) through the admin and a bucket it owns.
async fn user(c: &Cluster, name: &str) -> User {
    let (ak, sk) = c.admin_keys();
    let admin = connect(c, &ak, &sk).await;
    let made = admin
        .master()
        .create_user(pb::CreateUserRequest {
            name: name.into(),
            access_key: format!("{name}-key"),
            secret_key: format!("{name}-secret-0123456789"),
            role: pb::Role::User as i32,
        })
        .await
        .expect("admin creates the user");
    let access_key = made.user.expect("user info").access_key;
    let client = connect(c, &access_key, &made.secret_key).await;
    let bucket = format!("{name}-bucket");
    let b = client
        .master()
        .create_bucket(pb::CreateBucketRequest {
            name: bucket.clone(),
            ..Default::default()
        })
        .await
        .expect("the user creates a bucket")
        .bucket
        .expect("bucket info");
    User {
        client,
        access_key,
        bucket,
        root: b.root_ino,
    }
}

/// The gRPC status of a master call's error.
fn status(e: ClientError) -> tonic::Status {
    match e {
        ClientError::Master(s) => s,
        other => panic!("expected a master refusal, got {other:?}"),
    }
}

/// Reads the whole object through a new client (no cache of the writer's).
async fn read_back(c: &Cluster, u: &User, secret: &str, key: &str) -> Vec<u8> {
    let fresh = connect(c, &u.access_key, secret).await;
    let (info, r) = fresh.open_object(&u.bucket, key).await.expect("head");
    r.read_at(0, info.size).await.expect("read").to_vec()
}

async fn head_stripes(u: &User, key: &str) -> Vec<pb::StripeInfo> {
    let mut h = u
        .client
        .master()
        .head_object(pb::HeadObjectRequest {
            bucket: u.bucket.clone(),
            key: key.into(),
            with_extents: true,
        })
        .await
        .expect("head");
    // Addresses, statuses and capabilities differ per call; the placement must not.
    for s in &mut h.stripes {
        for sh in &mut s.shards {
            sh.cap = None;
            sh.node_addr.clear();
            sh.disk_status = 0;
        }
    }
    h.stripes
}

fn put_req(loc: &pb::ShardLocation, stripe: u64, disk_id: u64, body: &[u8]) -> PutShardRequest {
    PutShardRequest {
        key: Some(ShardKey {
            stripe_id: stripe,
            shard_index: loc.shard_index,
        }),
        disk_id,
        cap: loc.cap.clone(),
        total_len: body.len() as u64,
        crc32c: crc32c::crc32c(body),
        data: Bytes::copy_from_slice(body),
    }
}

async fn put_shard(addr: &str, req: PutShardRequest) -> Result<(), tonic::Status> {
    let mut s = StorageClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    s.put_shard(futures::stream::iter([req])).await.map(|_| ())
}

/// Whether `disk_id` of the node at `addr` holds the shard (asked with a capability the
/// test signs itself with the cluster secret).
async fn holds(c: &Cluster, addr: &str, target: ShardTarget) -> bool {
    let cap: Capability = CapabilityKey::new(&c.secret()).sign(
        target,
        ShardOp::Read,
        0,
        kdss_common::time::now_ms() + 60_000,
    );
    let mut s = StorageClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    s.stat_shard(StatShardRequest {
        key: Some(ShardKey {
            stripe_id: target.stripe_id,
            shard_index: target.shard_index,
        }),
        disk_id: target.disk_id,
        cap: Some(cap),
    })
    .await
    .unwrap()
    .into_inner()
    .exists
}

/// ReplaceShard on a committed stripe is refused and moves nothing; a write capability
/// works only on the disk it names, only for the stripe's shard length, and only once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_cannot_move_overwrite_or_misdirect_shards_of_committed_stripes() {
    let c = Cluster::start(ClusterOpts {
        bucket: None,
        ..ClusterOpts::default()
    })
    .await
    .unwrap();
    let alice = user(&c, "alice").await;
    let secret = "alice-secret-0123456789";

    // An object of 3 MiB written as stripes by its owner, who may write the bucket.
    let body = crate::common::data(16, 3 << 20);
    let mut w = alice.client.stream_writer(&alice.bucket);
    w.write(Bytes::from(body.clone())).await.unwrap();
    let written = w.finish().await.unwrap();
    assert!(
        !written.extents.is_empty(),
        "the object is stored as stripes"
    );
    alice
        .client
        .put_object(written.put_request(&alice.bucket, "obj"))
        .await
        .unwrap();
    let before = head_stripes(&alice, "obj").await;
    let stripe = before[0].clone();

    // Moving m + 1 = 3 shards of it would make it unreadable: each move is refused.
    for shard in 0..3 {
        let e = alice
            .client
            .master()
            .replace_shard(pb::ReplaceShardRequest {
                bucket: alice.bucket.clone(),
                stripe_id: stripe.stripe_id,
                shard_index: shard,
                failed_disk_id: stripe.shards[shard as usize].disk_id,
            })
            .await
            .map(|_| ())
            .map_err(status)
            .expect_err("ReplaceShard on a committed stripe");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains("committed"), "{}", e.message());
    }
    assert_eq!(
        head_stripes(&alice, "obj").await,
        before,
        "the map is unchanged"
    );
    assert_eq!(read_back(&c, &alice, secret, "obj").await, body);

    // A stripe of zeros (every shard, parity included, is zeros), allocated by alice.
    let (k, shard_len) = (5u64, 4096u64);
    let alloc = alice
        .client
        .master()
        .allocate_stripe(pb::AllocateStripeRequest {
            bucket: alice.bucket.clone(),
            data_len: k * shard_len,
            shard_len,
        })
        .await
        .unwrap()
        .stripe
        .unwrap();
    let sid = alloc.stripe_id;
    let loc0 = alloc.shards[0].clone();
    let zeros = vec![0u8; shard_len as usize];

    // Shard 0's capability on the other disk of the same node: refused, nothing written.
    let mut s = StorageClient::connect(format!("http://{}", loc0.node_addr))
        .await
        .unwrap();
    let disks = s.node_info(NodeInfoRequest {}).await.unwrap().into_inner();
    let other = disks
        .disks
        .iter()
        .map(|d| d.disk_id)
        .find(|d| *d != loc0.disk_id)
        .expect("nodes have two disks");
    let e = put_shard(&loc0.node_addr, put_req(&loc0, sid, other, &zeros))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("disk"), "{}", e.message());
    let on = |disk_id| ShardTarget {
        stripe_id: sid,
        shard_index: 0,
        disk_id,
    };
    assert!(!holds(&c, &loc0.node_addr, on(other)).await);

    // A longer shard than the stripe's on the right disk: refused, nothing written.
    let long = vec![0u8; 2 * shard_len as usize];
    let e = put_shard(&loc0.node_addr, put_req(&loc0, sid, loc0.disk_id, &long))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(!holds(&c, &loc0.node_addr, on(loc0.disk_id)).await);

    // The writer's own puts, as placed, succeed; the object is committed and reads zeros.
    for loc in &alloc.shards {
        put_shard(&loc.node_addr, put_req(loc, sid, loc.disk_id, &zeros))
            .await
            .unwrap();
    }
    alice
        .client
        .put_object(pb::PutObjectRequest {
            bucket: alice.bucket.clone(),
            key: "zeros".into(),
            extents: vec![pb::Extent {
                file_offset: 0,
                len: k * shard_len,
                stripe_id: sid,
                stripe_offset: 0,
            }],
            size: k * shard_len,
            etag: "\"zeros\"".into(),
            ..Default::default()
        })
        .await
        .unwrap();

    // The same, still valid, capability cannot overwrite the committed shard.
    let junk = vec![0xFFu8; shard_len as usize];
    let e = put_shard(&loc0.node_addr, put_req(&loc0, sid, loc0.disk_id, &junk))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let got = read_back(&c, &alice, secret, "zeros").await;
    assert!(
        got.len() == (k * shard_len) as usize && got.iter().all(|b| *b == 0),
        "the committed object still reads as written"
    );
}

/// Handles and sessions belong to the user, bucket and session that opened them: another
/// user cannot release them (the owner's write on an unlinked open file still commits) or
/// renew or shorten its session, and no session may ask for more than 10 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_and_keep_alive_act_only_on_the_callers_own_handles_and_sessions() {
    let c = Cluster::start(ClusterOpts {
        bucket: None,
        ..ClusterOpts::default()
    })
    .await
    .unwrap();
    let alice = user(&c, "alice").await;
    let bob = user(&c, "bob").await;
    let (ak, sk) = c.admin_keys();
    // Bob may even write alice's bucket: still not her handles.
    connect(&c, &ak, &sk)
        .await
        .master()
        .grant_bucket(pb::GrantBucketRequest {
            bucket: alice.bucket.clone(),
            access_key: bob.access_key.clone(),
        })
        .await
        .unwrap();

    let a = alice.client.master();
    let ino = a
        .create(pb::CreateRequest {
            bucket: alice.bucket.clone(),
            parent: alice.root,
            name: "open-file".into(),
            kind: pb::FileKind::Regular as i32,
            mode: 0o644,
            ..Default::default()
        })
        .await
        .unwrap()
        .attr
        .unwrap()
        .ino;
    let handle = a
        .open(pb::OpenRequest {
            bucket: alice.bucket.clone(),
            ino,
            session: "alice-session".into(),
            write: true,
        })
        .await
        .unwrap()
        .handle;
    // Unlinked while open: only the open handle keeps the inode alive.
    a.unlink(pb::UnlinkRequest {
        bucket: alice.bucket.clone(),
        parent: alice.root,
        name: "open-file".into(),
    })
    .await
    .unwrap();

    let b = bob.client.master();
    for (bucket, session) in [
        (&bob.bucket, "bob-session"),
        (&alice.bucket, "bob-session"),
        (&alice.bucket, "alice-session"),
    ] {
        let e = b
            .release(pb::ReleaseRequest {
                bucket: bucket.clone(),
                handle,
                session: session.into(),
            })
            .await
            .map_err(status)
            .expect_err("bob releases alice's handle");
        assert_eq!(
            e.code(),
            Code::PermissionDenied,
            "{bucket} {session}: {e:?}"
        );
    }
    // Alice's write on the open, unlinked file still commits.
    let attr = a
        .commit_write(pb::CommitWriteRequest {
            bucket: alice.bucket.clone(),
            ino,
            inline_data: b"still mine".to_vec(),
            ..Default::default()
        })
        .await
        .expect("the handle is still open: the inode is alive")
        .attr
        .unwrap();
    assert_eq!(attr.size, 10);

    // Bob cannot renew or shorten alice's session; nobody asks for a month.
    let e = b
        .keep_alive(pb::KeepAliveRequest {
            session: "alice-session".into(),
            ttl_ms: 1,
        })
        .await
        .map_err(status)
        .expect_err("bob renews alice's session");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = a
        .keep_alive(pb::KeepAliveRequest {
            session: "alice-session".into(),
            ttl_ms: 30 * 24 * 3600 * 1000,
        })
        .await
        .map_err(status)
        .expect_err("a month-long session");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("600000"), "{}", e.message());
    a.keep_alive(pb::KeepAliveRequest {
        session: "alice-session".into(),
        ttl_ms: 60_000,
    })
    .await
    .expect("a normal renewal");
    b.keep_alive(pb::KeepAliveRequest {
        session: "bob-session".into(),
        ttl_ms: 600_000,
    })
    .await
    .expect("the longest allowed ttl");

    // Her own release (right bucket and session) works.
    a.release(pb::ReleaseRequest {
        bucket: alice.bucket.clone(),
        handle,
        session: "alice-session".into(),
    })
    .await
    .unwrap();
}

/// Inline data above 64 KiB is refused on every path before it reaches Raft, the master
/// refuses to decode a 5 MiB message before authenticating it, and later writes are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_inline_data_is_refused_and_the_master_keeps_serving() {
    let c = Cluster::start(ClusterOpts {
        bucket: None,
        ..ClusterOpts::default()
    })
    .await
    .unwrap();
    let alice = user(&c, "alice").await;
    let a = alice.client.master();
    let mib = vec![7u8; 1 << 20];
    let limit = |e: &tonic::Status, call: &str| {
        assert_eq!(e.code(), Code::InvalidArgument, "{call}: {e:?}");
        for want in [call, "1048576", "65536"] {
            assert!(e.message().contains(want), "{call}: {}", e.message());
        }
    };

    let e = a
        .put_object(pb::PutObjectRequest {
            bucket: alice.bucket.clone(),
            key: "big".into(),
            size: mib.len() as u64,
            inline_data: mib.clone(),
            ..Default::default()
        })
        .await
        .map_err(status)
        .expect_err("1 MiB inline PutObject");
    limit(&e, "PutObject");
    let e = a
        .head_object(pb::HeadObjectRequest {
            bucket: alice.bucket.clone(),
            key: "big".into(),
            with_extents: false,
        })
        .await
        .map_err(status)
        .expect_err("nothing was stored");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    let upload_id = a
        .create_multipart(pb::CreateMultipartRequest {
            bucket: alice.bucket.clone(),
            key: "parts".into(),
            meta: None,
        })
        .await
        .unwrap()
        .upload_id;
    let e = a
        .put_part(pb::PutPartRequest {
            bucket: alice.bucket.clone(),
            key: "parts".into(),
            upload_id,
            part_number: 1,
            size: mib.len() as u64,
            inline_data: mib.clone(),
            ..Default::default()
        })
        .await
        .map_err(status)
        .expect_err("1 MiB inline PutPart");
    limit(&e, "PutPart");

    let ino = a
        .create(pb::CreateRequest {
            bucket: alice.bucket.clone(),
            parent: alice.root,
            name: "f".into(),
            kind: pb::FileKind::Regular as i32,
            mode: 0o644,
            ..Default::default()
        })
        .await
        .unwrap()
        .attr
        .unwrap()
        .ino;
    let e = a
        .commit_write(pb::CommitWriteRequest {
            bucket: alice.bucket.clone(),
            ino,
            inline_data: mib.clone(),
            ..Default::default()
        })
        .await
        .map_err(status)
        .expect_err("1 MiB inline CommitWrite");
    limit(&e, "CommitWrite");
    assert_eq!(
        kdss_common::rpc_error::code_of(&e),
        Some(kdss_common::limits::INLINE_NOT_POSSIBLE),
        "a file writer falls back to stripes on this code"
    );

    // 5 MiB from someone with a wrong secret: refused on the credential header alone, so
    // the body is never read; the same 5 MiB from alice, properly signed, is refused for its
    // size (the auth layer reads at most the Master service's limit) before it is decoded.
    let mut intruder = kdss_master::bench::client(
        &c.masters()[0],
        kdss_master::bench::Credential {
            access_key: alice.access_key.clone(),
            secret_key: "not-her-secret".into(),
            on_behalf_of: None,
        },
    )
    .unwrap();
    let huge = || pb::PutObjectRequest {
        bucket: alice.bucket.clone(),
        key: "huge".into(),
        inline_data: vec![1u8; 5 << 20],
        ..Default::default()
    };
    let e = intruder.put_object(huge()).await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    let e = a.put_object(huge()).await.map_err(status).unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "a signed 5 MiB request: {e:?}"
    );

    // The master still serves writes, inline at the limit included.
    let at_limit = vec![9u8; kdss_common::limits::MAX_INLINE_BYTES];
    a.put_object(pb::PutObjectRequest {
        bucket: alice.bucket.clone(),
        key: "small".into(),
        size: at_limit.len() as u64,
        inline_data: at_limit.clone(),
        ..Default::default()
    })
    .await
    .expect("a write at the inline limit");
    let secret = "alice-secret-0123456789";
    assert_eq!(read_back(&c, &alice, secret, "small").await, at_limit);
}
