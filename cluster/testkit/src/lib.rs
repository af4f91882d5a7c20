//! The harness every multi-process test uses: [`Cluster::start`] runs real masters,
//! storage nodes (file-backed devices) and S3 gateways as child processes of the `kdss`
//! binary on loopback with free ports, in a temp dir under `target/`, and stops them on
//! drop — printing their logs when the test panicked.
//!
//! The binaries come from this workspace: [`bin_path`] builds them once per test process
//! with `cargo build --workspace --bins` (a no-op when fresh), unless `KDSS_BIN_DIR` names
//! a directory that already holds them.

mod bins;
mod mount;
pub mod netns;

pub use bins::bin_path;
pub use kdss_launch::{AdminRpc, LocalCluster};
pub use kdss_launch::{fuse_unavailable, is_mounted};
pub use mount::Mount;

use kdss_common::EcPolicy;
use kdss_launch::{ClusterSpec, PortPlan};
use std::path::{Path, PathBuf};

/// The shape of a test cluster. Defaults: 1 master, 4 nodes × 2 disks of 256 MiB, EC 5+2,
/// no gateway, bucket `test`.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    pub masters: usize,
    pub nodes: usize,
    pub disks_per_node: usize,
    pub disk_size: u64,
    pub ec: EcPolicy,
    pub gateways: usize,
    pub bucket: Option<String>,
    /// Extra TOML for every storage.toml (the fault layer's test-only section).
    pub storage_extra_toml: String,
    /// Extra TOML for every master.toml.
    pub master_extra_toml: String,
    /// Storage nodes in this many racks, round-robin (0: unlabelled).
    pub racks: usize,
    /// TLS on every listener with a CA made in the data dir (`kdss up --tls`).
    pub tls: bool,
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            masters: 1,
            nodes: 4,
            disks_per_node: 2,
            disk_size: 256 << 20,
            ec: EcPolicy::default(),
            gateways: 0,
            bucket: Some("test".into()),
            storage_extra_toml: String::new(),
            master_extra_toml: String::new(),
            racks: 0,
            tls: false,
        }
    }
}

/// A running test cluster. Derefs to [`LocalCluster`] for kill/restart/status.
pub struct Cluster {
    inner: Option<LocalCluster>,
    dir: tempfile::TempDir,
}

/// Where test clusters put their files: `target/kdss-test-tmp`.
pub fn test_tmp_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/kdss-test-tmp");
    let _ = std::fs::create_dir_all(&root);
    root
}

impl Cluster {
    /// Starts a cluster and waits until it serves (leader, nodes online, bucket, gateways).
    pub async fn start(opts: ClusterOpts) -> anyhow::Result<Cluster> {
        let kdss = bin_path("kdss")?;
        let dir = tempfile::Builder::new()
            .prefix("cluster-")
            .tempdir_in(test_tmp_root())?;
        let mut spec = ClusterSpec::new(dir.path().join("data"), kdss);
        spec.masters = opts.masters;
        spec.nodes = opts.nodes;
        spec.disks_per_node = opts.disks_per_node;
        spec.disk_size = opts.disk_size;
        spec.ec = opts.ec;
        spec.gateways = opts.gateways;
        spec.ports = PortPlan::Free;
        spec.bucket = opts.bucket;
        spec.storage_extra_toml = opts.storage_extra_toml;
        spec.master_extra_toml = opts.master_extra_toml;
        spec.racks = opts.racks;
        spec.tls = opts.tls;
        spec.env = vec![(
            "RUST_LOG".into(),
            std::env::var("KDSS_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )];
        let mut say = |s: &str| eprintln!("[testkit] {s}");
        // A port free when planned may be taken by another test process before the check
        // that precedes every start (a full run starts hundreds of clusters); nothing is
        // written before that check, so the same spec plans other free ports.
        let mut tries = 0;
        let inner = loop {
            match LocalCluster::start(spec.clone(), &mut say).await {
                Err(kdss_launch::LaunchError::PortInUse { addr, what, .. }) if tries < 3 => {
                    tries += 1;
                    say(&format!("{addr} ({what}) was taken meanwhile; other ports"));
                }
                r => break r?,
            }
        };
        Ok(Cluster {
            inner: Some(inner),
            dir,
        })
    }

    /// Master gRPC addresses.
    pub fn masters(&self) -> Vec<String> {
        self.layout.master_addrs()
    }
    /// The bootstrap admin's (access key, secret key).
    pub fn admin_keys(&self) -> (String, String) {
        (
            self.layout.admin_access_key.clone(),
            self.layout.admin_secret_key.clone(),
        )
    }
    /// The cluster secret (service identity; capabilities).
    pub fn secret(&self) -> String {
        self.layout.secret.clone()
    }
    /// The bucket created at start.
    pub fn bucket(&self) -> String {
        self.spec.bucket.clone().unwrap_or_default()
    }
    /// Stops every process cleanly and starts the whole cluster again on the same data
    /// (the "restart everything" fault test).
    pub async fn restart_all(&mut self) -> anyhow::Result<()> {
        self.restart_all_after(|_, _| {}).await
    }

    /// Stops every process cleanly, hands the stopped cluster's layout to `between` (a
    /// disaster test destroys and restores data there, as an operator would with every
    /// daemon down), then starts the whole cluster again on the same data dir.
    pub async fn restart_all_after(
        &mut self,
        between: impl FnOnce(&kdss_launch::Layout, &Path),
    ) -> anyhow::Result<()> {
        let layout = self.layout.clone();
        let spec = self.stop_all();
        between(&layout, &spec.data_dir);
        let mut say = |s: &str| eprintln!("[testkit] {s}");
        self.inner = Some(LocalCluster::start(spec, &mut say).await?);
        Ok(())
    }

    /// Stops every process cleanly and starts the cluster again on the same data with
    /// `nodes` storage nodes, as `kdss up --nodes N` does on an existing data dir: more
    /// nodes than it has grows the cluster (new devices formatted, new nodes joined). When
    /// the start fails (fewer nodes are refused) the cluster is started again as it was
    /// and the error is returned.
    pub async fn restart_with_nodes(&mut self, nodes: usize) -> anyhow::Result<()> {
        let spec = self.stop_all();
        let mut say = |s: &str| eprintln!("[testkit] {s}");
        let asked = ClusterSpec {
            nodes,
            ..spec.clone()
        };
        match LocalCluster::start(asked, &mut say).await {
            Ok(c) => {
                self.inner = Some(c);
                Ok(())
            }
            Err(e) => {
                self.inner = Some(LocalCluster::start(spec, &mut say).await?);
                Err(e.into())
            }
        }
    }

    /// Stops every process and hands back the spec to start them again with.
    fn stop_all(&mut self) -> ClusterSpec {
        let mut old = self.inner.take().expect("cluster present until drop");
        old.stop();
        old.spec.clone()
    }

    /// A scratch directory that lives as long as the cluster (mountpoints, reference files).
    pub fn scratch(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        let _ = std::fs::create_dir_all(&p);
        p
    }
}

impl std::ops::Deref for Cluster {
    type Target = LocalCluster;
    fn deref(&self) -> &LocalCluster {
        self.inner.as_ref().expect("cluster present until drop")
    }
}
impl std::ops::DerefMut for Cluster {
    fn deref_mut(&mut self) -> &mut LocalCluster {
        self.inner.as_mut().expect("cluster present until drop")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut c) = self.inner.take() {
            if std::thread::panicking() {
                eprintln!("[testkit] test failed; cluster logs:\n{}", c.all_logs(60));
            }
            c.stop();
        }
    }
}
