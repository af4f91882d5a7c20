//! Disk states as an operator sees them in `kdss-cli disk list`: a disk taken offline by
//! hand gets no new shards while its data stays readable; a node killed past the silent
//! grace has its disks go offline with the reason; a disk made slow by the fault layer turns
//! suspect and readers go around it.

use crate::common::*;
use kdss_testkit::{Cluster, ClusterOpts};
use serde_json::Value;
use std::time::{Duration, Instant};

fn disks(c: &Cluster) -> Vec<Value> {
    cli(c, &["disk", "list"])
        .as_array()
        .expect("disk list is an array")
        .clone()
}

fn disk<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|d| d["disk_id"] == id)
        .unwrap_or_else(|| panic!("disk {id} not listed: {list:?}"))
}

/// Polls `disk list` until `ok` holds, or panics with the last listing after `within`.
async fn wait_disks(c: &Cluster, within: Duration, what: &str, ok: impl Fn(&[Value]) -> bool) {
    let t = Instant::now();
    loop {
        let list = disks(c);
        if ok(&list) {
            return;
        }
        assert!(
            t.elapsed() < within,
            "{what} not seen within {within:?}: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn records(list: &[Value], id: &str) -> u64 {
    disk(list, id)["records"].as_u64().unwrap()
}

fn put(c: &Cluster, name: &str, seed: u64, len: usize) -> Vec<u8> {
    let dir = c.scratch("health");
    let body = data(seed, len);
    let f = dir.join(name);
    std::fs::write(&f, &body).unwrap();
    aws_cp(
        c,
        f.to_str().unwrap(),
        &format!("s3://{}/{name}", c.bucket()),
    );
    body
}

fn get(c: &Cluster, name: &str, want: &[u8]) {
    let out = c.scratch("health").join(format!("{name}.back"));
    aws_cp(
        c,
        &format!("s3://{}/{name}", c.bucket()),
        out.to_str().unwrap(),
    );
    assert_file(&out, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_taken_offline_by_hand_gets_no_new_shards_and_stays_readable() {
    let Some(c) = start(false, ClusterOpts::default()).await else {
        return;
    };
    let before = put(&c, "before.bin", 1, 3 << 20);
    let list = disks(&c);
    let victim = list[0]["disk_id"].as_str().unwrap().to_string();
    // File-backed disks have no S.M.A.R.T.: the listing says so and why, never a blank.
    for d in &list {
        assert_eq!(
            d["health"]["smart"], "not available: a regular file, not a block device",
            "{d}"
        );
        assert!(d["heartbeat_age_ms"].as_i64().unwrap() >= 0, "{d}");
    }

    let set = cli(&c, &["disk", "offline", &victim, "--reason", "cable check"]);
    assert_eq!(set[0]["state"], "offline", "{set}");
    let list = disks(&c);
    let d = disk(&list, &victim);
    assert_eq!(
        (&d["state"], &d["reason"], &d["set_by"]),
        (&"offline".into(), &"cable check".into(), &"operator".into()),
        "{d}"
    );

    // Let the heartbeats catch up with the first write, then write 4 stripes: with the
    // victim out, 7 disks remain for 7 shards, so each of them takes one shard per stripe.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let base = disks(&c);
    let others: Vec<String> = base
        .iter()
        .map(|d| d["disk_id"].as_str().unwrap().to_string())
        .filter(|id| *id != victim)
        .collect();
    let total = |l: &[Value]| others.iter().map(|id| records(l, id)).sum::<u64>();
    for i in 0..4 {
        put(&c, &format!("after-{i}.bin"), 10 + i, 3 << 20);
    }
    let want = total(&base) + 4 * 7;
    wait_disks(&c, Duration::from_secs(15), "the new shards", |l| {
        total(l) >= want
    })
    .await;
    assert_eq!(
        records(&disks(&c), &victim),
        records(&base, &victim),
        "an offline disk received new shards"
    );
    get(&c, "before.bin", &before);

    let set = cli(&c, &["disk", "online", &victim]);
    assert_eq!(set[0]["state"], "online", "{set}");
    assert_eq!(disk(&disks(&c), &victim)["reason"], "");
    // Back online it takes shards again (7 of 8 disks per stripe: soon, not surely at once).
    let start_records = records(&disks(&c), &victim);
    for i in 0..6 {
        put(&c, &format!("online-{i}.bin"), 30 + i, 1 << 20);
    }
    wait_disks(
        &c,
        Duration::from_secs(15),
        "shards on the disk back online",
        |l| records(l, &victim) > start_records,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_silent_past_the_grace_has_its_disks_taken_offline() {
    let Some(mut c) = start(
        false,
        ClusterOpts {
            master_extra_toml: "[health]\ninterval_sec = 1\nsilent_grace_sec = 4\n".into(),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let node = c.layout.nodes[3].id.clone();
    c.kill_node(3);
    wait_disks(
        &c,
        Duration::from_secs(30),
        "the silent node's disks offline",
        |l| {
            let mine: Vec<&Value> = l.iter().filter(|d| d["node"] == node).collect();
            mine.len() == 2
                && mine.iter().all(|d| {
                    d["state"] == "offline"
                        && d["set_by"] == "auto"
                        && d["node_online"] == false
                        && d["reason"].as_str().unwrap_or("").contains("silent")
                })
        },
    )
    .await;
    // The other nodes' disks stay online.
    let list = disks(&c);
    assert!(
        list.iter()
            .filter(|d| d["node"] != node)
            .all(|d| d["state"] == "online"),
        "{list:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_disk_becomes_suspect_and_readers_go_around_it() {
    let Some(mut c) = start(
        false,
        ClusterOpts {
            storage_extra_toml: "[fault]\nenabled = true\n\n[scrub]\nenabled = false\n\n\
                                 [compactor]\nenabled = false\n"
                .into(),
            master_extra_toml: "[health]\ninterval_sec = 1\nmin_samples = 2\n\
                                suspect_after_windows = 2\nrecover_after_windows = 600\n"
                .into(),
            ..Default::default()
        },
    )
    .await
    else {
        return;
    };
    let slow_path = c.layout.nodes[0].disks[0].display().to_string();
    let victim = disks(&c)
        .iter()
        .find(|d| d["path"] == slow_path)
        .expect("the slow disk is listed")["disk_id"]
        .as_str()
        .unwrap()
        .to_string();
    // Objects written while every disk is fast: at least one has a shard on the victim.
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| put(&c, &format!("obj-{i}.bin"), 50 + i, 3 << 20))
        .collect();

    c.inject_fault(0, &format!("disk={slow_path}&kind=latency&latency_ms=400"))
        .await
        .expect("the node takes the signed fault");
    let t = Instant::now();
    let mut i = 0;
    loop {
        let list = disks(&c);
        let d = disk(&list, &victim);
        if d["state"] == "suspect" {
            assert!(d["reason"].as_str().unwrap().starts_with("slow:"), "{d}");
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "the slow disk never became suspect: {list:#?}"
        );
        // Writes give every disk latency samples (each stripe lands on 7 of the 8 disks).
        put(&c, &format!("load-{i}.bin"), 100 + i, 1 << 20);
        i += 1;
    }
    // Readers now go around the suspect disk: its read count stays flat while the objects,
    // some with a shard on it, read back whole.
    let reads = |l: &[Value]| disk(l, &victim)["health"]["read_samples"].as_u64().unwrap();
    c.restart_gateway(0).await.unwrap(); // a cold gateway cache: reads must hit the nodes
    tokio::time::sleep(Duration::from_secs(11)).await; // the latency window empties
    let before = reads(&disks(&c));
    for (i, b) in bodies.iter().enumerate() {
        get(&c, &format!("obj-{i}.bin"), b);
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // a heartbeat carries the counts
    assert_eq!(
        reads(&disks(&c)),
        before,
        "a reader read from the suspect disk"
    );
}
