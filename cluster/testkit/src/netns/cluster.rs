//! Daemons on the namespace network: started with `ip netns exec`, waited for, stopped on
//! drop.

use super::Net;
use super::configs::random_hex;
use crate::{bin_path, test_tmp_root};
use anyhow::{Context, bail};
use kdss_common::auth::signer::{Signed, Signer};
use kdss_common::tls::{ClientTls, TlsSection};
use kdss_launch::{AdminRpc, Proc};
use kdss_proto::master::master_client::MasterClient;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// Shape of a namespace cluster (the defaults are the brief's: 3 masters, 5 nodes).
#[derive(Debug, Clone)]
pub struct NetOpts {
    pub masters: usize,
    pub nodes: usize,
    pub disks_per_node: usize,
    pub disk_size: u64,
    /// Raw TOML appended to every master config (faster health passes and the like).
    pub master_extra_toml: String,
    /// Keys of deploy/s3gw.toml's `[client]` to override, e.g. `("rpc_timeout", "5")`.
    pub gateway_client: Vec<(String, String)>,
    /// ksfs mounts of the bucket, on hosts `mount-1`... (see [`NetCluster::mount_path`]).
    pub mounts: usize,
    /// Raw TOML lines for every mount's `[mount]` table (`entry_ttl = 0.0`...).
    pub mount_extra_toml: String,
    /// Keys of every mount's `[client]` table, values as TOML (`("rpc_timeout", "5")`).
    pub mount_client: Vec<(String, String)>,
    /// Environment variables of single daemons, by host name: faults that live in the
    /// process rather than on the wire (`("node-2", [("FAKETIME", "+90s")])`...).
    pub env: Vec<(String, Vec<(String, String)>)>,
    /// Hosts whose daemons run under libfaketime with a clock a test can step while they
    /// run ([`NetCluster::skew_clock`]); they start on the true time.
    pub skewable: Vec<String>,
    /// Hosts whose links the test process carries, so a test can delay and drop their
    /// frames ([`super::Net::impair`]); the others are veth pairs.
    pub shaped: Vec<String>,
}

impl Default for NetOpts {
    fn default() -> Self {
        NetOpts {
            masters: 3,
            nodes: 5,
            disks_per_node: 2,
            disk_size: 256 << 20,
            master_extra_toml: String::new(),
            gateway_client: Vec::new(),
            mounts: 0,
            mount_extra_toml: String::new(),
            mount_client: Vec::new(),
            env: Vec::new(),
            skewable: Vec::new(),
            shaped: Vec::new(),
        }
    }
}

/// A running cluster on a [`Net`]. Processes are stopped, then the network removed, on
/// drop; logs are printed when the test panicked.
pub struct NetCluster {
    pub(super) procs: Vec<Proc>,
    /// Declared after `procs`: fields drop in order, so daemons stop before their
    /// namespaces go.
    pub net: Net,
    pub dir: tempfile::TempDir,
    pub cluster_id: String,
    pub secret: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub ca: PathBuf,
    pub tls: Arc<ClientTls>,
    pub(super) opts: NetOpts,
}

pub(super) const MASTER_PORT: u16 = 6700;
pub(super) const NODE_PORT: u16 = 6800;
pub(super) const S3_PORT: u16 = 9000;
const READY: Duration = Duration::from_secs(60);

/// The certificate role of a host of the harness, by its name.
fn role_of(name: &str) -> &'static str {
    if name.starts_with("master") {
        "master"
    } else if name.starts_with("s3gw") {
        "gateway"
    } else {
        "storage"
    }
}

