//! POSIX semantics, table-driven: each step is an operation on paths and the errno it
//! must end with (0 = success), run in order on one tree.

mod common;
use common::{BUCKET, Ns};
use kdss_common::rpc_error::errno::*;
use kdss_meta::read;
use kdss_proto::master::mutation::Op;
use kdss_proto::master::mutation_reply::Reply;
use kdss_proto::master::*;

async fn step(ns: &mut Ns, line: &str) -> i32 {
    let w: Vec<&str> = line.split_whitespace().collect();
    let b = || BUCKET.to_string();
    let op = match w[0] {
        "mkdir" => {
            let (parent, name) = ns.split(w[1]).await;
            Op::Mkdir(MkdirRequest {
                bucket: b(),
                parent,
                name,
                mode: 0o755,
                uid: 1,
                gid: 1,
            })
        }
        "create" | "excl" | "mkfifo" => {
            let (parent, name) = ns.split(w[1]).await;
            let kind = if w[0] == "mkfifo" {
                FileKind::Fifo
            } else {
                FileKind::Regular
            };
            Op::Create(CreateRequest {
                bucket: b(),
                parent,
                name,
                kind: kind as i32,
                mode: 0o644,
                exclusive: w[0] == "excl",
                ..Default::default()
            })
        }
        "symlink" => {
            let (parent, name) = ns.split(w[1]).await;
            Op::Symlink(SymlinkRequest {
                bucket: b(),
                parent,
                name,
                target: w[2].into(),
                uid: 0,
                gid: 0,
            })
        }
        "unlink" | "rmdir" => {
            let (parent, name) = ns.split(w[1]).await;
            let r = UnlinkRequest {
                bucket: b(),
                parent,
                name,
            };
            if w[0] == "unlink" {
                Op::Unlink(r)
            } else {
                Op::Rmdir(r)
            }
        }
        "rename" | "rename_noreplace" | "exchange" => {
            let (parent, name) = ns.split(w[1]).await;
            let (new_parent, new_name) = ns.split(w[2]).await;
            let flags = match w[0] {
                "rename" => 0,
                "rename_noreplace" => 1,
                _ => 2,
            };
            Op::Rename(RenameRequest {
                bucket: b(),
                parent,
                name,
                new_parent,
                new_name,
                flags,
                ..Default::default()
            })
        }
        "link" => {
            let ino = ns.stat(w[1]).await.map(|a| a.ino).unwrap_or(u64::MAX);
            let (new_parent, new_name) = ns.split(w[2]).await;
            Op::Link(LinkRequest {
                bucket: b(),
                ino,
                new_parent,
                new_name,
            })
        }
        "truncate" => {
            let ino = ns.stat(w[1]).await.map(|a| a.ino).unwrap_or(u64::MAX);
            Op::SetAttr(SetAttrRequest {
                bucket: b(),
                ino,
                size: Some(w[2].parse().unwrap()),
                ..Default::default()
            })
        }
        "setxattr" => {
            let ino = ns.stat(w[1]).await.map(|a| a.ino).unwrap_or(u64::MAX);
            let flags = w.get(3).map(|f| f.parse().unwrap()).unwrap_or(0);
            Op::SetXattr(SetXattrRequest {
                bucket: b(),
                ino,
                name: w[2].into(),
                value: b"v".to_vec(),
                flags,
            })
        }
        "removexattr" => {
            let ino = ns.stat(w[1]).await.map(|a| a.ino).unwrap_or(u64::MAX);
            Op::RemoveXattr(RemoveXattrRequest {
                bucket: b(),
                ino,
                name: w[2].into(),
            })
        }
        "getxattr" => {
            let ino = ns.stat(w[1]).await.map(|a| a.ino).unwrap_or(u64::MAX);
            let r = read::get_xattr(
                &ns.pool,
                &GetXattrRequest {
                    bucket: b(),
                    ino,
                    name: w[2].into(),
                },
            )
            .await;
            return r.err().map(|e| e.failure().unwrap().errno).unwrap_or(0);
        }
        "readlink" => {
            let ino = ns.stat(w[1]).await.map(|a| a.ino).unwrap_or(u64::MAX);
            let r = read::readlink(&ns.pool, &ReadlinkRequest { bucket: b(), ino }).await;
            return r.err().map(|e| e.failure().unwrap().errno).unwrap_or(0);
        }
        "lookup" => {
            let (parent, name) = ns.split(w[1]).await;
            let r = read::lookup(
                &ns.pool,
                &LookupRequest {
                    bucket: b(),
                    parent,
                    name,
                },
            )
            .await;
            return r.err().map(|e| e.failure().unwrap().errno).unwrap_or(0);
        }
        other => panic!("unknown step {other}"),
    };
    ns.run(op).await.failure.map(|f| f.errno).unwrap_or(0)
}

