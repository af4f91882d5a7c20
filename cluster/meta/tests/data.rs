//! Extent overlay, stripe bookkeeping and reference counts.

mod common;
use common::{BUCKET, Ns};
use kdss_common::rpc_error::errno;
use kdss_meta::read;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::*;

fn ext(file_offset: u64, len: u64, stripe_id: u64, stripe_offset: u64) -> Extent {
    Extent {
        file_offset,
        len,
        stripe_id,
        stripe_offset,
    }
}

async fn file(ns: &mut Ns, name: &str) -> u64 {
    let root = ns.root().await;
    match ns
        .ok(Op::Create(CreateRequest {
            bucket: BUCKET.into(),
            parent: root,
            name: name.into(),
            kind: 1,
            mode: 0o644,
            ..Default::default()
        }))
        .await
    {
        Reply::Attr(a) => a.attr.unwrap().ino,
        other => panic!("{other:?}"),
    }
}

fn commit(ino: u64, extents: Vec<Extent>) -> Op {
    Op::CommitWrite(CommitWriteRequest {
        bucket: BUCKET.into(),
        ino,
        extents,
        mtime_ns: 0,
        expect_version: None,
        ..Default::default()
    })
}

async fn map(ns: &Ns, ino: u64) -> Vec<Extent> {
    read::get_extents(
        &ns.pool,
        &GetExtentsRequest {
            bucket: BUCKET.into(),
            ino,
            offset: 0,
            len: 0,
        },
    )
    .await
    .unwrap()
    .extents
}

#[tokio::test]
async fn overlay_splits_and_trims_with_refcounts() {
    let mut ns = Ns::new().await;
    let ino = file(&mut ns, "f").await;
    let a = ns.stripe(300).await;
    let b = ns.stripe(50).await;
    let c = ns.stripe(300).await;
    ns.ok(commit(ino, vec![ext(0, 300, a, 0)])).await;
    assert_eq!(ns.refcount(a).await, (1, false));
    // Write in the middle: a is split in two (two references).
    ns.ok(commit(ino, vec![ext(100, 50, b, 0)])).await;
    assert_eq!(
        map(&ns, ino).await,
        vec![ext(0, 100, a, 0), ext(100, 50, b, 0), ext(150, 150, a, 150)]
    );
    assert_eq!(ns.refcount(a).await, (2, false));
    // Overwrite across everything but the first 50 bytes and extend to 400.
    ns.ok(commit(ino, vec![ext(50, 300, c, 0)])).await;
    assert_eq!(
        map(&ns, ino).await,
        vec![ext(0, 50, a, 0), ext(50, 300, c, 0)]
    );
    assert_eq!(ns.refcount(a).await, (1, false));
    assert_eq!(
        ns.refcount(b).await,
        (0, true),
        "fully covered: released to the GC"
    );
    let attr = ns.stat("/f").await.unwrap();
    assert_eq!(attr.size, 350);
    // Range query returns only overlapping extents.
    let r = read::get_extents(
        &ns.pool,
        &GetExtentsRequest {
            bucket: BUCKET.into(),
            ino,
            offset: 0,
            len: 10,
        },
    )
    .await
    .unwrap();
    assert_eq!(r.extents, vec![ext(0, 50, a, 0)]);
    assert_eq!(r.stripes.len(), 1);
    assert_eq!(r.stripes[0].shards[3].disk_id, 103);
}

#[tokio::test]
async fn commit_refusals() {
    let mut ns = Ns::new().await;
    let ino = file(&mut ns, "f").await;
    let s = ns.stripe(100).await;
    ns.ok(Op::CreateBucket(CreateBucketRequest {
        name: "other".into(),
        k: 0,
        m: 0,
        owner: String::new(),
    }))
    .await;
    let foreign = ns.stripe_in("other", 100).await;
    let v = ns.stat("/f").await.unwrap().version;
    let cases = vec![
        (commit(ino, vec![ext(0, 101, s, 0)]), errno::EINVAL),
        (commit(ino, vec![ext(0, 10, 9999, 0)]), errno::EINVAL),
        (commit(ino, vec![ext(0, 10, foreign, 0)]), errno::EINVAL),
        (commit(ino, vec![ext(0, 0, s, 0)]), errno::EINVAL),
        (
            commit(ns.root().await, vec![ext(0, 10, s, 0)]),
            errno::EISDIR,
        ),
        (commit(424242, vec![ext(0, 10, s, 0)]), errno::ENOENT),
        (
            Op::CommitWrite(CommitWriteRequest {
                bucket: BUCKET.into(),
                ino,
                extents: vec![ext(0, 10, s, 0)],
                mtime_ns: 0,
                expect_version: Some(v + 5),
                ..Default::default()
            }),
            errno::ESTALE,
        ),
    ];
    for (op, want) in cases {
        assert_eq!(ns.fail(op.clone()).await.errno, want, "{op:?}");
    }
    assert_eq!(
        ns.refcount(s).await,
        (0, false),
        "nothing committed, not released"
    );
    assert_eq!(
        read::stale_stripes(&ns.pool, i64::MAX, 10).await.unwrap(),
        vec![s, foreign]
    );
}