impl NetCluster {
    /// Makes the network, certificates and configs, formats the disks, starts the
    /// masters, then the nodes, creates bucket `test`, and starts the gateway; returns
    /// once each answered.
    pub async fn start(opts: NetOpts) -> anyhow::Result<NetCluster> {
        kdss_common::tls::install_provider();
        let kdss = bin_path("kdss")?;
        let mut names: Vec<String> = (1..=opts.masters).map(|i| format!("master-{i}")).collect();
        names.extend((1..=opts.nodes).map(|i| format!("node-{i}")));
        names.push("s3gw-1".into());
        names.extend((1..=opts.mounts).map(|i| format!("mount-{i}")));
        let net = Net::with_shaped(&names, &opts.shaped)?;
        let dir = tempfile::Builder::new()
            .prefix("netns-")
            .tempdir_in(test_tmp_root())?;
        eprintln!(
            "[netns] run {}: bridge {}.0/24, files in {}",
            net.id,
            net.prefix,
            dir.path().display()
        );
        let tls_dir = dir.path().join("tls");
        for h in &net.hosts {
            let o = Command::new(&kdss)
                .args(["certs", "--ca-dir"])
                .arg(&tls_dir)
                .args(["--name", &h.name, "--host", &h.ip])
                .args(["--role", role_of(&h.name)])
                .output()
                .context("run kdss certs")?;
            anyhow::ensure!(
                o.status.success(),
                "kdss certs for {}: {}",
                h.name,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let ca = tls_dir.join("ca.pem");
        let tls = ClientTls::load(&TlsSection {
            ca: Some(ca.clone()),
            ..Default::default()
        })?
        .map(Arc::new)
        .context("client TLS from the CA")?;
        let mut c = NetCluster {
            procs: Vec::new(),
            net,
            cluster_id: format!("netns-{}", random_hex(4)),
            secret: random_hex(32),
            access_key: format!("ADMIN{}", random_hex(6).to_uppercase()),
            secret_key: random_hex(16),
            bucket: "test".into(),
            ca,
            tls,
            dir,
            opts,
        };
        std::fs::create_dir_all(c.dir.path().join("logs"))?;
        for i in 1..=c.opts.masters {
            c.write_master(i)?;
        }
        for i in 1..=c.opts.nodes {
            c.write_node(i, &kdss).await?;
        }
        c.write_gateway()?;
        for i in 1..=c.opts.mounts {
            c.write_mount(&format!("mount-{i}"))?;
        }

        for i in 1..=c.opts.masters {
            c.spawn(&kdss, "master", &format!("master-{i}"))?;
        }
        let rpc = c.admin().await?;
        for i in 1..=c.opts.nodes {
            c.spawn(&kdss, "storage", &format!("node-{i}"))?;
        }
        c.wait_nodes_online(&rpc).await?;
        rpc.ensure_bucket(&c.bucket, 5, 2).await?;
        c.spawn(&kdss, "s3gw", "s3gw-1")?;
        c.wait_gateway().await?;
        for i in 1..=c.opts.mounts {
            c.start_mount(&format!("mount-{i}")).await?;
        }
        Ok(c)
    }

    pub(super) fn spawn(&mut self, kdss: &Path, sub: &str, name: &str) -> anyhow::Result<()> {
        let ns = self.net.host(name).ns.clone();
        // `ip netns exec` execs the daemon, so the child's pid is the daemon's own.
        let args = vec![
            "netns".into(),
            "exec".into(),
            ns.into(),
            kdss.as_os_str().to_owned(),
            sub.into(),
            "-c".into(),
            self.config_path(name).into_os_string(),
        ];
        let mut env = vec![(
            "RUST_LOG".to_string(),
            std::env::var("KDSS_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )];
        if self.opts.skewable.iter().any(|h| h == name) {
            let file = self.clock_file(name);
            if !file.exists() {
                self.skew_clock(name, 0)?;
            }
            env.extend(super::clock::skewable_env(&file));
        }
        for (host, vars) in &self.opts.env {
            if host == name {
                env.extend(vars.iter().cloned());
            }
        }
        let log = self.dir.path().join("logs").join(format!("{name}.log"));
        let p = Proc::spawn(name, Path::new("ip"), args, &env, log)?;
        self.procs.push(p);
        Ok(())
    }

    fn proc_mut(&mut self, name: &str) -> &mut Proc {
        self.procs
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// Names of daemons that exited on their own, with their exit reasons.
    pub fn dead(&mut self) -> Vec<String> {
        self.procs
            .iter_mut()
            .filter_map(|p| (!p.is_running()).then(|| format!("{}: {}", p.name, p.exit_reason())))
            .collect()
    }

    /// An admin connection to a master that names a leader, waiting for one.
    pub async fn admin(&mut self) -> anyhow::Result<AdminRpc> {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < READY {
            for addr in self.master_addrs() {
                let r = AdminRpc::connect(
                    &addr,
                    &self.access_key,
                    &self.secret_key,
                    Some(&self.tls),
                    Duration::from_secs(2),
                )
                .await;
                match r {
                    Ok(rpc) => match rpc.status().await {
                        Ok(s) if s.leader_id != 0 => return Ok(rpc),
                        Ok(_) => last = format!("{addr}: no leader"),
                        Err(e) => last = format!("{addr}: {e}"),
                    },
                    Err(e) => last = format!("{addr}: {e}"),
                }
            }
            let dead = self.dead();
            anyhow::ensure!(
                dead.is_empty(),
                "daemons exited: {dead:?}\n{}",
                self.logs(20)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        bail!("no master named a leader within {READY:?}; last: {last}")
    }

    /// The master id the masters reachable from the test agree is leader, and its host.
    pub async fn leader(&mut self) -> anyhow::Result<(u64, String)> {
        let s = self.admin().await?.status().await?;
        Ok((s.leader_id, format!("master-{}", s.leader_id)))
    }

    /// Cluster status as master `name` itself answers it (not whichever master answers):
    /// whom it takes for leader, in which term, how far its log is committed.
    pub async fn status_of(
        &self,
        name: &str,
    ) -> anyhow::Result<kdss_proto::master::ClusterStatusReply> {
        let rpc = AdminRpc::connect(
            &self.master_addr(name),
            &self.access_key,
            &self.secret_key,
            Some(&self.tls),
            Duration::from_secs(2),
        )
        .await?;
        Ok(rpc.status().await?)
    }

    /// `IP:PORT` of master `name`'s gRPC service.
    pub fn master_addr(&self, name: &str) -> String {
        format!("{}:{MASTER_PORT}", self.net.host(name).ip)
    }

    /// A gRPC client of master `name` alone, signed with the admin keys: unlike the
    /// daemons' clients it never moves to another master, so a test sees what that one
    /// master answers (a cut-off leader, say). Calls time out after `timeout`.
    pub async fn master_client(
        &self,
        name: &str,
        timeout: Duration,
    ) -> anyhow::Result<MasterClient<Signed<Channel>>> {
        let addr = self.master_addr(name);
        let ch = kdss_common::tls::endpoint_with(&addr, Some(&self.tls))
            .map_err(anyhow::Error::msg)?
            .connect_timeout(timeout)
            .timeout(timeout)
            .connect()
            .await
            .with_context(|| format!("connect to {name} at {addr}"))?;
        Ok(MasterClient::new(
            Signer::new(&self.access_key, &self.secret_key).wrap(ch),
        ))
    }

    async fn wait_nodes_online(&mut self, rpc: &AdminRpc) -> anyhow::Result<()> {
        let start = Instant::now();
        let want: Vec<String> = (1..=self.opts.nodes).map(|i| format!("node-{i}")).collect();
        let mut missing = want.clone();
        while start.elapsed() < READY {
            if let Ok(s) = rpc.status().await {
                missing.retain(|id| {
                    !s.nodes.iter().any(|n| {
                        &n.node_id == id && n.online && n.disks.len() >= self.opts.disks_per_node
                    })
                });
                if missing.is_empty() {
                    return Ok(());
                }
                missing = want.clone();
            }
            let dead = self.dead();
            anyhow::ensure!(
                dead.is_empty(),
                "daemons exited: {dead:?}\n{}",
                self.logs(20)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        bail!("storage nodes not online within {READY:?}: {missing:?}")
    }

    async fn wait_gateway(&mut self) -> anyhow::Result<()> {
        let addr = format!("{}:{S3_PORT}", self.net.host("s3gw-1").ip);
        let start = Instant::now();
        while start.elapsed() < READY {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                return Ok(());
            }
            let dead = self.dead();
            anyhow::ensure!(
                dead.is_empty(),
                "daemons exited: {dead:?}\n{}",
                self.logs(20)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("gateway {addr} not listening within {READY:?}")
    }

    /// `https://IP:PORT/PATH` of the HTTP side of master or storage node `name`
    /// (`/health`, `/metrics`): what a test reads a daemon's `Date` header from.
    pub fn http_url(&self, name: &str, path: &str) -> String {
        let port = if name.starts_with("master") {
            MASTER_PORT + 1
        } else {
            NODE_PORT + 1
        };
        format!("https://{}:{port}{path}", self.net.host(name).ip)
    }

    /// `https://IP:PORT` of the gateway.
    pub fn s3_endpoint(&self) -> String {
        format!("https://{}:{S3_PORT}", self.net.host("s3gw-1").ip)
    }

    /// Kills a daemon (SIGKILL), as a host crash would.
    pub fn kill(&mut self, name: &str) {
        self.proc_mut(name).kill();
    }

    /// Starts a killed daemon again with its config.
    pub fn restart(&mut self, name: &str) -> anyhow::Result<()> {
        Ok(self.proc_mut(name).start()?)
    }

    /// The last `n` lines of every daemon's log.
    pub fn logs(&self, n: usize) -> String {
        self.procs
            .iter()
            .map(|p| format!("==== {} ====\n{}", p.name, p.log_tail(n)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        // Last started first: mounts and the gateway go while the masters still answer.
        for p in self.procs.iter_mut().rev() {
            p.stop(Duration::from_secs(3));
        }
        if std::thread::panicking() {
            eprintln!("[netns] test failed; daemon logs:\n{}", self.logs(40));
            // Keep logs, configs and the masters' databases of the failing run; the disk
            // images (gigabytes) go.
            for i in 1..=self.opts.nodes {
                let node = self.dir.path().join(format!("node-{i}"));
                for d in 0..self.opts.disks_per_node {
                    let _ = std::fs::remove_file(node.join(format!("disk{d}.img")));
                }
            }
            eprintln!("[netns] files kept in {}", self.dir.path().display());
            let _ = std::mem::replace(
                &mut self.dir,
                tempfile::Builder::new()
                    .prefix("netns-empty-")
                    .tempdir_in(test_tmp_root())
                    .expect("temp dir"),
            )
            .keep();
        }
    }
}
