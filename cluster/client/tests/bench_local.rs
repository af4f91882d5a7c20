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