#[tokio::test]
async fn posix_semantics_table() {
    let table: &[(&str, i32)] = &[
        ("mkdir /d", 0),
        ("mkdir /d", EEXIST),
        ("mkdir /nope/x", ENOENT),
        ("create /d/f", 0),
        ("create /d/f", 0),
        ("excl /d/f", EEXIST),
        ("excl /d", EEXIST),
        ("mkdir /d/f/x", ENOTDIR),
        ("mkfifo /d/fifo", 0),
        ("lookup /d/f", 0),
        ("lookup /d/missing", ENOENT),
        ("lookup /d/f/x", ENOTDIR),
        ("excl /d/..", EINVAL),
        ("excl /d/a\0b", EINVAL),
        ("rmdir /d", ENOTEMPTY),
        ("rmdir /d/f", ENOTDIR),
        ("unlink /d", EISDIR),
        ("unlink /d/missing", ENOENT),
        ("symlink /d/ln ../target", 0),
        ("readlink /d/ln", 0),
        ("readlink /d/f", EINVAL),
        // rename
        ("mkdir /d/sub", 0),
        ("rename /d /d/sub/d2", EINVAL),
        ("rename /d /d/d", EINVAL),
        ("rename /d/missing /d/x", ENOENT),
        ("mkdir /e", 0),
        ("create /e/g", 0),
        ("rename /d/sub /e/g", ENOTDIR),
        ("rename /e/g /d/sub", EISDIR),
        ("rename /d/sub /e", ENOTEMPTY),
        ("mkdir /empty", 0),
        ("rename /d/sub /empty", 0),
        ("lookup /d/sub", ENOENT),
        ("lookup /empty", 0),
        ("rename_noreplace /e/g /d/f", EEXIST),
        ("rename /e/g /d/f", 0),
        ("lookup /e/g", ENOENT),
        ("exchange /d/f /e/nothing", ENOENT),
        ("create /e/h", 0),
        ("exchange /d/f /e", 0),
        ("lookup /d/f/h", 0),
        ("exchange /d /d/f", EINVAL),
        ("rename /d/f /d/f", 0),
        ("rename /d/ln /d/ln2", 0),
        // link
        ("create /x", 0),
        ("link /x /d/x2", 0),
        ("link /x /d/x2", EEXIST),
        ("link /d /d/dlink", EPERM),
        ("rename /x /d/x2", 0),
        ("lookup /x", 0),
        ("rename /d/x2 /x3", 0),
        ("lookup /d/x2", ENOENT),
        // xattrs
        ("setxattr /x3 user.a 2", ENODATA),
        ("setxattr /x3 user.a 1", 0),
        ("setxattr /x3 user.a 1", EEXIST),
        ("setxattr /x3 user.a 2", 0),
        ("getxattr /x3 user.a", 0),
        ("getxattr /x3 user.b", ENODATA),
        ("removexattr /x3 user.a", 0),
        ("removexattr /x3 user.a", ENODATA),
        // truncate
        ("truncate /x3 100", 0),
        ("truncate /d 0", EISDIR),
        ("truncate /d/ln2 0", EINVAL),
    ];
    let mut ns = Ns::new().await;
    for (line, want) in table {
        let got = step(&mut ns, line).await;
        assert_eq!(got, *want, "step {line:?}: got errno {got}, want {want}");
    }
    // Directory link counts: / holds d, e, empty(renamed) → 2 + 3 subdirs... check d and root.
    let d = ns.stat("/d").await.unwrap();
    assert_eq!(
        d.nlink, 3,
        "/d lost sub to the rename, gained the old /e by exchange"
    );
    let e = ns.stat("/e").await.unwrap();
    assert_eq!(
        e.kind,
        FileKind::Regular as i32,
        "exchange swapped /e with the file"
    );
    let root = ns.stat("/").await.unwrap();
    assert_eq!(root.nlink, 2 + 2, "root holds directories /d and /empty");
    let x = ns.stat("/x").await.unwrap();
    let x3 = ns.stat("/x3").await.unwrap();
    assert_eq!(x.ino, x3.ino);
    assert_eq!(
        x.nlink, 2,
        "rename over a hard link of the same inode is a no-op"
    );
    assert_eq!(x3.size, 100);
}

