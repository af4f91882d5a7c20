//! Growing a cluster: `kdss up --nodes N` on an existing data dir with a larger N formats
//! and starts the new nodes, which register and take new shards, while every old object
//! and file reads back byte-exact; a smaller N is refused with the drain to use instead.
//! `kdss-cli balance status` shows every disk with the used share `disk list` reports and
//! the spread between them.

use crate::common::*;
use kdss_launch::cluster_json::ClusterState;
use kdss_testkit::{Cluster, ClusterOpts, Mount};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// `disk list --output json` as (disk id -> entry).
fn disks(c: &Cluster) -> BTreeMap<String, Value> {
    let list = cli(c, &["disk", "list"]);
    list.as_array()
        .expect("disk list is an array")
        .iter()
        .map(|d| (d["disk_id"].as_str().unwrap().to_string(), d.clone()))
        .collect()
}

/// Waits until `node`'s disks report used bytes (its heartbeat after the writes), or panics.
async fn wait_used_on(c: &Cluster, node: &str) -> u64 {
    let start = Instant::now();
    loop {
        let used: u64 = disks(c)
            .values()
            .filter(|d| d["node"] == node)
            .map(|d| d["used_bytes"].as_u64().unwrap())
            .sum();
        if used > 0 {
            return used;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{node} reports no used bytes 30 s after the writes: {:#?}",
            disks(c)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `balance status` lists every disk of `disk list` with the same used share, and its
/// imbalance is the spread of the disks it counts. Retried a few times: a heartbeat may
/// land between the two calls and change a figure.
async fn check_balance_status(c: &Cluster, want_disks: usize) -> Value {
    let mut last = String::new();
    for _ in 0..10 {
        let list = disks(c);
        let b = cli(c, &["balance", "status"]);
        match compare_balance(&list, &b, want_disks) {
            Ok(()) => return b,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    panic!("balance status disagrees with disk list: {last}");
}

fn compare_balance(
    list: &BTreeMap<String, Value>,
    b: &Value,
    want_disks: usize,
) -> Result<(), String> {
    let rows = b["disks"].as_array().ok_or("no disks array")?;
    if rows.len() != want_disks || list.len() != want_disks {
        return Err(format!(
            "{} disks in balance status, {} in disk list, want {want_disks}",
            rows.len(),
            list.len()
        ));
    }
    let mut counted = Vec::new();
    for r in rows {
        let id = r["disk_id"].as_str().unwrap();
        let d = list.get(id).ok_or(format!("{id} not in disk list"))?;
        let (used, cap) = (
            d["used_bytes"].as_u64().unwrap(),
            d["capacity_bytes"].as_u64().unwrap(),
        );
        let pct = r["used_pct"].as_f64().unwrap();
        let want = used as f64 * 100.0 / cap as f64;
        if (pct - want).abs() > 1e-9 || r["used_bytes"].as_u64() != Some(used) {
            return Err(format!(
                "{id}: {pct}% in balance status, {want}% in disk list"
            ));
        }
        assert_eq!(r["node"], d["node"], "{id}");
        assert_eq!(r["state"], "online", "{id}: every disk is in service here");
        if r["counted"] == true {
            counted.push(pct);
        }
    }
    assert_eq!(counted.len(), want_disks, "every online disk counts");
    let max = counted.iter().cloned().fold(f64::MIN, f64::max);
    let min = counted.iter().cloned().fold(f64::MAX, f64::min);
    let imbalance = b["imbalance_pct"].as_f64().unwrap();
    assert!(
        (imbalance - (max - min)).abs() < 1e-9,
        "imbalance {imbalance}, disks from {min} to {max}"
    );
    assert_eq!(
        b["over_threshold"].as_bool().unwrap(),
        imbalance > b["threshold_pct"].as_f64().unwrap()
    );
    assert_eq!(b["balance"]["state"], "no balance running");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_node_joins_keeps_the_old_data_and_takes_new_writes() {
    let opts = ClusterOpts {
        nodes: 4,
        master_extra_toml: "[balance]\nthreshold_pct = 7\n".into(),
        ..ClusterOpts::default()
    };
    let Some(mut c) = start(false, opts).await else {
        return;
    };
    let b = c.bucket();
    let scratch = c.scratch("objects");
    let fuse = kdss_testkit::fuse_unavailable();
    if let Some(why) = &fuse {
        eprintln!("no ksfs part: {why}");
    }

    // Before: objects through S3 (several stripes, one stripe, inline) and files through
    // ksfs when it can mount.
    let objects: Vec<(String, Vec<u8>)> = [(9 << 20) + 321, (3 << 20) + 5, 2_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("old/obj-{i}.bin"), data(100 + i as u64, len)))
        .collect();
    for (key, bytes) in &objects {
        let src = scratch.join("in");
        std::fs::write(&src, bytes).unwrap();
        aws_cp(&c, src.to_str().unwrap(), &format!("s3://{b}/{key}"));
    }
    let files: Vec<(String, Vec<u8>)> = [(6 << 20) + 17, 5_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| (format!("fs/file-{i}.bin"), data(200 + i as u64, len)))
        .collect();
    if fuse.is_none() {
        let m = Mount::new(&c, "before", &b, "").await.unwrap();
        std::fs::create_dir_all(m.join("fs")).unwrap();
        for (name, bytes) in &files {
            std::fs::write(m.join(name), bytes).unwrap();
        }
    }
    let before = disks(&c);
    assert_eq!(before.len(), 8, "4 nodes x 2 disks: {before:#?}");
    check_balance_status(&c, 8).await;

    // Grow: the same data dir with a fifth node.
    let old_ports: Vec<String> = c.layout.nodes.iter().map(|n| n.grpc.clone()).collect();
    c.restart_with_nodes(5).await.unwrap();
    assert_eq!(c.layout.nodes.len(), 5);
    let kept: Vec<String> = c.layout.nodes[..4].iter().map(|n| n.grpc.clone()).collect();
    assert_eq!(kept, old_ports, "old nodes keep their ports");
    let saved = kdss_launch::Layout::load(&c.spec.data_dir).unwrap();
    assert_eq!(saved.nodes.len(), 5, "the grown layout is saved");
    let json = c.describe(None, ClusterState::Running);
    assert_eq!(json.storage_nodes.len(), 5);
    assert!(json.storage_nodes.iter().all(|n| n.pid.is_some()));

    let after = disks(&c);
    assert_eq!(after.len(), 10, "{after:#?}");
    let ids: BTreeSet<&String> = after.keys().collect();
    assert_eq!(ids.len(), 10, "disk ids are unique cluster-wide");
    assert!(
        before.keys().all(|id| after.contains_key(id)),
        "old disks kept"
    );
    let new: Vec<&Value> = after.values().filter(|d| d["node"] == "node-5").collect();
    assert_eq!(
        new.len(),
        2,
        "node-5 registered with both disks: {after:#?}"
    );
    for d in &new {
        assert_eq!(d["state"], "online", "{d}");
        assert_eq!(d["node_online"], true, "{d}");
        assert_eq!(d["device_state"], "online", "{d}");
        assert!(!before.contains_key(d["disk_id"].as_str().unwrap()));
    }

    // New writes land on the new node: with 5 nodes every 5+2 stripe puts a shard on each.
    for i in 0..3 {
        let bytes = data(300 + i, (4 << 20) + 11);
        let src = scratch.join("new");
        std::fs::write(&src, &bytes).unwrap();
        aws_cp(&c, src.to_str().unwrap(), &format!("s3://{b}/new/{i}.bin"));
        let dst = scratch.join("new.out");
        aws_cp(&c, &format!("s3://{b}/new/{i}.bin"), dst.to_str().unwrap());
        assert_file(&dst, &bytes);
    }
    let used = wait_used_on(&c, "node-5").await;
    eprintln!("node-5 holds {used} bytes after the new writes");

    // Every old object and file reads back byte-exact.
    for (key, bytes) in &objects {
        let dst = scratch.join("old.out");
        aws_cp(&c, &format!("s3://{b}/{key}"), dst.to_str().unwrap());
        assert_file(&dst, bytes);
    }
    if fuse.is_none() {
        let m = Mount::new(&c, "after", &b, "").await.unwrap();
        for (name, bytes) in &files {
            assert_file(&m.join(name), bytes);
        }
    }

    // balance status on the grown cluster: ten disks, the threshold from master.toml.
    let bal = check_balance_status(&c, 10).await;
    assert_eq!(bal["threshold_pct"], 7);
    let node5: Vec<&Value> = bal["disks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["node"] == "node-5")
        .collect();
    assert_eq!(node5.len(), 2);
    let text = kdss_cli_text(&c, &["balance", "status"]);
    assert!(text.contains("node-5/disk-0.img"), "{text}");
    assert!(text.contains("no balance running"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_nodes_are_refused_with_the_drain_to_use_instead() {
    let mut c = Cluster::start(ClusterOpts {
        nodes: 5,
        disk_size: 128 << 20,
        ..ClusterOpts::default()
    })
    .await
    .unwrap();

    // Through the harness (the launcher `kdss up` uses): refused, the cluster unchanged.
    let e = c.restart_with_nodes(4).await.unwrap_err().to_string();
    assert!(
        e.contains("has 5 storage nodes, asked for --nodes 4"),
        "{e}"
    );
    assert!(e.contains("kdss-cli disk drain ID"), "{e}");
    assert_eq!(c.layout.nodes.len(), 5);
    assert_eq!(disks(&c).len(), 10);

    // The real command on the stopped data dir: the same words, nothing started.
    c.stop();
    let out = std::process::Command::new(kdss_testkit::bin_path("kdss").unwrap())
        .args(["up", "--no-mount", "--nodes", "4", "--data"])
        .arg(&c.spec.data_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "kdss up --nodes 4 ran: {err}");
    assert!(err.contains("asked for --nodes 4"), "{err}");
    assert!(err.contains("Removing a node is a drain"), "{err}");
    assert!(err.contains("kdss-cli disk drain ID"), "{err}");
    assert!(!err.contains("KDSS is up"), "{err}");
    let layout = kdss_launch::Layout::load(&c.spec.data_dir).unwrap();
    assert_eq!(layout.nodes.len(), 5, "the data dir still has 5 nodes");
}
