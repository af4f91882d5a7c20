//! The persistent shape of a local cluster: ports, secrets, paths. Written to
//! `DIR/layout.json` on first start and read back afterwards, so that running `kdss up`
//! again on the same directory (or restarting a node in a test) finds the same data.

use crate::error::{LaunchError, io};
use crate::ports;
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

    /// Loads the layout of `spec.data_dir` (`true` beside it), or plans a new one (`false`)
    /// that [`Layout::save`] persists once its ports are known to be free. An existing
    /// layout that does not match the spec's shape is an error naming the difference.
    pub fn load_or_plan(spec: &ClusterSpec) -> Result<(Layout, bool), LaunchError> {
        let path = Self::path(&spec.data_dir);
        if path.exists() {
            let l = Self::load(&spec.data_dir)?;
            l.check_shape(spec, &path)?;
            return Ok((l, true));
        }
        Ok((Self::plan(spec)?, false))
    }

    /// Writes the layout to `DIR/layout.json`: from then on the data dir has these ports
    /// and secrets.
    pub fn save(&self, data_dir: &Path) -> Result<(), LaunchError> {
        let path = Self::path(data_dir);
        std::fs::create_dir_all(data_dir).map_err(io(format!("create {}", data_dir.display())))?;
        let text = serde_json::to_string_pretty(self).expect("layout serializes");
        std::fs::write(&path, text).map_err(io(format!("write {}", path.display())))
    }

    /// The port base this layout was created with (its first master's gRPC port).
    pub fn port_base(&self) -> Option<u16> {
        let m = self.masters.first()?;
        m.grpc.rsplit_once(':')?.1.parse().ok()
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
        if let PortPlan::Base(b) = spec.ports
            && let Some(had) = self.port_base()
            && had != b
        {
            return mismatch("--port-base", had.to_string(), b.to_string());
        }
        Ok(())
    }

    /// A new layout for `spec` (fresh secrets, its ports), not yet saved.
    pub fn plan(spec: &ClusterSpec) -> Result<Layout, LaunchError> {
        // Daemons run with other working directories: every path in the layout is absolute.
        let dir = std::path::absolute(&spec.data_dir)
            .map_err(io(format!("resolve {}", spec.data_dir.display())))?;
        let port = |base_port: u16| -> Result<u16, LaunchError> {
            match spec.ports {
                PortPlan::Base(_) => Ok(base_port),
                PortPlan::Free => ports::free_port(),
            }
        };
        let b = match spec.ports {
            PortPlan::Base(b) => b,
            PortPlan::Free => 0,
        };
        let mut masters = Vec::new();
        for i in 0..spec.masters {
            let id = i as u64 + 1;
            masters.push(MasterLayout {
                id,
                grpc: format!("127.0.0.1:{}", port(ports::master_ports(b, i).0)?),
                http: format!("127.0.0.1:{}", port(ports::master_ports(b, i).1)?),
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
                grpc: format!("127.0.0.1:{}", port(ports::node_ports(b, i).0)?),
                http: format!("127.0.0.1:{}", port(ports::node_ports(b, i).1)?),
                id,
                disks,
            });
        }
        let mut gateways = Vec::new();
        for i in 0..spec.gateways {
            gateways.push(format!("127.0.0.1:{}", port(ports::gateway_port(b, i))?));
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