#[tokio::test]
async fn hard_links_share_an_inode_and_count_links() {
    let mut ns = Ns::new().await;
    step(&mut ns, "create /a").await;
    assert_eq!(step(&mut ns, "link /a /b").await, 0);
    let a = ns.stat("/a").await.unwrap();
    let b = ns.stat("/b").await.unwrap();
    assert_eq!(a.ino, b.ino);
    assert_eq!(b.nlink, 2);
    assert_eq!(step(&mut ns, "unlink /a").await, 0);
    assert_eq!(ns.stat("/b").await.unwrap().nlink, 1);
    assert_eq!(step(&mut ns, "unlink /b").await, 0);
    let binned = read::getattr(
        &ns.pool,
        &GetAttrRequest {
            bucket: BUCKET.into(),
            ino: a.ino,
        },
    )
    .await
    .expect("the last link went to the recycle bin");
    assert_eq!(binned.attr.unwrap().nlink, 0);
    assert_eq!(
        ns.purge_all().await.0,
        1,
        "one item: the inode, not one per link"
    );
    let gone = read::getattr(
        &ns.pool,
        &GetAttrRequest {
            bucket: BUCKET.into(),
            ino: a.ino,
        },
    )
    .await;
    assert!(gone.is_err(), "purged, no open: the inode is freed");
}

