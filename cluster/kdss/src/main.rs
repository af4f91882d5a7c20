//! `kdss`: the KDSS server binary. One binary with a subcommand per daemon, as the field
//! ships them: `kdss master` (and `kdss master restore`, which makes a new master group
//! from a metadata backup), `kdss storage`, `kdss s3gw`, `kdss mount`, plus `kdss up` (a
//! whole local cluster), `kdss certs` (TLS certificates), `kdss format-disk`, `kdss bench`
//! and `kdss notify` (the Alertmanager → Lark relay).

mod bench;
mod bench_balance;
mod bench_load;
mod bench_repair;
mod certs;
mod daemons;
mod notify;
mod restore;
mod signals;
mod up;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "kdss",
    version,
    about = "KDSS: erasure-coded distributed storage (masters, storage nodes, S3 gateway)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a master (metadata, placement, membership; Raft over SQLite). gRPC :6700, HTTP :6701.
    /// `kdss master restore` makes a new master group from a metadata backup.
    #[command(args_conflicts_with_subcommands = true)]
    Master {
        /// Path of master.toml.
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: Option<restore::MasterAction>,
    },
    /// Run a storage node serving its raw devices. gRPC :6800, HTTP :6801.
    Storage {
        /// Path of storage.toml.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run an S3 gateway (stateless; several may run side by side). HTTP :9000.
    S3gw {
        /// Path of s3gw.toml.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Mount a bucket with ksfs (the same as the `ksfs` binary).
    Mount {
        /// Path of mount.toml.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Start a whole cluster on this machine, mount it, and print how to use it.
    Up(up::UpArgs),
    /// Make the cluster CA (first use of --ca-dir) and a daemon's TLS certificate signed
    /// by it; prints the [tls] section for the daemon's config.
    Certs(certs::CertsArgs),
    /// Relay Alertmanager's alerts to a Lark (Feishu) group as cards (webhook receiver).
    #[command(long_about = notify::LONG_ABOUT)]
    Notify(notify::NotifyArgs),
    /// Measure a layer (storage engine, client data path, master metadata) beside raw
    /// references taken in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Format a device file or block device for a cluster (refuses a formatted device).
    FormatDisk {
        /// Device file (created when absent) or block device.
        #[arg(long)]
        path: PathBuf,
        /// Size of a device file to create (ignored for block devices), e.g. 1GiB.
        #[arg(long, value_parser = kdss_common::size::parse_size)]
        size: u64,
        /// Cluster id from the configs' [cluster] id; a node refuses foreign devices.
        #[arg(long)]
        cluster_id: String,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Daemons started by `kdss up` log to files: colour codes only on a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// Prints a fatal error for a person: `error: what failed: why` on one line (the cause
/// first, where `kdss up` and a reader of the log find it), the backtrace after it only
/// when `RUST_BACKTRACE` (or `RUST_LIB_BACKTRACE`) asks for one.
fn report(e: &anyhow::Error) {
    eprintln!("error: {}", chain_text(e));
    let bt = e.backtrace();
    if bt.status() == std::backtrace::BacktraceStatus::Captured {
        eprintln!("\nbacktrace (RUST_BACKTRACE is set):\n{bt}");
    }
}

/// The error and its causes on one line, `a: b: c`, leaving out a cause whose text the
/// line already holds (several crates' errors print their source in their own message,
/// which `{:#}` would repeat: "…: Address already in use (os error 98): Address already
/// in use (os error 98)").
fn chain_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // ksfs runs its own runtime and FUSE threads: start it outside ours.
    if let Cmd::Mount { config } = &cli.cmd {
        return daemons::mount(config);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Master {
                action: Some(a), ..
            } => restore::run(a).await,
            Cmd::Master {
                config: Some(config),
                action: None,
            } => daemons::master(&config).await,
            Cmd::Master { .. } => {
                anyhow::bail!("kdss master needs -c master.toml (or: kdss master restore -c master.toml --from FILE)")
            }
            Cmd::Storage { config } => daemons::storage(&config).await,
            Cmd::S3gw { config } => daemons::s3gw(&config).await,
            Cmd::Mount { .. } => unreachable!("handled before the runtime starts"),
            Cmd::Up(args) => up::run(args).await,
            Cmd::Certs(args) => certs::run(args),
            Cmd::Notify(args) => notify::run(args).await,
            Cmd::Bench(cmd) => bench::run(cmd).await,
            Cmd::FormatDisk {
                path,
                size,
                cluster_id,
            } => daemons::format_disk(&path, size, &cluster_id),
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let os = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let inner = anyhow::Error::new(os).context("bind 127.0.0.1:9000: address in use");
        let e = inner.context("S3 gateway failed");
        assert_eq!(
            super::chain_text(&e),
            "S3 gateway failed: bind 127.0.0.1:9000: address in use"
        );
        let plain = anyhow::anyhow!("disk full").context("writing x");
        assert_eq!(super::chain_text(&plain), "writing x: disk full");
    }
}
