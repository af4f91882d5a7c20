//! Shards nobody references (a crash between a shard write and its record, a copy left
//! behind by a writer that moved a shard) are found by the collector's inventory of each
//! disk and deleted, while every referenced shard stays and the object reads back.

use crate::common::*;
use kdss_common::{CapabilityKey, ShardTarget};
use kdss_proto::storage::storage_client::StorageClient;
use kdss_proto::storage::{PutShardRequest, ShardKey, ShardOp, StatShardRequest};
use kdss_testkit::{Cluster, ClusterOpts};

/// (node grpc address, disk id) of every disk in the cluster.
fn disks(c: &Cluster) -> Vec<(String, u64)> {
    let nodes = cli(c, &["node", "list"]);
    let list = cli(c, &["disk", "list"]);
    let mut out = Vec::new();
    for d in list.as_array().expect("disk list is an array") {
        let node = nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == d["node"])
            .expect("the disk's node is listed");
        let id = u64::from_str_radix(d["disk_id"].as_str().unwrap(), 16).unwrap();
        out.push((format!("http://{}", node["grpc"].as_str().unwrap()), id));
    }
    out
}

fn cap(
    c: &Cluster,
    (stripe, shard, disk_id): (u64, u32, u64),
    op: ShardOp,
    len: u64,
) -> kdss_proto::storage::Capability {
    let exp = kdss_common::time::now_ms() + 60_000;
    let t = ShardTarget {
        stripe_id: stripe,
        shard_index: shard,
        disk_id,
    };
    CapabilityKey::new(&c.secret()).sign(t, op, len, exp)
}

async fn has_shard(c: &Cluster, (addr, disk): &(String, u64), stripe: u64, shard: u32) -> bool {
    let mut s = StorageClient::connect(addr.clone()).await.unwrap();
    s.stat_shard(StatShardRequest {
        key: Some(ShardKey {
            stripe_id: stripe,
            shard_index: shard,
        }),
        disk_id: *disk,
        cap: Some(cap(c, (stripe, shard, *disk), ShardOp::Read, 0)),
    })
    .await
    .unwrap()
    .into_inner()
    .exists
}

/// Writes a shard record straight to a node, as a writer would before recording it.
async fn put_stray(c: &Cluster, (addr, disk): &(String, u64), stripe: u64, shard: u32) {
    let body = vec![0xA5u8; 4096];
    let mut s = StorageClient::connect(addr.clone()).await.unwrap();
    let req = PutShardRequest {
        key: Some(ShardKey {
            stripe_id: stripe,
            shard_index: shard,
        }),
        disk_id: *disk,
        cap: Some(cap(
            c,
            (stripe, shard, *disk),
            ShardOp::Write,
            body.len() as u64,
        )),
        total_len: body.len() as u64,
        crc32c: crc32c::crc32c(&body),
        data: body.into(),
    };
    s.put_shard(tokio_stream_once(req)).await.unwrap();
}

fn tokio_stream_once(r: PutShardRequest) -> impl futures::Stream<Item = PutShardRequest> {
    futures::stream::iter([r])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreferenced_shards_are_found_by_inventory_and_deleted() {
    let Some(c) = start(
        false,
        ClusterOpts {
            master_extra_toml: format!("{GC_BY_HAND}stale_writing_minutes = 0.05\n"),
            ..ClusterOpts::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("files");
    let body = data(31, 3 << 20);
    let p = scratch.join("obj");
    std::fs::write(&p, &body).unwrap();
    aws_cp(&c, p.to_str().unwrap(), &format!("s3://{b}/obj"));

    // The first stripe of a new cluster is stripe 1: find where its shard 0 lives.
    let all = disks(&c);
    let mut holders = Vec::new();
    for d in &all {
        for shard in 0..7 {
            if has_shard(&c, d, 1, shard).await {
                holders.push((d.clone(), shard));
            }
        }
    }
    assert_eq!(
        holders.len(),
        7,
        "stripe 1 has 7 shards on 7 disks: {holders:?}"
    );
    let (home, _) = holders.iter().find(|(_, s)| *s == 0).unwrap().clone();
    let elsewhere = all.iter().find(|d| **d != home).unwrap().clone();

    // Strays: a copy of shard 0 on a disk the map does not name, and shard 9 (a 5+2
    // stripe has shards 0..=6) on every disk.
    put_stray(&c, &elsewhere, 1, 0).await;
    for d in &all {
        put_stray(&c, d, 1, 9).await;
    }
    assert!(has_shard(&c, &elsewhere, 1, 0).await);

    // The first pass only notes them: a shard may be unnamed for a moment (written, not
    // yet committed), so it is deleted only after stale_writing_minutes (3 s here).
    let st = cli(&c, &["gc", "run"]);
    assert_eq!(
        st["last_pass"]["strays_waiting"].as_u64().unwrap_or(0),
        all.len() as u64 + 1,
        "every stray noted, none deleted yet: {st}"
    );
    assert!(
        has_shard(&c, &elsewhere, 1, 0).await,
        "not deleted at first sight"
    );
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let st = cli(&c, &["gc", "run"]);
    let totals = &st["totals"];
    assert_eq!(
        totals["strays_deleted"].as_u64().unwrap_or(0),
        all.len() as u64 + 1,
        "every stray deleted: {st}"
    );
    for d in &all {
        assert!(!has_shard(&c, d, 1, 9).await, "shard 9 gone from {d:?}");
    }
    assert!(
        !has_shard(&c, &elsewhere, 1, 0).await,
        "the stray copy is gone"
    );
    for (d, shard) in &holders {
        assert!(
            has_shard(&c, d, 1, *shard).await,
            "referenced shard {shard} stays"
        );
    }
    let out = scratch.join("obj.out");
    aws_cp(&c, &format!("s3://{b}/obj"), out.to_str().unwrap());
    assert_file(&out, &body);

    // A second pass finds nothing more to do.
    let st = cli(&c, &["gc", "run"]);
    assert_eq!(
        st["last_pass"]["strays_seen"].as_u64().unwrap_or(0),
        0,
        "{st}"
    );
}
