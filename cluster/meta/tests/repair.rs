//! The replicated half of repair: the damaged-stripe queue and its priority, and the
//! conditional MoveShard that commits a rebuilt shard only onto an unchanged stripe.

mod common;

use common::{BUCKET, Ns};
use kdss_common::rpc_error::errno;
use kdss_meta::{read, repair};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::*;

fn mv(stripe_id: u64, shard_index: u32, from: (&str, u64), to: (&str, u64)) -> Op {
    Op::MoveShard(MoveShardOp {
        stripe_id,
        shard_index,
        from_node: from.0.into(),
        from_disk: from.1,
        to_node: to.0.into(),
        to_disk: to.1,
    })
}

async fn put(ns: &mut Ns, key: &str) -> u64 {
    let o = ns.put(key, 1000).await.unwrap();
    let info = read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: o.key.clone(),
            with_extents: true,
        },
    )
    .await
    .unwrap();
    info.stripes[0].stripe_id
}

#[tokio::test]
async fn the_queue_holds_committed_live_stripes_most_damaged_first() {
    let mut ns = Ns::new().await;
    let a = put(&mut ns, "a").await;
    let b = put(&mut ns, "b").await;
    let writing = ns.stripe(1000).await; // allocated, never committed: its writer's business
    // Stripe a keeps only one shard on the damaged disks (100, 101).
    ns.ok(mv(a, 1, ("node-1", 101), ("node-9", 200))).await;
    let q = repair::damaged(&ns.pool, &[100, 101]).await.unwrap();
    let ids: Vec<(u64, u32)> = q.iter().map(|d| (d.stripe_id, d.shards)).collect();
    assert_eq!(ids, vec![(b, 2), (a, 1)], "two shards lost before one");
    assert!(q.iter().all(|d| d.stripe_id != writing));
    assert_eq!(q[0].m, 2);
    assert_eq!(q[0].shard_len, 200);
    assert!(repair::damaged(&ns.pool, &[]).await.unwrap().is_empty());
    assert!(repair::damaged(&ns.pool, &[999]).await.unwrap().is_empty());

    // Deleted and purged: released to the collector, no longer repair's.
    ns.ok(Op::DeleteObject(DeleteObjectRequest {
        bucket: BUCKET.into(),
        key: "b".into(),
    }))
    .await;
    ns.purge_all().await;
    let q = repair::damaged(&ns.pool, &[100, 101]).await.unwrap();
    assert_eq!(q.iter().map(|d| d.stripe_id).collect::<Vec<_>>(), vec![a]);
}

#[tokio::test]
async fn a_move_commits_only_onto_the_stripe_the_job_saw() {
    let mut ns = Ns::new().await;
    let s = put(&mut ns, "obj").await;
    ns.ok(mv(s, 0, ("node-0", 100), ("node-7", 300))).await;
    let info = read::stripe_info(&ns.pool, None, s).await.unwrap();
    assert_eq!(
        (info.shards[0].node_id.as_str(), info.shards[0].disk_id),
        ("node-7", 300)
    );
    let per_disk = repair::shards_per_disk(&ns.pool).await.unwrap();
    assert!(per_disk.contains(&(300, 1)));
    assert!(!per_disk.iter().any(|(d, _)| *d == 100), "{per_disk:?}");

    let w = ns.stripe(1000).await;
    // A second job that saw the old location: refused, nothing changes.
    let before = common::dump(&ns.pool).await;
    let f = ns.fail(mv(s, 0, ("node-0", 100), ("node-8", 400))).await;
    assert_eq!(f.errno, errno::ESTALE, "{f:?}");
    // Onto a disk that already holds a shard of the stripe: refused (spread).
    let f = ns.fail(mv(s, 0, ("node-7", 300), ("node-1", 101))).await;
    assert_eq!(f.errno, errno::ESTALE, "{f:?}");
    // A stripe still being written is not repair's to move.
    let f = ns.fail(mv(w, 2, ("node-2", 102), ("node-8", 400))).await;
    assert_eq!(f.errno, errno::ESTALE, "{f:?}");
    assert_eq!(common::dump(&ns.pool).await, before);

    // Released to the collector: refused.
    ns.ok(Op::DeleteObject(DeleteObjectRequest {
        bucket: BUCKET.into(),
        key: "obj".into(),
    }))
    .await;
    ns.purge_all().await;
    let f = ns.fail(mv(s, 3, ("node-3", 103), ("node-8", 400))).await;
    assert_eq!(f.errno, errno::ESTALE, "{f:?}");
}

#[tokio::test]
async fn settings_are_set_read_and_removed() {
    let mut ns = Ns::new().await;
    let set = |v: &str| {
        Op::SetSetting(SetSettingOp {
            key: "repair.max_bandwidth".into(),
            value: v.into(),
        })
    };
    assert_eq!(
        repair::setting(&ns.pool, "repair.max_bandwidth")
            .await
            .unwrap(),
        None
    );
    ns.ok(set("1048576")).await;
    assert_eq!(
        repair::setting(&ns.pool, "repair.max_bandwidth")
            .await
            .unwrap()
            .as_deref(),
        Some("1048576")
    );
    ns.ok(set("")).await;
    assert_eq!(
        repair::setting(&ns.pool, "repair.max_bandwidth")
            .await
            .unwrap(),
        None
    );
    let f = ns
        .fail(Op::SetSetting(SetSettingOp {
            key: String::new(),
            value: "1".into(),
        }))
        .await;
    assert_eq!(f.errno, errno::EINVAL);
}
