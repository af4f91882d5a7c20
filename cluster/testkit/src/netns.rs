//! A cluster spread over network namespaces, so tests see what separate hosts see: each
//! daemon has its own network stack and address on a Linux bridge, and faults are cut
//! into the wire between them (routes that drop packets, links taken down, `tc netem`).
//!
//! [`Net`] is the wire: a bridge in the root namespace (the test process reaches every
//! host through it) and one namespace per host joined to it by a veth pair, named with a
//! per-run id so parallel runs never collide, and removed on drop. [`NetCluster`] starts
//! 3 masters, 5 storage nodes (file-backed disks) and an S3 gateway on it with
//! `ip netns exec`, from configs made out of `deploy/*.toml` (the documented multi-host
//! deploy, TLS on, certificates from `kdss certs`), and stops them on drop.

use crate::{bin_path, test_tmp_root};
use anyhow::{Context, bail};
use kdss_common::tls::{ClientTls, TlsSection};
use kdss_launch::{AdminRpc, Proc};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why namespace tests cannot run here (`None`: they can): they need root and iproute2.
pub fn netns_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("network namespace tests need root (ip netns add)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("the `ip` command (Debian package iproute2) is missing".into()),
    }
}

/// Runs `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args)
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let o = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("run {program}"))?;
    if !o.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    Ok(())
}

/// One host of the test network: a namespace with one interface on the bridge.
#[derive(Debug, Clone)]
pub struct Host {
    /// What runs there: `master-1`, `node-3`, `s3gw-1`.
    pub name: String,
    pub ns: String,
    /// The host's address on the bridge.
    pub ip: String,
    /// The root-namespace end of its veth pair (a port of the bridge).
    veth: String,
}

/// The bridge and the namespaces of one test run; deleted on drop.
pub struct Net {
    pub id: String,
    bridge: String,
    /// `10.X.Y` of the /24 this run uses; the bridge is `.1`.
    prefix: String,
    pub hosts: Vec<Host>,
    /// Routes added to cut links: (in namespace of host, toward host).
    cuts: BTreeSet<(usize, usize)>,
}

