//! Applying the same mutation log to two fresh databases gives identical states and
//! replies (what Raft replication relies on), including a file-backed one via `open`.

mod common;
use common::{BUCKET, Ns, dump};
use kdss_meta::apply;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::*;

async fn workload(ns: &mut Ns) {
    for i in 0..20 {
        let _ = ns
            .put(&format!("dir{}/obj{i}", i % 3), (i * 7 + 1) as u64)
            .await;
    }
    ns.put("dir0/", 0).await.unwrap();
    let mut meta = ObjectMeta::default();
    for k in ["z", "a", "m", "q"] {
        meta.user.insert(k.into(), k.repeat(3));
        meta.checksums.insert(k.to_uppercase(), "x".into());
    }
    ns.ok(Op::PutObject(PutObjectRequest {
        bucket: BUCKET.into(),
        key: "meta".into(),
        meta: Some(meta),
        ..Default::default()
    }))
    .await;
    let (parent, name) = ns.split("/dir1/obj1").await;
    let root = ns.root().await;
    ns.ok(Op::Rename(RenameRequest {
        bucket: BUCKET.into(),
        parent,
        name,
        new_parent: root,
        new_name: "moved".into(),
        flags: 0,
        ..Default::default()
    }))
    .await;
    ns.ok(Op::DeleteObjects(DeleteObjectsRequest {
        bucket: BUCKET.into(),
        keys: vec!["dir2/obj2".into(), "dir2/obj5".into()],
    }))
    .await;
    ns.fail(Op::Mkdir(MkdirRequest {
        bucket: BUCKET.into(),
        parent: root,
        name: "moved".into(),
        mode: 0o755,
        uid: 0,
        gid: 0,
    }))
    .await;
    let ino = ns.stat("/moved").await.unwrap().ino;
    ns.ok(Op::Open(OpenRequest {
        bucket: BUCKET.into(),
        ino,
        session: "s".into(),
        write: true,
    }))
    .await;
    let s = ns.stripe(4).await;
    ns.ok(Op::CommitWrite(CommitWriteRequest {
        bucket: BUCKET.into(),
        ino,
        extents: vec![Extent {
            file_offset: 2,
            len: 4,
            stripe_id: s,
            stripe_offset: 0,
        }],
        ..Default::default()
    }))
    .await;
    ns.ok(Op::SetXattr(SetXattrRequest {
        bucket: BUCKET.into(),
        ino,
        name: "user.k".into(),
        value: vec![1, 2],
        flags: 0,
    }))
    .await;
    let Some(kdss_proto::master::mutation_reply::Reply::CreateMultipart(u)) = ns
        .run(Op::CreateMultipart(CreateMultipartRequest {
            bucket: BUCKET.into(),
            key: "mp".into(),
            meta: None,
        }))
        .await
        .reply
    else {
        panic!()
    };
    let _ = u;
    ns.ok(Op::ExpireSessions(ExpireSessionsOp { now_ns: 0 }))
        .await;
}

async fn replay(pool: &sqlx::SqlitePool, log: &[Mutation]) -> Vec<MutationReply> {
    let mut c = pool.acquire().await.unwrap();
    let mut replies = Vec::new();
    for m in log {
        replies.push(apply(&mut c, m).await.unwrap());
    }
    replies
}

#[tokio::test]
async fn same_log_same_state() {
    let mut ns = Ns::new().await;
    workload(&mut ns).await;
    let log = ns.log.clone();

    let a = kdss_meta::open_memory().await.unwrap();
    let ra = replay(&a, &log).await;
    let dir = tempfile::tempdir().unwrap();
    let b = kdss_meta::open(&dir.path().join("meta.db")).await.unwrap();
    // The master applies a batch of entries inside one transaction.
    let mut tx = b.begin().await.unwrap();
    let mut rb = Vec::new();
    for m in &log {
        rb.push(apply(&mut tx, m).await.unwrap());
    }
    tx.commit().await.unwrap();

    assert_eq!(ra, rb, "replies are identical");
    assert!(
        ra.iter().any(|r| r.failure.is_some()),
        "the log holds a failure too"
    );
    let (da, db, d0) = (dump(&a).await, dump(&b).await, ns.dump().await);
    assert_eq!(da, db);
    assert_eq!(da, d0);
    assert!(
        da.len() > 50,
        "the workload produced real state ({} rows)",
        da.len()
    );
}
