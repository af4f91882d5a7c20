//! kdss-cli against a real local cluster (3 masters, so `status` has a leader to name), run
//! as a user would run it: the binary, settings from flags and environment, JSON output.

use std::process::Command;

use kdss_testkit::{Cluster, ClusterOpts, bin_path};
use serde_json::Value;

/// Runs kdss-cli with the cluster's masters and the given keys; returns (success, JSON).
fn cli(c: &Cluster, keys: (&str, &str), args: &[&str]) -> (bool, Value) {
    let out = Command::new(bin_path("kdss-cli").expect("kdss-cli built"))
        .env("KDSS_MASTERS", c.masters().join(","))
        .env("KDSS_ACCESS_KEY", keys.0)
        .env("KDSS_SECRET_KEY", keys.1)
        .env_remove("KDSS_CONFIG")
        .current_dir(c.scratch("."))
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("run kdss-cli");
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("kdss-cli {args:?}: not JSON ({e}): {text:?}"));
    (out.status.success(), v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_buckets_and_users_through_the_binary() {
    let c = Cluster::start(ClusterOpts {
        masters: 3,
        ..ClusterOpts::default()
    })
    .await
    .expect("cluster");
    let (ak, sk) = c.admin_keys();
    let admin = (ak.as_str(), sk.as_str());

    // status names the current leader, one of the three masters, and every node.
    let (ok, st) = cli(&c, admin, &["status"]);
    assert!(ok, "{st}");
    let leader = st["leader"]["grpc"]
        .as_str()
        .expect("leader named")
        .to_string();
    assert!(
        c.masters().contains(&leader),
        "{leader} not in {:?}",
        c.masters()
    );
    assert_eq!(st["nodes"].as_array().map(Vec::len), Some(4), "{st}");
    let (ok, disks) = cli(&c, admin, &["disk", "list"]);
    assert!(ok && disks.as_array().map(Vec::len) == Some(8), "{disks}");

    // A user with the keys a test suite brings, and a bucket with a preset.
    let (ok, u) = cli(
        &c,
        admin,
        &[
            "user",
            "create",
            "suite",
            "--key",
            "SUITEKEY0001",
            "--secret",
            "suite-secret-0001",
        ],
    );
    assert!(ok, "{u}");
    assert_eq!(u["access_key"], "SUITEKEY0001");
    let (ok, users) = cli(&c, admin, &["user", "list"]);
    assert!(ok, "{users}");
    assert!(
        users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["access_key"] == "SUITEKEY0001"),
        "{users}"
    );
    assert!(
        !users.to_string().contains("suite-secret-0001"),
        "list shows no secret"
    );
    let (ok, b) = cli(
        &c,
        admin,
        &[
            "bucket",
            "create",
            "wide",
            "--ec",
            "9+2",
            "--owner",
            "SUITEKEY0001",
        ],
    );
    assert!(ok, "{b}");
    assert_eq!(b["ec"], "9+2");

    // The new keys work: the user sees its bucket and not the admin's test bucket.
    let suite = ("SUITEKEY0001", "suite-secret-0001");
    let (ok, mine) = cli(&c, suite, &["bucket", "list"]);
    assert!(ok, "{mine}");
    let names: Vec<&str> = mine
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, vec!["wide"], "{mine}");

    // A wrong secret is refused with an error that says so, in JSON.
    let (ok, e) = cli(&c, ("SUITEKEY0001", "wrong"), &["bucket", "list"]);
    assert!(!ok, "{e}");
    assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{e}");

    // Delete the bucket, then the user: its keys stop working.
    let (ok, d) = cli(&c, admin, &["bucket", "delete", "wide"]);
    assert!(ok, "{d}");
    let (ok, d) = cli(&c, admin, &["user", "delete", "SUITEKEY0001"]);
    assert!(ok, "{d}");
    let (ok, e) = cli(&c, suite, &["bucket", "list"]);
    assert!(!ok, "deleted user still accepted: {e}");
    let (ok, all) = cli(&c, admin, &["bucket", "list"]);
    assert!(ok && !all.to_string().contains("\"wide\""), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cp_copies_files_in_and_out_byte_exact() {
    let c = Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster");
    let (ak, sk) = c.admin_keys();
    let admin = (ak.as_str(), sk.as_str());
    let dir = c.scratch("cp");
    std::fs::create_dir_all(&dir).unwrap();
    let bucket = c.bucket();
    for (name, len) in [
        ("big.bin", (9 << 20) + 123),
        ("small.txt", 300),
        ("empty", 0),
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 1000) as u8).collect();
        let src = dir.join(name);
        std::fs::write(&src, &data).unwrap();
        let url = format!("kdss://{bucket}/in/{name}");
        let (ok, up) = cli(&c, admin, &["cp", "-q", src.to_str().unwrap(), &url]);
        assert!(ok, "{up}");
        assert_eq!(up["bytes"], len as u64, "{up}");
        let back = dir.join(format!("{name}.back"));
        let (ok, down) = cli(&c, admin, &["cp", "-q", &url, back.to_str().unwrap()]);
        assert!(ok, "{down}");
        assert!(
            std::fs::read(&back).unwrap() == data,
            "{name}: bytes differ after cp in and out"
        );
    }
    let (ok, e) = cli(&c, admin, &["cp", "/etc/hostname", "/tmp/x"]);
    assert!(
        !ok && e["error"].as_str().unwrap().contains("kdss://"),
        "{e}"
    );
    let (ok, e) = cli(
        &c,
        admin,
        &["cp", &format!("kdss://{bucket}/no/such"), "/tmp/x"],
    );
    assert!(!ok, "{e}");
}
