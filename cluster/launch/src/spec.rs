//! What to run: counts, sizes, the EC policy and how ports are chosen.

use kdss_common::EcPolicy;
use std::path::PathBuf;

/// How daemons get their ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPlan {
    /// Ports from a base B (`kdss up --port-base`): master i at B+10i (gRPC) / B+10i+1
    /// (HTTP), node i at B+100+10i / B+100+10i+1, gateway i at B+2300+i. The default base
    /// [`PortPlan::STANDARD`] gives the documented 6700 / 6800 / 9000.
    Base(u16),
    /// Free ports picked by the OS, so tests can run side by side.
    Free,
}

impl PortPlan {
    /// The documented ports: master 6700, storage nodes from 6800, S3 gateway 9000.
    pub const STANDARD: PortPlan = PortPlan::Base(crate::ports::STANDARD_BASE);
}

/// A cluster to start.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Where configs, device files, master data and logs live. Reused on restart.
    pub data_dir: PathBuf,
    /// The `kdss` binary to run for every daemon.
    pub kdss_bin: PathBuf,
    pub masters: usize,
    pub nodes: usize,
    pub disks_per_node: usize,
    /// Size of each device file, bytes.
    pub disk_size: u64,
    /// Default EC policy of the masters (and of the bucket the launcher creates).
    pub ec: EcPolicy,
    /// How many S3 gateways to run.
    pub gateways: usize,
    pub ports: PortPlan,
    /// Bucket to create once the cluster is up (none when `None`).
    pub bucket: Option<String>,
    /// Extra TOML appended to every storage.toml (tests switch on the fault layer here).
    pub storage_extra_toml: String,
    /// Extra TOML appended to every master.toml.
    pub master_extra_toml: String,
    /// Extra environment for every daemon (for example `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// Label storage nodes with racks `rack-1`..`rack-N`, round-robin by node number
    /// (`kdss up --racks N`); 0 keeps the labels the data dir has (none for a new one).
    pub racks: usize,
    /// Run every listener over TLS with a CA and certificates made in `DIR/tls`
    /// (`kdss up --tls`).
    pub tls: bool,
}

impl ClusterSpec {
    /// The defaults of `kdss up`: 1 master, 4 nodes × 2 disks of 1 GiB, EC 5+2, one gateway.
    pub fn new(data_dir: PathBuf, kdss_bin: PathBuf) -> Self {
        ClusterSpec {
            data_dir,
            kdss_bin,
            masters: 1,
            nodes: 4,
            disks_per_node: 2,
            disk_size: 1 << 30,
            ec: EcPolicy::default(),
            gateways: 1,
            ports: PortPlan::STANDARD,
            bucket: Some("kdss".into()),
            storage_extra_toml: String::new(),
            master_extra_toml: String::new(),
            env: Vec::new(),
            racks: 0,
            tls: false,
        }
    }

    /// Refuses shapes that cannot hold a stripe or that are plainly wrong.
    pub fn validate(&self) -> Result<(), crate::LaunchError> {
        let bad = |m: String| Err(crate::LaunchError::Spec(m));
        if self.masters == 0 || self.masters.is_multiple_of(2) {
            return bad(format!(
                "--masters must be odd (1, 3 or 5), got {}",
                self.masters
            ));
        }
        let disks = self.nodes * self.disks_per_node;
        if disks < self.ec.width() as usize {
            return bad(format!(
                "EC {} needs at least {} disks; {} nodes x {} disks = {}",
                self.ec,
                self.ec.width(),
                self.nodes,
                self.disks_per_node,
                disks
            ));
        }
        if self.disk_size < 64 << 20 {
            return bad(format!(
                "--disk-size must be at least 64MiB, got {} bytes",
                self.disk_size
            ));
        }
        if let PortPlan::Base(b) = self.ports {
            self.validate_port_base(b)?;
        }
        Ok(())
    }

    fn validate_port_base(&self, b: u16) -> Result<(), crate::LaunchError> {
        use crate::ports::{MAX_GATEWAYS, MAX_MASTERS, MAX_NODES, base_fits};
        let bad = |m: String| Err(crate::LaunchError::Spec(m));
        if self.masters > MAX_MASTERS || self.nodes > MAX_NODES || self.gateways > MAX_GATEWAYS {
            return bad(format!(
                "--port-base leaves room for at most {MAX_MASTERS} masters, {MAX_NODES} \
                 storage nodes and {MAX_GATEWAYS} gateways, got {}, {} and {}",
                self.masters, self.nodes, self.gateways
            ));
        }
        if b < 1024 || !base_fits(b, self) {
            return bad(format!(
                "--port-base {b} does not fit: the mount's metrics listen at base+2320, so \
                 the base must be between 1024 and {}",
                u16::MAX as usize - crate::ports::MOUNT_METRICS_OFFSET as usize
            ));
        }
        Ok(())
    }
}