impl Net {
    /// Makes the bridge and one namespace per name, each with address `.N` (N from 11).
    pub fn new(names: &[String]) -> anyhow::Result<Net> {
        let id = format!("{:05x}", rand_u32() & 0xfffff);
        let prefix = free_prefix()?;
        let mut net = Net {
            bridge: format!("kdb{id}"),
            id,
            prefix,
            hosts: Vec::new(),
            cuts: BTreeSet::new(),
        };
        ip(&["link", "add", &net.bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.1/24", net.prefix),
            "dev",
            &net.bridge,
        ])?;
        ip(&["link", "set", &net.bridge, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let host = Host {
                name: name.clone(),
                ns: format!("kdss-{}-{name}", net.id),
                ip: format!("{}.{}", net.prefix, 11 + i),
                veth: format!("kd{}h{i}", net.id),
            };
            // Pushed first so drop removes whatever part of it was made.
            net.hosts.push(host.clone());
            let peer = format!("kd{}p{i}", net.id);
            ip(&["netns", "add", &host.ns])?;
            ip(&[
                "link", "add", &host.veth, "type", "veth", "peer", "name", &peer,
            ])?;
            ip(&["link", "set", &host.veth, "master", &net.bridge, "up"])?;
            ip(&["link", "set", &peer, "netns", &host.ns])?;
            let n = &host.ns;
            ip(&["-n", n, "link", "set", &peer, "name", "eth0"])?;
            ip(&[
                "-n",
                n,
                "addr",
                "add",
                &format!("{}/24", host.ip),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", n, "link", "set", "eth0", "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    fn index(&self, name: &str) -> usize {
        self.hosts
            .iter()
            .position(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    /// Drops every packet `from` sends to `to` (a blackhole route in `from`'s namespace):
    /// one direction of a link, silently, as a dead switch port would.
    pub fn cut_one_way(&mut self, from: &str, to: &str) -> anyhow::Result<()> {
        let (f, t) = (self.index(from), self.index(to));
        if self.cuts.insert((f, t)) {
            let dst = format!("{}/32", self.hosts[t].ip);
            ip(&["-n", &self.hosts[f].ns, "route", "add", "blackhole", &dst])?;
        }
        Ok(())
    }

    /// Cuts every link between a host of `a` and a host of `b`, both ways. The test
    /// process (on the bridge) still reaches everyone.
    pub fn partition(&mut self, a: &[&str], b: &[&str]) -> anyhow::Result<()> {
        for x in a {
            for y in b {
                self.cut_one_way(x, y)?;
                self.cut_one_way(y, x)?;
            }
        }
        Ok(())
    }

    /// Cuts `name` from every other host (not from the test process).
    pub fn isolate(&mut self, name: &str) -> anyhow::Result<()> {
        let others: Vec<String> = self
            .hosts
            .iter()
            .filter(|h| h.name != name)
            .map(|h| h.name.clone())
            .collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        self.partition(&[name], &others)
    }

    /// Removes every cut.
    pub fn heal(&mut self) -> anyhow::Result<()> {
        for (f, t) in std::mem::take(&mut self.cuts) {
            let dst = format!("{}/32", self.hosts[t].ip);
            ip(&["-n", &self.hosts[f].ns, "route", "del", "blackhole", &dst])?;
        }
        Ok(())
    }

    /// Takes `name`'s link down or up: the host drops off the network entirely, the test
    /// process included.
    pub fn set_link(&self, name: &str, up: bool) -> anyhow::Result<()> {
        let h = self.host(name);
        ip(&["link", "set", &h.veth, if up { "up" } else { "down" }])
    }

    /// Applies `tc netem` to what `name` sends, e.g. `["delay", "50ms", "10ms"]` or
    /// `["loss", "5%"]`; an empty list removes it. Fails with tc's message where the
    /// kernel has no netem (`sch_netem`).
    pub fn netem(&self, name: &str, args: &[&str]) -> anyhow::Result<()> {
        let ns = &self.host(name).ns;
        if args.is_empty() {
            return run("tc", &["-n", ns, "qdisc", "del", "dev", "eth0", "root"]);
        }
        let mut a = vec!["-n", ns, "qdisc", "replace", "dev", "eth0", "root", "netem"];
        a.extend_from_slice(args);
        run("tc", &a)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it our end.
        for h in &self.hosts {
            let _ = ip(&["netns", "del", &h.ns]);
            let _ = ip(&["link", "del", &h.veth]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
    }
}

fn rand_u32() -> u32 {
    rand::random()
}

/// A `10.X.Y` /24 no interface of the root namespace uses (parallel runs pick apart).
fn free_prefix() -> anyhow::Result<String> {
    let o = Command::new("ip")
        .args(["-4", "-o", "addr"])
        .output()
        .context("run ip -4 addr")?;
    let used = String::from_utf8_lossy(&o.stdout).to_string();
    for n in 0..64u32 {
        let r = rand_u32().wrapping_add(n.wrapping_mul(7919));
        let prefix = format!("10.{}.{}", 200 + (r % 50), 1 + (r >> 8) % 250);
        if !used.contains(&format!(" {prefix}.")) {
            return Ok(prefix);
        }
    }
    bail!("no free 10.x.y.0/24 for the test bridge")
}

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
        }
    }
}

/// A running cluster on a [`Net`]. Processes are stopped, then the network removed, on
/// drop; logs are printed when the test panicked.
pub struct NetCluster {
    procs: Vec<Proc>,
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
    opts: NetOpts,
}

const MASTER_PORT: u16 = 6700;
const NODE_PORT: u16 = 6800;
const S3_PORT: u16 = 9000;
const READY: Duration = Duration::from_secs(60);

fn deploy(name: &str) -> anyhow::Result<toml::Table> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(name);
    let text = std::fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
    text.parse()
        .with_context(|| format!("parse {} as TOML", p.display()))
}

fn table<'a>(t: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    t.entry(key)
        .or_insert_with(|| toml::Value::Table(Default::default()))
        .as_table_mut()
        .unwrap_or_else(|| panic!("[{key}] is not a table"))
}

fn s(v: impl Into<String>) -> toml::Value {
    toml::Value::String(v.into())
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
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
        let net = Net::new(&names)?;
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
        Ok(c)
    }

    fn config_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.toml"))
    }

    fn tls_section(&self, t: &mut toml::Table, name: &str) {
        let dir = self.dir.path().join("tls");
        let tls = table(t, "tls");
        tls.insert("ca".into(), s(dir.join("ca.pem").display().to_string()));
        tls.insert(
            "cert".into(),
            s(dir.join(format!("{name}.pem")).display().to_string()),
        );
        tls.insert(
            "key".into(),
            s(dir.join(format!("{name}.key")).display().to_string()),
        );
    }

    fn write(&self, name: &str, t: &toml::Table) -> anyhow::Result<()> {
        let p = self.config_path(name);
        std::fs::write(&p, toml::to_string(t)?).with_context(|| format!("write {}", p.display()))
    }

    fn master_addrs(&self) -> Vec<String> {
        (1..=self.opts.masters)
            .map(|i| format!("{}:{MASTER_PORT}", self.net.host(&format!("master-{i}")).ip))
            .collect()
    }

    fn write_master(&self, i: usize) -> anyhow::Result<()> {
        let name = format!("master-{i}");
        let ip = &self.net.host(&name).ip;
        let mut t = deploy("master.toml")?;
        let m = table(&mut t, "master");
        m.insert("id".into(), toml::Value::Integer(i as i64));
        m.insert("grpc_addr".into(), s(format!("{ip}:{MASTER_PORT}")));
        m.insert("http_addr".into(), s(format!("{ip}:{}", MASTER_PORT + 1)));
        let data = self.dir.path().join(&name);
        std::fs::create_dir_all(&data)?;
        m.insert("data_dir".into(), s(data.display().to_string()));
        let peers = self
            .master_addrs()
            .into_iter()
            .enumerate()
            .map(|(j, a)| {
                let mut p = toml::Table::new();
                p.insert("id".into(), toml::Value::Integer(j as i64 + 1));
                p.insert("grpc_addr".into(), s(a));
                toml::Value::Table(p)
            })
            .collect();
        let cl = table(&mut t, "cluster");
        cl.insert("id".into(), s(&self.cluster_id));
        cl.insert("secret".into(), s(&self.secret));
        cl.insert("peers".into(), toml::Value::Array(peers));
        let a = table(&mut t, "admin");
        a.insert("access_key".into(), s(&self.access_key));
        a.insert("secret_key".into(), s(&self.secret_key));
        self.tls_section(&mut t, &name);
        let extra: toml::Table = self.opts.master_extra_toml.parse()?;
        for (k, v) in extra {
            match (t.get_mut(&k), v) {
                (Some(toml::Value::Table(have)), toml::Value::Table(add)) => have.extend(add),
                (_, v) => {
                    t.insert(k, v);
                }
            }
        }
        self.write(&name, &t)
    }

    fn masters_value(&self) -> toml::Value {
        toml::Value::Array(self.master_addrs().into_iter().map(s).collect())
    }

    async fn write_node(&self, i: usize, kdss: &Path) -> anyhow::Result<()> {
        let name = format!("node-{i}");
        let ip = &self.net.host(&name).ip;
        let mut t = deploy("storage.toml")?;
        let n = table(&mut t, "node");
        n.insert("id".into(), s(&name));
        n.insert("grpc_addr".into(), s(format!("{ip}:{NODE_PORT}")));
        n.insert("http_addr".into(), s(format!("{ip}:{}", NODE_PORT + 1)));
        let cl = table(&mut t, "cluster");
        cl.insert("id".into(), s(&self.cluster_id));
        cl.insert("secret".into(), s(&self.secret));
        cl.insert("masters".into(), self.masters_value());
        self.tls_section(&mut t, &name);
        let mut disks = Vec::new();
        for d in 0..self.opts.disks_per_node {
            let path = self.dir.path().join(&name).join(format!("disk{d}.img"));
            std::fs::create_dir_all(path.parent().expect("has a parent"))?;
            let o = tokio::process::Command::new(kdss)
                .args(["format-disk", "--path"])
                .arg(&path)
                .args(["--size", &self.opts.disk_size.to_string()])
                .args(["--cluster-id", &self.cluster_id])
                .output()
                .await?;
            anyhow::ensure!(
                o.status.success(),
                "format {}: {}",
                path.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            let mut disk = toml::Table::new();
            disk.insert("path".into(), s(path.display().to_string()));
            disks.push(toml::Value::Table(disk));
        }
        t.insert("disk".into(), toml::Value::Array(disks));
        self.write(&name, &t)
    }

    fn write_gateway(&self) -> anyhow::Result<()> {
        let ip = &self.net.host("s3gw-1").ip;
        let mut t = deploy("s3gw.toml")?;
        let s3 = table(&mut t, "s3");
        s3.insert("listen".into(), s(format!("{ip}:{S3_PORT}")));
        s3.insert("metrics_listen".into(), s(format!("{ip}:{}", S3_PORT + 10)));
        let cl = table(&mut t, "cluster");
        cl.insert("masters".into(), self.masters_value());
        cl.insert("secret".into(), s(&self.secret));
        self.tls_section(&mut t, "s3gw-1");
        let client = table(&mut t, "client");
        for (k, v) in &self.opts.gateway_client {
            let v = v
                .parse::<i64>()
                .map(toml::Value::Integer)
                .unwrap_or_else(|_| s(v));
            client.insert(k.clone(), v);
        }
        self.write("s3gw-1", &t)
    }

    fn spawn(&mut self, kdss: &Path, sub: &str, name: &str) -> anyhow::Result<()> {
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
        let env = vec![(
            "RUST_LOG".to_string(),
            std::env::var("KDSS_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )];
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
        let addr = format!("{}:{MASTER_PORT}", self.net.host(name).ip);
        let rpc = AdminRpc::connect(
            &addr,
            &self.access_key,
            &self.secret_key,
            Some(&self.tls),
            Duration::from_secs(2),
        )
        .await?;
        Ok(rpc.status().await?)
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
        if std::thread::panicking() {
            eprintln!("[netns] test failed; daemon logs:\n{}", self.logs(40));
            eprintln!("[netns] files kept in {}", self.dir.path().display());
            // Keep the directory (histories, logs) for the failing run.
            let _ = std::mem::replace(
                &mut self.dir,
                tempfile::Builder::new()
                    .prefix("netns-empty-")
                    .tempdir_in(test_tmp_root())
                    .expect("temp dir"),
            )
            .keep();
        }
        for p in &mut self.procs {
            p.stop(Duration::from_secs(3));
        }
    }
}
