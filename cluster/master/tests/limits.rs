//! Bounded resources on a master (docs/security.md, "Bounded resources on masters and
//! gateways"), on a real master serving gRPC on loopback: a flood of mutations beyond the
//! proposal queue is refused with a retryable error naming the queue and loses none of the
//! accepted ones; a mutation with a field above its size limit is refused before anything
//! reaches the Raft log.

mod common;

use common::single_master;
use kdss_common::rpc_error::code_of;
use kdss_master::RunningMaster;
use kdss_master::bench::client;
use kdss_proto::master as pb;
use std::collections::BTreeSet;
use tonic::Code;

async fn bucket(m: &RunningMaster, name: &str) -> u64 {
    let mut admin = client(&m.grpc_addr.to_string(), common::admin()).unwrap();
    admin
        .create_bucket(pb::CreateBucketRequest {
            name: name.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .bucket
        .unwrap()
        .root_ino
}

fn last_log_index(m: &RunningMaster) -> Option<u64> {
    m.state.raft.metrics().borrow().last_log_index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_beyond_the_proposal_queue_is_refused_naming_it_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Two slots and no wait: a mutation that finds both taken is refused at once.
    let m = single_master(
        dir.path(),
        "[limits]\nproposal_queue = 2\nproposal_wait_ms = 0",
    )
    .await;
    let root = bucket(&m, "flood").await;
    let admin = client(&m.grpc_addr.to_string(), common::admin()).unwrap();

    const N: usize = 300;
    let mut tasks = Vec::new();
    for i in 0..N {
        let mut c = admin.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("f{i:04}");
            let r = c
                .create(pb::CreateRequest {
                    bucket: "flood".into(),
                    parent: root,
                    name: name.clone(),
                    kind: pb::FileKind::Regular as i32,
                    mode: 0o644,
                    exclusive: true,
                    ..Default::default()
                })
                .await;
            (name, r)
        }));
    }
    let mut accepted = BTreeSet::new();
    let mut refused = 0;
    for t in tasks {
        let (name, r) = t.await.unwrap();
        match r {
            Ok(_) => {
                accepted.insert(name);
            }
            Err(e) => {
                assert_eq!(e.code(), Code::Unavailable, "{name}: {e}");
                assert_eq!(code_of(&e), Some("ProposalQueueFull"), "{name}: {e}");
                assert!(e.message().contains("proposal queue"), "{name}: {e}");
                refused += 1;
            }
        }
    }
    assert!(
        refused > 0,
        "{N} concurrent creates against 2 slots were all admitted"
    );
    assert!(!accepted.is_empty(), "every create was refused");

    // Every accepted create exists, and no refused one does.
    let mut c = admin.clone();
    let mut listed = BTreeSet::new();
    let mut cookie = 0;
    loop {
        let r = c
            .read_dir(pb::ReadDirRequest {
                bucket: "flood".into(),
                ino: root,
                cookie,
                limit: 1000,
                plus: false,
            })
            .await
            .unwrap()
            .into_inner();
        for e in &r.entries {
            listed.insert(e.name.clone());
            cookie = e.cookie;
        }
        if r.eof || r.entries.is_empty() {
            break;
        }
    }
    assert_eq!(
        listed, accepted,
        "the directory holds exactly the accepted creates"
    );
    eprintln!("{} accepted, {refused} refused", accepted.len());
    m.stop().await.unwrap();
}