#[tokio::test]
async fn stripes_are_found_by_disk_and_shards_replaced() {
    let mut ns = Ns::new().await;
    let s1 = ns.stripe(10).await;
    let s2 = ns.stripe(10).await;
    assert!(s2 > s1, "stripe ids are monotonic");
    let pool = ns.pool.clone();
    let on = |d| read::stripes_on_disk(&pool, d);
    assert_eq!(
        on(102)
            .await
            .unwrap()
            .iter()
            .map(|s| s.stripe_id)
            .collect::<Vec<_>>(),
        vec![s1, s2]
    );
    let r = ns
        .ok(Op::ReplaceShard(ReplaceShardOp {
            stripe_id: s1,
            shard_index: 2,
            node_id: "node-9".into(),
            disk_id: 900,
        }))
        .await;
    assert!(matches!(r, Reply::Location(l) if l.disk_id == 900));
    assert_eq!(
        on(102)
            .await
            .unwrap()
            .iter()
            .map(|s| s.stripe_id)
            .collect::<Vec<_>>(),
        vec![s2]
    );
    assert_eq!(on(900).await.unwrap()[0].shards[2].node_id, "node-9");
    let f = ns
        .fail(Op::ReplaceShard(ReplaceShardOp {
            stripe_id: s1,
            shard_index: 7,
            node_id: "n".into(),
            disk_id: 1,
        }))
        .await;
    assert_eq!(f.errno, errno::ENOENT);
    let f = ns
        .fail(Op::CreateStripe(CreateStripeOp {
            bucket: BUCKET.into(),
            k: 5,
            m: 2,
            shard_len: 1,
            data_len: 5,
            shards: vec![],
        }))
        .await;
    assert_eq!(f.errno, errno::EINVAL);
}

#[tokio::test]
async fn buckets_users_and_access() {
    let mut ns = Ns::new().await;
    let bad = ns
        .fail(Op::CreateBucket(CreateBucketRequest {
            name: "x".into(),
            k: 5,
            m: 2,
            owner: String::new(),
        }))
        .await;
    assert_eq!(bad.code, "InvalidBucketName");
    let bad = ns
        .fail(Op::CreateBucket(CreateBucketRequest {
            name: "good-name".into(),
            k: 4,
            m: 2,
            owner: String::new(),
        }))
        .await;
    assert_eq!(bad.code, "InvalidEcPolicy");
    let dup = ns
        .fail(Op::CreateBucket(CreateBucketRequest {
            name: BUCKET.into(),
            k: 5,
            m: 2,
            owner: String::new(),
        }))
        .await;
    assert_eq!(dup.code, "BucketAlreadyOwnedByYou");
    let mut m = Mutation {
        ctx: None,
        op: Some(Op::CreateUser(CreateUserRequest {
            name: "bob".into(),
            access_key: String::new(),
            secret_key: String::new(),
            role: Role::User as i32,
        })),
    };
    let seal = kdss_meta::sealed::SecretSeal::new("a-cluster-secret-of-at-least-32-bytes");
    let plain = kdss_meta::prepare(&mut m, &seal).unwrap().unwrap();
    let Reply::CreateUser(u) = ns.ok(m.op.unwrap()).await else {
        panic!()
    };
    let bob = u.user.unwrap().access_key;
    assert!(plain.len() >= 20);
    assert!(kdss_meta::sealed::is_sealed(&u.secret_key));
    assert_eq!(seal.open(&bob, &u.secret_key).unwrap(), plain);
    let unprepared = ns
        .fail(Op::CreateUser(CreateUserRequest {
            name: "eve".into(),
            ..Default::default()
        }))
        .await;
    assert_eq!(unprepared.errno, errno::EINVAL);
    let got = read::user_by_access_key(&ns.pool, &bob)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.secret_key, u.secret_key);
    assert!(
        !read::bucket_access(&ns.pool, BUCKET, &bob, Role::User as i32)
            .await
            .unwrap()
    );
    assert!(
        read::bucket_access(&ns.pool, BUCKET, "alice", Role::User as i32)
            .await
            .unwrap(),
        "owner"
    );
    assert!(
        read::bucket_access(&ns.pool, BUCKET, "root", Role::Admin as i32)
            .await
            .unwrap()
    );
    ns.ok(Op::GrantBucket(GrantBucketRequest {
        bucket: BUCKET.into(),
        access_key: bob.clone(),
    }))
    .await;
    assert!(
        read::bucket_access(&ns.pool, BUCKET, &bob, Role::User as i32)
            .await
            .unwrap()
    );
    assert_eq!(read::list_users(&ns.pool).await.unwrap().users.len(), 1);
    // Delete: not while objects remain.
    ns.put("obj", 3).await.unwrap();
    let f = ns
        .fail(Op::DeleteBucket(DeleteBucketOp {
            name: BUCKET.into(),
        }))
        .await;
    assert_eq!(f.code, "BucketNotEmpty");
    ns.ok(Op::DeleteObject(DeleteObjectRequest {
        bucket: BUCKET.into(),
        key: "obj".into(),
    }))
    .await;
    ns.ok(Op::DeleteBucket(DeleteBucketOp {
        name: BUCKET.into(),
    }))
    .await;
    assert!(
        read::list_buckets(&ns.pool)
            .await
            .unwrap()
            .buckets
            .is_empty()
    );
    ns.ok(Op::DeleteUser(DeleteUserRequest { access_key: bob }))
        .await;
}

