//! Space under churn: write and delete ten times the usable capacity in mixed sizes through
//! both doors, purging after each round, while the collector and the compactor reclaim the
//! previous round. No write may fail, the last round reads back byte-exact, and at the end
//! the disks hold about what they held at the start.
//!
//! CI runs a small cluster (8 disks of 64 MiB, files up to 16 MiB). The full size is the
//! `kdss up` geometry (8 disks of 1 GiB, files up to 64 MiB):
//! `KDSS_CHURN=full cargo test --release --test e2e churn -- --nocapture`.
//! Either prints the foreground write throughput on the idle cluster and while the
//! collector and compactor run, and the reclaim throughput.

use crate::common::*;
use kdss_testkit::{Cluster, ClusterOpts, Mount};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

struct Size {
    disk: u64,
    max_file: u64,
}

fn size() -> Size {
    if std::env::var("KDSS_CHURN").as_deref() == Ok("full") {
        Size {
            disk: 1024 * MIB,
            max_file: 64 * MIB,
        }
    } else {
        Size {
            disk: 64 * MIB,
            max_file: 16 * MIB,
        }
    }
}

/// Sum over all disks of (live + dead bytes, dead bytes), as the heartbeats report.
fn disk_bytes(c: &Cluster) -> (u64, u64) {
    let disks = cli(c, &["disk", "list"]);
    let disks = disks.as_array().expect("disk list is an array");
    let sum = |k: &str| -> u64 { disks.iter().map(|d| d[k].as_u64().unwrap_or(0)).sum() };
    (sum("used_bytes") + sum("dead_bytes"), sum("dead_bytes"))
}

/// Files of log-uniform sizes from 4 KiB to `max`, totalling about `total` bytes, written
/// once under `dir`: (path, size).
fn file_set(dir: &Path, total: u64, max: u64, seed: u64) -> Vec<(PathBuf, u64)> {
    std::fs::create_dir_all(dir).unwrap();
    let mut x = seed | 1;
    let (lo, hi) = ((4096f64).ln(), (max as f64).ln());
    let mut out = Vec::new();
    let mut sum = 0;
    while sum < total {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64;
        let len = ((lo + u * (hi - lo)).exp() as u64).min(total - sum).max(1);
        let p = dir.join(format!("f{:04}", out.len()));
        std::fs::write(&p, data(seed + out.len() as u64, len as usize)).unwrap();
        out.push((p, len));
        sum += len;
    }
    out
}

