//! The recycle bin and the replicated half of the GC: what a delete puts in the bin,
//! restore (and its conflicts), purge selections, shared stripes, open files, stale
//! stripes, forgetting shards, and upgrading a version-1 database.

mod common;

use common::{BUCKET, Ns};
use kdss_meta::{gc, read, trash};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::*;
use kdss_proto::storage::ShardKey;

async fn bin(ns: &Ns) -> Vec<TrashItem> {
    trash::list(&ns.pool, &ListTrashRequest::default(), 0)
        .await
        .unwrap()
        .items
}

async fn delete(ns: &mut Ns, key: &str) {
    ns.ok(Op::DeleteObject(DeleteObjectRequest {
        bucket: BUCKET.into(),
        key: key.into(),
    }))
    .await;
}

fn restore(id: u64) -> Op {
    Op::RestoreTrash(RestoreTrashRequest { id })
}

async fn stripe_of(ns: &Ns, key: &str) -> u64 {
    read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: key.into(),
            with_extents: true,
        },
    )
    .await
    .unwrap()
    .extents[0]
        .stripe_id
}

#[tokio::test]
async fn delete_bins_and_restore_brings_the_same_content_back() {
    let mut ns = Ns::new().await;
    ns.put("a/b/obj", 100).await.unwrap();
    let s = stripe_of(&ns, "a/b/obj").await;
    let t0 = ns.now;
    delete(&mut ns, "a/b/obj").await;
    assert!(ns.stat("/a").await.is_none(), "implicit parents vanish");
    let items = bin(&ns).await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        (
            items[0].bucket.as_str(),
            items[0].path.as_str(),
            items[0].size
        ),
        (BUCKET, "a/b/obj", 100)
    );
    assert!(items[0].deleted_ns > t0);
    assert_eq!(ns.refcount(s).await, (1, false), "the bin holds the stripe");
    let r = ns.ok(restore(items[0].id)).await;
    assert!(matches!(r, Reply::RestoreTrash(ref r) if r.path == "a/b/obj"));
    assert_eq!(stripe_of(&ns, "a/b/obj").await, s, "same extents");
    assert_eq!(ns.stat("/a/b/obj").await.unwrap().nlink, 1);
    assert!(bin(&ns).await.is_empty());
    let again = ns.fail(restore(items[0].id)).await;
    assert_eq!(again.code, "NoSuchTrashItem");
}

#[tokio::test]
async fn restore_refuses_a_taken_path_or_a_file_parent_and_changes_nothing() {
    let mut ns = Ns::new().await;
    ns.put("k", 10).await.unwrap();
    ns.put("k", 20).await.unwrap(); // the 10-byte version goes to the bin
    let items = bin(&ns).await;
    assert_eq!((items.len(), items[0].size), (1, 10));
    let before = ns.dump().await;
    let f = ns.fail(restore(items[0].id)).await;
    assert_eq!(f.code, "RestoreConflict");
    assert!(f.message.contains("taken"), "{}", f.message);
    assert_eq!(ns.dump().await, before, "nothing changed");
    // A parent that became a file.
    ns.put("d/x", 5).await.unwrap();
    delete(&mut ns, "d/x").await;
    ns.put("d", 1).await.unwrap();
    let item = bin(&ns)
        .await
        .into_iter()
        .find(|i| i.path == "d/x")
        .unwrap();
    let f = ns.fail(restore(item.id)).await;
    assert_eq!(f.code, "RestoreConflict");
    // Move the blocker away: the restore goes through.
    delete(&mut ns, "d").await;
    ns.ok(restore(item.id)).await;
    assert_eq!(ns.stat("/d/x").await.unwrap().size, 5);
}

#[tokio::test]
async fn shared_stripes_stay_until_the_last_reference_is_purged() {
    let mut ns = Ns::new().await;
    ns.put("src", 50).await.unwrap();
    let s = stripe_of(&ns, "src").await;
    ns.ok(Op::CopyObject(CopyObjectRequest {
        src_bucket: BUCKET.into(),
        src_key: "src".into(),
        dst_bucket: BUCKET.into(),
        dst_key: "dst".into(),
        ..Default::default()
    }))
    .await;
    delete(&mut ns, "src").await;
    let id = bin(&ns).await[0].id;
    ns.ok(Op::PurgeTrash(PurgeTrashRequest {
        ids: vec![id],
        ..Default::default()
    }))
    .await;
    assert_eq!(ns.refcount(s).await, (1, false), "dst still references it");
    assert_eq!(gc::pending(&ns.pool).await.unwrap().stripes, 0);
    delete(&mut ns, "dst").await;
    assert_eq!(ns.purge_all().await, (1, 50));
    assert_eq!(ns.refcount(s).await, (0, true));
    let p = gc::pending(&ns.pool).await.unwrap();
    assert_eq!((p.stripes, p.shards), (1, 7));
}

