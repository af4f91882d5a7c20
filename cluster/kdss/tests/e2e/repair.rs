//! Redundancy that comes back: a disk lost for good is rebuilt elsewhere, so losing two more
//! nodes afterwards loses nothing; corrupt shards found by the scrubber are rewritten; a
//! drained disk empties while clients keep reading and writing without a failed request.

use crate::common::*;
use kdss_common::EcPolicy;
use kdss_testkit::{Cluster, ClusterOpts, Mount};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

/// Fast health and repair passes for tests; the repair bandwidth stays bounded.
const FAST: &str = "[health]\ninterval_sec = 1\nsilent_grace_sec = 3\n\n\
                    [repair]\ninterval_sec = 2\nmax_bandwidth = \"512MiB\"\n";

fn disks(c: &Cluster) -> Vec<Value> {
    cli(c, &["disk", "list"]).as_array().unwrap().clone()
}

fn disk_of<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|d| d["disk_id"] == id)
        .unwrap_or_else(|| panic!("disk {id} not listed: {list:#?}"))
}

/// Waits until the map names no shard on `disk_ids` and repair has nothing queued or
/// running; returns the last `repair status`.
async fn wait_repaired(c: &Cluster, disk_ids: &[String], within: Duration) -> Value {
    let t = Instant::now();
    loop {
        let list = disks(c);
        let left: u64 = disk_ids
            .iter()
            .map(|id| disk_of(&list, id)["mapped_shards"].as_u64().unwrap())
            .sum();
        let st = cli(c, &["repair", "status"]);
        if left == 0 && st["queued_shards"] == 0 && st["running_shards"] == 0 {
            return st;
        }
        assert!(
            t.elapsed() < within,
            "repair not done within {within:?}: {left} shard(s) still mapped on {disk_ids:?}; \
             status {st:#}\n{}",
            c.all_logs(40)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_lost_for_good_is_rebuilt_so_two_more_lost_nodes_lose_nothing() {
    let Some(mut c) = start(
        true,
        ClusterOpts {
            nodes: 8,
            disks_per_node: 1,
            disk_size: 128 << 20,
            ec: EcPolicy::new(5, 2).unwrap(),
            master_extra_toml: FAST.into(),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let scratch = c.scratch("lose3");
    let objects = put_objects(&c, &scratch, "obj/", 100, 6, (700_000, 1_300_000));
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                format!("f{i}.bin"),
                data(200 + i, 500_000 + i as usize * 2_100_000),
            )
        })
        .collect();
    let b = c.bucket();
    {
        let m = Mount::new(&c, "w", &b, "").await.unwrap();
        for (name, body) in &files {
            std::fs::write(m.join(name), body).unwrap();
        }
    }

    // Node 2 dies and its device is gone for good.
    let dead = c.layout.nodes[2].clone();
    let dead_disk = disks(&c)
        .iter()
        .find(|d| d["node"] == dead.id.as_str())
        .map(|d| d["disk_id"].as_str().unwrap().to_string())
        .expect("the node's disk is listed");
    let mapped = disk_of(&disks(&c), &dead_disk)["mapped_shards"]
        .as_u64()
        .unwrap();
    assert!(
        mapped > 0,
        "the victim held no shard: the test would prove nothing"
    );
    let t0 = Instant::now();
    c.kill_node(2);
    for p in &dead.disks {
        std::fs::remove_file(p).unwrap();
    }
    let st = wait_repaired(
        &c,
        std::slice::from_ref(&dead_disk),
        Duration::from_secs(180),
    )
    .await;
    let took = t0.elapsed();
    eprintln!(
        "FIGURE lost-node repair: {mapped} shard(s) rebuilt, fully redundant {:.1} s after the \
         kill (3 s silent grace included); status {st}",
        took.as_secs_f64()
    );
    assert!(st["done_shards"].as_u64().unwrap() >= mapped, "{st:#}");
    assert_eq!(st["unrepairable_stripes"], 0, "{st:#}");

    // Two more nodes go. Every stripe had 7 shards on the 7 survivors; 5 remain: enough.
    c.kill_node(5);
    c.kill_node(6);
    for (k, body) in &objects {
        get(&c, &scratch, k, body);
    }
    let m = Mount::new(&c, "r", &b, "").await.unwrap();
    for (name, body) in &files {
        assert_file(&m.join(name), body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_shards_found_by_the_scrubber_are_rewritten_and_the_errors_stop() {
    let Some(mut c) = start(
        false,
        ClusterOpts {
            master_extra_toml: FAST.into(),
            storage_extra_toml: "[scrub]\ninterval_sec = 1\nbytes_per_sec = 268435456\n".into(),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let scratch = c.scratch("scrub");
    let objects = put_objects(&c, &scratch, "s", 300, 4, (1_000_000, 900_000));
    // Every shard record of node 1's first disk gets a flipped byte.
    let path = c.layout.nodes[1].disks[0].display().to_string();
    let victim = disks(&c)
        .iter()
        .find(|d| d["path"] == path.as_str())
        .map(|d| d["disk_id"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("{path} not listed"));
    let hits = corrupt_disk(&mut c, 1, 0).await;
    assert!(!hits.is_empty(), "no shard records on the disk");

    // The scrubber reports them, repair moves each onto a healthy disk and drops the bad
    // copy: the map names no shard of the victim that was corrupt.
    let st = wait_cli(
        &c,
        &["repair", "status"],
        Duration::from_secs(120),
        "the corrupt shards rebuilt",
        |s| s["done_shards"].as_u64().unwrap() >= hits.len() as u64 && s["queued_shards"] == 0,
    )
    .await;
    eprintln!(
        "scrub -> repair: {} corrupt record(s), status {st}",
        hits.len()
    );
    // The checksum-error count stops growing: scrub passes keep running and find nothing
    // new once the corrupt records are gone.
    let errors = |c: &Cluster| {
        disk_of(&disks(c), &victim)["checksum_errors"]
            .as_u64()
            .unwrap()
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = errors(&c);
    assert!(
        settled >= hits.len() as u64,
        "scrub never counted the corruption"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        errors(&c),
        settled,
        "checksum errors still growing after repair"
    );
    let d = disks(&c);
    assert_eq!(disk_of(&d, &victim)["corrupt_shards"], 0, "{d:#?}");
    for (k, b) in &objects {
        get(&c, &scratch, k, b);
    }
}

/// Puts and gets objects with boto3 (no retries) until stdin closes; prints one line per
/// request, `OK ...` or `FAIL ...`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_disk_empties_while_clients_read_and_write_without_a_failure() {
    let Some(c) = start(
        false,
        ClusterOpts {
            master_extra_toml: FAST.into(),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let scratch = c.scratch("drain");
    let objects = put_objects(&c, &scratch, "d", 400, 5, (800_000, 1_500_000));
    let list = disks(&c);
    let victim = list
        .iter()
        .max_by_key(|d| d["mapped_shards"].as_u64().unwrap())
        .map(|d| d["disk_id"].as_str().unwrap().to_string())
        .unwrap();
    let mapped = disk_of(&list, &victim)["mapped_shards"].as_u64().unwrap();
    assert!(mapped > 0, "{list:#?}");

    let load = S3Load::start(&c);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = Instant::now();
    let set = cli(&c, &["disk", "drain", &victim, "--reason", "replace"]);
    assert_eq!(set[0]["state"], "draining", "{set}");
    let st = wait_repaired(&c, std::slice::from_ref(&victim), Duration::from_secs(120)).await;
    let took = t0.elapsed();
    // Keep the load going a little after the last move, then stop it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lines = load.stop();
    let failed: Vec<&String> = lines.iter().filter(|l| !l.starts_with("OK")).collect();
    eprintln!(
        "drain: {} shard(s) moved in {:.1} s under load ({} put+get pairs, {} failed); status {st}",
        st["done_shards"],
        took.as_secs_f64(),
        lines.len(),
        failed.len()
    );
    assert!(
        lines.len() >= 3,
        "the load made too few requests: {lines:?}"
    );
    assert!(
        failed.is_empty(),
        "client requests failed during the drain: {failed:?}"
    );
    // The old copies are deleted once moved: the disk holds no live record.
    wait_cli(
        &c,
        &["disk", "list"],
        Duration::from_secs(20),
        "the drained disk empty",
        |l| {
            l.as_array()
                .unwrap()
                .iter()
                .any(|d| d["disk_id"] == victim.as_str() && d["records"] == 0)
        },
    )
    .await;
    for (k, b) in &objects {
        get(&c, &scratch, k, b);
    }
    let _ = std::io::stdout().flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_finishes_across_a_leader_kill_and_a_node_killed_mid_job() {
    let Some(mut c) = start(
        false,
        ClusterOpts {
            masters: 3,
            // Two disks go: 7 healthy ones stay for the 7 shards of every stripe.
            nodes: 9,
            disks_per_node: 1,
            disk_size: 128 << 20,
            ec: EcPolicy::new(5, 2).unwrap(),
            // Slow enough that the kills land while shards are being rebuilt.
            master_extra_toml: FAST.replace("512MiB", "2MiB"),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let scratch = c.scratch("kills");
    let objects = put_objects(&c, &scratch, "k", 500, 6, (2_000_000, 700_000));
    let list = disks(&c);
    let id_of = |n: usize| {
        list.iter()
            .find(|d| d["node"] == c.layout.nodes[n].id.as_str())
            .map(|d| d["disk_id"].as_str().unwrap().to_string())
            .unwrap()
    };
    let (first, second) = (id_of(0), id_of(3));
    cli(&c, &["disk", "offline", &first, "--reason", "test"]);
    // Let the (throttled) repair get going, then kill the leader and a node.
    wait_cli(
        &c,
        &["repair", "status"],
        Duration::from_secs(30),
        "a rebuild under way",
        |s| s["done_shards"].as_u64().unwrap() + s["running_shards"].as_u64().unwrap() >= 1,
    )
    .await;
    let leader = c.leader_index().await.unwrap();
    c.kill_master(leader);
    c.kill_node(3);
    let st = wait_repaired(&c, &[first, second], Duration::from_secs(240)).await;
    assert_eq!(st["unrepairable_stripes"], 0, "{st:#}");
    for (k, b) in &objects {
        get(&c, &scratch, k, b);
    }
}