/// Writes one round: the S3 half with `aws s3 cp --recursive`, the file half with copies
/// into the mount, both at once. Returns the seconds it took.
fn write_round(c: &Cluster, m: &Mount, s3_dir: &Path, fs_set: &[(PathBuf, u64)], r: u32) -> f64 {
    let t = Instant::now();
    let dst = m.join(&format!("r{r}"));
    std::fs::create_dir_all(&dst).unwrap();
    std::thread::scope(|s| {
        let up = s.spawn(|| {
            let b = c.bucket();
            aws(
                c,
                &[
                    "s3",
                    "cp",
                    "--recursive",
                    "--only-show-errors",
                    s3_dir.to_str().unwrap(),
                    &format!("s3://{b}/s3r{r}/"),
                ],
            )
        });
        for (p, _) in fs_set {
            let to = dst.join(p.file_name().unwrap());
            std::fs::copy(p, &to).unwrap_or_else(|e| panic!("write {} failed: {e}", to.display()));
        }
        let o = up.join().unwrap();
        assert!(
            o.status.success(),
            "S3 writes of round {r} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    });
    t.elapsed().as_secs_f64()
}

/// Deletes round `r` through both doors and purges the bin.
fn delete_round(c: &Cluster, m: &Mount, r: u32) {
    let b = c.bucket();
    let o = aws(
        c,
        &[
            "s3",
            "rm",
            "--recursive",
            "--only-show-errors",
            &format!("s3://{b}/s3r{r}/"),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_dir_all(m.join(&format!("r{r}"))).unwrap();
    cli(c, &["trash", "purge", "--all"]);
}

/// Waits until the collector has nothing pending and the compactor brought the dead bytes
/// under `slack`; returns the seconds since `since`.
#[allow(clippy::disallowed_methods)] // blocking helper: the CLI calls between sleeps block anyway
fn wait_reclaimed(c: &Cluster, since: Instant, slack: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let st = cli(c, &["gc", "run"]);
        let (_, dead) = disk_bytes(c);
        if st["pending_shards"] == 0 && dead <= slack {
            return since.elapsed().as_secs_f64();
        }
        assert!(
            Instant::now() < deadline,
            "not reclaimed in 300 s: dead {dead}, {st}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_times_the_capacity_written_and_deleted_through_both_doors() {
    let sz = size();
    let Some(c) = start(
        true,
        ClusterOpts {
            disk_size: sz.disk,
            master_extra_toml: GC_BY_HAND.into(),
            ..ClusterOpts::default()
        },
    )
    .await
    else {
        return;
    };
    let m = Mount::new(&c, "churn", &c.bucket(), "").await.unwrap();
    let raw: u64 = 8 * sz.disk;
    let usable = raw * 5 / 7;
    // A third of the usable space per round: the round being written, the round being
    // reclaimed and the compactor's reserve fit together.
    let half = usable / 6;
    let scratch = c.scratch("churn");
    let s3_set = file_set(&scratch.join("s3"), half, sz.max_file, 1);
    let fs_set = file_set(&scratch.join("fs"), half, sz.max_file, 2);
    let round = 2 * half;
    let rounds = (10 * usable).div_ceil(round) as u32;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (start_used, _) = disk_bytes(&c);
    let slack = raw / 20;

    let c = &c;
    let m = &m;
    tokio::task::block_in_place(|| {
        let idle = write_round(c, m, &scratch.join("s3"), &fs_set, 0);
        let (mut busy, mut reclaim) = (0.0, 0.0);
        for r in 1..rounds {
            let t = Instant::now();
            delete_round(c, m, r - 1);
            let gc = std::thread::spawn({
                let (masters, keys) = (c.masters(), c.admin_keys());
                move || {
                    let o = cli_output(&masters, &keys, &["gc", "run"]);
                    assert!(
                        o.status.success(),
                        "gc run: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            });
            busy += write_round(c, m, &scratch.join("s3"), &fs_set, r);
            gc.join().unwrap();
            reclaim += wait_reclaimed(c, t, slack);
        }
        let t = Instant::now();
        // The last round reads back byte-exact through the other door.
        for (p, _) in s3_set.iter().step_by(3) {
            let name = p.file_name().unwrap().to_str().unwrap();
            let want = std::fs::read(p).unwrap();
            assert_file(&m.join(&format!("s3r{}/{name}", rounds - 1)), &want);
        }
        for (p, _) in fs_set.iter().step_by(3) {
            let name = p.file_name().unwrap().to_str().unwrap();
            let out = scratch.join("check");
            aws_cp(
                c,
                &format!("s3://{}/r{}/{name}", c.bucket(), rounds - 1),
                out.to_str().unwrap(),
            );
            assert_file(&out, &std::fs::read(p).unwrap());
        }
        delete_round(c, m, rounds - 1);
        let last = wait_reclaimed(c, t, slack);
        #[allow(clippy::disallowed_methods)] // inside block_in_place
        std::thread::sleep(Duration::from_secs(3));
        let (end_used, _) = disk_bytes(c);
        let mib = |b: u64| b as f64 / MIB as f64;
        let written = round * rounds as u64;
        eprintln!(
            "churn: {rounds} rounds of {:.0} MiB ({:.0} MiB written, {:.1}x usable {:.0} MiB); \
             foreground write idle {:.1} MiB/s, while reclaiming {:.1} MiB/s; \
             reclaim {:.1} MiB/s of deleted data ({:.2} GiB/s); disks used {:.1} -> {:.1} MiB",
            mib(round),
            mib(written),
            written as f64 / usable as f64,
            mib(usable),
            mib(round) / idle,
            mib(round) * (rounds - 1) as f64 / busy,
            mib(round) * (rounds - 1) as f64 / reclaim,
            round as f64 * (rounds - 1) as f64 / reclaim / (1u64 << 30) as f64,
            mib(start_used),
            mib(end_used),
        );
        let _ = last;
        assert!(written >= 10 * usable);
        assert!(
            end_used <= start_used + slack,
            "disks hold {end_used} bytes after everything was deleted, {start_used} at the start"
        );
        let df = nix::sys::statvfs::statvfs(m.join("").as_path()).unwrap();
        let used = (df.blocks() - df.blocks_free()) * df.fragment_size();
        eprintln!("df on the mount: {:.1} MiB used", mib(used));
    });
}
