//! `storage.toml`: the node's identity and addresses, its cluster, its disks, and the
//! compactor, scrubber and (test-only) fault sections. Unknown keys are refused with the
//! file, line and key named; `validate()` checks values after parsing.
//!
//! ```toml
//! [node]      id = "node-1", grpc_addr = "127.0.0.1:6800", http_addr = "127.0.0.1:6801"
//!             zone = "eu-1a", rack = "r12"   # failure domain, both optional
//! [cluster]   id = "kdss-local", secret = "…", masters = ["127.0.0.1:6700"]
//! [[disk]]    path = "/path/disk-0.img"
//! [compactor] enabled = true, threshold = 0.2, force_threshold = 0.5, idle_ms = 1000
//! [scrub]     enabled = true, bytes_per_sec = 50_000_000, interval_sec = 3600
//! [rebuild]   max_concurrent = 2, fetch_timeout_ms = 30000
//! [limits]    request_timeout_secs = 300, max_concurrent_per_connection = 256,
//!             write_queue_bytes = 268435456   # see crate::limits
//! [fault]     enabled = false            # tests only
//! [[fault.rule]] disk = "/path/disk-0.img", kind = "eio", op = "write"
//! ```

use crate::device::fault::{FaultKind, FaultOp, FaultRule};
use kdss_common::ConfigError;
use kdss_common::config::invalid;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole storage node configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// This node's identity and listen addresses.
    pub node: NodeSection,
    /// The cluster it belongs to.
    pub cluster: ClusterSection,
    /// One table per disk, each already formatted (`kdss format-disk`).
    #[serde(default, rename = "disk")]
    pub disks: Vec<DiskSection>,
    /// Background compaction of segments with deleted data.
    #[serde(default)]
    pub compactor: CompactorSection,
    /// Background re-verification of every live record.
    #[serde(default)]
    pub scrub: ScrubSection,
    /// Limits of RebuildShard (repair and drain make shards here from other nodes' shards).
    #[serde(default)]
    pub rebuild: RebuildSection,
    /// What the node takes on at once: gRPC deadlines and concurrency, the per-disk write
    /// queue ([`crate::limits`]).
    #[serde(default)]
    pub limits: crate::limits::LimitsSection,
    /// Test-only fault injection; never enable it in production.
    #[serde(default)]
    pub fault: FaultSection,
    /// Certificates for the gRPC and HTTP listeners and for dialling masters and other
    /// nodes (docs/security.md, TLS).
    #[serde(default)]
    pub tls: kdss_common::tls::TlsSection,
}

/// `[node]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// Node name as the master shows it (`node-1`).
    pub id: String,
    /// gRPC listen address (shard I/O), default port 6800.
    pub grpc_addr: String,
    /// HTTP listen address (`/metrics`), default port 6801.
    pub http_addr: String,
    /// Address advertised to the masters when it differs from `grpc_addr` (e.g. 0.0.0.0).
    #[serde(default)]
    pub advertise_addr: Option<String>,
    /// Zone the node sits in (a site, room or power feed): placement keeps at most m
    /// shards of a stripe per zone when there are enough zones. Default: "default".
    #[serde(default = "default_domain")]
    pub zone: String,
    /// Rack within the zone: placement keeps at most m shards of a stripe per rack when
    /// there are enough racks. Default: "default".
    #[serde(default = "default_domain")]
    pub rack: String,
}

fn default_domain() -> String {
    kdss_common::topology::DEFAULT_DOMAIN.into()
}

/// `[cluster]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Cluster id; disks formatted for another cluster are refused.
    pub id: String,
    /// Cluster secret: verifies shard capabilities and signs in to the masters.
    pub secret: String,
    /// Master gRPC addresses to register with.
    #[serde(default)]
    pub masters: Vec<String>,
}

/// `[[disk]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSection {
    /// Device or file path.
    pub path: PathBuf,
}

/// `[compactor]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompactorSection {
    /// Run the compactor at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Dead share of a segment that makes it worth compacting when the disk is idle.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Dead share above which a segment is compacted even under load.
    #[serde(default = "default_force_threshold")]
    pub force_threshold: f64,
    /// How long without foreground requests counts as idle.
    #[serde(default = "default_idle_ms")]
    pub idle_ms: u64,
}

/// `[scrub]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubSection {
    /// Run the scrubber at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Read bandwidth the scrubber may use per disk.
    #[serde(default = "default_scrub_rate")]
    pub bytes_per_sec: u64,
    /// Pause between the end of one pass and the start of the next.
    #[serde(default = "default_scrub_interval")]
    pub interval_sec: u64,
}