#[tokio::test]
async fn unlinked_file_stays_readable_while_open() {
    let mut ns = Ns::new().await;
    step(&mut ns, "create /f").await;
    let ino = ns.stat("/f").await.unwrap().ino;
    let s = ns.stripe(10).await;
    ns.ok(Op::CommitWrite(CommitWriteRequest {
        bucket: BUCKET.into(),
        ino,
        extents: vec![Extent {
            file_offset: 0,
            len: 10,
            stripe_id: s,
            stripe_offset: 0,
        }],
        ..Default::default()
    }))
    .await;
    let open = |session: &str| {
        Op::Open(OpenRequest {
            bucket: BUCKET.into(),
            ino,
            session: session.into(),
            write: false,
        })
    };
    let Reply::Open(h1) = ns.ok(open("s1")).await else {
        panic!()
    };
    let Reply::Open(h2) = ns.ok(open("s2")).await else {
        panic!()
    };
    assert_ne!(h1.handle, h2.handle);
    assert_eq!(step(&mut ns, "unlink /f").await, 0);
    let ext = read::get_extents(
        &ns.pool,
        &GetExtentsRequest {
            bucket: BUCKET.into(),
            ino,
            offset: 0,
            len: 0,
        },
    )
    .await
    .expect("still readable through the open handle");
    assert_eq!(ext.extents.len(), 1);
    assert_eq!(ext.attr.unwrap().nlink, 0);
    assert_eq!(ns.refcount(s).await, (1, false));
    ns.ok(Op::Release(ReleaseRequest {
        bucket: BUCKET.into(),
        handle: h1.handle,
        session: "s1".into(),
    }))
    .await;
    assert!(
        read::getattr(
            &ns.pool,
            &GetAttrRequest {
                bucket: BUCKET.into(),
                ino
            }
        )
        .await
        .is_ok()
    );
    // s2 renews with a short ttl, then stops: ExpireSessions drops its handle and frees the inode.
    ns.ok(Op::KeepAlive(KeepAliveRequest {
        session: "s2".into(),
        ttl_ms: 1,
    }))
    .await;
    let later = ns.now + 10_000_000;
    ns.ok(Op::ExpireSessions(ExpireSessionsOp { now_ns: later }))
        .await;
    assert!(
        read::getattr(
            &ns.pool,
            &GetAttrRequest {
                bucket: BUCKET.into(),
                ino
            }
        )
        .await
        .is_ok(),
        "no open left, but the recycle bin holds it"
    );
    assert_eq!(ns.refcount(s).await, (1, false));
    ns.purge_all().await;
    assert!(
        read::getattr(
            &ns.pool,
            &GetAttrRequest {
                bucket: BUCKET.into(),
                ino
            }
        )
        .await
        .is_err()
    );
    assert_eq!(
        ns.refcount(s).await,
        (0, true),
        "the stripe goes to the GC with the inode"
    );
}

#[tokio::test]
async fn readdir_cookies_survive_changes() {
    let mut ns = Ns::new().await;
    step(&mut ns, "mkdir /d").await;
    for i in 0..10 {
        step(&mut ns, &format!("create /d/f{i}")).await;
    }
    let dir = ns.stat("/d").await.unwrap().ino;
    let page = |cookie| ReadDirRequest {
        bucket: BUCKET.into(),
        ino: dir,
        cookie,
        limit: 4,
        plus: true,
    };
    let p1 = read::readdir(&ns.pool, &page(0)).await.unwrap();
    assert_eq!(p1.entries.len(), 4);
    assert!(!p1.eof);
    assert!(p1.entries[0].attr.is_some());
    // Remove an entry already seen and one not yet seen, add one: the cookie still resumes.
    step(&mut ns, "unlink /d/f0").await;
    step(&mut ns, "unlink /d/f6").await;
    step(&mut ns, "create /d/new").await;
    let mut names: Vec<String> = p1.entries.iter().map(|e| e.name.clone()).collect();
    let mut cookie = p1.entries.last().unwrap().cookie;
    loop {
        let p = read::readdir(&ns.pool, &page(cookie)).await.unwrap();
        names.extend(p.entries.iter().map(|e| e.name.clone()));
        if p.eof {
            break;
        }
        cookie = p.entries.last().unwrap().cookie;
    }
    let want: Vec<String> = ["f0", "f1", "f2", "f3", "f4", "f5", "f7", "f8", "f9", "new"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, want);
}

