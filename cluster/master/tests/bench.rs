//! The metadata benchmark (create, stat, readdir of a 10,000-entry directory, rename) with 1
//! and 3 masters as real processes, at concurrency 1 and 32. Ignored by default (minutes):
//! `cargo test -p kdss-master --release --test bench -- --ignored --nocapture`
//! (`KDSS_BENCH_FILES` changes the directory size).

mod common;

use common::Cluster;
use kdss_master::bench::{BenchOptions, run_meta_bench};
use kdss_proto::master as pb;
use std::time::Duration;

async fn wait_admin(c: &Cluster) {
    let l = c.wait_leader(Duration::from_secs(30)).await;
    let mut a = kdss_master::bench::client(&c.masters[l].grpc, common::admin()).unwrap();
    for _ in 0..400 {
        if a.list_users(pb::ListUsersRequest {}).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("admin user never appeared\n{}", c.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: minutes of runtime"]
async fn metadata_benchmark() {
    let files: usize = std::env::var("KDSS_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    for masters in [1usize, 3] {
        let c = Cluster::start(masters, 5000);
        wait_admin(&c).await;
        for concurrency in [1usize, 32] {
            let o = BenchOptions {
                masters: c.addrs(),
                access_key: common::ADMIN_KEY.into(),
                secret_key: common::ADMIN_SECRET.into(),
                on_behalf_of: None,
                files,
                concurrency,
            };
            let figs = run_meta_bench(&o)
                .await
                .unwrap_or_else(|e| panic!("{e}\n{}", c.logs()));
            for f in figs {
                println!("masters={masters} conc={concurrency:>2} {f}");
            }
            // Group commit at work: log entries per fsync on the leader.
            let l = c.wait_leader(Duration::from_secs(10)).await;
            let (_, m) = common::http_get(&c.masters[l].http, "/metrics")
                .await
                .unwrap();
            let get = |name: &str| {
                m.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let (b, e) = (
                get("kdss_master_raft_log_batches_total"),
                get("kdss_master_raft_log_entries_total"),
            );
            println!(
                "masters={masters} conc={concurrency:>2} leader log: {e} entries in {b} fsyncs"
            );
        }
    }
}