/// `[rebuild]`: a rebuild holds k whole shards in memory and reads them from k nodes, so
/// the node runs only a few at once and gives up on a source that does not answer in time.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebuildSection {
    /// Rebuilds running at once on this node; more wait for a slot.
    #[serde(default = "default_rebuild_concurrency")]
    pub max_concurrent: usize,
    /// Deadline of fetching one source shard; past it the next source is tried.
    #[serde(default = "default_fetch_timeout_ms")]
    pub fetch_timeout_ms: u64,
}

/// `[fault]`: test-only. Rules take effect only with `enabled = true`, which also turns on
/// `POST /fault` on the HTTP port for tests that switch faults at run time (only for
/// requests signed with the cluster secret as the service identity).
#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultSection {
    /// Install the fault layer.
    #[serde(default)]
    pub enabled: bool,
    /// Faults active from the start.
    #[serde(default)]
    pub rule: Vec<FaultDiskRule>,
}

/// `[[fault.rule]]`: a fault on a named disk.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultDiskRule {
    /// Path of the disk, as in a `[[disk]]` table.
    pub disk: PathBuf,
    /// eio, latency, corrupt or hang.
    pub kind: FaultKind,
    /// read, write, sync or any (default).
    #[serde(default)]
    pub op: FaultOp,
    /// Delay of a latency fault.
    #[serde(default)]
    pub latency_ms: u64,
    /// Matching calls let through before the fault fires.
    #[serde(default)]
    pub after: u64,
}

impl FaultDiskRule {
    /// The device-level rule.
    pub fn rule(&self) -> FaultRule {
        FaultRule {
            kind: self.kind,
            op: self.op,
            latency_ms: self.latency_ms,
            after: self.after,
        }
    }
}

fn yes() -> bool {
    true
}
fn default_threshold() -> f64 {
    0.2
}
fn default_force_threshold() -> f64 {
    0.5
}
fn default_idle_ms() -> u64 {
    1000
}
fn default_scrub_rate() -> u64 {
    50_000_000
}
fn default_scrub_interval() -> u64 {
    3600
}
fn default_rebuild_concurrency() -> usize {
    2
}
fn default_fetch_timeout_ms() -> u64 {
    30_000
}

impl Default for CompactorSection {
    fn default() -> Self {
        CompactorSection {
            enabled: true,
            threshold: default_threshold(),
            force_threshold: default_force_threshold(),
            idle_ms: default_idle_ms(),
        }
    }
}

impl Default for ScrubSection {
    fn default() -> Self {
        ScrubSection {
            enabled: true,
            bytes_per_sec: default_scrub_rate(),
            interval_sec: default_scrub_interval(),
        }
    }
}

impl Default for RebuildSection {
    fn default() -> Self {
        RebuildSection {
            max_concurrent: default_rebuild_concurrency(),
            fetch_timeout_ms: default_fetch_timeout_ms(),
        }
    }
}

