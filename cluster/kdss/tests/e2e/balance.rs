//! Balance: four full nodes take a fifth, empty one; `kdss-cli balance start` moves shards
//! onto it under a bandwidth limit while a client keeps reading and writing, the master
//! leader is killed mid-balance and the new leader carries on, and the disks end within
//! the threshold with every object and file byte-exact. A second cluster shows the balance
//! waiting while clients are busy and carrying on by itself after a storage node is killed
//! in the middle of its moves, with every shard still mapped once.

use crate::common::*;
use kdss_common::EcPolicy;
use kdss_testkit::{Cluster, ClusterOpts, Mount};
use std::time::{Duration, Instant};

/// The limit the balance runs under (bytes/s).
const LIMIT: u64 = 3 << 20;
/// The threshold in master.toml (percentage points).
const THRESHOLD: u32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_node_is_filled_under_a_limit_across_a_leader_kill_without_a_failed_request() {
    let opts = ClusterOpts {
        masters: 3,
        nodes: 4,
        disk_size: 128 << 20,
        disks_per_node: 2,
        ec: EcPolicy::new(5, 2).unwrap(),
        master_extra_toml: format!(
            "[balance]\nthreshold_pct = {THRESHOLD}\ninterval_sec = 2\nmax_concurrent = 2\n"
        ),
        ..ClusterOpts::default()
    };
    let fuse = kdss_testkit::fuse_unavailable();
    let Some(mut c) = start(false, opts).await else {
        return;
    };
    let scratch = c.scratch("balance");
    // About 11 % of each of the eight disks: 80 MiB of objects at 5+2 is 112 MiB of shards.
    let objects = put_objects(&c, &scratch, "full/", 700, 10, (8 << 20, 1));
    let files: Vec<(String, Vec<u8>)> = (0..2)
        .map(|i| {
            (
                format!("file-{i}.bin"),
                data(800 + i, (3 << 20) + 99 * i as usize),
            )
        })
        .collect();
    if fuse.is_none() {
        let m = Mount::new(&c, "before", &c.bucket(), "").await.unwrap();
        for (name, bytes) in &files {
            std::fs::write(m.join(name), bytes).unwrap();
        }
    }

    c.restart_with_nodes(5).await.unwrap();
    let before = wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(30),
        "five disks, the new one empty, over the threshold",
        |b| {
            b["disks"].as_array().unwrap().len() == 10
                && b["imbalance_pct"].as_f64().unwrap() > f64::from(THRESHOLD)
        },
    )
    .await;
    kdss_cli_text(&c, &["balance", "status"]); // before
    assert_eq!(before["balance"]["state"], "no balance running");

    // A steady client, light enough that its own writes do not swamp the balance.
    let load = S3Load::paced(&c, 50_000..300_000, 0.1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = Instant::now();
    let started = cli(&c, &["balance", "start", "--max-bandwidth", "3MiB/s"]);
    assert_eq!(started["balance"]["running"], true, "{started:#}");
    assert_eq!(started["max_bandwidth_bytes_per_sec"], LIMIT);

    // Mid-balance: some shards moved, the rate within the limit, objects readable.
    let during = wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(60),
        "shards moving",
        |b| b["balance"]["moved_shards"].as_u64().unwrap() >= 8,
    )
    .await;
    let elapsed = t0.elapsed().as_secs_f64();
    kdss_cli_text(&c, &["balance", "status"]); // during
    let moved = during["balance"]["moved_bytes"].as_u64().unwrap() as f64;
    // Each move books its bytes before it starts: at most the limit over the time since
    // the start, plus the moves that may be in flight at once (two 2 MiB shards).
    let allowed = LIMIT as f64 * elapsed * 1.1 + 2.0 * (2 << 20) as f64;
    eprintln!(
        "balance: {moved} bytes in {elapsed:.1} s = {:.2} MiB/s against a limit of 3 MiB/s",
        moved / elapsed / (1 << 20) as f64
    );
    assert!(moved <= allowed, "moved {moved} bytes in {elapsed:.1} s");
    get(&c, &scratch, &objects[0].0, &objects[0].1);

    // The leader dies mid-balance; the new one carries on from the replicated request.
    let leader = c.leader_index().await.unwrap();
    c.kill_master(leader);
    let after = wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(240),
        "the balance done",
        |b| {
            b["balance"]["running"] == false
                && b["balance"]["state"] == "balanced"
                && b["imbalance_pct"].as_f64().unwrap() <= f64::from(THRESHOLD)
        },
    )
    .await;
    let took = t0.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines = load.stop();
    kdss_cli_text(&c, &["balance", "status"]); // after
    let failed: Vec<&String> = lines.iter().filter(|l| !l.starts_with("OK")).collect();
    eprintln!(
        "balance: done in {:.1} s; imbalance {:.1} points; {} put+get pairs under it, {} failed",
        took.as_secs_f64(),
        after["imbalance_pct"],
        lines.len(),
        failed.len()
    );
    assert!(
        lines.len() >= 3,
        "the load made too few requests: {lines:?}"
    );
    assert!(failed.is_empty(), "client requests failed: {failed:?}");
    let on_new: u64 = after["disks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["node"] == "node-5")
        .map(|d| d["used_bytes"].as_u64().unwrap())
        .sum();
    assert!(on_new > 8 << 20, "node-5 took shards: {after:#}");

    for (k, b) in &objects {
        get(&c, &scratch, k, b);
    }
    if fuse.is_none() {
        let m = Mount::new(&c, "after", &c.bucket(), "").await.unwrap();
        for (name, bytes) in &files {
            assert_file(&m.join(name), bytes);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_start_and_stop_are_for_operators_and_a_balanced_cluster_stays_put() {
    let Some(c) = start(
        false,
        ClusterOpts {
            nodes: 4,
            master_extra_toml: "[balance]\ninterval_sec = 1\n".into(),
            ..ClusterOpts::default()
        },
    )
    .await
    else {
        return;
    };
    // An empty cluster is balanced: start ends at once, nothing moves.
    cli(&c, &["balance", "start"]);
    let b = wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(20),
        "the balance ended",
        |b| b["balance"]["running"] == false,
    )
    .await;
    assert_eq!(b["balance"]["state"], "balanced", "{b:#}");
    assert_eq!(b["balance"]["moved_shards"], 0);
    // stop answers with the state; a bad rate is refused before anything is asked.
    let s = cli(&c, &["balance", "stop"]);
    assert_eq!(s["balance"]["running"], false);
    let out = cli_output(
        &c.masters(),
        &c.admin_keys(),
        &["balance", "start", "--max-bandwidth", "fast"],
    );
    assert!(!out.status.success());
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        err.contains("--max-bandwidth") && err.contains("not a size"),
        "{err}"
    );
    // A plain user may look but not start.
    let user = cli(&c, &["user", "create", "plain"]);
    let keys = (
        user["access_key"].as_str().unwrap().to_string(),
        user["secret_key"].as_str().unwrap().to_string(),
    );
    let out = cli_output(&c.masters(), &keys, &["balance", "start"]);
    assert!(!out.status.success());
    let err = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(err.contains("operator or admin only"), "{err}");
    let out = cli_output(&c.masters(), &keys, &["balance", "status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sum of the shards the map names on all disks: a move changes where a shard is, never
/// how many there are, so a lost or doubled shard shows here.
fn mapped_shards(c: &Cluster) -> u64 {
    cli(c, &["disk", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mapped_shards"].as_u64().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_waits_for_busy_clients_and_survives_a_node_killed_mid_move() {
    let opts = ClusterOpts {
        nodes: 4,
        disk_size: 128 << 20,
        disks_per_node: 2,
        ec: EcPolicy::new(5, 2).unwrap(),
        // Any client traffic at all counts as heavy here, so the load below pauses it.
        master_extra_toml: format!(
            "[balance]\nthreshold_pct = {THRESHOLD}\ninterval_sec = 2\nmax_concurrent = 2\n\
             max_bandwidth = \"4MiB/s\"\npause_client_per_disk = \"256KiB/s\"\n{GC_BY_HAND}"
        ),
        ..ClusterOpts::default()
    };
    let Some(mut c) = start(false, opts).await else {
        return;
    };
    let scratch = c.scratch("balance-kill");
    let objects = put_objects(&c, &scratch, "full/", 900, 10, (8 << 20, 1));
    c.restart_with_nodes(5).await.unwrap();
    wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(30),
        "the fifth node reported",
        |b| b["disks"].as_array().unwrap().len() == 10,
    )
    .await;

    // Busy clients: the balance is asked for but waits, and says why.
    let load = S3Load::start(&c);
    tokio::time::sleep(Duration::from_secs(5)).await;
    cli(&c, &["balance", "start"]);
    let paused = wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(30),
        "the balance waiting for the clients",
        |b| {
            b["balance"]["state"]
                .as_str()
                .unwrap()
                .starts_with("paused: client load")
        },
    )
    .await;
    kdss_cli_text(&c, &["balance", "status"]); // paused
    tokio::time::sleep(Duration::from_secs(4)).await;
    let still = cli(&c, &["balance", "status"]);
    assert_eq!(
        still["balance"]["moved_shards"], 0,
        "moves ran under client load: {still:#}\nbefore: {paused:#}"
    );
    let lines = load.stop();
    let failed: Vec<&String> = lines.iter().filter(|l| !l.starts_with("OK")).collect();
    assert!(
        lines.len() >= 3,
        "the load made too few requests: {lines:?}"
    );
    assert!(failed.is_empty(), "client requests failed: {failed:?}");
    // With the collector idle, only a lost or doubled shard changes this from here on.
    let shards = mapped_shards(&c);

    // The clients stop: the moves start; a node dies in the middle of them.
    wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(60),
        "moves once the clients went quiet",
        |b| b["balance"]["moved_shards"].as_u64().unwrap() >= 4,
    )
    .await;
    c.kill_node(1);
    tokio::time::sleep(Duration::from_secs(8)).await;
    kdss_cli_text(&c, &["balance", "status"]); // a node down
    for (k, b) in objects.iter().step_by(3) {
        get(&c, &scratch, k, b);
    }
    c.restart_node(1).await.unwrap();

    // The balance carries on by itself and ends within the threshold, with every shard
    // still mapped once and every object byte-exact.
    let after = wait_cli(
        &c,
        &["balance", "status"],
        Duration::from_secs(300),
        "the balance done after the node came back",
        |b| {
            b["balance"]["state"] == "balanced"
                && b["imbalance_pct"].as_f64().unwrap() <= f64::from(THRESHOLD)
        },
    )
    .await;
    kdss_cli_text(&c, &["balance", "status"]); // after
    assert_eq!(mapped_shards(&c), shards, "{after:#}");
    for (k, b) in &objects {
        get(&c, &scratch, k, b);
    }
}