#[tokio::test]
async fn setattr_truncate_trims_and_extend_makes_a_hole() {
    let mut ns = Ns::new().await;
    step(&mut ns, "create /f").await;
    let ino = ns.stat("/f").await.unwrap().ino;
    let s1 = ns.stripe(100).await;
    let s2 = ns.stripe(100).await;
    let commit = |e: Vec<Extent>| {
        Op::CommitWrite(CommitWriteRequest {
            bucket: BUCKET.into(),
            ino,
            extents: e,
            ..Default::default()
        })
    };
    ns.ok(commit(vec![Extent {
        file_offset: 0,
        len: 100,
        stripe_id: s1,
        stripe_offset: 0,
    }]))
    .await;
    ns.ok(commit(vec![Extent {
        file_offset: 100,
        len: 100,
        stripe_id: s2,
        stripe_offset: 0,
    }]))
    .await;
    let v0 = ns.stat("/f").await.unwrap().version;
    assert_eq!(step(&mut ns, "truncate /f 50").await, 0);
    let a = ns.stat("/f").await.unwrap();
    assert_eq!(a.size, 50);
    assert!(a.version > v0);
    let ext = read::get_extents(
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
    assert_eq!(
        ext.extents,
        vec![Extent {
            file_offset: 0,
            len: 50,
            stripe_id: s1,
            stripe_offset: 0
        }]
    );
    assert_eq!(ns.refcount(s2).await, (0, true));
    assert_eq!(step(&mut ns, "truncate /f 1000").await, 0);
    let ext = read::get_extents(
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
    assert_eq!(ext.attr.unwrap().size, 1000);
    assert_eq!(
        ext.extents.len(),
        1,
        "extending adds no extent: the hole reads as zeros"
    );
    // Times and mode.
    ns.ok(Op::SetAttr(SetAttrRequest {
        bucket: BUCKET.into(),
        ino,
        mode: Some(0o100600),
        mtime_ns: Some(42),
        uid: Some(7),
        ..Default::default()
    }))
    .await;
    let a = ns.stat("/f").await.unwrap();
    assert_eq!((a.mode, a.mtime_ns, a.uid), (0o600, 42, 7));
}

#[tokio::test]
async fn other_buckets_inodes_are_invisible() {
    let mut ns = Ns::new().await;
    ns.ok(Op::CreateBucket(CreateBucketRequest {
        name: "other".into(),
        k: 9,
        m: 2,
        owner: "bob".into(),
    }))
    .await;
    let other_root = read::get_bucket(
        &ns.pool,
        &BucketRequest {
            name: "other".into(),
        },
    )
    .await
    .unwrap()
    .bucket
    .unwrap()
    .root_ino;
    let f = ns
        .fail(Op::Mkdir(MkdirRequest {
            bucket: BUCKET.into(),
            parent: other_root,
            name: "x".into(),
            mode: 0o755,
            uid: 0,
            gid: 0,
        }))
        .await;
    assert_eq!(f.errno, ENOENT);
}

#[tokio::test]
async fn handles_and_sessions_belong_to_their_user_bucket_and_session() {
    let mut ns = Ns::new().await;
    step(&mut ns, "create /f").await;
    let ino = ns.stat("/f").await.unwrap().ino;
    let Reply::Open(h) = ns
        .ok(Op::Open(OpenRequest {
            bucket: BUCKET.into(),
            ino,
            session: "s1".into(),
            write: true,
        }))
        .await
    else {
        panic!()
    };
    assert_eq!(step(&mut ns, "unlink /f").await, 0);
    let release = |bucket: &str, session: &str| {
        Op::Release(ReleaseRequest {
            bucket: bucket.into(),
            handle: h.handle,
            session: session.into(),
        })
    };
    let alive = |ns: &Ns| {
        let pool = ns.pool.clone();
        async move {
            read::getattr(
                &pool,
                &GetAttrRequest {
                    bucket: BUCKET.into(),
                    ino,
                },
            )
            .await
            .is_ok()
        }
    };
    // Another user (whatever bucket and session it names), another bucket, another session.
    ns.caller = "bob".into();
    for op in [release(BUCKET, "s1"), release("other", "s2")] {
        assert_eq!(ns.fail(op).await.errno, EACCES);
    }
    let keep = |ttl_ms| {
        Op::KeepAlive(KeepAliveRequest {
            session: "s1".into(),
            ttl_ms,
        })
    };
    assert_eq!(ns.fail(keep(1)).await.errno, EACCES, "bob shortens s1");
    ns.caller = "alice".into();
    for op in [release("other", "s1"), release(BUCKET, "s2")] {
        assert_eq!(ns.fail(op).await.errno, EACCES);
    }
    // Emptied from the recycle bin, the inode lives on only through the owner's handle.
    ns.purge_all().await;
    assert!(
        alive(&ns).await,
        "the handle keeps the unlinked, purged inode"
    );
    // The ttl is capped; at the cap it is accepted.
    let f = ns
        .fail(keep(kdss_meta::opens::MAX_SESSION_TTL_MS + 1))
        .await;
    assert_eq!(f.errno, EINVAL);
    ns.ok(keep(kdss_meta::opens::MAX_SESSION_TTL_MS)).await;
    ns.ok(release(BUCKET, "s1")).await;
    assert!(!alive(&ns).await, "freed at the owner's release");
}

/// A mount commits a read's atime after answering the read, possibly after this mount
/// changed the inode: `keep_ctime` must leave the stored ctime (the change's), not write
/// back the older ctime the mount also sends for masters that predate the flag.
#[tokio::test]
async fn an_atime_update_keeps_the_ctime_of_a_later_change() {
    let mut ns = Ns::new().await;
    step(&mut ns, "create /f").await;
    let before = ns.stat("/f").await.unwrap();
    ns.ok(Op::SetAttr(SetAttrRequest {
        bucket: BUCKET.into(),
        ino: before.ino,
        mode: Some(0o600),
        ..Default::default()
    }))
    .await;
    let changed = ns.stat("/f").await.unwrap();
    ns.ok(Op::SetAttr(SetAttrRequest {
        bucket: BUCKET.into(),
        ino: before.ino,
        atime_ns: Some(changed.ctime_ns + 1_000),
        ctime_ns: Some(before.ctime_ns - 1_000),
        keep_ctime: true,
        ..Default::default()
    }))
    .await;
    let a = ns.stat("/f").await.unwrap();
    assert_eq!(a.atime_ns, changed.ctime_ns + 1_000);
    assert_eq!(a.ctime_ns, changed.ctime_ns, "a read is not a change");
    assert_eq!((a.mode, a.mtime_ns), (0o600, changed.mtime_ns));
}

/// A mount's batch of read atimes: each inode's atime set, its ctime, mtime and version
/// untouched; an inode gone since, or named with another bucket, skipped without failing
/// the others.
#[tokio::test]
async fn set_atimes_sets_only_atimes_and_skips_what_is_not_there() {
    let mut ns = Ns::new().await;
    step(&mut ns, "create /f").await;
    step(&mut ns, "create /g").await;
    let (f, g) = (ns.stat("/f").await.unwrap(), ns.stat("/g").await.unwrap());
    let t = f.ctime_ns + 5_000_000;
    let update = |ino, atime_ns| AtimeUpdate { ino, atime_ns };
    ns.ok(Op::SetAtimes(SetAtimesRequest {
        bucket: BUCKET.into(),
        updates: vec![update(f.ino, t), update(987_654, t), update(g.ino, t + 1)],
    }))
    .await;
    ns.ok(Op::SetAtimes(SetAtimesRequest {
        bucket: "another-bucket".into(),
        updates: vec![update(f.ino, 1)],
    }))
    .await;
    let (f2, g2) = (ns.stat("/f").await.unwrap(), ns.stat("/g").await.unwrap());
    assert_eq!((f2.atime_ns, g2.atime_ns), (t, t + 1));
    for (a, b) in [(f, f2), (g, g2)] {
        assert_eq!(
            (a.ctime_ns, a.mtime_ns, a.version, a.size),
            (b.ctime_ns, b.mtime_ns, b.version, b.size),
            "a read is not a change"
        );
    }
    let many = (0..1001).map(|i| update(f.ino, i)).collect();
    let refused = kdss_meta::sizes::check(&Op::SetAtimes(SetAtimesRequest {
        bucket: BUCKET.into(),
        updates: many,
    }));
    assert!(refused.is_err(), "1,001 inodes in one SetAtimes");
}
