//! The S3 view: key validation, implicit/explicit directories, conflicts, listing order
//! (with a property test against sorting the keys), conditional PUT, copy.

mod common;
use common::{BUCKET, Ns};
use kdss_meta::read;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::*;
use proptest::prelude::*;

async fn list(
    ns: &Ns,
    prefix: &str,
    delimiter: &str,
    start_after: &str,
    max_keys: u32,
) -> ListObjectsReply {
    read::list_objects(
        &ns.pool,
        &ListObjectsRequest {
            bucket: BUCKET.into(),
            prefix: prefix.into(),
            delimiter: delimiter.into(),
            start_after: start_after.into(),
            max_keys,
        },
    )
    .await
    .unwrap()
}

/// Every row except the stripes the test helper allocates before each PUT.
async fn data_rows(ns: &Ns) -> Vec<String> {
    ns.dump()
        .await
        .into_iter()
        .filter(|r| !r.starts_with("stripe") && !r.starts_with("sqlite_sequence: 'stripes'"))
        .collect()
}

fn keys(r: &ListObjectsReply) -> Vec<&str> {
    r.objects.iter().map(|o| o.key.as_str()).collect()
}

async fn delete(ns: &mut Ns, key: &str) -> bool {
    match ns
        .ok(Op::DeleteObject(DeleteObjectRequest {
            bucket: BUCKET.into(),
            key: key.into(),
        }))
        .await
    {
        kdss_proto::master::mutation_reply::Reply::DeleteObject(d) => d.existed,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn keys_that_cannot_be_paths_change_nothing() {
    let mut ns = Ns::new().await;
    let before = data_rows(&ns).await;
    let long_seg = format!("a/{}", "x".repeat(256));
    for (key, code) in [
        ("a//b", "InvalidArgument"),
        ("/a", "InvalidArgument"),
        ("a/./b", "InvalidArgument"),
        ("a/../b", "InvalidArgument"),
        ("a\0b", "InvalidArgument"),
        (long_seg.as_str(), "KeyTooLongError"),
    ] {
        let f = ns.put(key, 10).await.expect_err(key);
        assert_eq!(f.code, code, "{key:?}");
    }
    assert_eq!(before, data_rows(&ns).await, "refused PUTs change nothing");
}

#[tokio::test]
async fn listing_is_in_byte_order_not_tree_order() {
    let mut ns = Ns::new().await;
    for k in ["a/b", "a.b", "a-b", "a0", "a/c/d", "b", "é", "dir/"] {
        ns.put(k, if k.ends_with('/') { 0 } else { 3 })
            .await
            .unwrap();
    }
    let r = list(&ns, "", "", "", 1000).await;
    assert_eq!(
        keys(&r),
        vec!["a-b", "a.b", "a/b", "a/c/d", "a0", "b", "dir/", "é"]
    );
    assert!(!r.is_truncated);
    let r = list(&ns, "", "/", "", 1000).await;
    assert_eq!(keys(&r), vec!["a-b", "a.b", "a0", "b", "é"]);
    assert_eq!(r.common_prefixes, vec!["a/", "dir/"]);
    let r = list(&ns, "a/", "/", "", 1000).await;
    assert_eq!(keys(&r), vec!["a/b"]);
    assert_eq!(r.common_prefixes, vec!["a/c/"]);
    let r = list(&ns, "a", "", "a.b", 2).await;
    assert_eq!(keys(&r), vec!["a/b", "a/c/d"]);
    assert!(r.is_truncated);
    assert_eq!(r.next_marker, "a/c/d");
    let r = list(&ns, "dir/", "", "", 10).await;
    assert_eq!(keys(&r), vec!["dir/"]);
    assert!(r.objects[0].is_dir);
    let r = list(&ns, "", "", "", 0).await;
    assert!(r.objects.is_empty() && !r.is_truncated);
}

#[tokio::test]
async fn implicit_directories_vanish_explicit_ones_stay() {
    let mut ns = Ns::new().await;
    ns.put("x/y/z", 1).await.unwrap();
    ns.put("keep/", 0).await.unwrap();
    ns.put("keep/f", 1).await.unwrap();
    assert_eq!(
        keys(&list(&ns, "", "", "", 100).await),
        vec!["keep/", "keep/f", "x/y/z"]
    );
    let h = read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "x/".into(),
            with_extents: false,
        },
    )
    .await;
    assert_eq!(
        h.unwrap_err().failure().unwrap().code,
        "NoSuchKey",
        "implicit dirs are not objects"
    );
    assert!(delete(&mut ns, "x/y/z").await);
    assert!(
        ns.stat("/x").await.is_none(),
        "implicit parents vanish with their last object"
    );
    assert!(delete(&mut ns, "keep/f").await);
    assert!(
        ns.stat("/keep").await.is_some(),
        "an explicit directory stays"
    );
    assert_eq!(keys(&list(&ns, "", "", "", 100).await), vec!["keep/"]);
    assert!(delete(&mut ns, "keep/").await);
    assert!(ns.stat("/keep").await.is_none());
    assert!(!delete(&mut ns, "keep/").await);
    // DeleteObjects prunes too, and deleting a marker of a non-empty dir makes it implicit.
    ns.put("m/", 0).await.unwrap();
    ns.put("m/n/o", 1).await.unwrap();
    ns.put("m/p", 1).await.unwrap();
    assert!(delete(&mut ns, "m/").await);
    assert_eq!(
        keys(&list(&ns, "", "", "", 100).await),
        vec!["m/n/o", "m/p"]
    );
    ns.ok(Op::DeleteObjects(DeleteObjectsRequest {
        bucket: BUCKET.into(),
        keys: vec![
            "m/n/o".into(),
            "m/p".into(),
            "never".into(),
            "bad//key".into(),
        ],
    }))
    .await;
    assert!(ns.stat("/m").await.is_none());
    // Rename out of an implicit directory empties it: it vanishes.
    ns.put("r/s", 1).await.unwrap();
    let (parent, name) = ns.split("/r/s").await;
    let root = ns.root().await;
    ns.ok(Op::Rename(RenameRequest {
        bucket: BUCKET.into(),
        parent,
        name,
        new_parent: root,
        new_name: "s".into(),
        flags: 0,
        ..Default::default()
    }))
    .await;
    assert!(ns.stat("/r").await.is_none());
    assert_eq!(keys(&list(&ns, "", "", "", 100).await), vec!["s"]);
}

