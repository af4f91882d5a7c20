//! Space comes back: deletes through both doors go to the recycle bin, `kdss-cli trash`
//! lists and restores them, a purge plus `kdss-cli gc run` turns their stripes into shard
//! deletes, and the storage nodes' live bytes and records go down while what is still
//! live reads back byte-exact.

use crate::common::*;
use kdss_testkit::{Cluster, ClusterOpts, Mount};
use std::time::{Duration, Instant};

/// (live bytes, live records) summed over every disk, as the nodes' heartbeats report.
fn disk_usage(c: &Cluster) -> (u64, u64) {
    let disks = cli(c, &["disk", "list"]);
    let disks = disks.as_array().expect("disk list is an array");
    let sum = |k: &str| disks.iter().map(|d| d[k].as_u64().unwrap_or(0)).sum();
    (sum("used_bytes"), sum("records"))
}

/// No retention (items kept until purged), no periodic pass during a test, no read grace:
/// each step happens when the test asks for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_data_waits_in_the_bin_then_purge_and_gc_free_the_disks() {
    let Some(c) = start(
        true,
        ClusterOpts {
            master_extra_toml: GC_BY_HAND.into(),
            ..ClusterOpts::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let m = Mount::new(&c, "gc", &b, "").await.unwrap();
    let scratch = c.scratch("files");
    let s3_gone = data(11, 3 << 20);
    let s3_back = data(12, (2 << 20) + 77);
    let fs_gone = data(13, 3 << 20);
    let fs_live = data(14, (1 << 20) + 5);
    for (name, body) in [("s3-gone.bin", &s3_gone), ("s3-back.bin", &s3_back)] {
        let p = scratch.join(name);
        std::fs::write(&p, body).unwrap();
        aws_cp(&c, p.to_str().unwrap(), &format!("s3://{b}/dir/{name}"));
    }
    std::fs::write(m.join("fs-gone.bin"), &fs_gone).unwrap();
    std::fs::write(m.join("fs-live.bin"), &fs_live).unwrap();
    // Let a heartbeat carry the written bytes to the master.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (used_before, records_before) = disk_usage(&c);

    // Delete through both doors: nothing is listed any more, everything is in the bin.
    for key in ["dir/s3-gone.bin", "dir/s3-back.bin"] {
        let o = aws(&c, &["s3", "rm", &format!("s3://{b}/{key}")]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    std::fs::remove_file(m.join("fs-gone.bin")).unwrap();
    let ls = aws(&c, &["s3", "ls", "--recursive", &format!("s3://{b}/")]);
    let ls = String::from_utf8_lossy(&ls.stdout).to_string();
    assert!(!ls.contains("gone") && !ls.contains("s3-back"), "{ls}");
    let bin = cli(&c, &["trash", "list", "--bucket", &b]);
    let items = bin["items"].as_array().unwrap();
    let find = |path: &str| {
        items
            .iter()
            .find(|i| i["path"] == path)
            .unwrap_or_else(|| panic!("{path} not in the bin: {bin}"))
            .clone()
    };
    assert_eq!(items.len(), 3, "{bin}");
    assert_eq!(find("dir/s3-gone.bin")["size"], s3_gone.len() as u64);
    assert_eq!(find("fs-gone.bin")["size"], fs_gone.len() as u64);
    assert_eq!(bin["retention_hours"], 0);
    assert_eq!(find("fs-gone.bin")["purge_due_ns"], 0, "kept until purged");

    // Restore one: it is back at its key, byte-exact; a second restore is refused.
    let id = find("dir/s3-back.bin")["id"].as_u64().unwrap();
    let r = cli(&c, &["trash", "restore", &id.to_string()]);
    assert_eq!(r["path"], "dir/s3-back.bin");
    aws_cp(
        &c,
        &format!("s3://{b}/dir/s3-back.bin"),
        scratch.join("back.out").to_str().unwrap(),
    );
    assert_file(&scratch.join("back.out"), &s3_back);

    // Purge the rest and run a pass: the shards go, the bin and the backlog are empty.
    let p = cli(&c, &["trash", "purge", "--all"]);
    assert_eq!(p["items"], 2, "{p}");
    assert_eq!(p["bytes"], (s3_gone.len() + fs_gone.len()) as u64);
    let st = cli(&c, &["gc", "run"]);
    assert_eq!(st["pending_stripes"], 0, "{st}");
    assert_eq!(st["trash_items"], 0, "{st}");
    let deleted = st["totals"]["shards_deleted"].as_u64().unwrap_or(0);
    assert!(deleted >= 7, "at least one stripe's 7 shards deleted: {st}");
    assert!(st["last_end_ns"].as_i64().unwrap() > 0);

    // The nodes report it: live bytes drop by at least the raw size of what was purged
    // (6 MiB of data at 5+2 is 8.4 MiB of shards; allow for padding below).
    let want_drop = (s3_gone.len() + fs_gone.len()) as u64 * 7 / 5 * 9 / 10;
    let deadline = Instant::now() + Duration::from_secs(15);
    let (used_after, records_after) = loop {
        let (u, r) = disk_usage(&c);
        if used_before.saturating_sub(u) >= want_drop || Instant::now() > deadline {
            break (u, r);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "disks: used {used_before} -> {used_after} bytes, records {records_before} -> {records_after}, \
         shards deleted {deleted}"
    );
    assert!(
        used_before - used_after >= want_drop,
        "live bytes went {used_before} -> {used_after}, want a drop of {want_drop}"
    );
    assert!(records_after < records_before);

    // What stayed live is intact through both doors.
    assert_file(&m.join("fs-live.bin"), &fs_live);
    assert_file(&m.join("dir/s3-back.bin"), &s3_back);
    let again = cli(&c, &["gc", "status"]);
    assert_eq!(again["pending_shards"], 0, "{again}");
}

/// Shard records node `node` reports, summed over its disks.
fn node_records(c: &Cluster, node: &str) -> u64 {
    let disks = cli(c, &["disk", "list"]);
    disks
        .as_array()
        .expect("disk list is an array")
        .iter()
        .filter(|d| d["node"] == node)
        .map(|d| d["records"].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_before_the_purge_catches_up_when_it_returns() {
    let Some(mut c) = start(
        false,
        ClusterOpts {
            master_extra_toml: GC_BY_HAND.into(),
            ..ClusterOpts::default()
        },
    )
    .await
    else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("files");
    for i in 0..3u64 {
        let p = scratch.join(format!("o{i}"));
        std::fs::write(&p, data(20 + i, (2 << 20) + i as usize)).unwrap();
        aws_cp(&c, p.to_str().unwrap(), &format!("s3://{b}/o{i}"));
        let o = aws(&c, &["s3", "rm", &format!("s3://{b}/o{i}")]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let node0 = c.layout.nodes[0].id.clone();
    let before = node_records(&c, &node0);
    assert!(before > 0, "node 0 holds shards of the deleted objects");

    c.kill_node(0); // SIGKILL
    let p = cli(&c, &["trash", "purge", "--all"]);
    assert_eq!(p["items"], 3, "{p}");
    let st = cli(&c, &["gc", "run"]);
    let waiting = st["pending_shards"].as_u64().unwrap();
    assert!(waiting > 0, "node 0's shards wait for it: {st}");
    assert!(
        st["totals"]["shards_deleted"].as_u64().unwrap_or(0) > 0,
        "{st}"
    );

    c.restart_node(0).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        let st = cli(&c, &["gc", "run"]);
        if st["pending_shards"] == 0 || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(st["pending_shards"], 0, "{st}");
    assert_eq!(st["pending_stripes"], 0, "{st}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let n = node_records(&c, &node0);
        if n == 0 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("node 0: {before} shard records -> {after}; {waiting} shards had waited");
    assert_eq!(after, 0, "node 0 deleted its shards after it came back");
}
