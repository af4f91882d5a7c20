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
    /// The node's `[node] rack` (`kdss up --racks`); none: the default domain. Absent from
    /// layouts written before racks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
}

/// The rack of node `i` (0-based) among `racks` racks, round-robin: node-1 in rack-1,
/// node-N+1 in rack-1 again.
pub fn rack_of(i: usize, racks: usize) -> Option<String> {
    (racks > 0).then(|| format!("rack-{}", i % racks + 1))
}

/// Where [`Layout::load_or_plan`] found the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Planned now for an empty data dir; not saved yet.
    New,
    /// Read back unchanged.
    Existing,
    /// Read back, then grown by new storage nodes (from the first `from` nodes); the
    /// grown layout is saved once the new nodes joined, so a failed start leaves the data
    /// dir as it was.
    Grown {
        /// How many nodes the saved layout had.
        from: usize,
    },
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
    /// Each gateway's metrics listener (`[s3] metrics_listen`), by gateway index. Absent
    /// from layouts written before gateways had one; [`Layout::load_or_plan`] adds them.
    #[serde(default)]
    pub gateway_metrics: Vec<String>,
    /// The metrics listener of the ksfs mount `kdss up` makes (`[mount] metrics_addr`).
    #[serde(default)]
    pub mount_metrics: Option<String>,
    /// Where the cluster CA and the daemons' certificates live when the cluster runs TLS
    /// (`kdss up --tls`); none: plaintext on loopback. Once set it stays: a TLS cluster
    /// restarted without `--tls` still runs TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_dir: Option<PathBuf>,
}