#[tokio::test]
async fn file_and_directory_conflicts() {
    let mut ns = Ns::new().await;
    ns.put("a", 1).await.unwrap();
    ns.put("d/x", 1).await.unwrap();
    let before = data_rows(&ns).await;
    assert_eq!(ns.put("a/b", 1).await.unwrap_err().code, "ObjectConflict");
    assert_eq!(ns.put("a/", 0).await.unwrap_err().code, "ObjectConflict");
    assert_eq!(ns.put("d", 1).await.unwrap_err().code, "ObjectConflict");
    assert_eq!(
        ns.put("e/", 5).await.unwrap_err().code,
        "InvalidArgument",
        "a dir key takes no body"
    );
    assert_eq!(before, data_rows(&ns).await, "refused PUTs change nothing");
    // `d/` on an implicit directory makes it explicit.
    ns.put("d/", 0).await.unwrap();
    assert_eq!(keys(&list(&ns, "d", "", "", 10).await), vec!["d/", "d/x"]);
}

#[tokio::test]
async fn put_replaces_atomically_and_releases_old_stripes() {
    let mut ns = Ns::new().await;
    let v1 = ns.put("k", 10).await.unwrap();
    let h = read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "k".into(),
            with_extents: true,
        },
    )
    .await
    .unwrap();
    let s1 = h.extents[0].stripe_id;
    assert_eq!(h.stripes.len(), 1);
    assert_eq!(h.stripes[0].shards.len(), 7);
    let v2 = ns.put("k", 20).await.unwrap();
    assert_ne!(v1.ino, v2.ino);
    assert_eq!(v2.size, 20);
    assert_eq!(
        ns.refcount(s1).await,
        (1, false),
        "the replaced version waits in the recycle bin"
    );
    assert_eq!(ns.purge_all().await, (1, 10));
    assert_eq!(ns.refcount(s1).await, (0, true));
    // Conditional writes.
    let put = |if_match: Option<&str>, star: bool| {
        Op::PutObject(PutObjectRequest {
            bucket: BUCKET.into(),
            key: "k".into(),
            size: 0,
            etag: "e".into(),
            if_match: if_match.map(String::from),
            if_none_match_star: star,
            ..Default::default()
        })
    };
    assert_eq!(ns.fail(put(None, true)).await.code, "PreconditionFailed");
    assert_eq!(
        ns.fail(put(Some("\"nope\""), false)).await.code,
        "PreconditionFailed"
    );
    ns.ok(put(Some(&v2.etag), false)).await;
}

