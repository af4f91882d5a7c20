//! Two things the kernel asks of a FUSE filesystem that the namespace answers: the ".."
//! of a directory known only by number (reconnecting a directory's file handle after a
//! remount), and rename with RENAME_WHITEOUT (overlayfs on top of ksfs).

mod common;

use common::{BUCKET, Ns};
use kdss_meta::read;
use kdss_meta::rename::{RENAME_EXCHANGE, RENAME_NOREPLACE, RENAME_WHITEOUT};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::*;

async fn mkdir(ns: &mut Ns, parent: u64, name: &str) -> u64 {
    let r = ns
        .ok(Op::Mkdir(MkdirRequest {
            bucket: BUCKET.into(),
            parent,
            name: name.into(),
            mode: 0o755,
            uid: 0,
            gid: 0,
        }))
        .await;
    match r {
        Reply::Attr(a) => a.attr.unwrap().ino,
        other => panic!("mkdir replied {other:?}"),
    }
}

async fn create(ns: &mut Ns, parent: u64, name: &str) -> u64 {
    let r = ns
        .ok(Op::Create(CreateRequest {
            bucket: BUCKET.into(),
            parent,
            name: name.into(),
            kind: FileKind::Regular as i32,
            mode: 0o644,
            uid: 0,
            gid: 0,
            rdev: 0,
            exclusive: true,
        }))
        .await;
    match r {
        Reply::Attr(a) => a.attr.unwrap().ino,
        other => panic!("create replied {other:?}"),
    }
}

async fn dotdot(ns: &Ns, dir: u64) -> Result<u64, String> {
    read::lookup(
        &ns.pool,
        &LookupRequest {
            bucket: BUCKET.into(),
            parent: dir,
            name: "..".into(),
        },
    )
    .await
    .map(|r| r.attr.unwrap().ino)
    .map_err(|e| e.to_string())
}

fn rename(parent: u64, name: &str, new_parent: u64, new_name: &str, flags: u32) -> Op {
    Op::Rename(RenameRequest {
        bucket: BUCKET.into(),
        parent,
        name: name.into(),
        new_parent,
        new_name: new_name.into(),
        flags,
        whiteout_uid: 1234,
        whiteout_gid: 5678,
    })
}

#[tokio::test]
async fn dotdot_of_a_directory_is_its_parent_and_follows_a_move() {
    let mut ns = Ns::new().await;
    let root = ns.root().await;
    let a = mkdir(&mut ns, root, "a").await;
    let b = mkdir(&mut ns, a, "b").await;
    let c = mkdir(&mut ns, root, "c").await;
    assert_eq!(dotdot(&ns, b).await.unwrap(), a);
    assert_eq!(dotdot(&ns, a).await.unwrap(), root);
    assert_eq!(
        dotdot(&ns, root).await.unwrap(),
        root,
        "the root is its own parent"
    );

    ns.ok(rename(a, "b", c, "b2", 0)).await;
    assert_eq!(
        dotdot(&ns, b).await.unwrap(),
        c,
        "a moved directory has a new parent"
    );

    // Only directories have a "..", and a removed one has none.
    let f = create(&mut ns, root, "f").await;
    assert!(dotdot(&ns, f).await.unwrap_err().contains("NotADirectory"));
    ns.ok(Op::Rmdir(UnlinkRequest {
        bucket: BUCKET.into(),
        parent: c,
        name: "b2".into(),
    }))
    .await;
    assert!(dotdot(&ns, b).await.is_err());
}

#[tokio::test]
async fn rename_whiteout_leaves_a_0_0_char_device_owned_by_the_caller() {
    let mut ns = Ns::new().await;
    let root = ns.root().await;
    let d = mkdir(&mut ns, root, "d").await;
    let f = create(&mut ns, d, "f").await;
    create(&mut ns, root, "old").await;

    // Over an existing file, into another directory.
    ns.ok(rename(d, "f", root, "old", RENAME_WHITEOUT)).await;
    assert_eq!(ns.stat("/old").await.unwrap().ino, f);
    let w = ns.stat("/d/f").await.expect("a whiteout at the old name");
    assert_eq!(w.kind, FileKind::CharDevice as i32);
    assert_eq!((w.rdev, w.mode & 0o7777), (0, 0));
    assert_eq!((w.uid, w.gid, w.nlink), (1234, 5678, 1));

    // A directory moves too; its old parent loses the link, the whiteout adds none.
    let sub = mkdir(&mut ns, d, "sub").await;
    let before = ns.stat("/d").await.unwrap().nlink;
    ns.ok(rename(
        d,
        "sub",
        root,
        "sub",
        RENAME_WHITEOUT | RENAME_NOREPLACE,
    ))
    .await;
    assert_eq!(ns.stat("/sub").await.unwrap().ino, sub);
    assert_eq!(ns.stat("/d").await.unwrap().nlink, before - 1);
    let w = ns.stat("/d/sub").await.unwrap();
    assert_eq!(w.kind, FileKind::CharDevice as i32);
}

#[tokio::test]
async fn rename_whiteout_refusals_change_nothing() {
    let mut ns = Ns::new().await;
    let root = ns.root().await;
    create(&mut ns, root, "a").await;
    create(&mut ns, root, "b").await;
    let before = common::dump(&ns.pool).await;

    let f = ns
        .fail(rename(
            root,
            "a",
            root,
            "b",
            RENAME_WHITEOUT | RENAME_EXCHANGE,
        ))
        .await;
    assert_eq!(f.errno, 22, "whiteout with exchange is EINVAL: {f:?}");
    let f = ns
        .fail(rename(
            root,
            "a",
            root,
            "b",
            RENAME_WHITEOUT | RENAME_NOREPLACE,
        ))
        .await;
    assert_eq!(
        f.errno, 17,
        "noreplace over an existing name is EEXIST: {f:?}"
    );
    let f = ns
        .fail(rename(root, "zz", root, "c", RENAME_WHITEOUT))
        .await;
    assert_eq!(f.errno, 2, "a missing source is ENOENT: {f:?}");
    assert_eq!(common::dump(&ns.pool).await, before);
}