#[tokio::test]
async fn oversized_fields_are_refused_before_raft() {
    let dir = tempfile::tempdir().unwrap();
    let m = single_master(dir.path(), "").await;
    let root = bucket(&m, "sizes").await;
    let mut admin = client(&m.grpc_addr.to_string(), common::admin()).unwrap();
    let f = admin
        .create(pb::CreateRequest {
            bucket: "sizes".into(),
            parent: root,
            name: "f".into(),
            kind: pb::FileKind::Regular as i32,
            mode: 0o644,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .attr
        .unwrap();

    let xattr = |name: usize, value: usize| pb::SetXattrRequest {
        bucket: "sizes".into(),
        ino: f.ino,
        name: format!("user.{}", "n".repeat(name)),
        value: vec![7; value],
        flags: 0,
    };
    let key = "k".repeat(1025);
    let mut meta = pb::ObjectMeta::default();
    meta.user.insert("big".into(), "v".repeat(3000));
    // (call, limit named in the refusal)
    type Call = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), tonic::Status>> + Send + 'static>,
    >;
    type MakeCall = Box<dyn Fn() -> Call>;
    let calls: Vec<(&str, MakeCall)> = vec![
        ("65536 bytes", {
            let c = admin.clone();
            let r = xattr(1, 70_000);
            Box::new(move || {
                let (mut c, r) = (c.clone(), r.clone());
                Box::pin(async move { c.set_xattr(r).await.map(|_| ()) })
            })
        }),
        ("1 to 255 bytes", {
            let c = admin.clone();
            let r = xattr(300, 1);
            Box::new(move || {
                let (mut c, r) = (c.clone(), r.clone());
                Box::pin(async move { c.set_xattr(r).await.map(|_| ()) })
            })
        }),
        ("1 to 4096 bytes", {
            let c = admin.clone();
            let r = pb::SymlinkRequest {
                bucket: "sizes".into(),
                parent: root,
                name: "l".into(),
                target: "t".repeat(5000),
                ..Default::default()
            };
            Box::new(move || {
                let (mut c, r) = (c.clone(), r.clone());
                Box::pin(async move { c.symlink(r).await.map(|_| ()) })
            })
        }),
        ("longer than 255", {
            let c = admin.clone();
            let r = pb::MkdirRequest {
                bucket: "sizes".into(),
                parent: root,
                name: "d".repeat(256),
                mode: 0o755,
                ..Default::default()
            };
            Box::new(move || {
                let (mut c, r) = (c.clone(), r.clone());
                Box::pin(async move { c.mkdir(r).await.map(|_| ()) })
            })
        }),
        ("limit of 1024 bytes", {
            let c = admin.clone();
            let r = pb::PutObjectRequest {
                bucket: "sizes".into(),
                key: key.clone(),
                ..Default::default()
            };
            Box::new(move || {
                let (mut c, r) = (c.clone(), r.clone());
                Box::pin(async move { c.put_object(r).await.map(|_| ()) })
            })
        }),
        ("limit of 2048 bytes", {
            let c = admin.clone();
            let r = pb::PutObjectRequest {
                bucket: "sizes".into(),
                key: "o".into(),
                meta: Some(meta.clone()),
                ..Default::default()
            };
            Box::new(move || {
                let (mut c, r) = (c.clone(), r.clone());
                Box::pin(async move { c.put_object(r).await.map(|_| ()) })
            })
        }),
    ];
    for (limit, call) in &calls {
        // The log must not move. Leader duties propose on their own every 10 s, so one
        // of a few tries may see their entry; without the check every try moves it.
        let mut still = false;
        for _ in 0..3 {
            let before = last_log_index(&m);
            let e = call().await.unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument, "{limit}: {e}");
            assert!(e.message().contains(limit), "{limit}: {e}");
            if last_log_index(&m) == before {
                still = true;
                break;
            }
        }
        assert!(still, "{limit}: the refused call reached the Raft log");
    }
    // Nothing changed: no xattr, no symlink, no directory, no object.
    let names = admin
        .list_xattr(pb::ListXattrRequest {
            bucket: "sizes".into(),
            ino: f.ino,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!format!("{names:?}").contains("user."), "{names:?}");
    let dir = admin
        .read_dir(pb::ReadDirRequest {
            bucket: "sizes".into(),
            ino: root,
            cookie: 0,
            limit: 100,
            plus: false,
        })
        .await
        .unwrap()
        .into_inner();
    let listed: Vec<_> = dir.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(listed, vec!["f"]);
    m.stop().await.unwrap();
}