#[tokio::test]
async fn head_object_metadata_and_copy() {
    let mut ns = Ns::new().await;
    let s = ns.stripe(5).await;
    let mut meta = ObjectMeta {
        content_type: "text/plain".into(),
        ..Default::default()
    };
    meta.user.insert("color".into(), "blue".into());
    meta.checksums.insert("CRC32C".into(), "AAAAAA==".into());
    ns.ok(Op::PutObject(PutObjectRequest {
        bucket: BUCKET.into(),
        key: "src".into(),
        extents: vec![Extent {
            file_offset: 0,
            len: 5,
            stripe_id: s,
            stripe_offset: 0,
        }],
        size: 5,
        etag: "\"0123456789abcdef0123456789abcdef\"".into(),
        meta: Some(meta.clone()),
        ..Default::default()
    }))
    .await;
    let head = |key: &str| HeadObjectRequest {
        bucket: BUCKET.into(),
        key: key.into(),
        with_extents: true,
    };
    let h = read::head_object(&ns.pool, &head("src")).await.unwrap();
    let info = h.info.unwrap();
    assert_eq!(info.etag, "\"0123456789abcdef0123456789abcdef\"");
    assert_eq!(info.meta.unwrap(), meta);
    let copy = |replace: bool| {
        Op::CopyObject(CopyObjectRequest {
            src_bucket: BUCKET.into(),
            src_key: "src".into(),
            dst_bucket: BUCKET.into(),
            dst_key: "dst/copy".into(),
            replace_meta: replace,
            meta: Some(ObjectMeta {
                content_type: "image/png".into(),
                ..Default::default()
            }),
        })
    };
    ns.ok(copy(false)).await;
    assert_eq!(
        ns.refcount(s).await,
        (2, false),
        "the copy shares the stripe"
    );
    let c = read::head_object(&ns.pool, &head("dst/copy"))
        .await
        .unwrap();
    assert_eq!(c.extents, h.extents);
    assert_eq!(
        c.info.as_ref().unwrap().meta.as_ref().unwrap().user["color"],
        "blue"
    );
    ns.ok(copy(true)).await;
    let c = read::head_object(&ns.pool, &head("dst/copy"))
        .await
        .unwrap();
    assert_eq!(c.info.unwrap().meta.unwrap().content_type, "image/png");
    assert_eq!(
        ns.refcount(s).await,
        (3, false),
        "the replaced first copy waits in the bin"
    );
    assert!(delete(&mut ns, "src").await);
    assert_eq!(ns.refcount(s).await, (3, false), "the bin holds src");
    assert!(delete(&mut ns, "dst/copy").await);
    assert_eq!(ns.refcount(s).await, (3, false), "every version is binned");
    assert_eq!(ns.purge_all().await.0, 3);
    assert_eq!(ns.refcount(s).await, (0, true));
}

#[tokio::test]
async fn ksfs_written_files_get_a_stable_derived_etag() {
    let mut ns = Ns::new().await;
    let root = ns.root().await;
    let kdss_proto::master::mutation_reply::Reply::Attr(a) = ns
        .ok(Op::Create(CreateRequest {
            bucket: BUCKET.into(),
            parent: root,
            name: "f".into(),
            kind: 1,
            mode: 0o644,
            ..Default::default()
        }))
        .await
    else {
        panic!()
    };
    let ino = a.attr.unwrap().ino;
    let req = HeadObjectRequest {
        bucket: BUCKET.into(),
        key: "f".into(),
        with_extents: false,
    };
    let e1 = read::head_object(&ns.pool, &req)
        .await
        .unwrap()
        .info
        .unwrap()
        .etag;
    assert_eq!(
        e1,
        read::head_object(&ns.pool, &req)
            .await
            .unwrap()
            .info
            .unwrap()
            .etag
    );
    assert!(e1.ends_with("-1\""), "{e1}");
    let s = ns.stripe(4).await;
    ns.ok(Op::CommitWrite(CommitWriteRequest {
        bucket: BUCKET.into(),
        ino,
        extents: vec![Extent {
            file_offset: 0,
            len: 4,
            stripe_id: s,
            stripe_offset: 0,
        }],
        ..Default::default()
    }))
    .await;
    let e2 = read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "f".into(),
            with_extents: false,
        },
    )
    .await
    .unwrap()
    .info
    .unwrap()
    .etag;
    assert_ne!(e1, e2, "a content change changes the ETag");
}