/// Storage node `i` (0-based; its id is `node-{i+1}`) with its device paths under `dir`.
fn node_layout(dir: &Path, i: usize, disks: usize, grpc: u16, http: u16) -> NodeLayout {
    let id = format!("node-{}", i + 1);
    NodeLayout {
        grpc: format!("127.0.0.1:{grpc}"),
        http: format!("127.0.0.1:{http}"),
        disks: (0..disks)
            .map(|d| dir.join(&id).join(format!("disk-{d}.img")))
            .collect(),
        id,
        rack: None,
    }
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

    /// Loads the layout of `spec.data_dir`, or plans a new one that [`Layout::save`]
    /// persists once its ports are known to be free. An existing layout that does not
    /// match the spec's shape is an error naming the difference, except that more storage
    /// nodes than it has grows it: the old nodes keep their ids, ports and devices and the
    /// new ones are appended ([`Origin::Grown`]). Fewer nodes is refused: dropping a node
    /// would drop its shards.
    pub fn load_or_plan(spec: &ClusterSpec) -> Result<(Layout, Origin), LaunchError> {
        let path = Self::path(&spec.data_dir);
        if !path.exists() {
            return Ok((Self::plan(spec)?, Origin::New));
        }
        let mut l = Self::load(&spec.data_dir)?;
        l.check_shape(spec, &path)?;
        l.add_metrics_ports(spec)?;
        let from = l.nodes.len();
        if spec.nodes == from {
            l.label_racks(spec);
            return Ok((l, Origin::Existing));
        }
        l.add_nodes(spec)?;
        l.label_racks(spec);
        Ok((l, Origin::Grown { from }))
    }

    /// Writes the layout to `DIR/layout.json` (0600: it holds the secrets): from then on
    /// the data dir has these ports and secrets.
    pub fn save(&self, data_dir: &Path) -> Result<(), LaunchError> {
        let text = serde_json::to_string_pretty(self).expect("layout serializes");
        crate::cluster::write(&Self::path(data_dir), &text)
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
        if spec.nodes < self.nodes.len() {
            return Err(self.shrink_refused(spec, path));
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

    /// Why `kdss up` does not take nodes away: their shards would go with them.
    fn shrink_refused(&self, spec: &ClusterSpec, path: &Path) -> LaunchError {
        let had = self.nodes.len();
        let gone: Vec<&str> = self.nodes[spec.nodes..]
            .iter()
            .map(|n| n.id.as_str())
            .collect();
        LaunchError::BadLayout {
            path: path.to_path_buf(),
            message: format!(
                "this data dir has {had} storage nodes, asked for --nodes {}: kdss up never \
                 drops a node, its shards would be lost. Removing a node is a drain: run \
                 `kdss-cli disk drain ID` for each of its disks (`kdss-cli disk list` shows \
                 the ids of {}), wait until they hold no shards, then stop the node. To \
                 start this data dir, use --nodes {had} or more",
                spec.nodes,
                gone.join(", "),
            ),
        }
    }

    /// Appends storage nodes until the layout has `spec.nodes`, numbered after the last
    /// one, with the ports the layout's plan gives them (the next node slots of its port
    /// base, or free ports) and `spec.disks_per_node` new device paths each.
    fn add_nodes(&mut self, spec: &ClusterSpec) -> Result<(), LaunchError> {
        let dir = std::path::absolute(&spec.data_dir)
            .map_err(io(format!("resolve {}", spec.data_dir.display())))?;
        let base = match spec.ports {
            PortPlan::Base(_) => self.port_base(),
            PortPlan::Free => None,
        };
        for i in self.nodes.len()..spec.nodes {
            let (grpc, http) = match base {
                Some(b) => ports::node_ports(b, i),
                None => (ports::free_port()?, ports::free_port()?),
            };
            self.nodes
                .push(node_layout(&dir, i, spec.disks_per_node, grpc, http));
        }
        Ok(())
    }

    /// With `spec.racks` > 0, puts every node in a rack round-robin ([`rack_of`]); else
    /// nodes keep the racks they have.
    fn label_racks(&mut self, spec: &ClusterSpec) {
        if spec.racks > 0 {
            for (i, n) in self.nodes.iter_mut().enumerate() {
                n.rack = rack_of(i, spec.racks);
            }
        }
    }

    /// Gives every gateway and the mount a metrics port when the layout has none yet (it
    /// was planned before they had one, or is being planned now).
    fn add_metrics_ports(&mut self, spec: &ClusterSpec) -> Result<(), LaunchError> {
        let base = self.port_base();
        let port = |p: u16| -> Result<String, LaunchError> {
            let p = match (spec.ports, base) {
                (PortPlan::Base(_), Some(_)) => p,
                _ => ports::free_port()?,
            };
            Ok(format!("127.0.0.1:{p}"))
        };
        let b = base.unwrap_or(0);
        for i in self.gateway_metrics.len()..self.gateways.len() {
            let a = port(ports::gateway_metrics_port(b, i))?;
            self.gateway_metrics.push(a);
        }
        if self.mount_metrics.is_none() {
            self.mount_metrics = Some(port(ports::mount_metrics_port(b))?);
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
            let (grpc, http) = ports::node_ports(b, i);
            let (grpc, http) = (port(grpc)?, port(http)?);
            nodes.push(node_layout(&dir, i, spec.disks_per_node, grpc, http));
        }
        let mut gateways = Vec::new();
        for i in 0..spec.gateways {
            gateways.push(format!("127.0.0.1:{}", port(ports::gateway_port(b, i))?));
        }
        let mut l = Layout {
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
            gateway_metrics: Vec::new(),
            mount_metrics: None,
            tls_dir: spec.tls.then(|| dir.join("tls")),
        };
        l.add_metrics_ports(spec)?;
        l.label_racks(spec);
        Ok(l)
    }

    /// The master gRPC addresses.
    pub fn master_addrs(&self) -> Vec<String> {
        self.masters.iter().map(|m| m.grpc.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, nodes: usize, base: u16) -> ClusterSpec {
        let mut s = ClusterSpec::new(dir.to_path_buf(), "/bin/true".into());
        s.nodes = nodes;
        s.ports = PortPlan::Base(base);
        s
    }

    #[test]
    fn more_nodes_grow_the_layout_and_keep_the_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (l, origin) = Layout::load_or_plan(&spec(dir.path(), 4, 20000)).unwrap();
        assert_eq!(origin, Origin::New);
        l.save(dir.path()).unwrap();

        let (g, origin) = Layout::load_or_plan(&spec(dir.path(), 6, 20000)).unwrap();
        assert_eq!(origin, Origin::Grown { from: 4 });
        assert_eq!(g.cluster_id, l.cluster_id);
        assert_eq!(g.secret, l.secret);
        for (old, new) in l.nodes.iter().zip(&g.nodes) {
            assert_eq!(
                (&old.id, &old.grpc, &old.disks),
                (&new.id, &new.grpc, &new.disks)
            );
        }
        let added: Vec<(&str, &str)> = g.nodes[4..]
            .iter()
            .map(|n| (n.id.as_str(), n.grpc.as_str()))
            .collect();
        assert_eq!(
            added,
            [("node-5", "127.0.0.1:20140"), ("node-6", "127.0.0.1:20150")]
        );
        assert_eq!(g.nodes[5].disks.len(), 2);
        assert!(g.nodes[5].disks[1].ends_with("node-6/disk-1.img"));
        assert!(
            g.nodes.iter().all(|n| n.rack.is_none()),
            "no racks unless asked"
        );

        // Not saved by planning: the data dir still says 4 until the new nodes joined.
        let (_, origin) = Layout::load_or_plan(&spec(dir.path(), 4, 20000)).unwrap();
        assert_eq!(origin, Origin::Existing);
    }

    #[test]
    fn racks_label_nodes_round_robin_and_stay_with_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), 5, 20000);
        s.racks = 4;
        let (l, _) = Layout::load_or_plan(&s).unwrap();
        let racks: Vec<&str> = l.nodes.iter().map(|n| n.rack.as_deref().unwrap()).collect();
        assert_eq!(racks, ["rack-1", "rack-2", "rack-3", "rack-4", "rack-1"]);
        l.save(dir.path()).unwrap();
        // A restart without --racks keeps them.
        let (again, _) = Layout::load_or_plan(&spec(dir.path(), 5, 20000)).unwrap();
        assert_eq!(again.nodes[4].rack.as_deref(), Some("rack-1"));
        let toml = crate::configs::storage_toml(&again, &again.nodes[4], &s);
        assert!(toml.contains("rack = \"rack-1\""), "{toml}");
    }

    #[test]
    fn fewer_nodes_are_refused_with_the_drain_to_use_instead() {
        let dir = tempfile::tempdir().unwrap();
        let (l, _) = Layout::load_or_plan(&spec(dir.path(), 5, 20000)).unwrap();
        l.save(dir.path()).unwrap();
        let e = Layout::load_or_plan(&spec(dir.path(), 4, 20000))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has 5 storage nodes, asked for --nodes 4"),
            "{e}"
        );
        assert!(e.contains("kdss-cli disk drain ID"), "{e}");
        assert!(e.contains("of node-5"), "{e}");
        assert!(e.contains("--nodes 5 or more"), "{e}");
    }
}
