//! `kdss-cli`: administer a KDSS cluster — status, nodes, disks, buckets, users,
//! presigned URLs, metadata backups. Every command takes `--output json` for scripts.

mod balance;
mod commands;
mod copy;
mod disks;
mod gc;
mod meta;
mod repair;
mod settings;
mod topology;
mod trash;
mod view;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "kdss-cli", version, about = "Administer a KDSS cluster")]
struct Cli {
    /// Config file with masters, access_key, secret_key, s3_endpoint (default: KDSS_CONFIG,
    /// then ./kdss-data/cli.toml as written by `kdss up`).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Comma-separated master gRPC addresses (env KDSS_MASTERS).
    #[arg(long, global = true)]
    masters: Option<String>,
    /// Access key (env KDSS_ACCESS_KEY).
    #[arg(long, global = true)]
    access_key: Option<String>,
    /// Secret key (env KDSS_SECRET_KEY).
    #[arg(long, global = true)]
    secret_key: Option<String>,
    /// S3 endpoint for presign (env KDSS_S3_ENDPOINT).
    #[arg(long, global = true)]
    s3_endpoint: Option<String>,
    /// Output format.
    #[arg(long, short, global = true, value_enum, default_value_t = Output::Text)]
    output: Output,
    #[command(subcommand)]
    cmd: Cmd,
}

/// How results are printed.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Masters and the leader, nodes, disks with state and usage, capacity and efficiency.
    Status,
    /// Storage nodes.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// Disks of every node: states and why; take a disk offline, online or drain it.
    Disk {
        #[command(subcommand)]
        cmd: disks::DiskCmd,
    },
    /// Buckets: create with an EC preset, list, delete.
    Bucket {
        #[command(subcommand)]
        cmd: commands::BucketCmd,
    },
    /// Users and their keys.
    User {
        #[command(subcommand)]
        cmd: commands::UserCmd,
    },
    /// Print a presigned S3 URL that curl can use until it expires.
    Presign(commands::PresignArgs),
    /// Copy a local file to kdss://BUCKET/KEY or an object to a local file, with progress.
    Cp(copy::CpArgs),
    /// The recycle bin: list, restore, purge deleted files and objects.
    Trash {
        #[command(subcommand)]
        cmd: trash::TrashCmd,
    },
    /// The garbage collector: pending work and last pass; run a pass now.
    Gc {
        #[command(subcommand)]
        cmd: gc::GcCmd,
    },
    /// Repair of lost, corrupt and draining shards: progress and ETA, run now, bandwidth.
    Repair {
        #[command(subcommand)]
        cmd: repair::RepairCmd,
    },
    /// How evenly the disks are filled: a bar per disk, the imbalance against the
    /// master's [balance] threshold_pct, and whether a balance runs.
    Balance {
        #[command(subcommand)]
        cmd: balance::BalanceCmd,
    },
    /// Metadata backups: take one now, list the scheduled ones.
    Meta {
        #[command(subcommand)]
        cmd: meta::MetaCmd,
    },
}

#[derive(Subcommand)]
enum NodeCmd {
    /// List storage nodes with their state and disks.
    List,
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kdss-cli: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    let out = cli.output;
    let result = rt.block_on(async move {
        let s = settings::resolve(settings::Overrides {
            config: cli.config,
            masters: cli.masters,
            access_key: cli.access_key,
            secret_key: cli.secret_key,
            s3_endpoint: cli.s3_endpoint,
        })?;
        match cli.cmd {
            Cmd::Presign(a) => commands::presign(&s, a),
            Cmd::Status => commands::status(&s).await,
            Cmd::Node { cmd: NodeCmd::List } => commands::node_list(&s).await,
            Cmd::Disk { cmd } => disks::disk(&s, cmd).await,
            Cmd::Bucket { cmd } => commands::bucket(&s, cmd).await,
            Cmd::User { cmd } => commands::user(&s, cmd).await,
            Cmd::Cp(a) => copy::cp(&s, a).await,
            Cmd::Trash { cmd } => trash::trash(&s, cmd).await,
            Cmd::Gc { cmd } => gc::gc(&s, cmd).await,
            Cmd::Repair { cmd } => repair::repair(&s, cmd).await,
            Cmd::Balance { cmd } => balance::balance(&s, cmd).await,
            Cmd::Meta { cmd } => meta::meta(&s, cmd).await,
        }
    });
    match result {
        Ok(v) => view::print(out, &v),
        Err(e) => {
            if out == Output::Json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("kdss-cli: {e:#}");
            }
            std::process::exit(1);
        }
    }
}