/// Keys from a small alphabet that makes byte order and tree order disagree.
fn key_strategy() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["a", "b", "a.b", "a-", "é", "z0"], 1..4)
        .prop_map(|segs| segs.join("/"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn listing_equals_sorted_keys(keys in proptest::collection::vec(key_strategy(), 1..25), page in 1u32..6) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let mut ns = Ns::new().await;
            let mut stored = std::collections::BTreeSet::new();
            for k in &keys {
                if ns.put(k, 1).await.is_ok() {
                    stored.insert(k.clone());
                }
            }
            // Paged, no delimiter: every key exactly once, in byte order.
            let mut got = Vec::new();
            let mut marker = String::new();
            loop {
                let r = list(&ns, "", "", &marker, page).await;
                got.extend(r.objects.iter().map(|o| o.key.clone()));
                if !r.is_truncated { break; }
                marker = r.next_marker.clone();
            }
            let want: Vec<String> = stored.iter().cloned().collect();
            assert_eq!(got, want);
            // Delimiter "/" with a prefix: the model computed from the sorted keys.
            for prefix in ["", "a", "a/", "é/"] {
                let r = list(&ns, prefix, "/", "", 1000).await;
                let mut objs = Vec::new();
                let mut cps: Vec<String> = Vec::new();
                for k in stored.iter().filter(|k| k.starts_with(prefix)) {
                    match k[prefix.len()..].find('/') {
                        Some(i) => {
                            let cp = k[..prefix.len() + i + 1].to_string();
                            if cps.last() != Some(&cp) { cps.push(cp); }
                        }
                        None => objs.push(k.clone()),
                    }
                }
                let got: Vec<String> = r.objects.iter().map(|o| o.key.clone()).collect();
                assert_eq!(got, objs, "prefix {prefix:?}");
                assert_eq!(r.common_prefixes, cps, "prefix {prefix:?}");
            }
        });
    }
}

#[tokio::test]
async fn inline_objects_keep_their_bytes_in_metadata() {
    let mut ns = Ns::new().await;
    let put = |body: &[u8], size| {
        Op::PutObject(PutObjectRequest {
            bucket: BUCKET.into(),
            key: "small".into(),
            size,
            etag: "e".into(),
            inline_data: body.to_vec(),
            ..Default::default()
        })
    };
    assert_eq!(ns.fail(put(b"toolong", 3)).await.code, "InvalidArgument");
    ns.ok(put(b"hello", 5)).await;
    let h = read::head_object(
        &ns.pool,
        &HeadObjectRequest {
            bucket: BUCKET.into(),
            key: "small".into(),
            with_extents: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(h.inline_data, b"hello");
    assert!(h.extents.is_empty());
    let ino = h.info.unwrap().ino;
    ns.ok(Op::SetAttr(SetAttrRequest {
        bucket: BUCKET.into(),
        ino,
        size: Some(2),
        ..Default::default()
    }))
    .await;
    let g = read::get_extents(
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
    assert_eq!(g.inline_data, b"he", "truncate trims inline content too");
}

/// A mount unlinking the last file of a directory that only a PutObject made: the
/// directory goes with it, and the unlink succeeds with no parent attributes in its reply
/// (there is no parent left to describe).
#[tokio::test]
async fn unlinking_the_last_file_of_an_implicit_directory_through_posix() {
    let mut ns = Ns::new().await;
    ns.put("imp/f", 1).await.unwrap();
    ns.put("imp/g", 1).await.unwrap();
    let (dir, _) = ns.split("/imp/f").await;
    let unlink = |name: &str| {
        Op::Unlink(UnlinkRequest {
            bucket: BUCKET.into(),
            parent: dir,
            name: name.into(),
        })
    };
    let Reply::Unlink(r) = ns.ok(unlink("f")).await else {
        panic!("not an unlink reply")
    };
    let p = r
        .parent
        .expect("the directory is still there: its attributes come back");
    assert_eq!(p.ino, dir);
    let Reply::Unlink(r) = ns.ok(unlink("g")).await else {
        panic!("not an unlink reply")
    };
    assert!(
        r.parent.is_none(),
        "the implicit directory went with its last file"
    );
    assert!(ns.stat("/imp").await.is_none());
}