#[tokio::test]
async fn an_open_file_outlives_its_purge_until_the_last_release() {
    let mut ns = Ns::new().await;
    ns.put("f", 30).await.unwrap();
    let s = stripe_of(&ns, "f").await;
    let ino = ns.stat("/f").await.unwrap().ino;
    let h = match ns
        .ok(Op::Open(OpenRequest {
            bucket: BUCKET.into(),
            ino,
            session: "s".into(),
            write: false,
        }))
        .await
    {
        Reply::Open(o) => o.handle,
        other => panic!("{other:?}"),
    };
    let root = ns.root().await;
    ns.ok(Op::Unlink(UnlinkRequest {
        bucket: BUCKET.into(),
        parent: root,
        name: "f".into(),
    }))
    .await;
    assert_eq!(bin(&ns).await[0].path, "f");
    ns.purge_all().await;
    assert!(bin(&ns).await.is_empty());
    assert_eq!(ns.refcount(s).await, (1, false), "still open");
    ns.ok(Op::Release(ReleaseRequest {
        bucket: BUCKET.into(),
        handle: h,
        session: "s".into(),
    }))
    .await;
    assert_eq!(ns.refcount(s).await, (0, true), "freed at the last release");
}

#[tokio::test]
async fn purge_selects_by_age_and_bucket_and_refuses_an_empty_selection() {
    let mut ns = Ns::new().await;
    ns.put("old", 1).await.unwrap();
    delete(&mut ns, "old").await;
    let cut = ns.now + 1;
    ns.put("new", 2).await.unwrap();
    delete(&mut ns, "new").await;
    let f = ns.fail(Op::PurgeTrash(PurgeTrashRequest::default())).await;
    assert_eq!(f.code, "InvalidArgument");
    let other = ns
        .ok(Op::PurgeTrash(PurgeTrashRequest {
            bucket: "nope".into(),
            all: true,
            ..Default::default()
        }))
        .await;
    assert!(matches!(other, Reply::PurgeTrash(p) if p.items == 0));
    let r = ns
        .ok(Op::PurgeTrash(PurgeTrashRequest {
            deleted_before_ns: cut,
            ..Default::default()
        }))
        .await;
    assert!(matches!(r, Reply::PurgeTrash(p) if p.items == 1 && p.bytes == 1));
    let left = bin(&ns).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].path, "new");
    let listed = trash::list(
        &ns.pool,
        &ListTrashRequest {
            bucket: BUCKET.into(),
            ..Default::default()
        },
        3_600_000_000_000,
    )
    .await
    .unwrap();
    assert_eq!(
        listed.items[0].purge_due_ns,
        left[0].deleted_ns + 3_600_000_000_000
    );
}

#[tokio::test]
async fn truncate_releases_at_once_and_abort_too() {
    let mut ns = Ns::new().await;
    ns.put("f", 100).await.unwrap();
    let s = stripe_of(&ns, "f").await;
    let ino = ns.stat("/f").await.unwrap().ino;
    ns.ok(Op::SetAttr(SetAttrRequest {
        bucket: BUCKET.into(),
        ino,
        size: Some(0),
        ..Default::default()
    }))
    .await;
    assert_eq!(
        ns.refcount(s).await,
        (0, true),
        "not restorable: straight to GC"
    );
    assert!(bin(&ns).await.is_empty());
}

