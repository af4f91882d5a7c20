//! `DIR/cluster.json`: what runs where, for scripts and tests (README, "The two commands").
//! Rewritten when the cluster comes up, when a daemon dies (its pid becomes null) and when
//! it stops (`"state": "stopped"`, no pids), so the file never shows dead processes as live.
//! Every daemon and the mount name their Prometheus address in `metrics` (host:port,
//! path `/metrics`), which is what a scrape config or a test points at.

use crate::cluster::{LocalCluster, write};
use crate::error::LaunchError;
use serde::Serialize;
use std::path::PathBuf;

/// Whether the cluster described runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterState {
    /// Up (the pids are those of live daemons; a dead one's is null).
    Running,
    /// Stopped cleanly: no process of it runs.
    Stopped,
}

/// S3 endpoint and credentials.
#[derive(Debug, Serialize)]
pub struct S3Json {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// One master (`pid` is null unless it runs).
#[derive(Debug, Serialize)]
pub struct MasterJson {
    pub id: u64,
    pub grpc: String,
    pub http: String,
    /// Where `/metrics` is served (the HTTP port).
    pub metrics: String,
    pub pid: Option<u32>,
    pub data: PathBuf,
}

/// One storage node.
#[derive(Debug, Serialize)]
pub struct NodeJson {
    pub id: String,
    pub grpc: String,
    pub http: String,
    /// Where `/metrics` is served (the HTTP port).
    pub metrics: String,
    pub pid: Option<u32>,
    pub disks: Vec<PathBuf>,
}

/// One gateway.
#[derive(Debug, Serialize)]
pub struct GatewayJson {
    pub http: String,
    /// Its metrics listener (never the S3 port, where `/metrics` is a bucket).
    pub metrics: Option<String>,
    pub pid: Option<u32>,
}

/// One ksfs mount.
#[derive(Debug, Serialize)]
pub struct MountJson {
    pub mountpoint: PathBuf,
    /// Its metrics listener (`[mount] metrics_addr`).
    pub metrics: Option<String>,
}

/// The whole file.
#[derive(Debug, Serialize)]
pub struct ClusterJson {
    pub state: ClusterState,
    pub s3: Option<S3Json>,
    pub bucket: Option<String>,
    pub mountpoint: Option<PathBuf>,
    /// The first master's HTTP address, where the web console is served (every master
    /// serves it, beside `/metrics` and `/health`; docs/console.md).
    pub console: String,
    pub masters: Vec<MasterJson>,
    pub storage_nodes: Vec<NodeJson>,
    pub s3gw: Vec<GatewayJson>,
    /// The mount `kdss up` made (empty without one); `mountpoint` above is its path.
    pub mounts: Vec<MountJson>,
}

impl LocalCluster {
    /// What runs where, as `DIR/cluster.json` records it; pids only of live processes.
    pub fn describe(&mut self, mountpoint: Option<PathBuf>, state: ClusterState) -> ClusterJson {
        let l = &self.layout;
        let s3 = l.gateways.first().map(|g| S3Json {
            endpoint: format!("{}://{g}", l.scheme()),
            access_key: l.admin_access_key.clone(),
            secret_key: l.admin_secret_key.clone(),
            region: l.region.clone(),
        });
        let mounts = mountpoint
            .iter()
            .map(|mp| MountJson {
                mountpoint: mp.clone(),
                metrics: l.mount_metrics.clone(),
            })
            .collect();
        ClusterJson {
            state,
            s3,
            bucket: self.spec.bucket.clone(),
            mountpoint,
            mounts,
            console: l
                .masters
                .first()
                .map(|m| format!("{}://{}", l.scheme(), m.http))
                .unwrap_or_default(),
            masters: l
                .masters
                .iter()
                .zip(self.masters.iter_mut())
                .map(|(m, p)| MasterJson {
                    id: m.id,
                    grpc: m.grpc.clone(),
                    http: m.http.clone(),
                    metrics: m.http.clone(),
                    pid: p.live_pid(),
                    data: m.data.clone(),
                })
                .collect(),
            storage_nodes: l
                .nodes
                .iter()
                .zip(self.nodes.iter_mut())
                .map(|(n, p)| NodeJson {
                    id: n.id.clone(),
                    grpc: n.grpc.clone(),
                    http: n.http.clone(),
                    metrics: n.http.clone(),
                    pid: p.live_pid(),
                    disks: n.disks.clone(),
                })
                .collect(),
            s3gw: l
                .gateways
                .iter()
                .zip(self.gateways.iter_mut())
                .enumerate()
                .map(|(i, (g, p))| GatewayJson {
                    http: g.clone(),
                    metrics: l.gateway_metrics.get(i).cloned(),
                    pid: p.live_pid(),
                })
                .collect(),
        }
    }

    /// Writes [`Self::describe`] to `DIR/cluster.json`.
    pub fn write_cluster_json(
        &mut self,
        mountpoint: Option<PathBuf>,
        state: ClusterState,
    ) -> Result<PathBuf, LaunchError> {
        let path = self.spec.data_dir.join("cluster.json");
        let json = self.describe(mountpoint, state);
        let text = serde_json::to_string_pretty(&json).expect("serializes");
        write(&path, &text)?;
        Ok(path)
    }
}
