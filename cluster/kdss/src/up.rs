//! `kdss up`: the whole system on this machine for a newcomer — masters, storage nodes on
//! file-backed raw devices, the S3 gateway, and a ksfs mount when FUSE is available —
//! then the endpoints, credentials and three commands to try. Ctrl-C stops everything
//! cleanly; running it again on the same `--data` brings the same data back. A daemon that
//! dies while the cluster runs is reported on stderr and dropped from cluster.json.

use anyhow::Context;
use kdss_common::EcPolicy;
use kdss_launch::cluster_json::ClusterState;
use kdss_launch::{ClusterSpec, LocalCluster, PortPlan, Proc};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Flags of `kdss up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Directory for device files, master data, configs and logs (reused on restart).
    #[arg(long, default_value = "./kdss-data")]
    pub data: PathBuf,
    /// Where to mount the bucket with ksfs.
    #[arg(long, default_value = "./kdss-mnt")]
    pub mount: PathBuf,
    /// Do not mount ksfs (S3 and the CLI only).
    #[arg(long)]
    pub no_mount: bool,
    /// Number of masters (1, 3 or 5; Raft needs an odd count).
    #[arg(long, default_value_t = 1)]
    pub masters: usize,
    /// Number of storage nodes. On an existing --data, a larger number grows the cluster:
    /// the new nodes' devices are formatted and they join with the old data and ports
    /// kept. A smaller number is refused: removing a node is a drain (`kdss-cli disk drain`
    /// each of its disks), not a flag.
    #[arg(long, default_value_t = 4)]
    pub nodes: usize,
    /// Device files per storage node.
    #[arg(long, default_value_t = 2)]
    pub disks: usize,
    /// Size of each device file (for example 1GiB, 512MiB).
    #[arg(long, default_value = "1GiB", value_parser = kdss_common::size::parse_size)]
    pub disk_size: u64,
    /// EC policy of the bucket and the masters' default: 5+2, 9+2, 18+3 or 29+3.
    #[arg(long, default_value = "5+2")]
    pub ec: EcPolicy,
    /// Name of the bucket to create and mount.
    #[arg(long, default_value = "kdss")]
    pub bucket: String,
    /// First port of this cluster: master i listens at BASE+10i (gRPC) and BASE+10i+1
    /// (HTTP), storage node i at BASE+100+10i and +1, the S3 gateway at BASE+2300. The
    /// default gives 6700 / 6800 / 9000. A second cluster on the same host needs its own
    /// --data and --port-base (e.g. 7700: S3 at 10000). A data dir keeps the ports it was
    /// created with; without this flag a restart uses them [default: 6700 for a new --data]
    #[arg(long)]
    pub port_base: Option<u16>,
    /// Put the storage nodes in N racks, round-robin (node-1 in rack-1, node-N+1 in
    /// rack-1 again), so placement spreads stripes across racks as it would across real
    /// ones. A data dir keeps its racks; without this flag a restart uses them.
    #[arg(long, default_value_t = 0)]
    pub racks: usize,
    /// Serve every listener over TLS: a cluster CA and a certificate per daemon are made in
    /// DATA/tls (keys 0600 in a 0700 dir), daemons verify each other with it (mutual TLS)
    /// and the S3 endpoint is https://. A data dir keeps TLS once it has it.
    #[arg(long)]
    pub tls: bool,
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    // Rebuilding from components drops `.` components, so the path matches
    // /proc/self/mountinfo.
    let abs = std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?;
    Ok(abs.components().collect())
}

/// Runs `kdss up` until Ctrl-C.
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let data = absolute(&args.data)?;
    let kdss_bin = std::env::current_exe().context("locating the kdss binary")?;
    let mut spec = ClusterSpec::new(data.clone(), kdss_bin.clone());
    spec.masters = args.masters;
    spec.nodes = args.nodes;
    spec.disks_per_node = args.disks;
    spec.disk_size = args.disk_size;
    spec.ec = args.ec;
    spec.racks = args.racks;
    spec.tls = args.tls;
    // Without --port-base, an existing data dir keeps its ports and a new one gets 6700.
    let base = args.port_base.unwrap_or_else(|| {
        kdss_launch::Layout::load(&data)
            .ok()
            .and_then(|l| l.port_base())
            .unwrap_or(kdss_launch::STANDARD_BASE)
    });
    spec.ports = PortPlan::Base(base);
    spec.bucket = Some(args.bucket.clone());
    let mut step = 0;
    let mut progress = |s: &str| {
        step += 1;
        eprintln!("[{:>5.1}s] {step}. {s}", start.elapsed().as_secs_f64());
    };
    let mut cluster = LocalCluster::start(spec, &mut progress)
        .await
        .with_context(|| {
            format!(
                "starting the cluster in {} (daemon logs in {})",
                data.display(),
                data.join("logs").display()
            )
        })?;

    let mut mount_proc = None;
    let mut mountpoint = None;
    if args.no_mount {
        progress("not mounting ksfs (--no-mount)");
    } else {
        match kdss_launch::fuse_unavailable() {
            Some(why) => progress(&format!("not mounting ksfs: {why}")),
            None => {
                let mp = absolute(&args.mount)?;
                progress(&format!(
                    "mounting bucket {} at {} with ksfs",
                    args.bucket,
                    mp.display()
                ));
                let p = mount(&cluster, &kdss_bin, &data, &mp, &args.bucket).await?;
                mount_proc = Some(p);
                mountpoint = Some(mp);
            }
        }
    }
    let json = cluster.write_cluster_json(mountpoint.clone(), ClusterState::Running)?;
    write_cli_config(&cluster, &data)?;
    print_banner(&cluster, &args, mountpoint.as_deref(), &json, &data);

    supervise(&mut cluster, &mut mount_proc, mountpoint.clone()).await;
    eprintln!("stopping: unmounting, then gateways, storage nodes and masters");
    if let Some(mut p) = mount_proc {
        p.stop(Duration::from_secs(15));
    }
    cluster.stop();
    cluster.write_cluster_json(None, ClusterState::Stopped)?;
    eprintln!("stopped cleanly; run the same command again to bring the data back");
    Ok(())
}

/// How often `kdss up` looks for daemons that died.
const SUPERVISE_EVERY: Duration = Duration::from_millis(500);

/// Waits for Ctrl-C (or SIGTERM), meanwhile reporting each daemon (or the mount) that
/// dies, once, and rewriting cluster.json so it no longer shows the dead pid.
async fn supervise(
    cluster: &mut LocalCluster,
    mount_proc: &mut Option<Proc>,
    mountpoint: Option<PathBuf>,
) {
    let shutdown = crate::signals::shutdown();
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(SUPERVISE_EVERY);
    let mut reported = HashSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let mut dead = cluster.dead_daemons();
        if let Some(p) = mount_proc.as_mut()
            && let Some(status) = p.exit_status()
        {
            dead.push((p.name.clone(), status, p.exit_reason()));
        }
        let mut news = false;
        for (name, status, reason) in dead {
            if reported.insert(name.clone()) {
                news = true;
                eprintln!(
                    "\nkdss up: {name} died ({status}): {reason}\n  \
                     The rest keeps running without it. Ctrl-C, then the same command \
                     again, restarts it."
                );
            }
        }
        if news
            && let Err(e) = cluster.write_cluster_json(mountpoint.clone(), ClusterState::Running)
        {
            eprintln!("kdss up: could not rewrite cluster.json: {e}");
        }
    }
}

async fn mount(
    cluster: &LocalCluster,
    kdss_bin: &Path,
    data: &Path,
    mp: &Path,
    bucket: &str,
) -> anyhow::Result<Proc> {
    std::fs::create_dir_all(mp).with_context(|| format!("creating {}", mp.display()))?;
    let config = data.join("config").join("mount.toml");
    let log = data.join("logs").join("ksfs.log");
    let extra = cluster
        .layout
        .mount_metrics
        .as_ref()
        .map(|m| format!("metrics_addr = {m:?}\n"))
        .unwrap_or_default();
    let req = kdss_launch::MountRequest {
        name: "ksfs",
        bucket,
        mountpoint: mp,
        extra: &extra,
        config: &config,
        log: &log,
    };
    Ok(kdss_launch::spawn_mount(&cluster.layout, kdss_bin, req).await?)
}

fn write_cli_config(cluster: &LocalCluster, data: &Path) -> anyhow::Result<()> {
    let l = &cluster.layout;
    let masters: Vec<String> = l.master_addrs().iter().map(|a| format!("{a:?}")).collect();
    let text = format!(
        "masters = [{}]\naccess_key = {:?}\nsecret_key = {:?}\ns3_endpoint = {:?}\nregion = {:?}\n",
        masters.join(", "),
        l.admin_access_key,
        l.admin_secret_key,
        cluster.s3_endpoint().unwrap_or_default(),
        l.region,
    ) + &kdss_launch::tls::client_section(l);
    // 0600: it holds the admin's secret key.
    kdss_common::private_file::write(&data.join("cli.toml"), text.as_bytes())?;
    Ok(())
}

fn print_banner(c: &LocalCluster, a: &UpArgs, mp: Option<&Path>, json: &Path, data: &Path) {
    let l = &c.layout;
    let s3 = c.s3_endpoint().unwrap_or_default();
    let http = l.scheme();
    println!();
    println!(
        "KDSS is up: {} master(s), {} storage node(s) x {} disk(s) of {} MiB, EC {}",
        a.masters,
        a.nodes,
        a.disks,
        a.disk_size >> 20,
        a.ec
    );
    println!("  S3 endpoint   {s3}  (region {})", l.region);
    println!("  access key    {}", l.admin_access_key);
    println!("  secret key    {}", l.admin_secret_key);
    println!("  bucket        {}", a.bucket);
    match mp {
        Some(m) => println!("  mounted at    {} (ksfs)", m.display()),
        None => println!("  mounted at    (not mounted)"),
    }
    if let Some(m) = l.masters.first() {
        println!(
            "  web console   {http}://{}/  (sign in with the access key and secret key above)",
            m.http
        );
    }
    for m in &l.masters {
        println!(
            "  master {}      grpc {}  metrics {http}://{}/metrics",
            m.id, m.grpc, m.http
        );
    }
    for g in &l.gateway_metrics {
        println!("  s3gw metrics  {http}://{g}/metrics");
    }
    if let (Some(_), Some(m)) = (mp, &l.mount_metrics) {
        println!("  ksfs metrics  http://{m}/metrics");
    }
    println!(
        "  cluster.json  {}  (every metrics address; deploy/prometheus)",
        json.display()
    );
    println!();
    println!("Try:");
    if let Some(m) = mp {
        println!(
            "  cp /etc/services {}/ && ls -l {}",
            m.display(),
            m.display()
        );
    }
    // aws cli and boto3 trust the cluster CA through AWS_CA_BUNDLE.
    let ca = l
        .ca_path()
        .map(|p| format!("AWS_CA_BUNDLE={} ", p.display()))
        .unwrap_or_default();
    println!(
        "  {ca}AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} aws --endpoint-url {s3} s3 ls s3://{}/",
        l.admin_access_key, l.admin_secret_key, a.bucket
    );
    if let Some(p) = l.ca_path() {
        println!("  (TLS: clients trust the cluster CA {})", p.display());
    }
    println!(
        "  cargo run --release --bin kdss-cli -- --config {} status",
        data.join("cli.toml").display()
    );
    println!();
    println!("Press Ctrl-C to stop.");
}