#[tokio::test]
async fn forget_shards_only_touches_garbage_and_drops_the_stripe_with_its_last_shard() {
    let mut ns = Ns::new().await;
    ns.put("live", 10).await.unwrap();
    let live = stripe_of(&ns, "live").await;
    ns.put("dead", 10).await.unwrap();
    let dead = stripe_of(&ns, "dead").await;
    delete(&mut ns, "dead").await;
    ns.purge_all().await;
    let keys = |s: u64, n: u32| {
        (0..n)
            .map(|i| ShardKey {
                stripe_id: s,
                shard_index: i,
            })
            .collect::<Vec<_>>()
    };
    ns.ok(Op::ForgetShards(ForgetShardsOp {
        shards: keys(live, 7),
    }))
    .await;
    assert_eq!(ns.refcount(live).await, (1, false));
    let info = read::stripes_on_disk(&ns.pool, 1).await.unwrap();
    assert!(info.iter().all(|s| s.shards.len() == 7));
    ns.ok(Op::ForgetShards(ForgetShardsOp {
        shards: keys(dead, 3),
    }))
    .await;
    assert_eq!(gc::pending(&ns.pool).await.unwrap().shards, 4);
    for _ in 0..2 {
        ns.ok(Op::ForgetShards(ForgetShardsOp {
            shards: keys(dead, 7),
        }))
        .await;
    }
    assert!(read::stripe_state(&ns.pool, dead).await.unwrap().is_none());
    assert_eq!(gc::pending(&ns.pool).await.unwrap(), gc::Pending::default());
}

#[tokio::test]
async fn stale_uncommitted_stripes_expire_and_cannot_be_committed_after() {
    let mut ns = Ns::new().await;
    let s = ns.stripe(10).await;
    let young = ns.stripe(10).await;
    let cut = ns.now;
    assert_eq!(gc::pending(&ns.pool).await.unwrap().writing, 2);
    ns.ok(Op::ExpireStaleStripes(ExpireStaleStripesOp {
        created_before_ns: cut,
    }))
    .await;
    assert_eq!(ns.refcount(s).await, (0, true));
    assert_eq!(ns.refcount(young).await, (0, false));
    let r = ns
        .fail(Op::PutObject(PutObjectRequest {
            bucket: BUCKET.into(),
            key: "late".into(),
            size: 10,
            extents: vec![Extent {
                file_offset: 0,
                len: 10,
                stripe_id: s,
                stripe_offset: 0,
            }],
            ..Default::default()
        }))
        .await;
    assert_eq!(r.code, "InvalidStripe");
}

#[tokio::test]
async fn a_version_1_database_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(include_str!("../src/schema/0001_init.sql"))
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::raw_sql("PRAGMA user_version = 1; INSERT INTO gc_stripes VALUES (7, 'b', 1)")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let pool = kdss_meta::open(&path).await.unwrap();
    let v: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(v, 5);
    assert_eq!(trash::totals(&pool).await.unwrap(), (0, 0));
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM gc_stripes")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "existing rows survive the upgrade");
}

#[tokio::test]
async fn the_inventory_check_names_only_shards_nothing_references() {
    let mut ns = Ns::new().await;
    ns.put("live", 100).await.unwrap();
    let live = stripe_of(&ns, "live").await;
    let writing = ns.stripe(10).await;
    ns.put("gone", 100).await.unwrap();
    let gone = stripe_of(&ns, "gone").await;
    delete(&mut ns, "gone").await;
    ns.purge_all().await;
    // Shard 0 of every stripe sits on node-0 / disk 100 (the test layout).
    let listed = [
        (live, 0),        // referenced right here
        (live, 1),        // mapped to node-1 / disk 101, not here: a stray copy
        (writing, 1),     // a writer may still be moving it: left alone
        (gone, 0),        // garbage, still mapped here: the mapped collector's work
        (gone, 3),        // garbage and not mapped here
        (live + 1000, 0), // a stripe id this replica never allocated: left alone
    ];
    let mut orphans = gc::unreferenced(&ns.pool, "node-0", 100, &listed)
        .await
        .unwrap();
    orphans.sort_unstable();
    let mut want = vec![(live, 1), (gone, 3)];
    want.sort_unstable();
    assert_eq!(orphans, want);
    // Once the garbage stripe is forgotten altogether, its leftover copy is unreferenced too.
    ns.ok(Op::ForgetShards(ForgetShardsOp {
        shards: (0..7)
            .map(|i| ShardKey {
                stripe_id: gone,
                shard_index: i,
            })
            .collect(),
    }))
    .await;
    assert!(read::stripe_state(&ns.pool, gone).await.unwrap().is_none());
    let orphans = gc::unreferenced(&ns.pool, "node-0", 100, &[(gone, 0)])
        .await
        .unwrap();
    assert_eq!(orphans, vec![(gone, 0)]);
}