impl StorageConfig {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: StorageConfig = kdss_common::load_toml(path)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Parses and validates TOML text (`path` only names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let cfg: StorageConfig = kdss_common::config::parse_toml(path, text)?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        if self.node.id.trim().is_empty() {
            return Err(invalid(path, "node.id", "must not be empty"));
        }
        self.tls.validate(path)?;
        for (key, label) in [
            ("node.zone", &self.node.zone),
            ("node.rack", &self.node.rack),
        ] {
            kdss_common::topology::check_label(label).map_err(|e| invalid(path, key, e))?;
        }
        for (key, addr) in [
            ("node.grpc_addr", &self.node.grpc_addr),
            ("node.http_addr", &self.node.http_addr),
        ] {
            addr.parse::<SocketAddr>()
                .map_err(|e| invalid(path, key, format!("{addr:?} is not host:port ({e})")))?;
            self.tls.check_listen(path, key, addr)?;
        }
        if self.cluster.id.is_empty() || self.cluster.id.len() > 64 {
            return Err(invalid(path, "cluster.id", "must be 1 to 64 bytes"));
        }
        kdss_common::cluster_secret::validate(path, "cluster.secret", &self.cluster.secret)?;
        if self.disks.is_empty() {
            return Err(invalid(path, "disk", "at least one [[disk]] is needed"));
        }
        for (i, d) in self.disks.iter().enumerate() {
            if self.disks[..i].iter().any(|o| o.path == d.path) {
                return Err(invalid(
                    path,
                    "disk.path",
                    format!("{} is listed twice", d.path.display()),
                ));
            }
        }
        let c = &self.compactor;
        if !(0.0..=1.0).contains(&c.threshold) {
            return Err(invalid(
                path,
                "compactor.threshold",
                "must be between 0.0 and 1.0",
            ));
        }
        if !(c.threshold..=1.0).contains(&c.force_threshold) {
            return Err(invalid(
                path,
                "compactor.force_threshold",
                "must be between threshold and 1.0",
            ));
        }
        if self.scrub.bytes_per_sec == 0 {
            return Err(invalid(path, "scrub.bytes_per_sec", "must be positive"));
        }
        if self.rebuild.max_concurrent == 0 {
            return Err(invalid(
                path,
                "rebuild.max_concurrent",
                "must be at least 1",
            ));
        }
        if self.rebuild.fetch_timeout_ms == 0 {
            return Err(invalid(
                path,
                "rebuild.fetch_timeout_ms",
                "must be positive",
            ));
        }
        self.limits.validate(path)?;
        for r in &self.fault.rule {
            if !self.disks.iter().any(|d| d.path == r.disk) {
                return Err(invalid(
                    path,
                    "fault.rule.disk",
                    format!("{} is not a [[disk]]", r.disk.display()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[node]
id = "node-1"
grpc_addr = "127.0.0.1:6800"
http_addr = "127.0.0.1:6801"
[cluster]
id = "kdss-local"
secret = "0123456789abcdef0123456789abcdef"
masters = ["127.0.0.1:6700"]
[[disk]]
path = "/tmp/d0.img"
[compactor]
threshold = 0.3
"#;

    #[test]
    fn good_config_parses_with_defaults() {
        let c = StorageConfig::parse(Path::new("storage.toml"), GOOD).unwrap();
        assert_eq!(c.disks.len(), 1);
        assert!(c.compactor.enabled);
        assert_eq!(c.compactor.force_threshold, 0.5);
        assert!(!c.fault.enabled);
        assert_eq!(
            (c.node.zone.as_str(), c.node.rack.as_str()),
            ("default", "default")
        );
        let text = GOOD.replace("[cluster]", "zone = \"z1\"\nrack = \"r2\"\n[cluster]");
        let c = StorageConfig::parse(Path::new("storage.toml"), &text).unwrap();
        assert_eq!((c.node.zone.as_str(), c.node.rack.as_str()), ("z1", "r2"));
        let e = StorageConfig::parse(Path::new("s.toml"), &text.replace("rack =", "rak ="))
            .unwrap_err()
            .to_string();
        assert!(e.contains("rak"), "{e}");
    }

    #[test]
    fn typo_names_file_line_and_key() {
        let text = GOOD.replace("threshold = 0.3", "treshold = 0.3");
        let e = StorageConfig::parse(Path::new("storage.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("storage.toml:13:"), "{e}");
        assert!(e.contains("treshold"), "{e}");
    }

    #[test]
    fn rebuild_section_has_defaults_and_refuses_typos_and_zero() {
        let c = StorageConfig::parse(Path::new("s.toml"), GOOD).unwrap();
        assert_eq!(c.rebuild.max_concurrent, 2);
        let text = format!("{GOOD}[rebuild]\nmax_concurent = 4\n");
        let e = StorageConfig::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_concurent"), "{e}");
        let text = format!("{GOOD}[rebuild]\nmax_concurrent = 0\n");
        let e = StorageConfig::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("rebuild.max_concurrent"), "{e}");
        let text = format!("{GOOD}[rebuild]\nmax_concurrent = 4\nfetch_timeout_ms = 500\n");
        let c = StorageConfig::parse(Path::new("s.toml"), &text).unwrap();
        assert_eq!(
            (c.rebuild.max_concurrent, c.rebuild.fetch_timeout_ms),
            (4, 500)
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let text = GOOD.replace("threshold = 0.3", "threshold = 0.9");
        let e = StorageConfig::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("compactor.force_threshold"), "{e}");
        let text = GOOD.replace("[cluster]", "rack = \"rack 1\"\n[cluster]");
        let e = StorageConfig::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("node.rack") && e.contains("rack 1"), "{e}");
        let text = GOOD.replace("127.0.0.1:6800", "localhost");
        let e = StorageConfig::parse(Path::new("s.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("node.grpc_addr"), "{e}");
    }
}