fn inline(ino: u64, offset: u64, data: &[u8]) -> Op {
    Op::CommitWrite(CommitWriteRequest {
        bucket: BUCKET.into(),
        ino,
        inline_data: data.to_vec(),
        inline_offset: offset,
        ..Default::default()
    })
}

async fn content(ns: &Ns, ino: u64) -> (u64, Vec<u8>, Vec<Extent>) {
    let r = read::get_extents(
        &ns.pool,
        &GetExtentsRequest {
            bucket: BUCKET.into(),
            ino,
            offset: 0,
            len: 0,
        },
    )
    .await
    .unwrap();
    (r.attr.unwrap().size, r.inline_data, r.extents)
}

#[tokio::test]
async fn inline_writes_overlay_and_refuse_what_cannot_stay_inline() {
    let mut ns = Ns::new().await;
    let ino = file(&mut ns, "small").await;
    ns.ok(inline(ino, 0, b"hello world")).await;
    ns.ok(inline(ino, 6, b"KDSS!")).await;
    ns.ok(inline(ino, 14, b"++")).await;
    let (size, data, extents) = content(&ns, ino).await;
    assert_eq!(size, 16);
    assert_eq!(data, b"hello KDSS!\0\0\0++".to_vec(), "gap zero-filled");
    assert!(extents.is_empty());

    // Past the limit: refused, nothing changed.
    let big = vec![7u8; kdss_common::limits::MAX_INLINE_BYTES];
    let f = ns.fail(inline(ino, 1, &big)).await;
    assert_eq!(f.code, kdss_common::limits::INLINE_NOT_POSSIBLE, "{f:?}");
    assert_eq!(content(&ns, ino).await.1, data);

    // A file with extents cannot take inline bytes; extents and inline in one call is invalid.
    let s = ns.stripe(10).await;
    ns.ok(commit(ino, vec![ext(20, 10, s, 0)])).await;
    let f = ns.fail(inline(ino, 0, b"x")).await;
    assert_eq!(f.code, kdss_common::limits::INLINE_NOT_POSSIBLE, "{f:?}");
    let mut both = inline(ino, 0, b"x");
    if let Op::CommitWrite(r) = &mut both {
        r.extents = vec![ext(0, 1, s, 0)];
    }
    assert_eq!(ns.fail(both).await.errno, errno::EINVAL);
    let (size, data2, extents) = content(&ns, ino).await;
    assert_eq!(
        (size, data2, extents.len()),
        (30, data, 1),
        "inline stays the base layer"
    );
}

#[tokio::test]
async fn replace_shard_moves_only_the_writers_own_uncommitted_stripe() {
    let mut ns = Ns::new().await;
    let replace = |stripe_id| {
        Op::ReplaceShard(ReplaceShardOp {
            stripe_id,
            shard_index: 0,
            node_id: "node-9".into(),
            disk_id: 900,
        })
    };
    let placed = |ns: &Ns, s| {
        let pool = ns.pool.clone();
        async move { read::stripe_info(&pool, None, s).await.unwrap().shards[0].disk_id }
    };
    // Committed (an object names it): refused, nothing moved.
    let info = ns.put("obj", 10).await.unwrap();
    assert_eq!(info.size, 10);
    let committed = read::stripes_on_disk(&ns.pool, 100).await.unwrap()[0].stripe_id;
    let before = placed(&ns, committed).await;
    let f = ns.fail(replace(committed)).await;
    assert_eq!(
        (f.errno, f.code.as_str()),
        (errno::EPERM, "StripeCommitted")
    );
    assert_eq!(placed(&ns, committed).await, before);
    // Uncommitted, but another user's: refused.
    let s = ns.stripe(10).await;
    ns.caller = "bob".into();
    let f = ns.fail(replace(s)).await;
    assert_eq!(
        (f.errno, f.code.as_str()),
        (errno::EPERM, "NotStripeWriter")
    );
    // The writer itself, before committing: moved.
    ns.caller = "alice".into();
    assert!(matches!(ns.ok(replace(s)).await, Reply::Location(l) if l.disk_id == 900));
    assert_eq!(placed(&ns, s).await, 900);
}
