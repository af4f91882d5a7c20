//! The collector survives its leader and a storage node being killed in the middle of a
//! pass: the next leader's passes finish the work, the node deletes its shards once it is
//! back, and the object that stayed live reads back byte-exact.

use crate::common::*;
use kdss_testkit::{Cluster, ClusterOpts};
use std::time::{Duration, Instant};

/// Shard records over all disks, as the heartbeats report.
fn records(c: &Cluster) -> u64 {
    let disks = cli(c, &["disk", "list"]);
    disks
        .as_array()
        .expect("disk list is an array")
        .iter()
        .map(|d| d["records"].as_u64().unwrap_or(0))
        .sum()
}

/// Polls `records` until it equals `want` or 20 s passed; returns the last count.
async fn records_settle(c: &Cluster, want: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = records(c);
        if n == want || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_and_node_killed_mid_pass_the_next_passes_finish() {
    let Some(mut c) = start(
        false,
        ClusterOpts {
            masters: 3,
            // Slow deletes, so the kills land inside the pass.
            master_extra_toml: format!("{GC_BY_HAND}max_deletes_per_sec = 20\n"),
            ..ClusterOpts::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("kills");
    let live = data(40, (2 << 20) + 9);
    let p = scratch.join("live");
    std::fs::write(&p, &live).unwrap();
    aws_cp(&c, p.to_str().unwrap(), &format!("s3://{b}/live"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let live_records = records(&c);
    assert_eq!(live_records, 7, "one 5+2 stripe");

    for i in 0..8u64 {
        let p = scratch.join(format!("g{i}"));
        std::fs::write(&p, data(41 + i, (2 << 20) + i as usize)).unwrap();
        aws_cp(&c, p.to_str().unwrap(), &format!("s3://{b}/garbage/g{i}"));
    }
    let o = aws(
        &c,
        &["s3", "rm", "--recursive", &format!("s3://{b}/garbage/")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p = cli(&c, &["trash", "purge", "--all"]);
    assert_eq!(p["items"], 8, "{p}");

    // A pass of 56 shard deletes at 20/s: kill the leader and a storage node inside it.
    let pass = std::thread::spawn({
        let (masters, keys) = (c.masters(), c.admin_keys());
        move || cli_output(&masters, &keys, &["gc", "run"])
    });
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let leader = c.leader_index().await.unwrap();
    c.kill_master(leader);
    c.kill_node(2);
    let _ = pass.join(); // its leader died: the call may fail, which is fine

    // The surviving masters elect a leader; its passes delete everything left except node
    // 2's shards, which wait for the node.
    let deadline = Instant::now() + Duration::from_secs(60);
    let waiting = loop {
        let o = cli_output(&c.masters(), &c.admin_keys(), &["gc", "run"]);
        if o.status.success() {
            let st: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let pending = st["pending_shards"].as_u64().unwrap();
            let away = st["last_pass"]["shards_waiting_for_node"]
                .as_u64()
                .unwrap_or(0);
            if pending > 0 && pending == away {
                break pending;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the new leader's passes did not catch up"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    eprintln!("{waiting} shards wait for node 2");
    assert_ne!(c.leader_index().await.unwrap(), leader);

    c.restart_node(2).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = cli(&c, &["gc", "run"]);
        if st["pending_shards"] == 0 && st["pending_stripes"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "node 2 did not catch up: {st}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let left = records_settle(&c, live_records).await;
    assert_eq!(
        left, live_records,
        "only the live object's shards remain on the disks"
    );
    let out = scratch.join("live.out");
    aws_cp(&c, &format!("s3://{b}/live"), out.to_str().unwrap());
    assert_file(&out, &live);
}
