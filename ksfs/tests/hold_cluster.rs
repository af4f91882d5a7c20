//! Not a test of its own (ignored by default): keeps a real cluster running with mount
//! configs for xfstests (`ksfs-test.toml`, `ksfs-scratch.toml`, buckets xfs-test and
//! xfs-scratch, `subtype = ""`) and for the benchmark (`bench.toml`, bucket `test`) in
//! $KSFS_HOLD_DIR (default /tmp/ksfs-hold), until that directory holds a file `stop` or
//! $KSFS_HOLD_SECS (default 3600) pass. Used to produce xfstests/results and the bench
//! figures:
//!   cargo test -p ksfs --test hold_cluster -- --ignored --nocapture &
//!   KSFS_CONFIG_DIR=/tmp/ksfs-hold XFSTESTS_DIR=/tmp/xfstests xfstests/run.sh

use kdss_testkit::{Cluster, ClusterOpts};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "holds a cluster for manual xfstests / benchmark runs"]
async fn hold_cluster_for_xfstests_and_bench() -> anyhow::Result<()> {
    let dir = std::path::PathBuf::from(
        std::env::var("KSFS_HOLD_DIR").unwrap_or_else(|_| "/tmp/ksfs-hold".into()),
    );
    let secs: u64 = std::env::var("KSFS_HOLD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3600);
    let disk: u64 = std::env::var("KSFS_HOLD_DISK_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2048);
    std::fs::create_dir_all(&dir)?;
    let _ = std::fs::remove_file(dir.join("stop"));
    let mut cluster = Cluster::start(ClusterOpts {
        disk_size: disk << 20,
        ..ClusterOpts::default()
    })
    .await?;
    let admin = cluster.admin().await?;
    for b in ["xfs-test", "xfs-scratch"] {
        admin.ensure_bucket(b, 5, 2).await?;
    }
    let (ak, sk) = cluster.admin_keys();
    let masters: Vec<String> = cluster.masters().iter().map(|m| format!("{m:?}")).collect();
    let conf = |bucket: &str, mp: &str, extra: &str| {
        format!(
            "[cluster]\nmasters = [{}]\n[auth]\naccess_key = {ak:?}\nsecret_key = {sk:?}\n\
             bucket = {bucket:?}\n[mount]\nmountpoint = {mp:?}\nlog_file = \"{}/{bucket}.log\"\n{extra}\n",
            masters.join(", "),
            dir.display()
        )
    };
    std::fs::write(
        dir.join("ksfs-test.toml"),
        conf("xfs-test", "/mnt/ksfs-test", "subtype = \"\""),
    )?;
    std::fs::write(
        dir.join("ksfs-scratch.toml"),
        conf("xfs-scratch", "/mnt/ksfs-scratch", "subtype = \"\""),
    )?;
    std::fs::write(
        dir.join("bench.toml"),
        conf(&cluster.bucket(), "/mnt/ksfs-bench", ""),
    )?;
    eprintln!(
        "cluster up; mount configs in {}; touch {}/stop to end",
        dir.display(),
        dir.display()
    );
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end && !dir.join("stop").exists() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    cluster.stop();
    Ok(())
}
