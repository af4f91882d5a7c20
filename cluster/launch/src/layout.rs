//! The persistent shape of a local cluster: ports, secrets, paths. Written to
//! `DIR/layout.json` on first start and read back afterwards, so that running `kdss up`
//! again on the same directory (or restarting a node in a test) finds the same data.

use crate::error::{LaunchError, io};
use crate::spec::{ClusterSpec, PortPlan};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One master's addresses and data directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MasterLayout {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    pub data: PathBuf,
}

/// One storage node's addresses and device files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeLayout {
    pub id: String,
    pub grpc: String,
    pub http: String,
    pub disks: Vec<PathBuf>,
}

/// Everything a restart must find again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    pub cluster_id: String,
    pub secret: String,
    pub admin_access_key: String,
    pub admin_secret_key: String,
    pub region: String,
    pub ec: String,
    pub disk_size: u64,
    pub masters: Vec<MasterLayout>,
    pub nodes: Vec<NodeLayout>,
    pub gateways: Vec<String>,
}

fn random_hex(bytes: usize) -> String {
    let v: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(v)
}

/// Ports handed out by this process (tests start several clusters at once).
static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A port that was free a moment ago, below Linux's ephemeral range (32768-60999). A port
/// from `bind(:0)` lies inside that range, where any outgoing connection of a concurrent
/// test can take it before the daemon binds it ("node exited before it was ready" in CI).
/// Never the same port twice per process.
fn free_port() -> Result<u16, LaunchError> {
    let mut given = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let port = rand::random_range(20000..32000u16);
        if given.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return Ok(port);
        }
    }
    Err(LaunchError::Io {
        what: "pick a free port in 20000-31999".into(),
        source: std::io::Error::new(std::io::ErrorKind::AddrInUse, "1000 tries, none free"),
    })
}

impl Layout {
    /// Path of the layout file inside a data directory.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("layout.json")
    }

    /// The layout a local cluster saved in `data_dir` (its addresses and admin keys: what
    /// tools such as `kdss bench` need to reach it).
    pub fn load(data_dir: &Path) -> Result<Layout, LaunchError> {
        let path = Self::path(data_dir);
        let text =
            std::fs::read_to_string(&path).map_err(io(format!("read {}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| LaunchError::BadLayout {
            path: path.clone(),
            message: e.to_string(),
        })
    }

    /// Loads the layout of `spec.data_dir`, or creates (and saves) a new one. An existing
    /// layout that does not match the spec's shape is an error naming the difference.
    pub fn load_or_create(spec: &ClusterSpec) -> Result<Layout, LaunchError> {
        let path = Self::path(&spec.data_dir);
        if path.exists() {
            let l = Self::load(&spec.data_dir)?;
            l.check_shape(spec, &path)?;
            return Ok(l);
        }
        let l = Self::create(spec)?;
        std::fs::create_dir_all(&spec.data_dir)
            .map_err(io(format!("create {}", spec.data_dir.display())))?;
        let text = serde_json::to_string_pretty(&l).expect("layout serializes");
        std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))?;
        Ok(l)
    }

    fn check_shape(&self, spec: &ClusterSpec, path: &Path) -> Result<(), LaunchError> {
        let disks = self.nodes.first().map(|n| n.disks.len()).unwrap_or(0);
        let mismatch = |what: &str, had: String, asked: String| {
            Err(LaunchError::BadLayout {
                path: path.to_path_buf(),
                message: format!(
                    "this data dir was created with {what} {had}, now asked for {asked}; \
                     use the same flags or another --data directory"
                ),
            })
        };
        if self.masters.len() != spec.masters {
            return mismatch(
                "masters",
                self.masters.len().to_string(),
                spec.masters.to_string(),
            );
        }
        if self.nodes.len() != spec.nodes {
            return mismatch(
                "nodes",
                self.nodes.len().to_string(),
                spec.nodes.to_string(),
            );
        }
        if disks != spec.disks_per_node {
            return mismatch(
                "disks per node",
                disks.to_string(),
                spec.disks_per_node.to_string(),
            );
        }
        Ok(())
    }

    fn create(spec: &ClusterSpec) -> Result<Layout, LaunchError> {
        // Daemons run with other working directories: every path in the layout is absolute.
        let dir = std::path::absolute(&spec.data_dir)
            .map_err(io(format!("resolve {}", spec.data_dir.display())))?;
        let port = |standard: u16| -> Result<u16, LaunchError> {
            match spec.ports {
                PortPlan::Standard => Ok(standard),
                PortPlan::Free => free_port(),
            }
        };
        let mut masters = Vec::new();
        for i in 0..spec.masters {
            let id = i as u64 + 1;
            masters.push(MasterLayout {
                id,
                grpc: format!("127.0.0.1:{}", port(6700 + 10 * i as u16)?),
                http: format!("127.0.0.1:{}", port(6701 + 10 * i as u16)?),
                data: dir.join(format!("master-{id}")),
            });
        }
        let mut nodes = Vec::new();
        for i in 0..spec.nodes {
            let id = format!("node-{}", i + 1);
            let disks = (0..spec.disks_per_node)
                .map(|d| dir.join(&id).join(format!("disk-{d}.img")))
                .collect();
            nodes.push(NodeLayout {
                grpc: format!("127.0.0.1:{}", port(6800 + 10 * i as u16)?),
                http: format!("127.0.0.1:{}", port(6801 + 10 * i as u16)?),
                id,
                disks,
            });
        }
        let mut gateways = Vec::new();
        for i in 0..spec.gateways {
            gateways.push(format!("127.0.0.1:{}", port(9000 + i as u16)?));
        }
        Ok(Layout {
            cluster_id: format!("kdss-{}", random_hex(4)),
            secret: random_hex(32),
            admin_access_key: format!("KDSS{}", random_hex(8).to_uppercase()),
            admin_secret_key: random_hex(20),
            region: "us-east-1".into(),
            ec: spec.ec.to_string(),
            disk_size: spec.disk_size,
            masters,
            nodes,
            gateways,
        })
    }

    /// The master gRPC addresses.
    pub fn master_addrs(&self) -> Vec<String> {
        self.masters.iter().map(|m| m.grpc.clone()).collect()
    }
}
