//! The client bench on a fresh local cluster (4 nodes x 2 file-backed disks, EC 5+2):
//! `cargo test -p kdss-client --test bench_local -- --ignored --nocapture`.
//! `KDSS_BENCH_MIB` sets the size (default 256), `KDSS_BENCH_CHUNKS` a comma list of chunk
//! sizes in KiB to compare (default the client default). Fails if any read returns wrong
//! bytes or any step errors.

use kdss_client::bench::{BenchOpts, run};
use kdss_testkit::{Cluster, ClusterOpts};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn client_bench_on_a_local_cluster() {
    let mib: u64 = std::env::var("KDSS_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let chunks: Vec<Option<usize>> = match std::env::var("KDSS_BENCH_CHUNKS") {
        Ok(v) => v
            .split(',')
            .map(|c| Some(c.trim().parse::<usize>().expect("KiB") << 10))
            .collect(),
        Err(_) => vec![None],
    };
    // Raw space for every run's file at 7/5 overhead, plus slack, over 8 disks.
    let disk_size = ((mib << 20) * 7 / 5 * 2 / 8 + (128 << 20)).max(256 << 20);
    let opts = ClusterOpts {
        disk_size,
        ..ClusterOpts::default()
    };
    let cluster = Cluster::start(opts).await.expect("cluster");
    let (ak, sk) = cluster.admin_keys();
    // The raw device reference, in the same run and on the same filesystem as the disks.
    let scratch = cluster.scratch("raw-reference").join("raw.img");
    let (rw, rr, direct) = tokio::task::spawn_blocking(move || {
        kdss_storage::bench::raw_file_bandwidth(&scratch, mib << 20)
    })
    .await
    .expect("join")
    .expect("raw reference");
    println!(
        "raw device reference ({mib} MiB, 1 MiB blocks, 1 thread, {}): write {rw:.0} MiB/s, read {rr:.0} MiB/s",
        if direct { "O_DIRECT" } else { "buffered" }
    );
    for chunk_size in chunks {
        let rep = run(BenchOpts {
            masters: cluster.masters(),
            access_key: ak.clone(),
            secret_key: sk.clone(),
            bucket: cluster.bucket(),
            size_bytes: mib << 20,
            chunk_size,
            scratch_dir: Some(cluster.scratch("bench")),
            ..BenchOpts::default()
        })
        .await
        .expect("bench");
        println!("{rep}");
    }
}

/// Small files created, written, closed and read back one at a time, inline in metadata
/// against as a stripe, at 1, 4, 16 and 64 KiB: the measurement behind the default
/// inline threshold. `KDSS_BENCH_FILES` sets the files per figure (default 200).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run with --ignored --nocapture"]
async fn small_files_inline_against_stripes() {
    let count: usize = std::env::var("KDSS_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let cluster = Cluster::start(ClusterOpts::default())
        .await
        .expect("cluster");
    let (ak, sk) = cluster.admin_keys();
    let cfg = kdss_client::ClientConfig {
        masters: cluster.masters(),
        access_key: ak,
        secret_key: sk,
        ..Default::default()
    };
    let sizes = [1 << 10, 4 << 10, 16 << 10, 64 << 10];
    let figs = kdss_client::bench::small_files::run(cfg, &cluster.bucket(), &sizes, count)
        .await
        .expect("small-file bench");
    println!("{count} files per row, one at a time");
    for f in figs {
        println!("{f}");
    }
}
