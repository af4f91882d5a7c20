//! `kdss bench`: the benchmarks of each layer, runnable against a real cluster from the one
//! binary the field already has. Each prints its figures beside a reference measured in the
//! same run (raw O_DIRECT bandwidth, EC encode, memcpy), so a figure reads as a ratio.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use kdss_launch::Layout;

/// Which layer to measure.
#[derive(Subcommand)]
pub enum BenchCmd {
    /// The storage engine on one device: 1 MiB append/read bandwidth and 4/64 KiB shard
    /// rates beside raw sequential O_DIRECT on the same file. The file is wiped.
    Storage {
        /// Scratch device file or block device (formatted over; a file it creates is removed).
        #[arg(long)]
        path: PathBuf,
        /// Size of the scratch file, e.g. 4GiB.
        #[arg(long, value_parser = kdss_common::size::parse_size, default_value = "4GiB")]
        size: u64,
        /// Concurrent clients issuing puts and gets.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// The client data path on a running cluster: sequential write/read, degraded reads with
    /// 1 and 2 shards lost, random 4 KiB reads cold and warm, small files inline and as
    /// stripes; beside EC encode, memcpy and raw O_DIRECT bandwidth of the scratch dir.
    Client {
        #[command(flatten)]
        target: Target,
        /// Bytes written and read sequentially, e.g. 1GiB.
        #[arg(long, value_parser = kdss_common::size::parse_size, default_value = "1GiB")]
        size: u64,
        /// Chunk (stripe data) size; default: the client's.
        #[arg(long, value_parser = kdss_common::size::parse_size)]
        chunk_size: Option<u64>,
        /// Small files per size and form (0 skips the small-file figures).
        #[arg(long, default_value_t = 200)]
        small_files: usize,
        /// Directory for the raw and file-write references (put it on the disks' filesystem).
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
    /// Repair on a running cluster: fills it, measures the client's write and read, then
    /// takes the fullest disk offline and times its rebuild (MiB/s, time to full
    /// redundancy) on an idle cluster, and a second disk under a write/read loop (with the
    /// loop's throughput meanwhile). Needs k+m+2 online disks; puts both back online and
    /// deletes what it wrote at the end.
    Repair {
        #[command(flatten)]
        target: Target,
        /// Object bytes written before the first disk is lost, e.g. 3GiB.
        #[arg(long, value_parser = kdss_common::size::parse_size, default_value = "1GiB")]
        fill: u64,
        /// Bytes of one foreground write-then-read round.
        #[arg(long, value_parser = kdss_common::size::parse_size, default_value = "256MiB")]
        round: u64,
    },
    /// Balance on a running cluster, in two steps: `--fill SIZE` writes data and stops;
    /// after `kdss up --nodes N+1` adds a node, a run without it measures the client alone,
    /// a balance under `--limit` for `--limited-secs`, an unlimited one for as long under
    /// the client's write/read loop (it yields to a busy client: [balance]
    /// pause_client_per_disk), then the same balance to the end with the client gone
    /// (rates, and the client's throughput meanwhile).
    Balance {
        #[command(flatten)]
        target: Target,
        /// Write this much and stop (step one), e.g. 2GiB.
        #[arg(long, value_parser = kdss_common::size::parse_size, default_value = "0")]
        fill: u64,
        /// Bandwidth of the limited balance, e.g. 20MiB/s.
        #[arg(long, value_parser = kdss_common::size::parse_rate, default_value = "20MiB/s")]
        limit: u64,
        /// Seconds the limited balance, then the one under the client loop, run.
        #[arg(long, default_value_t = 20)]
        limited_secs: u64,
        /// Bytes of one foreground write-then-read round.
        #[arg(long, value_parser = kdss_common::size::parse_size, default_value = "256MiB")]
        round: u64,
    },
    /// Master metadata ops/s with p50/p99: create, stat, readdir, rename (each write
    /// replicated and fsynced on a quorum before it is answered).
    Meta {
        #[command(flatten)]
        target: Target,
        /// Files created, stat'ed and renamed.
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// Calls in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

/// Which cluster, and as whom. Defaults come from the layout `kdss up` saved in `--data`.
#[derive(Args)]
pub struct Target {
    /// Data directory of a `kdss up` cluster (its layout.json gives masters and admin keys).
    #[arg(long, default_value = "./kdss-data")]
    data: PathBuf,
    /// Comma-separated master gRPC addresses (instead of the layout's).
    #[arg(long, value_delimiter = ',')]
    masters: Vec<String>,
    /// Access key (instead of the layout's admin key).
    #[arg(long)]
    access_key: Option<String>,
    /// Secret key (instead of the layout's admin secret).
    #[arg(long)]
    secret_key: Option<String>,
    /// Bucket to write in.
    #[arg(long, default_value = "kdss")]
    bucket: String,
}

struct Resolved {
    masters: Vec<String>,
    access_key: String,
    secret_key: String,
    bucket: String,
}

impl Resolved {
    /// A client configuration for this cluster and identity.
    fn client_config(&self) -> kdss_client::ClientConfig {
        kdss_client::ClientConfig {
            masters: self.masters.clone(),
            access_key: self.access_key.clone(),
            secret_key: self.secret_key.clone(),
            ..Default::default()
        }
    }
}

impl Target {
    fn resolve(self) -> anyhow::Result<Resolved> {
        let layout = if self.masters.is_empty() || self.access_key.is_none() {
            Some(Layout::load(&self.data).with_context(|| {
                format!(
                    "no --masters/--access-key given and no cluster layout in {} \
                     (start one with `kdss up --data {0}` or pass the flags)",
                    self.data.display()
                )
            })?)
        } else {
            None
        };
        // A `kdss up --tls` cluster: dial it trusting its CA.
        if let Some(ca) = layout.as_ref().and_then(Layout::ca_path) {
            let tls = kdss_common::tls::TlsSection {
                ca: Some(ca),
                ..Default::default()
            };
            tls.install().context("the cluster CA")?;
        }
        let masters = if self.masters.is_empty() {
            layout
                .as_ref()
                .map(|l| l.master_addrs())
                .unwrap_or_default()
        } else {
            self.masters
        };
        let pick = |given: Option<String>, f: fn(&Layout) -> String| {
            given
                .or_else(|| layout.as_ref().map(f))
                .context("--access-key and --secret-key go together")
        };
        Ok(Resolved {
            masters,
            access_key: pick(self.access_key, |l| l.admin_access_key.clone())?,
            secret_key: pick(self.secret_key, |l| l.admin_secret_key.clone())?,
            bucket: self.bucket,
        })
    }
}

/// Runs one bench and prints its report.
pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Storage {
            path,
            size,
            concurrency,
        } => {
            let mut o = kdss_storage::bench::BenchOptions::new(path, size);
            o.concurrency = concurrency;
            let rep = tokio::task::spawn_blocking(move || kdss_storage::bench::run(&o)).await??;
            print!("{rep}");
        }
        BenchCmd::Client {
            target,
            size,
            chunk_size,
            small_files,
            scratch,
        } => client(target.resolve()?, size, chunk_size, small_files, scratch).await?,
        BenchCmd::Repair {
            target,
            fill,
            round,
        } => {
            let t = target.resolve()?;
            crate::bench_repair::run(crate::bench_repair::RepairBench {
                cfg: t.client_config(),
                bucket: t.bucket,
                fill,
                round,
            })
            .await?
        }
        BenchCmd::Balance {
            target,
            fill,
            limit,
            limited_secs,
            round,
        } => {
            let t = target.resolve()?;
            crate::bench_balance::run(crate::bench_balance::BalanceBench {
                cfg: t.client_config(),
                bucket: t.bucket,
                fill,
                limit,
                limited: std::time::Duration::from_secs(limited_secs),
                round,
            })
            .await?
        }
        BenchCmd::Meta {
            target,
            files,
            concurrency,
        } => {
            let t = target.resolve()?;
            let o = kdss_master::bench::BenchOptions {
                masters: t.masters,
                access_key: t.access_key,
                secret_key: t.secret_key,
                on_behalf_of: None,
                files,
                concurrency,
            };
            for f in kdss_master::bench::run_meta_bench(&o).await? {
                println!("{f}");
            }
        }
    }
    Ok(())
}

async fn client(
    t: Resolved,
    size: u64,
    chunk_size: Option<u64>,
    small_files: usize,
    scratch: Option<PathBuf>,
) -> anyhow::Result<()> {
    let dir = scratch.unwrap_or_else(std::env::temp_dir);
    let raw_path = dir.join(format!("kdss-bench-raw-{}", std::process::id()));
    let raw_bytes = size.min(1 << 30);
    let (rw, rr, direct) = tokio::task::spawn_blocking(move || {
        kdss_storage::bench::raw_file_bandwidth(&raw_path, raw_bytes)
    })
    .await??;
    println!(
        "raw reference in {} ({} MiB, 1 MiB blocks, {}): write {rw:.0} MiB/s, read {rr:.0} MiB/s",
        dir.display(),
        raw_bytes >> 20,
        if direct { "O_DIRECT" } else { "buffered" }
    );
    let rep = kdss_client::bench::run(kdss_client::bench::BenchOpts {
        masters: t.masters.clone(),
        access_key: t.access_key.clone(),
        secret_key: t.secret_key.clone(),
        bucket: t.bucket.clone(),
        size_bytes: size,
        chunk_size: chunk_size.map(|c| c as usize),
        scratch_dir: Some(dir),
        ..Default::default()
    })
    .await?;
    println!("{rep}");
    if small_files > 0 {
        let cfg = kdss_client::ClientConfig {
            masters: t.masters,
            access_key: t.access_key,
            secret_key: t.secret_key,
            ..Default::default()
        };
        let sizes = [1 << 10, 4 << 10, 16 << 10, 64 << 10];
        let figs =
            kdss_client::bench::small_files::run(cfg, &t.bucket, &sizes, small_files).await?;
        println!(
            "small files, one at a time ({small_files} per row): create+write+close, then open+read"
        );
        for f in figs {
            println!("{f}");
        }
    }
    Ok(())
}
