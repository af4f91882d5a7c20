//! Apply and read throughput of the state machine alone on a file database, batches of
//! entries in one transaction as the master applies them. Not a correctness test; run
//! with `cargo test -p kdss-meta --release --test throughput -- --ignored --nocapture`.

use kdss_meta::{apply, read};
use kdss_proto::master::mutation::Op;
use kdss_proto::master::*;
use std::time::Instant;

fn m(now: i64, op: Op) -> Mutation {
    Mutation {
        ctx: Some(ApplyContext {
            now_ns: now,
            caller: "bench".into(),
            caller_role: 1,
        }),
        op: Some(op),
    }
}

#[tokio::test]
#[ignore = "measurement, not a check"]
async fn apply_and_list_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let pool = kdss_meta::open(&dir.path().join("meta.db")).await.unwrap();
    let mut c = pool.acquire().await.unwrap();
    let r = apply(
        &mut c,
        &m(
            1,
            Op::CreateBucket(CreateBucketRequest {
                name: "bench".into(),
                k: 5,
                m: 2,
                owner: String::new(),
            }),
        ),
    )
    .await
    .unwrap();
    let root = match r.reply {
        Some(mutation_reply::Reply::Bucket(b)) => b.bucket.unwrap().root_ino,
        other => panic!("{other:?}"),
    };
    drop(c);
    const N: i64 = 10_000;
    const BATCH: i64 = 100;
    let t = Instant::now();
    let mut now = 10;
    for b in 0..N / BATCH {
        let mut tx = pool.begin().await.unwrap();
        for i in 0..BATCH {
            now += 1;
            let op = Op::Create(CreateRequest {
                bucket: "bench".into(),
                parent: root,
                name: format!("file-{:06}", b * BATCH + i),
                kind: 1,
                mode: 0o644,
                exclusive: true,
                ..Default::default()
            });
            let r = apply(&mut tx, &m(now, op)).await.unwrap();
            assert!(r.failure.is_none());
        }
        tx.commit().await.unwrap();
    }
    let el = t.elapsed();
    println!(
        "create: {N} in {el:?} = {:.0}/s (batches of {BATCH}, one commit each)",
        N as f64 / el.as_secs_f64()
    );

    let t = Instant::now();
    for i in 0..N {
        let q = LookupRequest {
            bucket: "bench".into(),
            parent: root,
            name: format!("file-{i:06}"),
        };
        read::lookup(&pool, &q).await.unwrap();
    }
    let el = t.elapsed();
    println!(
        "lookup: {N} in {el:?} = {:.0}/s",
        N as f64 / el.as_secs_f64()
    );

    let t = Instant::now();
    let (mut cookie, mut n) = (0, 0);
    loop {
        let p = read::readdir(
            &pool,
            &ReadDirRequest {
                bucket: "bench".into(),
                ino: root,
                cookie,
                limit: 1000,
                plus: true,
            },
        )
        .await
        .unwrap();
        n += p.entries.len();
        if p.eof {
            break;
        }
        cookie = p.entries.last().unwrap().cookie;
    }
    println!("readdir+: {n} entries in {:?}", t.elapsed());
    assert_eq!(n, N as usize);

    let t = Instant::now();
    let (mut marker, mut n) = (String::new(), 0);
    loop {
        let p = read::list_objects(
            &pool,
            &ListObjectsRequest {
                bucket: "bench".into(),
                start_after: marker.clone(),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        n += p.objects.len();
        if !p.is_truncated {
            break;
        }
        marker = p.next_marker;
    }
    println!(
        "list_objects: {n} keys in {:?} (pages of 1000)",
        t.elapsed()
    );
    assert_eq!(n, N as usize);

    let t = Instant::now();
    let mut tx = pool.begin().await.unwrap();
    for i in 0..N {
        now += 1;
        let op = Op::Rename(RenameRequest {
            bucket: "bench".into(),
            parent: root,
            name: format!("file-{i:06}"),
            new_parent: root,
            new_name: format!("renamed-{i:06}"),
            flags: 0,
            ..Default::default()
        });
        assert!(apply(&mut tx, &m(now, op)).await.unwrap().failure.is_none());
    }
    tx.commit().await.unwrap();
    let el = t.elapsed();
    println!(
        "rename: {N} in {el:?} = {:.0}/s (one transaction)",
        N as f64 / el.as_secs_f64()
    );
}
