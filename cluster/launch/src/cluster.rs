//! A running local cluster: start in dependency order (masters → storage nodes → bucket →
//! gateways), each step waiting for readiness; kill or restart any one process; stop all
//! cleanly (gateways, then nodes so their clean-shutdown flags are written, then masters).

use crate::configs;
use crate::error::{LaunchError, io};
use crate::layout::{Layout, Origin};
use crate::process::Proc;
use crate::ready;
use crate::rpc::AdminRpc;
use crate::spec::{ClusterSpec, PortPlan};
use kdss_common::private_file;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_GRACE: Duration = Duration::from_secs(15);

/// The processes of a local cluster. Dropping it stops every process.
pub struct LocalCluster {
    pub spec: ClusterSpec,
    pub layout: Layout,
    pub masters: Vec<Proc>,
    pub nodes: Vec<Proc>,
    pub gateways: Vec<Proc>,
    /// What the launcher trusts when it dials a TLS cluster (the cluster CA); none for
    /// a plaintext one. The launcher's own, not the process-wide setting, so clusters of
    /// both kinds can be driven from one test process.
    pub client_tls: Option<std::sync::Arc<kdss_common::tls::ClientTls>>,
}

/// Writes a file of the data dir. Every file `kdss up` writes there (configs, layout.json,
/// cluster.json, cli.toml, mount.toml) holds the cluster secret or the admin's secret key,
/// so each is written 0600 in a 0700 directory, atomically.
pub(crate) fn write(path: &Path, text: &str) -> Result<(), LaunchError> {
    Ok(private_file::write(path, text.as_bytes())?)
}

/// Makes the data dir (and its config and logs dirs) 0700 — creating them so, and
/// tightening those an older version made 0755 — and an older layout.json 0600. Each
/// tightening is reported through `progress`.
fn make_private(data_dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<(), LaunchError> {
    private_file::create_dir(data_dir)?;
    for p in [
        data_dir.to_path_buf(),
        data_dir.join("config"),
        data_dir.join("logs"),
        Layout::path(data_dir),
    ] {
        if !p.exists() {
            continue;
        }
        if let Some(old) = private_file::tighten(&p)? {
            progress(&format!(
                "tightened {} from mode {old:o} to owner-only: it holds the cluster secret",
                p.display()
            ));
        }
    }
    Ok(())
}

impl LocalCluster {
    /// Config file of a daemon inside the data dir.
    pub fn config_path(&self, name: &str) -> PathBuf {
        self.spec
            .data_dir
            .join("config")
            .join(format!("{name}.toml"))
    }

    fn log_path(spec: &ClusterSpec, name: &str) -> PathBuf {
        spec.data_dir.join("logs").join(format!("{name}.log"))
    }

    /// Starts (or restarts on an existing data dir) the whole cluster and waits until it
    /// serves: a leader elected, every node online with its disks, the bucket present,
    /// every gateway accepting connections. `progress` hears about each step. A spec with
    /// more storage nodes than the data dir has grows the cluster: the new nodes' devices
    /// are formatted, the nodes start and register like the others, and the layout is
    /// saved with them once they are online (see [`Layout::load_or_plan`]).
    pub async fn start(
        spec: ClusterSpec,
        progress: &mut dyn FnMut(&str),
    ) -> Result<LocalCluster, LaunchError> {
        spec.validate()?;
        make_private(&spec.data_dir, progress)?;
        let (mut layout, origin) = Layout::load_or_plan(&spec)?;
        if spec.tls && layout.tls_dir.is_none() {
            let dir = std::path::absolute(spec.data_dir.join("tls"))
                .map_err(io(format!("resolve {}", spec.data_dir.display())))?;
            layout.tls_dir = Some(dir);
            if origin != Origin::New {
                layout.save(&spec.data_dir)?;
            }
        }
        if let Some((addr, what)) = crate::ports::first_taken(&layout) {
            return Err(port_in_use(&spec, addr, what, origin != Origin::New));
        }
        if origin == Origin::New {
            layout.save(&spec.data_dir)?;
        }
        if let Origin::Grown { from } = origin {
            let added: Vec<&str> = layout.nodes[from..].iter().map(|n| n.id.as_str()).collect();
            progress(&format!(
                "growing from {from} to {} storage nodes: adding {}",
                layout.nodes.len(),
                added.join(", ")
            ));
        }
        private_file::create_dir(&spec.data_dir.join("logs"))?;
        let mut c = LocalCluster {
            spec,
            layout,
            masters: Vec::new(),
            nodes: Vec::new(),
            gateways: Vec::new(),
            client_tls: None,
        };
        c.client_tls = crate::tls::ensure_certs(&c.layout)?;
        c.write_configs()?;
        c.format_missing_disks(progress).await?;

        progress(&format!("starting {} master(s)", c.layout.masters.len()));
        for i in 0..c.layout.masters.len() {
            let p = c.spawn_daemon("master", &format!("master-{}", i + 1))?;
            c.masters.push(p);
        }
        let rpc = c.wait_leader().await?;

        progress(&format!(
            "starting {} storage node(s)",
            c.layout.nodes.len()
        ));
        for n in c.layout.nodes.clone() {
            let p = c.spawn_daemon("storage", &n.id)?;
            c.nodes.push(p);
        }
        let ids: Vec<String> = c.layout.nodes.iter().map(|n| n.id.clone()).collect();
        let dpn = c.spec.disks_per_node;
        ready::wait_nodes_online(&rpc, &mut c.nodes, &ids, dpn, READY_TIMEOUT).await?;
        if let Origin::Grown { .. } = origin {
            // From now on the new nodes may hold shards: the data dir must keep them.
            c.layout.save(&c.spec.data_dir)?;
        }

        if let Some(b) = c.spec.bucket.clone() {
            progress(&format!("creating bucket {b} (EC {})", c.spec.ec));
            rpc.ensure_bucket(&b, c.spec.ec.k, c.spec.ec.m).await?;
        }

        if !c.layout.gateways.is_empty() {
            progress(&format!(
                "starting {} S3 gateway(s)",
                c.layout.gateways.len()
            ));
        }
        for i in 0..c.layout.gateways.len() {
            let p = c.spawn_daemon("s3gw", &format!("s3gw-{}", i + 1))?;
            c.gateways.push(p);
            let addr = c.layout.gateways[i].clone();
            ready::wait_gateway(
                &mut c.gateways[i],
                &addr,
                c.client_tls.as_ref(),
                READY_TIMEOUT,
            )
            .await?;
        }
        Ok(c)
    }

    fn write_configs(&self) -> Result<(), LaunchError> {
        for m in &self.layout.masters {
            private_file::create_dir(&m.data)?;
            let name = format!("master-{}", m.id);
            let text = configs::master_toml(&self.layout, m, &self.spec)
                + &crate::tls::section(&self.layout, &name);
            write(&self.config_path(&name), &text)?;
        }
        for n in &self.layout.nodes {
            write(
                &self.config_path(&n.id),
                &(configs::storage_toml(&self.layout, n, &self.spec)
                    + &crate::tls::section(&self.layout, &n.id)),
            )?;
        }
        for (i, g) in self.layout.gateways.iter().enumerate() {
            let name = format!("s3gw-{}", i + 1);
            let text = configs::s3gw_toml(
                &self.layout,
                g,
                self.layout.gateway_metrics.get(i).map(String::as_str),
            ) + &crate::tls::section(&self.layout, &name);
            write(&self.config_path(&name), &text)?;
        }
        Ok(())
    }

    async fn format_missing_disks(
        &self,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), LaunchError> {
        let missing: Vec<&PathBuf> = self
            .layout
            .nodes
            .iter()
            .flat_map(|n| &n.disks)
            .filter(|d| !d.exists())
            .collect();
        for (i, d) in missing.iter().enumerate() {
            progress(&format!(
                "formatting device {}/{}: {} ({} MiB)",
                i + 1,
                missing.len(),
                d.display(),
                self.layout.disk_size >> 20
            ));
            if let Some(p) = d.parent() {
                private_file::create_dir(p)?;
            }
            let out = tokio::process::Command::new(&self.spec.kdss_bin)
                .arg("format-disk")
                .arg("--path")
                .arg(d)
                .arg("--size")
                .arg(self.layout.disk_size.to_string())
                .arg("--cluster-id")
                .arg(&self.layout.cluster_id)
                .output()
                .await
                .map_err(io(format!(
                    "run {} format-disk",
                    self.spec.kdss_bin.display()
                )))?;
            if !out.status.success() {
                let _ = std::fs::remove_file(d);
                return Err(LaunchError::Format {
                    path: d.to_path_buf(),
                    message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                });
            }
        }
        Ok(())
    }

    fn spawn_daemon(&self, sub: &str, name: &str) -> Result<Proc, LaunchError> {
        let args: Vec<OsString> = vec![
            sub.into(),
            "-c".into(),
            self.config_path(name).into_os_string(),
        ];
        let mut env = self.spec.env.clone();
        if !env.iter().any(|(k, _)| k == "RUST_LOG") {
            env.push(("RUST_LOG".into(), "info".into()));
        }
        Proc::spawn(
            name,
            &self.spec.kdss_bin,
            args,
            &env,
            Self::log_path(&self.spec, name),
        )
    }

    async fn wait_leader(&mut self) -> Result<AdminRpc, LaunchError> {
        let addrs = self.layout.master_addrs();
        let (ak, sk) = (
            self.layout.admin_access_key.clone(),
            self.layout.admin_secret_key.clone(),
        );
        let tls = self.client_tls.clone();
        ready::wait_leader(
            &mut self.masters,
            &addrs,
            &ak,
            &sk,
            tls.as_ref(),
            READY_TIMEOUT,
        )
        .await
    }

    /// An admin connection to a master that knows the leader.
    pub async fn admin(&mut self) -> Result<AdminRpc, LaunchError> {
        self.wait_leader().await
    }

    /// Index of the current leader among `masters`, as the masters report it.
    pub async fn leader_index(&mut self) -> Result<usize, LaunchError> {
        let s = self.admin().await?.status().await?;
        self.layout
            .masters
            .iter()
            .position(|m| m.id == s.leader_id)
            .ok_or_else(|| {
                LaunchError::Spec(format!("leader id {} is not in the layout", s.leader_id))
            })
    }

    /// SIGKILL master `i`.
    pub fn kill_master(&mut self, i: usize) {
        self.masters[i].kill();
    }
    /// Restarts master `i` and waits until a leader is known again.
    pub async fn restart_master(&mut self, i: usize) -> Result<(), LaunchError> {
        self.masters[i].start()?;
        let addr = self.layout.masters[i].grpc.clone();
        ready::wait_tcp(&mut self.masters[i], &addr, READY_TIMEOUT).await?;
        self.wait_leader().await.map(|_| ())
    }
    /// SIGKILL storage node `i`.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }
    /// Restarts storage node `i` and waits until the masters see it online again.
    pub async fn restart_node(&mut self, i: usize) -> Result<(), LaunchError> {
        self.nodes[i].start()?;
        let rpc = self.wait_leader().await?;
        let id = vec![self.layout.nodes[i].id.clone()];
        let dpn = self.spec.disks_per_node;
        ready::wait_nodes_online(&rpc, &mut self.nodes[i..=i], &id, dpn, READY_TIMEOUT).await
    }
    /// SIGKILL gateway `i`.
    pub fn kill_gateway(&mut self, i: usize) {
        self.gateways[i].kill();
    }
    /// Restarts gateway `i` (a fresh process: empty cache) and waits until it accepts.
    pub async fn restart_gateway(&mut self, i: usize) -> Result<(), LaunchError> {
        self.gateways[i].stop(STOP_GRACE);
        self.gateways[i].start()?;
        let addr = self.layout.gateways[i].clone();
        let tls = self.client_tls.clone();
        ready::wait_gateway(&mut self.gateways[i], &addr, tls.as_ref(), READY_TIMEOUT).await
    }

    /// Stops everything cleanly, in reverse dependency order.
    pub fn stop(&mut self) {
        for p in self
            .gateways
            .iter_mut()
            .chain(self.nodes.iter_mut())
            .chain(self.masters.iter_mut())
        {
            p.stop(STOP_GRACE);
        }
    }

    /// The logs of every process, concatenated (tests print them on failure).
    pub fn all_logs(&self, lines: usize) -> String {
        let all = self.masters.iter().chain(&self.nodes).chain(&self.gateways);
        all.map(|p| {
            format!(
                "===== {} ({}) =====\n{}\n",
                p.name,
                p.log_path().display(),
                p.log_tail(lines)
            )
        })
        .collect()
    }

    /// The S3 endpoint of gateway 0.
    pub fn s3_endpoint(&self) -> Option<String> {
        self.layout
            .gateways
            .first()
            .map(|g| format!("{}://{g}", self.layout.scheme()))
    }

    /// Daemons that have died (their exit status and [`Proc::exit_reason`]), as
    /// `(name, status, reason)`. A supervisor polls this to report a death instead of
    /// hiding it; a process stopped on purpose ([`Self::stop`], kill) is not listed.
    pub fn dead_daemons(&mut self) -> Vec<(String, String, String)> {
        let all = self
            .masters
            .iter_mut()
            .chain(self.nodes.iter_mut())
            .chain(self.gateways.iter_mut());
        all.filter_map(|p| {
            let status = p.exit_status()?;
            Some((p.name.clone(), status, p.exit_reason()))
        })
        .collect()
    }
}

/// The error for a port another program holds, with what the user can do about it.
fn port_in_use(spec: &ClusterSpec, addr: String, what: String, existed: bool) -> LaunchError {
    let hint = match spec.ports {
        PortPlan::Free => "stop that program or run the test again".to_string(),
        PortPlan::Base(_) if existed => format!(
            "stop that program, or leave this data dir and start a new cluster beside it \
             with another --data directory and --port-base (a data dir keeps the ports it \
             was created with, see {})",
            Layout::path(&spec.data_dir).display()
        ),
        PortPlan::Base(b) => {
            let other = if b == crate::ports::STANDARD_BASE {
                7700
            } else {
                crate::ports::STANDARD_BASE
            };
            format!(
                "stop that program, or choose other ports with --port-base (for example \
                 --port-base {other}: masters at {other}, storage nodes from {}, S3 gateway \
                 at {})",
                crate::ports::node_ports(other, 0).0,
                crate::ports::gateway_port(other, 0)
            )
        }
    };
    LaunchError::PortInUse { addr, what, hint }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_data_dir_of_an_older_version_is_tightened_and_said_so() {
        let t = tempfile::tempdir().unwrap();
        let data = t.path().join("kdss-data");
        std::fs::create_dir_all(data.join("config")).unwrap();
        std::fs::write(Layout::path(&data), "{}").unwrap();
        let set = |p: &Path, m| std::fs::set_permissions(p, PermissionsExt::from_mode(m));
        set(&data, 0o755).unwrap();
        set(&data.join("config"), 0o775).unwrap();
        set(&Layout::path(&data), 0o644).unwrap();
        let mut said = Vec::new();
        make_private(&data, &mut |s| said.push(s.to_string())).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("config")), 0o700);
        assert_eq!(mode(&Layout::path(&data)), 0o600);
        assert_eq!(said.len(), 3, "{said:?}");
        assert!(said[2].contains("layout.json from mode 644"), "{said:?}");

        let fresh = t.path().join("new/data");
        make_private(&fresh, &mut |s| panic!("nothing to tighten: {s}")).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }

    #[test]
    fn planned_secrets_pass_the_daemons_rule() {
        let t = tempfile::tempdir().unwrap();
        let spec = ClusterSpec::new(t.path().to_path_buf(), "/bin/true".into());
        let l = Layout::plan(&spec).unwrap();
        kdss_common::cluster_secret::validate(Path::new("layout.json"), "secret", &l.secret)
            .unwrap();
    }
}
